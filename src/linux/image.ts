/**
 * The kernel image: its section symbols, the static page tables of arch/x86/kernel/head_64.S,
 * the high mapping at __START_KERNEL_map as __startup_64() (head64.c) and cleanup_highmap()
 * (init_64.c) leave it, and the permission changes the kernel makes to it after boot:
 *
 *  - idt_setup_apic_and_irq_gates(): the IDT page read-only (arch/x86/kernel/idt.c);
 *  - alternative_instructions(): the SMP lock table freed on a uniprocessor (alternative.c);
 *  - free_initmem(): the unused .bss..decrypted and the init sections freed (arch/x86/mm/init.c);
 *  - mark_rodata_ro(): text+rodata read-only, everything after the text NX, the text/rodata
 *    and rodata/data gaps freed (arch/x86/mm/init_64.c).
 *
 * Each goes through linux/cpa.ts, which splits large pages and updates the direct-map alias
 * exactly as set_memory.c does.
 */
import { InputError } from '../x86/ptimage.ts';
import type { Kallsyms } from '../formats/kallsyms.ts';
import {
  __PAGE_KERNEL_LARGE_EXEC, _KERNPG_TABLE, _PAGE_TABLE, roundUp, setMemoryNp, setMemoryNpNoalias, setMemoryNx,
  setMemoryRo, setMemoryRw,
} from './cpa.ts';
import type { BootContext } from './kernel.ts';

/** Image symbols (VAs in the high mapping); per-CPU symbols are offsets into the per-CPU area. */
export interface ImageSymbols {
  text: bigint; // _text
  etext: bigint; // _etext
  startRodata: bigint; // __start_rodata
  endRodata: bigint; // __end_rodata
  endRodataAligned: bigint; // __end_rodata_aligned
  endRodataHpageAlign: bigint; // __end_rodata_hpage_align
  sdata: bigint; // _sdata
  initBegin: bigint; // __init_begin
  initEnd: bigint; // __init_end
  bssStart: bigint; // __bss_start
  brkBase: bigint; // __brk_base
  brkLimit: bigint; // __brk_limit
  end: bigint; // _end
  entryTextStart: bigint; // __entry_text_start
  entryTextEnd: bigint; // __entry_text_end
  initTopPgt: bigint; // init_top_pgt (swapper_pg_dir)
  level3KernelPgt: bigint;
  level2KernelPgt: bigint;
  level2FixmapPgt: bigint;
  level1FixmapPgt: bigint;
  level4KernelPgt?: bigint; // CONFIG_X86_5LEVEL
  smpLocks?: bigint;
  smpLocksEnd?: bigint;
  startBssDecryptedUnused?: bigint; // CONFIG_AMD_MEM_ENCRYPT
  endBssDecrypted?: bigint;
  idtTable?: bigint;
  espfixPudPage?: bigint; // CONFIG_X86_ESPFIX64
  realModeBlob?: bigint;
  realModeBlobEnd?: bigint;
  vsyscallPage?: bigint; // __vsyscall_page
  bmPte?: bigint; // bm_pte: early_ioremap's PTE page (.bss)
  percpu: {
    size: bigint; // __per_cpu_end - __per_cpu_start
    cpuTssRw: bigint;
    gdtPage: bigint;
    exceptionStacks: bigint;
    entryStackStorage: bigint;
    cpuDebugStore?: bigint;
  };
}

type Req = [keyof ImageSymbols, string];
const REQUIRED: Req[] = [
  ['text', '_text'], ['etext', '_etext'], ['startRodata', '__start_rodata'], ['endRodata', '__end_rodata'],
  ['endRodataAligned', '__end_rodata_aligned'], ['endRodataHpageAlign', '__end_rodata_hpage_align'],
  ['sdata', '_sdata'], ['initBegin', '__init_begin'], ['initEnd', '__init_end'], ['bssStart', '__bss_start'],
  ['brkBase', '__brk_base'], ['brkLimit', '__brk_limit'], ['end', '_end'],
  ['entryTextStart', '__entry_text_start'], ['entryTextEnd', '__entry_text_end'],
  ['initTopPgt', 'init_top_pgt'], ['level3KernelPgt', 'level3_kernel_pgt'], ['level2KernelPgt', 'level2_kernel_pgt'],
  ['level2FixmapPgt', 'level2_fixmap_pgt'], ['level1FixmapPgt', 'level1_fixmap_pgt'],
];
const OPTIONAL: Req[] = [
  ['level4KernelPgt', 'level4_kernel_pgt'], ['smpLocks', '__smp_locks'], ['smpLocksEnd', '__smp_locks_end'],
  ['startBssDecryptedUnused', '__start_bss_decrypted_unused'], ['endBssDecrypted', '__end_bss_decrypted'],
  ['idtTable', 'idt_table'], ['espfixPudPage', 'espfix_pud_page'], ['realModeBlob', 'real_mode_blob'],
  ['realModeBlobEnd', 'real_mode_blob_end'], ['vsyscallPage', '__vsyscall_page'], ['bmPte', 'bm_pte'],
];

/**
 * The order arch/x86/kernel/vmlinux.lds.S links the image in, and its size bound: each pair is
 * [lower, upper] (lower <= upper); the image ends within KERNEL_IMAGE_SIZE of __START_KERNEL_map
 * (`ASSERT(... _end - LOAD_OFFSET <= KERNEL_IMAGE_SIZE ...)`, 1 GiB at most: page_64_types.h);
 * the page tables of head_64.S are page aligned (`.balign PAGE_SIZE`; init_top_pgt two pages
 * with PTI, SYM_DATA_START_PTI_ALIGNED). A file that breaks these is not a kernel's symbols.
 */
const ORDER: [keyof ImageSymbols, keyof ImageSymbols][] = [
  ['text', 'etext'], ['etext', 'startRodata'], ['startRodata', 'endRodata'], ['endRodata', 'sdata'], ['sdata', 'initBegin'],
  ['initBegin', 'initEnd'], ['initEnd', 'bssStart'], ['bssStart', 'brkBase'], ['brkBase', 'brkLimit'], ['brkLimit', 'end'],
  ['text', 'entryTextStart'], ['entryTextStart', 'entryTextEnd'], ['entryTextEnd', 'etext'],
];
const TABLES: (keyof ImageSymbols)[] = ['initTopPgt', 'level3KernelPgt', 'level2KernelPgt', 'level2FixmapPgt', 'level1FixmapPgt', 'level4KernelPgt'];
const START_KERNEL_MAP = 0xffffffff80000000n; // page_64_types.h __START_KERNEL_map

function checkImageOrder(k: Kallsyms, s: Record<keyof ImageSymbols, bigint>): void {
  const name = (key: keyof ImageSymbols): string => [...REQUIRED, ...OPTIONAL].find(([x]) => x === key)![1];
  const at = (key: keyof ImageSymbols): string => `${name(key)} 0x${s[key].toString(16)}`;
  for (const [lo, hi] of ORDER) {
    if (s[lo] > s[hi]) throw new InputError(k.file, `${at(hi)} is below ${at(lo)}: not the order vmlinux.lds.S links the image in`, k.lineOf(name(hi)));
  }
  if (s.end - START_KERNEL_MAP > 1n << 30n) throw new InputError(k.file, `${at('end')} is more than KERNEL_IMAGE_SIZE (1 GiB) above __START_KERNEL_map`, k.lineOf('_end'));
  for (const t of TABLES) {
    const align = t === 'initTopPgt' ? 0x2000n : 0x1000n;
    if (s[t] !== undefined && (s[t] % align !== 0n || s[t] < s.text || s[t] >= s.end)) {
      throw new InputError(k.file, `${at(t)}: expected a ${align === 0x2000n ? '8' : '4'} KiB aligned table inside the image (head_64.S)`, k.lineOf(name(t)));
    }
  }
}

/** The symbols the model needs, from /proc/kallsyms or a System.map. Missing required ones are an error naming the file. */
export function imageSymbolsFromKallsyms(k: Kallsyms): ImageSymbols {
  const out: Record<string, unknown> = {};
  for (const [key, name] of REQUIRED) {
    const v = k.addressOf(name);
    if (v === undefined || v < 0xffffffff80000000n) throw new InputError(k.file, `symbol ${name} not found (needed to model the kernel image)`);
    out[key] = v;
  }
  for (const [key, name] of OPTIONAL) {
    const v = k.addressOf(name);
    if (v !== undefined && v >= 0xffffffff80000000n) out[key] = v;
  }
  checkImageOrder(k, out as Record<keyof ImageSymbols, bigint>);
  const start = k.addressOf('__per_cpu_start');
  const end = k.addressOf('__per_cpu_end');
  if (start === undefined || end === undefined) throw new InputError(k.file, 'symbols __per_cpu_start/__per_cpu_end not found');
  if (end < start) throw new InputError(k.file, `__per_cpu_end 0x${end.toString(16)} is below __per_cpu_start 0x${start.toString(16)}`);
  const pc = (name: string): bigint => {
    const v = k.perCpu.get(name);
    if (v === undefined) throw new InputError(k.file, `per-CPU symbol ${name} not found (needed to model cpu_entry_area)`);
    return BigInt(v);
  };
  const dbg = k.perCpu.get('cpu_debug_store');
  out.percpu = {
    size: end - start, cpuTssRw: pc('cpu_tss_rw'), gdtPage: pc('gdt_page'), exceptionStacks: pc('exception_stacks'),
    entryStackStorage: pc('entry_stack_storage'), cpuDebugStore: dbg === undefined ? undefined : BigInt(dbg),
  };
  return out as unknown as ImageSymbols;
}

/**
 * The built-in profile: the Debian linux-image-6.1.0-56-amd64 (6.1.192-2) image, as its
 * /proc/kallsyms lists it, placed with _text at `textVa` (default: nokaslr,
 * __START_KERNEL_map + CONFIG_PHYSICAL_START). Used when no System.map is given.
 */
export function debian61Symbols(textVa = 0xffffffff81000000n): ImageSymbols {
  const o = (off: number) => textVa + BigInt(off);
  return {
    text: o(0), etext: o(0xe01d32), startRodata: o(0x1000000), endRodata: o(0x18eb000),
    endRodataAligned: o(0x1a00000), endRodataHpageAlign: o(0x1a00000), sdata: o(0x1a00000),
    initBegin: o(0x2044000), initEnd: o(0x2306000), bssStart: o(0x2310000), brkBase: o(0x3400000),
    brkLimit: o(0x3430000), end: o(0x3430000), entryTextStart: o(0xc00010), entryTextEnd: o(0xc01b17),
    initTopPgt: o(0x1a10000), level4KernelPgt: o(0x1a14000), level3KernelPgt: o(0x1a15000),
    level2KernelPgt: o(0x1a16000), level2FixmapPgt: o(0x1a17000), level1FixmapPgt: o(0x1a18000),
    smpLocks: o(0x2306000), smpLocksEnd: o(0x230f000), startBssDecryptedUnused: o(0x3203000),
    endBssDecrypted: o(0x3400000), idtTable: o(0x2313000), espfixPudPage: o(0x2314000),
    realModeBlob: o(0x2149000), realModeBlobEnd: o(0x214f264), vsyscallPage: o(0x1a05000), bmPte: o(0x2315000),
    percpu: { size: 0x35000n, cpuTssRw: 0x6000n, gdtPage: 0xb000n, exceptionStacks: 0xc000n, entryStackStorage: 0x18000n },
  };
}

const PMD = 1n << 21n;
const PAGE = 4096n;
const pfnAlign = (v: bigint) => ((v + PAGE - 1n) / PAGE) * PAGE; // PFN_ALIGN()

/**
 * _brk_end: how far extend_brk() got. Not in kallsyms (it is a variable); the brk area holds
 * early_alloc_pgt_buf()'s INIT_PGT_BUF_SIZE (6 pages, 12 with CONFIG_RANDOMIZE_MEMORY) and a
 * few small early allocations, so it ends within the first 2 MiB after __brk_base.
 */
export function defaultBrkEnd(sym: ImageSymbols, randomizeMemory = true): bigint {
  const used = (randomizeMemory ? 12n : 6n) * PAGE; // arch/x86/mm/init.c INIT_PGD_PAGE_COUNT
  const e = sym.brkBase + used;
  return e > sym.brkLimit ? sym.brkLimit : e;
}

/**
 * head_64.S and __startup_64(): init_top_pgt → level3_kernel_pgt (→ level4_kernel_pgt with
 * 5-level paging) → level2_kernel_pgt (the image, 2 MiB PMDs of __PAGE_KERNEL_LARGE_EXEC) and
 * level2_fixmap_pgt → level1_fixmap_pgt; then cleanup_highmap() drops PMDs outside
 * [_text, roundup(_brk_end, PMD_SIZE)).
 */
export function setupHeadTables(ctx: BootContext): void {
  const { pt, sym } = ctx;
  const pa = (va: bigint) => ctx.paSymbol(va);
  const w = (table: bigint, idx: number, v: bigint) => pt.write(table + BigInt(idx * 8), v);
  const top = pa(sym.initTopPgt);
  if (ctx.levels === 5) {
    if (sym.level4KernelPgt === undefined) throw new RangeError('5-level paging needs level4_kernel_pgt (CONFIG_X86_5LEVEL)');
    w(top, 511, pa(sym.level4KernelPgt) | _PAGE_TABLE); // __startup_64(): pgd[pgd_index(__START_KERNEL_map)] = p4d + _PAGE_TABLE
    w(pa(sym.level4KernelPgt), 511, pa(sym.level3KernelPgt) | _PAGE_TABLE); // level4_kernel_pgt[511]
  } else {
    w(top, 511, pa(sym.level3KernelPgt) | _PAGE_TABLE); // init_top_pgt[511] = level3_kernel_pgt + _PAGE_TABLE_NOENC
  }
  const l3 = pa(sym.level3KernelPgt);
  w(l3, 510, pa(sym.level2KernelPgt) | _KERNPG_TABLE); // level3_kernel_pgt: L3_START_KERNEL = 510
  w(l3, 511, pa(sym.level2FixmapPgt) | _PAGE_TABLE);
  // level2_fixmap_pgt: .fill 512 - 4 - FIXMAP_PMD_NUM, then FIXMAP_PMD_NUM (2) level1_fixmap_pgt pages.
  for (let i = 0; i < 2; i++) w(pa(sym.level2FixmapPgt), 506 + i, (pa(sym.level1FixmapPgt) + BigInt(i) * PAGE) | _PAGE_TABLE);
  // level2_kernel_pgt: PMDS(0, __PAGE_KERNEL_LARGE_EXEC, KERNEL_IMAGE_SIZE/PMD_SIZE), relocated by
  // load_delta; __startup_64() keeps pmd_index(_text)..pmd_index(_end), cleanup_highmap() then
  // clears every PMD with vaddr < _text or vaddr > roundup(_brk_end, PMD_SIZE) - 1.
  const l2 = pa(sym.level2KernelPgt);
  const base = ctx.layout.addrs.__START_KERNEL_map;
  const first = Number((sym.text - base) >> 21n);
  const last = Number((sym.end - base) >> 21n);
  const end = roundUp(ctx.brkEnd, PMD) - 1n;
  for (let i = first; i <= last; i++) {
    const va = base + BigInt(i) * PMD;
    if (va < sym.text || va > end) continue;
    w(l2, i, (BigInt(i) * PMD + ctx.physBase) | __PAGE_KERNEL_LARGE_EXEC);
  }
}

/** idt_setup_apic_and_irq_gates(): "Make the IDT table read only". */
export function idtReadOnly(ctx: BootContext): void {
  const idt = ctx.sym.idtTable;
  if (idt !== undefined) setMemoryRo(ctx.cpa, idt, idt + PAGE);
}

/** x86 free_init_pages(): NX and RW first ("we are going to free part of that"); debug_pagealloc unmaps instead. */
function freeInitPages(ctx: BootContext, begin: bigint, end: bigint): void {
  const b = pfnAlign(begin);
  const e = end & ~(PAGE - 1n);
  if (b >= e) return;
  if (ctx.debugPagealloc) {
    setMemoryNp(ctx.cpa, b, e);
    return;
  }
  setMemoryNx(ctx.cpa, b, e);
  setMemoryRw(ctx.cpa, b, e);
}

/** free_kernel_image_pages(): and with PTI, unmap the freed range from the high mapping only (set_memory_np_noalias). */
function freeKernelImagePages(ctx: BootContext, begin: bigint, end: bigint): void {
  freeInitPages(ctx, begin, end);
  if (ctx.pti.enabled) setMemoryNpNoalias(ctx.cpa, begin, end);
}

/** alternative_instructions(): on a uniprocessor the lock-prefix table is freed with free_init_pages(). */
export function freeSmpLocks(ctx: BootContext, possibleCpus: number): void {
  const { smpLocks, smpLocksEnd } = ctx.sym;
  if (smpLocks === undefined || smpLocksEnd === undefined) return;
  // "if (!uniproc_patched || num_possible_cpus() == 1) free_init_pages("SMP alternatives", ...)"
  if (possibleCpus === 1) freeInitPages(ctx, smpLocks, smpLocksEnd);
}

/** free_initmem(): mem_encrypt_free_decrypted_mem(), then free_kernel_image_pages(__init_begin, __init_end). */
export function freeInitmem(ctx: BootContext): void {
  const { startBssDecryptedUnused: s, endBssDecrypted: e } = ctx.sym;
  if (ctx.config.amdMemEncrypt && s !== undefined && e !== undefined) freeInitPages(ctx, s, e);
  freeKernelImagePages(ctx, ctx.sym.initBegin, ctx.sym.initEnd);
}

/** mark_rodata_ro() (arch/x86/mm/init_64.c), with rodata=on. */
export function markRodataRo(ctx: BootContext): void {
  const s = ctx.sym;
  const start = pfnAlign(s.text);
  const rodataStart = pfnAlign(s.startRodata);
  const end = s.endRodataHpageAlign;
  const textEnd = pfnAlign(s.etext);
  const rodataEnd = pfnAlign(s.endRodata);
  setMemoryRo(ctx.cpa, start, end);
  ctx.cpa.kernelSetToReadonly = true;
  // "We align all_end to PMD_SIZE because the existing mapping is a full PMD."
  const allEnd = roundUp(ctx.brkEnd, PMD);
  setMemoryNx(ctx.cpa, textEnd, allEnd);
  freeKernelImagePages(ctx, textEnd, rodataStart); // "unused kernel image (text/rodata gap)"
  freeKernelImagePages(ctx, rodataEnd, s.sdata); // "unused kernel image (rodata/data gap)"
}
