/**
 * The ASI framework's shared vocabulary: designs, contexts, restricted spaces, fault verdicts,
 * the action codes a transition emits, and the hooks a design may supply. Every design
 * (kpti, kvm-asi-2019, google-asi-2022, google-asi-2025, netns-asi, sci-2019) is a value of
 * `AsiDesign`; the builder (restricted.ts), the session (session.ts) and the checker
 * (verify.ts) only read these fields. Stable interface: other modules build on it.
 *
 * The words follow the sources:
 *  - Chartre's ASI (lore 1557758315-12667-1 KVM ASI RFC; v2 1562855138-19507-1; v4 ASI
 *    infrastructure as kept in rppt/linux arch/x86/mm/asi.c): struct asi_type {pcid_prefix,
 *    fault_abort}, a per-CPU struct asi_session {asi, idepth, isolation_cr3, original_cr3};
 *  - Google 2022 (lore 20220223052223.1202152-1-junaids@google.com): ASI classes with
 *    post_asi_enter / pre_asi_exit hooks, per-CPU curr_asi / target_asi, per-task
 *    intr_nest_depth;
 *  - Google 2024/2025 (lore 20240712-asi-rfc-24-v1-0-144b319a40d8, 20250110-asi-rfc-v2-v2-0-
 *    8419288bc805): struct asi_taint_policy {prevent_control, protect_data, set} per class.
 */
import type { OwnerKind } from '../linux/owners.ts';
import type { ModelName, SensitivityModel } from '../linux/sensitivity.ts';
import type { Allocation, System } from '../linux/system.ts';
import type { Process } from '../linux/process.ts';
import type { Vm } from '../linux/kvm.ts';
import type { NetNs } from '../linux/netns.ts';
import type { AsidState } from '../linux/asid.ts';
import type { Mmu } from '../x86/mmu.ts';

export type DesignName = 'kpti' | 'kvm-asi-2019' | 'google-asi-2022' | 'google-asi-2025' | 'netns-asi' | 'sci-2019';

/** Which untrusted context a restricted space is built for. */
export type ContextKind = 'process' | 'vm' | 'netns';

export interface AsiContext {
  readonly kind: ContextKind;
  /** e.g. "vm0 (qemu-vm0)", "process proc0[1000]", "netns ns0". */
  readonly label: string;
  readonly vm?: Vm;
  /** The process whose mm the context runs in (the VMM of a VM; the process itself). */
  readonly process?: Process;
  readonly netns?: NetNs;
  /** Owner ids whose memory is this context's own (the VM and its VMM; the process; the namespace). */
  readonly tenants: readonly number[];
  /** The full (unrestricted) kernel root the context runs on: the mm's PGD, else swapper_pg_dir. */
  readonly fullRoot: number;
}

/** A VA range [start, end) to map exactly as the full tables do (canonical 64-bit values). */
export interface VaRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly why: string;
  /** The pages of particular allocations (restricted.ts allocationRanges()), not a region the design maps whole (verify.ts). */
  readonly perAllocation?: boolean;
}

/**
 * A spec's direct-map rule: allow(pfn) decides each frame. `runEnd(pfn)` (> pfn), when given, is
 * the end of the run of frames from pfn that allow() answers alike (allowList() then skips free
 * or never-materialised memory); `byState`, when given, is allow() as a function of the frame's
 * buddy class and owner alone, decided once per run of equal allocator state (restricted.ts).
 */
export interface DirectMapSpec {
  readonly allow: (pfn: number) => boolean;
  readonly why: string;
  readonly runEnd?: (pfn: number) => number;
  readonly byState?: (cls: number, owner: number) => boolean;
}

/** What a design puts in the restricted space of a context; restricted.ts builds tables from it. */
export interface RestrictedSpec {
  readonly ranges: readonly VaRange[];
  /** Direct-map frames mapped (their alias at page_offset_base + pa), decided per PFN. */
  readonly directMap?: DirectMapSpec;
  /** Copy the user-half top-level entries of this PGD (physical address), sharing its user tables. */
  readonly userPgd?: number;
  /**
   * Where the root goes in the order-1 PGD pair allocated for it: 0 (lower page) or 4096 (upper
   * page: Chartre's ASI_PGTABLE_BIT, "an ASI pagetable is always located on the second half of
   * an 8K buffer").
   */
  readonly rootOffset?: 0 | 4096;
}

export interface SpaceStats {
  /** Paging-structure pages allocated for this space (root pair included). */
  tablePages: number;
  /** Non-leaf entries pointing at a page of the full tables (subtrees shared, pti_clone_pgtable style). */
  sharedSubtrees: number;
  /** Leaf entries copied from the full tables. */
  copiedLeaves: number;
  /** Large leaves split because the allowed set changes inside them. */
  splits: { pud: number; pmd: number };
  /** Pages of a global kernel half (AsiDesign.globalSpec) the space's root points into, shared with every context. */
  sharedTablePages?: number;
}

/** A built restricted address space. */
export interface RestrictedSpace {
  /** Index in the session's table of spaces (assigned by the session; -1 before). */
  id: number;
  readonly design: DesignName;
  readonly context: AsiContext;
  /** Physical address of the restricted root (what CR3 holds while in it). */
  readonly root: number;
  /** The full root it is a subset of (asserted by verify.ts). */
  readonly fullRoot: number;
  /** Frames of the tables allocated for the space. */
  readonly tableFrames: readonly number[];
  readonly stats: SpaceStats;
  /** Compare user-half leaves with the full root? false for KPTI (the kernel copy adds NX to user PGD entries). */
  readonly compareUserHalf: boolean;
  /** Bumped whenever the space's tables change (PCID NOFLUSH trackers compare it). */
  gen: number;
}

/** How a design moves between the restricted and the full tables (session.ts). */
export type TransitionModel =
  | 'kpti' // restricted = user tables; every kernel entry exits, return to user enters
  | 'chartre' // per-CPU asi_session with idepth; interrupts switch to the full tables at once
  | 'google' // curr_asi / target_asi; interrupts run restricted until a fault exits
  | 'static'; // the context's tables are its kernel tables: entered at context switch, never left

/** What a fault in the restricted space at an address the full space maps leads to. */
export type FaultPolicy =
  | 'abort' // Chartre fault_abort: "the faulty instruction is immediately retried" on the full tables
  | 'exit-retry' // Google: the page fault handler performs asi_exit, then the access is retried
  | 'refuse' // namespace address spaces: another namespace's object is not for this context
  | 'verify-map'; // SCI: verify the access, map it into the restricted space and retry, else kill

/** How the PCID of the restricted CR3 is formed (pcid.ts). */
export type PcidSchemeKind = 'kpti' | 'chartre-prefix' | 'google-2022' | 'google-2025' | 'kernel';

export interface PcidScheme {
  readonly kind: PcidSchemeKind;
  /** chartre-prefix: the asi_type pcid_prefix (1..255). google-2022: the class index. google-2025: the class id. */
  readonly value?: number;
  /** When a CR3 write into the space may set NOFLUSH. */
  readonly noflush: 'never' | 'tracked' | 'kpti-mask';
  readonly source: string;
}

/** struct asi_taint_policy (RFC v2, arch/x86/include/asm/asi.h). */
export interface TaintPolicy {
  readonly preventControl: number;
  readonly protectData: number;
  readonly set: number;
}

export interface TaintModel {
  /** Policy of the class entered. */
  readonly policy: TaintPolicy;
  /** Actions (ACT_*) a pending data taint costs at enter. */
  readonly dataActions: number;
  /** Actions a pending control taint costs (at enter, and at exit when controlOnExit). */
  readonly controlActions: number;
  /** RFC v2 maybe_flush_control(NULL) on asi_exit: "implicit policy of flushing all taints". */
  readonly controlOnExit: boolean;
  readonly source: string;
}

// -- action codes emitted by transitions (bit set) -----------------------------------------
export const ACT_L1D_FLUSH = 1 << 0;
/** VERW with MD_CLEAR: clear the CPU buffers. */
export const ACT_VERW = 1 << 1;
/** IA32_PRED_CMD.IBPB. */
export const ACT_IBPB = 1 << 2;
/** fill_return_buffer(): RSB stuffing. */
export const ACT_RSB_FILL = 1 << 3;
/** `arg` = the sibling thread id that must now spin. */
export const ACT_STUN = 1 << 4;
/** `arg` = the sibling thread id released. */
export const ACT_UNSTUN = 1 << 5;
/** `arg` = the target thread of the IPI. */
export const ACT_IPI = 1 << 6;
/** The context is killed (SCI, or an access a design refuses). */
export const ACT_KILL = 1 << 7;
export const ACTION_NAMES: Readonly<Record<number, string>> = {
  [ACT_L1D_FLUSH]: 'l1d-flush', [ACT_VERW]: 'verw', [ACT_IBPB]: 'ibpb', [ACT_RSB_FILL]: 'rsb-fill',
  [ACT_STUN]: 'stun', [ACT_UNSTUN]: 'unstun', [ACT_IPI]: 'ipi', [ACT_KILL]: 'kill',
};

/** What a session counts (session.ts). */
export class AsiCounters {
  enters = 0;
  exits = 0;
  cr3Writes = 0;
  cr3NoFlush = 0;
  l1dFlushes = 0;
  verws = 0;
  ibpbs = 0;
  rsbFills = 0;
  stuns = 0;
  unstuns = 0;
  ipis = 0;
  kills = 0;
  faultsRetry = 0;
  faultsGenuine = 0;
  faultsMapped = 0;
  interrupts = 0;
  nmis = 0;
  contextSwitches = 0;
}

/** Receives each action as it happens (the engine applies it to the uarch state). */
export type ActionSink = (thread: number, action: number, arg: number) => void;

// -- fault verdicts (session.fault) ---------------------------------------------------------
/** The session left the restricted space; retry the access on the full tables. */
export const FAULT_RETRY = 1;
/** Not an ASI fault: the full tables do not map it either; the normal #PF handler runs. */
export const FAULT_GENUINE = 2;
/** Refused: the context is killed (or the kernel oopses). */
export const FAULT_KILL = 3;
/** The design mapped the page into the restricted space; retry there (SCI). */
export const FAULT_MAPPED = 4;
/** The thread was not in a restricted space: nothing for ASI to do. */
export const FAULT_NOT_ASI = 5;

// -- interrupt kinds ------------------------------------------------------------------------
export const INTR_IRQ = 0;
export const INTR_EXCEPTION = 1;
export const INTR_NMI = 2;

/** What a fault hook sees (designs with faultPolicy 'verify-map', or that override the default). */
export interface FaultInfo {
  readonly thread: number;
  readonly space: RestrictedSpace;
  readonly vaLo: number;
  readonly vaHi: number;
  /** ACCESS_* bits (x86/bits.ts). */
  readonly access: number;
  /** Whether the full tables of the loaded mm map the address. */
  readonly mappedInFull: boolean;
}

export type MapVia = 'direct' | 'vmalloc' | 'image' | 'user' | 'other';

/**
 * What a design replaces of the default mitigations and what it keeps (each with its patch):
 *  - vmentryFlush: KVM's L1D flush / VERW before VMENTER (vmx_vcpu_enter_exit) for a VM with a
 *    restricted space: 'kept' (runs as without ASI, next to the design's own flushes),
 *    'merged' (kept, and the design's flush at re-entry is that same flush: one per entry),
 *    'skipped' (not run: the design's post_asi_enter does it only on a real re-entry);
 *  - pti: 'kept' (user mode keeps the PTI user tables), 'disabled' (the design turns PTI off
 *    and user mode runs on its restricted tables);
 *  - globalKernel: 'cleared' (kernel mappings are non-global while the design is on, so no
 *    TLB entry of the full tables survives asi_enter) or 'kept'.
 * `assumed` names the fields no posting speaks to.
 */
export interface ConventionalMitigations {
  readonly vmentryFlush: 'kept' | 'merged' | 'skipped';
  readonly pti: 'kept' | 'disabled';
  readonly globalKernel: 'cleared' | 'kept';
  readonly source: string;
  readonly assumed: readonly ('vmentryFlush' | 'pti' | 'globalKernel')[];
}

/** An ASI design: data (what it maps, how it transitions) plus hooks. */
export interface AsiDesign {
  readonly name: DesignName;
  readonly title: string;
  /** The primary sources, cited. */
  readonly sources: readonly string[];
  /** Sensitivity model the system is booted with (slab/buddy separate classes at allocation). */
  readonly model: ModelName | SensitivityModel;
  /** Context kinds the design builds spaces for, preferred first. */
  readonly contextKinds: readonly ContextKind[];
  /** Owner kinds that are mutually untrusted tenants under this design. */
  readonly tenantKinds: readonly OwnerKind[];
  readonly transition: TransitionModel;
  readonly faultPolicy: FaultPolicy;
  readonly pcid: PcidScheme;
  readonly taint: TaintModel | null;
  /** The taint model of the class a context enters, when it depends on the context (default `taint`). */
  taintOf?(ctx: AsiContext): TaintModel | null;
  /** The PCID scheme's value (prefix, class index or id) for a context (default `pcid.value`). */
  pcidValueOf?(ctx: AsiContext): number;
  /** Stun the SMT sibling on exit until this thread re-enters (as posted; a stun not posted is a what-if). */
  readonly stun: boolean;
  /** What the design does with the kernel's conventional mitigations, as posted. */
  readonly conventional: ConventionalMitigations;
  /** One line per rule of what the restricted space holds (for reports). */
  readonly holds: readonly string[];
  /** What the restricted space of `ctx` holds (with globalSpec: only what is the context's own). */
  spec(sys: System, ctx: AsiContext): RestrictedSpec;
  /**
   * A design whose kernel half is one set of tables for every context: what that half holds.
   * It is built once per system state (asi_global_nonsensitive_pgd, filled by asi_global_init())
   * and each context's root copies its top-level kernel entries, as asi_init() does ("for (i =
   * KERNEL_PGD_BOUNDARY; i < PTRS_PER_PGD; i++) set_pgd(asi->pgd + i,
   * asi_global_nonsensitive_pgd[i])", ASI RFC 2024 and v2 arch/x86/mm/asi.c).
   */
  globalSpec?(sys: System): RestrictedSpec;
  /**
   * The design's rule, checked by verify.ts for every allocation a restricted leaf reaches:
   * may allocation `a` (the page at `pa` of it) be reachable through a mapping of kind `via`?
   */
  permits(sys: System, ctx: AsiContext, a: Allocation, via: MapVia, pa: number): boolean;
  /** A design whose restricted space already exists (KPTI's user copy) returns it here. */
  build?(sys: System, ctx: AsiContext): RestrictedSpace;
  /** Fault hook, consulted before the fault policy; return a FAULT_* verdict or 0 to fall through. */
  onFault?(f: FaultInfo, sys: System): number;
}

/** A hardware thread as the session drives it. */
export interface AsiThread {
  /** Machine-wide thread id (uarch HwThread.id). */
  readonly id: number;
  /** The kernel's CPU number (index into AsidState). */
  readonly cpu: number;
  /** SMT sibling's thread id, or -1. */
  readonly sibling: number;
  readonly mmu: Mmu;
}

export interface SessionOptions {
  design: AsiDesign;
  system: System;
  threads: readonly AsiThread[];
  /** The kernel's ASID state (default: the system's). */
  asids?: AsidState;
  /** X86_BUG_L1TF and X86_FEATURE_IBPB (default both true). */
  features?: Partial<{ l1tf: boolean; ibpb: boolean }>;
  /** Override the design's sibling stunning. */
  stun?: boolean;
  onAction?: ActionSink;
}
