// The fast path over arbitrary TLB contents: entries put into the TLB directly (Tlb.fill), of
// every size, overlapping (a 4 KiB, a 2 MiB and a 1 GiB entry over one address), global or
// not, under several PCIDs, with any rights and D bit, then flushed in every way the Tlb knows.
// Memory is empty, so a miss walks to a not-present #PF and never fills: every answer comes from
// the TLB. The fast Mmu must answer as the same TLB without its fast path (Tlb.find(): smaller
// pages first, the current PCID or global), access by access, with the same counters after.
// Also: the mode ids of rights.ts starting over must empty the fast path.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import {
  ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_READ, ACCESS_WRITE, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_PKE, CR4_PKS, CR4_SMAP, CR4_SMEP,
} from '../../src/x86/bits.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import {
  FAST2_BASE, FAST2_SLOTS, FAST4_SLOTS, FAST_SIZE_SHIFT, FAST_WORDS_PER_SLOT, FW_CTX, FW_FRAME_HI, FW_FRAME_LO, FW_HI, FW_INFO, FW_MASK, FW_ROW,
} from '../../src/x86/fastpath.ts';
import { INFO_ERROR_SHIFT, INFO_LEVEL_SHIFT, INFO_PAGE_SHIFT_SHIFT, INFO_VECTOR_SHIFT } from '../../src/x86/walk.ts';
import { TLB_D, TLB_G, TLB_PKEY_MASK, TLB_PKEY_SHIFT, TLB_U, TLB_W, TLB_XD } from '../../src/x86/tlb.ts';

const KINDS = [ACCESS_READ, ACCESS_WRITE, ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_IMPLICIT | ACCESS_WRITE];
// Page-aligned VAs (lo, hi) whose pages overlap across sizes and collide in fast-path slots.
const VAS: [number, number][] = [
  [0x40000000, 0], [0x40001000, 0], [0x40123000, 0], [0x40200000, 0], [0x40400000, 0], [0x7fe00000, 0],
  [0x40000000 | 0, 0x7f], [0x40000000 | 0, 0xffff8880 | 0], [0x40001000 | 0, 0xffff8880 | 0], [0x60000000, 0],
];
const SHIFTS = [12, 21, 30];
const GEOMETRIES = [{}, { sets4K: 2, ways4K: 2, sets2M: 1, ways2M: 2, sets1G: 1, ways1G: 2 }];

type Op =
  | { t: 'fill'; va: number; k: number; pcid: number; flags: number; frame: number }
  | { t: 'access'; va: number; off: number; kinds: number[] }
  | { t: 'pcid'; v: number }
  | { t: 'cpl'; v: number } | { t: 'pkru'; v: number } | { t: 'pkrs'; v: number }
  | { t: 'cr4'; bit: number }
  | { t: 'flush'; how: number; va: number; pcid: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('fill' as const), va: fc.nat(VAS.length - 1), k: fc.nat(2), pcid: fc.oneof(fc.nat(1), fc.nat(3)), flags: fc.nat(0xff), frame: fc.nat(0xffff) }) },
  { weight: 12, arbitrary: fc.record({ t: fc.constant('access' as const), va: fc.nat(VAS.length - 1), off: fc.oneof(fc.nat(0xfff), fc.nat(0xfff), fc.nat(0x1fffff), fc.nat(0x3fffffff)), kinds: fc.array(fc.nat(4), { minLength: 1, maxLength: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('pcid' as const), v: fc.oneof(fc.nat(1), fc.nat(3)) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cpl' as const), v: fc.constantFrom(0, 3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pkru' as const), v: fc.constantFrom(0, 0x55555555, 0xaaaaaaaa, 0xc) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pkrs' as const), v: fc.constantFrom(0, 0x55555555, 0xaaaaaaaa, 0xc) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cr4' as const), bit: fc.constantFrom(CR4_SMEP, CR4_SMAP, CR4_PKE, CR4_PKS) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('flush' as const), how: fc.nat(5), va: fc.nat(VAS.length - 1), pcid: fc.nat(3) }) },
);

function summary(ok: boolean, m: Mmu): string {
  const t = m.out;
  if (!ok) return `fault v${t.vector} ec${t.errorCode} L${t.level}`;
  return `ok pa=${t.pa.toString(16)} shift=${t.pageShift} u=${t.user} w=${t.writable} xd=${t.executeDisable} pk=${t.pkey}`;
}

function counters(m: Mmu): string {
  const t = m.tlb;
  return `hits ${t.hits} misses ${t.misses} fills ${t.fills} evictions ${t.evictions} invalidated ${t.invalidated} walks ${m.walks}`;
}

function machine(geometry: object, fast: boolean): Mmu {
  const cpu = new CpuState(46).load({ cr0: 0x80050033, cr4: CR4_PAE | CR4_PGE | CR4_PCIDE, efer: 0xd01, cr3: 0x1000 });
  const m = new Mmu(cpu, new PhysMemory(46), geometry);
  m.tlb.fast.enabled = fast;
  return m;
}

/** Whether the fast path alone would serve this access (read-only look at Mmu internals). */
function fastWouldHit(m: Mmu, lo: number, hi: number, kind: number): boolean {
  const x = m as unknown as { modeVersion: number; syncMode(): void; probe(lo: number, hi: number, a: number): number };
  if (m.cpu.modeVersion !== x.modeVersion) x.syncMode();
  return x.probe(lo, hi, kind) >= 0;
}

const counts = { fastHits: 0 };

function apply(m: Mmu, op: Op): string {
  const c = m.cpu;
  switch (op.t) {
    case 'fill': {
      const [lo, hi] = VAS[op.va];
      const shift = SHIFTS[op.k];
      const vaLo = lo & ~((2 ** shift - 1) | 0);
      // flags bits: G, U, W, XD, D, then a key.
      const f = op.flags;
      const flags = (f & 1 ? TLB_G : 0) | (f & 2 ? TLB_U : 0) | (f & 4 ? TLB_W : 0) | (f & 8 ? TLB_XD : 0) | (f & 16 ? TLB_D : 0) | ((f >>> 5) << TLB_PKEY_SHIFT);
      m.tlb.fill(vaLo | 0, hi, shift, op.pcid, flags, op.frame * 2 ** 30);
      return '';
    }
    case 'access': {
      const [lo, hi] = VAS[op.va];
      return op.kinds.map((k, j) => {
        const vaLo = (lo + ((op.off + j * 64) & 0x3fffffff)) | 0;
        if (m.tlb.fast.enabled && fastWouldHit(m, vaLo, hi, KINDS[k])) counts.fastHits++;
        return summary(m.translate(vaLo, hi, KINDS[k]), m);
      }).join('; ');
    }
    case 'pcid': c.cr3 = 0x1000 + op.v; c.derive(); return '';
    case 'cpl': c.cpl = op.v; return '';
    case 'pkru': c.pkru = op.v >>> 0; return '';
    case 'pkrs': c.pkrs = op.v >>> 0; return '';
    case 'cr4': c.cr4 ^= op.bit; c.derive(); return '';
    case 'flush': {
      const [lo, hi] = VAS[op.va];
      const t = m.tlb;
      const n = [() => t.flushAll(), () => t.flushNonGlobal(), () => t.flushPcid(op.pcid, false), () => t.flushPcid(op.pcid, true),
        () => t.flushAddress(lo, hi, op.pcid, false), () => t.flushAddress(lo, hi, op.pcid, true)][op.how]();
      return `flushed ${n}`;
    }
  }
}

describe('fast path over arbitrary TLB contents', () => {
  it('answers as Tlb.find() would: overlapping sizes, PCIDs, globals, D, rights, flushes', () => {
    const h0 = counts.fastHits;
    fc.assert(fc.property(fc.nat(GEOMETRIES.length - 1), fc.array(opArb, { minLength: 20, maxLength: 300, size: 'max' }), (g, ops) => {
      const a = machine(GEOMETRIES[g], true);
      const b = machine(GEOMETRIES[g], false);
      ops.forEach((op, i) => {
        const got = apply(a, op);
        const want = apply(b, op);
        if (got !== want) throw new Error(`op ${i} ${JSON.stringify(op)}: fast ${got}, slow ${want}; before: ${ops.slice(Math.max(0, i - 6), i).map((o) => JSON.stringify(o)).join(' ')}`);
      });
      expect(counters(a)).toBe(counters(b));
    }), { numRuns: 300 });
    expect(counts.fastHits - h0).toBeGreaterThan(800); // served by the fast path itself
  });

  // The two rules that keep a large slot from hiding a smaller entry (fastpath.ts), one case each.
  const R = 0x40000000;
  const Q = 0x40001000; // a 4 KiB page inside the 2 MiB (and 1 GiB) page at R
  const RW = TLB_W | TLB_D;
  const frameOf = (m: Mmu, lo: number) => (m.translate(lo, 0, ACCESS_READ) ? m.out.frame : -1);

  it('a smaller entry filled after a large slot exists hides the slot (Tlb.fill -> forgetLarger)', () => {
    for (const [shift, frame] of [[21, 0x200000], [30, 0x40000000]]) {
      const m = machine({}, true);
      m.tlb.fill(R, 0, shift, 0, RW, frame);
      expect(frameOf(m, R + 0x10)).toBe(frame); // slow-path hit: the large page gets a slot
      expect(frameOf(m, Q + 0x10)).toBe(frame); // fast hit through it
      m.tlb.fill(Q, 0, 12, 0, RW, 0x7000); // now a 4 KiB entry over Q: find() prefers it
      expect(frameOf(m, Q + 0x20)).toBe(0x7000);
      if (shift === 30) { // and a 2 MiB entry under the 1 GiB slot
        m.tlb.fill(0x40200000, 0, 21, 0, RW, 0x400000);
        expect(frameOf(m, 0x40200040)).toBe(0x400000);
      }
    }
  });

  it('a large page gets no slot while a smaller entry overlaps it (Tlb.overlapsSmaller), global ones too', () => {
    for (const [pcid, flags] of [[0, RW], [1, RW | TLB_G]]) {
      const m = machine({}, true);
      m.tlb.fill(Q, 0, 12, pcid, flags, 0x7000); // under the current PCID 0, or global under PCID 1
      m.tlb.fill(R, 0, 21, 0, RW, 0x200000);
      expect(frameOf(m, R + 0x10)).toBe(0x200000); // a 2 MiB hit elsewhere in the page: no slot
      expect(frameOf(m, Q + 0x20)).toBe(0x7000); // Q is still the 4 KiB entry's
    }
  });

  it('the literals of the hot paths (mmu.ts) are the named constants', () => {
    // Mmu.translate / hitRun spell these as numbers (fastpath.ts layout, tlb-entry.ts meta, walk.ts info).
    expect([FAST4_SLOTS, FAST_WORDS_PER_SLOT, FAST2_BASE, FAST2_SLOTS, FAST_SIZE_SHIFT]).toEqual([1024, 8, 8192, 256, 8]);
    expect([FW_HI, FW_CTX, FW_ROW, FW_FRAME_LO, FW_FRAME_HI, FW_INFO, FW_MASK]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect([INFO_LEVEL_SHIFT, INFO_PAGE_SHIFT_SHIFT, INFO_ERROR_SHIFT, INFO_VECTOR_SHIFT]).toEqual([8, 11, 16, 24]);
    expect([TLB_U, TLB_W, TLB_XD, TLB_D, TLB_PKEY_SHIFT, TLB_PKEY_MASK]).toEqual([0x4000, 0x8000, 0x10000, 0x20000, 18, 0xf]);
  });

  it('mode ids starting over (ModeRights.wraps) empty the fast path: an old slot cannot serve a new mode', () => {
    // A supervisor page cached at CPL 0 (mode id 0); the ids then start over, and CPL 3 gets id 0 too.
    const m = machine({}, true);
    m.tlb.fill(0x40000000, 0, 12, 0, TLB_W | TLB_D, 0x5000);
    m.cpu.cr3 = 0x1000;
    m.cpu.derive();
    expect(m.translate(0x40000010, 0, ACCESS_READ)).toBe(true); // slow-path hit: gives it a slot
    expect(m.translate(0x40000020, 0, ACCESS_READ)).toBe(true); // fast hit
    const rights = m.cpu.rights as unknown as { nextId: number; id: number };
    expect(rights.id).toBe(0);
    rights.nextId = 1 << 19; // the next mode installed starts the ids over
    m.cpu.cpl = 3;
    expect(m.translate(0x40000030, 0, ACCESS_READ)).toBe(false); // user-mode access to a supervisor page (SDM 4.6.1)
    expect(rights.id).toBe(0);
    expect(m.out.errorCode).toBe(0x5); // P | U
  });
});
