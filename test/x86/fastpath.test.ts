// Property test of the TLB-hit fast path (src/x86/fastpath.ts, Mmu.translate/translateBatch).
// Truth: the bare walker (walk.ts, checked against QEMU by capture.test.ts) and the plain
// set-associative TLB with the fast path turned off (the Mmu's slow path, checked against the
// walker by mmu.test.ts). fast-check drives random accesses (every access kind, every page size,
// addresses that collide in the fast path's slots), mode changes (CPL, CR0.WP, RFLAGS.AC, CR4
// SMEP/SMAP/PKE/PKS/PGE, IA32_EFER.NXE, PKRU, PKRS), CR3 writes with and without NOFLUSH (with
// CR4.PCIDE=1 or 0, per run), INVLPG and INVPCID of every type (and an invalid one), and
// leaf-entry changes. Access by access the fast Mmu must give what both give (result, PA, level,
// rights, #PF error code) and leave the same A/D bits in the entries the walk uses; in the end
// the memories are equal and the two TLBs have the same counters (hits, misses, fills,
// evictions: the fast path ages rows as find() does).
//
// Hit or miss and walk or not are compared access by access too, so a fast path serving an entry
// the TLB dropped fails at that access even when memory still agrees with it.
//
// Breaks it catches, each failing in 3 or 4 runs of 3 or 4 (tried, then restored; the second-level
// ones below in the one run tried): the fast
// path's folded rights ignoring SMAP (rights.ts allowed[] built with CR4.SMAP=0: an implicit
// supervisor read of a user page hits), the mode key ignoring EFER.NXE (rights.ts resolve),
// INVLPG leaving a global entry another PCID filled (tlb.ts flushAddress), INVPCID type 0
// leaving the fast-path slot of the entry it dropped (meta cleared, FastTlb.dropRow not called),
// INVLPG or a CR3 write leaving the second-level TLB's entries (TlbControl.flushAddress,
// flushPcid without the stlb line; INVPCID type 3 there is not caught). INVPCID type 0
// dropping global entries too (against SDM Vol. 2 INVPCID, "except global translations") is not
// visible here — it only costs walks — and tlb.test.ts catches it.
//
// World 1 ("coherent"): every entry change is followed by invalidations that suffice under the
// SDM (4.10.4), so the TLB never holds a stale entry and the walker is the truth for every
// access, whatever PCID, NOFLUSH or global entries the steps produce.
// World 2 ("stale"): entry changes may skip invalidation, and 2 MiB / 1 GiB leaves are split into
// smaller ones and merged back: the TLB then holds stale and overlapping entries (allowed, SDM
// 4.10.4.4) and the truth is the slow path alone, which prefers smaller entries (tlb.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PhysMemory } from '../../src/phys/memory.ts';
import {
  ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_READ, ACCESS_WRITE, CR0_WP, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_PKE,
  CR4_PKS, CR4_SMAP, CR4_SMEP, EFER_NXE, RFLAGS_AC,
} from '../../src/x86/bits.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { SIZE_2M, SIZE_4K } from '../../src/x86/pgtable.ts';
import { checkAccess, Translation, translate } from '../../src/x86/walk.ts';
import { buildWorld, cloneMem, leafEntry, MAXPHYS, memDigest, PCIDS, type Page, type World, xorshift } from './fastpath-world.ts';

/**
 * changeLeaf's `inval` that makes invalidateFor pick, for a shared page, INVLPG then INVPCID type 0
 * for the other PCIDs (7 % 4 = 3), and that the stale world does not skip (7 % 3 != 0).
 */
const INVAL_BY_INVLPG = 7;
const KINDS = [ACCESS_READ, ACCESS_WRITE, ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_IMPLICIT | ACCESS_WRITE];
const KEY_REGS = [0, 0x55555555, 0xaaaaaaaa, 0xffffffff, 0x0000000c, 0xc0000000];
const GEOMETRIES = [
  {}, // Skylake L1 DTLB
  { sets4K: 2, ways4K: 2, sets2M: 1, ways2M: 2, sets1G: 1, ways1G: 1 }, // constant eviction
  { sets4K: 4, ways4K: 1, sets2M: 2, ways2M: 1, sets1G: 1, ways1G: 0 }, // direct-mapped, no 1 GiB array
];
/**
 * Second levels (Mmu's stlb): none, or one larger than the small first levels above, so that
 * first-level misses are served from it; a second level that kept an entry an invalidation
 * should have dropped serves a stale translation the walker does not give.
 */
const STLBS = [null, { sets4K: 8, ways4K: 4, sets2M: 4, ways2M: 2, sets1G: 1, ways1G: 2 }, { sets4K: 16, ways4K: 8, sets2M: 8, ways2M: 4, sets1G: 2, ways1G: 2 }];

type Step =
  | { t: 'access'; page: number; off: number; kinds: number[] }
  | { t: 'batch'; pages: number[]; off: number; kind: number }
  | { t: 'stray'; lo: number; hi: number; kind: number }
  | { t: 'cpl'; v: number }
  | { t: 'wp' } | { t: 'ac' } | { t: 'nxe' }
  | { t: 'cr4'; bit: number }
  | { t: 'pkru'; v: number } | { t: 'pkrs'; v: number }
  | { t: 'cr3'; root: number; noflush: boolean }
  | { t: 'invlpg'; page: number; off: number }
  | { t: 'invpcid'; type: number; pcid: number; page: number }
  | { t: 'drop'; how: number; page: number; off: number; kind: number }
  | { t: 'kpte'; page: number; xorLo: number; xorHi: number; off: number; kind: number }
  | { t: 'pte'; page: number; xorLo: number; xorHi: number; inval: number }
  | { t: 'split'; page: number; merge: boolean };

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const keyReg = fc.oneof(fc.constantFrom(...KEY_REGS), u32);
const stepArb = (stale: boolean): fc.Arbitrary<Step> => fc.oneof(
  // Mostly a hot set of a few pages, several touches each, so entries get reused.
  { weight: 50, arbitrary: fc.record({ t: fc.constant('access' as const), page: fc.oneof(fc.nat(7), fc.nat(7), fc.nat()), off: u32, kinds: fc.array(fc.nat(4), { minLength: 1, maxLength: 6 }) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('batch' as const), pages: fc.array(fc.nat(), { maxLength: 12 }), off: u32, kind: fc.nat(4) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('stray' as const), lo: u32, hi: fc.oneof(fc.constant(0), fc.constant(0xffff8000), u32), kind: fc.nat(4) }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('cpl' as const), v: fc.constantFrom(0, 0, 3) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'wp' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'ac' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'nxe' as const }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('cr4' as const), bit: fc.constantFrom(CR4_SMEP, CR4_SMAP, CR4_PKE, CR4_PKS, CR4_PGE) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('pkru' as const), v: keyReg }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('pkrs' as const), v: keyReg }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('cr3' as const), root: fc.nat(2), noflush: fc.boolean() }) },
  // Invalidations mostly of the hot pages, and INVPCID often of the current PCID (pcid -1), so
  // that what they drop is what the next accesses would have hit.
  { weight: 2, arbitrary: fc.record({ t: fc.constant('invlpg' as const), page: fc.oneof(fc.nat(7), fc.nat()), off: u32 }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('invpcid' as const), type: fc.integer({ min: 0, max: 4 }), pcid: fc.oneof(fc.constant(-1), fc.nat(4)), page: fc.oneof(fc.nat(7), fc.nat()) }) },
  // An invalidation of a hot page by the current PCID, then an access to it: the entry it dropped
  // must not be served (INVPCID types 0, 1, 3 and INVLPG).
  { weight: 3, arbitrary: fc.record({ t: fc.constant('drop' as const), how: fc.nat(3), page: fc.nat(7), off: u32, kind: fc.nat(4) }) },
  // A hot kernel page (shared by all roots, often global) changed and invalidated by INVLPG, which
  // must drop its global entry whatever PCID filled it (SDM 4.10.4.1), then accessed.
  { weight: 2, arbitrary: fc.record({ t: fc.constant('kpte' as const), page: fc.nat(7), xorLo: u32, xorHi: u32, off: u32, kind: fc.nat(4) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('pte' as const), page: fc.oneof(fc.nat(8), fc.nat()), xorLo: u32, xorHi: u32, inval: fc.nat() }) },
  ...(stale ? [{ weight: 2, arbitrary: fc.record({ t: fc.constant('split' as const), page: fc.nat(), merge: fc.boolean() }) }] : []),
);

/** What a caller may rely on after translate(), as a string. */
function summary(ok: boolean, t: Translation): string {
  if (!ok) return `fault v${t.vector} ec${t.errorCode} L${t.level}`;
  return `ok pa=${t.pa.toString(16)} frame=${t.frame.toString(16)} shift=${t.pageShift} L${t.level} u=${t.user} w=${t.writable} xd=${t.executeDisable} pk=${t.pkey}`;
}

function counters(m: Mmu): string {
  const t = m.tlb;
  return `hits ${t.hits} misses ${t.misses} fills ${t.fills} evictions ${t.evictions} invalidated ${t.invalidated} walks ${m.walks} stlb hits ${m.stlbHits} flushes ${m.flushes}`;
}

/** Whether the fast path alone would serve this access (read-only look at Mmu internals). */
function fastWouldHit(m: Mmu, lo: number, hi: number, kind: number): boolean {
  const x = m as unknown as { modeVersion: number; syncMode(): void; probe(lo: number, hi: number, a: number): number };
  if (m.cpu.modeVersion !== x.modeVersion) x.syncMode();
  return x.probe(lo, hi, kind) >= 0;
}

export const stats = {
  accesses: 0, fastHits: 0, stlbHits: 0, fastHitsBySize: [0, 0, 0], batches: 0, staleSteps: 0, adChecked: 0,
  // Accesses made with CR4.SMAP=1 (faults among them), with EFER.NXE=0, and INVPCID by type 0..4.
  smap: 0, smapFaults: 0, noNxe: 0, invpcid: [0, 0, 0, 0, 0],
};

class Machine {
  readonly memA: PhysMemory;
  readonly memB: PhysMemory;
  readonly memC: PhysMemory;
  readonly cpus: CpuState[];
  readonly fast: Mmu;
  readonly slow: Mmu;
  readonly ref = new Translation();
  rootIndex = 0;
  log: string[] = [];

  constructor(readonly w: World, geometry: object, readonly pcide: boolean, readonly stale: boolean, stlb: object | null = null) {
    this.memA = w.mem;
    this.memB = cloneMem(w.mem);
    this.memC = cloneMem(w.mem);
    this.cpus = [0, 1, 2].map(() => new CpuState(MAXPHYS).load({
      cr0: 0x80050033, cr4: CR4_PAE | CR4_PGE | (pcide ? CR4_PCIDE : 0), efer: 0xd01,
      cr3: w.tables[0].root | BigInt(pcide ? PCIDS[0] : 0),
    }));
    this.fast = new Mmu(this.cpus[0], this.memA, geometry, stlb);
    this.slow = new Mmu(this.cpus[1], this.memB, geometry, stlb);
    this.slow.tlb.fast.enabled = false;
  }

  page(i: number): Page {
    return this.w.pages[i % this.w.pages.length];
  }

  addr(p: Page, off: number): { lo: number; hi: number } {
    const o = off % Number(p.size);
    return { lo: (p.lo + o) | 0, hi: p.hi }; // page VAs are aligned: the offset never carries
  }

  /** Apply a register change to all three CPUs (derive() after). */
  regs(f: (c: CpuState) => void): void {
    for (const c of this.cpus) { f(c); c.derive(); }
  }

  copyControl(): void {
    const [a, , c] = this.cpus;
    c.cr0 = a.cr0; c.cr3 = a.cr3; c.cr4 = a.cr4; c.rflags = a.rflags;
    c.cpl = a.cpl; c.pkru = a.pkru; c.pkrs = a.pkrs;
    c.derive();
  }

  access(lo: number, hi: number, kind: number, where: string): void {
    const hit = fastWouldHit(this.fast, lo, hi, kind);
    const got = summary(this.fast.translate(lo, hi, kind), this.fast.out);
    const slow = summary(this.slow.translate(lo, hi, kind), this.slow.out);
    stats.accesses++;
    if (hit) { stats.fastHits++; if (got.startsWith('ok')) stats.fastHitsBySize[(this.fast.out.pageShift - 12) / 9]++; }
    if (got !== slow) this.fail(`${where}: fast ${got}${hit ? ' (fast hit)' : ''}, slow path ${slow}`);
    // Hit or miss, and walk or not, access by access (a fast path serving a dropped entry shows here).
    if (this.fast.walks !== this.slow.walks || this.fast.tlb.misses !== this.slow.tlb.misses) {
      this.fail(`${where}: fast ${got}${hit ? ' (fast hit)' : ''}, TLB ${counters(this.fast)}; slow path ${counters(this.slow)}`);
    }
    const c0 = this.cpus[0];
    if (c0.smap) { stats.smap++; if (!got.startsWith('ok')) stats.smapFaults++; }
    if (!c0.nxe) stats.noNxe++;
    if (this.stale) {
      // A/D: the entries either Mmu walked for this access hold the same bits in both memories.
      for (const m of [this.fast, this.slow]) this.sameEntries(m.out.entryAddr, [this.memA, this.memB], where);
    } else {
      const ok = translate(this.memC, this.cpus[2], lo, hi, kind, this.ref);
      const want = summary(ok, this.ref);
      if (got !== want) this.fail(`${where}: fast ${got}${hit ? ' (fast hit)' : ''}, walker ${want}`);
      // A/D (SDM 4.8), access by access: the entries of this VA's walk hold the same bits after
      // the fast Mmu, the slow Mmu and the walker (a hit writes nothing; a walk sets A, D).
      this.sameEntries(this.ref.entryAddr, [this.memA, this.memB, this.memC], where);
      // The walker and both Mmus read the rules from the mode's table (rights.ts); check the
      // verdict once more against the rules themselves, so a stale table cannot agree with itself.
      const r = this.ref;
      if (ok || (r.vector === 14 && (r.errorCode & 9) === 1)) {
        const rule = checkAccess(this.cpus[2], r.user, r.writable, r.executeDisable, r.pkey, kind);
        if (rule !== (ok ? 0 : r.errorCode)) this.fail(`${where}: walker ${want}, checkAccess() says ${rule}`);
      }
    }
  }

  /** The paging-structure entries at `ea` (by level; -1 not reached) are equal in every memory of `mems`. */
  sameEntries(ea: Float64Array, mems: PhysMemory[], where: string): void {
    for (let l = 1; l <= 5; l++) {
      const a = ea[l];
      if (a < 0) continue;
      stats.adChecked++;
      const v = mems.map((m) => m.read32(a).toString(16));
      if (v.some((x) => x !== v[0])) this.fail(`${where}: level-${l} entry at ${a.toString(16)} after the access: ${v.join(' / ')} (fast / slow${mems.length > 2 ? ' / walker' : ''}: A/D differ)`);
    }
  }

  fail(msg: string): never {
    throw new Error(`${msg}\n  cpu cr4=${this.cpus[0].cr4.toString(16)} cr3=${this.cpus[0].cr3.toString(16)} cpl=${this.cpus[0].cpl} ` +
      `pkru=${this.cpus[0].pkru.toString(16)} pkrs=${this.cpus[0].pkrs.toString(16)}\n  last steps: ${this.log.slice(-8).join(' | ')}`);
  }

  /** Both Mmus run the same instruction; their answers (0 or #GP) must agree. */
  both(f: (m: Mmu) => number, what: string): number {
    const a = f(this.fast);
    const b = f(this.slow);
    if (a !== b) this.fail(`${what}: fast Mmu returned ${a}, slow ${b}`);
    this.copyControl();
    return a;
  }

  write64(pa: number, value: bigint): void {
    for (const m of [this.memA, this.memB, this.memC]) m.write64Big(pa, value);
  }

  /** An instruction at CPL 0 (INVLPG, INVPCID need it), restoring the CPL after. */
  atCpl0(f: () => void): void {
    const cpl = this.cpus[0].cpl;
    this.regs((c) => { c.cpl = 0; });
    f();
    this.regs((c) => { c.cpl = cpl; });
  }

  invpcid(type: number, pcid: number, lo: number, hi: number): void {
    if (this.both((m) => m.invpcid(type, pcid, lo, hi), `invpcid ${type}`) === 0) stats.invpcid[type]++;
    else stats.invpcid[4]++;
  }

  /** Invalidations that suffice (SDM 4.10.4) after changing the leaf of `p`; `k` picks one. */
  invalidateFor(p: Page, k: number): void {
    const { lo, hi } = p;
    const cur = this.rootIndex;
    const pcids = this.pcide ? PCIDS : [0];
    const options: (() => void)[] = [
      () => this.invpcid(2, 0, 0, 0),
      () => { this.invpcid(3, 0, 0, 0); this.both((m) => m.invlpg(lo, hi), 'invlpg'); },
      () => { for (const bit of [CR4_PGE, CR4_PGE]) this.both((m) => m.writeCr4(m.cpu.cr4 ^ bit), 'cr4 PGE'); },
    ];
    if (p.root < 0 || !this.pcide) {
      // Shared or global: INVLPG drops the current PCID's and global entries; the other PCIDs by INVPCID 0.
      options.push(() => {
        this.both((m) => m.invlpg(lo, hi), 'invlpg');
        for (const pcid of pcids) if (pcid !== pcids[cur % pcids.length]) this.invpcid(0, pcid, lo, hi);
      });
    } else {
      const pcid = PCIDS[p.root];
      options.push(() => this.invpcid(0, pcid, lo, hi), () => this.invpcid(1, pcid, 0, 0));
      if (cur === p.root) options.push(() => this.both((m) => m.invlpg(lo, hi), 'invlpg'));
      options.push(() => this.writeCr3(p.root, false)); // not NOFLUSH: the PCID's non-global entries
    }
    this.atCpl0(options[k % options.length]);
  }

  writeCr3(root: number, noflush: boolean): void {
    const lo = Number(this.w.tables[root].root) + (this.pcide ? PCIDS[root] : 0);
    if (this.both((m) => m.writeCr3(lo, noflush ? 0x80000000 : 0), `cr3 root ${root}${noflush ? ' noflush' : ''}`) === 0) this.rootIndex = root;
  }

  /** Change the leaf of `p` (XOR its bits, keeping PS and the address within MAXPHYADDR mostly). */
  changeLeaf(p: Page, xorLo: number, xorHi: number, inval: number): void {
    const ea = leafEntry(this.w, p.root < 0 ? 0 : p.root, p);
    if (ea === null) return; // split away (stale world)
    const large = p.size !== SIZE_4K;
    // Keep PS (bit 7 of a large leaf); flip rights, A/D, G, P, the key, XD, low address bits.
    const lo = (xorLo & (large ? 0xe0000f7f : 0x0003ffff)) >>> 0;
    const hi = (xorHi & (xorHi & 1 ? 0xf8040000 : 0xf8000000)) >>> 0; // bit 50 (reserved) sometimes
    const old = this.memA.read64Big(ea);
    let v = old ^ ((BigInt(hi) << 32n) | BigInt(lo));
    // A global user page would be stale under every other root (the OS keeps global mappings
    // the same in all address spaces, SDM 4.10.2.4): user leaves stay non-global, coherently.
    if (!this.stale && p.root >= 0) v &= ~0x100n;
    this.write64(ea, v);
    if (this.stale && inval % 3 === 0) { stats.staleSteps++; return; } // no invalidation at all
    this.invalidateFor(p, inval);
  }

  /** Stale world: replace a large leaf by a table of the next size down, or merge it back. */
  split(p: Page, merge: boolean): void {
    if (p.size === SIZE_4K) return;
    const level = p.size === SIZE_2M ? 2 : 3;
    const pt = this.w.tables[p.root < 0 ? 0 : p.root];
    const ent = pt.findEntry(p.va, level);
    if (ent === null || (ent.value & 1n) === 0n) return;
    const ea = Number(ent.addr);
    const e = ent.value;
    const isLeaf = (e & 0x80n) !== 0n;
    if (merge === isLeaf) return;
    if (isLeaf) {
      // split_large_page() in spirit: 512 entries of the next size with the same bits.
      const table = pt.newTable();
      const step = level === 2 ? SIZE_4K : SIZE_2M;
      const base = e & 0x000fffffffe00000n & ~(p.size - 1n);
      const attrs = (e & ~0x000ffffffffff000n) & ~(level === 2 ? 0x80n : 0n);
      for (let i = 0n; i < 512n; i++) this.write64(Number(table + i * 8n), (base + i * step) | attrs);
      this.write64(ea, table | 0x63n | (e & 4n));
    } else {
      const first = this.memA.read64Big(Number(e & 0x000ffffffffff000n));
      this.write64(ea, (first & ~0xfffn & ~(p.size - 1n)) | (first & 0xf7fn) | 0x80n);
    }
  }

  run(s: Step): void {
    this.log.push(JSON.stringify(s));
    switch (s.t) {
      case 'access': {
        const p = this.page(s.page);
        s.kinds.forEach((k, j) => {
          const { lo, hi } = this.addr(p, s.off + j * 200);
          this.access(lo, hi, KINDS[k], `access ${p.va.toString(16)}+${((s.off + j * 200) % Number(p.size)).toString(16)} kind ${KINDS[k]}`);
        });
        break;
      }
      case 'batch': this.batch(s); break;
      case 'stray': this.access(s.lo | 0, s.hi | 0, KINDS[s.kind], `stray ${s.hi.toString(16)}:${s.lo.toString(16)}`); break;
      // CPL, PKRU and IA32_PKRS change without derive(), as software changes them (cpu.ts).
      case 'cpl': for (const c of this.cpus) c.cpl = s.v; break;
      case 'wp': this.regs((c) => { c.cr0 ^= CR0_WP; }); break;
      case 'ac': this.regs((c) => { c.rflags ^= RFLAGS_AC; }); break;
      case 'nxe':
        // WRMSR IA32_EFER. No SDM invalidation comes with it, and TLB entries hold XD as folded
        // under the old NXE (4.10.2.2): the coherent world then flushes (INVPCID type 2), the
        // stale world keeps them (fast and slow path must still agree).
        this.regs((c) => { c.efer ^= EFER_NXE; });
        if (!this.stale) this.atCpl0(() => this.invpcid(2, 0, 0, 0));
        break;
      case 'cr4': this.both((m) => m.writeCr4(m.cpu.cr4 ^ s.bit), `cr4 ^ ${s.bit.toString(16)}`); break;
      case 'pkru': for (const c of this.cpus) c.pkru = s.v >>> 0; break;
      case 'pkrs': for (const c of this.cpus) c.pkrs = s.v >>> 0; break;
      case 'cr3': this.writeCr3(s.root, s.noflush); break;
      case 'invlpg': {
        const { lo, hi } = this.addr(this.page(s.page), s.off);
        this.both((m) => m.invlpg(lo, hi), 'invlpg');
        break;
      }
      case 'invpcid': {
        const p = this.page(s.page);
        this.invpcid(s.type, s.pcid < 0 ? this.cpus[0].pcid : s.pcid, p.lo, p.hi);
        break;
      }
      case 'drop': {
        const p = this.page(s.page);
        const { lo, hi } = this.addr(p, s.off);
        const pcid = this.cpus[0].pcid;
        this.atCpl0(() => {
          if (s.how === 3) this.both((m) => m.invlpg(lo, hi), 'invlpg');
          else this.invpcid([0, 1, 3][s.how], pcid, lo, hi);
        });
        this.access(lo, hi, KINDS[s.kind], `access after drop ${s.how} ${p.va.toString(16)}`);
        break;
      }
      case 'kpte': {
        const p = this.page(s.page);
        this.changeLeaf(p, s.xorLo, s.xorHi, INVAL_BY_INVLPG);
        const { lo, hi } = this.addr(p, s.off);
        this.access(lo, hi, KINDS[s.kind], `access after kpte ${p.va.toString(16)}`);
        break;
      }
      case 'pte': this.changeLeaf(this.page(s.page), s.xorLo, s.xorHi, s.inval); break;
      case 'split': this.split(this.page(s.page), s.merge); break;
    }
  }

  /** translateBatch on the fast Mmu against one translate() per touch on the slow one. */
  batch(s: { pages: number[]; off: number; kind: number }): void {
    const n = s.pages.length;
    const lo = new Int32Array(n), hi = new Int32Array(n), acc = new Uint8Array(n).fill(KINDS[s.kind]);
    s.pages.forEach((pi, i) => { const a = this.addr(this.page(pi), s.off + i * 64); lo[i] = a.lo; hi[i] = a.hi; });
    const pa = new Float64Array(n).fill(-1);
    const stop = this.fast.translateBatch(lo, hi, acc, 0, n, pa);
    stats.batches++;
    for (let i = 0; i < n; i++) {
      const ok = this.slow.translate(lo[i], hi[i], acc[i]);
      if (!this.stale) translate(this.memC, this.cpus[2], lo[i], hi[i], acc[i], this.ref);
      if (i === stop) {
        if (ok) this.fail(`batch stopped at ${i}, slow path translated it`);
        const want = summary(false, this.slow.out);
        if (summary(false, this.fast.out) !== want) this.fail(`batch fault at ${i}: fast ${summary(false, this.fast.out)}, slow ${want}`);
        return;
      }
      if (!ok) this.fail(`batch went past ${i}, which faults: ${summary(false, this.slow.out)}`);
      if (pa[i] !== this.slow.out.pa) this.fail(`batch pa[${i}] ${pa[i].toString(16)}, slow path ${this.slow.out.pa.toString(16)}`);
    }
    if (stop !== n) this.fail(`batch returned ${stop} of ${n}`);
  }

  finish(): void {
    if (counters(this.fast) !== counters(this.slow)) this.fail(`TLB counters: fast ${counters(this.fast)}, slow ${counters(this.slow)}`);
    const a = memDigest(this.memA);
    if (a !== memDigest(this.memB)) this.fail('memories differ (A/D bits): fast Mmu vs slow Mmu');
    if (!this.stale && a !== memDigest(this.memC)) this.fail('memories differ (A/D bits): fast Mmu vs walker');
  }
}

function property(stale: boolean, runs: number): void {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 0x7fffffff }), fc.nat(GEOMETRIES.length - 1), fc.boolean(), fc.nat(STLBS.length - 1), fc.array(stepArb(stale), { minLength: 50, maxLength: 400, size: 'max' }),
    (seed, g, pcide, l2, steps) => {
      const m = new Machine(buildWorld(xorshift(seed)), GEOMETRIES[g], pcide, stale, STLBS[l2]);
      for (const s of steps) m.run(s);
      m.finish();
      stats.stlbHits += m.fast.stlbHits;
    },
  ), { numRuns: runs });
}

describe('TLB-hit fast path equals the walker and the slow path', () => {
  it('coherent world: every access as the walker gives it (result, PA, #PF error code, A/D bits)', () => {
    const before = stats.fastHits;
    property(false, 150);
    expect(stats.fastHits - before).toBeGreaterThan(2000); // the fast path served many of them
  });

  it('stale world: stale and overlapping entries served as Tlb.find() would (smaller pages first)', () => {
    property(true, 120);
    expect(stats.staleSteps).toBeGreaterThan(50);
  });

  it('the fast path served every page size and the batch API ran', () => {
    for (const n of stats.fastHitsBySize) expect(n).toBeGreaterThan(20);
    expect(stats.batches).toBeGreaterThan(100);
  });

  it('the runs reached the modes and instructions they are meant to check', () => {
    expect(stats.adChecked).toBeGreaterThan(stats.accesses); // entries compared after each access
    expect(stats.smap).toBeGreaterThan(2000);
    expect(stats.smapFaults).toBeGreaterThan(200);
    expect(stats.noNxe).toBeGreaterThan(2000);
    for (const n of stats.invpcid) expect(n).toBeGreaterThan(50); // types 0..3 done, and #GP for bad ones
    expect(stats.stlbHits).toBeGreaterThan(60); // the second level served first-level misses (206-294 in four runs)
  });
});
