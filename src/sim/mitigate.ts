/**
 * A resolved mitigation set (mitigations/select.ts MitigationState + the scenario's asi= design)
 * applied as actions at transitions — kernel entry, return to user, VM exit, VM entry, context
 * switch, idle — and the address spaces those actions switch between (KPTI user copies, the
 * ASI design's restricted spaces, one AsiSession per mechanism).
 *
 * The rules, each from its source:
 *  - VERW on return to user space when X86_FEATURE_CLEAR_CPU_BUF (Documentation/arch/x86/mds.rst
 *    "mds_user_clear_cpu_buffers() ... on return to user space"); before idle when mds_idle_clear.
 *  - VM entry, 6.1 arch/x86/kvm/vmx/vmx.c vmx_vcpu_enter_exit(): "L1D Flush includes CPU buffer
 *    clear to mitigate MDS": if vmx_l1d_should_flush → vmx_l1d_flush(), else if mds_user_clear →
 *    VERW (else-if: a 'cond' entry that decides not to flush clears nothing). vmx_l1d_flush() in
 *    'cond' flushes only if vcpu->arch.l1tf_flush_l1d ("set again either from vcpu_run() or from
 *    one of the unsafe VMEXIT handlers") or the per-CPU irq_stat.kvm_cpu_l1tf_flush_l1d ("set again
 *    from the interrupt handlers") is set, and clears both. Setters modelled: vcpu_run() (every
 *    KVM_RUN, i.e. after an exit to the VMM), kvm_arch_sched_in() (the vCPU task scheduled in),
 *    and hard interrupts / NMIs on the CPU (kvm_set_cpu_l1tf_flush_l1d()). The other exits
 *    (CPUID, MSR_WRITE, EPT_VIOLATION, EPT_MISCONFIG) are the audited fast paths of l1tf.rst:
 *    "avoids L1D flushing after VMEXITs which execute only audited code paths".
 *  - KPTI: SWITCH_TO_KERNEL_CR3 at every kernel entry, SWITCH_TO_USER_CR3 at every return
 *    (arch/x86/entry/calling.h; the kpti design of the ASI framework drives them).
 *  - ASI: asi_enter before VMENTER / on return to user (process classes), faults exit, context
 *    switches exit, interrupts per the design's transition model (asi/session.ts).
 *  - What a design replaces and keeps of these (KVM's VMENTER flush, PTI, global kernel pages)
 *    is its own declaration (asi/types.ts ConventionalMitigations, each citing its patch);
 *    user mode never runs on kernel tables while PTI is on.
 */
import { getDesign } from '../asi/registry.ts';
import { buildContextSpaces } from '../asi/restricted.ts';
import { AsiSession, type AsiThread } from '../asi/session.ts';
import { kpti as kptiDesign } from '../asi/designs/kpti.ts';
import {
  ACT_IBPB, ACT_IPI, ACT_KILL, ACT_L1D_FLUSH, ACT_RSB_FILL, ACT_STUN, ACT_VERW, INTR_EXCEPTION, INTR_IRQ, INTR_NMI,
  type ActionSink, type AsiContext, type AsiDesign,
} from '../asi/types.ts';
import type { ModelName, SensitivityModel } from '../linux/sensitivity.ts';
import type { System } from '../linux/system.ts';
import type { MitigationState } from '../mitigations/select.ts';
import { CR3_NOFLUSH_HI } from '../x86/bits.ts';
import { EPHMAP_WHAT_IFS, type IsolationSpec } from './scenario-types.ts';
import { SciRun } from './sci-run.ts';
import { Ephmap } from '../asi/ephmap.ts';
import type { Counts, ThreadState } from './thread.ts';
import type { Task, TenantRt, World } from './world.ts';

export interface Spaces {
  readonly design: AsiDesign | null;
  readonly asi: AsiSession | null;
  /** Space id of each tenant in `asi` (-1: the design builds none for it). */
  readonly asiSpace: Int32Array;
  readonly kpti: AsiSession | null;
  readonly kptiSpace: Int32Array;
  readonly holder: { sink: ActionSink };
  readonly notes: string[];
  /** asi=sci-2019: every process task's SCI tables (sim/sci-run.ts). */
  readonly sci: SciRun | null;
  /** what_if ephmap-tmpfs or ephmap-zeroing: every mm's per-CPU ephmap slots (asi/ephmap.ts). */
  readonly ephmap: Ephmap | null;
}

/** The sensitivity model the system boots with for this entry (the ASI design's). */
export function sensitivityModel(iso: IsolationSpec): ModelName | SensitivityModel {
  return iso.design === 'off' || iso.design === 'kpti' || iso.design === 'sci-2019' ? 'none' : getDesign(iso.design).model;
}

function contextOf(sys: System, t: TenantRt): AsiContext {
  if (t.vm) return { kind: 'vm', label: `vm ${t.spec.name}`, vm: t.vm, process: t.vm.vmm, tenants: [t.vm.owner.id, t.vm.vmm.owner.id], fullRoot: t.vm.vmm.pgd };
  if (t.netns) return { kind: 'netns', label: `netns ${t.spec.name}`, netns: t.netns, process: t.process, tenants: [t.netns.owner.id], fullRoot: sys.kernel.kernelRoot };
  return { kind: 'process', label: `process ${t.spec.name}`, process: t.process, tenants: [t.process.owner.id], fullRoot: t.process.pgd };
}

/** Build the sessions and spaces; call after every allocation (spaces are snapshots, asi/restricted.ts). */
export function buildSpaces(sys: System, iso: IsolationSpec, state: MitigationState, tenants: readonly TenantRt[], tasks: readonly Task[], threads: ThreadState, textSlide: bigint): Spaces {
  const holder = { sink: ((): void => {}) as ActionSink };
  const onAction: ActionSink = (t, a, arg) => holder.sink(t, a, arg);
  const threadsOf: AsiThread[] = threads.mmus.map((mmu, i) => ({ id: i, cpu: i, sibling: threads.sibling[i], mmu }));
  const asiSpace = new Int32Array(tenants.length).fill(-1);
  const kptiSpace = new Int32Array(tenants.length).fill(-1);
  const notes: string[] = [];
  let design: AsiDesign | null = null;
  let asi: AsiSession | null = null;
  if (iso.design !== 'off' && iso.design !== 'kpti' && iso.design !== 'sci-2019') {
    design = getDesign(iso.design);
    asi = new AsiSession({ design, system: sys, threads: threadsOf, stun: iso.stun, onAction, features: { l1tf: state.bugs.has('l1tf'), ibpb: state.ibpb } });
    const owning: TenantRt[] = [];
    for (const t of tenants) {
      if (!design.contextKinds.includes(t.spec.kind)) { notes.push(`${design.name} builds no restricted space for ${t.spec.kind} tenant ${t.spec.name}: it runs on the full kernel tables`); continue; }
      owning.push(t);
    }
    const built = buildContextSpaces(sys, design, owning.map((t) => contextOf(sys, t)));
    owning.forEach((t, i) => { asiSpace[t.index] = asi!.addSpace(built[i]); });
    if (design.transition === 'static') for (const k of tasks) if (asiSpace[k.tenant.index] >= 0) asi.assignTask(k.id, asiSpace[k.tenant.index]);
  }
  let kpti: AsiSession | null = null;
  if (state.pti) {
    kpti = new AsiSession({ design: kptiDesign, system: sys, threads: threadsOf, stun: false, onAction });
    for (const t of tenants) {
      // User mode never runs on kernel tables while PTI is on: a design whose process spaces carry
      // the user half must turn PTI off (ConventionalMitigations.pti 'disabled'), never share it.
      if (asiSpace[t.index] >= 0 && !t.vm) throw new Error(`${iso.design}: process tenant ${t.spec.name} has a restricted space while PTI is on; the design must declare pti 'disabled'`);
      // The KPTI restricted space is the process's existing user copy (kpti.ts build()); made here
      // without build()'s table census, which only fills statistics the run does not report.
      const p = t.process;
      kptiSpace[t.index] = kpti.addSpace({
        id: -1, design: 'kpti', context: { kind: 'process', label: p.comm, process: p, tenants: [p.owner.id], fullRoot: p.pgd },
        root: p.userPgd, fullRoot: p.pgd, tableFrames: [], stats: { tablePages: 0, sharedSubtrees: 0, copiedLeaves: 0, splits: { pud: 0, pmd: 0 } },
        compareUserHalf: false, gen: 1,
      });
    }
  }
  const sci = iso.design === 'sci-2019' ? new SciRun(sys, tasks, threads.mmus, textSlide, !iso.whatIf.includes('sci-no-caps')) : null;
  if (sci !== null) notes.push(`sci-2019: system calls of ${tasks.filter((k) => sci.tables[k.id] !== null).map((k) => k.tenant.spec.name).filter((n, i, a) => a.indexOf(n) === i).join(', ')} run on per-task SCI tables (verify-and-map; a refused fetch kills the task)`);
  const ephmap = asi !== null && iso.whatIf.some((w) => EPHMAP_WHAT_IFS.includes(w)) ? new Ephmap(sys, tasks.map((k) => k.tenant.process), threads.mmus.length, asi.spaces) : null;
  return { design, asi, asiSpace, kpti, kptiSpace, holder, notes, sci, ephmap };
}

export const ENTRY_SYSCALL = 0;
export const ENTRY_IRQ = 1;
export const ENTRY_EXC = 2;
export const ENTRY_NMI = 3;
const INTR_OF = [0, INTR_IRQ, INTR_EXCEPTION, INTR_NMI];

/** VM-exit flags (what the handler does beyond its footprint). */
export const VX_IRQ = 1;
export const VX_HLT = 2;
export const VX_USER = 4;
export const VX_NMI = 8;
/** The exit handler emulates an instruction (handle_ept_misconfig → kvm_mmu_page_fault → x86_emulate_instruction). */
export const VX_EMULATE = 16;

/** Applies the mitigation set's actions; every cycle they cost goes to `acc`. */
export class Transitions {
  acc = 0;
  /** Told of every IBPB (the engine's code warmth: the barrier untrains the core's predictors). */
  onIbpb: ((t: number) => void) | null = null;
  readonly vcpuFlag: Uint8Array;
  private readonly w: World;
  private readonly c: Counts;
  private readonly th: ThreadState;
  private readonly asi: AsiSession | null;
  private readonly kpti: AsiSession | null;
  private readonly sci: SciRun | null;
  private readonly flushMode: number;
  private readonly cost: { cr3: number; cr3nf: number; flush: number; verw: number; ipiSend: number; ipiRecv: number; ibpb: number; rsbFill: number };

  constructor(w: World, counts: Counts) {
    this.w = w;
    this.c = counts;
    this.th = w.threads;
    this.asi = w.spaces.asi;
    this.kpti = w.spaces.kpti;
    this.sci = w.spaces.sci;
    this.vcpuFlag = new Uint8Array(w.tasks.length);
    const v = w.state.vmentryL1dFlush;
    this.flushMode = v === 'always' ? 2 : v === 'cond' ? 1 : 0;
    const p = w.costs.params;
    this.cost = {
      cr3: p.cr3Write.cycles, cr3nf: p.cr3WriteNoflush.cycles, verw: p.verw.cycles, ipiSend: p.ipiSend.cycles, ipiRecv: p.ipiReceive.cycles,
      ibpb: p.ibpb.cycles, rsbFill: p.rsbFill.cycles,
      flush: w.profile.features.flushL1d ? p.l1dFlushMsr.cycles : p.l1dFlushSoftware.cycles,
    };
    // Every CR3 write of a thread, whoever makes it, is counted and priced here.
    for (const mmu of this.th.mmus) {
      const write = mmu.writeCr3.bind(mmu);
      mmu.writeCr3 = (lo: number, hi: number): number => {
        this.c.cr3Writes++;
        if (hi & CR3_NOFLUSH_HI) { this.c.cr3NoFlush++; this.acc += this.cost.cr3nf; } else this.acc += this.cost.cr3;
        return write(lo, hi);
      };
    }
    w.spaces.holder.sink = (t, a, arg) => this.onAction(t, a, arg);
    // what_if ibpb-on-exit: the Aug 2025 posting's asi_exit() issues an IBPB on every exit ("in the
    // code I've posted the IBPB is hard-coded", lore DC83J9RSZZ0E.3VKGEVIDMSA2R@google.com), which
    // clearcpuid=ibpb turns off ("to disable it I'm setting clearcpuid=ibpb", the same message).
    const asi = this.asi;
    if (asi !== null && w.state.ibpb && w.iso.whatIf.includes('ibpb-on-exit')) {
      const exit = asi.exit.bind(asi);
      // One IBPB per exit: none added when the exit's own taint flush (RFC v2 control taint) issued it.
      asi.exit = (t: number): boolean => {
        const before = this.c.ibpbs;
        const left = exit(t);
        if (left && this.c.ibpbs === before) this.onAction(t, ACT_IBPB, -1);
        return left;
      };
    }
  }

  private onAction(t: number, action: number, arg: number): void {
    switch (action) {
      case ACT_L1D_FLUSH: this.l1dFlush(t); break;
      case ACT_VERW: this.verw(t); break;
      case ACT_IPI: this.c.ipis++; this.acc += this.cost.ipiSend; this.th.owed[arg] += this.cost.ipiRecv; break;
      case ACT_STUN: this.c.stuns++; break;
      case ACT_KILL: this.c.kills++; break;
      case ACT_IBPB: this.c.ibpbs++; this.acc += this.cost.ibpb; if (this.onIbpb !== null) this.onIbpb(t); break;
      case ACT_RSB_FILL: this.acc += this.cost.rsbFill; break;
      default:
    }
  }

  l1dFlush(t: number): void {
    this.w.machine.l1dFlush(t);
    this.c.l1dFlushes++;
    this.acc += this.cost.flush;
  }

  verw(t: number): void {
    this.w.machine.verw(t);
    this.c.verw++;
    this.acc += this.cost.verw;
  }

  private asiOf(task: Task): number {
    return this.asi === null ? -1 : this.w.spaces.asiSpace[task.tenant.index];
  }

  private kptiOf(task: Task): number {
    return this.kpti === null ? -1 : this.w.spaces.kptiSpace[task.tenant.index];
  }

  /**
   * The entry's UNTRAIN_RET with X86_FEATURE_ENTRY_IBPB (retbleed=ibpb, spec_rstack_overflow=ibpb):
   * an IBPB on every entry from user space (entry_SYSCALL_64, error_entry's user path, the NMI's
   * user path), and on every NMI also from the kernel (paranoid_entry: UNTRAIN_RET_FROM_CALL). An
   * interrupt from kernel mode (error_entry's kernel path) has none, nor a VMX exit (vmx/vmenter.S
   * has no UNTRAIN_RET). An SVM exit would (6.2 svm/vmenter.S: UNTRAIN_RET after #VMEXIT under
   * ENTRY_IBPB; IBPB_ON_VMEXIT from 6.5), but kasi's KVM is VMX only: a scenario refuses VMs on an
   * AMD profile.
   */
  entryBarrier(t: number, fromGuest: boolean): void {
    if (this.w.state.entryIbpb && !fromGuest) this.onAction(t, ACT_IBPB, -1);
  }

  /** A task left user (or guest) mode without an event of the mix: preempted by the timer, or entering schedule() to block or exit. */
  leftUserMode(t: number, task: Task): void {
    this.entryBarrier(t, task.tenant.vm !== null);
  }

  /** Kernel entry from user mode of a host task (syscall, interrupt, exception, NMI). */
  kernelEntry(t: number, task: Task, how: number): void {
    this.entryBarrier(t, false);
    if (how === ENTRY_IRQ || how === ENTRY_NMI) this.th.irqFlag[t] = 1; // kvm_set_cpu_l1tf_flush_l1d() (asm/hardirq.h)
    if (this.asiOf(task) >= 0) { if (how !== ENTRY_SYSCALL) this.asi!.interruptBegin(t, INTR_OF[how]); return; }
    const k = this.kptiOf(task);
    if (k < 0) return;
    if (how === ENTRY_SYSCALL) {
      this.kpti!.exit(t); // SWITCH_TO_KERNEL_CR3 (entry_SYSCALL_64)
      this.sci?.begin(t, task); // do_syscall_64 → sci_syscall_enter() (SCI RFC 4/7)
    } else this.kpti!.interruptBegin(t, INTR_OF[how]);
  }

  /** Return to user mode (sysret / iret), with VERW when the CPU buffers are cleared on return to user. */
  returnToUser(t: number, task: Task, how: number): void {
    const s = this.asiOf(task);
    if (s >= 0) {
      if (how !== ENTRY_SYSCALL) this.asi!.interruptEnd(t);
      this.asi!.enter(t, s); // asi_enter() of the process's class on the way out
    } else {
      const k = this.kptiOf(task);
      if (this.sci !== null && how === ENTRY_SYSCALL) this.sci.end(t); // sci_syscall_exit(): kernel CR3, the added PTEs cleared
      if (k >= 0) { if (how === ENTRY_SYSCALL) this.kpti!.returnToUser(t, k); else this.kpti!.interruptEnd(t); }
    }
    if (this.w.state.clearCpuBuffers) this.verw(t); // mds.rst: VERW on return to user space
  }

  /** A VM exit reaches the host (the handler then runs its footprint). */
  vmExit(t: number, task: Task, flags: number): void {
    this.entryBarrier(t, true);
    const asi = this.asiOf(task) >= 0 ? this.asi : null;
    if (flags & (VX_IRQ | VX_NMI)) {
      this.th.irqFlag[t] = 1; // the host's handler runs: kvm_set_cpu_l1tf_flush_l1d()
      asi?.interruptBegin(t, flags & VX_NMI ? INTR_NMI : INTR_IRQ);
    }
    if (flags & VX_HLT) {
      asi?.contextSwitch(t, -1, null); // kvm_vcpu_block() → schedule(): the vCPU task is switched out
      this.vcpuFlag[task.id] = 1; // kvm_arch_sched_in() when it comes back
    }
    if (flags & VX_EMULATE) this.vcpuFlag[task.id] = 1; // x86_emulate_instruction(): "vcpu->arch.l1tf_flush_l1d = true"
    if (flags & VX_USER) {
      asi?.returnToUser(t); // KVM ASI: "asi_exit() before returning to userspace"
      const k = this.kptiOf(task);
      if (k >= 0) this.kpti!.returnToUser(t, k);
      if (this.w.state.clearCpuBuffers) this.verw(t);
      if (k >= 0) this.kpti!.exit(t); // the VMM's next KVM_RUN enters the kernel
      this.vcpuFlag[task.id] = 1; // vcpu_run(): vcpu->arch.l1tf_flush_l1d = true
    }
  }

  /**
   * VMENTER after an exit (or after the vCPU task is scheduled in). With a restricted space, the
   * design's declaration (asi/types.ts ConventionalMitigations) decides what of KVM's own flush
   * still runs: 'kept' runs it as without ASI, 'merged' counts the design's flush at re-entry as
   * that flush (one per entry), 'skipped' runs none of it (mm_asi_enabled: ASI's hooks do it).
   */
  vmEnter(t: number, task: Task, flags: number): void {
    const s = this.asiOf(task);
    let asiFlushed = false;
    if (s >= 0) {
      const asi = this.asi!;
      if (flags & (VX_IRQ | VX_NMI)) asi.interruptEnd(t);
      if (flags & VX_HLT) asi.contextSwitch(t, task.id, null);
      const before = this.c.l1dFlushes;
      asi.enter(t, s); // asi_enter() before VMENTER (vcpu_run)
      asiFlushed = this.c.l1dFlushes !== before;
      const conv = this.w.spaces.design!.conventional.vmentryFlush;
      if (conv === 'skipped') { this.vcpuFlag[task.id] = 0; this.th.irqFlag[t] = 0; return; }
      if (conv === 'merged' && asiFlushed) { this.vcpuFlag[task.id] = 0; this.th.irqFlag[t] = 0; return; }
    }
    // vmx_vcpu_enter_exit() (6.1): "L1D Flush includes CPU buffer clear to mitigate MDS"
    if (this.flushMode !== 0) {
      if (this.flushMode === 1) {
        const f = this.vcpuFlag[task.id] | this.th.irqFlag[t];
        this.vcpuFlag[task.id] = 0;
        this.th.irqFlag[t] = 0;
        if (f === 0) return;
      }
      this.l1dFlush(t);
    } else if (this.w.state.clearCpuBuffers) this.verw(t); // else if (mds_user_clear) mds_clear_cpu_buffers()
  }

  /** schedule(): `prev` (or the idle task, null) leaves thread t, `next` (or idle, null) comes in. */
  switchTask(t: number, prev: Task | null, next: Task | null): void {
    this.c.contextSwitches++;
    const nextId = next === null ? -1 : next.id;
    const mm = next === null ? null : next.mm; // the idle task keeps the mm loaded (enter_lazy_tlb)
    const asids = this.w.sys.asids;
    if (this.asi !== null) {
      this.kpti?.contextSwitch(t, nextId, null); // the kernel entry that led here leaves the PTI user tables first
      this.asi.contextSwitch(t, nextId, mm);
    } else if (this.kpti !== null) this.kpti.contextSwitch(t, nextId, mm);
    else if (mm !== null) {
      const r = asids.switchMm(t, mm);
      if (r.cr3Written) this.th.mmus[t].writeCr3(r.cr3Lo, r.cr3Hi);
    }
    if (next !== null && next.tenant.vm) this.vcpuFlag[next.id] = 1; // kvm_arch_sched_in()
    void prev;
  }

  /** The CPU goes idle (HLT): VERW first when mds_idle_clear; the store buffer is repartitioned. */
  idle(t: number, on: boolean): void {
    if (on && this.w.state.idleClear) this.verw(t); // mds.rst: VERW before idle
    this.w.machine.setIdle(t, on);
    this.asi?.stun.setIdle(t, on);
  }
}
