/**
 * Building and editing x86-64 page tables in simulated memory: map, split, share and
 * clear entries at any level. This is what an OS model (linux/) uses to lay down real tables
 * that the walker then reads; it knows nothing of Linux.
 *
 * Addresses here are BigInt: this is set-up code, called per mapping, never per access (entryAddr,
 * the walk under every mapping, runs on u32 halves inside).
 * Entries are written as two u32 halves like everything else in memory.
 *
 * Entry formats: SDM Vol. 3A tables 4-14..4-20. A large leaf keeps PAT in bit 12; a 4 KiB
 * PTE keeps it in bit 7, so splitting moves it (as the kernel's split_large_page() does
 * with pgprot_large_2_4k(), arch/x86/mm/pat/set_memory.c).
 */
import type { PhysMemory } from '../phys/memory.ts';
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US } from './bits.ts';

export const SIZE_4K = 1n << 12n;
export const SIZE_2M = 1n << 21n;
export const SIZE_1G = 1n << 30n;

const ADDR_MASK = 0x000ffffffffff000n; // bits 51:12
const PAT_LARGE = 1n << 12n;
const PAT_4K = 1n << 7n;

/** Level that maps a page of this size: 1 (PTE), 2 (PDE), 3 (PDPTE). */
export function levelOfSize(size: bigint): number {
  if (size === SIZE_4K) return 1;
  if (size === SIZE_2M) return 2;
  if (size === SIZE_1G) return 3;
  throw new RangeError(`not a page size: ${size}`);
}

export function sizeOfLevel(level: number): bigint {
  return 1n << BigInt(12 + 9 * (level - 1));
}

/** Index of `va` in its table at `level`. */
export function indexAt(va: bigint, level: number): number {
  return Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
}

const TWO32 = 4294967296;

/** indexAt() of the address whose u32 halves are `lo`, `hi` (bits 12+9(level-1) up, 9 of them). */
function indexOfHalves(lo: number, hi: number, level: number): number {
  switch (level) {
    case 1: return (lo >>> 12) & 511;
    case 2: return (lo >>> 21) & 511;
    case 3: return ((lo >>> 30) | (hi << 2)) & 511;
    case 4: return (hi >>> 7) & 511;
    default: return (hi >>> 16) & 511;
  }
}

/** Canonical form of a 48- or 57-bit address (sign-extended). */
export function canonical(va: bigint, levels: number): bigint {
  const bits = BigInt(12 + 9 * levels);
  return BigInt.asIntN(Number(bits), va) & 0xffffffffffffffffn;
}

/** Flags a kernel gives a non-leaf entry: _KERNPG_TABLE, or _PAGE_TABLE (with U/S) for user (arch/x86/include/asm/pgtable_types.h). */
export const KERNPG_TABLE = BigInt(PTE_P | PTE_RW | PTE_A | PTE_D);
export const USER_TABLE = BigInt(PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D);

/** Allocates one zeroed 4 KiB frame for a paging structure and returns its physical address. */
export type TableAllocator = () => bigint;

export interface PageTableStats {
  tables: number;
  splits: number;
}

export class PageTables {
  readonly root: bigint;
  readonly stats: PageTableStats = { tables: 0, splits: 0 };

  constructor(
    readonly mem: PhysMemory,
    readonly levels: 4 | 5,
    private readonly alloc: TableAllocator,
    root?: bigint,
  ) {
    this.root = root ?? this.newTable();
  }

  newTable(): bigint {
    const pa = this.alloc();
    this.stats.tables++;
    return pa;
  }

  read(pa: bigint): bigint {
    return this.mem.read64Big(Number(pa));
  }

  write(pa: bigint, value: bigint): void {
    this.mem.write64Big(Number(pa), value);
  }

  /**
   * Physical address of the entry for `va` at `level`, creating (and splitting) tables above it.
   * The walk itself runs on u32 halves (it is what every mapping of a world's build does: a
   * BigInt per level showed up as ~5% of building a 1 TiB host's tenants); split() stays BigInt.
   */
  entryAddr(va: bigint, level: number, tableFlags: bigint = KERNPG_TABLE): bigint {
    const mem = this.mem;
    const vaLo = Number(va & 0xffffffffn);
    const vaHi = Number((va >> 32n) & 0xffffffffn);
    const flagsLo = Number(tableFlags & 0xffffffffn);
    const flagsHi = Number((tableFlags >> 32n) & 0xffffffffn);
    let table = Number(this.root);
    for (let l = this.levels; l > level; l--) {
      const ea = table + indexOfHalves(vaLo, vaHi, l) * 8;
      let lo = mem.read32(ea);
      let hi = mem.read32(ea + 4);
      if ((lo & PTE_P) === 0) {
        const t = Number(this.newTable());
        lo = ((t % TWO32) | flagsLo) >>> 0;
        hi = (Math.floor(t / TWO32) | flagsHi) >>> 0;
        mem.write64(ea, lo, hi);
      } else if (l <= 3 && (lo & PTE_PS) !== 0) {
        const e = this.split(BigInt(ea), l);
        lo = Number(e & 0xffffffffn);
        hi = Number(e >> 32n);
      } else if ((flagsLo & PTE_US) !== 0 && (lo & PTE_US) === 0) {
        // A user mapping below a kernel-only table entry needs U/S on the path (SDM 4.6.1 folding).
        lo = (lo | PTE_US) >>> 0;
        mem.write64(ea, lo, hi);
      }
      table = ((lo & 0xfffff000) >>> 0) + (hi & 0x000fffff) * TWO32; // bits 51:12
    }
    return BigInt(table + indexOfHalves(vaLo, vaHi, level) * 8);
  }

  /** Entry for `va` at `level` without creating anything; null if the path is absent or a larger leaf covers it. */
  findEntry(va: bigint, level: number): { addr: bigint; value: bigint } | null {
    let table = this.root;
    for (let l = this.levels; l > level; l--) {
      const ea = table + BigInt(indexAt(va, l) * 8);
      const e = this.read(ea);
      if ((e & 1n) === 0n || (l <= 3 && (e & BigInt(PTE_PS)) !== 0n)) return null;
      table = e & ADDR_MASK;
    }
    const addr = table + BigInt(indexAt(va, level) * 8);
    return { addr, value: this.read(addr) };
  }

  /** Map one page. `flags` holds every bit but the address (P, RW, US, …, XD, PK); PS is added for large pages. */
  mapPage(va: bigint, pa: bigint, size: bigint, flags: bigint, tableFlags: bigint = KERNPG_TABLE): void {
    const level = levelOfSize(size);
    if (va % size !== 0n || pa % size !== 0n) throw new RangeError(`unaligned ${size}-byte mapping 0x${va.toString(16)} -> 0x${pa.toString(16)}`);
    const ea = this.entryAddr(va, level, tableFlags);
    this.write(ea, (pa & ADDR_MASK) | flags | (level > 1 ? BigInt(PTE_PS) : 0n));
  }

  /**
   * Map [va, va+len) to [pa, …) with the largest page sizes in `sizes` that alignment allows,
   * as the kernel's phys_pud_init()/phys_pmd_init() do (arch/x86/mm/init_64.c).
   * Returns the count of leaves of each size.
   */
  mapRange(va: bigint, pa: bigint, len: bigint, flags: bigint, sizes: bigint[] = [SIZE_1G, SIZE_2M, SIZE_4K], tableFlags: bigint = KERNPG_TABLE): Map<bigint, number> {
    const count = new Map<bigint, number>();
    const end = va + len;
    const desc = [...sizes].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    while (va < end) {
      const size = desc.find((s) => va % s === 0n && pa % s === 0n && va + s <= end);
      if (size === undefined) throw new RangeError(`cannot map 0x${va.toString(16)} with page sizes ${sizes.join(',')}`);
      this.mapPage(va, pa, size, flags, tableFlags);
      count.set(size, (count.get(size) ?? 0) + 1);
      va += size;
      pa += size;
    }
    return count;
  }

  /**
   * Split the large leaf at `ea` (level 2 or 3) into a table of 512 entries of the next size
   * with the same attributes, as split_large_page() does; returns the new non-leaf entry.
   */
  split(ea: bigint, level: number): bigint {
    const e = this.read(ea);
    const table = this.newTable();
    this.stats.splits++;
    const base = e & ADDR_MASK & ~((sizeOfLevel(level) - 1n));
    let attrs = e & ~ADDR_MASK & ~PAT_LARGE;
    const pat = (e & PAT_LARGE) !== 0n;
    const step = sizeOfLevel(level - 1);
    if (level - 1 === 1) {
      attrs &= ~BigInt(PTE_PS);
      if (pat) attrs |= PAT_4K;
    } else if (pat) attrs |= PAT_LARGE;
    for (let i = 0n; i < 512n; i++) this.write(table + i * 8n, (base + i * step) | attrs);
    // The new table entry keeps the permissive rights; the leaves below carry the real ones
    // (the kernel builds it with the large entry's pgprot minus PSE, set_memory.c).
    const ne = table | (e & (BigInt(PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D) | (1n << 63n))) | BigInt(PTE_A);
    this.write(ea, ne);
    return ne;
  }

  /** Make sure `va` is mapped by a leaf no larger than `size`, splitting what covers it. */
  splitTo(va: bigint, size: bigint): void {
    const level = levelOfSize(size);
    let table = this.root;
    for (let l = this.levels; l > level; l--) {
      const ea = table + BigInt(indexAt(va, l) * 8);
      let e = this.read(ea);
      if ((e & 1n) === 0n) return;
      if (l <= 3 && (e & BigInt(PTE_PS)) !== 0n) e = this.split(ea, l);
      table = e & ADDR_MASK;
    }
  }

  /** Point the entry for `va` at `level` (> 1) at an existing table, sharing the subtree (pti_clone_pgtable's idea). */
  shareTable(va: bigint, level: number, entry: bigint, tableFlags: bigint = KERNPG_TABLE): void {
    const ea = this.entryAddr(va, level, tableFlags);
    this.write(ea, entry);
  }

  /** Clear the entry for `va` at `level` (if its path exists). */
  clear(va: bigint, level: number): void {
    const e = this.findEntry(va, level);
    if (e) this.write(e.addr, 0n);
  }
}
