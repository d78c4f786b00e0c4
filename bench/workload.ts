/**
 * Benchmark inputs: random virtual addresses that hit present pages of a capture, generated
 * up front into typed arrays with a seeded PRNG, so the timed loops do nothing but translate.
 */
import type { PhysMemory } from '../src/phys/memory.ts';
import { forEachLeaf } from '../src/x86/leaves.ts';

/** xorshift32: deterministic, allocation-free. */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

export interface Leaves {
  vaLo: Uint32Array;
  vaHi: Uint32Array;
  shift: Uint8Array;
  user: Uint8Array;
  count: number;
}

export function collectLeaves(mem: PhysMemory, root: number, levels: 4 | 5): Leaves {
  const lo: number[] = [], hi: number[] = [], sh: number[] = [], us: number[] = [];
  forEachLeaf(mem, root, levels, (vaLo, vaHi, pageShift, _pa, _lo, _hi, _level, user) => {
    lo.push(vaLo); hi.push(vaHi); sh.push(pageShift); us.push(user ? 1 : 0);
  });
  return { vaLo: Uint32Array.from(lo), vaHi: Uint32Array.from(hi), shift: Uint8Array.from(sh), user: Uint8Array.from(us), count: lo.length };
}

/**
 * Halves are held as Int32Array on purpose: a u32 at or above 2^31 is not a small integer for
 * V8, and passing it to a function that is not inlined boxes it (an allocation per call).
 */
export interface VaSet {
  lo: Int32Array;
  hi: Int32Array;
  access: Uint8Array;
  n: number;
}

/** `n` addresses, each a random byte of a leaf chosen uniformly from `pick` (indices into leaves). */
export function randomVas(leaves: Leaves, pick: Int32Array, n: number, seed: number, access = 0): VaSet {
  const r = prng(seed);
  const lo = new Int32Array(n), hi = new Int32Array(n), acc = new Uint8Array(n).fill(access);
  for (let i = 0; i < n; i++) {
    const j = pick[r() % pick.length];
    const off = r() & ((1 << leaves.shift[j]) - 1);
    lo[i] = leaves.vaLo[j] + off; // the offset never carries: vaLo is page-aligned
    hi[i] = leaves.vaHi[j];
  }
  return { lo, hi, access: acc, n };
}

/** Indices of all leaves. */
export function allLeaves(leaves: Leaves): Int32Array {
  return Int32Array.from({ length: leaves.count }, (_, i) => i);
}

/**
 * Leaves that fit a TLB together: at most `ways` pages per set in each size's array, so once
 * warm every access to them hits. Sets are the low bits of the page number, as in tlb.ts.
 */
export function fittingLeaves(leaves: Leaves, sets4K: number, ways4K: number, sets2M: number, ways2M: number): Int32Array {
  const used = new Map<string, number>();
  const out: number[] = [];
  for (let j = 0; j < leaves.count; j++) {
    const sh = leaves.shift[j];
    if (sh === 30 || leaves.user[j]) continue;
    const sets = sh === 12 ? sets4K : sets2M;
    const ways = sh === 12 ? ways4K : ways2M;
    const set = ((leaves.vaLo[j] >>> sh) | (leaves.vaHi[j] << (32 - sh))) & (sets - 1);
    const key = `${sh}:${set}`;
    const k = used.get(key) ?? 0;
    if (k >= ways) continue;
    used.set(key, k + 1);
    out.push(j);
  }
  return Int32Array.from(out);
}
