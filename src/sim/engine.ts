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
 *  - a hardware thread with several tasks (SMT off moved them together, or the scenario put more
 *    vCPUs than threads there) round-robins them every QUANTUM, each switch a 'context-switch'
 *    footprint + schedule() (mitigate.ts switchTask). A task that idles there blocks: a halted
 *    vCPU gives its CPU away (kvm_vcpu_halt() → kvm_vcpu_block() → schedule(), virt/kvm/kvm_main.c),
 *    as a host task's sleep does, and is runnable again when its idle time ends (the wake-up:
 *    kvm_vcpu_wake_up()); it then waits on the run queue until the task on the CPU yields or its
 *    slice ends (no wake-up preemption: assumption, round robin instead of CFS's vruntime order).
 *    When every task of the thread is blocked the CPU idles until the first wake-up;
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
import { EK, Meter, PH_ATTACK, PH_IDLE_END, PH_IRQ_IDLE, PH_NONE, PH_RET_USER, PH_VMENTER, PH_WAKE, type ThreadState } from './thread.ts';
import { buildPlan, Plan, Reasons } from './plan.ts';
import { Toucher } from './touch.ts';
import type { ObjRef, Task, World } from './world.ts';
import { WorkingSetRunner } from './working-set.ts';
import { sizedFootprint } from './sized.ts';
import { withNativeBase } from './event-base.ts';
import { SmtShare } from './smt.ts';
import { CodeWarmth } from './code-warmth.ts';
import { GuestLocks, haltOnLock, onCpu, spinOnLock, wakeWaiters } from './guest-lock.ts';
import { crossCookie, forcedIdle, ownsCore, releaseSibling } from './core-sched.ts';
import { Balancer } from './balance.ts';
import { EngineTracer, SP_IDLE, SP_KERNEL_FULL, SP_KERNEL_IN, SP_USER, type TraceSink } from './engine-trace.ts';

/** Time slice of round-robin and core-scheduling windows (assumption: short enough to switch within a run of milliseconds). */
export const QUANTUM_NS = 100_000;

export interface EngineOptions {
  /** Events per task (workload tasks); null = run until `endCycles` (duration mode). */
  targets: Int32Array | null;
  endCycles: number;
  /** A timeline of the run (kasi run --trace); null/absent: none, and nothing of it runs (engine-trace.ts). */
  trace?: TraceSink | null;
  /** Measured-task steps without a measured event that make a livelock (default LIVELOCK_CHECK_STEPS; tests lower it). */
  livelockCheckSteps?: number;
  /** Steps of all threads between two deadlock checks (default PROGRESS_CHECK_STEPS; tests lower it). */
  deadlockCheckSteps?: number;
}

/** One mix item compiled for a task. */
interface Item {
  kind: number;
  how: number;
  vm: boolean;
  /** Transition (or native base) + loop cycles; the instructions are priced when the event runs (code). */
  base: number;
  /** Kernel instructions, priced by how warm their code is (sim/code-warmth.ts); 0 under a native base. */
  insns: number;
  /** Code region and its L1I lines (-1 and 0: none, e.g. idle). */
  region: number;
  lines: number;
  cycles: number;
  plan: Plan | null;
  irq: boolean;
  /** idle with wake 'timer': the task's time waiting for a CPU since its last wake-up comes off it. */
  timer: boolean;
}

/** nextTask(): the thread's tasks with work left are all blocked. */
const NONE_RUNNABLE = -2;

/** Steps between two progress checks of Engine.run(). */
const PROGRESS_CHECK_STEPS = 2_000_000;
/**
 * Steps of measured tasks between two livelock checks: a measured task takes a handful of steps
 * an event (switch-in, the event, its pending phase); a spin on a lock is a few steps more, so
 * 100,000 without one measured event is a loop, not a wait.
 */
const LIVELOCK_CHECK_STEPS = 100_000;

export class Engine {
  readonly meter: Meter;
  readonly reasons = new Reasons();
  readonly samples = new Samples(256, 1 << 16);
  readonly tr: Transitions;
  readonly th: ThreadState;
  readonly heap: ThreadHeap;
  readonly toucher: Toucher;
  readonly tenantCode: WorkingSetRunner;
  private readonly items: Item[][];
  /** With load balancing: each task's items as compiled for a thread it has run on, by task * threads + thread. */
  private readonly itemsOn = new Map<number, Item[]>();
  /** Task ids per hardware thread, starting as the scenario placed them (load balancing moves them). */
  readonly runq: number[][];
  /** Idle balancing (scenario machine.load_balance), or null: every task stays where it was placed. */
  readonly balance: Balancer | null;
  private readonly cumw: Float64Array[];
  private readonly switchPlans = new Map<string, Plan>();
  private readonly table: FootprintTable;
  readonly quantum: number;
  readonly pendItem: Int32Array;
  /** Per task: the cycle it was switched out at and waits on the run queue from (-1: not waiting). */
  readonly waitFrom: Float64Array;
  /** Per task: blocked (idle on a shared thread) until this cycle; runnable when <= the thread's clock. */
  readonly wakeAt: Float64Array;
  /** Per thread: its tasks share it (more than one), so an idle task blocks instead of holding the CPU. */
  private readonly shared: Uint8Array;
  /** Per task: cycles it waited for a CPU (run queue, forced idle) since its last timer idle. */
  readonly lateBy: Float64Array;
  /** Per thread: the task a directed yield boosted (yield_to's next buddy), picked first; -1 none. */
  readonly buddy: Int32Array;
  /** Guest locks of VMs with a lock_fraction (sim/guest-lock.ts); null when no VM has one. */
  readonly locks: GuestLocks | null;
  readonly finished: Uint8Array;
  /** Per task: 1 for measured work (not an attacker, not background). */
  private readonly measured: Uint8Array;
  private readonly attackerOf: (AttackerRt | null)[];
  /** Per task: its interrupt items, their cumulative weights and mean spacing (cycles); null without any. */
  readonly irqOf: ({ items: Int32Array; cum: Float64Array; interval: number } | null)[];
  readonly irqRng: Xoshiro128[];
  private remaining = 0;
  private readonly spin: number;
  private readonly switchBase: number;
  private readonly switchInsns: number;
  private readonly switchRegion: number;
  private readonly switchLines: number;
  /** What each kernel path's instructions cost given what ran before on the core. */
  readonly code: CodeWarmth;
  /** Both threads of a core busy: each runs slower (sim/smt.ts). */
  readonly smt: SmtShare;
  readonly tracer: EngineTracer | null;

  constructor(readonly w: World, readonly opts: EngineOptions) {
    this.th = w.threads;
    this.meter = new Meter(w.tasks.length);
    this.tr = new Transitions(w, this.meter.counts);
    const p = w.costs.params;
    const walkPrices = { walk: p.tlbMissWalk.cycles, upperLoad: p.walkUpperLoad.cycles, stlbHit: p.stlbHit.cycles };
    if (w.spaces.sci !== null) w.spaces.sci.counts = this.meter.counts;
    this.toucher = new Toucher(w.machine, w.sys.mem, this.th.mmus, w.spaces.asi, w.spaces.sci, this.meter.counts, this.reasons, { ...walkPrices, l1dMiss: p.l2Hit.cycles, fault: p.interruptEntryExit.cycles, invlpg: p.invlpg.cycles }, w.spaces.ephmap);
    this.tenantCode = new WorkingSetRunner(w.machine, this.th.mmus, this.meter.counts, p.l2Hit.cycles, walkPrices);
    this.heap = new ThreadHeap(this.th.clock);
    this.table = loadFootprintTable({ overrides: w.scenario.footprintOverrides });
    this.quantum = nsToCycles(QUANTUM_NS, w.costs);
    this.spin = p.stunSpinPerCycle.cycles;
    this.smt = new SmtShare(w.machine, this.th, w.profile.smtSpeedup, w.profile.smt);
    if (w.state.schedCore && w.state.smtActive) this.smt.crossCookie = (t) => crossCookie(this, t);
    const cs = this.table.entries.get('context-switch')!;
    this.code = new CodeWarmth(this.th.n, w.machine.threadsPerCore, w.profile.l1iSizeBytes, w.costs, this.meter.counts);
    this.tr.onIbpb = (t) => this.code.ibpb(t);
    this.switchBase = p.contextSwitch.cycles;
    this.switchInsns = cs.insns.count;
    this.switchRegion = this.code.region(cs.key);
    this.switchLines = CodeWarmth.kernelLines(cs.insns.count);
    this.items = w.tasks.map((t) => t.mix.map((m) => this.compile(t, m)));
    this.runq = w.threadTasks.map((l) => [...l]);
    this.balance = w.scenario.machine.loadBalance ? new Balancer(this) : null;
    if (this.balance !== null) for (const t of w.tasks) this.itemsOn.set(t.id * this.th.n + t.home, this.items[t.id]);
    this.noteUntouchedSecrets();
    this.cumw = w.tasks.map((t) => { let s = 0; return Float64Array.from(t.mix, (m) => (s += m.weight)); });
    this.pendItem = new Int32Array(w.tasks.length).fill(-1);
    this.waitFrom = new Float64Array(w.tasks.length); // every task is runnable from cycle 0
    this.wakeAt = new Float64Array(w.tasks.length);
    this.lateBy = new Float64Array(w.tasks.length);
    this.buddy = new Int32Array(this.th.n).fill(-1);
    this.locks = GuestLocks.any(w.tenants) ? new GuestLocks(w.tenants, w.tasks, w.scenario.seed) : null;
    // With load balancing any thread may get a second task, so an idle task gives its CPU away everywhere.
    this.shared = Uint8Array.from(w.threadTasks, (l, t) => (l.length > 1 || (this.balance !== null && this.th.online[t]) ? 1 : 0));
    this.finished = new Uint8Array(w.tasks.length);
    this.measured = Uint8Array.from(w.tasks, (t) => (t.attacker === null && !t.background ? 1 : 0));
    for (const m of this.measured) this.remaining += m;
    this.attackerOf = w.tasks.map((t) => w.attackers.find((a) => a.task === t) ?? null);
    this.startAtPhase();
    this.irqOf = w.tasks.map((t) => {
      const its = this.items[t.id];
      const idx = its.map((x, i) => (x.irq ? i : -1)).filter((i) => i >= 0);
      if (idx.length === 0) return null;
      const wsum = t.mix.reduce((a, m) => a + m.weight, 0);
      const mean = t.mix.reduce((a, m, i) => a + m.weight * this.nominal(its[i]), 0) / wsum;
      let c = 0;
      const cum = Float64Array.from(idx, (i) => (c += t.mix[i].weight));
      return { items: Int32Array.from(idx), cum, interval: Math.max(1, Math.round((mean * wsum) / c)) };
    });
    // A stream per thread for interrupts taken while forced idle (outside the tasks' own sequences).
    this.irqRng = Array.from({ length: this.th.n }, (_, t) => new Xoshiro128(w.scenario.seed, 0x1000 + t));
    this.tracer = opts.trace ? new EngineTracer(w, this.tr, this.meter.counts, opts.trace, this.reasons, this.samples) : null;
  }

  /**
   * A periodic background task (one with timer idles) on a shared thread starts at a random point
   * of its period, not at the top of a burst: the noise beside a measured task is at any phase when
   * the measurement starts, and starting every one at cycle 0 would make them burst together. Its
   * first wake-up is uniform over its mean period (the cycles of its mix between two timer
   * idles), drawn from a stream of its own so every configuration starts it at the same phase.
   */
  private startAtPhase(): void {
    const w = this.w;
    for (const task of w.tasks) {
      if (!task.background || this.shared[task.thread] === 0) continue; // a measured task starts the measurement
      const its = this.items[task.id];
      let cyc = 0, timerW = 0;
      task.mix.forEach((m, i) => { cyc += m.weight * this.nominal(its[i]); if (its[i].timer) timerW += m.weight; });
      if (timerW === 0) continue;
      const r = new Xoshiro128(w.scenario.seed, 0x3000 + task.id).nextU32() / 4294967296;
      this.wakeAt[task.id] = Math.floor(r * (cyc / timerW));
      this.waitFrom[task.id] = this.wakeAt[task.id]; // it waits for a CPU from its first wake-up
    }
  }

  /**
   * Load balancing moved `task` to the thread it now names: its events are resolved again for that
   * CPU (its per-CPU area, its stack's neighbours), once per thread.
   */
  resolveItems(task: Task): void {
    const key = task.id * this.th.n + task.thread;
    let its = this.itemsOn.get(key);
    if (its === undefined) { its = task.mix.map((m) => this.compile(task, m)); this.itemsOn.set(key, its); }
    this.items[task.id] = its;
  }

  private compile(task: Task, m: MixItem): Item {
    const p = this.w.costs.params;
    const vm = task.tenant.vm !== null;
    const key = mixFootprintKey(m);
    const tableFp = key === null ? undefined : this.table.entries.get(key);
    if (key !== null && tableFp === undefined) throw new RangeError(`no footprint for ${key}`);
    const fp = tableFp !== undefined && m.event === 'syscall' && m.bytes !== undefined ? sizedFootprint(tableFp, m.bytes) : tableFp;
    const plan = fp ? buildPlan(this.w, fp, task.tenant, task.tenant, task.thread, this.reasons) : null;
    const cycles = 'cycles' in m ? m.cycles : 0;
    let how = 0;
    let base = fp ? fp.loopCycles : 0;
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
    const insns = fp !== undefined && fp.base === null ? fp.insns.count : 0;
    let region = -1, lines = 0;
    if (fp !== undefined) { region = this.code.region(fp.key); lines = CodeWarmth.kernelLines(fp.insns.count); }
    else if (m.event === 'guest-run' || m.event === 'user-compute') { region = this.code.region(`tenant:${task.tenant.index}`); lines = CodeWarmth.tenantLines(m.codeBytes); }
    return { kind: EK[m.event], how, vm, base, insns, region, lines, cycles, plan, irq, timer: m.event === 'idle' && m.wake === 'timer' };
  }

  /** An item's cost with its instructions cold and no mitigation: what interrupt spacing and phases are drawn from. */
  private nominal(it: Item): number {
    return it.base + it.insns * this.w.costs.params.kernelCyclesPerInsn.cycles + it.cycles;
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
      if (w.threadTasks[task.thread].length > 1 || w.state.schedCore || this.balance !== null) plans.push(buildPlan(w, cs, task.tenant, task.tenant, task.thread, new Reasons()));
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
    for (let t = 0; t < th.n; t++) if (th.online[t] && (this.runq[t].length > 0 || this.balance !== null)) this.heap.push(t);
    // A run that stops making progress is a bug in a model rule: fail with what the threads were
    // doing instead of spinning forever. Progress is measured work: background tasks (noise VMs)
    // run for ever by design, so their events prove nothing. Two checks: measured tasks running
    // on their CPUs without finishing an event (a livelock, e.g. a spin on a lock a background
    // vCPU keeps retaking), and no measured event while no measured task can go on (each halted
    // without a wake-up time, or queued on a CPU that will not run again: a deadlock).
    let steps = 0;
    let measuredSteps = 0;
    let lastDone = -1;
    let lastMeasuredDone = -1;
    const livelockSteps = this.opts.livelockCheckSteps ?? LIVELOCK_CHECK_STEPS;
    const deadlockSteps = this.opts.deadlockCheckSteps ?? PROGRESS_CHECK_STEPS;
    for (;;) {
      const t = this.heap.pop();
      if (t < 0) break;
      const c = th.cur[t];
      // a measured task on its CPU (not a CPU woken for one step while its task sleeps)
      const onCpu = c >= 0 && this.measured[c] === 1 && th.pending[t] !== PH_WAKE && this.wakeAt[c] <= th.clock[t];
      if (onCpu && ++measuredSteps % livelockSteps === 0) {
        const done = this.measuredEventsDone();
        if (done === lastMeasuredDone) this.noProgress(livelockSteps, 'its measured tasks ran on their CPUs without finishing an event (a livelock)');
        lastMeasuredDone = done;
      }
      this.step(t);
      if (!th.done[t] && (this.balance === null || !this.balance.parked[t])) this.heap.push(t);
      if (++steps % deadlockSteps === 0) {
        const done = this.measuredEventsDone();
        if (done === lastDone && !this.measuredCanGoOn()) this.noProgress(deadlockSteps, 'no measured task finished an event, and none can go on (a deadlock)');
        lastDone = done;
      }
    }
    this.tracer?.end();
    for (let i = 0; i < this.w.tasks.length; i++) if (this.meter.finish[i] < 0) this.meter.finish[i] = th.clock[this.w.tasks[i].thread];
    let f = 0;
    for (const m of th.mmus) f += m.allFlushes;
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

  charge(task: number, kind: number, cycles: number): void {
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
    if (th.pending[t] === PH_WAKE) {
      th.pending[t] = PH_NONE;
      if (this.remaining === 0) { th.done[t] = 1; return; }
      this.wake(t);
      return;
    }
    if (th.pending[t] === PH_ATTACK && coreSched && !ownsCore(this, t, w.tasks[cur])) th.pending[t] = PH_NONE; // its slice ended first
    if (th.pending[t] !== PH_NONE) { this.finish(t); return; }
    if (this.remaining === 0) { th.done[t] = 1; return; }
    const list = this.runq[t];
    if (cur < 0) { // boot: the first task is switched in
      const first = this.pick(t, -1, true);
      if (first < 0 && this.balance !== null) { this.stayIdle(t); return; }
      if (first === NONE_RUNNABLE) { // every task here starts off its CPU (a periodic task's phase): idle until the first is due
        let due = Infinity;
        for (const id of list) if (this.wakeAt[id] < due) due = this.wakeAt[id];
        th.clock[t] = due;
        return;
      }
      if (first < 0) { th.done[t] = 1; return; }
      this.switchIn(t, null, w.tasks[first], false);
      return;
    }
    const task = w.tasks[cur];
    if (this.isDone(task, th.clock[t])) {
      this.complete(task, th.clock[t]);
      const next = this.pick(t, cur, true);
      if (next === NONE_RUNNABLE || (next < 0 && this.balance !== null)) { this.idleUntilWake(t, task, true); return; }
      if (next < 0) { th.done[t] = 1; return; }
      this.switchIn(t, task, w.tasks[next], true);
      return;
    }
    if (this.wakeAt[cur] > th.clock[t]) { // it blocked (idle on a shared thread): schedule() picks another task, or idle
      this.leaveForcedIdle(t);
      const next = this.pick(t, cur, true);
      if (next === NONE_RUNNABLE || (next < 0 && this.balance !== null)) { this.idleUntilWake(t, task, true); return; }
      if (next < 0) { th.done[t] = 1; return; }
      this.switchIn(t, task, w.tasks[next], true);
      return;
    }
    if (list.length > 1 && th.clock[t] >= th.switchAt[t]) {
      const next = this.nextTask(t, cur);
      if (next >= 0 && next !== cur) { this.leaveForcedIdle(t); this.switchIn(t, task, w.tasks[next], true); return; }
      th.switchAt[t] = th.clock[t] + this.quantum;
    }
    if (coreSched && !ownsCore(this, t, task) && forcedIdle(this, t, task)) return;
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

  private measuredEventsDone(): number {
    let done = 0;
    for (let i = 0; i < this.measured.length; i++) if (this.measured[i] === 1) done += this.meter.eventsDone[i];
    return done;
  }

  /**
   * Some measured task with work left can still finish an event: it has a finite wake-up time
   * (running, runnable, in a long event, or asleep on a timer) and its CPU will run again (not
   * done, not parked). A task halted without a wake-up time (on a guest lock) waits for another
   * task to free it, which is what a deadlock never does.
   */
  private measuredCanGoOn(): boolean {
    const th = this.th;
    for (let i = 0; i < this.measured.length; i++) {
      if (this.measured[i] !== 1 || this.finished[i]) continue;
      const t = this.w.tasks[i].thread;
      if (Number.isFinite(this.wakeAt[i]) && !th.done[t] && (this.balance === null || !this.balance.parked[t])) return true;
    }
    return false;
  }

  private noProgress(steps: number, what: string): never {
    const th = this.th;
    throw new Error(`kasi run: the engine made no progress in ${steps} steps: ${what} (clocks ${Array.from(th.clock).join(', ')}; stunned by ${this.w.spaces.asi ? Array.from(this.w.spaces.asi.stun.stunnedBy).join(', ') : 'none'}): a model deadlock, please report it with the scenario`);
  }

  isDone(task: Task, clock: number): boolean {
    if (this.measured[task.id] === 0) return false; // attackers and background tasks run while measured work remains
    const sci = this.w.spaces.sci;
    if (sci !== null && sci.killed[task.id] !== '') return true; // SIGKILL: the task is gone
    const tg = this.opts.targets;
    return tg !== null ? this.meter.eventsDone[task.id] >= tg[task.id] : clock >= this.opts.endCycles;
  }

  private complete(task: Task, clock: number): void {
    if (this.finished[task.id]) return;
    this.finished[task.id] = 1;
    // A task whose last event blocked (an idle that gave its CPU away) finishes when that sleep
    // ends, not when its CPU next looks at it: its rows hold the whole sleep.
    const wake = this.wakeAt[task.id];
    this.meter.finish[task.id] = Number.isFinite(wake) && wake > clock ? wake : clock;
    if (this.locks?.release(task)) wakeWaiters(this, task); // a vCPU that stops leaves no lock behind
    if (this.waitFrom[task.id] >= 0 && clock > this.waitFrom[task.id]) this.charge(task.id, EK['sched-wait'], clock - this.waitFrom[task.id]); // it ends waiting
    this.remaining--;
  }

  /**
   * The task after `cur` on thread t that still has work and is runnable now (round robin); -1 when
   * none has work, NONE_RUNNABLE when some have but every one of them is blocked.
   */
  private nextTask(t: number, cur: number): number {
    const list = this.runq[t];
    const clock = this.th.clock[t];
    const b = this.buddy[t];
    if (b >= 0) { // yield_to()'s next buddy goes first when it can run
      this.buddy[t] = -1;
      if (!this.finished[b] && this.wakeAt[b] <= clock && this.w.tasks[b].thread === t) return b;
    }
    const at = list.indexOf(cur);
    let blocked = false;
    for (let k = 1; k <= list.length; k++) {
      const id = list[(at + k + list.length) % list.length];
      const task = this.w.tasks[id];
      if (!this.finished[id] && !(task.attacker === null && this.isDone(task, clock))) {
        if (this.wakeAt[id] > clock) { blocked = true; continue; }
        return id;
      }
      if (this.measured[id] === 1) this.complete(task, clock);
    }
    return blocked ? NONE_RUNNABLE : -1;
  }

  /**
   * nextTask(), and when thread t has nothing of its own to run, a task load balancing pulls to it;
   * `idleNow`: t's CPU goes idle at its clock if nothing is found (not: it has been idle since earlier).
   */
  private pick(t: number, cur: number, idleNow: boolean): number {
    const next = this.nextTask(t, cur);
    if (next >= 0 || this.balance === null) return next;
    if (idleNow) this.balance.idleFrom[t] = this.th.clock[t];
    const pulled = this.balance.pull(t);
    return pulled >= 0 ? pulled : next;
  }

  /** The first wake-up after thread t's clock of a task of its own with work left (Infinity: none). */
  private ownWake(t: number): number {
    let wake = Infinity;
    const now = this.th.clock[t];
    for (const id of this.runq[t]) if (!this.finished[id] && this.wakeAt[id] > now && this.wakeAt[id] < wake) wake = this.wakeAt[id];
    return wake;
  }

  /**
   * Load balancing: idle thread t has nothing to run: it stays idle until its next wake-up or the
   * next chance to pull a task, or parks until a kick (sim/balance.ts).
   */
  private stayIdle(t: number): void {
    const th = this.th;
    if (th.pending[t] !== PH_WAKE) this.balance!.idleFrom[t] = th.clock[t];
    th.pending[t] = PH_WAKE;
    th.evKind[t] = -1;
    this.sleepUntil(t, this.ownWake(t));
  }

  /** Load balancing: idle thread t sleeps until `ownWake` or the next chance to pull a task, whichever is first; parks when neither comes. */
  private sleepUntil(t: number, ownWake: number): void {
    const wake = Math.min(ownWake, this.balance!.nextChance(t));
    if (wake === Infinity) this.balance!.parked[t] = 1; else if (wake > this.th.clock[t]) this.th.clock[t] = wake;
  }

  /**
   * Every task of thread t with work left is blocked: schedule() switches `prev` out to the idle
   * task (its cost on prev's account) and the CPU idles until the first wake-up, where wake()
   * switches the woken task in (PH_WAKE: in two steps, so a sibling sees this thread idle meanwhile).
   */
  private idleUntilWake(t: number, prev: Task, fromUser: boolean): void {
    const th = this.th;
    const wake = this.ownWake(t);
    this.tr.acc = 0;
    if (fromUser) this.tr.leftUserMode(t, prev); // it blocks or exits: a system call
    this.tr.switchTask(t, prev, null);
    this.tr.idle(t, true);
    const cost = this.tr.acc;
    th.clock[t] += cost;
    // A task that finished has its elapsed time already; one that blocked has its sleep charged from
    // the block on (begin()), so only the part of the switch that runs past its wake-up is its own.
    if (!this.finished[prev.id]) {
      const asleep = Math.max(0, Math.min(cost, this.wakeAt[prev.id] - (th.clock[t] - cost)));
      this.charge(prev.id, EK['context-switch'], cost - asleep);
    }
    this.tracer?.span(t, SP_KERNEL_IN, this.tracer.lbl('context-switch'));
    if (!this.finished[prev.id] && this.waitFrom[prev.id] < 0) this.waitFrom[prev.id] = Math.max(th.clock[t], this.wakeAt[prev.id]); // on the run queue from its wake-up
    releaseSibling(this, t, th.clock[t]);
    th.pending[t] = PH_WAKE;
    th.evKind[t] = -1;
    if (this.balance !== null) { // the idle span is emitted when the CPU leaves idle (wake()): a kick may end it earlier
      this.balance.switchedOut(t, prev, false);
      this.balance.idleFrom[t] = th.clock[t];
      this.sleepUntil(t, wake); // its own tasks' first wake-up as of the block (one may come during the switch)
      return;
    }
    if (wake > th.clock[t]) th.clock[t] = wake;
    this.tracer?.span(t, SP_IDLE);
  }

  /** Core scheduling: the slice of a forced-idle task ends with another task to run: the CPU leaves idle for it. */
  private leaveForcedIdle(t: number): void {
    if (this.th.needSwitchIn[t] === 0) return;
    this.th.needSwitchIn[t] = 0;
    this.tr.idle(t, false);
  }

  /** The end of idleUntilWake(): the CPU leaves idle and the first runnable task is switched in. */
  private wake(t: number): void {
    const th = this.th;
    if (this.balance !== null) { // a kick may find nothing left to take: the CPU stays idle, at no cost
      const next = this.pick(t, th.cur[t], false);
      if (next < 0) { th.pending[t] = PH_WAKE; this.stayIdle(t); return; }
      this.tracer?.span(t, SP_IDLE); // idle since idleUntilWake(), which left the span open: kicks move its end
      this.tr.acc = 0;
      this.tr.idle(t, false);
      th.clock[t] += this.tr.acc;
      this.switchIn(t, null, this.w.tasks[next], true);
      return;
    }
    this.tr.acc = 0;
    this.tr.idle(t, false);
    th.clock[t] += this.tr.acc;
    const cur = th.cur[t];
    const next = this.nextTask(t, cur);
    if (next === NONE_RUNNABLE) { this.idleUntilWake(t, this.w.tasks[cur], false); return; }
    if (next < 0) { th.done[t] = 1; return; }
    this.switchIn(t, null, this.w.tasks[next], true);
  }

  /** schedule() to `next`; with `footprint`, the context-switch footprint runs (not at boot). */
  private switchIn(t: number, prev: Task | null, next: Task, footprint: boolean): void {
    const th = this.th;
    if (next.thread !== t) throw new Error(`kasi run: task ${next.id} switched in on thread ${t} while it is queued on thread ${next.thread}: a model error, please report it with the scenario`);
    // A switch from a task (not from idle or at boot) follows its entry to the kernel: a timer
    // interrupt, or the call that blocks or exits; the entry's IBPB untrains the switch's code.
    this.tr.acc = 0;
    if (prev !== null && footprint) this.tr.leftUserMode(t, prev);
    const entry = this.tr.acc;
    // The switch's code is priced before switchTask(): an IBPB it issues (an ASI exit) untrains
    // what runs after it, not the path that issued it (as begin() prices an event before its transitions).
    const code = footprint ? this.code.run(t, this.switchRegion, this.switchLines, this.switchInsns) : 0;
    this.tr.acc = 0;
    this.tr.switchTask(t, prev, next);
    let cost = entry + this.tr.acc;
    if (footprint) {
      const key = `${next.id}:${(prev ?? next).tenant.index}:${t}`;
      let plan = this.switchPlans.get(key);
      if (plan === undefined) {
        plan = buildPlan(this.w, this.table.entries.get('context-switch')!, next.tenant, (prev ?? next).tenant, t, this.reasons);
        this.switchPlans.set(key, plan);
      }
      this.tr.acc = 0;
      cost += this.switchBase + code + this.toucher.run(t, plan, next.rng) + this.tr.acc;
    }
    // Time on the run queue is the waiting task's own row ('sched-wait'): from the start of the switch
    // that takes it off the CPU (the switch is the next task's cost) to the start of the one that
    // puts it back (its own), so each task's rows add up to its elapsed time.
    if (this.waitFrom[next.id] >= 0) {
      const waited = th.clock[t] - this.waitFrom[next.id];
      if (waited > 0) { this.charge(next.id, EK['sched-wait'], waited); this.lateBy[next.id] += waited; }
      this.waitFrom[next.id] = -1;
    }
    if (prev !== null && prev !== next) this.waitFrom[prev.id] = Math.max(th.clock[t], this.wakeAt[prev.id]); // a blocked task waits from its wake-up
    th.cur[t] = next.id; // before wall(): the switch runs for next's cookie
    cost = this.smt.wall(t, cost);
    th.switchAt[t] = th.clock[t] + cost + this.quantum;
    th.clock[t] += cost;
    if (this.balance !== null) this.balance.switchedOut(t, prev === next ? null : prev, prev !== null && this.wakeAt[prev.id] <= th.clock[t]);
    this.tracer?.span(t, SP_KERNEL_IN, this.tracer.lbl('context-switch'));
    this.charge(next.id, EK['context-switch'], cost);
    th.pending[t] = next.tenant.vm ? PH_VMENTER : PH_RET_USER;
    th.evKind[t] = EK['context-switch'];
    th.evItem[t] = next.tenant.vm ? 0 : ENTRY_SYSCALL;
  }

  /** Phase 1 of event `j` of `task` on thread t. */
  begin(t: number, task: Task, j: number, fromIdle = false): void {
    const th = this.th;
    const it = this.items[task.id][j];
    const tr = this.tr;
    const locks = this.locks;
    if (locks !== null && !fromIdle) {
      if (locks.release(task)) wakeWaiters(this, task);
      if (it.kind === EK['guest-run']) {
        const h = locks.heldBy(task);
        if (h >= 0 && !onCpu(this, h)) {
          if (locks.blocks[task.tenant.index] === 1) haltOnLock(this, t, task, j); else spinOnLock(this, t, task, j, h);
          return;
        }
      }
    }
    tr.acc = 0;
    // A timer idle is shorter by the time the task ran late (it waited for a CPU); never below 0.
    const own = it.timer ? Math.max(0, it.cycles - this.lateBy[task.id]) : it.cycles;
    if (it.timer) this.lateBy[task.id] = 0;
    let cost = it.base + own;
    let pending = PH_NONE;
    if (fromIdle) { // the CPU idles on the task's mm (lazy TLB): it wakes, runs the handler, and goes back to idle
      th.irqFlag[t] = 1; // kvm_set_cpu_l1tf_flush_l1d()
      tr.idle(t, false);
      if (it.vm ? (it.how & VX_NMI) !== 0 : it.how === ENTRY_NMI) tr.entryBarrier(t, false); // paranoid_entry untrains also from the kernel
      pending = PH_IRQ_IDLE;
    } else switch (it.kind) {
      case EK['guest-run']: case EK['user-compute']: {
        const ws = task.tenant.ws;
        if (ws !== null) cost += this.tenantCode.run(t, ws, it.cycles, it.lines, task.rng);
        break;
      }
      case EK.idle: if (this.shared[t] === 0) pending = PH_IDLE_END; break; // on a shared thread it blocks (below)
      case EK['context-switch']: tr.leftUserMode(t, task); tr.switchTask(t, task, task); pending = it.vm ? PH_VMENTER : PH_RET_USER; break;
      default:
        if (it.vm) { tr.vmExit(t, task, it.how); pending = PH_VMENTER; } else { tr.kernelEntry(t, task, it.how); pending = PH_RET_USER; }
    }
    // The path runs after its entry's actions (an IBPB on entry, an ASI exit the entry makes untrain
    // it) and before its touches (an exit they cause untrains what follows).
    if (it.lines > 0) cost += this.code.run(t, it.region, it.lines, it.insns);
    if (it.plan !== null) cost += this.toucher.run(t, it.plan, fromIdle ? this.irqRng[t] : task.rng, task.id);
    if (it.plan !== null && it.plan.fp.tlbFlushPages > 0) cost += this.invlpg(t, it.plan.fp.tlbFlushPages);
    const blocks = it.kind === EK.idle && this.shared[t] === 1 && !fromIdle;
    if (it.kind === EK.idle && !blocks) { tr.idle(t, true); releaseSibling(this, t, th.clock[t] + cost - own + tr.acc); }
    cost += tr.acc;
    if (it.kind !== EK.idle) cost = this.smt.wall(t, cost); // idle time is wall time, not work
    if (blocks) { // the idle time is the task's own, off the CPU: it wakes when it ends
      cost -= own;
      this.wakeAt[task.id] = th.clock[t] + cost + own;
      this.charge(task.id, it.kind, own);
    }
    th.clock[t] += cost;
    this.tracer?.event(t, task.id, j, it.kind, fromIdle);
    this.charge(task.id, it.kind, cost);
    if (it.kind === EK['page-fault']) this.meter.counts.pageFaults++;
    if (locks !== null && it.kind === EK['guest-run'] && !fromIdle) locks.endSlice(task);
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
