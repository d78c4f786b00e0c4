/**
 * A scenario as the engine receives it: validated, defaults applied, names resolved
 * (scenario/load.ts builds it from YAML; examples/README.md documents the file format).
 *
 * Sizes are bytes, times are SimTime (ns or cycles: the cycle count of a ns value depends on
 * the cost model's clock, sim/costs.ts nsToCycles), hardware threads are core-major
 * (core c, SMT thread i → c × threads_per_core + i, as uarch/machine.ts numbers them).
 */
import type { AttackName } from '../attacks/sample.ts';
import type { MitigationCmdline } from '../mitigations/cmdline.ts';
import type { CostOverrides } from './costs.ts';
import type { DataKind, FootprintOverride } from './footprints.ts';
import { NAMED_CACHES } from '../linux/slab.ts';
import { NETNS_CACHES } from '../linux/netns.ts';

export type SimTime = { readonly unit: 'ns'; readonly value: number } | { readonly unit: 'cycles'; readonly value: number };

export type StopCondition = { readonly kind: 'duration'; readonly time: SimTime } | { readonly kind: 'events'; readonly count: number };

export interface MachineSpec {
  /** A name from uarch/profiles.ts. */
  readonly cpu: string;
  readonly cores: number;
  readonly threadsPerCore: 1 | 2;
  readonly ramBytes: number;
  readonly pagingLevels: 4 | 5;
  /**
   * The scheduler moves a task to an idle hardware thread (CFS idle balancing, sim/balance.ts);
   * false: every task stays on the thread the scenario gives it, as if pinned there.
   */
  readonly loadBalance: boolean;
}

export interface KernelSpec {
  readonly kaslr: boolean;
  /** Seed of the KASLR draws (default: the scenario seed). */
  readonly kaslrSeed: number;
  /** pti= for configurations whose command line says nothing about pti/nopti. */
  readonly pti: 'auto' | 'on' | 'off';
  /** A capture folder (test/fixtures/captures/<x>) to boot from real inputs, resolved to an absolute path; null = built-in layout. */
  readonly capture: string | null;
}

export const TENANT_KINDS = ['vm', 'process', 'netns'] as const;
export type TenantKind = (typeof TENANT_KINDS)[number];

/**
 * Objects a tenant can own and a secret can live in: which tenants may own each, how many
 * bytes it holds, and the footprint data kind (sim/footprints.ts) under which events touch it.
 */
export interface ObjectKindInfo {
  readonly tenants: readonly TenantKind[];
  readonly capacity: number;
  readonly dataKind: DataKind;
  readonly source: string;
}

const HOST: readonly TenantKind[] = ['process', 'netns'];
/** object_size of a named slab cache of the Linux model. */
function slabObjectSize(name: string): number {
  const c = [...NAMED_CACHES, ...NETNS_CACHES].find((d) => d.name === name);
  if (c === undefined) throw new RangeError(`no slab cache ${name}`);
  return c.objectSize;
}
export const OBJECT_KINDS = {
  'guest-page': { tenants: ['vm'], capacity: 4096, dataKind: 'guest-memory', source: 'a 4 KiB page of guest RAM' },
  'anon-page': { tenants: HOST, capacity: 4096, dataKind: 'user-pages', source: 'a 4 KiB anonymous user page' },
  'page-cache': { tenants: HOST, capacity: 4096, dataKind: 'page-cache', source: 'a 4 KiB page-cache page of a file the tenant reads' },
  'pipe-page': { tenants: HOST, capacity: 4096, dataKind: 'pipe-page', source: 'a 4 KiB pipe buffer page (fs/pipe.c)' },
  cred: { tenants: HOST, capacity: slabObjectSize('cred_jar'), dataKind: 'cred', source: 'linux/slab.ts cred_jar object_size (sizeof(struct cred))' },
  task_struct: { tenants: HOST, capacity: slabObjectSize('task_struct'), dataKind: 'task_struct', source: 'linux/slab.ts task_struct object_size' },
  'kernel-stack': { tenants: HOST, capacity: 16384, dataKind: 'kernel-stack', source: 'THREAD_SIZE = 16 KiB on x86-64 without KASAN (arch/x86/include/asm/page_64_types.h)' },
  sock: { tenants: HOST, capacity: slabObjectSize('TCP'), dataKind: 'sock', source: 'linux/netns.ts TCP object_size (sizeof(struct tcp_sock))' },
  sk_buff: { tenants: HOST, capacity: slabObjectSize('skbuff_head_cache'), dataKind: 'sk_buff', source: 'linux/slab.ts skbuff_head_cache object_size' },
  'skb-data': { tenants: HOST, capacity: 1500, dataKind: 'skb-data', source: 'assumption: one Ethernet MTU of payload' },
} as const satisfies Record<string, ObjectKindInfo>;
export type ObjectKind = keyof typeof OBJECT_KINDS;
export const OBJECT_KIND_NAMES = Object.keys(OBJECT_KINDS) as ObjectKind[];

export interface TenantObject {
  readonly name: string;
  readonly kind: ObjectKind;
  /** Not part of the tenant's own working set: only kernel events touch it (default false). */
  readonly cold: boolean;
}

/**
 * What a tenant's own code (guest-run, user-compute) touches (docs/DESIGN.md "Tenants use their own
 * memory"): `bytes` of its memory plus its declared objects that are not cold, drawn a line at a
 * time, uniformly; `writes` is the fraction of touches that store; `linesPerKcycle` how many
 * line touches one thousand cycles of its code make. Defaults: WORKING_SET_DEFAULT.
 */
export interface WorkingSetSpec {
  readonly bytes: number;
  readonly writes: number;
  readonly linesPerKcycle: number;
}

/**
 * Assumptions, documented in examples/README.md: 64 KiB (twice a 32 KiB L1D, so the tenant's
 * own code keeps refilling it), 30% stores, one distinct-line touch per 100 cycles.
 */
export const WORKING_SET_DEFAULT: WorkingSetSpec = { bytes: 64 * 1024, writes: 0.3, linesPerKcycle: 10 };

export interface TenantSpec {
  readonly name: string;
  readonly kind: TenantKind;
  /** vm only (0 for the others). */
  readonly vcpus: number;
  /** Guest RAM (vm) or anonymous memory (process); 0 for netns. */
  readonly memoryBytes: number;
  /** Hardware threads the tenant may run on; empty = any. */
  readonly pin: readonly number[];
  readonly objects: readonly TenantObject[];
  /** vm and process tenants: what their own code touches. */
  readonly workingSet: WorkingSetSpec;
  /**
   * vm only (0 otherwise): the fraction of the guest's run time inside its hottest lock (a guest
   * spinlock or a database mutex all its vCPUs take), sim/guest-lock.ts; 0: no guest-side waiting.
   */
  readonly lockFraction: number;
  /** How its vCPUs wait for the lock: 'spin' (PAUSE loop, PLE exit, directed yield) or 'block' (halt until released). */
  readonly lockWait: 'spin' | 'block';
  /**
   * process only (false otherwise): its anonymous memory is backed by 2 MiB THPs when 2 MiB
   * aligned (transparent_hugepage=always, do_huge_pmd_anonymous_page()); false: 4 KiB pages, as
   * under CONFIG_TRANSPARENT_HUGEPAGE_MADVISE for a program that never calls madvise(MADV_HUGEPAGE)
   * (glibc malloc does not), so its own code needs one TLB entry per 4 KiB it touches.
   */
  readonly thp: boolean;
}

export interface SecretSpec {
  readonly name: string;
  readonly tenant: string;
  readonly object: string;
  readonly bytes: number;
  readonly offset: number;
}

/** One entry of a thread's mix: a footprint event, or time spent outside the kernel. */
export type MixItem =
  | { readonly event: 'vm-exit'; readonly reason: string; readonly weight: number }
  | { readonly event: 'syscall'; readonly name: string; readonly weight: number; readonly bytes?: number }
  | { readonly event: 'page-fault' | 'timer-interrupt' | 'nmi' | 'context-switch'; readonly weight: number }
  /**
   * `codeBytes`: the hot code the tenant runs in it, which passes the core's L1I and evicts the
   * kernel's (uarch/code-cache.ts); absent: DEFAULT_TENANT_CODE_BYTES.
   */
  | { readonly event: 'guest-run' | 'user-compute'; readonly cycles: number; readonly weight: number; readonly codeBytes?: number }
  /**
   * Time off the CPU. `wake` 'event' (default): the task wakes `cycles` after it went idle (it
   * waited for something that took that long: a disk, a request). 'timer': the idle ends at a
   * timer armed on the task's own timeline (a periodic task), so the time it lost waiting for a
   * CPU since its last wake-up comes off this idle (hrtimer expiry does not move when the task runs late).
   */
  | { readonly event: 'idle'; readonly cycles: number; readonly weight: number; readonly wake?: 'event' | 'timer' };
export type MixEvent = MixItem['event'];

/** The footprint key (sim/footprints.ts) of a mix item, or null for guest-run/user-compute. */
export function mixFootprintKey(m: MixItem): string | null {
  switch (m.event) {
    case 'vm-exit': return `vm-exit:${m.reason}`;
    case 'syscall': return `syscall:${m.name}`;
    case 'guest-run': case 'user-compute': return null;
    default: return m.event;
  }
}

/**
 * One task of the workload: a host process's thread or a VM's vCPU, on hardware thread `thread`.
 * Several entries may share a thread (more vCPUs than hardware threads: the host time-shares
 * them, sim/engine.ts). A `background` task (a noise VM beside the measured one) runs for as
 * long as a measured task has work left and is not part of the run's cycles.
 */
export interface WorkloadThread {
  readonly thread: number;
  readonly tenant: string;
  readonly mix: readonly MixItem[];
  readonly background: boolean;
}

/**
 * The Spectre v1 gadget an attacker drives in its own kernel context (spectre.rst):
 *  - gadget 'unaudited': a bounds-check bypass no software mitigation covers (only what is mapped
 *    limits it); 'usercopy': a __user pointer check, closed by the LFENCE of
 *    __uaccess_begin_nospec / array_index_nospec in the usercopy paths; 'swapgs': a mispredicted
 *    swapgs on entry, closed by the entry LFENCEs — both unless spectre_v1 mitigation is off
 *    (nospectre_v1, mitigations=off; arch/x86/kernel/cpu/bugs.c spectre_v1_select_mitigation);
 *  - window 'entry': the gadget runs on the kernel entry path of the attacker's syscall or VM exit,
 *    before anything leaves the restricted space; 'after-exit': in a handler that first touched
 *    something the design does not map, so the rest of it runs on the full tables until re-entry.
 */
export const SPECTRE_V1_GADGETS = ['unaudited', 'usercopy', 'swapgs'] as const;
export const SPECTRE_V1_WINDOWS = ['entry', 'after-exit'] as const;
export interface SpectreV1Spec {
  readonly gadget: (typeof SPECTRE_V1_GADGETS)[number];
  readonly window: (typeof SPECTRE_V1_WINDOWS)[number];
}

export interface AttackerSpec {
  readonly thread: number;
  readonly tenant: string;
  readonly attacks: readonly AttackName[];
  readonly every: SimTime;
  readonly spectreV1: SpectreV1Spec;
}

/** The isolation designs kasi models (docs/DESIGN.md table), by the names scenarios use. */
export const ASI_DESIGN_NAMES = ['kpti', 'kvm-asi-2019', 'sci-2019', 'google-asi-2022', 'google-asi-2025', 'netns-asi'] as const;
export type IsolationDesign = 'off' | (typeof ASI_DESIGN_NAMES)[number];

/**
 * What-if changes to a design as posted:
 *  - image-nonglobal: clear _PAGE_GLOBAL on the kernel image's high mapping at boot even with PTI
 *    off (as pti_set_kernel_image_nonglobal() does under PTI), so no global TLB entry of image
 *    data the restricted space leaves out survives asi_enter.
 *  - sci-no-caps: System Call Isolation without its SCI_MAX_PTES (256) and SCI_MAX_BACKTRACE (64)
 *    caps, which kill a system call that maps more (the symbol rule still decides every fetch).
 *  - ibpb-on-exit: an IBPB on every asi_exit(), as the Aug 2025 ASI posting hard-codes it.
 */
export const WHAT_IFS = ['image-nonglobal', 'sci-no-caps', 'ibpb-on-exit', 'ephmap-tmpfs', 'ephmap-zeroing'] as const;
export type WhatIf = (typeof WHAT_IFS)[number];
/** The what-ifs that give every mm an ephmap (asi/ephmap.ts), google-asi-2025 only. */
export const EPHMAP_WHAT_IFS: readonly WhatIf[] = ['ephmap-tmpfs', 'ephmap-zeroing'];

export interface IsolationSpec {
  readonly name: string;
  /** The command line as written. */
  readonly cmdline: string;
  /** Parsed by mitigations/cmdline.ts (kernel.pti applied when the line has no pti=/nopti). */
  readonly mitigations: MitigationCmdline;
  /** `asi=` as written in the scenario (the cmdline parser's coarser name is in mitigations.asi). */
  readonly design: IsolationDesign;
  /** Stun the SMT sibling while a thread runs outside the restricted space (KVM and Google ASI). */
  readonly stun: boolean;
  /** stun differs from what the design posted (asi/designs/*.ts `stun`): a named what-if variant. */
  readonly stunWhatIf: boolean;
  /** Changes to the design as posted, each named in the report (WHAT_IFS). */
  readonly whatIf: readonly WhatIf[];
}

/**
 * A published figure a scenario reproduces: `metric` between isolation entries `between[0]`
 * (the base) and `between[1]` (the case): overhead_pct = (case / base - 1) × 100 of the
 * workload's cycles; throughput_ratio = base / case; ns_per_op = the case's ns per workload event.
 * In tolerance when within `tolerancePct` % of `published`, or inside `band` when the source gives one.
 */
export interface CalibrationSpec {
  readonly figure: string;
  readonly source: string;
  readonly published: number;
  readonly metric: 'overhead_pct' | 'throughput_ratio' | 'ns_per_op';
  readonly between: readonly [string, string];
  readonly tolerancePct: number;
  readonly band: readonly [number, number] | null;
  readonly note: string;
  /** What the project knows of its own model here: 'missed' figures say why in `note` (kasi calibrate prints both). */
  readonly status: 'reproduced' | 'missed';
  /**
   * Seeds the prediction runs (seed .. seed + seeds - 1): the metric is taken between the two
   * configurations' cycles summed over them. For a figure whose event order depends on timing
   * (siblings, core-scheduling windows, noise tasks' phases), where one seed is not an answer.
   */
  readonly seeds: number;
}

export interface SourcePos {
  readonly line: number;
  readonly column: number;
}

export interface Scenario {
  /** The file it came from, or "<built-in default>". */
  readonly file: string;
  readonly name: string;
  readonly seed: number;
  readonly stop: StopCondition;
  readonly machine: MachineSpec;
  readonly kernel: KernelSpec;
  readonly tenants: readonly TenantSpec[];
  readonly secrets: readonly SecretSpec[];
  readonly workload: readonly WorkloadThread[];
  readonly attackers: readonly AttackerSpec[];
  readonly isolation: readonly IsolationSpec[];
  readonly footprintOverrides: Readonly<Record<string, FootprintOverride>>;
  readonly costOverrides: CostOverrides;
  /** What loading the scenario did that a reader should know (imported workloads, borrowed footprints). */
  readonly notes: readonly string[];
  /** A published figure this scenario reproduces (`kasi calibrate`), or null. */
  readonly calibration: CalibrationSpec | null;
  /** Where each field was written, by path ("tenants[1].pin[0]"), for errors the engine raises later. */
  readonly positions: ReadonlyMap<string, SourcePos>;
}

/** Total hardware threads of a machine. */
export function threadCount(m: MachineSpec): number {
  return m.cores * m.threadsPerCore;
}
