/**
 * Event → touches → MMU/TLB → L1D, fill buffers, load ports, store buffer (docs/DESIGN.md "An event
 * expands into touches").
 *
 * Running a plan (sim/plan.ts) translates every touched line through the thread's current CR3
 * with its Mmu (a TLB miss walks), then loads it through
 * the core (an L1D miss fills the line from memory through a fill buffer, the value passes a
 * load port) or stores it (the store buffer; the value written is the one memory holds, so
 * planted secrets are never overwritten). Text pages are instruction fetches (through the
 * instruction TLB, Mmu.fetchSide, where the profile splits the first level): translated, not
 * loaded into the L1D. A translation that faults while the thread runs on a restricted space
 * goes to the ASI session's fault policy; a retry follows FAULT_RETRY / FAULT_MAPPED.
 * Nothing here allocates per touch.
 */
import type { Xoshiro128 } from '../linux/kaslr.ts';
import type { AsiSession } from '../asi/session.ts';
import { FAULT_MAPPED, FAULT_RETRY } from '../asi/types.ts';
import type { Machine } from '../uarch/machine.ts';
import type { PhysMemory } from '../phys/memory.ts';
import type { Mmu } from '../x86/mmu.ts';
import { A_READ, A_RW, A_WRITE, LINES_PER_PAGE, M_HOT_PAGE, M_RANDOM, M_TOP, type Plan, type Reasons } from './plan.ts';
import type { Counts } from './thread.ts';
import type { SciRun } from './sci-run.ts';
import { WalkMeter, type WalkPrices } from './walk-meter.ts';
import { Ephmap } from '../asi/ephmap.ts';

const TWO32 = 4294967296;
/** A data touch the ephmap serves, in runBatched()'s segment list. */
const SEG_EPHMAP = 3;

export interface TouchCosts extends WalkPrices {
  l1dMiss: number;
  /** An INVLPG (ephmap_put()). */
  invlpg: number;
  /** #PF delivery + return, per fault the ASI design takes. */
  fault: number;
}

/**
 * Which path Toucher.run takes: false (the default) batches translations (Mmu.translateHits over
 * the text pages and the data touches' page segments); true translates per touch, the path the
 * batched one must equal (test/sim/batch-engine.test.ts only).
 */
let perTouchPath = false;
export function usePerTouchPath(on: boolean): void {
  perTouchPath = on;
}

/** Runs plans on a thread: the hot path. */
export class Toucher {
  constructor(
    private readonly machine: Machine,
    private readonly mem: PhysMemory,
    private readonly mmus: readonly Mmu[],
    private readonly asi: AsiSession | null,
    private readonly sci: SciRun | null,
    private readonly counts: Counts,
    private readonly reasons: Reasons,
    private readonly costs: TouchCosts,
    private readonly ephmap: Ephmap | null = null,
  ) {
    this.walkMeter = new WalkMeter(costs, counts);
  }

  private readonly walkMeter: WalkMeter;

  /** The task whose plan runs (SCI kills it on a refusal). */
  private task = -1;
  // The current data touch (run → lines): its candidate, first line, lines and access kind.
  private ci = 0;
  private start = 0;
  private acc = 0;
  /** Cycles of faults and L1D misses of the current run. */
  private cycles = 0;
  private misses = 0;
  // Scratch of the batched path, grown as plans need (Plan.maxSegments): physical addresses of
  // the text pages; per page segment of the data touches, the VA of its first line (the one
  // translated), access kind, data touch, first and last line index (j), and physical address.
  private textPa = new Float64Array(64);
  private segLo = new Int32Array(64);
  private segHi = new Int32Array(64);
  private segAcc = new Uint8Array(64);
  private segK = new Int32Array(64);
  private segJ0 = new Int32Array(64);
  private segJ1 = new Int32Array(64);
  private segPa = new Float64Array(64);
  private itemCi = new Int32Array(16);
  private itemStart = new Int32Array(16);

  /** Run `p` on thread `t` for task `task`; returns the cycles of its walks, L1D misses and faults. */
  run(t: number, p: Plan, rng: Xoshiro128, task = -1): number {
    this.task = task;
    if (this.sci !== null) this.sci.key = p.fp.key;
    const mmu = this.mmus[t];
    this.walkMeter.begin(mmu);
    this.cycles = 0;
    this.misses = 0;
    if (perTouchPath) this.runPerTouch(t, mmu, p, rng);
    else this.runBatched(t, mmu, p, rng);
    this.counts.l1dMisses += this.misses;
    return this.cycles + this.walkMeter.end(mmu) + this.misses * this.costs.l1dMiss;
  }

  /** Draw data touch k's candidate and first line (the task's PRNG, in plan order); returns its line count. */
  private draw(p: Plan, k: number, rng: Xoshiro128): number {
    const n = p.candCount[k];
    const ci = p.candStart[k] + (n === 1 ? 0 : rng.nextU32() % n);
    const objLines = p.candLines[ci];
    const want = p.lines[k];
    const mode = p.candMode[ci];
    let start = 0;
    if (mode === M_RANDOM) start = rng.nextU32() % objLines;
    else if (mode === M_HOT_PAGE) start = rng.nextU32() % (objLines < LINES_PER_PAGE ? objLines : LINES_PER_PAGE);
    else if (mode === M_TOP) start = objLines > want ? objLines - want : 0;
    this.ci = ci;
    this.start = start;
    this.acc = p.access[k];
    return want < objLines ? want : objLines;
  }

  /** The reference path: every text page and every new page of a data touch translated where it is met. */
  private runPerTouch(t: number, mmu: Mmu, p: Plan, rng: Xoshiro128): void {
    const c = this.counts;
    const fetch = mmu.fetchSide ?? mmu; // fetches go through the instruction TLB where the first level is split
    for (let i = 0; i < p.nText; i++) {
      const e = this.translate(t, fetch, p.textLo[i] | 0, p.textHi[i], 2, p.textReason[i]); // 2 = ACCESS_FETCH
      if (e > 0) this.cycles += e;
    }
    c.touches += p.nText;
    for (let k = 0; k < p.nData; k++) {
      const count = this.draw(p, k, rng);
      if (p.ephmap[k] === 1 && this.ephmap !== null) this.ephmapCopy(t, mmu, p, count);
      else this.lines(t, mmu, p, 0, count);
      c.touches += count;
    }
  }

  /**
   * Lines j in [j0, j1) of the current data touch, each new page translated when met (the
   * per-touch path; the batched path after a fault). A touch whose translation fails is skipped.
   */
  private lines(t: number, mmu: Mmu, p: Plan, j0: number, j1: number): void {
    const ci = this.ci;
    const objLines = p.candLines[ci];
    const a = this.acc === A_READ ? 0 : 1; // ACCESS_READ, ACCESS_WRITE
    const baseLo = p.candLo[ci];
    const baseHi = p.candHi[ci];
    let pageLo = -1;
    let pageHi = 0;
    let pagePa = 0;
    for (let j = j0; j < j1; j++) {
      let line = this.start + j;
      if (line >= objLines) line -= objLines;
      let lo = baseLo + line * 64;
      let hi = baseHi;
      if (lo >= TWO32) { lo -= TWO32; hi = (hi + 1) | 0; }
      const page = lo - (lo & 4095); // lo < 2^32: & keeps its low bits
      if (page !== pageLo || hi !== pageHi) {
        const extra = this.translate(t, mmu, lo | 0, hi, a, p.candReason[ci]);
        if (extra < 0) { pageLo = -1; continue; }
        this.cycles += extra;
        pageLo = page;
        pageHi = hi;
        pagePa = mmu.out.pa - (lo - page);
      }
      this.touchLine(t, pagePa + (lo - page));
    }
  }

  /** Load or store (as the current touch's access kind says) the 8 bytes at `pa` rounded down. */
  private touchLine(t: number, pa: number): void {
    const pw = pa - (pa & 7); // pa < 2^52: & keeps its low bits
    const m = this.machine;
    const acc = this.acc;
    if (acc === A_WRITE) {
      // The value written is the one memory holds: nothing to write through (Machine.storeHeld).
      if (!m.storeHeld(t, pw, this.mem.read32(pw), this.mem.read32(pw + 4))) this.misses++;
    } else {
      if (!m.load(t, pw)) this.misses++;
      if (acc === A_RW) { const core = m.threads[t].core; m.store(t, pw, core.lastLo, core.lastHi); }
    }
  }

  /**
   * The batched path. The text pages go through Mmu.translateBatch (they are fetches: nothing
   * is loaded between them). The data touches are cut into page segments (lines in a row on one
   * 4 KiB page share the translation of the first), after drawing every touch's object and line
   * as the per-touch path draws them; runs of segments that hit the TLB's fast path are
   * translated in one call (Mmu.translateHits, which changes nothing but the TLB's LRU clock),
   * and the first segment that does not goes through translate() at the point the per-touch path
   * would reach it — after the loads and stores before it, since a walk writes A/D bits to
   * memory and a fault may switch the address space. So the run is the per-touch run exactly.
   */
  private runBatched(t: number, mmu: Mmu, p: Plan, rng: Xoshiro128): void {
    const c = this.counts;
    const nText = p.nText;
    if (nText > 0) {
      if (this.textPa.length < nText) this.textPa = new Float64Array(nText * 2);
      const fetch = mmu.fetchSide ?? mmu; // the instruction TLB where the first level is split
      let i = 0;
      while (i < nText) {
        const f = fetch.translateBatch(p.textLo32, p.textHi, p.textAccess, i, nText, this.textPa);
        c.translations += f - i;
        if (f === nText) break;
        c.translations++;
        const e = this.fault(t, fetch, p.textLo32[f], p.textHi[f], 2, p.textReason[f]); // 2 = ACCESS_FETCH
        if (e > 0) this.cycles += e;
        i = f + 1;
      }
      c.touches += nText;
    }
    const nData = p.nData;
    if (nData === 0) return;
    if (this.segLo.length < p.maxSegments) this.growSegments(p.maxSegments * 2);
    if (this.itemCi.length < nData) { this.itemCi = new Int32Array(nData * 2); this.itemStart = new Int32Array(nData * 2); }
    const segLo = this.segLo;
    const segHi = this.segHi;
    const segAcc = this.segAcc;
    const segK = this.segK;
    const segJ0 = this.segJ0;
    const segJ1 = this.segJ1;
    let nSeg = 0;
    const eph = p.anyEphmap && this.ephmap !== null;
    for (let k = 0; k < nData; k++) {
      const count = this.draw(p, k, rng);
      c.touches += count;
      const ci = this.ci;
      this.itemCi[k] = ci;
      this.itemStart[k] = this.start;
      if (eph && p.ephmap[k] === 1) { // one marker segment: ephmapCopy() at its place in the order
        segLo[nSeg] = 0;
        segHi[nSeg] = 0;
        segAcc[nSeg] = SEG_EPHMAP;
        segK[nSeg] = k;
        segJ0[nSeg] = 0;
        segJ1[nSeg] = count;
        nSeg++;
        continue;
      }
      const objLines = p.candLines[ci];
      const a = this.acc === A_READ ? 0 : 1; // ACCESS_READ, ACCESS_WRITE
      const baseLo = p.candLo[ci];
      const baseHi = p.candHi[ci];
      let pageLo = -1;
      let pageHi = 0;
      for (let j = 0; j < count; j++) {
        let line = this.start + j;
        if (line >= objLines) line -= objLines;
        let lo = baseLo + line * 64;
        let hi = baseHi;
        if (lo >= TWO32) { lo -= TWO32; hi = (hi + 1) | 0; }
        const page = lo - (lo & 4095);
        if (page === pageLo && hi === pageHi) continue;
        if (nSeg > 0 && segK[nSeg - 1] === k) segJ1[nSeg - 1] = j;
        segLo[nSeg] = lo | 0;
        segHi[nSeg] = hi;
        segAcc[nSeg] = a;
        segK[nSeg] = k;
        segJ0[nSeg] = j;
        nSeg++;
        pageLo = page;
        pageHi = hi;
      }
      if (nSeg > 0 && segK[nSeg - 1] === k) segJ1[nSeg - 1] = count;
    }
    const segPa = this.segPa;
    let i = 0;
    while (i < nSeg) {
      let end = nSeg;
      if (eph) { end = i; while (end < nSeg && segAcc[end] !== SEG_EPHMAP) end++; }
      while (i < end) {
        const r = mmu.translateHits(segLo, segHi, segAcc, i, end, segPa);
        c.translations += r - i;
        for (let s = i; s < r; s++) this.segment(t, p, s, segPa[s]);
        if (r === end) { i = end; break; }
        this.select(p, segK[r]);
        const extra = this.translate(t, mmu, segLo[r], segHi[r], segAcc[r], p.candReason[this.ci]);
        if (extra < 0) this.lines(t, mmu, p, segJ0[r] + 1, segJ1[r]); // skipped; the rest of the page translates again, as per touch
        else { this.cycles += extra; this.segment(t, p, r, mmu.out.pa); }
        i = r + 1;
      }
      if (i < nSeg) { this.select(p, segK[i]); this.ephmapCopy(t, mmu, p, segJ1[i]); i++; }
    }
  }

  /**
   * A tmpfs read's page-cache copy (shmem_file_read_iter()), or with what_if ephmap-zeroing a
   * fresh page's clear (a store: the slot's PTE is writable), through the ephmap (asi/ephmap.ts): in the restricted space the
   * page is mapped at this CPU's slot of the task's mm (ephmap_get(): set_pte_at(), a store to the
   * page table), the `count` lines are read or written through that address, and ephmap_put()
   * clears the PTE and INVLPGs it on this CPU. Outside it (after an exit) the access goes through
   * the direct map, as the branch's copy_page_to_iter() fallback does.
   */
  private ephmapCopy(t: number, mmu: Mmu, p: Plan, count: number): void {
    const e = this.ephmap!;
    const ci = this.ci;
    const pa = p.candPa[ci];
    const ptePa = this.task < 0 ? -1 : e.ptePa[this.task * e.cpus + t]; // CPU t: buildSpaces() puts thread i on CPU i
    if (pa < 0 || ptePa < 0 || this.asi === null || !this.asi.inRestricted(t)) { this.lines(t, mmu, p, 0, count); return; }
    const m = this.machine;
    const page = pa - (pa % 4096);
    const a = this.acc === A_READ ? 0 : 1; // ACCESS_READ, ACCESS_WRITE: as lines() translates
    m.store(t, ptePa, Ephmap.pteLo(page, a === 1), Ephmap.pteHi(page, e.nx));
    this.counts.ephmapMaps++;
    const objLines = p.candLines[ci];
    const first = this.start;
    const extra = this.translate(t, mmu, ((e.vaLo[t] >>> 0) + (first % LINES_PER_PAGE) * 64) | 0, e.vaHi[t], a, p.candReason[ci]);
    if (extra >= 0) {
      this.cycles += extra;
      const base = mmu.out.pa - (first % LINES_PER_PAGE) * 64;
      for (let j = 0; j < count; j++) {
        let line = first + j;
        if (line >= objLines) line -= objLines;
        this.touchLine(t, base + (line % LINES_PER_PAGE) * 64);
      }
    }
    m.store(t, ptePa, 0, 0);
    mmu.invlpg(e.vaLo[t], e.vaHi[t]);
    this.cycles += this.costs.invlpg;
  }

  private growSegments(n: number): void {
    this.segLo = new Int32Array(n);
    this.segHi = new Int32Array(n);
    this.segAcc = new Uint8Array(n);
    this.segK = new Int32Array(n);
    this.segJ0 = new Int32Array(n);
    this.segJ1 = new Int32Array(n);
    this.segPa = new Float64Array(n);
  }

  /** Make data touch k (already drawn by runBatched) the current one. */
  private select(p: Plan, k: number): void {
    this.ci = this.itemCi[k];
    this.start = this.itemStart[k];
    this.acc = p.access[k];
  }

  /**
   * The lines of segment `s`, whose first line translated to `pa`: touchLine() for each, with
   * the thread's core and, for stores, the page's words in PhysMemory looked up once (all the
   * lines lie on that 4 KiB page).
   */
  private segment(t: number, p: Plan, s: number, pa: number): void {
    this.select(p, this.segK[s]);
    const objLines = p.candLines[this.ci];
    const start = this.start;
    const first = this.segJ0[s];
    const end = this.segJ1[s];
    let line0 = start + first;
    if (line0 >= objLines) line0 -= objLines;
    const acc = this.acc;
    const m = this.machine;
    const base = pa - (pa & 7); // touchLine's rounding; pa < 2^52: & keeps its low bits
    let misses = 0;
    if (acc === A_READ) {
      const th = m.threads[t];
      const core = th.core;
      const ti = th.index;
      for (let j = first; j < end; j++) {
        let line = start + j;
        if (line >= objLines) line -= objLines;
        // Same page as the first line: the same offset from it in physical memory.
        if (!core.load(ti, base + (line - line0) * 64)) misses++;
      }
      this.misses += misses;
      return;
    }
    // Stores: the page's words in PhysMemory, to read what memory holds (null: not backed).
    const mem = this.mem;
    const pfn = Math.floor(base / 4096);
    const slot = mem.slot(pfn);
    const words = slot < 0 ? null : mem.wordsOfSlot(slot);
    const w0 = slot < 0 ? 0 : mem.wordBaseOfSlot(slot) - pfn * 1024;
    for (let j = first; j < end; j++) {
      let line = start + j;
      if (line >= objLines) line -= objLines;
      const pw = base + (line - line0) * 64;
      const w = w0 + pw / 4; // pw is 8-aligned: an exact word index
      if (acc === A_WRITE) {
        // A store of the value memory holds (Machine.storeHeld).
        if (!m.storeHeld(t, pw, words === null ? 0 : words[w], words === null ? 0 : words[w + 1])) misses++;
        continue;
      }
      this.touchLine(t, pw); // read-modify-write: load, then store the value back through to memory
    }
    this.misses += misses;
  }

  /**
   * Translate, handing a fault on a restricted space to the ASI session. Returns the extra
   * cycles (faults), or -1 when the touch cannot complete (not mapped anywhere, or refused).
   */
  private translate(t: number, mmu: Mmu, lo: number, hi: number, access: number, reason: number): number {
    this.counts.translations++;
    if (mmu.translate(lo, hi, access)) return 0;
    return this.fault(t, mmu, lo, hi, access, reason);
  }

  /** A translation of `va` just failed: the SCI or ASI fault path (translate()). */
  private fault(t: number, mmu: Mmu, lo: number, hi: number, access: number, reason: number): number {
    const asi = this.asi;
    const c = this.counts;
    const sci = this.sci;
    if (sci !== null && sci.inSyscall(t)) { // sci_fault(): verify and map, or kill
      c.pageFaults++;
      if (sci.fault(t, this.task, lo, hi, access) !== FAULT_MAPPED) return -1;
      if (!mmu.translate(lo, hi, access)) { c.unmapped++; return -1; }
      return this.costs.fault;
    }
    if (asi === null || !asi.inRestricted(t)) { c.unmapped++; return -1; }
    c.pageFaults++;
    c.asiFaults++;
    const v = asi.fault(t, lo >>> 0, hi >>> 0, access);
    if (v === FAULT_RETRY) {
      const r = this.reasons;
      if (r.counts[reason]++ === 0) { r.faultLo[reason] = lo; r.faultHi[reason] = hi; }
    }
    if (v !== FAULT_RETRY && v !== FAULT_MAPPED) return -1;
    if (!mmu.translate(lo, hi, access)) { c.unmapped++; return -1; }
    return this.costs.fault;
  }
}
