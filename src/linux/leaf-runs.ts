/**
 * Page-table leaves reduced for comparison (linux/compare.ts): every present leaf of a root in
 * typed arrays, its effective attributes as ptdump prints them (USR and RW ANDed, NX ORed over
 * the levels: dump_pagetables.c effective_prot()), runs of equal leaves, and the stretches
 * where two sides' runs differ.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { forEachLeaf } from '../x86/leaves.ts';

export const F_USR = 1;
export const F_RW = 2;
export const F_NX = 4;
export const F_GLB = 8;
export const F_PWT = 16;
export const F_PCD = 32;
export const F_PAT = 64;
export const CACHE = F_PWT | F_PCD | F_PAT;

/** Every present leaf of one root, in VA order, in typed arrays (ESPFIX alone is 65,536 leaves). */
export class Leaves {
  n = 0;
  vpn = new Float64Array(1024); // VA >> 12 (< 2^52)
  shift = new Uint8Array(1024);
  pa = new Float64Array(1024);
  flags = new Uint8Array(1024);

  push(vpn: number, shift: number, pa: number, flags: number): void {
    if (this.n === this.vpn.length) {
      const grow = <T extends Float64Array | Uint8Array>(a: T): T => { const b = new (a.constructor as new (n: number) => T)(a.length * 2); b.set(a); return b; };
      this.vpn = grow(this.vpn); this.shift = grow(this.shift); this.pa = grow(this.pa); this.flags = grow(this.flags);
    }
    this.vpn[this.n] = vpn; this.shift[this.n] = shift; this.pa[this.n] = pa; this.flags[this.n] = flags;
    this.n++;
  }

  /** First index with vpn >= v. */
  lowerBound(v: number): number {
    let a = 0;
    let b = this.n;
    while (a < b) { const m = (a + b) >>> 1; if (this.vpn[m] < v) a = m + 1; else b = m; }
    return a;
  }
}

/** Effective attributes of a leaf, as compared. */
export function leafFlags(level: number, lo: number, user: boolean, writable: boolean, xd: boolean): number {
  let f = (user ? F_USR : 0) | (writable ? F_RW : 0) | (xd ? F_NX : 0);
  if (lo & 0x100) f |= F_GLB;
  if (lo & 0x8) f |= F_PWT;
  if (lo & 0x10) f |= F_PCD;
  if (level === 1 ? lo & 0x80 : lo & 0x1000) f |= F_PAT;
  return f;
}

export function collectLeaves(mem: PhysMemory, root: number, levels: 4 | 5): Leaves {
  const out = new Leaves();
  forEachLeaf(mem, root, levels, (vaLo, vaHi, shift, pa, lo, _hi, level, user, writable, xd) => {
    const vpn = ((vaHi >>> 0) * 4294967296 + (vaLo >>> 0)) / 4096;
    out.push(vpn, shift, pa, leafFlags(level, lo, user, writable, xd));
  });
  return out;
}

export function flagsText(f: number): string {
  return [(f & F_USR) ? 'USR' : '   ', (f & F_RW) ? 'RW' : 'ro', (f & F_PWT) ? 'PWT' : '', (f & F_PCD) ? 'PCD' : '',
    (f & F_PAT) ? 'PAT' : '', (f & F_GLB) ? 'GLB' : '', (f & F_NX) ? 'NX' : 'x'].filter(Boolean).join(' ');
}

export const sizeText = (shift: number) => (shift === 12 ? '4K' : shift === 21 ? '2M' : '1G');
export const vaText = (vpn: number) => '0x' + (BigInt(vpn) << 12n).toString(16).padStart(16, '0');

/** A run: consecutive leaves of one size and attribute set, [startVpn, endVpn). */
export interface Run { s: number; e: number; shift: number; flags: number }

export function runsOf(l: Leaves, fromVpn: number, toVpn: number): Run[] {
  const out: Run[] = [];
  for (let i = l.lowerBound(fromVpn); i < l.n && l.vpn[i] < toVpn; i++) {
    const s = l.vpn[i];
    const e = s + 2 ** (l.shift[i] - 12);
    const last = out[out.length - 1];
    if (last && last.e === s && last.shift === l.shift[i] && last.flags === l.flags[i]) last.e = e;
    else out.push({ s, e, shift: l.shift[i], flags: l.flags[i] });
  }
  return out;
}

/** A stretch where the two sides disagree. `m`/`c`: the model's and capture's run there (null: nothing mapped). */
export interface Difference { s: number; e: number; m: Run | null; c: Run | null }

export function diffRuns(a: Run[], b: Run[], from: number, to: number): Difference[] {
  const out: Difference[] = [];
  let i = 0;
  let j = 0;
  let p = from;
  while (p < to) {
    while (i < a.length && a[i].e <= p) i++;
    while (j < b.length && b[j].e <= p) j++;
    const ra = i < a.length && a[i].s <= p ? a[i] : null;
    const rb = j < b.length && b[j].s <= p ? b[j] : null;
    let next = to;
    if (ra) next = Math.min(next, ra.e); else if (i < a.length) next = Math.min(next, a[i].s);
    if (rb) next = Math.min(next, rb.e); else if (j < b.length) next = Math.min(next, b[j].s);
    if (!ra && !rb && next === to) break;
    const same = (ra === null && rb === null) || (ra !== null && rb !== null && ra.shift === rb.shift && ra.flags === rb.flags);
    if (!same) {
      const last = out[out.length - 1];
      if (last && last.e === p && last.m === ra && last.c === rb) last.e = next;
      else out.push({ s: p, e: next, m: ra, c: rb });
    }
    p = next;
  }
  return out;
}

