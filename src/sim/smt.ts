/**
 * SMT throughput sharing (issue "Calibration", the core-scheduling figure): the two hardware
 * threads of a core share one core's execution resources, so when both run, each retires its
 * work slower than it would alone. A CPU profile's `smtSpeedup` is the core's throughput with
 * both threads busy over one thread alone (src/uarch/profiles.ts, with its source); each thread
 * then runs at smtSpeedup / 2 of a lone thread, and a piece of work of C cycles (as priced alone,
 * costs.ts) takes C × 2 / smtSpeedup cycles of its thread's clock.
 *
 * "Busy" is the sibling's state when the work starts (event granularity, as the rest of the
 * engine): online, not finished, with a task, and not idle — the idle task (HLT, mwait) and a
 * forced-idle sibling under core scheduling (kernel/sched/core.c: the sibling runs the idle task)
 * leave the core to the other thread, which is why nosmt and core scheduling cost less than 2×.
 * A spinning thread (an ASI stun) counts as busy: a PAUSE loop still takes issue slots.
 */
import type { Machine } from '../uarch/machine.ts';
import type { ThreadState } from './thread.ts';

export class SmtShare {
  /** 2 / smtSpeedup: the stretch of a thread's work while its sibling runs; 1 without SMT. */
  readonly stretch: number;

  constructor(private readonly machine: Machine, private readonly th: ThreadState, smtSpeedup: number, smt: boolean) {
    if (!(smtSpeedup >= 1 && smtSpeedup <= 2)) throw new RangeError(`smtSpeedup ${smtSpeedup}: expected 1..2 (two threads give at least one thread's and at most two cores' throughput)`);
    this.stretch = smt ? 2 / smtSpeedup : 1;
  }

  /** Is thread t's sibling running work now? */
  siblingBusy(t: number): boolean {
    const th = this.th;
    const s = th.sibling[t];
    return s >= 0 && th.online[s] === 1 && th.done[s] === 0 && th.cur[s] >= 0 && !this.machine.threads[s].idle;
  }

  /**
   * Core scheduling (set by the engine): does thread t's sibling run another cookie's task? Such a
   * sibling is only finishing work it began before the window turned (an attacker's slice, an
   * event that ran over); it is forced idle when that ends, at its clock.
   */
  crossCookie: ((t: number) => boolean) | null = null;

  /** The cycles `cycles` of work (priced alone) take on thread t now. */
  wall(t: number, cycles: number): number {
    if (this.stretch === 1 || cycles <= 0 || !this.siblingBusy(t)) return cycles;
    const full = cycles * this.stretch;
    if (this.crossCookie === null || !this.crossCookie(t)) return full;
    // shared only until the other cookie's in-flight work ends, alone after it
    const d = this.th.clock[this.th.sibling[t]] - this.th.clock[t];
    if (d <= 0) return cycles;
    return full <= d ? full : d + (cycles - d / this.stretch);
  }
}
