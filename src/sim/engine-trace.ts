/**
 * What the engine tells a timeline (`kasi run --trace`, issue 12 "Timelines"): an EngineTracer turns
 * the engine's clock advances into slices of one hardware thread's mode (guest, user, kernel on
 * full tables, kernel on restricted tables, idle) and the mechanisms' actions into instant events
 * with arguments, and hands both to a TraceSink (report/trace.ts TraceRecorder keeps them in
 * typed arrays). The engine holds a tracer only when a trace was asked for (EngineOptions.trace,
 * null by default): each of its clock advances calls `span()` once, never per touch, and the
 * actions are seen by wrapping, on this run's own instances only, the methods that perform them
 * (AsiSession exit/enter/fault, SciRun.fault, Transitions l1dFlush/verw/switchTask, the action
 * sink), so a run without a trace runs exactly the code it ran before.
 *
 * Spans tile a thread's time: each starts where the thread's previous one ended (`since`), so
 * nothing overlaps and nothing is left out. A kernel span is split where the thread left or
 * entered its restricted space. The touches of an event are not timed one by one, so an action
 * inside an event is placed by what came before it: the transition cycles (Transitions.acc) when
 * no touch of the event had run yet, else its share of the event's touches (an estimate, the
 * order of actions within an event is exact). TLB flushes are read from each thread's Mmu counter
 * at its span ends (one instant with the count). A trace is of one run: one seed, one mitigation set.
 */
import { ACT_IBPB, ACT_IPI, ACT_STUN, type ActionSink } from '../asi/types.ts';
import { mixFootprintKey } from './scenario-types.ts';
import { EK, PH_ATTACK, PH_IDLE_END, type Counts } from './thread.ts';
import type { Transitions } from './mitigate.ts';
import type { Reasons } from './plan.ts';
import { ATTACK_NAMES, type Samples } from '../attacks/sample.ts';
import type { World } from './world.ts';

export const SLICE_KINDS = ['guest', 'user', 'kernel-full', 'kernel-restricted', 'idle'] as const;
export const INSTANT_KINDS = ['asi-exit', 'asi-enter', 'fault', 'l1d-flush', 'verw', 'tlb-flush', 'stun', 'attack', 'context-switch', 'ipi', 'ibpb', 'primitive'] as const;
export type SliceKind = (typeof SLICE_KINDS)[number];
export type InstantKind = (typeof INSTANT_KINDS)[number];
/** The names of an instant's two numeric arguments ('' = none). */
export const ARG_NAMES: Record<InstantKind, readonly [string, string]> = {
  'asi-exit': ['', ''], 'asi-enter': ['', ''], fault: ['access', ''], 'l1d-flush': ['', ''], verw: ['', ''], 'tlb-flush': ['count', ''],
  stun: ['sibling', ''], attack: ['bytes', 'samples'], 'context-switch': ['task', ''], ipi: ['target', ''], ibpb: ['', ''], primitive: ['bytes', 'samples'],
};

/** Where the engine's events go (report/trace.ts TraceRecorder). */
export interface TraceSink {
  /** Whether more events would be dropped (labels are then not interned). */
  readonly full: boolean;
  intern(s: string): number;
  slice(tid: number, kind: number, from: number, to: number, label?: number): void;
  instant(tid: number, kind: number, cycle: number, a?: number, b?: number, label?: number): void;
}

const S = (k: SliceKind): number => SLICE_KINDS.indexOf(k);
const I = (k: InstantKind): number => INSTANT_KINDS.indexOf(k);
const GUEST = S('guest'), USER = S('user'), KFULL = S('kernel-full'), KRESTR = S('kernel-restricted'), IDLE = S('idle');
const EXIT = I('asi-exit'), ENTER = I('asi-enter'), FAULT = I('fault'), L1D = I('l1d-flush'), VERW = I('verw'), TLB = I('tlb-flush');
/** Not an instant: the thread's tables changed without an exit or an entry. */
const MOVE = -1;
const PRIM = I('primitive');
const STUN = I('stun'), ATTACK = I('attack'), SWITCH = I('context-switch'), IPI = I('ipi'), IBPB = I('ibpb');

/** What a span is, as the engine calls it. */
export const SP_USER = 0; // the task's own mode: guest for a VM's vCPU, user for a process
export const SP_KERNEL_IN = 1; // kernel work after an entry (the kernel tables it ran on: those after the entry)
export const SP_KERNEL_OUT = 2; // a return path (the tables it started on, until an enter)
export const SP_IDLE = 3;
export const SP_KERNEL_FULL = 4; // IPI handlers and stun spins: the host kernel, on full tables

const hex = (lo: number, hi: number): string => `0x${((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16)}`;

export class EngineTracer {
  private readonly since: Float64Array;
  private readonly restr: Uint8Array;
  private readonly flushes: Float64Array;
  /** Actions of the current span, placed when it closes. */
  private pk = new Int32Array(64);
  private pAcc = new Float64Array(64);
  private pTouch = new Float64Array(64);
  private pState = new Uint8Array(64);
  private pA = new Float64Array(64);
  private pB = new Float64Array(64);
  private pLabel = new Int32Array(64);
  private np = 0;
  private touchMark = 0;
  private readonly labels: Int32Array[];
  private readonly L: Record<string, number> = {};
  private cause = -1;
  /** Fault exits of the span in progress: their addresses (a note's label -2 - k is faultAt[k]). */
  private faultAt: string[] = [];
  /** Reasons' counts as of the last fault exit placed (sim/touch.ts counts each retried fault there). */
  private snap = new Int32Array(0);

  constructor(private readonly w: World, private readonly tr: Transitions, private readonly c: Counts, private readonly sink: TraceSink, private readonly reasons: Reasons, private readonly samples: Samples) {
    const n = w.threads.n;
    this.since = new Float64Array(n);
    this.restr = new Uint8Array(n);
    this.flushes = new Float64Array(n);
    for (let t = 0; t < n; t++) this.flushes[t] = w.threads.mmus[t].allFlushes;
    this.labels = w.tasks.map((k) => Int32Array.from(k.mix, (m) => sink.intern(mixFootprintKey(m) ?? m.event)));
    for (const l of ['ipi handler', 'stunned', 'context-switch', 'forced idle', 'return to user', 'vmenter', 'idle', 'return to idle', 'workload page-fault', 'asi fault', 'sci fault']) this.L[l] = sink.intern(l);
    this.wrap();
  }

  private restricted(t: number): boolean {
    const { asi, sci } = this.w.spaces;
    return (asi !== null && asi.inRestricted(t)) || (sci !== null && sci.inSyscall(t));
  }

  /** Note an action of the span in progress on thread t (placed at its close). */
  private note(t: number, kind: number, a: number, label: number, b = 0): void {
    if (this.np === this.pk.length) this.grow();
    const i = this.np++;
    this.pk[i] = kind; this.pAcc[i] = this.tr.acc; this.pTouch[i] = this.c.touches; this.pState[i] = this.restricted(t) ? 1 : 0;
    this.pA[i] = a; this.pB[i] = b; this.pLabel[i] = label;
  }

  private grow(): void {
    const g = <T extends Int32Array | Float64Array | Uint8Array>(x: T): T => { const y = new (x.constructor as new (n: number) => T)(x.length * 2); y.set(x); return y; };
    this.pk = g(this.pk); this.pAcc = g(this.pAcc); this.pTouch = g(this.pTouch); this.pState = g(this.pState); this.pA = g(this.pA); this.pB = g(this.pB); this.pLabel = g(this.pLabel);
  }

  private label(s: string): number {
    return this.sink.full ? -1 : this.sink.intern(s);
  }

  /** Wrap this run's instances so that each action is noted (a run without a tracer never does). */
  private wrap(): void {
    const { asi, sci, holder } = this.w.spaces;
    const tr = this.tr;
    if (asi !== null) {
      const exit = asi.exit.bind(asi);
      asi.exit = (t: number): boolean => {
        const left = exit(t);
        if (left) this.note(t, EXIT, 0, this.cause);
        return left;
      };
      // Entries are counted where they happen (AsiSession.entered(), reached from enter(),
      // interruptEnd() and contextSwitch()): each wrapped call notes the entries it made, once, and
      // a change of tables with neither (a Chartre resume after an interrupt) as a MOVE.
      let seen = asi.counters.enters;
      const watch = <A extends unknown[]>(name: 'enter' | 'interruptBegin' | 'interruptEnd' | 'contextSwitch'): void => {
        const f = (asi[name] as unknown as (...a: A) => void).bind(asi);
        (asi as unknown as Record<string, (...a: A) => void>)[name] = (...args: A): void => {
          const t = args[0] as number;
          const was = asi.inRestricted(t);
          const np = this.np;
          f(...args);
          for (; seen < asi.counters.enters; seen++) this.note(t, ENTER, asi.inRestricted(t) ? 1 : 0, -1);
          if (this.np === np && asi.inRestricted(t) !== was) this.note(t, MOVE, 0, -1);
        };
      };
      watch('enter');
      watch('interruptBegin');
      watch('interruptEnd');
      watch('contextSwitch');
      const fault = asi.fault.bind(asi);
      asi.fault = (t: number, lo: number, hi: number, access: number): number => {
        const at = hex(lo, hi);
        this.note(t, FAULT, access, this.label(`${at} (asi)`));
        this.cause = -2 - this.faultAt.length;
        this.faultAt.push(at);
        const v = fault(t, lo, hi, access);
        this.cause = -1;
        return v;
      };
    }
    if (sci !== null) {
      const fault = sci.fault.bind(sci);
      sci.fault = (t: number, task: number, lo: number, hi: number, access: number): number => {
        this.note(t, FAULT, access, this.label(`${hex(lo, hi)} (sci)`));
        return fault(t, task, lo, hi, access);
      };
    }
    const l1d = tr.l1dFlush.bind(tr);
    tr.l1dFlush = (t: number): void => { l1d(t); this.note(t, L1D, 0, -1); };
    const verw = tr.verw.bind(tr);
    tr.verw = (t: number): void => { verw(t); this.note(t, VERW, 0, -1); };
    const sw = tr.switchTask.bind(tr);
    tr.switchTask = (t, prev, next): void => {
      this.cause = this.L['context-switch'];
      sw(t, prev, next);
      this.cause = -1;
      this.note(t, SWITCH, next === null ? -1 : next.id, this.label(next === null ? 'idle' : next.tenant.spec.name));
    };
    const sink: ActionSink = holder.sink;
    holder.sink = (t, action, arg) => {
      sink(t, action, arg);
      if (action === ACT_STUN) this.note(t, STUN, arg, -1);
      else if (action === ACT_IPI) this.note(t, IPI, arg, -1);
      else if (action === ACT_IBPB) this.note(t, IBPB, 0, -1);
    };
  }

  /** Thread t's clock has advanced: the time since its last span was `sp` (SP_*), named `label`. */
  span(t: number, sp: number, label = -1): void {
    const from = this.since[t];
    const to = this.w.threads.clock[t];
    const sink = this.sink;
    const touches = this.c.touches;
    const t0 = this.touchMark;
    let state = this.restr[t];
    const now = this.restricted(t) ? 1 : 0;
    const kernel = sp === SP_KERNEL_IN || sp === SP_KERNEL_OUT || sp === SP_KERNEL_FULL;
    let hasMove = false;
    for (let i = 0; i < this.np; i++) if (this.pk[i] === EXIT || this.pk[i] === ENTER || this.pk[i] === MOVE) hasMove = true;
    if (sp === SP_KERNEL_IN && !hasMove) state = now; // the entry kept (or took, SCI) the tables the work ran on
    if (this.faultAt.length > 0) this.faultCauses();
    let segFrom = from;
    let prev = from;
    for (let i = 0; i < this.np; i++) {
      let at = touches > t0 && this.pTouch[i] > t0 ? from + ((to - from) * (this.pTouch[i] - t0)) / (touches - t0) : from + this.pAcc[i];
      at = Math.min(to, Math.max(prev, at));
      prev = at;
      const k = this.pk[i];
      if (kernel && (k === EXIT || k === ENTER || k === MOVE) && this.pState[i] !== state) {
        if (at > segFrom) sink.slice(t, sp === SP_KERNEL_FULL ? KFULL : state ? KRESTR : KFULL, segFrom, at, label);
        segFrom = at;
        state = this.pState[i];
      }
      if (k !== MOVE) sink.instant(t, k, at, this.pA[i], this.pB[i], k === EXIT && this.pLabel[i] < 0 ? label : this.pLabel[i]);
    }
    this.np = 0;
    if (to > segFrom) {
      const task = this.w.threads.cur[t];
      const kind = sp === SP_IDLE ? IDLE : sp === SP_USER ? (task >= 0 && this.w.tasks[task].tenant.vm !== null ? GUEST : USER) : sp === SP_KERNEL_FULL ? KFULL : state ? KRESTR : KFULL;
      sink.slice(t, kind, segFrom, to, label);
    }
    this.tlbFlushes(t, to);
    this.since[t] = to;
    this.restr[t] = now;
    this.touchMark = touches;
  }

  /**
   * Name the fault exits of this span by the report's exit reasons (sim/touch.ts Reasons: the
   * footprint, the part and the object each retried fault was a touch of): the reasons whose count
   * grew since the last fault exit. One fault, one reason; several in one event are named together.
   */
  private faultCauses(): void {
    const r = this.reasons;
    if (this.snap.length < r.counts.length) { const s = new Int32Array(r.counts.length); s.set(this.snap); this.snap = s; }
    const grew: string[] = [];
    for (let i = 0; i < r.key.length; i++) if (r.counts[i] > this.snap[i]) { grew.push(`${r.what[i]} (${r.part[i]}, ${r.key[i]})`); this.snap[i] = r.counts[i]; }
    let k = 0;
    let exits = 0;
    for (let i = 0; i < this.np; i++) if (this.pk[i] === EXIT && this.pLabel[i] <= -2) exits++;
    for (let i = 0; i < this.np; i++) {
      if (this.pk[i] !== EXIT || this.pLabel[i] > -2) continue;
      const why = grew.length === exits ? grew[k] : grew.join('; ');
      this.pLabel[i] = this.label(`fault at ${this.faultAt[-2 - this.pLabel[i]]}${why ? `: ${why}` : ''}`);
      k++;
    }
    this.faultAt = [];
  }

  private tlbFlushes(t: number, at: number): void {
    const f = this.w.threads.mmus[t].allFlushes;
    if (f !== this.flushes[t]) { this.sink.instant(t, TLB, at, f - this.flushes[t]); this.flushes[t] = f; }
  }

  /** Phase 1 of mix item `j` of `task` on thread t ended (engine.ts begin()). */
  event(t: number, task: number, j: number, kind: number, fromIdle: boolean): void {
    const label = this.labels[task][j];
    if (kind === EK['page-fault']) this.note(t, FAULT, 0, this.L['workload page-fault']);
    this.span(t, fromIdle ? SP_KERNEL_IN : kind === EK['guest-run'] || kind === EK['user-compute'] ? SP_USER : kind === EK.idle ? SP_IDLE : SP_KERNEL_IN, label);
  }

  /**
   * Phase 2 ended (engine.ts finish()). An attack: `got`, the bytes its primitives obtained, and
   * `from`, the first of the samples it kept (attackers.ts keeps a sample unless it repeats the
   * last one of its buffer entry); one 'attack' instant, and one 'primitive' per primitive with
   * the bytes and samples it kept.
   */
  phase2(t: number, ph: number, got: number, from: number): void {
    if (ph === PH_ATTACK) {
      const task = this.w.tasks[this.w.threads.cur[t]];
      const sm = this.samples;
      this.note(t, ATTACK, got, this.label(task.attacker!.attacks.join('+')), sm.count - from);
      for (const name of task.attacker!.attacks) {
        const code = ATTACK_NAMES.indexOf(name);
        let bytes = 0;
        let n = 0;
        for (let i = from; i < sm.count; i++) if (sm.attack[i] === code) { bytes += sm.len[i]; n++; }
        this.note(t, PRIM, bytes, this.label(name), n);
      }
      this.span(t, SP_USER);
      return;
    }
    const vm = this.w.threads.cur[t] >= 0 && this.w.tasks[this.w.threads.cur[t]].tenant.vm !== null;
    this.span(t, ph === PH_IDLE_END ? SP_IDLE : SP_KERNEL_OUT, ph === PH_IDLE_END ? this.L.idle : vm ? this.L.vmenter : this.L['return to user']);
  }

  /** Named labels for the engine's own spans. */
  lbl(name: 'ipi handler' | 'stunned' | 'context-switch' | 'forced idle'): number {
    return this.L[name];
  }

  /** The run ended: flush counts still unreported. */
  end(): void {
    for (let t = 0; t < this.w.threads.n; t++) this.tlbFlushes(t, this.w.threads.clock[t]);
  }
}
