/**
 * Core scheduling (Documentation/admin-guide/hw-vuln/core-scheduling.rst), the engine's side of
 * it (sim/engine.ts calls in): per core, time windows of QUANTUM go to one cookie (tenant) at a
 * time; a thread whose task has another cookie is forced idle, taking the interrupt events of its
 * mix meanwhile ("kernel contexts" the document says are not protected). A sibling with nothing
 * to run holds no cookie, and a forced idle ends when the owning thread goes idle.
 */
import { EK, PH_NONE, PH_WAKE } from './thread.ts';
import { SP_IDLE, SP_KERNEL_IN } from './engine-trace.ts';
import type { Engine } from './engine.ts';
import type { Task } from './world.ts';

/** A task's core-scheduling cookie: its tenant's. */
export function cookie(task: Task): number {
  return task.tenant.index;
}

/**
 * Does thread t run nothing: no such thread, offline, finished, no task, or its CPU idle (waiting
 * for a wake-up, or in the idle state)? Such a sibling holds no cookie (ownsCore()), and its core
 * is idle for placement (sim/balance.ts).
 */
export function runsNothing(e: Engine, t: number): boolean {
  const th = e.th;
  return t < 0 || th.online[t] === 0 || th.done[t] !== 0 || th.cur[t] < 0 || th.pending[t] === PH_WAKE || e.w.machine.threads[t].idle;
}

/** Does thread t run a task of another cookie than its sibling's (both with a task)? sim/smt.ts asks, for the overlap it stretches. */
export function crossCookie(e: Engine, t: number): boolean {
  const th = e.th;
  const s = th.sibling[t];
  return th.cur[t] >= 0 && s >= 0 && th.cur[s] >= 0 && cookie(e.w.tasks[th.cur[t]]) !== cookie(e.w.tasks[th.cur[s]]);
}

/** Core scheduling: may thread t's task run now? Windows of QUANTUM alternate between the two cookies of a core. */
export function ownsCore(e: Engine, t: number, task: Task): boolean {
  const th = e.th;
  const sib = th.sibling[t];
  // A sibling with nothing to run (its CPU idle) holds no cookie: kernel/sched/core.c pick_next_task()
  // takes the highest-priority pick of the core's threads, and an idle thread's pick is its idle task.
  if (runsNothing(e, sib)) return true;
  const mine = cookie(task);
  const other = cookie(e.w.tasks[th.cur[sib]]);
  if (mine === other) return true;
  const k = Math.floor(th.clock[t] / e.quantum);
  return ((k & 1) === 0 ? Math.min(mine, other) : Math.max(mine, other)) === mine;
}

/**
 * Core scheduling: thread t's CPU goes idle at cycle `at`. A sibling forced idle by t's cookie
 * may run from then: schedule() on t redoes the core-wide pick, which now has only the
 * sibling's task (kernel/sched/core.c pick_next_task(); the sibling is sent a resched IPI), so
 * its wait ends at `at` instead of at its window's end.
 */
export function releaseSibling(e: Engine, t: number, at: number): void {
  if (!(e.w.state.schedCore && e.w.state.smtActive)) return;
  const th = e.th;
  const sib = th.sibling[t];
  if (sib < 0 || th.needSwitchIn[sib] === 0 || th.pending[sib] !== PH_NONE || th.clock[sib] <= at || !e.heap.has(sib)) return;
  const back = th.clock[sib] - at;
  const cur = th.cur[sib];
  e.charge(cur, EK['forced-idle'], -back); // forcedIdle() charged the wait to its window's end
  e.lateBy[cur] -= back;
  th.clock[sib] = at;
  e.heap.decrease(sib);
}

/** Core scheduling: thread t is forced idle (or takes an interrupt from idle). */
export function forcedIdle(e: Engine, t: number, task: Task): boolean {
  const th = e.th;
  const k = Math.floor(th.clock[t] / e.quantum);
  if (!th.needSwitchIn[t]) { // schedule() picks the idle task: forced idle
    e.tr.acc = 0;
    e.tr.leftUserMode(t, task); // the reschedule interrupt that forces it out
    e.tr.switchTask(t, task, null);
    e.tr.idle(t, true);
    th.clock[t] += e.tr.acc;
    e.tracer?.span(t, SP_KERNEL_IN, e.tracer.lbl('context-switch'));
    e.charge(task.id, EK['forced-idle'], e.tr.acc); // schedule() to the idle task, on the task's account
    th.needSwitchIn[t] = 1;
  }
  const end = (k + 1) * e.quantum;
  // Interrupts keep arriving at the rate the task's mix implies: kernel contexts next to the other cookie.
  const irq = e.irqOf[task.id];
  if (irq !== null) {
    if (th.irqNext[t] <= 0) th.irqNext[t] = th.clock[t] + irq.interval;
    if (th.irqNext[t] < end) {
      if (th.irqNext[t] > th.clock[t]) {
        e.charge(task.id, EK['forced-idle'], th.irqNext[t] - th.clock[t]);
        e.lateBy[task.id] += th.irqNext[t] - th.clock[t];
        th.clock[t] = th.irqNext[t];
        e.tracer?.span(t, SP_IDLE, e.tracer.lbl('forced idle'));
      }
      const rng = e.irqRng[t];
      const r = (rng.nextU32() / 4294967296) * irq.cum[irq.cum.length - 1];
      let i = 0;
      while (i < irq.cum.length - 1 && r >= irq.cum[i]) i++;
      e.begin(t, task, irq.items[i], true);
      th.irqNext[t] = th.clock[t] + irq.interval;
      return true;
    }
  }
  e.charge(task.id, EK['forced-idle'], end - th.clock[t]);
  e.lateBy[task.id] += end - th.clock[t];
  th.clock[t] = end;
  e.tracer?.span(t, SP_IDLE, e.tracer.lbl('forced idle'));
  return true;
}
