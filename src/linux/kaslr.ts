/**
 * KASLR as Linux 6.1 does it on x86-64, with a seeded PRNG in place of the boot entropy.
 *
 * - `kaslrGetRandomLong(seed, purpose)` stands in for `kaslr_get_random_long()`
 *   (arch/x86/lib/kaslr.c: RDRAND/RDTSC/i8254 mixing, not reproducible): a xoshiro128**
 *   stream seeded with splitmix32 from the seed and the purpose string, so "Physical",
 *   "Virtual" and "Memory" draws are independent of each other and deterministic per seed.
 * - `prandom*` is the kernel's own Tausworthe generator (lib/random32.c, include/linux/prandom.h)
 *   that `kernel_randomize_memory()` seeds with that long; reproduced bit for bit.
 * - `kernelRandomizeMemory()` is arch/x86/mm/kaslr.c: the bases of the direct map, vmalloc and
 *   vmemmap regions.
 * - `chooseRandomLocation()` is arch/x86/boot/compressed/kaslr.c: the image's physical and
 *   virtual placement, CONFIG_PHYSICAL_ALIGN slots.
 *
 * BigInt throughout: this runs once per layout, never per memory access.
 */

const U64 = (1n << 64n) - 1n;
export const TB_SHIFT = 40n; // arch/x86/mm/kaslr.c
export const PAGE_SHIFT = 12n;
export const PUD_SHIFT = 30n; // arch/x86/include/asm/pgtable_64_types.h
export const PUD_SIZE = 1n << PUD_SHIFT;
export const PUD_MASK = U64 & ~(PUD_SIZE - 1n);
/** sizeof(struct page) on x86-64 (64 bytes; the vmemmap sizing in kaslr.c depends on it). */
export const STRUCT_PAGE_SIZE = 64n;
/** arch/x86/include/asm/page_64_types.h: __PAGE_OFFSET_BASE_L4 / _L5. */
export const PAGE_OFFSET_BASE_L4 = 0xffff888000000000n;
export const PAGE_OFFSET_BASE_L5 = 0xff11000000000000n;
/** arch/x86/include/asm/pgtable_64_types.h: CPU_ENTRY_AREA_BASE = -4 << P4D_SHIFT; kaslr.c's vaddr_end. */
export const CPU_ENTRY_AREA_BASE = 0xfffffe0000000000n;
/** pgtable_64_types.h: VMALLOC_SIZE_TB_L4 32, VMALLOC_SIZE_TB_L5 12800. */
export const VMALLOC_SIZE_TB = { 4: 32n, 5: 12800n } as const;
/** arch/x86/include/asm/sparsemem.h: MAX_PHYSMEM_BITS = pgtable_l5_enabled() ? 52 : 46. */
export const MAX_PHYSMEM_BITS = { 4: 46n, 5: 52n } as const;
/** Kconfig default of CONFIG_RANDOMIZE_MEMORY_PHYSICAL_PADDING when MEMORY_HOTPLUG (0xa TiB). */
export const DEFAULT_PHYSICAL_PADDING_TB = 10n;

// ---------------------------------------------------------------------------------------------
// Seeded stand-in for kaslr_get_random_long(): splitmix32 -> xoshiro128**.

function splitmix32(state: Uint32Array): number {
  state[0] = (state[0] + 0x9e3779b9) >>> 0;
  let z = state[0];
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** xoshiro128** (Blackman & Vigna), 32-bit words. No Math.random anywhere. */
export class Xoshiro128 {
  private readonly s = new Uint32Array(4);

  constructor(seed: number | bigint, salt = 0) {
    const b = BigInt.asUintN(64, BigInt(seed));
    const mix = new Uint32Array([Number(b & 0xffffffffn) ^ salt]);
    const hi = Number(b >> 32n);
    for (let i = 0; i < 4; i++) this.s[i] = splitmix32(mix) ^ (i === 1 ? hi : 0);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A u64 from two draws (high word first). */
  nextU64(): bigint {
    const hi = this.nextU32();
    return (BigInt(hi) << 32n) | BigInt(this.nextU32());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** FNV-1a of the purpose string, so each purpose gets its own stream. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Stand-in for kaslr_get_random_long(purpose) (arch/x86/lib/kaslr.c): deterministic per (seed, purpose). */
export function kaslrGetRandomLong(seed: number | bigint, purpose: string): bigint {
  return new Xoshiro128(seed, fnv1a(purpose)).nextU64();
}

// ---------------------------------------------------------------------------------------------
// The kernel's prandom (Tausworthe LFSR113), lib/random32.c and include/linux/prandom.h.

export interface RndState { s1: number; s2: number; s3: number; s4: number }

/** include/linux/prandom.h: __seed(x, m) = x < m ? x + m : x. */
function seedMin(x: number, m: number): number {
  return x < m ? (x + m) >>> 0 : x;
}

/** include/linux/prandom.h prandom_seed_state(): i = (seed >> 32) ^ (seed << 10) ^ seed, truncated to u32. */
export function prandomSeedState(seed: bigint): RndState {
  const s = BigInt.asUintN(64, seed);
  const i = Number(BigInt.asUintN(32, (s >> 32n) ^ (s << 10n) ^ s));
  return { s1: seedMin(i, 2), s2: seedMin(i, 8), s3: seedMin(i, 16), s4: seedMin(i, 128) };
}

/** lib/random32.c prandom_u32_state(): TAUSWORTHE(s,a,b,c,d) = ((s & c) << d) ^ (((s << a) ^ s) >> b), on u32. */
export function prandomU32State(st: RndState): number {
  st.s1 = (((st.s1 & 4294967294) << 18) ^ ((((st.s1 << 6) ^ st.s1) >>> 0) >>> 13)) >>> 0;
  st.s2 = (((st.s2 & 4294967288) << 2) ^ ((((st.s2 << 2) ^ st.s2) >>> 0) >>> 27)) >>> 0;
  st.s3 = (((st.s3 & 4294967280) << 7) ^ ((((st.s3 << 13) ^ st.s3) >>> 0) >>> 21)) >>> 0;
  st.s4 = (((st.s4 & 4294967168) << 13) ^ ((((st.s4 << 3) ^ st.s4) >>> 0) >>> 12)) >>> 0;
  return (st.s1 ^ st.s2 ^ st.s3 ^ st.s4) >>> 0;
}

/**
 * lib/random32.c prandom_bytes_state() into an unsigned long: u32 words stored in order with
 * put_unaligned, so on little-endian x86 the first word is the low half.
 */
export function prandomBytesStateU64(st: RndState): bigint {
  const lo = prandomU32State(st);
  const hi = prandomU32State(st);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

// ---------------------------------------------------------------------------------------------
// arch/x86/mm/kaslr.c kernel_randomize_memory().

export interface MemoryRandomization {
  page_offset_base: bigint;
  vmalloc_base: bigint;
  vmemmap_base: bigint;
  /** kaslr_regions[].size_tb after sizing: direct map, vmalloc, vmemmap (in TiB). */
  size_tb: { direct: bigint; vmalloc: bigint; vmemmap: bigint };
  vaddr_start: bigint;
  vaddr_end: bigint;
  /** remain_entropy before the first draw (bytes). */
  entropy: bigint;
}

export interface MemoryRandomizationInput {
  levels: 4 | 5;
  /** max_pfn << PAGE_SHIFT: the end of the highest RAM range. */
  maxPhysAddr: bigint;
  /** CONFIG_RANDOMIZE_MEMORY_PHYSICAL_PADDING in TiB (default 10). */
  paddingTb?: bigint;
  /** The value kaslr_get_random_long("Memory") returned. */
  randomLong: bigint;
}

/** The three region sizes kernel_randomize_memory() computes before drawing (arch/x86/mm/kaslr.c). */
export function kaslrRegionSizesTb(levels: 4 | 5, maxPhysAddr: bigint, paddingTb = DEFAULT_PHYSICAL_PADDING_TB) {
  // kaslr_regions[0].size_tb = 1 << (MAX_PHYSMEM_BITS - TB_SHIFT); [1] = VMALLOC_SIZE_TB.
  let direct = 1n << (MAX_PHYSMEM_BITS[levels] - TB_SHIFT);
  const vmalloc = VMALLOC_SIZE_TB[levels];
  // memory_tb = DIV_ROUND_UP(max_pfn << PAGE_SHIFT, 1UL << TB_SHIFT) + PHYSICAL_PADDING.
  const memoryTb = divRoundUp(maxPhysAddr, 1n << TB_SHIFT) + paddingTb;
  if (memoryTb < direct) direct = memoryTb;
  // vmemmap_size = (size_tb[0] << (TB_SHIFT - PAGE_SHIFT)) * sizeof(struct page); size_tb[2] = DIV_ROUND_UP(.., 1 TiB).
  const vmemmapSize = (direct << (TB_SHIFT - PAGE_SHIFT)) * STRUCT_PAGE_SIZE;
  const vmemmap = divRoundUp(vmemmapSize, 1n << TB_SHIFT);
  return { direct, vmalloc, vmemmap };
}

export function kernelRandomizeMemory(input: MemoryRandomizationInput): MemoryRandomization {
  const { levels } = input;
  // vaddr_start = pgtable_l5_enabled() ? __PAGE_OFFSET_BASE_L5 : __PAGE_OFFSET_BASE_L4; vaddr_end = CPU_ENTRY_AREA_BASE.
  const vaddrStart = levels === 5 ? PAGE_OFFSET_BASE_L5 : PAGE_OFFSET_BASE_L4;
  const vaddrEnd = CPU_ENTRY_AREA_BASE;
  const size = kaslrRegionSizesTb(levels, input.maxPhysAddr, input.paddingTb ?? DEFAULT_PHYSICAL_PADDING_TB);
  const sizes = [size.direct, size.vmalloc, size.vmemmap];
  const padding = (tb: bigint) => tb << TB_SHIFT; // get_padding()

  // remain_entropy = vaddr_end - vaddr_start - sum(padding)
  let remain = vaddrEnd - vaddrStart;
  for (const tb of sizes) remain -= padding(tb);
  const entropy0 = remain;

  const state = prandomSeedState(input.randomLong); // prandom_seed_state(&rand_state, kaslr_get_random_long("Memory"))
  const bases: bigint[] = [];
  let vaddr = vaddrStart;
  for (let i = 0; i < 3; i++) {
    // entropy = remain_entropy / (ARRAY_SIZE(kaslr_regions) - i)
    let entropy = remain / BigInt(3 - i);
    const rand = prandomBytesStateU64(state);
    // entropy = (rand % (entropy + 1)) & PUD_MASK  — 1 GiB granularity for 4- and 5-level alike
    entropy = (rand % (entropy + 1n)) & PUD_MASK;
    vaddr = BigInt.asUintN(64, vaddr + entropy);
    bases.push(vaddr);
    // vaddr += get_padding(); vaddr = round_up(vaddr + 1, PUD_SIZE)
    vaddr = BigInt.asUintN(64, vaddr + padding(sizes[i]));
    vaddr = roundUp(vaddr + 1n, PUD_SIZE);
    remain -= entropy;
  }
  return {
    page_offset_base: bases[0], vmalloc_base: bases[1], vmemmap_base: bases[2],
    size_tb: size, vaddr_start: vaddrStart, vaddr_end: vaddrEnd, entropy: entropy0,
  };
}

// ---------------------------------------------------------------------------------------------
// arch/x86/boot/compressed/kaslr.c: where the decompressor puts the image.

export interface MemRange { start: bigint; end: bigint } // end exclusive

export interface ImagePlacementInput {
  seed: number | bigint;
  /** Usable RAM (the E820_TYPE_RAM entries). */
  ram: MemRange[];
  /** output_size: the decompressed image plus relocations (bytes). */
  imageSize: bigint;
  /** Ranges the decompressor must avoid (its own run space, initrd, cmdline, boot_params). */
  avoid?: MemRange[];
  /** CONFIG_PHYSICAL_START (default 0x1000000) and CONFIG_PHYSICAL_ALIGN (default 0x200000). */
  physicalStart?: bigint;
  physicalAlign?: bigint;
  /** KERNEL_IMAGE_SIZE (1 GiB with CONFIG_RANDOMIZE_BASE). */
  kernelImageSize?: bigint;
  /** The buffer the boot loader gave (*output); default LOAD_PHYSICAL_ADDR. */
  output?: bigint;
  levels?: 4 | 5;
}

export interface ImagePlacement {
  /** Physical address the image was decompressed to (the PA of _text). */
  physAddr: bigint;
  /** virt_addr: offset of _text from __START_KERNEL_map. */
  virtAddr: bigint;
  /** How many physical and virtual slots there were to choose from. */
  physSlots: bigint;
  virtSlots: bigint;
}

const MAX_SLOT_AREA = 100; // arch/x86/boot/compressed/kaslr.c

/** LOAD_PHYSICAL_ADDR = ALIGN(CONFIG_PHYSICAL_START, CONFIG_PHYSICAL_ALIGN) (arch/x86/include/asm/boot.h). */
export function loadPhysicalAddr(physicalStart = 0x1000000n, physicalAlign = 0x200000n): bigint {
  return roundUp(physicalStart, physicalAlign);
}

/**
 * choose_random_location(): physical slot from the RAM ranges (find_random_phys_addr ->
 * process_e820_entries -> __process_mem_region -> slots_fetch_random), then the virtual slot
 * (find_random_virt_addr). Not modelled: EFI memmap preference, immovable-memory filtering,
 * 1 GiB hugepage skipping, memmap=/mem= limits.
 */
export function chooseRandomLocation(input: ImagePlacementInput): ImagePlacement {
  const align = input.physicalAlign ?? 0x200000n;
  const load = loadPhysicalAddr(input.physicalStart ?? 0x1000000n, align);
  const kernelImageSize = input.kernelImageSize ?? 1n << 30n;
  const imageSize = input.imageSize;
  const memLimit = 1n << MAX_PHYSMEM_BITS[input.levels ?? 4]; // mem_limit = MAXMEM on 64-bit
  const avoid = input.avoid ?? [];

  // min_addr = ALIGN(min(*output, 512M), CONFIG_PHYSICAL_ALIGN)
  const output = input.output ?? load;
  const minimum = roundUp(output < 512n << 20n ? output : 512n << 20n, align);

  const slots: { addr: bigint; num: bigint }[] = [];
  let slotMax = 0n;
  const store = (start: bigint, size: bigint) => { // store_slot_info()
    if (slots.length === MAX_SLOT_AREA) return;
    const num = 1n + (size - imageSize) / align;
    slots.push({ addr: start, num });
    slotMax += num;
  };
  if (minimum + imageSize <= memLimit) {
    for (const r of input.ram) {
      // __process_mem_region(): enforce minimum and mem_limit, then clip around avoided ranges.
      let start = r.start > minimum ? r.start : minimum;
      const regionEnd = r.end < memLimit ? r.end : memLimit;
      while (slots.length < MAX_SLOT_AREA) {
        start = roundUp(start, align);
        if (start > regionEnd) break;
        let size = regionEnd - start;
        if (size < imageSize) break;
        let overlap: MemRange | undefined;
        for (const a of avoid) {
          if (a.end > start && a.start < start + size && (!overlap || a.start < overlap.start)) overlap = a;
        }
        if (!overlap) { store(start, size); break; }
        if (overlap.start >= start + imageSize) { size = overlap.start - start; store(start, size); }
        start = overlap.end;
      }
    }
  }
  let physAddr = output; // "Physical KASLR disabled: no suitable memory region!" keeps *output
  if (slotMax > 0n) {
    let slot = kaslrGetRandomLong(input.seed, 'Physical') % slotMax; // slots_fetch_random()
    for (const s of slots) {
      if (slot >= s.num) { slot -= s.num; continue; }
      physAddr = s.addr + slot * align;
      break;
    }
  }
  // find_random_virt_addr(LOAD_PHYSICAL_ADDR, output_size):
  // slots = 1 + (KERNEL_IMAGE_SIZE - minimum - image_size) / CONFIG_PHYSICAL_ALIGN
  const virtSlots = 1n + (kernelImageSize - load - imageSize) / align;
  const virtAddr = (kaslrGetRandomLong(input.seed, 'Virtual') % virtSlots) * align + load;
  return { physAddr, virtAddr, physSlots: slotMax, virtSlots };
}

export function divRoundUp(n: bigint, d: bigint): bigint {
  return (n + d - 1n) / d;
}

export function roundUp(n: bigint, a: bigint): bigint {
  return BigInt.asUintN(64, ((n + a - 1n) / a) * a);
}
