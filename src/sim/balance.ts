/**
 * Load balancing (scenario `machine.load_balance: true`): the scheduler moves a waiting task to
 * an idle hardware thread, the engine's side of CFS (sim/engine.ts calls in). Without it every
 * task stays where the scenario put it, as if pinned there.
 *
 * What is modelled, and from where (kernel/sched/fair.c unless named):
 *  - wake-up placement: a task that wakes while its CPU runs another goes to a CPU that is idle
 *    then (select_task_rq_fair() → select_idle_sibling()), a fully idle core first
 *    (select_idle_core()), within the LLC (here the machine: one socket). Placement does not ask
 *    task_hot(). Under core scheduling the CPU's core must be idle or run the task's cookie
 *    (sched_core_cookie_match(), kernel/sched/sched.h);
 *  - idle balancing: a CPU with nothing to run pulls a task waiting on another's run queue
 *    (sched_balance_newidle(), and the periodic balancing of an idle CPU). can_migrate_task()
 *    leaves a cache-hot task: one that ran less than sysctl_sched_migration_cost (500 us) ago, or,
 *    under core scheduling, whose cookie the destination core does not run (both in task_hot()) —
 *    until the domain's nr_balance_failed exceeds cache_nice_tries (hotEscape below). Between
 *    the two threads of a core nothing is hot (task_hot() returns 0 for SD_SHARE_CPUCAPACITY,
 *    before the cookie test);
 *  - the task's tenant's `pin` list is its cpus_allowed (is_cpu_allowed()).
 * Assumptions: the waiting task that waited longest is the one pulled (CFS detaches from the
 * busiest queue's tail; with equal weights that is the least recently run); no task moves between
 * two busy CPUs (the periodic balancing of busy CPUs evens out load, not idle time); a move costs
 * nothing beyond what follows from it — the new CPU's TLBs, caches and per-CPU data are cold for
 * the task (its footprints are resolved again for that CPU); of the idle CPUs the first to run
 * takes the task, save that a CPU beside a busy sibling leaves a woken task to a fully idle core.
 *
 * An idle CPU is woken when a task may become movable to it (kick()), as the waker's CPU sends
 * it a reschedule IPI; when nothing may, it sleeps without a wake-up time (parked) until a kick.
 */
import { nsToCycles } from './costs.ts';
import { PH_WAKE } from './thread.ts';
import { cookie, runsNothing } from './core-sched.ts';
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
  /** Per task: the cycle it last left a CPU (-1: never ran), and whether it left blocked (its next run follows a wake-up) or preempted. */
  readonly lastRan: Float64Array;
  readonly blocked: Uint8Array;
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
    this.lastRan = new Float64Array(e.w.tasks.length).fill(-1);
    this.blocked = new Uint8Array(e.w.tasks.length);
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
    const s = e.th.sibling[t];
    return runsNothing(e, s) || cookie(e.w.tasks[e.th.cur[s]]) === cookie(x);
  }

  /**
   * Would x's wake-up have placed it on t: x woke after blocking (or is new: a task that never ran
   * is placed as fork and exec balancing place one, an idle core first), and t was idle when it woke.
   */
  private placeable(x: number, t: number): boolean {
    return (this.blocked[x] === 1 || this.lastRan[x] < 0) && this.idleFrom[t] <= this.e.wakeAt[x];
  }

  /**
   * The first cycle task x may be moved to idle thread t (Infinity: not by anything the clock
   * brings; a change of the sibling's cookie may, a quantum later): when it wakes, by placement
   * or once it is neither cache hot nor of another cookie than t's core runs, or t has failed to
   * balance long enough; to its sibling, which shares its caches, when it wakes.
   */
  private movableFrom(x: number, t: number): number {
    const e = this.e;
    const task = e.w.tasks[x];
    const w = e.wakeAt[x];
    if (t === e.th.sibling[task.thread]) return w;
    if (this.placeable(x, t) && this.cookieMatch(task, t)) return w;
    const escape = this.idleFrom[t] + this.hotEscape;
    const cold = !this.cookieMatch(task, t) ? escape : this.lastRan[x] < 0 ? w : Math.min(this.lastRan[x] + this.migrationCost, escape);
    return cold > w ? cold : w;
  }

  /** Task x waits on thread u's run queue (u has started and runs another task), with work left. */
  private waiting(x: number, u: number, now: number): boolean {
    const e = this.e;
    return e.th.cur[u] >= 0 && x !== e.th.cur[u] && e.finished[x] === 0 && e.waitFrom[x] >= 0 && !e.isDone(e.w.tasks[x], now);
  }

  /** A woken task x would go to another idle thread than t whose whole core is idle (select_idle_core()). */
  private idleCoreElsewhere(x: Task, t: number): boolean {
    const e = this.e;
    const th = e.th;
    if (runsNothing(e, th.sibling[t])) return false;
    for (let c = 0; c < th.n; c++) {
      if (c === t || th.done[c] || !runsNothing(e, c) || (th.pending[c] !== PH_WAKE && th.cur[c] >= 0) || !this.allowed(x, c)) continue; // idle, or not started
      if (runsNothing(e, th.sibling[c]) && this.placeable(x.id, c)) return true;
    }
    return false;
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
        if (!this.waiting(x, u, now) || !this.allowed(task, t) || this.movableFrom(x, t) > now) continue;
        if (this.placeable(x, t) && this.idleCoreElsewhere(task, t)) continue;
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
    if (e.buddy[x.thread] === x.id) e.buddy[x.thread] = -1; // a directed yield's buddy is of the queue it was on
    e.runq[t].push(x.id);
    x.thread = t;
    e.resolveItems(x);
    e.meter.counts.migrations++;
  }

  /**
   * The next cycle after thread t's clock at which a task on another thread may become movable
   * to t; Infinity when none may. A task refused only for the cookie t's core runs is tried
   * again a quantum later (the sibling's task changes by then).
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
        if (at <= now) {
          if (!this.waiting(x, u, now)) continue; // its own CPU runs it or will: a kick comes when that changes
          at = now + e.quantum; // movable but left (an idle core elsewhere takes it, or it moved meanwhile)
        } else if (!this.cookieMatch(task, t) && now + e.quantum < at) at = now + e.quantum; // the sibling's cookie may change first: look again
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
      if (at === Infinity) continue;
      this.wakeOn(t, at);
    }
  }

  /** Idle thread t runs its scheduler at cycle `at` (not before it went idle), unless it already does earlier. */
  wakeOn(t: number, at: number): void {
    const th = this.e.th;
    if (th.pending[t] !== PH_WAKE || th.done[t]) return;
    const when = at > this.idleFrom[t] ? at : this.idleFrom[t];
    if (this.parked[t]) { this.parked[t] = 0; th.clock[t] = when; this.e.heap.push(t); return; }
    if (when < th.clock[t] && this.e.heap.has(t)) { th.clock[t] = when; this.e.heap.decrease(t); }
  }

  /**
   * Thread u switched from prev to another task (or to idle): prev, if it has work left, and every
   * task still queued there may go elsewhere; `runnable`: prev was preempted, not blocked.
   */
  switchedOut(u: number, prev: Task | null, runnable: boolean): void {
    const e = this.e;
    const now = e.th.clock[u];
    if (prev !== null && e.finished[prev.id] === 0) {
      this.lastRan[prev.id] = now;
      this.blocked[prev.id] = runnable ? 0 : 1;
      this.kick(prev, now);
    }
    for (const x of e.runq[u]) if (x !== e.th.cur[u] && (prev === null || x !== prev.id) && e.finished[x] === 0) this.kick(e.w.tasks[x], now);
  }
}
