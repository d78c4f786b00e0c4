// The TLB and the Mmu's invalidation instructions, against the SDM's rules (Vol. 3A 4.10).
// Truth: (1) example tests, one per rule, each built from raw page-table entries written here;
// (2) fast-check properties against a reference that knows nothing of sets, ways or LRU: for
// every (PCID, page) it keeps the set of translations the page tables gave since the last
// invalidation the SDM requires, walked by a BigInt walker written in this file.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import {
  ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_PKE, CR4_SMEP, PFEC_P, PFEC_U,
  VECTOR_GP, VECTOR_PF,
} from '../../src/x86/bits.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { Tlb, TlbResult, TLB_G, TLB_PCID_MASK, type TlbGeometry } from '../../src/x86/tlb.ts';

// ---- raw entries (SDM 4.5, tables 4-15..4-20), written without the project's bit constants ----
const P = 1n, W = 2n, U = 4n, A = 0x20n, D = 0x40n, PS = 0x80n, G = 0x100n, XD = 1n << 63n;
const pk = (k: number) => BigInt(k) << 59n;
const MASK64 = (1n << 64n) - 1n;

/** A physical memory with a bump allocator for table pages and raw entry writes. */
class World {
  readonly mem = new PhysMemory(40);
  private next = 0x1000000;
  table(): number {
    const pa = this.next;
    this.next += 4096;
    this.mem.ensure(pa / 4096);
    return pa;
  }
  /** A 4-level root whose user half (PML4[0xfe]) and kernel half (PML4[0x111]) reach 4K tables. */
  root(): Root {
    const r: Root = { pml4: this.table(), pdptU: this.table(), pdU: this.table(), ptU: this.table(), ptFlip: this.table(), pdptK: this.table(), pdK: this.table(), ptK: this.table() };
    const dir = P | W | U;
    this.set(r.pml4, 0xfe, BigInt(r.pdptU) | dir);
    this.set(r.pdptU, 0, BigInt(r.pdU) | dir);
    this.set(r.pdU, 0, BigInt(r.ptU) | dir);
    this.set(r.pdU, 1, BigInt(r.ptFlip) | dir); // the "flip" PDE: a PT now, maybe a 2 MiB leaf later
    this.set(r.pml4, 0x111, BigInt(r.pdptK) | P | W);
    this.set(r.pdptK, 0, BigInt(r.pdK) | P | W);
    this.set(r.pdK, 0, BigInt(r.ptK) | P | W);
    return r;
  }
  set(table: number, index: number, entry: bigint): void {
    this.mem.write64Big(table + index * 8, entry & MASK64);
  }
  get(table: number, index: number): bigint {
    return this.mem.read64Big(table + index * 8);
  }
}
interface Root { pml4: number; pdptU: number; pdU: number; ptU: number; ptFlip: number; pdptK: number; pdK: number; ptK: number }

const USER_BASE = 0x00007f0000000000n; // PML4 index 0xfe
const KERNEL_BASE = 0xffff888000000000n; // PML4 index 0x111

/** What the reference walker says a VA translates to, ignoring the access's rights. */
interface RefTr { frame: bigint; shift: number; u: boolean; w: boolean; xd: boolean; pkey: number; g: boolean }

/** Independent 4-level walk (SDM 4.5): present bits, PS in PDPTE/PDE, rights folded (4.6.1). */
function refWalk(mem: PhysMemory, root: number, va: bigint, nxe: boolean): RefTr | null {
  let table = BigInt(root);
  let u = true, w = true, xd = false;
  for (let level = 4; level >= 1; level--) {
    const idx = (va >> BigInt(12 + 9 * (level - 1))) & 511n;
    const e = mem.read64Big(Number(table + idx * 8n));
    if ((e & P) === 0n) return null;
    u &&= (e & U) !== 0n;
    w &&= (e & W) !== 0n;
    xd ||= (e & XD) !== 0n;
    const leaf = level === 1 || (level <= 3 && (e & PS) !== 0n);
    if (leaf) {
      const shift = 12 + 9 * (level - 1);
      const frame = e & 0x000ffffffffff000n & ~((1n << BigInt(shift)) - 1n);
      return { frame, shift, u, w, xd: xd && nxe, pkey: Number((e >> 59n) & 15n), g: (e & G) !== 0n };
    }
    table = e & 0x000ffffffffff000n;
  }
  return null;
}

const halves = (va: bigint) => ({ lo: Number(va & 0xffffffffn), hi: Number((va >> 32n) & 0xffffffffn) });

function machine(opts: { pcide?: boolean; pge?: boolean; geometry?: Partial<TlbGeometry> } = {}) {
  const world = new World();
  const roots = [world.root(), world.root()];
  const cpu = new CpuState(40);
  cpu.load({
    cr0: 0x80010033n, // PG, WP, PE
    cr4: BigInt(CR4_PAE | (opts.pge ?? true ? CR4_PGE : 0) | (opts.pcide ? CR4_PCIDE : 0)),
    efer: 0xd01n, // SCE, LME, LMA, NXE
    cr3: BigInt(roots[0].pml4),
  });
  const mmu = new Mmu(cpu, world.mem, opts.geometry);
  return { world, roots, cpu, mmu };
}

type M = ReturnType<typeof machine>;
const read = (m: M, va: bigint, access = ACCESS_READ) => {
  const { lo, hi } = halves(va);
  return m.mmu.translate(lo, hi, access);
};
const cr3 = (m: M, root: Root, pcid = 0, noFlush = false) =>
  m.mmu.writeCr3((root.pml4 | pcid) >>> 0, noFlush ? 0x80000000 : 0);

/** Map a 4 KiB user page at USER_BASE + i*4K (PT slot i) of `root`. */
function mapUser4K(m: M, root: Root, i: number, frame: bigint, flags = P | W | U | A | D) {
  m.world.set(root.ptU, i, frame | flags);
}
function mapKernel4K(m: M, root: Root, i: number, frame: bigint, flags = P | W | A | D | G) {
  m.world.set(root.ptK, i, frame | flags);
}
const uva = (i: number) => USER_BASE + BigInt(i) * 0x1000n;
const kva = (i: number) => KERNEL_BASE + BigInt(i) * 0x1000n;

// ------------------------------------------------------------------------------------------------
describe('TLB: example tests, one SDM rule each', () => {
  it('caches a translation and keeps using it after the PTE changes without invalidation (4.10.2.2, 4.10.4.2)', () => {
    const m = machine();
    mapUser4K(m, m.roots[0], 1, 0x200000n);
    expect(read(m, uva(1) + 0x10n)).toBe(true);
    expect(m.mmu.out.pa).toBe(0x200010);
    mapUser4K(m, m.roots[0], 1, 0x300000n);
    expect(read(m, uva(1) + 0x10n)).toBe(true);
    expect(m.mmu.out.pa).toBe(0x200010); // stale, as the SDM allows
    expect(m.mmu.walks).toBe(1);
  });

  it('does not cache a walk that faulted: a not-present page mapped later is seen at once (4.10.2.3)', () => {
    const m = machine();
    expect(read(m, uva(2))).toBe(false);
    expect(m.mmu.out.vector).toBe(VECTOR_PF);
    mapUser4K(m, m.roots[0], 2, 0x400000n);
    expect(read(m, uva(2))).toBe(true);
    expect(m.mmu.out.pa).toBe(0x400000);
  });

  it('MOV CR3 with PCIDE=0 drops non-global entries and keeps global ones (4.10.4.1, 4.10.2.4)', () => {
    const m = machine();
    mapUser4K(m, m.roots[0], 0, 0x200000n);
    mapKernel4K(m, m.roots[0], 0, 0x300000n);
    read(m, uva(0));
    read(m, kva(0));
    mapUser4K(m, m.roots[0], 0, 0x500000n);
    mapKernel4K(m, m.roots[0], 0, 0x600000n);
    expect(cr3(m, m.roots[0])).toBe(0);
    read(m, uva(0));
    expect(m.mmu.out.pa).toBe(0x500000); // re-walked
    read(m, kva(0));
    expect(m.mmu.out.pa).toBe(0x300000); // global entry survived
  });

  it('a leaf G bit is ignored when CR4.PGE=0 at fill time (4.10.2.4)', () => {
    const m = machine({ pge: false });
    mapKernel4K(m, m.roots[0], 0, 0x300000n);
    read(m, kva(0));
    mapKernel4K(m, m.roots[0], 0, 0x600000n);
    cr3(m, m.roots[0]);
    read(m, kva(0));
    expect(m.mmu.out.pa).toBe(0x600000);
  });

  it('MOV CR3 with bit 63 set and CR4.PCIDE=0 is #GP (table 4-12)', () => {
    const m = machine();
    expect(cr3(m, m.roots[1], 0, true)).toBe(VECTOR_GP);
    expect(m.cpu.rootAddr).toBe(m.roots[0].pml4);
  });

  it('PCIDs: entries of one PCID are not used under another; global entries are (4.10.1, 4.10.2.4)', () => {
    const m = machine({ pcide: true });
    const [r0, r1] = m.roots;
    mapUser4K(m, r0, 0, 0x200000n);
    mapUser4K(m, r1, 0, 0x700000n);
    mapKernel4K(m, r0, 0, 0x300000n);
    mapKernel4K(m, r1, 0, 0x800000n);
    cr3(m, r0, 1);
    read(m, uva(0));
    read(m, kva(0));
    cr3(m, r1, 2);
    read(m, uva(0));
    expect(m.mmu.out.pa).toBe(0x700000); // PCID 2 walks its own tables
    read(m, kva(0));
    expect(m.mmu.out.pa).toBe(0x300000); // the global entry filled under PCID 1 matches PCID 2
  });

  it('MOV CR3 with PCIDE=1: bit 63 clear flushes the new PCID (non-global only), bit 63 set flushes nothing (4.10.4.1)', () => {
    const m = machine({ pcide: true });
    const [r0, r1] = m.roots;
    mapUser4K(m, r0, 0, 0x200000n);
    mapKernel4K(m, r0, 0, 0x300000n);
    cr3(m, r0, 1);
    read(m, uva(0));
    read(m, kva(0));
    cr3(m, r1, 2);
    mapUser4K(m, r0, 0, 0x500000n);
    mapKernel4K(m, r0, 0, 0x600000n);
    cr3(m, r0, 1, true); // no flush: PCID 1's stale entry is still used
    read(m, uva(0));
    expect(m.mmu.out.pa).toBe(0x200000);
    cr3(m, r1, 2);
    cr3(m, r0, 1); // flush PCID 1
    read(m, uva(0));
    expect(m.mmu.out.pa).toBe(0x500000);
    read(m, kva(0));
    expect(m.mmu.out.pa).toBe(0x300000); // global kept
    expect(m.cpu.cr3).toBe(r0.pml4 | 1); // bit 63 is never stored
  });

  it('INVLPG drops the page for the current PCID and global entries for it, in every page size (4.10.4.1)', () => {
    const m = machine({ pcide: true });
    const [r0, r1] = m.roots;
    mapUser4K(m, r0, 0, 0x200000n);
    mapUser4K(m, r1, 0, 0x700000n);
    m.world.set(r0.pdU, 1, 0x40000000n | P | W | U | A | D | PS); // 2 MiB page at USER_BASE + 2M
    cr3(m, r1, 2);
    read(m, uva(0)); // PCID 2 entry for the page
    cr3(m, r0, 1);
    read(m, uva(0));
    read(m, USER_BASE + 0x200000n + 0x1234n);
    mapUser4K(m, r0, 0, 0x500000n);
    mapUser4K(m, r1, 0, 0x900000n);
    m.world.set(r0.pdU, 1, 0x80000000n | P | W | U | A | D | PS);
    const { lo, hi } = halves(uva(0));
    expect(m.mmu.invlpg(lo, hi)).toBe(0);
    const big = halves(USER_BASE + 0x200000n + 0x1fff00n); // any address in the 2 MiB page
    expect(m.mmu.invlpg(big.lo, big.hi)).toBe(0);
    read(m, uva(0));
    expect(m.mmu.out.pa).toBe(0x500000);
    read(m, USER_BASE + 0x200000n + 0x1234n);
    expect(m.mmu.out.pa).toBe(0x80001234);
    cr3(m, r1, 2, true);
    read(m, uva(0));
    expect(m.mmu.out.pa).toBe(0x700000); // PCID 2's entry was not the current PCID's: kept
  });

  it('INVLPG on a non-canonical address is a NOP; at CPL 3 it is #GP (Vol. 2 INVLPG)', () => {
    const m = machine();
    expect(m.mmu.invlpg(0, 0x00008000)).toBe(0);
    expect(m.mmu.flushes).toBe(0);
    m.cpu.cpl = 3;
    expect(m.mmu.invlpg(0, 0)).toBe(VECTOR_GP);
  });

  it('INVPCID types 0..3 (Vol. 2 INVPCID, 4.10.4.1)', () => {
    const m = machine({ pcide: true });
    const [r0, r1] = m.roots;
    const fill = () => {
      m.mmu.invpcid(2, 0, 0, 0);
      for (const [root, pcid] of [[r0, 1], [r1, 2]] as const) {
        cr3(m, root, pcid, true);
        for (let i = 0; i < 3; i++) { mapUser4K(m, root, i, BigInt(0x200000 + i * 0x1000 + pcid * 0x100000)); read(m, uva(i)); }
        mapKernel4K(m, root, pcid, BigInt(0x900000 + pcid * 0x1000));
        read(m, kva(pcid));
      }
    };
    const count = (pcid: number, global: boolean) =>
      m.mmu.tlb.countValid((x) => (x & TLB_PCID_MASK) === pcid && ((x & TLB_G) !== 0) === global);
    const { lo, hi } = halves(uva(1));
    fill();
    expect([count(1, false), count(2, false), count(1, true), count(2, true)]).toEqual([3, 3, 1, 1]);
    expect(m.mmu.invpcid(0, 1, lo, hi)).toBe(0); // individual address, PCID 1, not globals
    expect([count(1, false), count(2, false), count(1, true), count(2, true)]).toEqual([2, 3, 1, 1]);
    const k1 = halves(kva(1));
    m.mmu.invpcid(0, 1, k1.lo, k1.hi); // a global translation: type 0 keeps it
    expect(count(1, true)).toBe(1);
    fill();
    m.mmu.invpcid(1, 2, 0, 0); // single context
    expect([count(1, false), count(2, false), count(1, true), count(2, true)]).toEqual([3, 0, 1, 1]);
    fill();
    m.mmu.invpcid(3, 0, 0, 0); // all contexts, except globals
    expect([count(1, false), count(2, false), count(1, true), count(2, true)]).toEqual([0, 0, 1, 1]);
    fill();
    m.mmu.invpcid(2, 0, 0, 0); // all contexts, including globals
    expect(m.mmu.tlb.countValid()).toBe(0);
  });

  it('INVPCID #GP: CPL>0, type>3, PCID>0xfff, non-canonical type-0 address, PCID!=0 with PCIDE=0 (Vol. 2 INVPCID)', () => {
    const m = machine({ pcide: true });
    expect(m.mmu.invpcid(4, 0, 0, 0)).toBe(VECTOR_GP);
    expect(m.mmu.invpcid(1, 0x1000, 0, 0)).toBe(VECTOR_GP);
    expect(m.mmu.invpcid(0, 1, 0, 0x00008000)).toBe(VECTOR_GP);
    expect(m.mmu.invpcid(1, 1, 0, 0x00008000)).toBe(0); // the address is not used by type 1
    const n = machine();
    expect(n.mmu.invpcid(0, 1, 0, 0)).toBe(VECTOR_GP);
    expect(n.mmu.invpcid(1, 5, 0, 0)).toBe(VECTOR_GP);
    expect(n.mmu.invpcid(3, 5, 0, 0)).toBe(0);
    n.cpu.cpl = 3;
    expect(n.mmu.invpcid(2, 0, 0, 0)).toBe(VECTOR_GP);
  });

  it('MOV CR4: changing PGE or clearing PCIDE drops everything; PAE/SMEP 0->1 the current PCID; others nothing (4.10.4.1)', () => {
    const m = machine({ pcide: true });
    const [r0, r1] = m.roots;
    const fill = () => {
      for (const [root, pcid] of [[r0, 1], [r1, 2]] as const) {
        cr3(m, root, pcid, true);
        mapUser4K(m, root, 0, 0x200000n);
        read(m, uva(0));
        mapKernel4K(m, root, pcid, BigInt(0x900000 + pcid * 0x1000));
        read(m, kva(pcid));
      }
    };
    const cr4 = m.cpu.cr4;
    fill();
    expect(m.mmu.tlb.countValid()).toBe(4);
    m.mmu.writeCr4(cr4 | CR4_PKE); // not in the SDM's list
    expect(m.mmu.tlb.countValid()).toBe(4);
    m.mmu.writeCr4(cr4 | CR4_PKE | CR4_SMEP); // SMEP 0 -> 1: all of the current PCID (2), globals filled under it too
    expect(m.mmu.tlb.countValid((x) => (x & TLB_PCID_MASK) === 2)).toBe(0);
    expect(m.mmu.tlb.countValid()).toBe(2);
    fill();
    m.mmu.writeCr4(cr4 | CR4_PKE); // SMEP 1 -> 0: nothing
    expect(m.mmu.tlb.countValid()).toBe(4);
    m.mmu.writeCr4(cr4 & ~CR4_PGE); // PGE changes: everything
    expect(m.mmu.tlb.countValid()).toBe(0);
    m.mmu.writeCr4(cr4);
    fill();
    cr3(m, r0, 0, true);
    m.mmu.writeCr4(cr4 & ~CR4_PCIDE); // PCIDE 1 -> 0: everything
    expect(m.mmu.tlb.countValid()).toBe(0);
  });

  it('MOV CR4 #GP: clearing PAE or changing LA57 in IA-32e mode; setting PCIDE with CR3[11:0]!=0 (Vol. 2 MOV CR, 4.10.1)', () => {
    const m = machine();
    const cr4 = m.cpu.cr4;
    expect(m.mmu.writeCr4(cr4 & ~CR4_PAE)).toBe(VECTOR_GP);
    expect(m.mmu.writeCr4(cr4 | (1 << 12))).toBe(VECTOR_GP);
    m.mmu.writeCr3((m.roots[0].pml4 | 0x8) >>> 0, 0); // PWT set: CR3[11:0] = 008H
    expect(m.mmu.writeCr4(cr4 | CR4_PCIDE)).toBe(VECTOR_GP);
    expect(m.cpu.pcide).toBe(false);
    m.mmu.writeCr3(m.roots[0].pml4, 0);
    expect(m.mmu.writeCr4(cr4 | CR4_PCIDE)).toBe(0);
    expect(m.cpu.pcide).toBe(true);
  });

  it('a write through an entry whose D is not known set walks and sets D in memory (4.8)', () => {
    const m = machine();
    mapUser4K(m, m.roots[0], 3, 0x200000n, P | W | U | A); // D = 0
    read(m, uva(3));
    expect(m.mmu.walks).toBe(1);
    expect(read(m, uva(3), ACCESS_WRITE)).toBe(true);
    expect(m.mmu.walks).toBe(2);
    expect(m.world.get(m.roots[0].ptU, 3) & D).toBe(D);
    m.world.set(m.roots[0].ptU, 3, 0x200000n | P | W | U | A); // software clears D, no INVLPG
    expect(read(m, uva(3), ACCESS_WRITE)).toBe(true); // D is known set in the entry: no walk
    expect(m.mmu.walks).toBe(2);
    expect(m.world.get(m.roots[0].ptU, 3) & D).toBe(0n);
  });

  it('a #PF from a cached entry invalidates it, so the retry walks the tables in memory (4.10.4.1)', () => {
    const m = machine();
    mapUser4K(m, m.roots[0], 4, 0x200000n, P | W | A | D); // supervisor page
    read(m, uva(4));
    mapUser4K(m, m.roots[0], 4, 0x200000n, P | W | U | A | D); // now a user page, no INVLPG
    m.cpu.cpl = 3;
    expect(read(m, uva(4))).toBe(false); // the stale supervisor entry faults
    expect(m.mmu.out.errorCode).toBe(PFEC_P | PFEC_U);
    expect(read(m, uva(4))).toBe(true); // and was dropped by the fault
  });

  it('checks rights on a hit with the current mode: SMEP/XD for fetches (4.6.1)', () => {
    const m = machine();
    mapUser4K(m, m.roots[0], 5, 0x200000n, P | W | U | A | D | XD);
    m.cpu.cpl = 3;
    expect(read(m, uva(5))).toBe(true);
    expect(read(m, uva(5), ACCESS_FETCH)).toBe(false);
    expect(m.mmu.out.errorCode & 0x10).toBe(0x10);
  });
});

// ------------------------------------------------------------------------------------------------
// The world of the properties: two roots, and slots whose leaves the commands rewrite.
//   user 4K slots 0..5 (PT under PDE 0), the flip PDE 1 (2 MiB leaf or a PT with 4K slots),
//   2 MiB slots at PDE 2..3, a 1 GiB slot at PDPTE 1, kernel 4K slots 0..3 (may be global).
interface Slot { kind: '4K' | 'flip4K' | 'flip2M' | '2M' | '1G' | 'K4K' | 'pde0'; i: number }
const SLOTS: Slot[] = [
  ...[0, 1, 2, 3, 4, 5].map((i) => ({ kind: '4K' as const, i })),
  { kind: 'flip4K', i: 0 }, { kind: 'flip4K', i: 1 }, { kind: 'flip2M', i: 0 },
  { kind: '2M', i: 2 }, { kind: '2M', i: 3 }, { kind: '1G', i: 1 },
  ...[0, 1, 2, 3].map((i) => ({ kind: 'K4K' as const, i })),
  { kind: 'pde0', i: 0 },
];
/** Virtual addresses whose translations the reference tracks (the flip PDE is seen through two). */
const PROBES: bigint[] = [
  ...[0, 1, 2, 3, 4, 5].map(uva),
  USER_BASE + 0x200000n, USER_BASE + 0x201000n,
  USER_BASE + 0x400000n, USER_BASE + 0x600000n, USER_BASE + 0x40000000n,
  ...[0, 1, 2, 3].map(kva),
];
/** The probe through which each slot is seen. */
const SLOT_PROBE = [0, 1, 2, 3, 4, 5, 6, 7, 6, 8, 9, 10, 11, 12, 13, 14, 0];
/** Offsets a command may add to each probe: anywhere in the largest page the probe can be in. */
const PROBE_SPAN: bigint[] = [...PROBES.map(() => 0xfffn)];
PROBE_SPAN[8] = PROBE_SPAN[9] = 0x1fffffn;
PROBE_SPAN[10] = 0x3fffffffn;

type Cmd =
  | { t: 'edit'; root: number; slot: number; present: boolean; frame: number; u: boolean; w: boolean; xd: boolean; g: boolean; d: boolean; key: number }
  | { t: 'access'; probe: number; off: number; access: number; cpl: number }
  | { t: 'cr3'; root: number; pcid: number; noFlush: boolean }
  | { t: 'invlpg'; probe: number; off: number }
  | { t: 'invpcid'; type: number; pcid: number; probe: number; off: number }
  | { t: 'cr4'; bit: 'pge' | 'pcide' | 'smep' }
  | { t: 'remap'; edit: Extract<Cmd, { t: 'edit' }>; how: number; pcid: number; off: number };

const editArb = (present: fc.Arbitrary<boolean>) => fc.record({
  t: fc.constant('edit' as const), root: fc.nat(1), slot: fc.nat(SLOTS.length - 1), present, frame: fc.nat(3),
  u: fc.nat(4).map((n) => n > 0), w: fc.nat(4).map((n) => n > 0), xd: fc.boolean(), g: fc.boolean(), d: fc.boolean(), key: fc.nat(3),
});
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: editArb(fc.nat(9).map((n) => n < 8)) },
  { weight: 12, arbitrary: fc.record({ t: fc.constant('access' as const), probe: fc.nat(PROBES.length - 1), off: fc.nat(0x3fffffff), access: fc.constantFrom(ACCESS_READ, ACCESS_WRITE, ACCESS_FETCH), cpl: fc.constantFrom(0, 3) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cr3' as const), root: fc.nat(1), pcid: fc.nat(3), noFlush: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('invlpg' as const), probe: fc.nat(PROBES.length - 1), off: fc.nat(0x3fffffff) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('invpcid' as const), type: fc.nat(3), pcid: fc.nat(3), probe: fc.nat(PROBES.length - 1), off: fc.nat(0x3fffffff) }) },
  // What an OS does: rewrite a leaf, then invalidate it (INVLPG, or INVPCID type 0 for the
  // current or another PCID) at some address inside the page.
  { weight: 3, arbitrary: fc.record({ t: fc.constant('remap' as const), edit: editArb(fc.nat(9).map((n) => n < 8)), how: fc.nat(2), pcid: fc.nat(3), off: fc.nat(0x3fffffff) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cr4' as const), bit: fc.constantFrom('pge' as const, 'pcide' as const, 'smep' as const) }) },
);

/** A start where every slot of both roots is mapped, then a random command sequence. */
const scriptArb: fc.Arbitrary<Cmd[]> = fc
  .tuple(fc.array(editArb(fc.constant(true)), { minLength: 34, maxLength: 34 }), fc.array(cmdArb, { minLength: 30, maxLength: 120 }))
  .map(([init, rest]) => [...init.map((e, i) => ({ ...e, root: i & 1, slot: i >> 1 })), ...rest]);

const FRAMES = [0x40000000n, 0x80000000n, 0xc0000000n, 0x100000000n]; // 1 GiB aligned: fit any size

function applyEdit(m: M, c: Extract<Cmd, { t: 'edit' }>): void {
  const r = m.roots[c.root];
  const s = SLOTS[c.slot];
  const rights = (c.u ? U : 0n) | (c.w ? W : 0n) | (c.xd ? XD : 0n);
  const leaf = (sizeOff: bigint) => (c.present ? P : 0n) | FRAMES[c.frame] | sizeOff | rights | A | (c.d ? D : 0n) | (c.g ? G : 0n) | pk(c.key);
  switch (s.kind) {
    case '4K': m.world.set(r.ptU, s.i, leaf(BigInt(s.i) << 12n)); break;
    case 'flip4K': m.world.set(r.ptFlip, s.i, leaf(BigInt(s.i) << 12n)); m.world.set(r.pdU, 1, BigInt(r.ptFlip) | P | W | U); break;
    case 'flip2M': m.world.set(r.pdU, 1, leaf(0n) | PS); break;
    case '2M': m.world.set(r.pdU, s.i, leaf(0n) | PS); break;
    case '1G': m.world.set(r.pdptU, s.i, leaf(0n) | PS); break;
    case 'K4K': m.world.set(r.ptK, s.i, leaf(BigInt(s.i) << 12n) & ~U); break;
    case 'pde0': m.world.set(r.pdU, 0, BigInt(r.ptU) | P | rights); break; // rights fold through a PDE
  }
}

/** The reference: translations allowed per (PCID, size, page), non-global and global apart. */
class Reference {
  private readonly nonGlobal = new Map<string, Set<string>>();
  private readonly global = new Map<string, Set<string>>();
  static page(va: bigint, shift: number): string {
    return `${shift}:${(va & MASK64) >> BigInt(shift)}`;
  }
  static tr(frame: bigint, u: boolean, w: boolean, xd: boolean, pkey: number): string {
    return `${frame}/${u}/${w}/${xd}/${pkey}`;
  }
  /** Record what the tables say now for every probe under the current CR3. */
  record(m: M): void {
    for (const va of PROBES) {
      const t = refWalk(m.world.mem, m.cpu.rootAddr, va, m.cpu.nxe);
      if (!t) continue;
      const key = Reference.page(va, t.shift);
      const global = t.g && m.cpu.pge; // 4.10.2.4
      const map = global ? this.global : this.nonGlobal;
      const k = global ? key : `${m.cpu.pcid}|${key}`;
      let set = map.get(k);
      if (!set) map.set(k, (set = new Set()));
      set.add(Reference.tr(t.frame, t.u, t.w, t.xd, t.pkey));
    }
  }
  allowed(pcid: number, va: bigint, shift: number, tr: string): boolean {
    const key = Reference.page(va, shift);
    return (this.nonGlobal.get(`${pcid}|${key}`)?.has(tr) ?? false) || (this.global.get(key)?.has(tr) ?? false);
  }
  // SDM 4.10.4.1 invalidations, as sets.
  dropPcid(pcid: number): void {
    for (const k of [...this.nonGlobal.keys()]) if (k.startsWith(`${pcid}|`)) this.nonGlobal.delete(k);
  }
  dropNonGlobal(): void { this.nonGlobal.clear(); }
  dropAll(): void { this.nonGlobal.clear(); this.global.clear(); }
  dropPage(pcid: number, va: bigint, globals: boolean): void {
    for (const shift of [12, 21, 30]) {
      const key = Reference.page(va, shift);
      this.nonGlobal.delete(`${pcid}|${key}`);
      if (globals) this.global.delete(key);
    }
  }
}

function runCommands(m: M, cmds: Cmd[], check: (what: string) => void, ref?: Reference): void {
  ref?.record(m);
  for (const c of cmds) {
    switch (c.t) {
      case 'edit':
        applyEdit(m, c);
        break;
      case 'access': {
        m.cpu.cpl = c.cpl;
        const va = PROBES[c.probe] + (BigInt(c.off) & PROBE_SPAN[c.probe]);
        const { lo, hi } = halves(va);
        if (m.mmu.translate(lo, hi, c.access) && ref) {
          const o = m.mmu.out;
          const tr = Reference.tr(BigInt(o.frame), o.user, o.writable, o.executeDisable, o.pkey);
          if (!ref.allowed(m.cpu.pcid, va, o.pageShift, tr)) {
            throw new Error(`translation of 0x${va.toString(16)} under PCID ${m.cpu.pcid} to ${tr} (shift ${o.pageShift}) is not one the tables gave since the last invalidation`);
          }
        }
        break;
      }
      case 'cr3': {
        const pcid = m.cpu.pcide ? c.pcid : 0;
        const noFlush = m.cpu.pcide && c.noFlush;
        expect(cr3(m, m.roots[c.root], pcid, noFlush)).toBe(0);
        if (!noFlush) ref?.dropPcid(pcid);
        check(`cr3 pcid=${pcid} noFlush=${noFlush}`);
        break;
      }
      case 'invlpg': {
        const va = PROBES[c.probe] + (BigInt(c.off) & PROBE_SPAN[c.probe]);
        const { lo, hi } = halves(va);
        m.cpu.cpl = 0;
        m.mmu.invlpg(lo, hi);
        ref?.dropPage(m.cpu.pcid, va, true);
        break;
      }
      case 'invpcid': {
        m.cpu.cpl = 0;
        const pcid = m.cpu.pcide ? c.pcid : 0;
        const va = PROBES[c.probe] + (BigInt(c.off) & PROBE_SPAN[c.probe]);
        const { lo, hi } = halves(va);
        expect(m.mmu.invpcid(c.type, pcid, lo, hi)).toBe(0);
        if (c.type === 0) ref?.dropPage(pcid, va, false);
        else if (c.type === 1) ref?.dropPcid(pcid);
        else if (c.type === 2) ref?.dropAll();
        else ref?.dropNonGlobal();
        check(`invpcid ${c.type} pcid=${pcid}`);
        break;
      }
      case 'remap': {
        applyEdit(m, c.edit);
        ref?.record(m); // (the edited tables hold from the edit on, until the invalidation below)
        const probe = SLOT_PROBE[c.edit.slot];
        const va = PROBES[probe] + (BigInt(c.off) & PROBE_SPAN[probe]);
        const { lo, hi } = halves(va);
        m.cpu.cpl = 0;
        if (c.how === 0) {
          m.mmu.invlpg(lo, hi);
          ref?.dropPage(m.cpu.pcid, va, true);
        } else {
          const pcid = !m.cpu.pcide ? 0 : c.how === 1 ? m.cpu.pcid : c.pcid;
          expect(m.mmu.invpcid(0, pcid, lo, hi)).toBe(0);
          ref?.dropPage(pcid, va, false);
        }
        break;
      }
      case 'cr4': {
        const cr4 = m.cpu.cr4;
        if (c.bit === 'pge') { m.mmu.writeCr4(cr4 ^ CR4_PGE); ref?.dropAll(); }
        else if (c.bit === 'smep') m.mmu.writeCr4(cr4 ^ CR4_SMEP); // the reference keeps all (it may)
        else if (m.cpu.pcide) { m.mmu.writeCr4(cr4 & ~CR4_PCIDE); ref?.dropAll(); }
        else {
          if (m.cpu.cr3 % 4096 !== 0) break;
          expect(m.mmu.writeCr4(cr4 | CR4_PCIDE)).toBe(0);
        }
        break;
      }
    }
    ref?.record(m); // what the tables say after this command is allowed from now on
  }
}

const GEOMETRIES: Partial<TlbGeometry>[] = [
  {},
  { sets4K: 2, ways4K: 2, sets2M: 1, ways2M: 2, sets1G: 1, ways1G: 1 }, // tiny: evictions all the time
];

describe('TLB: properties against the invalidation reference', () => {
  it('(a) a translation never differs from one the tables gave since the last required invalidation', () => {
    fc.assert(
      fc.property(scriptArb, fc.boolean(), fc.nat(1), (cmds, pcide, g) => {
        const m = machine({ pcide, geometry: GEOMETRIES[g] });
        runCommands(m, cmds, () => {}, new Reference());
      }),
      { numRuns: 300 },
    );
  });

  it('(b) MOV CR3 without no-flush leaves no non-global entry of the new PCID, and others untouched', () => {
    fc.assert(
      fc.property(scriptArb, fc.nat(1), fc.nat(3), (cmds, root, pcid) => {
        const m = machine({ pcide: true });
        runCommands(m, cmds, () => {});
        const p = m.cpu.pcide ? pcid : 0;
        const others = m.mmu.tlb.countValid((x) => (x & TLB_PCID_MASK) !== p || (x & TLB_G) !== 0);
        cr3(m, m.roots[root], p, false);
        expect(m.mmu.tlb.countValid((x) => (x & TLB_PCID_MASK) === p && (x & TLB_G) === 0)).toBe(0);
        expect(m.mmu.tlb.countValid()).toBe(others);
      }),
      { numRuns: 200 },
    );
  });

  it('(c) INVPCID type 2 leaves nothing; type 3 leaves exactly the global entries', () => {
    fc.assert(
      fc.property(scriptArb, fc.boolean(), (cmds, pcide) => {
        const m = machine({ pcide });
        runCommands(m, cmds, () => {});
        m.cpu.cpl = 0;
        const globals = m.mmu.tlb.countValid((x) => (x & TLB_G) !== 0);
        expect(m.mmu.invpcid(3, 0, 0, 0)).toBe(0);
        expect(m.mmu.tlb.countValid()).toBe(globals);
        expect(m.mmu.invpcid(2, 0, 0, 0)).toBe(0);
        expect(m.mmu.tlb.countValid()).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('(d) within a set, the least recently used way is evicted (true LRU)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.nat(11), { maxLength: 200 }), (ways, pages) => {
        const tlb = new Tlb({ sets4K: 1, ways4K: ways, sets2M: 1, ways2M: 1, sets1G: 1, ways1G: 1 });
        const res = new TlbResult();
        const lru: number[] = []; // reference: most recent last
        for (const page of pages) {
          const lo = (page << 12) >>> 0;
          const hit = tlb.lookup(lo, 0, 0, res);
          const at = lru.indexOf(page);
          expect(hit).toBe(at >= 0);
          if (at >= 0) lru.splice(at, 1);
          else {
            tlb.fill(lo, 0, 12, 0, 0, 0x1000 * page);
            if (lru.length === ways) lru.shift();
          }
          lru.push(page);
          const resident: number[] = [];
          for (let i = 0; i < ways; i++) if (tlb.meta[i]) resident.push(tlb.tagLo[i] >>> 12);
          expect(resident.sort((a, b) => a - b)).toEqual([...lru].sort((a, b) => a - b));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('Tlb lookup equals a brute-force scan', () => {
  it('(e) with fills of every size, global or not, several PCIDs, and invalidations in between', () => {
    const op = fc.record({
      kind: fc.nat(9), page: fc.nat(5), pcid: fc.nat(1), shift: fc.constantFrom(12, 21, 30), g: fc.boolean(),
      off: fc.constantFrom(0, 0x1000, 0x1ff000, 0x201000),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 150 }), (ops) => {
        const tlb = new Tlb({ sets4K: 4, ways4K: 2, sets2M: 2, ways2M: 2, sets1G: 1, ways1G: 2 });
        const res = new TlbResult();
        // Pages overlap across sizes on purpose: page k of every size starts at k * 2 MiB.
        const va = (page: number, off: number) => (page * 0x200000 + (off & 0x3fffff)) >>> 0;
        for (const o of ops) {
          const lo = va(o.page, o.off);
          if (o.kind < 4) tlb.fill(lo, 0xffff8000, o.shift, o.pcid, o.g ? TLB_G : 0, o.page * 4096);
          else if (o.kind === 4) tlb.flushAddress(lo, 0xffff8000, o.pcid, o.g);
          else if (o.kind === 5) tlb.flushPcid(o.pcid, o.g);
          else {
            // Brute force: the first valid row, in row order (4 KiB, 2 MiB, 1 GiB), that matches.
            let want = -1;
            for (let i = 0; i < tlb.size && want < 0; i++) {
              const sh = tlb.pageShiftOf(i);
              const mask = sh === 12 ? 0xfffff000 : sh === 21 ? 0xffe00000 : 0xc0000000;
              const m = tlb.meta[i];
              if ((m & 0x1000) && tlb.tagLo[i] === (lo & mask) && tlb.tagHi[i] === (0xffff8000 | 0) &&
                  ((m & TLB_G) || (m & TLB_PCID_MASK) === o.pcid)) want = i;
            }
            const hit = tlb.lookup(lo, 0xffff8000, o.pcid, res);
            expect(hit ? res.index : -1).toBe(want);
            if (hit) expect(res.pageShift).toBe(tlb.pageShiftOf(want));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('Tlb geometry', () => {
  it('defaults to a Skylake L1 DTLB and rejects a set count that is not a power of two', () => {
    const t = new Tlb();
    expect(t.size).toBe(16 * 4 + 8 * 4 + 4);
    expect(() => new Tlb({ sets4K: 12 })).toThrow(RangeError);
  });
});
