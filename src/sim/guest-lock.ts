/**
 * Guest-side waiting on a descheduled lock holder (lock-holder preemption), for VMs whose vCPUs
 * the host time-shares with other tasks (issue "Calibration", the core-scheduling TPC-C figure).
 *
 * A VM tenant with `lock_fraction` f > 0 has one hot lock all its vCPUs take (a guest spinlock, a
 * database mutex that spins first). The rules, at the engine's event granularity:
 *  - f of the guest's run time is inside the lock, so a guest-run slice ends inside a critical
 *    section with probability f (the host can take the CPU at any instant of the guest's code);
 *    the vCPU then holds the lock until its next event begins, where the section completes
 *    (assumption: the rest of a critical section is short beside a slice);
 *  - a vCPU about to run guest code while another vCPU of its VM holds the lock off its CPU
 *    (switched out or forced idle) waits for it (assumption: the lock is hot, every slice takes
 *    it), as the tenant's `lock_wait` says:
 *  - 'spin' (a guest spinlock): VMX pause-loop exiting ends the spin after ple_window cycles of PAUSE loop
 *    (arch/x86/kvm/vmx/vmx.c: KVM_VMX_DEFAULT_PLE_WINDOW 4096, ple_gap 128) with a VM exit;
 *    handle_pause() → kvm_vcpu_on_spin() (virt/kvm/kvm_main.c) picks a preempted vCPU of the same
 *    VM and kvm_vcpu_yield_to() → yield_to(): the spinner gives up its CPU (a skip buddy) and the
 *    target becomes the next buddy of its run queue, preempting what runs there
 *    (kernel/sched/core.c yield_to(): resched_curr() when the target is on another run queue);
 *    The spinner tries again when it next runs: the workload event it was about to start is
 *    retried, so a spin is time lost, never one of the task's events;
 *  - 'block' (a sleeping lock: InnoDB's mutexes spin innodb_sync_spin_loops rounds, then the
 *    thread "is suspended" on an OS event, MySQL Reference Manual, InnoDB startup options): the
 *    waiting vCPU has nothing else to run and halts (kvm_vcpu_halt → schedule()); no PLE exit,
 *    so no directed yield helps the holder, which runs again only when its own run queue comes
 *    round to it. Its release wakes the waiters (futex wake → kvm_vcpu_kick() of the halted vCPU).
 * With f = 0 nothing here runs and overcommit costs only the time slices (engine.ts).
 */
import { Xoshiro128 } from '../linux/kaslr.ts';
import { VX_HLT } from './mitigate.ts';
import { EK, PH_NONE, PH_VMENTER, PH_WAKE } from './thread.ts';
import { SP_KERNEL_IN } from './engine-trace.ts';
import type { Engine } from './engine.ts';
import type { Task, TenantRt } from './world.ts';

/** KVM_VMX_DEFAULT_PLE_WINDOW (arch/x86/kvm/vmx/vmx.c): cycles of PAUSE loop before a PLE exit. */
export const PLE_WINDOW = 4096;

export class GuestLocks {
  /** Per tenant: the task holding its lock (-1: free). */
  readonly holder: Int32Array;
  private readonly fraction: Float64Array;
  /** Per task: its own stream (the same draws in every configuration: one per guest-run slice it ends). */
  private readonly rng: (Xoshiro128 | null)[];
  /** Per tenant: waiters halt ('block') instead of spinning ('spin'). */
  readonly blocks: Uint8Array;
  /** Per task: the tenant whose lock it is halted on (-1: none). */
  readonly waitsOn: Int32Array;
  /** Per task: the cycle it halted on the lock. */
  readonly blockedAt: Float64Array;
  /** Per tenant: its tasks' ids. */
  readonly tasksOf: readonly Int32Array[];
  /** PLE exits taken (spins on a descheduled holder), and halts on a held lock. */
  spins = 0;
  waits = 0;

  constructor(tenants: readonly TenantRt[], tasks: readonly Task[], seed: number) {
    this.holder = new Int32Array(tenants.length).fill(-1);
    this.fraction = Float64Array.from(tenants, (t) => (t.vm !== null ? t.spec.lockFraction : 0));
    this.rng = tasks.map((t) => (this.fraction[t.tenant.index] > 0 ? new Xoshiro128(seed, 0x2000 + t.id) : null));
    this.blocks = Uint8Array.from(tenants, (t) => (t.vm !== null && t.spec.lockWait === 'block' ? 1 : 0));
    this.waitsOn = new Int32Array(tasks.length).fill(-1);
    this.blockedAt = new Float64Array(tasks.length);
    this.tasksOf = tenants.map((ten) => Int32Array.from(tasks.filter((t) => t.tenant === ten), (t) => t.id));
  }

  /** Does any tenant take a lock? (Without one the engine never calls in.) */
  static any(tenants: readonly TenantRt[]): boolean {
    return tenants.some((t) => t.vm !== null && t.spec.lockFraction > 0);
  }

  /** Task `task` ended a guest-run slice: it may be inside a critical section now. */
  endSlice(task: Task): void {
    const rng = this.rng[task.id];
    if (rng === null) return;
    const ten = task.tenant.index;
    if (rng.nextU32() / 4294967296 < this.fraction[ten] && this.holder[ten] < 0) this.holder[ten] = task.id;
  }

  /** Task `task` begins an event: the critical section it was in (if any) completes; true when a lock with halted waiters was freed. */
  release(task: Task): boolean {
    const ten = task.tenant.index;
    if (this.holder[ten] !== task.id) return false;
    this.holder[ten] = -1;
    return this.blocks[ten] === 1;
  }

  /** The other vCPU of `task`'s VM holding the lock (-1: free or its own). */
  heldBy(task: Task): number {
    const h = this.holder[task.tenant.index];
    return h === task.id ? -1 : h;
  }
}

// The engine's side (sim/engine.ts begin() and complete() call in).

/** Is task `id` running on its thread now (not switched out, blocked, or forced idle)? */
export function onCpu(e: Engine, id: number): boolean {
  const th = e.th;
  const ht = e.w.tasks[id].thread;
  return th.cur[ht] === id && th.needSwitchIn[ht] === 0 && th.pending[ht] !== PH_WAKE && e.wakeAt[id] <= th.clock[ht];
}

/**
 * Task `task` would run guest code while vCPU `holder` of its VM holds the lock off its CPU
 * (sim/guest-lock.ts): it spins for ple_window cycles, takes the PLE exit, and
 * kvm_vcpu_on_spin() yields to the holder: the holder's thread switches to it at its next step,
 * this thread to another task. Event `j` is retried when the spinner next runs.
 */
export function spinOnLock(e: Engine, t: number, task: Task, j: number, holder: number): void {
  const th = e.th;
  const tr = e.tr;
  tr.acc = 0;
  tr.vmExit(t, task, 0); // EXIT_REASON_PAUSE_INSTRUCTION → handle_pause()
  const cost = e.smt.wall(t, PLE_WINDOW + e.w.costs.params.vmExitEntry.cycles + tr.acc);
  th.clock[t] += cost;
  e.charge(task.id, EK['lock-spin'], cost);
  e.tracer?.span(t, SP_KERNEL_IN, e.tracer.lbl('context-switch'));
  e.locks!.spins++;
  e.pendItem[task.id] = j;
  const ht = e.w.tasks[holder].thread;
  e.buddy[ht] = holder; // yield_to(): the holder is its run queue's next buddy ...
  if (th.switchAt[ht] > th.clock[ht]) th.switchAt[ht] = th.clock[ht]; // ... and what runs there is preempted
  if (ht !== t) th.switchAt[t] = th.clock[t]; // the spinner gives up its CPU (skip buddy)
  th.pending[t] = PH_VMENTER;
  th.evKind[t] = EK['lock-spin'];
  th.evItem[t] = 0;
}

/**
 * Task `task` would run guest code while a descheduled vCPU of its VM holds a sleeping lock
 * (sim/guest-lock.ts 'block'): the guest thread sleeps on it and the vCPU halts (a HLT exit,
 * kvm_vcpu_block()) until the holder's release wakes it; event `j` is retried then.
 */
export function haltOnLock(e: Engine, t: number, task: Task, j: number): void {
  const th = e.th;
  const tr = e.tr;
  const locks = e.locks!;
  tr.acc = 0;
  tr.vmExit(t, task, VX_HLT);
  const cost = e.smt.wall(t, e.w.costs.params.vmExitEntry.cycles + tr.acc);
  th.clock[t] += cost;
  e.charge(task.id, EK['lock-wait'], cost);
  e.tracer?.span(t, SP_KERNEL_IN, e.tracer.lbl('context-switch'));
  locks.waits++;
  locks.waitsOn[task.id] = task.tenant.index;
  locks.blockedAt[task.id] = th.clock[t];
  e.wakeAt[task.id] = Infinity;
  e.pendItem[task.id] = j;
  th.switchAt[t] = th.clock[t];
  th.pending[t] = PH_NONE;
  th.evKind[t] = EK['lock-wait'];
}

/** `holder` freed its VM's lock: every vCPU halted on it is runnable now; a halted CPU of theirs wakes (the kick's IPI). */
export function wakeWaiters(e: Engine, holder: Task): void {
  const th = e.th;
  const locks = e.locks!;
  const now = th.clock[holder.thread];
  const ids = locks.tasksOf[holder.tenant.index];
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k];
    if (locks.waitsOn[id] < 0) continue;
    locks.waitsOn[id] = -1;
    const at = Math.max(now, locks.blockedAt[id]);
    e.charge(id, EK['lock-wait'], at - locks.blockedAt[id]);
    e.lateBy[id] += at - locks.blockedAt[id];
    e.wakeAt[id] = at;
    if (e.waitFrom[id] === Infinity) e.waitFrom[id] = at; // switched out while halted: on the run queue from now
    const wt = e.w.tasks[id].thread;
    if (e.balance !== null) { e.balance.wakeOn(wt, at); e.balance.kick(e.w.tasks[id], at); continue; }
    if (th.pending[wt] === PH_WAKE && th.clock[wt] > at && e.heap.has(wt)) { th.clock[wt] = at; e.heap.decrease(wt); }
  }
}
