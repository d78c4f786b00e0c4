/**
 * Event → touches → MMU/TLB → L1D, fill buffers, load ports, store buffer (docs/DESIGN.md "An event
 * expands into touches").
 *
 * A Plan is a footprint (sim/footprints.ts) resolved for one task on one hardware thread: the
 * kernel text pages rebased by the KASLR slide, and for each data touch the actual objects of
 * the world it may land in (the running tenant's, the previous task's, this CPU's per-CPU area,
 * or kernel-global ones), as VA halves in typed arrays. Running a plan translates every touched
 * line through the thread's current CR3 with its Mmu (a TLB miss walks), then loads it through
 * the core (an L1D miss fills the line from memory through a fill buffer, the value passes a
 * load port) or stores it (the store buffer; the value written is the one memory holds, so
 * planted secrets are never overwritten). Text pages are instruction fetches: translated, not
 * loaded into the L1D. A translation that faults while the thread runs on a restricted space
 * goes to the ASI session's fault policy; a retry follows FAULT_RETRY / FAULT_MAPPED.
 *
 * Which lines of an object (assumptions, not in the footprint table): a small object (< 4 KiB)
 * from its first line (the hot fields come first); a page or buffer from a line drawn from the
 * task's PRNG, wrapping; a kernel stack from its top (stacks grow down); a CPU's per-CPU area
 * from a line of its first page: the hot per-CPU variables the footprints name (pcpu_hot,
 * irq_stat, current_vmcs, cpu_tlbstate) are packed together, and the 2022 RFC moved the ones
 * its exit paths use into a not-sensitive per-CPU section, mapped at each unit's start here
 * (google-asi-2022.ts) — a random line of the whole unit would fault on data the RFC annotated. When several objects
 * are candidates (declared objects of the kind, or a few pages), one is drawn per touch.
 * Module text (kvm.ko, kvm-intel.ko: `modulePages`) is not in the kernel model and is not
 * translated. Nothing here allocates per touch.
 */
import type { Xoshiro128 } from '../linux/kaslr.ts';
import type { AsiSession } from '../asi/session.ts';
import { FAULT_MAPPED, FAULT_RETRY } from '../asi/types.ts';
import type { Machine } from '../uarch/machine.ts';
import type { PhysMemory } from '../phys/memory.ts';
import type { Mmu } from '../x86/mmu.ts';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE } from '../x86/bits.ts';
import type { Footprint } from './footprints.ts';
import type { ObjRef, TenantRt, World } from './world.ts';
import type { Counts } from './thread.ts';
import type { SciRun } from './sci-run.ts';

const TWO32 = 4294967296;
const A_READ = 0;
const A_WRITE = 1;
const A_RW = 2;
const M_FIRST = 0;
const M_RANDOM = 1;
const M_TOP = 2;
const M_HOT_PAGE = 3;
const LINES_PER_PAGE = 64;

/** Why a touch happened, for the ASI exit report: one row per text page and per candidate object. */
export class Reasons {
  readonly key: string[] = [];
  readonly part: string[] = [];
  readonly what: string[] = [];
  readonly va: bigint[] = [];
  /** Tenant index of the task whose plan the reason belongs to. */
  readonly tenant: number[] = [];
  counts = new Int32Array(64);
  /** The first faulting VA seen per reason (halves), for checks. */
  faultLo = new Float64Array(64);
  faultHi = new Float64Array(64);

  add(key: string, part: string, what: string, va: bigint, tenant: number): number {
    const id = this.key.length;
    this.tenant.push(tenant);
    this.key.push(key);
    this.part.push(part);
    this.what.push(what);
    this.va.push(va);
    if (id >= this.counts.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => { const b = new (a.constructor as new (n: number) => T)(a.length * 2); b.set(a); return b; };
      this.counts = grow(this.counts);
      this.faultLo = grow(this.faultLo);
      this.faultHi = grow(this.faultHi);
    }
    return id;
  }
}

export class Plan {
  readonly nText: number;
  readonly textLo: Float64Array;
  readonly textHi: Int32Array;
  readonly textReason: Int32Array;
  readonly nData: number;
  readonly access: Uint8Array;
  readonly lines: Int32Array;
  readonly candStart: Int32Array;
  readonly candCount: Int32Array;
  readonly candLo: Float64Array;
  readonly candHi: Int32Array;
  readonly candLines: Int32Array;
  readonly candMode: Uint8Array;
  readonly candReason: Int32Array;
  /** Every candidate object, in candidate order. */
  readonly objects: readonly ObjRef[];

  constructor(readonly fp: Footprint, text: bigint[], data: { access: number; lines: number; cands: ObjRef[] }[], reasons: Reasons, tenant: number) {
    this.nText = text.length;
    this.textLo = new Float64Array(text.length);
    this.textHi = new Int32Array(text.length);
    this.textReason = new Int32Array(text.length);
    text.forEach((va, i) => {
      this.textLo[i] = Number(va & 0xffffffffn);
      this.textHi[i] = Number(BigInt.asIntN(32, va >> 32n));
      this.textReason[i] = reasons.add(fp.key, 'text', `kernel text page 0x${BigInt.asUintN(64, va).toString(16)}`, va, tenant);
    });
    this.nData = data.length;
    this.access = Uint8Array.from(data, (d) => d.access);
    this.lines = Int32Array.from(data, (d) => d.lines);
    this.candStart = new Int32Array(data.length);
    this.candCount = new Int32Array(data.length);
    const all: { o: ObjRef; k: number }[] = [];
    data.forEach((d, k) => {
      this.candStart[k] = all.length;
      this.candCount[k] = d.cands.length;
      for (const o of d.cands) all.push({ o, k });
    });
    this.candLo = Float64Array.from(all, (x) => Number(BigInt.asUintN(64, x.o.va) & 0xffffffffn));
    this.candHi = Int32Array.from(all, (x) => Number(BigInt.asIntN(32, BigInt.asUintN(64, x.o.va) >> 32n)));
    this.candLines = Int32Array.from(all, (x) => Math.max(1, Math.ceil(x.o.size / 64)));
    this.candMode = Uint8Array.from(all, (x) => (x.o.kind === 'kernel-stack' ? M_TOP : x.o.kind === 'percpu' ? M_HOT_PAGE : x.o.size >= 4096 ? M_RANDOM : M_FIRST));
    this.candReason = Int32Array.from(all, (x) => reasons.add(fp.key, x.o.kind, x.o.what, x.o.va, tenant));
    this.objects = all.map((x) => x.o);
  }
}

/** Resolve footprint `fp` for a task of `tenant` on CPU `cpu`; `prev` is the tenant switched away from (context switch). */
export function buildPlan(w: World, fp: Footprint, tenant: TenantRt, prev: TenantRt, cpu: number, reasons: Reasons): Plan {
  const text = fp.text.pages.map((p) => BigInt.asIntN(64, p + w.textSlide));
  const data = fp.data.map((d) => {
    let cands: ObjRef[] | undefined;
    if (d.kind === 'percpu') cands = [w.percpu[cpu]];
    else if (d.scope === 'global' || d.kind === 'kernel-global') cands = w.globals.get(d.kind) ?? tenant.objs.get(d.kind);
    else if (d.seq !== undefined && (tenant.sized.get(d.kind)?.length ?? 0) > 0) { const l = tenant.sized.get(d.kind)!; cands = [l[d.seq % l.length]]; }
    else cands = (d.scope === 'previous' ? prev : tenant).objs.get(d.kind) ?? w.globals.get(d.kind);
    if (cands === undefined || cands.length === 0) throw new RangeError(`footprint ${fp.key}: no ${d.kind} object for tenant ${tenant.spec.name}`);
    return { access: d.access === 'read' ? A_READ : d.access === 'write' ? A_WRITE : A_RW, lines: d.lines, cands };
  });
  return new Plan(fp, text, data, reasons, tenant.index);
}

export interface TouchCosts {
  walk: number;
  l1dMiss: number;
  /** #PF delivery + return, per fault the ASI design takes. */
  fault: number;
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
  ) {}

  /** The task whose plan runs (SCI kills it on a refusal). */
  private task = -1;

  /** Run `p` on thread `t` for task `task`; returns the cycles of its walks, L1D misses and faults. */
  run(t: number, p: Plan, rng: Xoshiro128, task = -1): number {
    this.task = task;
    if (this.sci !== null) this.sci.key = p.fp.key;
    const mmu = this.mmus[t];
    const c = this.counts;
    const walks0 = mmu.walks;
    let cycles = 0;
    let misses = 0;
    for (let i = 0; i < p.nText; i++) {
      const e = this.translate(t, mmu, p.textLo[i] | 0, p.textHi[i], ACCESS_FETCH, p.textReason[i]);
      if (e > 0) cycles += e;
    }
    c.touches += p.nText;
    const core = this.machine.threads[t].core;
    for (let k = 0; k < p.nData; k++) {
      const n = p.candCount[k];
      const ci = p.candStart[k] + (n === 1 ? 0 : rng.nextU32() % n);
      const objLines = p.candLines[ci];
      const want = p.lines[k];
      const mode = p.candMode[ci];
      let start = 0;
      if (mode === M_RANDOM) start = rng.nextU32() % objLines;
      else if (mode === M_HOT_PAGE) start = rng.nextU32() % (objLines < LINES_PER_PAGE ? objLines : LINES_PER_PAGE);
      else if (mode === M_TOP) start = objLines > want ? objLines - want : 0;
      const count = want < objLines ? want : objLines;
      const acc = p.access[k];
      const a = acc === A_READ ? ACCESS_READ : ACCESS_WRITE;
      const baseLo = p.candLo[ci];
      const baseHi = p.candHi[ci];
      let pageLo = -1;
      let pageHi = 0;
      let pagePa = 0;
      for (let j = 0; j < count; j++) {
        let line = start + j;
        if (line >= objLines) line -= objLines;
        let lo = baseLo + line * 64;
        let hi = baseHi;
        if (lo >= TWO32) { lo -= TWO32; hi = (hi + 1) | 0; }
        let pa: number;
        const page = lo - (lo & 4095); // lo < 2^32: & keeps its low bits
        if (page === pageLo && hi === pageHi) pa = pagePa + (lo - page); // same page: the translation the TLB just gave
        else {
          const extra = this.translate(t, mmu, lo | 0, hi, a, p.candReason[ci]);
          if (extra < 0) { pageLo = -1; continue; }
          cycles += extra;
          pa = mmu.out.pa;
          pageLo = page;
          pageHi = hi;
          pagePa = pa - (lo - page);
        }
        const pw = pa - (pa & 7); // pa < 2^52: & keeps its low bits
        if (acc === A_WRITE) {
          this.machine.store(t, pw, this.mem.read32(pw), this.mem.read32(pw + 4));
          if (!core.l1d.lastHit) misses++;
        } else {
          if (!this.machine.load(t, pw)) misses++;
          if (acc === A_RW) this.machine.store(t, pw, core.lastLo, core.lastHi);
        }
      }
      c.touches += count;
    }
    const walks = mmu.walks - walks0;
    c.walks += walks;
    c.l1dMisses += misses;
    return cycles + walks * this.costs.walk + misses * this.costs.l1dMiss;
  }

  /**
   * Translate, handing a fault on a restricted space to the ASI session. Returns the extra
   * cycles (faults), or -1 when the touch cannot complete (not mapped anywhere, or refused).
   */
  private translate(t: number, mmu: Mmu, lo: number, hi: number, access: number, reason: number): number {
    this.counts.translations++;
    if (mmu.translate(lo, hi, access)) return 0;
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
