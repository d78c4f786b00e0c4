/**
 * The x86-64 kernel address-space regions as ONE table, in the order and with the names of
 * Linux 6.1 `arch/x86/mm/dump_pagetables.c` `address_markers[]`, filled from a layout object
 * the way `pt_dump_init()` fills the runtime bases. ptdump prints these as `---[ Name ]---`;
 * a Linux layout model or a UI lane list can reuse the same table.
 *
 * The order is the kernel's enum order, not address order: with 5-level paging the LDT remap
 * (0xff90...) comes before the direct map (0xff11...) in the table, and the kernel's dumper
 * (which only ever looks at the next marker) prints them in exactly that odd way. Kept as is.
 *
 * Configuration assumed (the Debian 6.1 kernel of the captures): CONFIG_MODIFY_LDT_SYSCALL=y,
 * CONFIG_X86_ESPFIX64=y, CONFIG_EFI=y, CONFIG_KASAN=n, CONFIG_RANDOMIZE_BASE=y.
 */

export interface KernelLayout {
  /** 4- or 5-level paging (CR4.LA57). */
  levels: 4 | 5;
  /** PAGE_OFFSET: the direct map (`page_offset_base`). */
  page_offset_base: bigint;
  /** VMALLOC_START (`vmalloc_base`). */
  vmalloc_base: bigint;
  /** VMEMMAP_START (`vmemmap_base`). */
  vmemmap_base: bigint;
  /** FIXADDR_START; depends on the kernel's fixmap enum (default: the Debian 6.1 config, below). */
  fixaddr_start?: bigint;
  /** KERNEL_IMAGE_SIZE: 1 GiB with CONFIG_RANDOMIZE_BASE, else 512 MiB (page_64_types.h). */
  kernel_image_size?: bigint;
}

export interface AddressMarker {
  /** First address of the region (the kernel's `start_address`); 2^64-1 ends the table. */
  start: bigint;
  name: string;
  /** Print at most this many lines in the region (0: no limit) — the kernel's `max_lines`. */
  maxLines: number;
}

const M64 = (1n << 64n) - 1n;
/** A negative C `unsigned long` constant as its 64-bit value. */
const u64 = (v: bigint): bigint => v & M64;

export const P4D_SHIFT = 39n; // pgtable_64_types.h: P4D_SHIFT is 39 with 4- and 5-level paging
export const START_KERNEL_MAP = 0xffffffff80000000n; // page_64_types.h: __START_KERNEL_map
export const MODULES_END = 0xffffffffff000000n; // pgtable_64_types.h: MODULES_END
export const VSYSCALL_ADDR = u64(-10n << 20n); // uapi/asm/vsyscall.h: 0xffffffffff600000
/** fixmap.h: FIXADDR_TOP = round_up(VSYSCALL_ADDR + PAGE_SIZE, PMD_SIZE) - PAGE_SIZE. */
export const FIXADDR_TOP = ((VSYSCALL_ADDR + 0x1000n + 0x1fffffn) & ~0x1fffffn) - 0x1000n;
/**
 * __end_of_permanent_fixed_addresses for the Debian 6.1 config (fixmap.h enum fixed_addresses):
 * VSYSCALL_PAGE = (FIXADDR_TOP - VSYSCALL_ADDR) >> 12 = 511, FIX_DBGP_BASE 512,
 * FIX_EARLYCON_MEM_BASE 513, FIX_APIC_BASE 514, FIX_IO_APIC_BASE_0..+MAX_IO_APICS(128)-1 =
 * 515..642, FIX_PARAVIRT_BOOTMAP 643 (PARAVIRT_XXL), FIX_APEI_GHES_IRQ 644, _NMI 645 -> 646.
 * (The captures confirm the APIC at slot 514 and the IO-APIC at 515.)
 */
export const DEBIAN_61_FIXMAP_PERMANENT_SLOTS = 646n;

/** The kernel's `address_markers[]` for x86-64, filled from `layout` (pt_dump_init()). */
export function addressMarkers(layout: KernelLayout): AddressMarker[] {
  const l5 = layout.levels === 5;
  // ldt.h: LDT_PGD_ENTRY is -112 (5-level) or -240 (4-level); LDT_BASE_ADDR = entry << PGDIR_SHIFT.
  const pgdirShift = l5 ? 48n : 39n;
  const ldtBase = u64((l5 ? -112n : -240n) << pgdirShift);
  const cpuEntryArea = u64(-4n << P4D_SHIFT); // pgtable_64_types.h: CPU_ENTRY_AREA_PGD -4
  const espfix = u64(-2n << P4D_SHIFT); // pgtable_64_types.h: ESPFIX_PGD_ENTRY -2
  const efiVaEnd = u64(-68n * (1n << 30n)); // pgtable_64_types.h: EFI_VA_END = -68 GiB
  const imageSize = layout.kernel_image_size ?? 1n << 30n;
  const fixaddrStart = layout.fixaddr_start ?? FIXADDR_TOP - (DEBIAN_61_FIXMAP_PERMANENT_SLOTS << 12n);
  return [
    { start: 0n, name: 'User Space', maxLines: 0 },
    { start: 1n << 63n, name: 'Kernel Space', maxLines: 0 },
    { start: ldtBase, name: 'LDT remap', maxLines: 0 },
    { start: layout.page_offset_base, name: 'Low Kernel Mapping', maxLines: 0 },
    { start: layout.vmalloc_base, name: 'vmalloc() Area', maxLines: 0 },
    { start: layout.vmemmap_base, name: 'Vmemmap', maxLines: 0 },
    { start: cpuEntryArea, name: 'CPU entry Area', maxLines: 0 },
    { start: espfix, name: 'ESPfix Area', maxLines: 16 }, // dump_pagetables.c: { ESPFIX_BASE_ADDR, "ESPfix Area", 16 }
    { start: efiVaEnd, name: 'EFI Runtime Services', maxLines: 0 },
    { start: START_KERNEL_MAP, name: 'High Kernel Mapping', maxLines: 0 },
    { start: START_KERNEL_MAP + imageSize, name: 'Modules', maxLines: 0 }, // MODULES_VADDR
    { start: MODULES_END, name: 'End Modules', maxLines: 0 },
    { start: fixaddrStart, name: 'Fixmap Area', maxLines: 0 },
    { start: M64, name: '', maxLines: 0 }, // END_OF_SPACE_NR: { -1, NULL }
  ];
}

/** The layout from a capture's `kernel_values` (hex strings) and its paging depth. */
export function layoutFromKernelValues(levels: 4 | 5, values: Record<string, string> | undefined): KernelLayout {
  const get = (k: string, dflt: bigint): bigint => {
    const v = values?.[k];
    return typeof v === 'string' && /^0x[0-9a-fA-F]{1,16}$/.test(v) ? BigInt(v) : dflt;
  };
  // Defaults are the non-KASLR bases (Documentation/x86/x86_64/mm.rst).
  return levels === 5
    ? { levels, page_offset_base: get('page_offset_base', 0xff11000000000000n), vmalloc_base: get('vmalloc_base', 0xffa0000000000000n), vmemmap_base: get('vmemmap_base', 0xffd4000000000000n) }
    : { levels, page_offset_base: get('page_offset_base', 0xffff888000000000n), vmalloc_base: get('vmalloc_base', 0xffffc90000000000n), vmemmap_base: get('vmemmap_base', 0xffffea0000000000n) };
}
