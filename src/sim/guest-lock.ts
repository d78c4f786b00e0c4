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
