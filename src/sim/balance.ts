/**
 * Load balancing (scenario `machine.load_balance: true`): the scheduler moves a waiting task to
 * an idle hardware thread, the engine's side of CFS's idle balancing (sim/engine.ts calls in).
 * Without it every task stays where the scenario put it, as if pinned there.
 *
 * What is modelled, and from where (kernel/sched/fair.c):
 *  - a task that wakes while its CPU runs another goes to an idle CPU: select_task_rq_fair() →
 *    select_idle_sibling() takes an idle CPU of the LLC (here: the machine; one socket);
 *  - a CPU about to go idle pulls a task waiting on another's run queue (sched_balance_newidle(),
 *    formerly idle_balance()), as the periodic balancing of an idle CPU does; a task preempted
 *    less than sysctl_sched_migration_cost ago (500 us) is cache hot and stays (task_hot() in
 *    can_migrate_task(); its nr_balance_failed escape is not modelled). A woken task is not hot:
 *    it slept since it last ran, and wake-up placement does not ask task_hot();
 *  - the task's tenant's `pin` list is its cpus_allowed (is_cpu_allowed());
 *  - with core scheduling a task only moves to a CPU whose core is idle or runs its cookie
 *    (sched_core_cookie_match(), used by select_idle_sibling()'s __select_idle_cpu() and by
 *    can_migrate_task()).
 * Assumptions: the waiting task that waited longest is the one pulled (CFS picks from the
 * busiest queue's tail; with equal weights that is the least recently run); a task is not moved
 * between two busy CPUs (the periodic balancing of busy CPUs evens out load, not idle time); a
 * move itself costs nothing beyond what follows from it — the new CPU's TLBs, caches and
 * per-CPU data are cold for the task (its footprints are resolved again for that CPU).
 *
 * An idle CPU is woken when a task may become movable to it (kick()), as the waker's CPU sends
 * it a reschedule IPI; when nothing may, it sleeps without a wake-up time (parked) until a kick.
 */
import { nsToCycles } from './costs.ts';
import { PH_WAKE } from './thread.ts';
import type { Engine } from './engine.ts';
import type { Task } from './world.ts';

/** sysctl_sched_migration_cost: 500000 ns (kernel/sched/fair.c). */
const MIGRATION_COST_NS = 500_000;
/** sd->cache_nice_tries of a domain sharing the LLC (kernel/sched/topology.c sd_init()). */
const CACHE_NICE_TRIES = 1;

export class Balancer {
  /** Per thread: idle with no wake-up due (out of the engine's heap until a kick). */
  readonly parked: Uint8Array;
  /** Per thread: the cycle its CPU went idle (a kick cannot wake it earlier). */
  readonly idleFrom: Float64Array;
  /** Per task: the cycle it was preempted at while runnable (-1: it blocked, or never ran). */
  readonly preemptedAt: Float64Array;
  readonly migrationCost: number;
  /**
   * How long an idle thread waits before it takes a hot task anyway: can_migrate_task() lets a
   * hot task go once the domain's nr_balance_failed exceeds cache_nice_tries, so at the
   * (cache_nice_tries + 2)th periodic balance; here (cache_nice_tries + 1) balance intervals, an
   * interval being sd_weight ms (sd_init(): balance_interval = sd_weight, the LLC domain's CPUs,
   * here the machine's online threads; assumption: one LLC, the interval not yet grown).
   */
  readonly hotEscape: number;
  constructor(private readonly e: Engine) {
    this.parked = new Uint8Array(e.th.n);
    this.idleFrom = new Float64Array(e.th.n);
    this.preemptedAt = new Float64Array(e.w.tasks.length).fill(-1);
    this.migrationCost = nsToCycles(MIGRATION_COST_NS, e.w.costs);
    let cpus = 0;
    for (let t = 0; t < e.th.n; t++) cpus += e.th.online[t];
    this.hotEscape = nsToCycles((CACHE_NICE_TRIES + 1) * cpus * 1_000_000, e.w.costs);
  }

  /** May task x run on thread t (its cpus_allowed, an online CPU, not an attacker's pinned loop)? */
  private allowed(x: Task, t: number): boolean {
    if (x.attacker !== null || this.e.th.online[t] === 0) return false;
    const pin = x.tenant.spec.pin;
    return pin.length === 0 || pin.includes(t);
  }

  /** Core scheduling: is thread t's core idle, or does it run x's cookie (sched_core_cookie_match())? */
  private cookieMatch(x: Task, t: number): boolean {
    const e = this.e;
    if (!(e.w.state.schedCore && e.w.state.smtActive)) return true;
    const th = e.th;
    const s = th.sibling[t];
    if (s < 0 || th.online[s] === 0 || th.cur[s] < 0 || th.pending[s] === PH_WAKE || e.w.machine.threads[s].idle) return true;
    return e.w.tasks[th.cur[s]].tenant.index === x.tenant.index;
  }

  /**
   * The first cycle task x may be moved to idle thread t: when it wakes, and once it is no longer
   * cache hot or t has failed to balance long enough (hotEscape); to its sibling, which shares its
   * caches, at once (task_hot() is 0 in an SD_SHARE_CPUCAPACITY domain).
   */
  private movableFrom(x: number, t: number): number {
    const p = t === this.e.th.sibling[this.e.w.tasks[x].thread] ? -1 : this.preemptedAt[x];
    const w = this.e.wakeAt[x];
    if (p < 0) return w;
    const cold = Math.min(p + this.migrationCost, this.idleFrom[t] + this.hotEscape);
    return cold > w ? cold : w;
  }

  /** Task x waits on a run queue, not on its CPU, with work left. */
  private waiting(x: number, u: number, now: number): boolean {
    const e = this.e;
    const task = e.w.tasks[x];
    return x !== e.th.cur[u] && e.finished[x] === 0 && e.waitFrom[x] >= 0 && !e.isDone(task, now);
  }

  /**
   * Thread t has nothing of its own to run: the task it pulls from a busy thread's queue (moved
   * to t), or -1. An idle thread's queue is its own to run when it wakes.
   */
  pull(t: number): number {
    const e = this.e;
    const th = e.th;
    const now = th.clock[t];
    let best = -1;
    let bestSince = Infinity;
    for (let u = 0; u < th.n; u++) {
      if (u === t || th.online[u] === 0 || th.pending[u] === PH_WAKE) continue;
      for (const x of e.runq[u]) {
        const task = e.w.tasks[x];
        if (!this.waiting(x, u, now) || this.movableFrom(x, t) > now || !this.allowed(task, t) || !this.cookieMatch(task, t)) continue;
        const since = Math.max(e.waitFrom[x], e.wakeAt[x]);
        if (since < bestSince) { best = x; bestSince = since; }
      }
    }
    if (best >= 0) this.move(e.w.tasks[best], t);
    return best;
  }

  private move(x: Task, t: number): void {
    const e = this.e;
    const from = e.runq[x.thread];
    from.splice(from.indexOf(x.id), 1);
    e.runq[t].push(x.id);
    x.thread = t;
    e.resolveItems(x);
    this.preemptedAt[x.id] = -1;
    e.meter.counts.migrations++;
  }

  /**
   * The next cycle after thread t's clock at which a task on another thread may become movable
   * to t; Infinity when none may. A task refused only for its cookie is tried again a quantum
   * later (the sibling's task changes by then).
   */
  nextChance(t: number): number {
    const e = this.e;
    const th = e.th;
    const now = th.clock[t];
    let next = Infinity;
    for (let u = 0; u < th.n; u++) {
      if (u === t || th.online[u] === 0) continue;
      for (const x of e.runq[u]) {
        const task = e.w.tasks[x];
        if (e.finished[x] || !this.allowed(task, t)) continue;
        let at = this.movableFrom(x, t);
        if (at <= now) { if (!this.waiting(x, u, now) || this.cookieMatch(task, t)) continue; at = now + e.quantum; }
        if (at < next) next = at;
      }
    }
    return next;
  }

  /** Task x waits on its thread's queue from cycle `now` on: wake the idle threads that could take it once it is movable to them. */
  kick(x: Task, now: number): void {
    const e = this.e;
    const th = e.th;
    for (let t = 0; t < th.n; t++) {
      if (t === x.thread || th.pending[t] !== PH_WAKE || th.done[t] || !this.allowed(x, t)) continue;
      const at = Math.max(now, this.movableFrom(x.id, t));
      const when = at > this.idleFrom[t] ? at : this.idleFrom[t];
      if (when >= th.clock[t] && this.parked[t] === 0) continue;
      th.clock[t] = when;
      if (this.parked[t]) { this.parked[t] = 0; e.heap.push(t); } else e.heap.decrease(t);
    }
  }

  /** Thread u switched from prev (still with work) to another task: prev, and every task still queued, may go elsewhere. */
  switchedOut(u: number, prev: Task | null, runnable: boolean): void {
    const e = this.e;
    const now = e.th.clock[u];
    if (prev !== null && e.finished[prev.id] === 0) {
      this.preemptedAt[prev.id] = runnable ? now : -1;
      this.kick(prev, now);
    }
    for (const x of e.runq[u]) if (x !== e.th.cur[u] && (prev === null || x !== prev.id) && e.finished[x] === 0) this.kick(e.w.tasks[x], now);
  }
}
