/**
 * The discrete-event loop (docs/DESIGN.md "The engine, so that answers come from mechanisms").
 *
 * Every hardware thread has its own cycle clock; the loop always advances the thread with the
 * smallest clock (ThreadHeap), so siblings interleave at event granularity. An event has two
 * halves: phase 1 (kernel entry or VM exit, then the footprint's touches) moves the clock to
 * the event's end, and phase 2 (return to user / VMENTER with their mitigation actions, the end
 * of an idle period, an attacker's primitives) runs when the thread is next the earliest. In
 * between, a sibling sees exactly what phase 1 left in the shared L1D and buffers — the window
 * l1tf.rst means by "the sibling thread will also bring back its data into the L1D".
 *
 * A task's next event is drawn from its mix with its own PRNG stream (derived from the run's
 * PRNG in a fixed order, world.ts), so every mitigation set runs the same sequence of events.
 *
 * Scheduling (assumptions, with the sources of what is modelled):
 *  - a hardware thread with several tasks (SMT off moved them together) round-robins them every
 *    QUANTUM, each switch a 'context-switch' footprint + schedule() (mitigate.ts switchTask);
 *  - core scheduling (Documentation/admin-guide/hw-vuln/core-scheduling.rst): per core, time
 *    windows of QUANTUM go to one cookie (tenant) at a time; a thread whose task has another
 *    cookie is forced idle. Interrupts are not scheduled: a forced-idle thread still takes the
 *    interrupt events of its mix — "kernel contexts" the document says are not protected;
 *  - a stunned thread spins until the thread that stunned it re-enters its restricted space.
 */
import { Samples } from '../attacks/sample.ts';
import { Xoshiro128 } from '../linux/kaslr.ts';
import { loadFootprintTable, type FootprintTable } from './footprints.ts';
import { mixFootprintKey, type MixItem } from './scenario-types.ts';
import { nsToCycles } from './costs.ts';
import { ThreadHeap } from './heap.ts';
import { runAttacks, type AttackerRt } from './attackers.ts';
import { ENTRY_EXC, ENTRY_IRQ, ENTRY_NMI, ENTRY_SYSCALL, Transitions, VX_EMULATE, VX_HLT, VX_IRQ, VX_NMI, VX_USER } from './mitigate.ts';
import { EK, Meter, PH_ATTACK, PH_IDLE_END, PH_IRQ_IDLE, PH_NONE, PH_RET_USER, PH_VMENTER, type ThreadState } from './thread.ts';
import { buildPlan, Plan, Reasons, Toucher } from './touch.ts';
import type { ObjRef, Task, World } from './world.ts';
import { WorkingSetRunner } from './working-set.ts';
import { sizedFootprint } from './sized.ts';
import { withNativeBase } from './event-base.ts';
import { SmtShare } from './smt.ts';
import { EngineTracer, SP_IDLE, SP_KERNEL_FULL, SP_KERNEL_IN, SP_USER, type TraceSink } from './engine-trace.ts';

/** Time slice of round-robin and core-scheduling windows (assumption: short enough to switch within a run of milliseconds). */
export const QUANTUM_NS = 100_000;

export interface EngineOptions {
  /** Events per task (workload tasks); null = run until `endCycles` (duration mode). */
  targets: Int32Array | null;
  endCycles: number;
  /** A timeline of the run (kasi run --trace); null/absent: none, and nothing of it runs (engine-trace.ts). */
  trace?: TraceSink | null;
}

/** One mix item compiled for a task. */
interface Item {
  kind: number;
  how: number;
  vm: boolean;
  base: number;
  cycles: number;
  plan: Plan | null;
  irq: boolean;
}

/** Steps between two progress checks of Engine.run(). */
const PROGRESS_CHECK_STEPS = 2_000_000;

export class Engine {
  readonly meter: Meter;
  readonly reasons = new Reasons();
  readonly samples = new Samples(256, 1 << 16);
  readonly tr: Transitions;
  private readonly th: ThreadState;
  private readonly heap: ThreadHeap;
  readonly toucher: Toucher;
  readonly tenantCode: WorkingSetRunner;
  private readonly items: Item[][];
  private readonly cumw: Float64Array[];
  private readonly switchPlans = new Map<string, Plan>();
  private readonly table: FootprintTable;
  private readonly quantum: number;
  private readonly pendItem: Int32Array;
  /** Per task: the cycle it was switched out at and waits on the run queue from (-1: not waiting). */
  private readonly waitFrom: Float64Array;
  private readonly finished: Uint8Array;
  private readonly attackerOf: (AttackerRt | null)[];
  /** Per task: its interrupt items, their cumulative weights and mean spacing (cycles); null without any. */
  private readonly irqOf: ({ items: Int32Array; cum: Float64Array; interval: number } | null)[];
  private readonly irqRng: Xoshiro128[];
  private remaining = 0;
  private readonly spin: number;
  private readonly switchBase: number;
  /** Both threads of a core busy: each runs slower (sim/smt.ts). */
  private readonly smt: SmtShare;
  private readonly tracer: EngineTracer | null;

  constructor(readonly w: World, readonly opts: EngineOptions) {
    this.th = w.threads;
    this.meter = new Meter(w.tasks.length);
    this.tr = new Transitions(w, this.meter.counts);
    const p = w.costs.params;
    const walk = p.tlbMissWalk.cycles + (w.sys.levels === 5 ? p.tlbMissWalkLa57Extra.cycles : 0);
    if (w.spaces.sci !== null) w.spaces.sci.counts = this.meter.counts;
    this.toucher = new Toucher(w.machine, w.sys.mem, this.th.mmus, w.spaces.asi, w.spaces.sci, this.meter.counts, this.reasons, { walk, l1dMiss: p.l2Hit.cycles, fault: p.interruptEntryExit.cycles });
    this.tenantCode = new WorkingSetRunner(w.machine, this.th.mmus, this.meter.counts, p.l2Hit.cycles);
    this.heap = new ThreadHeap(this.th.clock);
    this.table = loadFootprintTable({ overrides: w.scenario.footprintOverrides });
    this.quantum = nsToCycles(QUANTUM_NS, w.costs);
    this.spin = p.stunSpinPerCycle.cycles;
    this.smt = new SmtShare(w.machine, this.th, w.profile.smtSpeedup, w.profile.smt);
    const cs = this.table.entries.get('context-switch')!;
    this.switchBase = p.contextSwitch.cycles + cs.insns.count * p.kernelCyclesPerInsn.cycles;
    this.items = w.tasks.map((t) => t.mix.map((m) => this.compile(t, m)));
    this.noteUntouchedSecrets();
    this.cumw = w.tasks.map((t) => { let s = 0; return Float64Array.from(t.mix, (m) => (s += m.weight)); });
    this.pendItem = new Int32Array(w.tasks.length).fill(-1);
    this.waitFrom = new Float64Array(w.tasks.length); // every task is runnable from cycle 0
    this.finished = new Uint8Array(w.tasks.length);
    for (const t of w.tasks) if (t.attacker === null) this.remaining++;
    this.attackerOf = w.tasks.map((t) => w.attackers.find((a) => a.task === t) ?? null);
    this.irqOf = w.tasks.map((t) => {
      const its = this.items[t.id];
      const idx = its.map((x, i) => (x.irq ? i : -1)).filter((i) => i >= 0);
      if (idx.length === 0) return null;
      const wsum = t.mix.reduce((a, m) => a + m.weight, 0);
      const mean = t.mix.reduce((a, m, i) => a + m.weight * (its[i].base + its[i].cycles), 0) / wsum;
      let c = 0;
      const cum = Float64Array.from(idx, (i) => (c += t.mix[i].weight));
      return { items: Int32Array.from(idx), cum, interval: Math.max(1, Math.round((mean * wsum) / c)) };
    });
    // A stream per thread for interrupts taken while forced idle (outside the tasks' own sequences).
    this.irqRng = Array.from({ length: this.th.n }, (_, t) => new Xoshiro128(w.scenario.seed, 0x1000 + t));
    this.tracer = opts.trace ? new EngineTracer(w, this.tr, this.meter.counts, opts.trace, this.reasons, this.samples) : null;
  }

  private compile(task: Task, m: MixItem): Item {
    const p = this.w.costs.params;
    const vm = task.tenant.vm !== null;
    const key = mixFootprintKey(m);
    const tableFp = key === null ? undefined : this.table.entries.get(key);
    if (key !== null && tableFp === undefined) throw new RangeError(`no footprint for ${key}`);
    const fp = tableFp !== undefined && m.event === 'syscall' && m.bytes !== undefined ? sizedFootprint(tableFp, m.bytes) : tableFp;
    const plan = fp ? buildPlan(this.w, fp, task.tenant, task.tenant, task.thread, this.reasons) : null;
    const insns = fp ? fp.insns.count * p.kernelCyclesPerInsn.cycles : 0;
    const cycles = 'cycles' in m ? m.cycles : 0;
    let how = 0;
    let base = insns;
    const irq = m.event === 'timer-interrupt' || m.event === 'nmi';
    switch (m.event) {
      case 'vm-exit':
        how = m.reason === 'EXTERNAL_INTERRUPT' ? VX_IRQ : m.reason === 'HLT' ? VX_HLT : m.reason === 'IO_INSTRUCTION' ? VX_USER : m.reason === 'EPT_MISCONFIG' ? VX_EMULATE : 0;
        base += p.vmExitEntry.cycles;
        break;
      case 'syscall': how = ENTRY_SYSCALL; base += p.syscallEntryExit.cycles; break;
      case 'page-fault': how = ENTRY_EXC; base += p.interruptEntryExit.cycles; break;
      case 'timer-interrupt': case 'nmi':
        // assumption: on a vCPU thread the interrupt arrives in guest mode and exits (vmExitEntry) to the host handler
        how = vm ? (m.event === 'nmi' ? VX_NMI : VX_IRQ) : m.event === 'nmi' ? ENTRY_NMI : ENTRY_IRQ;
        base += p.interruptEntryExit.cycles + (vm ? p.vmExitEntry.cycles : 0);
        break;
      case 'context-switch': base += p.contextSwitch.cycles; break;
      default:
    }
    base = withNativeBase(fp, base, this.w.costs); // a source's measured native base replaces transition + insns (sim/event-base.ts)
    return { kind: EK[m.event], how, vm, base, cycles, plan, irq };
  }

  /**
   * Say which secrets no event of the workload can reach: their object is a candidate of no
   * footprint of any task's mix (nor of a context switch) and in no working set, so no attack
   * can see them whatever the mitigation — a property of the scenario, not a result.
   */
  private noteUntouchedSecrets(): void {
    const w = this.w;
    const reached = new Map<ObjRef, Set<string>>();
    const mark = (o: ObjRef, by: string) => { let s = reached.get(o); if (s === undefined) reached.set(o, (s = new Set())); s.add(by); };
    const cs = this.table.entries.get('context-switch')!;
    for (const task of w.tasks) {
      if (task.attacker !== null) continue;
      const plans = this.items[task.id].map((x) => x.plan);
      if (w.threadTasks[task.thread].length > 1 || w.state.schedCore) plans.push(buildPlan(w, cs, task.tenant, task.tenant, task.thread, new Reasons()));
      for (const p of plans) if (p !== null) for (const o of p.objects) mark(o, p.fp.key);
      const ws = task.tenant.ws;
      if (ws !== null && task.mix.some((m) => m.event === 'guest-run' || m.event === 'user-compute')) for (const o of ws.objects) mark(o, 'its own code');
    }
    for (const { secret, object } of w.secretObjects) {
      const by = reached.get(object);
      if (by === undefined) w.notes.push(`secret ${secret.name} (${object.what}): no event of the workload touches its object, so nothing can leak it in this scenario`);
    }
  }

  /** Run to the end; returns the engine for chaining. */
  run(): this {
    const th = this.th;
    for (let t = 0; t < th.n; t++) if (th.online[t] && this.w.threadTasks[t].length > 0) this.heap.push(t);
    // A run that stops making progress (threads waiting on each other) is a bug in a model rule:
    // fail with what the threads were doing instead of spinning forever.
    let steps = 0;
    let lastDone = -1;
    for (;;) {
      const t = this.heap.pop();
      if (t < 0) break;
      this.step(t);
      if (!th.done[t]) this.heap.push(t);
      if (++steps % PROGRESS_CHECK_STEPS === 0) {
        let done = 0;
        for (let i = 0; i < this.meter.eventsDone.length; i++) done += this.meter.eventsDone[i];
        if (done === lastDone) throw new Error(`kasi run: the engine made no progress in ${PROGRESS_CHECK_STEPS} steps (clocks ${Array.from(th.clock).join(', ')}; stunned by ${this.w.spaces.asi ? Array.from(this.w.spaces.asi.stun.stunnedBy).join(', ') : 'none'}): a model deadlock, please report it with the scenario`);
        lastDone = done;
      }
    }
    this.tracer?.end();
    for (let i = 0; i < this.w.tasks.length; i++) if (this.meter.finish[i] < 0) this.meter.finish[i] = th.clock[this.w.tasks[i].thread];
    let f = 0;
    for (const m of th.mmus) f += m.flushes;
    this.meter.counts.tlbFlushes = f;
    const s = this.w.spaces.asi;
    if (s) { this.meter.counts.asiExits = s.counters.exits; this.meter.counts.asiEntries = s.counters.enters; }
    const sci = this.w.spaces.sci;
    if (sci !== null) {
      for (const task of this.w.tasks) if (sci.killed[task.id] !== '') this.w.notes.push(`sci-2019 killed ${task.tenant.spec.name} (SIGKILL) after ${this.meter.eventsDone[task.id]} events: ${sci.killed[task.id]}`);
      for (const a of this.w.attackers) if (a.ropRefused > 0) this.w.notes.push(`sci-2019 refused ${a.ropRefused} ROP attempts of ${a.task.tenant.spec.name} (a fetch in the middle of commit_creds; the attacker is killed each time and taken to try again)`);
    }
    return this;
  }

  private charge(task: number, kind: number, cycles: number): void {
    if (task >= 0) this.meter.charge(task, kind, cycles);
  }

  private step(t: number): void {
    const th = this.th;
    const w = this.w;
    const cur = th.cur[t];
    if (th.owed[t] > 0) { // IPI handlers (stun requests) received
      th.clock[t] += th.owed[t];
      this.tracer?.span(t, SP_KERNEL_FULL, this.tracer.lbl('ipi handler'));
      this.charge(cur, EK['stun-wait'], th.owed[t]);
      th.owed[t] = 0;
    }
    const asi = w.spaces.asi;
    if (asi !== null && asi.stun.stunnedBy[t] >= 0) {
      if (th.done[asi.stun.stunnedBy[t]]) { asi.stun.stunnedBy[t] = -1; return; } // the stunner stopped: nobody holds t
      const until = Math.max(th.clock[t], th.clock[asi.stun.stunnedBy[t]]) + 1;
      this.charge(cur, EK['stun-wait'], (until - th.clock[t]) * this.spin);
      th.clock[t] = until;
      this.tracer?.span(t, SP_KERNEL_FULL, this.tracer.lbl('stunned'));
      return;
    }
    const coreSched = w.state.schedCore && w.state.smtActive;
    if (th.pending[t] === PH_ATTACK && coreSched && !this.ownsCore(t, w.tasks[cur])) th.pending[t] = PH_NONE; // its slice ended first
    if (th.pending[t] !== PH_NONE) { this.finish(t); return; }
    if (this.remaining === 0) { th.done[t] = 1; return; }
    const list = w.threadTasks[t];
    if (cur < 0) { // boot: the first task is switched in
      const first = this.nextTask(t, -1);
      if (first < 0) { th.done[t] = 1; return; }
      this.switchIn(t, null, w.tasks[first], false);
      return;
    }
    const task = w.tasks[cur];
    if (this.isDone(task, th.clock[t])) {
      this.complete(task, th.clock[t]);
      const next = this.nextTask(t, cur);
      if (next < 0) { th.done[t] = 1; return; }
      this.switchIn(t, task, w.tasks[next], true);
      return;
    }
    if (list.length > 1 && th.clock[t] >= th.switchAt[t]) {
      const next = this.nextTask(t, cur);
      if (next >= 0 && next !== cur) { this.switchIn(t, task, w.tasks[next], true); return; }
      th.switchAt[t] = th.clock[t] + this.quantum;
    }
    if (coreSched && !this.ownsCore(t, task) && this.forcedIdle(t, task)) return;
    if (th.needSwitchIn[t]) {
      th.needSwitchIn[t] = 0;
      this.tr.idle(t, false);
      this.switchIn(t, null, task, true);
      return;
    }
    if (task.attacker !== null) {
      th.clock[t] += this.attackerOf[cur]!.every;
      this.tracer?.span(t, SP_USER);
      th.pending[t] = PH_ATTACK;
      th.evKind[t] = -1;
      return;
    }
    let j = this.pendItem[cur];
    if (j < 0) j = this.draw(task);
    this.pendItem[cur] = -1;
    this.begin(t, task, j);
  }

  private draw(task: Task): number {
    const c = this.cumw[task.id];
    const r = (task.rng.nextU32() / 4294967296) * c[c.length - 1];
    let j = 0;
    while (j < c.length - 1 && r >= c[j]) j++;
    return j;
  }

  private isDone(task: Task, clock: number): boolean {
    if (task.attacker !== null) return false;
    const sci = this.w.spaces.sci;
    if (sci !== null && sci.killed[task.id] !== '') return true; // SIGKILL: the task is gone
    const tg = this.opts.targets;
    return tg !== null ? this.meter.eventsDone[task.id] >= tg[task.id] : clock >= this.opts.endCycles;
  }

  private complete(task: Task, clock: number): void {
    if (this.finished[task.id]) return;
    this.finished[task.id] = 1;
    this.meter.finish[task.id] = clock;
    if (this.waitFrom[task.id] >= 0 && clock > this.waitFrom[task.id]) this.charge(task.id, EK['sched-wait'], clock - this.waitFrom[task.id]); // it ends waiting
    this.remaining--;
  }

  /** The task after `cur` on thread t that still has work (round robin), or -1. */
  private nextTask(t: number, cur: number): number {
    const list = this.w.threadTasks[t];
    const at = list.indexOf(cur);
    for (let k = 1; k <= list.length; k++) {
      const id = list[(at + k + list.length) % list.length];
      if (!this.finished[id] && !(this.w.tasks[id].attacker === null && this.isDone(this.w.tasks[id], this.th.clock[t]))) return id;
      if (this.w.tasks[id].attacker === null) this.complete(this.w.tasks[id], this.th.clock[t]);
    }
    return -1;
  }

  /** schedule() to `next`; with `footprint`, the context-switch footprint runs (not at boot). */
  private switchIn(t: number, prev: Task | null, next: Task, footprint: boolean): void {
    const th = this.th;
    this.tr.acc = 0;
    this.tr.switchTask(t, prev, next);
    let cost = this.tr.acc;
    if (footprint) {
      const key = `${next.id}:${(prev ?? next).tenant.index}`;
      let plan = this.switchPlans.get(key);
      if (plan === undefined) {
        plan = buildPlan(this.w, this.table.entries.get('context-switch')!, next.tenant, (prev ?? next).tenant, t, this.reasons);
        this.switchPlans.set(key, plan);
      }
      this.tr.acc = 0;
      cost += this.switchBase + this.toucher.run(t, plan, next.rng) + this.tr.acc;
    }
    // Time on the run queue is the waiting task's own row ('sched-wait'): from the start of the switch
    // that takes it off the CPU (the switch is the next task's cost) to the start of the one that
    // puts it back (its own), so each task's rows add up to its elapsed time.
    if (this.waitFrom[next.id] >= 0) {
      const waited = th.clock[t] - this.waitFrom[next.id];
      if (waited > 0) this.charge(next.id, EK['sched-wait'], waited);
      this.waitFrom[next.id] = -1;
    }
    if (prev !== null && prev !== next) this.waitFrom[prev.id] = th.clock[t];
    cost = this.smt.wall(t, cost);
    th.cur[t] = next.id;
    th.switchAt[t] = th.clock[t] + cost + this.quantum;
    th.clock[t] += cost;
    this.tracer?.span(t, SP_KERNEL_IN, this.tracer.lbl('context-switch'));
    this.charge(next.id, EK['context-switch'], cost);
    th.pending[t] = next.tenant.vm ? PH_VMENTER : PH_RET_USER;
    th.evKind[t] = EK['context-switch'];
    th.evItem[t] = next.tenant.vm ? 0 : ENTRY_SYSCALL;
  }

  /** Core scheduling: may thread t's task run now? Windows of QUANTUM alternate between the two cookies of a core. */
  private ownsCore(t: number, task: Task): boolean {
    const th = this.th;
    const sib = th.sibling[t];
    if (sib < 0 || !th.online[sib] || th.done[sib] || th.cur[sib] < 0) return true;
    const mine = task.tenant.index;
    const other = this.w.tasks[th.cur[sib]].tenant.index;
    if (mine === other) return true;
    const k = Math.floor(th.clock[t] / this.quantum);
    return ((k & 1) === 0 ? Math.min(mine, other) : Math.max(mine, other)) === mine;
  }

  /** Core scheduling: thread t is forced idle (or takes an interrupt from idle). */
  private forcedIdle(t: number, task: Task): boolean {
    const th = this.th;
    const k = Math.floor(th.clock[t] / this.quantum);
    if (!th.needSwitchIn[t]) { // schedule() picks the idle task: forced idle
      this.tr.acc = 0;
      this.tr.switchTask(t, task, null);
      this.tr.idle(t, true);
      th.clock[t] += this.tr.acc;
      this.tracer?.span(t, SP_KERNEL_IN, this.tracer.lbl('context-switch'));
      this.charge(task.id, EK['forced-idle'], this.tr.acc); // schedule() to the idle task, on the task's account
      th.needSwitchIn[t] = 1;
    }
    const end = (k + 1) * this.quantum;
    // Interrupts keep arriving at the rate the task's mix implies: kernel contexts next to the other cookie.
    const irq = this.irqOf[task.id];
    if (irq !== null) {
      if (th.irqNext[t] <= 0) th.irqNext[t] = th.clock[t] + irq.interval;
      if (th.irqNext[t] < end) {
        if (th.irqNext[t] > th.clock[t]) {
          this.charge(task.id, EK['forced-idle'], th.irqNext[t] - th.clock[t]);
          th.clock[t] = th.irqNext[t];
          this.tracer?.span(t, SP_IDLE, this.tracer.lbl('forced idle'));
        }
        const rng = this.irqRng[t];
        const r = (rng.nextU32() / 4294967296) * irq.cum[irq.cum.length - 1];
        let i = 0;
        while (i < irq.cum.length - 1 && r >= irq.cum[i]) i++;
        this.begin(t, task, irq.items[i], true);
        th.irqNext[t] = th.clock[t] + irq.interval;
        return true;
      }
    }
    this.charge(task.id, EK['forced-idle'], end - th.clock[t]);
    th.clock[t] = end;
    this.tracer?.span(t, SP_IDLE, this.tracer.lbl('forced idle'));
    return true;
  }

  /** Phase 1 of event `j` of `task` on thread t. */
  private begin(t: number, task: Task, j: number, fromIdle = false): void {
    const th = this.th;
    const it = this.items[task.id][j];
    const tr = this.tr;
    tr.acc = 0;
    let cost = it.base + it.cycles;
    let pending = PH_NONE;
    if (fromIdle) { // the CPU idles on the task's mm (lazy TLB): it wakes, runs the handler, and goes back to idle
      th.irqFlag[t] = 1; // kvm_set_cpu_l1tf_flush_l1d()
      tr.idle(t, false);
      pending = PH_IRQ_IDLE;
    } else switch (it.kind) {
      case EK['guest-run']: case EK['user-compute']: {
        const ws = task.tenant.ws;
        if (ws !== null) cost += this.tenantCode.run(t, ws, it.cycles, task.rng);
        break;
      }
      case EK.idle: pending = PH_IDLE_END; break;
      case EK['context-switch']: tr.switchTask(t, task, task); pending = it.vm ? PH_VMENTER : PH_RET_USER; break;
      default:
        if (it.vm) { tr.vmExit(t, task, it.how); pending = PH_VMENTER; } else { tr.kernelEntry(t, task, it.how); pending = PH_RET_USER; }
    }
    if (it.plan !== null) cost += this.toucher.run(t, it.plan, fromIdle ? this.irqRng[t] : task.rng, task.id);
    if (it.plan !== null && it.plan.fp.tlbFlushPages > 0) cost += this.invlpg(t, it.plan.fp.tlbFlushPages);
    if (it.kind === EK.idle) tr.idle(t, true);
    cost += tr.acc;
    if (it.kind !== EK.idle) cost = this.smt.wall(t, cost); // idle time is wall time, not work
    th.clock[t] += cost;
    this.tracer?.event(t, task.id, j, it.kind, fromIdle);
    this.charge(task.id, it.kind, cost);
    if (it.kind === EK['page-fault']) this.meter.counts.pageFaults++;
    if (!fromIdle) this.meter.eventsDone[task.id]++; // an interrupt from idle is not one of the task's events
    this.meter.counts.events++;
    th.pending[t] = pending;
    th.evKind[t] = it.kind;
    th.evItem[t] = it.how;
  }

  /** munmap()/mprotect() flush single pages (flush_tlb_mm_range → INVLPG): on the tenant's user range. */
  private invlpg(t: number, pages: number): number {
    const mmu = this.th.mmus[t];
    for (let i = 0; i < pages; i++) mmu.invlpg(0x7000 * (i + 1), 0);
    return pages * this.w.costs.params.invlpg.cycles;
  }

  /** Phase 2. */
  private finish(t: number): void {
    const th = this.th;
    const tr = this.tr;
    const cur = th.cur[t];
    const task = this.w.tasks[cur];
    const ph = th.pending[t];
    th.pending[t] = PH_NONE;
    tr.acc = 0;
    switch (ph) {
      case PH_RET_USER: tr.returnToUser(t, task, th.evItem[t]); break;
      case PH_VMENTER: tr.vmEnter(t, task, th.evItem[t]); break;
      case PH_IDLE_END: tr.idle(t, false); break;
      case PH_ATTACK: {
        this.meter.counts.attacks++;
        const n0 = this.samples.count;
        const got = runAttacks(this.attackerOf[cur]!, this.w.state, this.samples, th.clock[t]);
        if (this.tracer !== null) this.tracer.phase2(t, ph, got, n0);
        break;
      }
      default: tr.idle(t, true); // PH_IRQ_IDLE: back to idle
    }
    const c = this.smt.wall(t, tr.acc);
    th.clock[t] += c;
    if (this.tracer !== null && ph !== PH_ATTACK) this.tracer.phase2(t, ph, 0, 0);
    if (th.evKind[t] >= 0) this.charge(cur, th.evKind[t], c);
  }
}
