/**
 * The two ways an address-known primitive gets bytes at a physical address:
 *  - readL1d(): only what the core's L1D holds (L1TF: the terminal fault forwards L1D data only);
 *  - loadThrough(): a real load by the thread, through its core (Meltdown, Spectre v1): an L1D
 *    hit returns the cached bytes, a miss fills the line from memory through a fill buffer, and
 *    the value passes a load port — with all the side effects a load has on those structures.
 * Both write address-known samples, one per cache line touched, and never allocate.
 */
import { LINE_BYTES } from '../uarch/cache.ts';
import type { HwThread } from '../uarch/core.ts';
import { SRC_L1D, SRC_MEMORY, type Samples } from './sample.ts';

const PAGE = 4096;

/** Targeted primitives read within one 4 KiB page per call (the caller loops over pages). */
export function checkPageRange(attack: string, vaLo: number, len: number): void {
  if (!Number.isInteger(len) || len <= 0 || (vaLo & 0xfff) + len > PAGE) {
    throw new RangeError(`${attack}: ${len} bytes at page offset ${vaLo & 0xfff} do not fit one 4 KiB page`);
  }
}

/**
 * Read `len` bytes at physical `pa` out of `hw`'s core L1D: present lines become samples (their
 * bytes as cached, stale or not), absent lines give nothing. Returns the bytes obtained. The
 * probe does not update the LRU order.
 */
export function readL1d(hw: HwThread, pa: number, len: number, attack: number, attacker: number, out: Samples, at: number): number {
  const c = hw.core.l1d;
  let got = 0;
  let p = pa;
  const end = pa + len;
  while (p < end) {
    const n = Math.min(end, p - (p % LINE_BYTES) + LINE_BYTES) - p;
    const slot = c.lookup(p);
    if (slot >= 0) {
      const off = out.add(attack, SRC_L1D, slot, p, p, attacker, -1, at, n);
      const src = slot * LINE_BYTES + (p % LINE_BYTES);
      const d = out.data;
      for (let k = 0; k < n; k++) d[off + k] = c.data[src + k];
      got += n;
    }
    p += n;
  }
  return got;
}

/**
 * Thread `hw` loads `len` bytes at physical `pa` (8 bytes at a time, as Core.load does); the
 * values become samples whose source says whether the line was in the L1D before the load.
 * Returns the bytes obtained (always `len`: a load always returns data).
 */
export function loadThrough(hw: HwThread, pa: number, len: number, attack: number, attacker: number, out: Samples, at: number): number {
  const core = hw.core;
  let p = pa;
  const end = pa + len;
  while (p < end) {
    const n = Math.min(end, p - (p % LINE_BYTES) + LINE_BYTES) - p;
    const slot = core.l1d.lookup(p);
    const off = out.add(attack, slot >= 0 ? SRC_L1D : SRC_MEMORY, slot, p, p, attacker, -1, at, n);
    // The 8-byte words covering [p, p+n), each loaded once; the wanted bytes copied out.
    let w = p - (p % 8);
    while (w < p + n) {
      core.load(hw.index, w);
      const d = out.data;
      for (let k = 0; k < 8; k++) {
        const b = w + k;
        if (b < p || b >= p + n) continue;
        d[off + (b - p)] = ((k < 4 ? core.lastLo >>> (8 * k) : core.lastHi >>> (8 * (k - 4))) & 0xff);
      }
      w += 8;
    }
    p += n;
  }
  return len;
}
