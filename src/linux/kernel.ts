/**
 * Booting the Linux 6.1 x86-64 kernel's page tables: `bootKernel(opts)` runs, in the kernel's
 * order, every step of start_kernel()/kernel_init() that writes init_top_pgt (swapper_pg_dir)
 * or its KPTI user copy:
 *
 *   head_64.S / __startup_64 / cleanup_highmap    image.ts  the high mapping, 2 MiB PMDs
 *   setup_arch: init_mem_mapping                  directmap.ts
 *   setup_arch: map_vsyscall, APIC/IO-APIC fixmaps fixed.ts
 *   trap_init: setup_cpu_entry_areas               fixed.ts
 *   mm_init: preallocate_vmalloc_pages, init_espfix_bsp, pti_init
 *   init_IRQ: IDT into the cpu_entry_area, IDT read-only
 *   alternative_instructions: free the SMP locks (uniprocessor)
 *   do_init_real_mode: trampoline permissions      directmap.ts
 *   kernel_init: free_initmem, mark_rodata_ro, pti_finalize
 *   what-ifs and later loads: the image tail unmapped from the high map, module/BPF text in
 *   image-tail frames (image-tail.ts)
 *
 * What the real kernel allocates dynamically (vmalloc, modules, BPF, the per-CPU first chunk's
 * placement, processes) is not modelled; where a physical address of such an allocation is
 * needed (the per-CPU area, the ESPFIX stack page) it is a parameter, taken from a capture by
 * linux/capture.ts, or placed by a simple top-down allocator.
 */
import { PhysMemory } from '../phys/memory.ts';
import { PageTables, type TableAllocator } from '../x86/pgtable.ts';
import { parseCmdline, lastParam, hasParam, type ParsedCmdline } from '../formats/cmdline.ts';
import { BootError } from './boot-error.ts';
import type { Iomem } from '../formats/iomem.ts';
import type { Kconfig } from '../formats/kconfig.ts';
import { kaslrGetRandomLong } from './kaslr.ts';
import { buildLayout, type KaslrOption, type LayoutConfig, type LinuxLayout } from './layout.ts';
import { _PAGE_TABLE, protMasks, setMemoryNonglobal, type CpaEnv, type ProtMasks } from './cpa.ts';
import {
  initMemMapping, placeTrampoline, probePageSizeMask, realModePermissions, type DirectMapEnv, type MapRange, type Trampoline,
} from './directmap.ts';
import { BootAllocator, memblockMemory, percpuUnitSize, populateVmemmap, type PhysRange } from './memblock.ts';
import {
  debian61Symbols, defaultBrkEnd, freeInitmem, freeSmpLocks, idtReadOnly, markRodataRo, setupHeadTables,
  type ImageSymbols,
} from './image.ts';
import {
  CEA_MAX_SLOTS, ESPFIX_PAGE_SPACE, apicFixmaps, earlyIoremapInit, populate, idtMapInCea, initEspfix, mapVsyscall, preallocateVmallocPages,
  setupCpuEntryArea, type VsyscallMode,
} from './fixed.ts';
import { ptiEnabled, ptiFinalize, ptiInit, ptiKernelImageGlobalOk, ptiModeFromCmdline, type PtiMode } from './pti.ts';
import { imageTail, placeTailText, unmapHighmapTail, type ImageTail, type TailText, type TailTextSpec } from './image-tail.ts';
import { tableStats } from './table-stats.ts';

export { BootAllocator, percpuUnitSize, type PhysRange } from './memblock.ts';

/** The CPU features the kernel's page tables depend on. */
export interface CpuModel {
  vendor: 'intel' | 'amd' | 'hygon' | 'other';
  family: number;
  pse: boolean;
  pge: boolean;
  /** X86_FEATURE_GBPAGES (CPUID pdpe1gb). */
  gbpages: boolean;
  nx: boolean;
  pcid: boolean;
  la57: boolean;
  x2apic: boolean;
  /** X86_FEATURE_DTES64: the debug store is mapped in the cpu_entry_area. */
  dtes64: boolean;
  /** X86_BUG_CPU_MELTDOWN: what pti=auto decides on. */
  meltdown: boolean;
  /** Running as an SEV-ES guest: the #VC stacks are mapped. */
  sevEs: boolean;
}

/** A Skylake-like Intel CPU: every paging feature, PCID, and vulnerable to Meltdown. */
export const DEFAULT_CPU: CpuModel = {
  vendor: 'intel', family: 6, pse: true, pge: true, gbpages: true, nx: true, pcid: true, la57: false,
  x2apic: false, dtes64: false, meltdown: true, sevEs: false,
};

/** X86_FEATURE_K8: set by early_init_amd() for family >= 0xf, always on Hygon (cpu/amd.c, cpu/hygon.c). */
export function hasK8(cpu: CpuModel): boolean {
  return (cpu.vendor === 'amd' && cpu.family >= 0xf) || cpu.vendor === 'hygon';
}

/** The Kconfig choices that change the page tables (defaults: the Debian 6.1 kernel of the captures). */
export interface KernelConfig {
  pageTableIsolation: boolean; // CONFIG_PAGE_TABLE_ISOLATION
  amdMemEncrypt: boolean; // CONFIG_AMD_MEM_ENCRYPT: .bss..decrypted, the #VC stacks
  randstruct: boolean; // !CONFIG_RANDSTRUCT_NONE
  directGbpages: boolean; // CONFIG_X86_DIRECT_GBPAGES
  espfix64: boolean; // CONFIG_X86_ESPFIX64
  randomizeMemory: boolean; // CONFIG_RANDOMIZE_MEMORY
  /** The vsyscall mode before vsyscall= (LEGACY_VSYSCALL_XONLY / _NONE; none without X86_VSYSCALL_EMULATION). */
  vsyscall: VsyscallMode;
  debugPagealloc: boolean; // CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT
}

export const DEBIAN_61_CONFIG: KernelConfig = {
  pageTableIsolation: true, amdMemEncrypt: true, randstruct: false, directGbpages: true, espfix64: true,
  randomizeMemory: true, vsyscall: 'none', debugPagealloc: false,
};

export function kernelConfigFromKconfig(k: Kconfig): KernelConfig {
  let vsyscall: VsyscallMode = 'none';
  if (k.enabled('X86_VSYSCALL_EMULATION')) vsyscall = k.enabled('LEGACY_VSYSCALL_XONLY') ? 'xonly' : k.enabled('LEGACY_VSYSCALL_NONE') ? 'none' : 'emulate';
  return {
    pageTableIsolation: k.enabled('PAGE_TABLE_ISOLATION'),
    amdMemEncrypt: k.enabled('AMD_MEM_ENCRYPT'),
    randstruct: k.enabled('RANDSTRUCT_FULL') || k.enabled('RANDSTRUCT_PERFORMANCE') || k.enabled('GCC_PLUGIN_RANDSTRUCT'),
    directGbpages: k.enabled('X86_DIRECT_GBPAGES'),
    espfix64: k.enabled('X86_ESPFIX64'),
    randomizeMemory: k.enabled('RANDOMIZE_MEMORY'),
    vsyscall,
    debugPagealloc: k.enabled('DEBUG_PAGEALLOC_ENABLE_DEFAULT'),
  };
}

export interface KernelOptions {
  /** 4 or 5 (default: 5 when the CPU has LA57, else 4). */
  levels?: 4 | 5;
  /** e820 RAM ranges; default: from `iomem`, else QEMU's 512 MiB layout. */
  ram?: PhysRange[];
  /** /proc/iomem: RAM, the kernel image's physical address, the local APIC and IO-APICs. */
  iomem?: Iomem;
  /** Image symbols (from a System.map / kallsyms); default: the built-in Debian 6.1 profile. */
  symbols?: ImageSymbols;
  config?: Partial<KernelConfig>;
  layoutConfig?: LayoutConfig;
  cmdline?: string | ParsedCmdline;
  /** Overrides pti= / nopti of the command line. */
  pti?: PtiMode;
  /** Clear _PAGE_GLOBAL from kernel mappings even without PTI (what an isolation feature asks, cpa.ts protMasks). */
  nonGlobalKernel?: boolean;
  /**
   * Clear _PAGE_GLOBAL from the image's high mapping even without PTI, as pti_set_kernel_image_nonglobal()
   * does under PTI. Without it, a PTI-off kernel keeps head_64.S's global image PMDs
   * (level2_kernel_pgt, __PAGE_KERNEL_LARGE_EXEC): __default_kernel_pte_mask never reaches them.
   */
  nonGlobalImage?: boolean;
  cpu?: Partial<CpuModel>;
  /** Possible CPUs (default 1). */
  cpus?: number;
  /** Memory KASLR: bases, or a seed. Default: off when the command line says nokaslr or nothing is given. */
  kaslr?: KaslrOption;
  /** Physical address of _text (default: iomem "Kernel code", else CONFIG_PHYSICAL_START). */
  textPa?: bigint;
  /** ESPFIX page_random (0..2047). Default: drawn from `seed`. */
  espfixPage?: number;
  /** Physical address of the ESPFIX stack page(s), by espfix page index. */
  espfixStackPa?: bigint[];
  /** Physical start of each CPU's per-CPU area (pcpu_base_addr + unit offset, via __pa()). */
  perCpuPa?: bigint[];
  /** cpu_entry_area slot of each CPU (cea_offset()); default: the CPU number, or random with KASLR. */
  ceaSlots?: number[];
  /** Local APIC and IO-APIC physical addresses; default from `iomem`. */
  apic?: { lapic: bigint | null; ioapics: bigint[] };
  /** Page layout of the real-mode blob: read-only pages and where the text starts (default 3 and 1: the Debian 6.1 build). */
  trampoline?: { roPages: number; textOffsetPages: number };
  /** _brk_end (default: __brk_base + INIT_PGT_BUF_SIZE). */
  brkEnd?: bigint;
  /**
   * Every boot-time allocation (page-table frames, the per-CPU first chunk, the memmap, the
   * ESPFIX stack page) comes from here: `size` bytes aligned to `align`, zeroed. Default: a
   * top-down allocator over free RAM (memblock's policy), avoiding the first MiB and the image.
   */
  alloc?: (size: bigint, align: bigint) => bigint;
  /** The seed for what the kernel draws at random and no input gives (ESPFIX, cpu_entry_area slots). */
  seed?: number;
  /** Module/BPF text loaded after boot into frames of the image tail (image-tail.ts placeTailText()). */
  tailText?: readonly TailTextSpec[];
  /** 'unmap': the what-if that removes the image tail from the high map at boot (image-tail.ts). Default 'keep'. */
  highmapTail?: 'keep' | 'unmap';
}

/** What every boot step reads and writes. */
export interface BootContext {
  mem: PhysMemory;
  levels: 4 | 5;
  layout: LinuxLayout;
  layoutConfig: LayoutConfig;
  pt: PageTables;
  sym: ImageSymbols;
  physBase: bigint;
  paSymbol(va: bigint): bigint;
  masks: ProtMasks;
  cpa: CpaEnv;
  cpu: CpuModel;
  config: KernelConfig;
  pti: { enabled: boolean; mode: PtiMode };
  brkEnd: bigint;
  debugPagealloc: boolean;
  espfixBug: boolean;
}

export interface KernelStats {
  /** Paging-structure pages reachable from each root, by the region of the first address they map. */
  tables: { kernel: Record<string, number>; user: Record<string, number> };
  /** Distinct paging-structure pages over both roots (shared ones once). */
  tablePages: number;
  tableBytes: number;
  /** Large pages split by set_memory.c. */
  splits: { pmd: number; pud: number };
  /** /proc/meminfo DirectMap4k/2M/1G, in bytes (direct_pages_count[]). */
  directMap: { k4: number; m2: number; g1: number };
  /** set_memory_*() calls made. */
  cpaCalls: number;
}

export interface KernelModel {
  layout: LinuxLayout;
  mem: PhysMemory;
  levels: 4 | 5;
  /** init_top_pgt (swapper_pg_dir), physical. */
  kernelRoot: number;
  /** Its KPTI user copy (+4 KiB), or null without PTI. */
  userRoot: number | null;
  pti: { enabled: boolean; mode: PtiMode; kernelImageGlobal: boolean };
  cpu: CpuModel;
  config: KernelConfig;
  sections: ImageSymbols;
  physBase: bigint;
  brkEnd: bigint;
  vsyscall: VsyscallMode;
  cpus: number;
  perCpuPa: bigint[];
  ceaSlots: number[];
  espfix: { page: number; stackPa: bigint[] } | null;
  trampoline: Trampoline | null;
  /** Ranges given to kernel_physical_mapping_init(), in order, and the pfn ranges mapped. */
  directMapRanges: MapRange[];
  pfnMapped: Array<[bigint, bigint]>;
  /** Physical frames the model's page tables occupy. */
  tableFrames: number[];
  /** Physical memory in use after boot: the first MiB, the image, per-CPU areas, and everything allocated while booting. */
  reserved: PhysRange[];
  cpaLog: Array<{ what: string; va: bigint; pages: number }>;
  /** The frames past _end the high map's last PMD maps (image-tail.ts), and whether that alias was unmapped. */
  imageTail: ImageTail;
  highmapTail: 'keep' | 'unmap';
  /** Module/BPF text placed in image-tail frames (mapped in the modules area, read-only and executable). */
  tailText: TailText[];
  /** set_memory.c's state, for further set_memory_*() calls on the model (linux/cpa.ts). */
  cpa: CpaEnv;
  stats: KernelStats;
}

const PAGE = 4096n;
const PMD_BYTES = 2n * 1024n * 1024n;
const MiB = 1n << 20n;
const PMD = 1n << 21n;

/** QEMU's e820 for -m 512M (the captures): usable [4 KiB, 639 KiB) and [1 MiB, 512 MiB - 128 KiB). */
export const QEMU_512M_RAM: PhysRange[] = [
  { start: 0x1000n, end: 0x9fc00n },
  { start: 0x100000n, end: 0x1ffe0000n },
];

function resolveCmdline(c: KernelOptions['cmdline']): ParsedCmdline {
  if (c === undefined) return { params: [], initArgs: undefined };
  return typeof c === 'string' ? parseCmdline(c) : c;
}

/** Boot the model. */
export function bootKernel(opts: KernelOptions = {}): KernelModel {
  const cmd = resolveCmdline(opts.cmdline);
  const config: KernelConfig = { ...DEBIAN_61_CONFIG, ...opts.config };
  const cpu: CpuModel = { ...DEFAULT_CPU, ...opts.cpu };
  // nopcid: x86_nopcid_setup() clears X86_FEATURE_PCID; with a value it returns -EINVAL and the feature stays (cpu/common.c)
  if (cmd.params.some((p) => p.name === 'nopcid' && p.value === null)) cpu.pcid = false;
  const levels: 4 | 5 = opts.levels ?? (cpu.la57 ? 5 : 4);
  if (levels === 5 && !cpu.la57) throw new BootError('cpu', '5-level paging needs a CPU with LA57');
  const cpus = opts.cpus ?? 1;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 8192) throw new BootError('cpus', `cpus: expected 1..8192, found ${cpus}`);
  const seed = opts.seed ?? 0;

  // Command line: nopcid (above), pti=, vsyscall=, [no]gbpages, nokaslr, rodata=, debug_pagealloc=.
  const ptiMode = opts.pti ?? ptiModeFromCmdline(cmd.params);
  const pti = config.pageTableIsolation && ptiEnabled(ptiMode, cpu.meltdown);
  const vs = lastParam(cmd, 'vsyscall')?.value;
  const vsyscall: VsyscallMode = vs === 'emulate' || vs === 'xonly' || vs === 'none' ? vs : config.vsyscall;
  let directGbpages = config.directGbpages;
  if (hasParam(cmd, 'gbpages')) directGbpages = true; // init.c parse_direct_gbpages_on()
  if (hasParam(cmd, 'nogbpages')) directGbpages = false;
  const rodata = lastParam(cmd, 'rodata')?.value !== 'off';
  const dp = lastParam(cmd, 'debug_pagealloc')?.value;
  const debugPagealloc = dp === undefined ? config.debugPagealloc : dp === 'on';

  const ram = opts.ram ?? opts.iomem?.systemRam() ?? QEMU_512M_RAM;
  if (ram.length === 0) throw new BootError('ram', 'no RAM ranges');
  const memblock = memblockMemory(ram);
  const maxPhys = memblock[memblock.length - 1].end;

  // Layout and image placement.
  const kernelCode = opts.iomem?.kernelImage().code;
  const textPa = opts.textPa ?? kernelCode?.start ?? 0x1000000n;
  const kaslr: KaslrOption = hasParam(cmd, 'nokaslr') ? false : opts.kaslr ?? false;
  const sym0 = opts.symbols ?? debian61Symbols();
  const layout = buildLayout({
    ...opts.layoutConfig, levels, kaslr, ramBytes: maxPhys, ramRanges: ram,
    image: opts.symbols || kaslr === false || !('seed' in kaslr) ? { textVa: sym0.text, textPa } : undefined,
  });
  const sym = opts.symbols ?? debian61Symbols(layout.image.textVa);
  const physBase = layout.image.physBase;
  const paSymbol = (va: bigint) => va - layout.addrs.__START_KERNEL_map + physBase; // __pa_symbol()
  const randomized = kaslr !== false;

  // Memory in use before any page table is allocated.
  const imagePhys: PhysRange = { start: paSymbol(sym.text), end: paSymbol(sym.end) };
  // The boot loader put the image in RAM (Documentation/arch/x86/boot.rst): an image that does not
  // start in RAM (or ends before it starts) is not a machine that booted.
  if (!(imagePhys.start < imagePhys.end && memblock.some((r) => r.start <= imagePhys.start && imagePhys.start < r.end))) {
    throw new BootError('ram', `the kernel image [0x${imagePhys.start.toString(16)}, 0x${imagePhys.end.toString(16)}) does not start in RAM (${memblock.map((r) => `0x${r.start.toString(16)}-0x${r.end.toString(16)}`).join(', ')})`);
  }
  const reserved: PhysRange[] = [{ start: 0n, end: MiB }, imagePhys]; // reserve_real_mode(): "reserve the entire first 1M"
  const boot = new BootAllocator(ram, reserved);
  const allocated: PhysRange[] = [];
  const alloc = (size: bigint, align: bigint): bigint => {
    const pa = opts.alloc ? opts.alloc(size, align) : boot.allocAligned(size, align);
    allocated.push({ start: pa, end: pa + size });
    return pa;
  };
  const unit = percpuUnitSize(sym.percpu.size, cpus);
  let perCpuPa = opts.perCpuPa;
  if (!perCpuPa) {
    const chunk = alloc(unit * BigInt(cpus), PMD); // pcpu_embed_first_chunk(): atom_size PMD_SIZE
    perCpuPa = Array.from({ length: cpus }, (_, i) => chunk + unit * BigInt(i));
  } else {
    if (perCpuPa.length < cpus) throw new BootError('cpus', `${perCpuPa.length} per-CPU area${perCpuPa.length === 1 ? '' : 's'} for ${cpus} CPUs`);
    for (const p of perCpuPa) {
      boot.reserve({ start: p, end: p + unit });
      reserved.push({ start: p, end: p + unit });
    }
  }
  for (const p of opts.espfixStackPa ?? []) boot.reserve({ start: p, end: p + PAGE }); // given pages are in use
  const blobSize = sym.realModeBlob !== undefined && sym.realModeBlobEnd !== undefined ? sym.realModeBlobEnd - sym.realModeBlob : 0n;
  const biosStart = ram.find((r) => r.start < MiB && r.end > 0x20000n)?.end; // the EBDA starts where low RAM ends
  const trampoline = blobSize > 0n ? placeTrampoline(ram, blobSize, opts.trampoline ?? { roPages: 3, textOffsetPages: 1 }, biosStart) : null;
  if (trampoline) reserved.push({ start: trampoline.base, end: trampoline.base + trampoline.size });

  const mem = new PhysMemory(52);
  const tableFrames: number[] = [];
  const allocTable: TableAllocator = () => {
    const pa = alloc(PAGE, PAGE);
    tableFrames.push(Number(pa >> 12n));
    mem.ensure(Number(pa >> 12n));
    return pa;
  };
  const root = paSymbol(sym.initTopPgt);
  if (root % (2n * PAGE) !== 0n) throw new RangeError(`init_top_pgt at 0x${root.toString(16)} is not 8 KiB aligned (PTI needs the PGD pair)`);
  mem.ensure(Number(root >> 12n));
  mem.ensure(Number(root >> 12n) + 1);
  const pt = new PageTables(mem, levels, allocTable, root);
  const masks = protMasks(cpu, pti, opts.nonGlobalKernel ?? false);
  const brkEnd = opts.brkEnd ?? defaultBrkEnd(sym, config.randomizeMemory);
  const cpa: CpaEnv = {
    pt, masks, pageOffset: layout.addrs.page_offset_base, physBase, kernelImageSize: layout.addrs.KERNEL_IMAGE_SIZE,
    text: sym.text, etext: sym.etext, startRodata: sym.startRodata, endRodata: sym.endRodata, brkEnd,
    pfnMapped: [], kernelSetToReadonly: false, splits: { pmd: 0, pud: 0 }, directPages: { k4: 0, m2: 0, g1: 0 }, log: [],
  };
  const ctx: BootContext = {
    mem, levels, layout, layoutConfig: opts.layoutConfig ?? {}, pt, sym, physBase, paSymbol, masks, cpa, cpu, config,
    pti: { enabled: pti, mode: ptiMode }, brkEnd, debugPagealloc, espfixBug: config.espfix64,
  };

  // head_64.S, __startup_64(), cleanup_highmap().
  setupHeadTables(ctx);
  earlyIoremapInit(ctx); // setup_arch() → early_ioremap_init()

  // setup_arch(): init_mem_mapping().
  const dm: DirectMapEnv = {
    mem, levels, root: Number(root), pageOffset: layout.addrs.page_offset_base, masks,
    allocTable: () => Number(pt.newTable()), e820Ram: ram,
    pageSizeMask: probePageSizeMask(cpu, directGbpages, debugPagealloc), counts: cpa.directPages,
    pudIndexBase: Number((layout.addrs.page_offset_base >> 30n) & 511n), pfnMapped: cpa.pfnMapped, trace: [],
  };
  initMemMapping(dm, [imagePhys]);
  // setup_arch() → paging_init() → sparse_init(): the struct page array.
  populateVmemmap({ pt, masks, pse: cpu.pse }, layout.addrs.vmemmap_base, memblock, alloc,
    (va, level) => populate(pt, va, level, _PAGE_TABLE));

  // setup_arch(): map_vsyscall(), init_apic_mappings(), io_apic_init_mappings().
  mapVsyscall(ctx, vsyscall);
  const apic = opts.apic ?? apicFromIomem(opts.iomem);
  apicFixmaps(ctx, apic.lapic, apic.ioapics);

  // trap_init() → setup_cpu_entry_areas(): init_cea_offsets() then every possible CPU.
  const ceaSlots = opts.ceaSlots ?? ceaOffsets(cpus, randomized, seed);
  for (let c = 0; c < cpus; c++) setupCpuEntryArea(ctx, ceaSlots[c], perCpuPa[c], { dtes64: cpu.dtes64, sevEs: cpu.sevEs });

  // mm_init(): mem_init() → preallocate_vmalloc_pages(); init_espfix_bsp(); pti_init().
  preallocateVmallocPages(ctx);
  let espfix: KernelModel['espfix'] = null;
  if (config.espfix64 && sym.espfixPudPage !== undefined) {
    const page = opts.espfixPage ?? Number(kaslrGetRandomLong(seed, 'espfix') % BigInt(ESPFIX_PAGE_SPACE));
    if (!Number.isInteger(page) || page < 0 || page >= ESPFIX_PAGE_SPACE) throw new RangeError(`espfixPage: expected 0..${ESPFIX_PAGE_SPACE - 1}, found ${page}`);
    const stackPa = opts.espfixStackPa ? [...opts.espfixStackPa] : [];
    initEspfix(ctx, page, cpus, (i) => {
      if (stackPa[i] === undefined) stackPa[i] = alloc(PAGE, PAGE);
      return stackPa[i];
    });
    for (const p of opts.espfixStackPa ?? []) reserved.push({ start: p, end: p + PAGE });
    espfix = { page, stackPa };
  }
  const percpuOf = (c: number) => perCpuPa![c];
  if (pti) ptiInit(ctx, cpus, percpuOf, vsyscall);
  else if (opts.nonGlobalImage) setMemoryNonglobal(cpa, ((sym.text + PAGE - 1n) / PAGE) * PAGE, ((sym.end + PMD_BYTES - 1n) / PMD_BYTES) * PMD_BYTES); // PFN_ALIGN(_text)..ALIGN(_end, PMD_SIZE), as pti.c

  // init_IRQ() → idt_setup_apic_and_irq_gates(): idt_map_in_cea(), set_memory_ro(idt_table).
  idtMapInCea(ctx);
  idtReadOnly(ctx);
  // alternative_instructions(); do_init_real_mode(); kernel_init(): free_initmem(), mark_readonly(), pti_finalize().
  freeSmpLocks(ctx, cpus);
  if (trampoline) realModePermissions(cpa, trampoline);
  freeInitmem(ctx);
  if (rodata) markRodataRo(ctx);
  const highmapTail = opts.highmapTail ?? 'keep';
  if (highmapTail !== 'keep' && highmapTail !== 'unmap') throw new RangeError(`highmapTail: expected keep or unmap, found ${String(highmapTail)}`);
  const tail = highmapTail === 'unmap' ? unmapHighmapTail(ctx) : imageTailOf(ctx);
  const imageGlobal = pti && ptiKernelImageGlobalOk({ pcid: cpu.pcid, mode: ptiMode, k8: hasK8(cpu), randstruct: config.randstruct });
  if (pti) ptiFinalize(ctx, imageGlobal);
  // After boot: module/BPF text the page allocator placed in image-tail frames.
  const tailText = placeTailText(ctx, opts.tailText ?? [], (pa, bytes) => {
    const r = { start: pa, end: pa + bytes };
    const clash = [...reserved, ...allocated].find((x) => x.start < r.end && r.start < x.end);
    if (clash || !ram.some((x) => x.start <= r.start && r.end <= x.end)) {
      throw new RangeError(`tail text at 0x${pa.toString(16)}: ${clash ? 'the frames are already in use' : 'not RAM'}`);
    }
    reserved.push(r);
  });

  const userRoot = pti ? Number(root) + 4096 : null;
  for (const r of allocated) reserved.push(r); // not push(...allocated): its length grows with RAM (a spread is one call frame per element)
  const model: KernelModel = {
    layout, mem, levels, kernelRoot: Number(root), userRoot, pti: { enabled: pti, mode: ptiMode, kernelImageGlobal: imageGlobal },
    cpu, config, sections: sym, physBase, brkEnd, vsyscall, cpus, perCpuPa, ceaSlots, espfix, trampoline,
    directMapRanges: dm.trace, pfnMapped: cpa.pfnMapped, tableFrames, reserved, cpaLog: cpa.log ?? [], cpa,
    imageTail: tail, highmapTail, tailText,
    stats: {
      tables: { kernel: {}, user: {} }, tablePages: 0, tableBytes: 0, splits: cpa.splits,
      directMap: { k4: cpa.directPages.k4 * 4096, m2: cpa.directPages.m2 * 2097152, g1: cpa.directPages.g1 * 1073741824 },
      cpaCalls: cpa.log?.length ?? 0,
    },
  };
  tableStats(model);
  return model;
}

function imageTailOf(ctx: BootContext): ImageTail {
  return imageTail({ end: ctx.sym.end, brkEnd: ctx.brkEnd, startKernelMap: ctx.layout.addrs.__START_KERNEL_map, physBase: ctx.physBase });
}

/** init_cea_offsets(): the CPU number without KASLR, else a distinct random slot per CPU. */
export function ceaOffsets(cpus: number, kaslr: boolean, seed: number): number[] {
  if (!kaslr) return Array.from({ length: cpus }, (_, i) => i);
  const out: number[] = [];
  const used = new Set<number>();
  let n = 0;
  for (let i = 0; i < cpus; i++) {
    let slot: number;
    do slot = Number(kaslrGetRandomLong(seed, `cea${n++}`) % BigInt(CEA_MAX_SLOTS)); while (used.has(slot));
    used.add(slot);
    out.push(slot);
  }
  return out;
}

/** The local APIC ("Local APIC") and IO-APICs ("IOAPIC N") listed in /proc/iomem. */
export function apicFromIomem(iomem: Iomem | undefined): { lapic: bigint | null; ioapics: bigint[] } {
  if (!iomem) return { lapic: 0xfee00000n, ioapics: [0xfec00000n] }; // the architectural defaults (APIC_DEFAULT_PHYS_BASE, IO_APIC_DEFAULT_PHYS_BASE)
  const lapic = iomem.find('Local APIC')[0]?.start ?? null;
  const io = [...iomem.nodes()].filter((n) => /^IOAPIC \d+$/.test(n.name))
    .sort((a, b) => Number(a.name.slice(7)) - Number(b.name.slice(7)))
    .map((n) => n.start & ~(PAGE - 1n));
  return { lapic: lapic === null ? null : lapic & ~(PAGE - 1n), ioapics: io };
}
