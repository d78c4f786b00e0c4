/**
 * The image tail: frames past _end that the high kernel mapping still maps.
 *
 * Rules, and where they come from:
 *  - cleanup_highmap() keeps the high-map PMDs from _text up to roundup(_brk_end, PMD_SIZE)
 *    (arch/x86/mm/init_64.c), and mark_rodata_ro() keeps that last PMD whole on purpose ("We
 *    align all_end to PMD_SIZE because the existing mapping is a full PMD"), only making it NX;
 *  - only [_text, __end_of_kernel_reserve) and [_brk_start, _brk_end) stay reserved
 *    (early_reserve_memory(), reserve_brk(), arch/x86/kernel/setup.c), so the frames of that
 *    PMD past _end go to the page allocator: the high map aliases whatever they are used for;
 *  - __cpa_pfn_in_highmap() covers exactly those frames too (highmap_end_pfn() =
 *    __pa_symbol(roundup(_brk_end, PMD_SIZE) - 1), set_memory.c), so set_memory_ro() on a
 *    module or BPF address backed by one of them also write-protects its high-map alias
 *    (cpa_process_alias()), splitting the last PMD into 4 KiB pages;
 *  - module and BPF text is made read-only and executable after it is written:
 *    module_enable_ro()/module_enable_x() (kernel/module/strict_rwx.c), and in 6.1
 *    alloc_new_pack() calls set_memory_ro() then set_memory_x() on a BPF program pack
 *    (kernel/bpf/core.c); set_memory_x() does no alias processing ("No alias checking for _NX
 *    bit modifications", change_page_attr_set_clr()).
 *
 * The model reserves [_text, _end) (kernel.ts), so its tail starts at _end; the kernel's starts
 * at PFN_ALIGN(_brk_end), a few pages earlier (the unused brk slop is freed as well).
 *
 * A what-if closes the alias (`highmapTail: 'unmap'`): unmap the tail from the high map only,
 * at boot after mark_rodata_ro(), the way free_kernel_image_pages() unmaps freed image ranges
 * with set_memory_np_noalias() under PTI (arch/x86/mm/init.c: "Remove the 'high kernel image
 * mapping' for these freed areas ... The 'noalias' prevents unmapping the direct map alias which
 * is needed to access the freed pages"). The frames stay usable through the direct map.
 */
import { __PAGE_KERNEL, _PAGE_TABLE, roundUp, setMemoryNpNoalias, setMemoryRo, setMemoryX } from './cpa.ts';
import { populate } from './fixed.ts';
import type { BootContext } from './kernel.ts';

const PAGE = 4096n;
const PMD = 1n << 21n;

/** The tail: [vaStart, vaEnd) in the high map and the frames [paStart, paEnd) it maps; empty when vaEnd <= vaStart. */
export interface ImageTail {
  vaStart: bigint;
  vaEnd: bigint;
  paStart: bigint;
  paEnd: bigint;
}

/** The tail of an image with symbols `end` (_end) and `brkEnd` (_brk_end), mapped at `startKernelMap` with `physBase`. */
export function imageTail(k: { end: bigint; brkEnd: bigint; startKernelMap: bigint; physBase: bigint }): ImageTail {
  const vaStart = roundUp(k.end, PAGE); // PFN_ALIGN(_end): the first frame the model does not reserve
  let vaEnd = roundUp(k.brkEnd, PMD); // cleanup_highmap(): the last PMD kept
  if (vaEnd < vaStart) vaEnd = vaStart;
  const pa = (va: bigint) => va - k.startKernelMap + k.physBase; // __pa_symbol()
  return { vaStart, vaEnd, paStart: pa(vaStart), paEnd: pa(vaEnd) };
}

/** Module or BPF text to place in tail frames: `pages` frames from page `at` of the tail (default: after the previous one). */
export interface TailTextSpec {
  name: string;
  pages: number;
  at?: number;
}

/** Where it went: the module-area VA it is mapped at and its frames. */
export interface TailText {
  name: string;
  va: bigint;
  pa: bigint;
  pages: number;
}

/**
 * Load text into tail frames, as module_alloc() + module_enable_ro()/_x() (or a BPF pack) would
 * when the page allocator hands those frames out: map each frame at a module-area address with
 * PAGE_KERNEL (module_alloc(): __vmalloc_node_range(..., PAGE_KERNEL, ...), arch/x86/kernel/module.c),
 * one guard page between allocations (vmalloc's VM_NO_GUARD is not set), then set_memory_ro()
 * and set_memory_x() through set_memory.c — which write-protects the direct-map and high-map
 * aliases too. Returns what was placed; `reserve` is told about each frame range.
 */
export function placeTailText(ctx: BootContext, specs: readonly TailTextSpec[], reserve: (pa: bigint, bytes: bigint) => void): TailText[] {
  const a = ctx.layout.addrs;
  const tail = imageTail({ end: ctx.sym.end, brkEnd: ctx.brkEnd, startKernelMap: a.__START_KERNEL_map, physBase: ctx.physBase });
  const tailPages = Number((tail.paEnd - tail.paStart) / PAGE);
  const out: TailText[] = [];
  const used = new Set<number>();
  let next = 0;
  let va = a.MODULES_VADDR; // without KASLR's module_load_offset (arch/x86/kernel/module.c get_module_load_offset())
  for (const s of specs) {
    const at = s.at ?? next;
    if (!Number.isInteger(s.pages) || s.pages < 1) throw new RangeError(`tail text ${s.name}: pages must be a positive integer, found ${s.pages}`);
    if (!Number.isInteger(at) || at < 0 || at + s.pages > tailPages) {
      throw new RangeError(`tail text ${s.name}: pages ${at}..${at + s.pages - 1} are outside the image tail (${tailPages} pages past _end)`);
    }
    for (let i = at; i < at + s.pages; i++) {
      if (used.has(i)) throw new RangeError(`tail text ${s.name}: tail page ${i} is already used`);
      used.add(i);
    }
    next = at + s.pages;
    const pa = tail.paStart + BigInt(at) * PAGE;
    for (let i = 0n; i < BigInt(s.pages); i++) {
      ctx.pt.write(populate(ctx.pt, va + i * PAGE, 1, _PAGE_TABLE), (pa + i * PAGE) | (__PAGE_KERNEL & ctx.masks.defaultKernel));
    }
    const end = va + BigInt(s.pages) * PAGE;
    setMemoryRo(ctx.cpa, va, end); // cpa_process_alias(): the direct map, and the high map (__cpa_pfn_in_highmap())
    setMemoryX(ctx.cpa, va, end);
    reserve(pa, BigInt(s.pages) * PAGE);
    out.push({ name: s.name, va, pa, pages: s.pages });
    va = end + PAGE; // the guard page
  }
  return out;
}

/** The what-if that closes the alias: set_memory_np_noalias() on the tail's high-map range (see the header). */
export function unmapHighmapTail(ctx: BootContext): ImageTail {
  const tail = imageTail({ end: ctx.sym.end, brkEnd: ctx.brkEnd, startKernelMap: ctx.layout.addrs.__START_KERNEL_map, physBase: ctx.physBase });
  if (tail.vaEnd > tail.vaStart) setMemoryNpNoalias(ctx.cpa, tail.vaStart, tail.vaEnd);
  return tail;
}
