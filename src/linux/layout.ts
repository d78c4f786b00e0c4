/**
 * The x86-64 kernel virtual memory map of Linux 6.1 (Documentation/x86/x86_64/mm.rst) as a
 * table of named regions that tiles the whole 64-bit space, for 4- and 5-level paging, with
 * the KASLR-randomized bases of the direct map, vmalloc and vmemmap (src/linux/kaslr.ts).
 *
 * The ptdump address markers (arch/x86/mm/dump_pagetables.c address_markers[]), the UI lanes
 * and `regionOf()` all read this one table. Constants are the 6.1 headers' values:
 * arch/x86/include/asm/page_64_types.h, pgtable_64_types.h, fixmap.h, kasan.h, uapi vsyscall.h.
 *
 * Addresses are BigInt in the table; `regionIndexOfHalves()` is the allocation-free lookup for
 * hot paths (u32 halves, binary search over typed arrays).
 */
import { BootError } from './boot-error.ts';
import {
  CPU_ENTRY_AREA_BASE, DEFAULT_PHYSICAL_PADDING_TB, MAX_PHYSMEM_BITS, PAGE_OFFSET_BASE_L4, PAGE_OFFSET_BASE_L5,
  TB_SHIFT, VMALLOC_SIZE_TB, chooseRandomLocation, kaslrGetRandomLong, kaslrRegionSizesTb, kernelRandomizeMemory,
  loadPhysicalAddr, type MemRange,
} from './kaslr.ts';

const U64 = 1n << 64n;
const neg = (n: bigint) => (U64 + n) % U64; // two's complement, as the kernel's -N UL constants
const GiB = 1n << 30n;
const MiB = 1n << 20n;
const PAGE_SIZE = 4096n;

// arch/x86/include/asm/pgtable_64_types.h
const P4D_SHIFT = 39n;
const P4D_SIZE = 1n << P4D_SHIFT;
const pgdirShift = (levels: 4 | 5) => (levels === 5 ? 48n : 39n); // PGDIR_SHIFT = pgdir_shift
export const VMALLOC_BASE_L4 = 0xffffc90000000000n; // __VMALLOC_BASE_L4
export const VMALLOC_BASE_L5 = 0xffa0000000000000n; // __VMALLOC_BASE_L5
export const VMEMMAP_BASE_L4 = 0xffffea0000000000n; // __VMEMMAP_BASE_L4
export const VMEMMAP_BASE_L5 = 0xffd4000000000000n; // __VMEMMAP_BASE_L5
export { PAGE_OFFSET_BASE_L4, PAGE_OFFSET_BASE_L5, CPU_ENTRY_AREA_BASE };
export const ESPFIX_BASE_ADDR = neg(-2n << P4D_SHIFT); // ESPFIX_PGD_ENTRY -2 << P4D_SHIFT
export const EFI_VA_START = neg(-4n * GiB); // ( -4 * (1UL << 30))
export const EFI_VA_END = neg(-68n * GiB); // (-68 * (1UL << 30))
export const MODULES_END = 0xffffffffff000000n; // without CONFIG_DEBUG_KMAP_LOCAL_FORCE_MAP
// arch/x86/include/asm/page_64_types.h
export const START_KERNEL_MAP = 0xffffffff80000000n; // __START_KERNEL_map
// arch/x86/include/uapi/asm/vsyscall.h: VSYSCALL_ADDR = -10UL << 20
export const VSYSCALL_ADDR = neg(-10n << 20n);
// arch/x86/include/asm/fixmap.h: FIXADDR_TOP = round_up(VSYSCALL_ADDR + PAGE_SIZE, 1 << PMD_SHIFT) - PAGE_SIZE
export const FIXADDR_TOP = ((VSYSCALL_ADDR + PAGE_SIZE + 2n * MiB - 1n) / (2n * MiB)) * (2n * MiB) - PAGE_SIZE;
// arch/x86/include/asm/kasan.h with CONFIG_KASAN_SHADOW_OFFSET 0xdffffc0000000000, scale shift 3
const KASAN_SHADOW_OFFSET = 0xdffffc0000000000n;

export type RegionKind = 'user' | 'kernel' | 'hole' | 'noncanonical';

export interface Region {
  /** Stable identifier: 'direct_map', 'vmalloc', ..., or 'hole' for unused gaps. */
  id: string;
  /** mm.rst's description. */
  name: string;
  kind: RegionKind;
  start: bigint;
  /** Exclusive. */
  end: bigint;
}

/** The configuration choices that move region boundaries (Kconfig of the kernel modelled). */
export interface LayoutConfig {
  /** CONFIG_KASAN: KASAN shadow region, and no memory KASLR (kaslr_memory_enabled()). */
  kasan?: boolean;
  /** CONFIG_RANDOMIZE_BASE: KERNEL_IMAGE_SIZE 1 GiB instead of 512 MiB (default true). */
  randomizeBase?: boolean;
  /** CONFIG_RANDOMIZE_MEMORY_PHYSICAL_PADDING in TiB (default 10). */
  physicalPaddingTb?: number;
  /** CONFIG_PHYSICAL_START / CONFIG_PHYSICAL_ALIGN (defaults 0x1000000 / 0x200000). */
  physicalStart?: bigint;
  physicalAlign?: bigint;
  /** The fixmap enum's optional members (arch/x86/include/asm/fixmap.h); defaults: Debian 6.1. */
  fixmap?: FixmapConfig;
}

export interface FixmapConfig {
  vsyscallEmulation?: boolean; // CONFIG_X86_VSYSCALL_EMULATION (y)
  ohci1394DmaInit?: boolean; // CONFIG_PROVIDE_OHCI1394_DMA_INIT (n)
  localApic?: boolean; // CONFIG_X86_LOCAL_APIC (y)
  ioApic?: boolean; // CONFIG_X86_IO_APIC (y)
  paravirtXxl?: boolean; // CONFIG_PARAVIRT_XXL (y)
  intelMid?: boolean; // CONFIG_X86_INTEL_MID (n)
  apeiGhes?: boolean; // CONFIG_ACPI_APEI_GHES (y)
  intelTxt?: boolean; // CONFIG_INTEL_TXT (y)
}

export type KaslrOption =
  | false
  | { seed: number | bigint }
  | { page_offset_base: bigint | string; vmalloc_base: bigint | string; vmemmap_base: bigint | string };

export interface LayoutOptions extends LayoutConfig {
  levels: 4 | 5;
  /** false (nokaslr), a seed, or bases read from a running kernel. Default false. */
  kaslr?: KaslrOption;
  /** max_pfn << PAGE_SHIFT: end of the highest RAM range (sizes the randomized direct map); default 512 MiB. */
  ramBytes?: number | bigint;
  /** Usable RAM ranges for physical image placement (default [1 MiB, ramBytes)). */
  ramRanges?: MemRange[];
  /** Decompressed image size, output_size (default: 64 MiB). */
  imageSize?: bigint;
  /** The image's placement when known (from a System.map / capture): VA and PA of _text. */
  image?: { textVa: bigint | string; textPa: bigint | string };
}

export interface KernelImage {
  /** VA and PA of _text; phys_base = textPa - (textVa - __START_KERNEL_map). */
  textVa: bigint;
  textPa: bigint;
  physBase: bigint;
}

/** Named addresses, as the kernel's macros and variables call them. */
export interface LayoutAddrs {
  page_offset_base: bigint;
  vmalloc_base: bigint;
  vmemmap_base: bigint;
  VMALLOC_END: bigint; // inclusive, as the macro
  LDT_BASE_ADDR: bigint;
  GUARD_HOLE_BASE_ADDR: bigint;
  GUARD_HOLE_END_ADDR: bigint;
  KASAN_SHADOW_START?: bigint;
  KASAN_SHADOW_END?: bigint;
  CPU_ENTRY_AREA_BASE: bigint;
  ESPFIX_BASE_ADDR: bigint;
  EFI_VA_END: bigint;
  EFI_VA_START: bigint;
  __START_KERNEL_map: bigint;
  KERNEL_IMAGE_SIZE: bigint;
  MODULES_VADDR: bigint;
  MODULES_END: bigint;
  FIXADDR_TOT_START: bigint;
  FIXADDR_START: bigint;
  FIXADDR_TOP: bigint;
  VSYSCALL_ADDR: bigint;
  TASK_SIZE_MAX: bigint;
}

export interface LinuxLayout {
  levels: 4 | 5;
  kaslr: boolean;
  addrs: LayoutAddrs;
  /** Every address belongs to exactly one region; sorted by start. */
  regions: Region[];
  image: KernelImage;
  /** Sizes of the three randomized regions in TiB (the kaslr.c sizing when randomized). */
  sizeTb: { direct: bigint; vmalloc: bigint; vmemmap: bigint };
  regionOf(va: bigint): Region;
  /** Allocation-free: index into `regions` of the region holding hi:lo. */
  regionIndexOfHalves(lo: number, hi: number): number;
  byId(id: string): Region | undefined;
}

/**
 * fixmap.h enum fixed_addresses on x86-64, member -> index. VSYSCALL_PAGE comes first, at
 * (FIXADDR_TOP - VSYSCALL_ADDR) >> PAGE_SHIFT (511); fix_to_virt(i) = FIXADDR_TOP - (i << PAGE_SHIFT).
 * Also returns __end_of_permanent_fixed_addresses (FIXADDR_SIZE in pages) and __end_of_fixed_addresses.
 */
export function fixmapEnum(cfg: FixmapConfig = {}): { index: Map<string, number>; endPermanent: number; end: number } {
  const on = (v: boolean | undefined, dflt: boolean) => v ?? dflt;
  const index = new Map<string, number>();
  let idx = 0;
  const add = (name: string, count = 1) => { index.set(name, idx); idx += count; };
  if (on(cfg.vsyscallEmulation, true)) { idx = Number((FIXADDR_TOP - VSYSCALL_ADDR) >> 12n); add('VSYSCALL_PAGE'); }
  add('FIX_DBGP_BASE');
  add('FIX_EARLYCON_MEM_BASE');
  if (on(cfg.ohci1394DmaInit, false)) add('FIX_OHCI1394_BASE');
  if (on(cfg.localApic, true)) add('FIX_APIC_BASE');
  if (on(cfg.ioApic, true)) add('FIX_IO_APIC_BASE_0', 128); // .. + MAX_IO_APICS - 1; MAX_IO_APICS 128 on 64-bit (apicdef.h)
  if (on(cfg.paravirtXxl, true)) add('FIX_PARAVIRT_BOOTMAP');
  if (on(cfg.intelMid, false)) add('FIX_LNW_VRTC');
  if (on(cfg.apeiGhes, true)) { add('FIX_APEI_GHES_IRQ'); add('FIX_APEI_GHES_NMI'); }
  const endPermanent = idx;
  // 512 boot-time early_ioremap slots, placed so that they sit in one PTE page:
  // FIX_BTMAP_END = (end ^ (end + TOTAL - 1)) & -PTRS_PER_PTE ? end + TOTAL - (end & (TOTAL - 1)) : end
  const TOTAL = 512;
  idx = ((endPermanent ^ (endPermanent + TOTAL - 1)) & -512) !== 0
    ? endPermanent + TOTAL - (endPermanent & (TOTAL - 1)) : endPermanent;
  add('FIX_BTMAP_END', TOTAL); // FIX_BTMAP_BEGIN = FIX_BTMAP_END + TOTAL_FIX_BTMAPS - 1
  if (on(cfg.intelTxt, true)) add('FIX_TBOOT_BASE');
  return { index, endPermanent, end: idx };
}

/** fixmap.h __fix_to_virt(x) = FIXADDR_TOP - (x << PAGE_SHIFT). */
export function fixToVirt(idx: number): bigint {
  return FIXADDR_TOP - (BigInt(idx) << 12n);
}

function toBig(v: bigint | string | number, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(v)) throw new RangeError(`${what}: expected a hex address, found ${JSON.stringify(v)}`);
  return BigInt(v.startsWith('0x') ? v : '0x' + v);
}

/** Build the layout of one boot. */
export function buildLayout(opts: LayoutOptions): LinuxLayout {
  const levels = opts.levels;
  if (levels !== 4 && levels !== 5) throw new RangeError(`levels: expected 4 or 5, found ${String(levels)}`);
  const kasan = opts.kasan ?? false;
  const ramBytes = BigInt(opts.ramBytes ?? 512n * MiB);
  const paddingTb = BigInt(opts.physicalPaddingTb ?? Number(DEFAULT_PHYSICAL_PADDING_TB));
  const kernelImageSize = (opts.randomizeBase ?? true) ? GiB : 512n * MiB; // page_64_types.h KERNEL_IMAGE_SIZE
  const shift = pgdirShift(levels);

  const defaults = levels === 5
    ? { page_offset_base: PAGE_OFFSET_BASE_L5, vmalloc_base: VMALLOC_BASE_L5, vmemmap_base: VMEMMAP_BASE_L5 }
    : { page_offset_base: PAGE_OFFSET_BASE_L4, vmalloc_base: VMALLOC_BASE_L4, vmemmap_base: VMEMMAP_BASE_L4 };
  let bases = defaults;
  let randomized = false;
  let sizeTb: LinuxLayout['sizeTb'] = {
    // Non-randomized: mm.rst's fixed regions (direct map 64 TB / 32 PB, vmemmap 1 TB / 0.5 PB).
    direct: levels === 5 ? 32n * 1024n : 64n,
    vmalloc: VMALLOC_SIZE_TB[levels],
    vmemmap: levels === 5 ? 512n : 1n,
  };
  const k = opts.kaslr ?? false;
  // kaslr_memory_enabled() = kaslr_enabled() && !IS_ENABLED(CONFIG_KASAN)
  if (k !== false && 'seed' in k && !kasan) {
    const r = kernelRandomizeMemory({
      levels, maxPhysAddr: ramBytes, paddingTb, randomLong: kaslrGetRandomLong(k.seed, 'Memory'),
    });
    bases = { page_offset_base: r.page_offset_base, vmalloc_base: r.vmalloc_base, vmemmap_base: r.vmemmap_base };
    sizeTb = r.size_tb;
    randomized = true;
  } else if (k !== false && 'page_offset_base' in k) {
    bases = {
      page_offset_base: toBig(k.page_offset_base, 'page_offset_base'),
      vmalloc_base: toBig(k.vmalloc_base, 'vmalloc_base'),
      vmemmap_base: toBig(k.vmemmap_base, 'vmemmap_base'),
    };
    randomized = bases.page_offset_base !== defaults.page_offset_base || bases.vmalloc_base !== defaults.vmalloc_base
      || bases.vmemmap_base !== defaults.vmemmap_base;
    if (randomized) sizeTb = kaslrRegionSizesTb(levels, ramBytes, paddingTb);
  }

  // Image placement: given, seeded (choose_random_location), or the nokaslr default.
  const align = opts.physicalAlign ?? 0x200000n;
  const load = loadPhysicalAddr(opts.physicalStart ?? 0x1000000n, align);
  let image: KernelImage;
  if (opts.image) {
    const textVa = toBig(opts.image.textVa, 'image.textVa');
    const textPa = toBig(opts.image.textPa, 'image.textPa');
    image = { textVa, textPa, physBase: textPa - (textVa - START_KERNEL_MAP) };
  } else if (k !== false && 'seed' in k) {
    const p = chooseRandomLocation({
      seed: k.seed, ram: opts.ramRanges ?? [{ start: MiB, end: ramBytes }], imageSize: opts.imageSize ?? 64n * MiB,
      physicalStart: opts.physicalStart, physicalAlign: align, kernelImageSize, levels,
    });
    const textVa = START_KERNEL_MAP + p.virtAddr;
    image = { textVa, textPa: p.physAddr, physBase: p.physAddr - p.virtAddr };
  } else {
    image = { textVa: START_KERNEL_MAP + load, textPa: load, physBase: 0n };
  }

  const fix = fixmapEnum(opts.fixmap);
  const addrs: LayoutAddrs = {
    ...bases,
    VMALLOC_END: bases.vmalloc_base + (VMALLOC_SIZE_TB[levels] << TB_SHIFT) - 1n,
    LDT_BASE_ADDR: neg(-240n << shift), // LDT_PGD_ENTRY -240UL << PGDIR_SHIFT
    GUARD_HOLE_BASE_ADDR: neg(-256n << shift), // GUARD_HOLE_PGD_ENTRY -256UL << PGDIR_SHIFT
    GUARD_HOLE_END_ADDR: neg(-256n << shift) + (16n << shift), // + GUARD_HOLE_SIZE (16 PGD slots)
    CPU_ENTRY_AREA_BASE,
    ESPFIX_BASE_ADDR,
    EFI_VA_END,
    EFI_VA_START,
    __START_KERNEL_map: START_KERNEL_MAP,
    KERNEL_IMAGE_SIZE: kernelImageSize,
    MODULES_VADDR: START_KERNEL_MAP + kernelImageSize, // MODULES_VADDR = __START_KERNEL_map + KERNEL_IMAGE_SIZE
    MODULES_END,
    FIXADDR_TOT_START: FIXADDR_TOP - (BigInt(fix.end) << 12n), // FIXADDR_TOP - FIXADDR_TOT_SIZE
    FIXADDR_START: FIXADDR_TOP - (BigInt(fix.endPermanent) << 12n), // FIXADDR_TOP - FIXADDR_SIZE
    FIXADDR_TOP,
    VSYSCALL_ADDR,
    // page_64_types.h: task_size_max() = (1UL << __VIRTUAL_MASK_SHIFT) - PAGE_SIZE
    TASK_SIZE_MAX: (1n << (levels === 5 ? 56n : 47n)) - PAGE_SIZE,
  };
  if (kasan) {
    // kasan.h: KASAN_SHADOW_START = OFFSET + ((-1UL << __VIRTUAL_MASK_SHIFT) >> 3); END = START + (1 << (shift - 3))
    const vms = levels === 5 ? 56n : 47n;
    addrs.KASAN_SHADOW_START = KASAN_SHADOW_OFFSET + (neg(-1n << vms) >> 3n);
    addrs.KASAN_SHADOW_END = addrs.KASAN_SHADOW_START + (1n << (vms - 3n));
  }
  if (addrs.FIXADDR_TOT_START < MODULES_END) throw new BootError('config', 'the fixmap of this configuration overlaps the modules area');

  const regions = tile(levels, addrs, sizeTb);
  return makeLayout(levels, randomized, addrs, regions, image, sizeTb);
}

/** The region table: the named regions of mm.rst, with holes filled in so that it tiles [0, 2^64). */
function tile(levels: 4 | 5, a: LayoutAddrs, sizeTb: LinuxLayout['sizeTb']): Region[] {
  const userEnd = 1n << (levels === 5 ? 56n : 47n); // mm.rst: 64 PB / 128 TB of user space
  const named: Region[] = [
    { id: 'user', name: 'user-space virtual memory, different per mm', kind: 'user', start: 0n, end: userEnd },
    { id: 'noncanonical', name: 'non-canonical hole', kind: 'noncanonical', start: userEnd, end: a.GUARD_HOLE_BASE_ADDR },
    { id: 'guard_hole', name: 'guard hole, also reserved for hypervisor', kind: 'hole', start: a.GUARD_HOLE_BASE_ADDR, end: a.GUARD_HOLE_END_ADDR },
    { id: 'ldt_remap', name: 'LDT remap for PTI', kind: 'kernel', start: a.LDT_BASE_ADDR, end: a.LDT_BASE_ADDR + (1n << pgdirShift(levels)) },
    { id: 'direct_map', name: 'direct mapping of all physical memory (page_offset_base)', kind: 'kernel',
      start: a.page_offset_base, end: min(a.page_offset_base + (sizeTb.direct << TB_SHIFT), a.vmalloc_base) },
    { id: 'vmalloc', name: 'vmalloc/ioremap space (vmalloc_base)', kind: 'kernel', start: a.vmalloc_base, end: a.VMALLOC_END + 1n },
    { id: 'vmemmap', name: 'virtual memory map (vmemmap_base)', kind: 'kernel',
      start: a.vmemmap_base, end: min(a.vmemmap_base + (sizeTb.vmemmap << TB_SHIFT), a.KASAN_SHADOW_START ?? a.CPU_ENTRY_AREA_BASE) },
  ];
  if (a.KASAN_SHADOW_START !== undefined && a.KASAN_SHADOW_END !== undefined) {
    named.push({ id: 'kasan_shadow', name: 'KASAN shadow memory', kind: 'kernel', start: a.KASAN_SHADOW_START, end: a.KASAN_SHADOW_END });
  }
  named.push(
    { id: 'cpu_entry_area', name: 'cpu_entry_area mapping', kind: 'kernel', start: a.CPU_ENTRY_AREA_BASE, end: a.CPU_ENTRY_AREA_BASE + P4D_SIZE },
    { id: 'espfix', name: '%esp fixup stacks', kind: 'kernel', start: a.ESPFIX_BASE_ADDR, end: a.ESPFIX_BASE_ADDR + P4D_SIZE },
    { id: 'efi', name: 'EFI region mapping space', kind: 'kernel', start: a.EFI_VA_END, end: a.EFI_VA_START },
    { id: 'kernel_text', name: 'kernel text mapping, mapped to physical address 0', kind: 'kernel',
      start: a.__START_KERNEL_map, end: a.__START_KERNEL_map + a.KERNEL_IMAGE_SIZE },
    { id: 'modules', name: 'module mapping space', kind: 'kernel', start: a.MODULES_VADDR, end: a.MODULES_END },
    { id: 'fixmap_boot', name: 'boot-time fixmap (early_ioremap slots)', kind: 'kernel', start: a.FIXADDR_TOT_START, end: a.FIXADDR_START },
    { id: 'fixmap', name: 'kernel-internal fixmap range', kind: 'kernel', start: a.FIXADDR_START, end: a.VSYSCALL_ADDR },
    { id: 'vsyscall', name: 'legacy vsyscall ABI', kind: 'kernel', start: a.VSYSCALL_ADDR, end: a.VSYSCALL_ADDR + PAGE_SIZE },
  );
  named.sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
  const out: Region[] = [];
  let at = 0n;
  for (const r of named) {
    if (r.start < at) {
      const prev = out[out.length - 1];
      throw new BootError('config', `layout: ${r.id} at 0x${r.start.toString(16)} overlaps ${prev.id} ending 0x${prev.end.toString(16)}`);
    }
    if (r.start > at) out.push({ id: 'hole', name: 'unused hole', kind: 'hole', start: at, end: r.start });
    out.push(r);
    at = r.end;
  }
  if (at < U64) out.push({ id: 'hole', name: 'unused hole', kind: 'hole', start: at, end: U64 });
  return out;
}

function makeLayout(
  levels: 4 | 5, kaslr: boolean, addrs: LayoutAddrs, regions: Region[], image: KernelImage, sizeTb: LinuxLayout['sizeTb'],
): LinuxLayout {
  const n = regions.length;
  const startHi = new Uint32Array(n);
  const startLo = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    startHi[i] = Number(regions[i].start >> 32n);
    startLo[i] = Number(regions[i].start & 0xffffffffn);
  }
  // Largest i with start[i] <= hi:lo. regions[0].start is 0, so the answer always exists.
  const regionIndexOfHalves = (lo: number, hi: number): number => {
    const h = hi >>> 0;
    const l = lo >>> 0;
    let a = 0;
    let b = n - 1;
    while (a < b) {
      const m = (a + b + 1) >>> 1;
      const sh = startHi[m];
      if (sh < h || (sh === h && startLo[m] <= l)) a = m; else b = m - 1;
    }
    return a;
  };
  const ids = new Map<string, Region>();
  for (const r of regions) if (r.id !== 'hole' && !ids.has(r.id)) ids.set(r.id, r);
  return {
    levels, kaslr, addrs, regions, image, sizeTb,
    regionIndexOfHalves,
    regionOf: (va: bigint) => {
      const v = BigInt.asUintN(64, va);
      return regions[regionIndexOfHalves(Number(v & 0xffffffffn), Number(v >> 32n))];
    },
    byId: (id: string) => ids.get(id),
  };
}

/** __va(pa) in the direct map: pa + page_offset_base. */
export function directMapVa(layout: LinuxLayout, pa: bigint): bigint {
  return layout.addrs.page_offset_base + pa;
}

/** __pa_symbol(va) for a kernel image address: va - __START_KERNEL_map + phys_base. */
export function kernelImagePa(layout: LinuxLayout, va: bigint): bigint {
  return va - START_KERNEL_MAP + layout.image.physBase;
}

/** MAXMEM = 1 << MAX_PHYSMEM_BITS (pgtable_64_types.h). */
export function maxMem(levels: 4 | 5): bigint {
  return 1n << MAX_PHYSMEM_BITS[levels];
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
