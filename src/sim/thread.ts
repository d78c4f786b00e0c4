/**
 * Per-hardware-thread state of a run (structure of arrays, one slot per thread) and the meter
 * that sums what happened (docs/DESIGN.md "Costs are sums of what happened").
 *
 * Each hardware thread has its own x86 state: a CpuState (CR3, CR4, CPL) and an Mmu with its
 * own TLB (SDM Vol. 3A 4.10: TLBs are per logical processor), booted as Linux brings a CPU up:
 * long mode with CR4.PAE|PGE, PCIDE when the CPU has PCID (arch/x86/kernel/cpu/common.c
 * setup_pcid()), LA57 with 5-level paging, CR3 = swapper_pg_dir (init_mm). SMEP/SMAP are left
 * off (assumption: the kernel's user copies run with EFLAGS.AC set, so SMAP never decides a
 * touch here).
 */
import type { System } from '../linux/system.ts';
import type { CpuProfile } from '../uarch/profiles.ts';
import { CR4_LA57, CR4_PAE, CR4_PCIDE, CR4_PGE, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE } from '../x86/bits.ts';
import { CpuState } from '../x86/cpu.ts';
import { Mmu } from '../x86/mmu.ts';
import { PWC_GEOMETRY } from '../x86/pwc.ts';
import type { TlbGeometry } from '../x86/tlb.ts';

/** What a thread does when it is next popped, before drawing a new event. */
export const PH_NONE = 0;
/** Finish a kernel event that returns to user mode (sysret/iret, VERW, KPTI/ASI enter). */
export const PH_RET_USER = 1;
/** Finish a VM exit: VMENTER (asi_enter, L1D flush / VERW per vmx.c). */
export const PH_VMENTER = 2;
/** Leave the idle state. */
export const PH_IDLE_END = 3;
/** Run the attacker's primitives at this instant. */
export const PH_ATTACK = 4;
/** An interrupt taken while the thread idled returns to idle. */
export const PH_IRQ_IDLE = 5;
/** Every task of the thread was blocked: at this clock the first one wakes and is switched in. */
export const PH_WAKE = 6;

/** Event kinds the costs are split by. */
export const EK = {
  syscall: 0, 'vm-exit': 1, 'page-fault': 2, 'timer-interrupt': 3, nmi: 4, 'context-switch': 5, idle: 6,
  'guest-run': 7, 'user-compute': 8, 'stun-wait': 9, 'forced-idle': 10, 'sched-wait': 11, 'lock-spin': 12, 'lock-wait': 13,
} as const;
export const EK_NAMES = Object.keys(EK) as (keyof typeof EK)[];
export const N_EK = EK_NAMES.length;

export class ThreadState {
  readonly n: number;
  readonly clock: Float64Array;
  readonly pending: Int32Array;
  /** Event kind (EK) and task of the event in flight (phase 1 done, phase 2 pending). */
  readonly evKind: Int32Array;
  readonly evItem: Int32Array;
  /** The task on the CPU (-1: idle), the next task switch (time-sharing), and whether the task must be switched in. */
  readonly cur: Int32Array;
  readonly switchAt: Float64Array;
  readonly needSwitchIn: Uint8Array;
  /** kvm_cpu_l1tf_flush_l1d of irq_stat (arch/x86/include/asm/hardirq.h), per CPU. */
  readonly irqFlag: Uint8Array;
  /** Next interrupt arrival while forced idle (core scheduling), 0 = unset. */
  readonly irqNext: Float64Array;
  /** Cycles owed from IPIs received, charged at the thread's next step. */
  readonly owed: Float64Array;
  readonly sibling: Int32Array;
  readonly online: Uint8Array;
  readonly done: Uint8Array;
  readonly cpus: CpuState[] = [];
  readonly mmus: Mmu[] = [];

  constructor(n: number, threadsPerCore: number, profile: CpuProfile, sys: System, online: Uint8Array) {
    this.n = n;
    this.clock = new Float64Array(n);
    this.pending = new Int32Array(n);
    this.evKind = new Int32Array(n).fill(-1);
    this.evItem = new Int32Array(n).fill(-1);
    this.cur = new Int32Array(n).fill(-1);
    this.switchAt = new Float64Array(n);
    this.needSwitchIn = new Uint8Array(n);
    this.irqFlag = new Uint8Array(n);
    this.owed = new Float64Array(n);
    this.irqNext = new Float64Array(n);
    this.sibling = new Int32Array(n).fill(-1);
    this.online = online;
    this.done = new Uint8Array(n);
    for (let t = 0; t < n; t++) {
      if (threadsPerCore === 2) this.sibling[t] = t ^ 1;
      const cpu = new CpuState(profile.maxPhysBits, { pdpe1gb: profile.features.gbpages });
      const cr4 = CR4_PAE | CR4_PGE | (sys.asids.pcid ? CR4_PCIDE : 0) | (sys.levels === 5 ? CR4_LA57 : 0);
      cpu.load({ cr4, efer: EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE, cr3: sys.kernel.kernelRoot, cpl: 0 });
      this.cpus.push(cpu);
      const mmu = new Mmu(cpu, sys.mem, {}, stlbGeometry(profile, threadsPerCore), profile.pagingStructureCaches ? PWC_GEOMETRY : null);
      const itlb = itlbGeometry(profile, threadsPerCore);
      if (itlb !== null) mmu.splitFetch(itlb.l1, itlb.l2);
      this.mmus.push(mmu);
    }
  }
}

/**
 * The second-level TLB of one hardware thread of a CPU profile as a Tlb geometry, or null for
 * none. Its entries serve 4 KiB and 2 MiB pages alike on the real parts; here each size gets the
 * whole capacity (an over-estimate only when a thread fills it with both sizes at once), and 16
 * entries for 1 GiB pages (4 sets of 4: Skylake's, Optimization Reference Manual Table 2-15;
 * assumption for the others). The STLB is one per core, shared by its hardware threads
 * ("dynamic" in Table 2-15's partition column); each thread here has its own with 1/threadsPerCore
 * of the sets (a static split: the share when both threads are busy, assumption), so SMT does
 * not double a core's STLB.
 */
export function stlbGeometry(p: CpuProfile, threadsPerCore: number): Partial<TlbGeometry> | null {
  if (p.stlbEntries === 0) return null;
  return secondLevel(p.stlbEntries, p.stlbWays, threadsPerCore, 4);
}

/** A second-level TLB's share for one thread: `entries` a core, `ways`, for 4 KiB and 2 MiB pages alike; sets1G x 4 entries for 1 GiB pages. */
function secondLevel(entries: number, ways: number, threadsPerCore: number, sets1G: number): Partial<TlbGeometry> {
  const sets = entries / ways / threadsPerCore;
  return { sets4K: sets, ways4K: ways, sets2M: sets, ways2M: ways, sets1G, ways1G: 4 };
}

/**
 * The first-level instruction TLB of one hardware thread of a CPU profile (and its second-level
 * ITLB when the profile has one of its own), or null when fetches share the data TLB (qemu-max).
 * As the STLB (stlbGeometry), each thread gets 1/threadsPerCore of the core's entries (Intel's ITLB
 * is partitioned between the threads, Optimization Reference Manual Table 2-15; AMD's, assumption,
 * the same). 2 MiB entries are fully associative; 4 entries for 1 GiB pages (assumption: kernel
 * and user text are never 1 GiB-mapped, so none is used).
 */
export function itlbGeometry(p: CpuProfile, threadsPerCore: number): { l1: Partial<TlbGeometry>; l2: Partial<TlbGeometry> | null } | null {
  if (p.itlb4KEntries === 0) return null;
  const per4K = p.itlb4KEntries / threadsPerCore;
  const ways4K = Math.min(p.itlb4KWays, per4K);
  const ways2M = Math.max(1, p.itlb2MEntries / threadsPerCore);
  const l1 = { sets4K: per4K / ways4K, ways4K, sets2M: 1, ways2M, sets1G: 1, ways1G: 4 };
  return { l1, l2: p.l2ItlbEntries === 0 ? null : secondLevel(p.l2ItlbEntries, p.l2ItlbWays, threadsPerCore, 1) };
}

/** Counts a run reports (the JSON `counts`, plus extras). */
export class Counts {
  cr3Writes = 0;
  cr3NoFlush = 0;
  tlbFlushes = 0;
  asiExits = 0;
  asiEntries = 0;
  /** #PF exceptions: the workload's page-fault events and the faults ASI designs take. */
  pageFaults = 0;
  /** Of those, the faults on a restricted space. */
  asiFaults = 0;
  l1dFlushes = 0;
  verw = 0;
  stuns = 0;
  ipis = 0;
  events = 0;
  touches = 0;
  /** Mmu.translate() calls made for touches (a page's later lines reuse its translation). */
  translations = 0;
  walks = 0;
  /** First-level TLB misses the second level served (no walk). */
  stlbHits = 0;
  /** Paging-structure entries walks loaded above their last level that no paging-structure cache held (x86/mmu.ts upperLoads). */
  walkUpperLoads = 0;
  l1dMisses = 0;
  kills = 0;
  /** System Call Isolation: faults on a task's SCI tables, and the PTEs sci_verify_and_map() added. */
  sciFaults = 0;
  /** IBPBs the mitigations issued (ASI taints, what-ifs). */
  ibpbs = 0;
  sciMapped = 0;
  /** what_if ephmap-tmpfs: pages ephmap_get() mapped (each a PTE store, then an INVLPG). */
  ephmapMaps = 0;
  /** Tasks load balancing moved to another thread (scenario machine.load_balance, sim/balance.ts). */
  migrations = 0;
  /** Touches whose address no table of the thread maps (a modelling error if non-zero). */
  unmapped = 0;
  contextSwitches = 0;
  attacks = 0;
  /** Kernel instructions priced (sim/code-warmth.ts), and how many of them warm and untrained (run after an IBPB, still in the L1I); fractional for a partly warm path. */
  kernelInsns = 0;
  kernelInsnsWarm = 0;
  kernelInsnsUntrained = 0;
}

/** Cycles per task and event kind, plus per-task completion clocks. */
export class Meter {
  readonly byKind: Float64Array;
  readonly finish: Float64Array;
  readonly eventsDone: Int32Array;
  readonly counts = new Counts();

  constructor(readonly tasks: number) {
    this.byKind = new Float64Array(tasks * N_EK);
    this.finish = new Float64Array(tasks).fill(-1);
    this.eventsDone = new Int32Array(tasks);
  }

  charge(task: number, kind: number, cycles: number): void {
    this.byKind[task * N_EK + kind] += cycles;
  }

  /** Cycles of `kind` summed over the tasks `pick` accepts. */
  kindTotal(kind: number, pick: (task: number) => boolean): number {
    let s = 0;
    for (let i = 0; i < this.tasks; i++) if (pick(i)) s += this.byKind[i * N_EK + kind];
    return s;
  }
}
