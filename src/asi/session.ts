/**
 * The ASI state machine of each hardware thread: asi_enter / asi_exit and the events that
 * cause them (faults, interrupts, NMIs, context switches, returns to user), producing the CR3
 * writes through the thread's Mmu (with PCID and NOFLUSH as the design decides) and the
 * actions (L1D flush, VERW, IBPB, RSB fill, stun, IPI, kill) the engine and uarch apply.
 *
 * Transition models (types.ts), from the sources:
 *  - 'chartre' (v4 asi.c/asi.h in rppt/linux): a per-CPU asi_session {asi, idepth,
 *    isolation_cr3, original_cr3}. asi_enter() of the active ASI is a no-op; ASI_INTERRUPT
 *    increments idepth and at depth 1 writes original_cr3 | NOFLUSH; ASI_RESUME decrements and
 *    at 0 writes isolation_cr3 (recomputed by asi_prepare_resume() → asi_update_flush());
 *    asi_fault() with fault_abort clears the session "and the faulty instruction is immediately
 *    retried" on the full tables; asi_schedule_out() exits and saves the session in the task,
 *    asi_schedule_in() re-enters it.
 *  - 'google' (2022 and RFC v2): per-CPU curr_asi and a target; asi_enter() sets the target and
 *    __asi_enter() switches unless already there; asi_exit() writes the unrestricted CR3;
 *    asi_relax() drops the target. Interrupts (even NMIs) "do not automatically cause an
 *    asi_exit" (2022 cover letter): asi_intr_enter() counts the per-task intr_nest_depth while
 *    tense, a fault in the handler exits, and asi_intr_exit() at depth 0 calls __asi_enter(),
 *    which restores the restricted CR3. Context switch exits (and relaxes).
 *  - 'kpti': the restricted space is the user copy; kernel entry = SWITCH_TO_KERNEL_CR3, return
 *    to user = SWITCH_TO_USER_CR3 with the user_pcid_flush_mask rule (linux/asid.ts).
 *  - 'static': the context's tables are its kernel tables (namespace address spaces): entered at
 *    context switch, never left; a fault on another namespace's object is refused.
 * Nothing here allocates per event; actions go to `onAction` and to the counters.
 */
import { CR3_NOFLUSH_HI } from '../x86/bits.ts';
import type { AsidState, MmContext } from '../linux/asid.ts';
import type { System } from '../linux/system.ts';
import { Probe, probe } from './restricted.ts';
import { NoflushTracker, chartreAsiPcid, cr3Halves, google2022AsiPcid, google2025AsiPcid } from './pcid.ts';
import { ASI_TAINT_KERNEL_DATA, enterControl, enterData, exitTaints, switchMmTaints, type TaintFeatures } from './taint.ts';
import { StunState } from './stun.ts';
import {
  ACT_IBPB, ACT_IPI, ACT_KILL, ACT_L1D_FLUSH, ACT_RSB_FILL, ACT_STUN, ACT_UNSTUN, ACT_VERW, FAULT_GENUINE, FAULT_KILL,
  FAULT_MAPPED, FAULT_NOT_ASI, FAULT_RETRY, INTR_NMI, AsiCounters, type ActionSink, type AsiDesign, type AsiThread, type RestrictedSpace, type SessionOptions, type TaintModel,
} from './types.ts';

export { AsiCounters };
export type { AsiThread, SessionOptions };

const TWO32 = 4294967296;

export class AsiSession {
  readonly design: AsiDesign;
  readonly sys: System;
  readonly threads: readonly AsiThread[];
  readonly asids: AsidState;
  readonly spaces: RestrictedSpace[] = [];
  readonly counters = new AsiCounters();
  readonly stun: StunState;
  /** Per thread: the space loaded or being used (curr_asi / asi_session.asi), -1 for none. */
  readonly curr: Int32Array;
  /** Per thread: the target (google), or the space to resume after an interrupt (kpti). */
  readonly target: Int32Array;
  /** Per thread: idepth (chartre), intr_nest_depth (google), interrupt depth (kpti). */
  readonly depth: Int32Array;
  /** Per thread: the asi_taints byte. */
  readonly taints: Uint8Array;
  /** Per thread: original_cr3 and isolation_cr3 (chartre), as halves. */
  readonly orig: Uint32Array;
  readonly iso: Uint32Array;
  /** Per thread: the running task id (engine-assigned), -1 at boot. */
  readonly task: Int32Array;
  private saved: Int32Array = new Int32Array(64).fill(-1);
  private taskSpace: Int32Array = new Int32Array(64).fill(-1);
  private readonly spaceTaint: Array<TaintModel | null> = [];
  private readonly spacePcid: number[] = [];
  private readonly features: TaintFeatures;
  private readonly stunOn: boolean;
  private readonly sink: ActionSink | null;
  private readonly tracker: NoflushTracker;
  private readonly pti: boolean;
  private readonly cr3 = new Uint32Array(2);
  private readonly pr = new Probe();
  /** The taint model folds per-domain taints at switch_mm (RFC v2). */
  private squash = false;

  constructor(o: SessionOptions) {
    this.design = o.design;
    this.sys = o.system;
    this.threads = o.threads;
    this.asids = o.asids ?? o.system.asids;
    const n = o.threads.length;
    o.threads.forEach((t, i) => { if (t.id !== i) throw new RangeError(`thread ${i} has id ${t.id}: ids must be 0..${n - 1} in order`); });
    this.curr = new Int32Array(n).fill(-1);
    this.target = new Int32Array(n).fill(-1);
    this.depth = new Int32Array(n);
    this.taints = new Uint8Array(n).fill(ASI_TAINT_KERNEL_DATA); // the kernel has run on every CPU since boot
    this.orig = new Uint32Array(2 * n);
    this.iso = new Uint32Array(2 * n);
    this.task = new Int32Array(n).fill(-1);
    this.stun = new StunState(Int32Array.from(o.threads, (t) => t.sibling));
    this.features = { l1tf: true, ibpb: true, ...o.features };
    this.stunOn = o.stun ?? o.design.stun;
    this.sink = o.onAction ?? null;
    this.tracker = new NoflushTracker(Math.max(...o.threads.map((t) => t.cpu)) + 1);
    this.pti = o.system.kernel.pti.enabled;
  }

  /** Register a built space; returns its id. */
  addSpace(space: RestrictedSpace): number {
    space.id = this.spaces.length;
    this.spaces.push(space);
    const m = this.design.taintOf ? this.design.taintOf(space.context) : this.design.taint;
    this.spaceTaint.push(m);
    if (m?.controlOnExit) this.squash = true;
    this.spacePcid.push(this.design.pcidValueOf ? this.design.pcidValueOf(space.context) : this.design.pcid.value ?? 0);
    return space.id;
  }

  /** The space a task runs in, for models that enter at context switch ('static'). */
  assignTask(task: number, space: number): void {
    this.taskSpace = grow(this.taskSpace, task + 1);
    this.taskSpace[task] = space;
  }

  /** Load the full CR3 of the thread's loaded mm (a flushing write), as a CPU coming up does. */
  bootThread(t: number): void { this.writeFull(t, false); }

  /** Whether thread t's CR3 holds a restricted root now. */
  inRestricted(t: number): boolean {
    const c = this.curr[t];
    if (c < 0) return false;
    return this.design.transition === 'chartre' ? this.depth[t] === 0 : true;
  }

  // -- enter / exit -----------------------------------------------------------------------------

  /** asi_enter(space) (kpti: return to user; static: load the namespace tables). */
  enter(t: number, space: number): void {
    switch (this.design.transition) {
      case 'google':
        this.target[t] = space;
        this.googleEnter(t);
        return;
      case 'chartre':
        if (this.curr[t] >= 0) return; // "We can re-enter isolation, but only with the same ASI"
        this.chartreSwitch(t, space);
        return;
      case 'kpti': {
        if (this.curr[t] >= 0) return;
        const r = this.asids.result;
        if (!this.asids.returnToUser(this.threads[t].cpu, r)) throw new Error('kpti: PTI is off in this kernel');
        this.write(t, r.userCr3Lo, r.userCr3Hi);
        this.entered(t, space);
        return;
      }
      default: {
        if (this.curr[t] === space) return;
        const kp = this.kernPcid(t);
        const nf = this.pcide(t) && this.tracker.check(this.threads[t].cpu, kp, space, this.spaces[space].gen);
        cr3Halves(this.spaces[space].root, this.pcide(t) ? kp : 0, nf, this.cr3);
        this.write(t, this.cr3[0], this.cr3[1]);
        this.entered(t, space);
      }
    }
  }

  /** asi_exit() (kpti: kernel entry). Returns whether the thread left a restricted space. */
  exit(t: number): boolean {
    if (this.curr[t] < 0) return false;
    switch (this.design.transition) {
      case 'google': {
        this.stunSibling(t); // 2022: pre_asi_exit hook
        const m = this.spaceTaint[this.curr[t]];
        this.applyTaint(t, exitTaints(this.taints[t], m, this.features));
        this.writeFull(t, this.design.pcid.noflush === 'tracked'); // RFC v2 asi_exit(): build_cr3(), no NOFLUSH
        break;
      }
      case 'chartre':
        this.stunSibling(t);
        this.applyTaint(t, exitTaints(this.taints[t], null, this.features)); // kvm_may_access_sensitive_data()
        if (this.depth[t] === 0) this.writeOrig(t); // asi_switch_to_kernel_cr3(); if interrupted, CR3 is already the kernel's
        this.depth[t] = 0;
        break;
      case 'kpti': {
        const r = this.asids.result;
        this.asids.enterKernel(this.threads[t].cpu, r);
        this.write(t, r.cr3Lo, r.cr3Hi);
        break;
      }
      default:
        return false; // 'static': the namespace tables are never left
    }
    this.curr[t] = -1;
    this.stun.inside[t] = 0;
    this.counters.exits++;
    return true;
  }

  /** asi_relax(): the critical section is over; stay out after the next exit. */
  relax(t: number): void { this.target[t] = -1; }

  /** Return to user mode: kpti enters the user tables; KVM ASI exits first ("asi_exit() before returning to userspace"). */
  returnToUser(t: number, space = -1): void {
    if (this.design.transition === 'kpti') { this.enter(t, space); return; }
    this.exit(t);
    this.relax(t);
  }

  // -- faults -----------------------------------------------------------------------------------

  /** A translation by thread t faulted at hi:lo while its CR3 was restricted: apply the fault policy. */
  fault(t: number, lo: number, hi: number, access: number): number {
    if (!this.inRestricted(t)) return FAULT_NOT_ASI;
    const space = this.spaces[this.curr[t]];
    const cpu = this.threads[t].cpu;
    const mapped = probe(this.sys.mem, this.asids.loaded[cpu].pgd, this.sys.levels, lo, hi, this.pr);
    if (this.design.onFault) {
      const v = this.design.onFault({ thread: t, space, vaLo: lo, vaHi: hi, access, mappedInFull: mapped }, this.sys);
      if (v === FAULT_MAPPED) { space.gen++; this.counters.faultsMapped++; return v; }
      if (v === FAULT_KILL) { this.emit(t, ACT_KILL, -1); return v; }
      if (v !== 0) return this.genuine(v);
    }
    switch (this.design.faultPolicy) {
      case 'abort': // asi_fault(): fault_abort -> the session is cleared, the instruction retried on the full tables
      case 'exit-retry': // the #PF handler performs asi_exit()
        this.exit(t);
        if (this.design.transition === 'kpti') return this.genuine(FAULT_GENUINE);
        if (mapped) { this.counters.faultsRetry++; return FAULT_RETRY; }
        return this.genuine(FAULT_GENUINE);
      case 'refuse':
        if (!mapped) return this.genuine(FAULT_GENUINE);
        this.emit(t, ACT_KILL, -1);
        return FAULT_KILL;
      default:
        this.emit(t, ACT_KILL, -1);
        return FAULT_KILL;
    }
  }

  // -- interrupts -------------------------------------------------------------------------------

  /** Interrupt, exception or NMI entry on thread t (INTR_*). */
  interruptBegin(t: number, kind: number): void {
    if (kind === INTR_NMI) this.counters.nmis++;
    else this.counters.interrupts++;
    switch (this.design.transition) {
      case 'chartre':
        if (this.curr[t] < 0) return;
        if (++this.depth[t] === 1) {
          this.writeOrig(t); // ASI_INTERRUPT: ASI_SWITCH_TO_KERNEL_CR3
          this.stun.inside[t] = 0;
          this.taints[t] |= ASI_TAINT_KERNEL_DATA; // irq entry: kvm_set_cpu_l1tf_flush_l1d() (asm/hardirq.h)
        }
        return;
      case 'google':
        if (this.target[t] >= 0) this.depth[t]++; // asi_intr_enter(): only while tense
        return;
      case 'kpti':
        if (this.depth[t]++ === 0 && this.curr[t] >= 0) { this.target[t] = this.curr[t]; this.exit(t); }
        return;
      default:
    }
  }

  interruptEnd(t: number): void {
    switch (this.design.transition) {
      case 'chartre':
        if (this.curr[t] < 0 || this.depth[t] === 0) return;
        if (--this.depth[t] === 0) { this.chartreResume(t); this.stun.inside[t] = 1; } // ASI_PREPARE_RESUME + ASI_RESUME
        return;
      case 'google':
        if (this.target[t] >= 0 && this.depth[t] > 0 && --this.depth[t] === 0) this.googleEnter(t); // asi_intr_exit()
        return;
      case 'kpti':
        if (this.depth[t] > 0 && --this.depth[t] === 0 && this.target[t] >= 0) {
          const s = this.target[t];
          this.target[t] = -1;
          this.enter(t, s);
        }
        return;
      default:
    }
  }

  // -- context switch ---------------------------------------------------------------------------

  /** switch_to() on thread t: schedule out the running task, switch mm (if given), schedule in `next`. */
  contextSwitch(t: number, next: number, nextMm: MmContext | null): void {
    this.counters.contextSwitches++;
    const prev = this.task[t];
    this.saved = grow(this.saved, Math.max(prev, next) + 1);
    switch (this.design.transition) {
      case 'chartre': // asi_schedule_out(): exit and save the session in the task
        if (this.curr[t] >= 0 && prev >= 0) this.saved[prev] = this.curr[t];
        this.exit(t);
        break;
      case 'google':
        this.exit(t);
        this.relax(t);
        if (this.squash) this.taints[t] = switchMmTaints(this.taints[t]); // asi_handle_switch_mm()
        break;
      case 'kpti':
        this.exit(t);
        break;
      default:
        this.curr[t] = -1;
        this.stun.inside[t] = 0;
    }
    if (nextMm) {
      const r = this.asids.switchMm(this.threads[t].cpu, nextMm);
      if (r.cr3Written) this.write(t, r.cr3Lo, r.cr3Hi);
    }
    this.task[t] = next;
    // The stun covers the full-kernel work of the task that left its restricted space; a switch to
    // another task ends that work, and nothing of the task would re-enter to release the sibling
    // (a vCPU switched out mid-exit, or one that finished, left it stunned for good behind a host
    // process). Assumption: the RFCs leave the case open; Joel Fernandes' 2020 proposal (lore
    // 20200815031908.1015049-1-joel@joelfernandes.org) releases the sibling when the kernel work ends.
    if (this.stunOn && next !== prev) this.releaseSibling(t);
    if (this.design.transition === 'chartre' && next >= 0 && this.saved[next] >= 0) {
      const s = this.saved[next]; // asi_schedule_in(): re-enter at once
      this.saved[next] = -1;
      this.chartreSwitch(t, s);
    } else if (this.design.transition === 'static' && next >= 0 && next < this.taskSpace.length && this.taskSpace[next] >= 0) {
      this.enter(t, this.taskSpace[next]);
    }
  }

  // -- internals ----------------------------------------------------------------------------------

  private googleEnter(t: number): void {
    const s = this.target[t];
    if (s < 0 || s === this.curr[t] || this.depth[t] !== 0) return;
    const m = this.spaceTaint[s];
    this.curr[t] = s; // "Must update curr_asi before writing CR3"
    if (m) this.applyTaint(t, enterControl(this.taints[t], m, this.features));
    const kp = this.kernPcid(t);
    const v = this.spacePcid[s];
    const pcid = !this.pcide(t) ? 0 : this.design.pcid.kind === 'google-2022' ? google2022AsiPcid(kp, v, this.pti) : google2025AsiPcid(kp, v, this.pti);
    const nf = this.pcide(t) && this.design.pcid.noflush === 'tracked' && this.tracker.check(this.threads[t].cpu, kp, s, this.spaces[s].gen);
    cr3Halves(this.spaces[s].root, pcid, nf, this.cr3);
    this.write(t, this.cr3[0], this.cr3[1]);
    if (m) this.applyTaint(t, enterData(this.taints[t], m, this.features));
    this.entered(t, s);
  }

  /** asi_switch_to_asi_cr3(asi, ASI_SWITCH_NOW). */
  private chartreSwitch(t: number, s: number): void {
    const cr3 = this.threads[t].mmu.cpu.cr3;
    this.orig[2 * t] = cr3 % TWO32;
    this.orig[2 * t + 1] = Math.floor(cr3 / TWO32);
    this.curr[t] = s;
    this.depth[t] = 0;
    this.chartreResume(t);
    const m = this.spaceTaint[s];
    if (m) this.applyTaint(t, enterData(this.taints[t], m, this.features)); // the L1D flush at the VM entry that follows
    this.entered(t, s);
  }

  /** Build isolation_cr3 = base_cr3 | kernel PCID, NOFLUSH per asi_update_flush(), and write it. */
  private chartreResume(t: number): void {
    const s = this.curr[t];
    const kp = this.orig[2 * t] & 0xf;
    const on = this.pcide(t);
    const nf = on && this.tracker.check(this.threads[t].cpu, kp, s, this.spaces[s].gen);
    cr3Halves(this.spaces[s].root, on ? chartreAsiPcid(this.spacePcid[s], kp) : 0, nf, this.cr3);
    this.iso[2 * t] = this.cr3[0];
    this.iso[2 * t + 1] = this.cr3[1];
    this.write(t, this.cr3[0], this.cr3[1]);
  }

  private entered(t: number, s: number): void {
    this.curr[t] = s;
    this.stun.inside[t] = 1;
    this.counters.enters++;
    if (this.stunOn) this.releaseSibling(t);
  }

  private releaseSibling(t: number): void {
    const sib = this.stun.onEnter(t);
    if (sib >= 0) { this.counters.unstuns++; this.emit(t, ACT_UNSTUN, sib); }
  }

  private stunSibling(t: number): void {
    if (!this.stunOn) return;
    const sib = this.stun.onExit(t);
    if (sib < 0) return;
    this.emit(t, ACT_IPI, sib);
    this.emit(t, ACT_STUN, sib);
  }

  private applyTaint(t: number, packed: number): void {
    this.taints[t] = packed & 0xff;
    const a = packed >>> 8;
    if (a & ACT_IBPB) this.emit(t, ACT_IBPB, -1);
    if (a & ACT_RSB_FILL) this.emit(t, ACT_RSB_FILL, -1);
    if (a & ACT_L1D_FLUSH) this.emit(t, ACT_L1D_FLUSH, -1);
    if (a & ACT_VERW) this.emit(t, ACT_VERW, -1);
  }

  private emit(t: number, action: number, arg: number): void {
    const c = this.counters;
    if (action === ACT_L1D_FLUSH) c.l1dFlushes++;
    else if (action === ACT_VERW) c.verws++;
    else if (action === ACT_IBPB) c.ibpbs++;
    else if (action === ACT_RSB_FILL) c.rsbFills++;
    else if (action === ACT_STUN) c.stuns++;
    else if (action === ACT_IPI) c.ipis++;
    else if (action === ACT_KILL) c.kills++;
    if (this.sink) this.sink(t, action, arg);
  }

  private genuine(v: number): number {
    if (v === FAULT_GENUINE) this.counters.faultsGenuine++;
    return v;
  }

  private pcide(t: number): boolean { return this.threads[t].mmu.cpu.pcide; }

  /** kern_pcid(loaded_mm_asid) = asid + 1 (tlb.c). */
  private kernPcid(t: number): number { return this.asids.loadedAsid[this.threads[t].cpu] + 1; }

  /** build_cr3(loaded_mm->pgd, loaded_mm_asid), NOFLUSH when asked (and PCIDE is on). */
  private writeFull(t: number, noflush: boolean): void {
    const cpu = this.threads[t].cpu;
    const on = this.pcide(t);
    cr3Halves(this.asids.loaded[cpu].pgd, on ? this.kernPcid(t) : 0, noflush && on, this.cr3);
    this.write(t, this.cr3[0], this.cr3[1]);
  }

  /** original_cr3 | X86_CR3_PCID_NOFLUSH when the CPU has PCID. */
  private writeOrig(t: number): void {
    this.write(t, this.orig[2 * t], this.pcide(t) ? (this.orig[2 * t + 1] | CR3_NOFLUSH_HI) >>> 0 : this.orig[2 * t + 1]);
  }

  private write(t: number, lo: number, hi: number): void {
    const v = this.threads[t].mmu.writeCr3(lo, hi);
    if (v !== 0) throw new Error(`thread ${t}: MOV to CR3 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} raised #${v}`);
    this.counters.cr3Writes++;
    if (hi & CR3_NOFLUSH_HI) this.counters.cr3NoFlush++;
  }
}

function grow(a: Int32Array, need: number): Int32Array {
  if (need <= a.length) return a;
  const b = new Int32Array(Math.max(need, a.length * 2)).fill(-1);
  b.set(a);
  return b;
}
