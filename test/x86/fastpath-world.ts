// A small machine for the fast-path property test (fastpath.test.ts): three address spaces
// (roots) with their own user mappings and one shared kernel half, every page size, random
// leaf bits (U/S, R/W, XD, G, PK, A, D, sometimes not present or reserved), and addresses
// chosen to collide in the fast path's direct-mapped slots (fastpath.ts: 4 KiB slots repeat
// every 4 MiB of VA, 2 MiB slots every 512 MiB). Three identical copies of the memory: one for
// the Mmu under test, one for the reference Mmu (fast path off), one for the bare walker.
import { PhysMemory } from '../../src/phys/memory.ts';
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../../src/x86/bits.ts';
import { KERNPG_TABLE, PageTables, SIZE_1G, SIZE_2M, SIZE_4K, USER_TABLE, levelOfSize } from '../../src/x86/pgtable.ts';

export const MAXPHYS = 46;
/** PCIDs of the three roots when CR4.PCIDE=1. */
export const PCIDS = [1, 2, 3];

export interface Page {
  va: bigint;
  lo: number;
  hi: number;
  size: bigint;
  /** Root index whose tables map it, or -1 for the shared kernel half (all roots). */
  root: number;
}

export interface World {
  mem: PhysMemory;
  tables: PageTables[];
  pages: Page[];
}

export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

/** Random leaf bits: P mostly, A/D random, U/S R/W XD G random, a key in 62:59. */
export function randomLeafBits(r: () => number, user: boolean, global: boolean): bigint {
  let lo = PTE_P;
  if (r() % 16 === 0) lo = 0; // not present
  if (r() & 1) lo |= PTE_RW;
  if (user ? r() % 8 !== 0 : r() % 8 === 0) lo |= PTE_US;
  if (r() & 1) lo |= PTE_A;
  if (r() & 1) lo |= PTE_D;
  if (global && r() & 1) lo |= 1 << 8;
  let v = BigInt(lo >>> 0);
  if (r() & 1) v |= 1n << 63n;
  v |= BigInt(r() & 15) << 59n;
  if (r() % 32 === 0) v |= 1n << 50n; // above MAXPHYADDR 46: reserved
  return v;
}

const USER_4K = [0x400000n, 0x401000n, 0x402000n, 0x407000n, 0x800000n, 0xc00000n, 0x7ffffffff000n];
const USER_2M = [0x40000000n, 0x40200000n, 0x60000000n];
const USER_1G = [0x8000000000n, 0x8040000000n];
const KERN = 0xffff888000000000n;
const KERN_4K = [KERN, KERN + 0x1000n, KERN + 0x2000n, KERN + 0x400000n, KERN + 0x401000n];
const KERN_2M = [KERN + 0x40000000n, KERN + 0x40200000n, KERN + 0x60000000n];
const KERN_1G = [KERN + 0x80000000n];

function halves(va: bigint): { lo: number; hi: number } {
  return { lo: Number(va & 0xffffffffn) | 0, hi: Number(va >> 32n) | 0 };
}

/** Build the three roots. `r` drives every random choice, so a seed gives one world. */
export function buildWorld(r: () => number): World {
  const mem = new PhysMemory(MAXPHYS);
  let next = 0x100000n;
  const alloc = (): bigint => {
    const pa = next;
    next += 0x1000n;
    return pa;
  };
  let frame4 = 0x10000000n;
  let frame2 = 0x200000000n;
  let frame1 = 0x4000000000n;
  const frameFor = (size: bigint): bigint => {
    if (size === SIZE_4K) return (frame4 += 0x1000n);
    if (size === SIZE_2M) return (frame2 += SIZE_2M);
    return (frame1 += SIZE_1G);
  };
  const tables = [0, 1, 2].map(() => new PageTables(mem, 4, alloc));
  const pages: Page[] = [];
  const map = (pt: PageTables, va: bigint, size: bigint, root: number, user: boolean) => {
    pt.mapPage(va, frameFor(size), size, randomLeafBits(r, user, !user) & ~BigInt(PTE_PS), user ? USER_TABLE : KERNPG_TABLE);
    pages.push({ va, ...halves(va), size, root });
  };
  // The kernel half lives in root 0's tables; the other roots share its PML4 entry.
  for (const va of KERN_4K) map(tables[0], va, SIZE_4K, -1, false);
  for (const va of KERN_2M) map(tables[0], va, SIZE_2M, -1, false);
  for (const va of KERN_1G) map(tables[0], va, SIZE_1G, -1, false);
  const pml4i = BigInt(Number((KERN >> 39n) & 511n) * 8);
  const kernelEntry = mem.read64Big(Number(tables[0].root + pml4i));
  for (let i = 1; i < 3; i++) mem.write64Big(Number(tables[i].root + pml4i), kernelEntry);
  // User halves: each root its own; root 2 maps the first 2 MiB user range with 4 KiB pages,
  // so one VA has a 2 MiB entry under one PCID and 4 KiB entries under another.
  for (let i = 0; i < 3; i++) {
    for (const va of USER_4K) if (r() % 4 !== 0) map(tables[i], va, SIZE_4K, i, true);
    for (const va of USER_2M) {
      if (i === 2 && va === USER_2M[0]) {
        for (let k = 0n; k < 4n; k++) map(tables[i], va + k * 0x1000n, SIZE_4K, i, true);
      } else if (r() % 4 !== 0) map(tables[i], va, SIZE_2M, i, true);
    }
    for (const va of USER_1G) if (r() % 3 !== 0) map(tables[i], va, SIZE_1G, i, true);
  }
  return { mem, tables, pages };
}

/** A copy of every backed frame. */
export function cloneMem(src: PhysMemory): PhysMemory {
  const m = new PhysMemory(src.maxPhysBits);
  for (const f of src.frames()) m.frameWords(f).set(src.frameWords(f));
  return m;
}

/** Physical address of the leaf entry of `page` in the tables of `root` (null if not mapped that way). */
export function leafEntry(w: World, root: number, page: Page): number | null {
  const e = w.tables[root].findEntry(page.va, levelOfSize(page.size));
  return e === null ? null : Number(e.addr);
}

/** Every backed frame, as base64, in frame order: equal digests = equal memories (A/D bits included). */
export function memDigest(mem: PhysMemory): string {
  return mem.frames().map((f) => f.toString(16) + ':' + Buffer.from(mem.frameWords(f).slice().buffer).toString('base64')).join(',');
}
