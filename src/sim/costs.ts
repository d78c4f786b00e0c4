/**
 * The CPU cost model: what each mechanism the engine counts costs, in core cycles, per CPU
 * profile (src/uarch/profiles.ts). Every value is `{ cycles, source }`; a source starting with
 * "assumption:" marks a value no public document pins down, and says why that value was chosen.
 *
 * How the engine is meant to add these up (docs/DESIGN.md "Costs are sums of what happened"):
 *   event cost = transition (syscallEntryExit | interruptEntryExit | vmExitEntry)
 *              + footprint insns × kernelCyclesPerInsn (cold), kernelCyclesPerInsnWarm (the
 *                path's code still in the core's L1I, trained) or kernelCyclesPerInsnUntrained
 *                (still in the L1I, run after an IBPB): sim/code-warmth.ts
 *              + loop cycles of a sized copy or clear                  (sim/sized.ts)
 *              + tlbMissWalk per page walk, walkUpperLoad per paging-structure entry a walk loads
 *                above its leaf because no paging-structure cache held it (x86/pwc.ts: after a
 *                flush, 3 for a 4 KiB page, 4 with 5-level paging), stlbHit per first-level TLB
 *                miss the second level serves (x86/mmu.ts)
 *              + cr3Write / cr3WriteNoflush per CR3 write, invlpg / invpcid* per flush
 *              + l1dFlushMsr (or l1dFlushSoftware) + verw + ipiSend/ipiReceive
 *              + stunSpinPerCycle × cycles a stunned sibling waits
 *              + l2Hit / l3Hit per L1D miss (the refills after an L1D flush)
 * The transitions price the hardware part only (SYSCALL+SYSRET, IDT delivery+IRET); the entry
 * code's instructions are in each footprint's measured `insns`. vmExitEntry is the exception:
 * it is a measured round trip that includes KVM's minimal exit path, so a VM-exit footprint's
 * `insns` count only what its handler adds on top of a CPUID exit.
 *
 * The clock (GHz) turns scenario times (ns) into cycles.
 */

export interface CostValue {
  readonly cycles: number;
  readonly source: string;
}

export const COST_PARAMS = [
  'cr3Write', 'cr3WriteNoflush', 'tlbMissWalk', 'walkUpperLoad', 'stlbHit', 'invlpg',
  'invpcidAddress', 'invpcidSingleContext', 'invpcidAllIncludingGlobal', 'invpcidAllNonGlobal',
  'l1dFlushMsr', 'l1dFlushSoftware', 'verw', 'ipiSend', 'ipiReceive', 'stunSpinPerCycle',
  'vmExitEntry', 'syscallEntryExit', 'interruptEntryExit', 'contextSwitch', 'kernelCyclesPerInsn', 'kernelCyclesPerInsnWarm', 'kernelCyclesPerInsnUntrained',
  'l2Hit', 'l3Hit', 'ibpb', 'rsbFill',
] as const;
export type CostParam = (typeof COST_PARAMS)[number];

export interface CostModel {
  readonly profile: string;
  readonly clock: { readonly ghz: number; readonly source: string };
  readonly params: Readonly<Record<CostParam, CostValue>>;
}

/** The name a scenario file uses for a parameter: snake_case of the TypeScript name. */
export function costParamYamlName(p: CostParam): string {
  return p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

const BY_YAML: ReadonlyMap<string, CostParam> = new Map(COST_PARAMS.map((p) => [costParamYamlName(p), p]));

/** The parameter a scenario name refers to, or undefined. */
export function costParamFromYaml(name: string): CostParam | undefined {
  return BY_YAML.get(name);
}

export function costParamYamlNames(): string[] {
  return [...BY_YAML.keys()];
}

type Spec = Record<CostParam, readonly [number, string]>;

// Sources used more than once.
const PTI_RST = 'Documentation/arch/x86/pti.rst, "Runtime Cost" a.: "Moves to CR3 are on the order of a hundred cycles, and are required at every entry and exit."';
/** The CR3 price: pti.rst's order of magnitude, set by two published per-syscall deltas (kasi calibrate: kpti-lseek-pcid, kpti-getppid, kpti-dd-*). */
const PTI_DELTAS = `${PTI_RST} Two published per-syscall deltas with PCID pin it: FreeBSD D13985 getppid 339 -> 478 ns (+139 ns, Haswell) and Hansen's KAISER v2 lseek1 5.2M -> 3.0M/s (+141 ns, lore 20171108194646.907A1942); ~140 ns is ~420 cycles at 3 GHz for the two CR3 writes of a syscall, so 200 each (was 100 before the calibration). With each figure on its source's own native base (sim/event-base.ts: FreeBSD's 339 ns, Hansen's 192.3 ns) at 2.5 GHz, 200 gives kpti-getppid 44.7% (41%) and kpti-lseek-pcid 80.5% (73.3%); the dd curve (kpti-dd-*) agrees with ~170-200 only if its block costs ~516 cycles, see its files`;
const HANSEN = 'Dave Hansen, LKML 2017 (<3062e486-3539-8a1f-5724-16199420be71@intel.com>, cited by commit "x86/mm: Use INVPCID for __native_flush_tlb_single()": "INVPCID is _slow_"), Skylake: INVLPG ~200 cycles, INVLPG+INVPCID ~550 cycles (figures as quoted in the project brief)';
const GREGG = 'Brendan Gregg, "Linux Performance 2018" / KPTI post, c5.9xlarge (Skylake-SP) tlbstat: K_DTLBCYC 1,507,279 K over 86,588,626 DTLB walks = 17.4 cycles per walk (ITLB: 15.9)';
const OPT_SKX = 'Intel 64 and IA-32 Architectures Optimization Reference Manual, Skylake Server: L2 ~14 cycles, L3 ~50-70 cycles load-to-use';

/**
 * Skylake-SP (Xeon Platinum 8180): the profile with the most published figures. The other
 * profiles start from it and replace what is known for them.
 */
const SKYLAKE_SP: Spec = {
  cr3Write: [200, `${PTI_DELTAS} (a flushing write is taken at the NOFLUSH price: what it flushes is charged as the walks that follow)`],
  cr3WriteNoflush: [200, `${PTI_DELTAS}; with NOFLUSH the TLB keeps its entries, so a flush's real cost appears as the walks that follow a flushing write, charged per walk`],
  tlbMissWalk: [17, `${GREGG}; taken as a walk that loads only its leaf entry (its upper levels in the paging-structure caches, as in a steady state like Gregg's; x86/pwc.ts), what more it loads priced by walkUpperLoad`],
  stlbHit: [8, 'assumption: a first-level DTLB miss that hits the STLB. RightMark Memory Analyzer on Haswell (news.mynavi.jp, 2013-06-21 Haswell review, D-TLB pages) reads ~12 cycles a load while the pages fit the L2 TLB against ~4 for an L1D hit, so ~8 added; the 2015 Skylake review (same tool) finds Skylake\'s L2 TLB no slower. A walk is priced at tlbMissWalk alone (Gregg\'s cycles per walk; the STLB lookup before it is not added)'],
  walkUpperLoad: [14, `calibrated: a paging-structure entry the walk loads because no paging-structure cache held it (x86/pwc.ts), taken as an L2 hit (${OPT_SKX}): what Gregg's 17-cycle mean walk, mostly one load with its upper levels cached, says a walker's load costs; kpti-lseek-nopcid, whose every system call walks after two flushing CR3 writes, agrees (kasi calibrate --fit moves an L1D hit's 5 cycles to 15: lseek1 119% -> 126% against 136.4%). Replaces a flat 4 cycles a walk for 5-level paging (one more level per walk), which the paging-structure caches now decide`],
  invlpg: [200, `${HANSEN}; not fitted. asi-2025-aug-fio-tmpfs rests on it (one INVLPG a tmpfs read, ephmap_put()): at 100 cycles it gives 0.918, at 300 0.832, against 0.869`],
  invpcidAddress: [350, `${HANSEN}: INVPCID type 0 = 550 - 200`],
  invpcidSingleContext: [350, 'assumption: no published figure per INVPCID type; the type-0 cost (Hansen, Skylake) is used for the instruction itself, the lost entries show up as later walks'],
  invpcidAllIncludingGlobal: [350, 'assumption: as INVPCID type 0 (Hansen, Skylake); the cost of the emptied TLB is charged as later walks'],
  invpcidAllNonGlobal: [350, 'assumption: as INVPCID type 0 (Hansen, Skylake); the cost of the emptied TLB is charged as later walks'],
  l1dFlushMsr: [1000, 'assumption: no published figure for a write of L1D_FLUSH to IA32_FLUSH_CMD alone; it writes back and invalidates 512 lines (32 KiB / 64 B), taken at ~2 cycles per line = ~1000 cycles, below the software loop (no TLB priming, no CPUID); the refills after it are charged per L1D miss (l2Hit/l3Hit). Bracketed: >= 512 (the writebacks of 512 dirty lines, one a cycle) and ~1700 TSC cycles a flush with what follows it to VM entry (Wanpeng Li, lore 1557401361-3828-4-git-send-email-wanpengli@tencent.com: 700+ -> 2400+ cycles from wait_lapic_expire() to VM entry with vmentry_l1d_flush=always, a Haswell desktop, MSR or software loop not said)'],
  l1dFlushSoftware: [1600, 'modelled: arch/x86/kvm/vmx/vmx.c vmx_l1d_flush() without X86_FEATURE_FLUSH_L1D: 16 page loads to fill the TLB (16 × 17-cycle walks = 272), CPUID (assumption: 100), then 1024 loads at 64-byte stride over PAGE_SIZE << L1D_CACHE_ORDER (64 KiB) served by L2: 1024 × 14 cycles / 12 fill buffers = 1195; 272 + 100 + 1195 ≈ 1600'],
  verw: [500, 'assumption: no published figure for VERW with MD_CLEAR; it is a microcoded overwrite of the store buffer, fill buffers and load ports, taken as the order of another microcoded invalidation measured on Skylake (INVPCID ~350-550, Hansen 2017)'],
  ipiSend: [300, 'assumption: no published figure for a native IPI; sending is a WRMSR to the x2APIC ICR (arch/x86/kernel/apic/x2apic_phys.c __x2apic_send_IPI_dest), taken as a few hundred cycles like other serialising MSR writes'],
  ipiReceive: [1000, 'assumption: no published figure for a native IPI; delivery across cores + IDT entry + handler + EOI (WRMSR) + IRET, taken as ~1000 cycles, below the 1529-cycle VM exit+entry round trip that saves far more state'],
  stunSpinPerCycle: [1, 'definition: a stunned sibling spins and retires no work for each cycle it waits'],
  vmExitEntry: [1529, 'kvm-unit-tests x86/vmexit.c "cpuid" test, Skylake-SP: 1529-1800 cycles per exit+entry round trip including KVM\'s minimal exit path (figures as quoted in the project brief; the low end is used)'],
  syscallEntryExit: [100, 'assumption: the SYSCALL and SYSRET instructions alone (the entry code is counted in each footprint\'s measured insns); chosen so that getppid = 100 + 329 insns × 1 CPI = 429 cycles = 172 ns at 2.5 GHz, the order of published Linux null-syscall times'],
  interruptEntryExit: [250, 'assumption: IDT delivery (IDT, TSS/IST reads, 5-word frame push) + IRET, taken as 2.5× SYSCALL+SYSRET because IRET is microcoded and serialising'],
  contextSwitch: [400, 'assumption: the state switch proper on top of the scheduler\'s instructions: XSAVES of the outgoing and XRSTORS of the incoming FPU/AVX-512 state plus FS/GS base reloads (arch/x86/kernel/process_64.c __switch_to), ~200 cycles each way'],
  kernelCyclesPerInsn: [1, 'assumption: 1 cycle per kernel instruction of cold code (not in the core\'s L1I: uarch/code-cache.ts); Gregg\'s c5.9xlarge tlbstat shows IPC 1.04 for a syscall-heavy MySQL load, whose own code keeps the kernel\'s cold'],
  kernelCyclesPerInsnWarm: [0.35, 'calibrated: cycles per kernel instruction of warm code (the path ran on this core since its lines were evicted and since the last IBPB: uarch/code-cache.ts). No published IPC of a hot syscall path; the kpti-dd curve pins it: its 1 B and 4 KiB blocks differ only by clearing 4 KiB (512 one-cycle iterations of __clear_user), so with PTI\'s ~400 cycles a syscall the 1 B block costs ~516 cycles, of which two SYSCALL+SYSRET and dd\'s loop leave ~0.35 cycles for each of 4.14\'s 741 instructions (IPC ~2.9 on a 4-wide Skylake core)'],
  kernelCyclesPerInsnUntrained: [0.35, 'calibrated: cycles per kernel instruction of code still in the L1I but run after an IBPB discarded its predictions (uarch/code-cache.ts), taken as the warm price: the Inception artifact (comsec-group/inception ibpb-eval) shows an IBPB on every kernel entry adding the same time to a system call whatever the handler\'s length: on the Ryzen 5 5600G 212 ns a call in UnixBench System Call Overhead (handlers of ~300-480 instructions) and 209 ns in Pipe Throughput (the measured 1359- and 1099-instruction pipe write and read), on the Ryzen 7 7700X 236 and 237 ns. What retraining costs is common to every path (the entry code) and is in the ibpb price. The evidence is Zen 3/4 on 6.2, whose kernel indirect branches are retpolines (not predicted in any case); for an Intel profile with eIBRS, where they are, the same price is an assumption. Was kernelCyclesPerInsn (an IBPB priced as if it emptied the L1I), which predicted 0.305 for the 5600G pipe figure against 0.5125'],
  l2Hit: [14, OPT_SKX],
  l3Hit: [60, `${OPT_SKX} (midpoint)`],
  ibpb: [4000, 'assumption: no published cycle count for IBPB (a WRMSR of PRED_CMD that discards the indirect branch predictors); taken as several thousand cycles on Skylake, the order the "IBPB is very expensive" remarks on LKML suggest; kasi calibrate moves it (the Aug 2025 ASI kernel build: +7.6% with an IBPB on every asi_exit, +5.0% without, lore 20250812173109.295750-1)'],
  rsbFill: [70, 'assumption: __FILL_RETURN_BUFFER (arch/x86/include/asm/nospec-branch.h) is 16 iterations of two CALLs and a counter, ~70 cycles'],
};

function derive(base: Spec, baseName: string, over: Partial<Spec>): Spec {
  const out = {} as Record<CostParam, readonly [number, string]>;
  for (const p of COST_PARAMS) {
    const o = over[p];
    if (o !== undefined) out[p] = o;
    else {
      const [v, src] = base[p];
      out[p] = [v, src.startsWith('assumption:') || src.startsWith('definition:') ? src : `assumption: ${baseName} value reused (${src})`];
    }
  }
  return out;
}

interface ProfileCosts {
  profile: string;
  ghz: readonly [number, string];
  spec: Spec;
}

const SKX = 'skylake-sp';
const PROFILE_COSTS: readonly ProfileCosts[] = [
  { profile: 'skylake-sp', ghz: [2.5, 'ark.intel.com Xeon Platinum 8180: base 2.5 GHz'], spec: SKYLAKE_SP },
  {
    profile: 'cascade-lake', ghz: [2.7, 'ark.intel.com Xeon Platinum 8280: base 2.7 GHz'],
    spec: derive(SKYLAKE_SP, SKX, {
      l2Hit: [14, `${OPT_SKX} (Cascade Lake is the Skylake server core)`],
      l3Hit: [60, `${OPT_SKX} (Cascade Lake is the Skylake server core; midpoint)`],
    }),
  },
  {
    profile: 'ice-lake-sp', ghz: [2.3, 'ark.intel.com Xeon Platinum 8380: base 2.3 GHz'],
    spec: derive(SKYLAKE_SP, SKX, {
      l2Hit: [14, 'assumption: Sunny Cove server 1.25 MiB L2 at ~14 cycles (Optimization Reference Manual gives 13 for the client part)'],
      l3Hit: [70, 'assumption: Ice Lake-SP mesh L3 slightly slower than Skylake-SP\'s'],
    }),
  },
  {
    profile: 'sapphire-rapids', ghz: [2.0, 'ark.intel.com Xeon Platinum 8480+: base 2.0 GHz'],
    spec: derive(SKYLAKE_SP, SKX, {
      l2Hit: [16, 'assumption: Golden Cove 2 MiB L2 at ~15-16 cycles'],
      l3Hit: [100, 'assumption: Sapphire Rapids mesh L3 ~100 cycles'],
      ibpb: [4000, 'calibrated: no published cycle count for IBPB on Sapphire Rapids, but two ASI figures with one IBPB per asi_exit() agree on it: asi-2025-fio-randread (RFC v2, FIO 4k read -70%: kasi 0.26 against 0.30 at 4000) and asi-2025-kernel-build (Aug 2025, +7.6% native: kasi 8.0%); its twin with clearcpuid=ibpb (+5.0%: asi-2025-kernel-build-noibpb, kasi 2.3%, a known miss) says the barrier is only 2.6 of those 7.6 points, so this price also carries transition costs kasi does not model; the price is what the barrier costs, the code after it staying in the L1I (uarch/code-cache.ts: untrained, at kernelCyclesPerInsnUntrained). Was 1500 (an assumption), then 4500 while every path was priced cold, then 3500 while an IBPB was taken to leave the next path cold'],
    }),
  },
  {
    profile: 'zen3', ghz: [2.45, 'AMD EPYC 7763 product page: base 2.45 GHz'],
    spec: derive(SKYLAKE_SP, SKX, {
      l2Hit: [12, 'assumption: AMD Software Optimization Guide 19h (56665), L2 ~12 cycles'],
      l3Hit: [46, 'assumption: AMD Software Optimization Guide 19h (56665), L3 ~46 cycles average'],
      vmExitEntry: [1529, 'assumption: no published SVM VMRUN/#VMEXIT round trip for Zen 3; the Skylake-SP VMX figure is used'],
      ibpb: [580, 'calibrated: the Inception artifact (comsec-group/inception ibpb-eval/raw/ee-tik-cn108, Ryzen 5 5600G, Linux 6.2), with an IBPB on every kernel entry: UnixBench System Call Overhead 2,413,941 -> 678,050 lps (0.281; kasi 0.301 at 580) and Pipe Throughput 2,275,318 -> 1,166,094 (0.5125; kasi 0.49), examples/calibration/ibpb-entry-zen3-*.yaml; the two want 640 and 530. A ratio price: the source\'s barrier adds 815-930 cycles a call, but kasi\'s base loops are 23-42% cheaper than the source\'s, so a scenario whose base is right would under-price the barrier here. Was 4000, the Skylake-SP assumption reused (~7x too dear for this part), then 470 while an IBPB was taken to leave the next path cold'],
    }),
  },
  {
    profile: 'zen4', ghz: [2.4, 'AMD EPYC 9654 product page: base 2.4 GHz'],
    spec: derive(SKYLAKE_SP, SKX, {
      l2Hit: [14, 'assumption: AMD Software Optimization Guide 19h (Zen 4), 1 MiB L2 ~14 cycles'],
      l3Hit: [50, 'assumption: AMD Software Optimization Guide 19h (Zen 4), L3 ~50 cycles'],
      vmExitEntry: [1529, 'assumption: no published SVM VMRUN/#VMEXIT round trip for Zen 4; the Skylake-SP VMX figure is used'],
      ibpb: [1050, 'calibrated: the Inception artifact (comsec-group/inception ibpb-eval/raw/ee-tik-cn118, Ryzen 7 7700X, Linux 6.2), with an IBPB on every kernel entry: UnixBench System Call Overhead 3,813,540 -> 693,849 lps (0.182; kasi 0.194 at 1050) and Pipe Throughput 3,518,325 -> 1,318,719 (0.3748; kasi 0.348), examples/calibration/ibpb-entry-zen4-*.yaml; the two want 1130 and 930. A ratio price: the source\'s barrier adds 1060-1280 cycles a call, kasi\'s base loops being up to 27% cheaper than the source\'s. Was 4000, the Skylake-SP assumption reused, then 940 while an IBPB was taken to leave the next path cold'],
    }),
  },
  {
    profile: 'qemu-max', ghz: [1.0, 'assumption: QEMU TCG with -icount shift=0 (as the footprint run) counts 1 ns per instruction; 1 GHz keeps insns = cycles'],
    spec: derive(SKYLAKE_SP, SKX, {}),
  },
];

/**
 * Which calibration figures (examples/calibration, kasi calibrate) move when an assumed price
 * moves (found by doubling it: the fit's probe, sim/calibrate.ts Predictor) and what they say of
 * it; appended to every "assumption:" source, so no assumed price stands without saying whether
 * a published figure checks it.
 */
const CALIBRATION: Partial<Record<CostParam, string>> = {
  invpcidSingleContext: 'no figure depends on it', invpcidAllIncludingGlobal: 'no figure depends on it', invpcidAllNonGlobal: 'no figure depends on it',
  l1dFlushMsr: 'l1d-flush-low-exit-rate and l1d-flush-high-exit-rate land inside l1tf.rst\'s 1%..50% with it (1.5%, 9.5%); asi-2024-kvm-host; but no figure pins it: kasi calibrate --fit finds every factor from x0.3 to x3 as good (its valley)',
  verw: 'the l1d-flush figures (inside their band), coresched-tpcc-*',
  ipiSend: 'no figure depends on it (stuns only)', ipiReceive: 'no figure depends on it (stuns only)',
  syscallEntryExit: 'kpti-dd-* (the dd curve wants a smaller base) and asi-2025-*; kpti-getppid and kpti-lseek-* take their sources\' native bases instead',
  interruptEntryExit: 'asi-2024-kvm-host (in band), asi-2025-fio-randread (reproduced), asi-2025-kernel-build',
  contextSwitch: 'asi-2025-kernel-build, coresched-tpcc-*',
  kernelCyclesPerInsn: 'every figure whose kernel paths run after an application\'s or a guest\'s code (asi-2025-*, coresched-tpcc-*, asi-2024-kvm-host, the l1d-flush figures); not kpti-getppid and kpti-lseek-* (their sources\' native bases), and the dd curve only through its first call',
  ibpb: 'asi-2024-kvm-host (skylake-sp, inside its band); the Sapphire Rapids price is calibrated by asi-2025-fio-randread and asi-2025-kernel-build (its source says how), the Zen 3 and Zen 4 prices by ibpb-entry-zen3-* and ibpb-entry-zen4-* (a System Call Overhead and a Pipe Throughput figure each)',
  rsbFill: 'asi-2025-fio-randread, asi-2025-kernel-build, asi-2024-kvm-host (a few cycles of them)',
};

function build(p: ProfileCosts): CostModel {
  const params = {} as Record<CostParam, CostValue>;
  for (const k of COST_PARAMS) {
    const [cycles, spec] = p.spec[k];
    if (!Number.isFinite(cycles) || cycles < 0 || !spec) throw new RangeError(`cost model ${p.profile}: ${k} needs a finite non-negative value and a source`);
    const source = spec.startsWith('assumption:') ? `${spec}; kasi calibrate: ${CALIBRATION[k] ?? 'no figure depends on it'}` : spec;
    params[k] = { cycles, source };
  }
  return { profile: p.profile, clock: { ghz: p.ghz[0], source: p.ghz[1] }, params };
}

export const COST_MODELS: ReadonlyMap<string, CostModel> = new Map(PROFILE_COSTS.map((p) => [p.profile, build(p)]));

/** The cost model of a CPU profile, or a RangeError listing the known ones. */
export function getCostModel(profile: string): CostModel {
  const m = COST_MODELS.get(profile);
  if (m === undefined) throw new RangeError(`no cost model for CPU profile "${profile}" (known: ${[...COST_MODELS.keys()].join(', ')})`);
  return m;
}

export interface CostOverrides {
  /** Replaces the clock; its source. */
  clock?: { ghz: number; source: string };
  params?: Partial<Record<CostParam, CostValue>>;
}

/** `model` with the given parameters replaced (by key); the rest unchanged. */
export function withCostOverrides(model: CostModel, over: CostOverrides): CostModel {
  const params = { ...model.params };
  for (const [k, v] of Object.entries(over.params ?? {}) as [CostParam, CostValue | undefined][]) {
    if (v === undefined) continue;
    if (!(COST_PARAMS as readonly string[]).includes(k)) throw new RangeError(`unknown cost parameter "${k}"`);
    if (!Number.isFinite(v.cycles) || v.cycles < 0) throw new RangeError(`cost parameter ${k}: ${v.cycles} is not a non-negative number of cycles`);
    params[k] = { cycles: v.cycles, source: v.source };
  }
  return { profile: model.profile, clock: over.clock ?? model.clock, params };
}

/** Nanoseconds to cycles at the model's clock (rounded to the nearest cycle). */
export function nsToCycles(ns: number, model: CostModel): number {
  return Math.round(ns * model.clock.ghz);
}

export function cyclesToNs(cycles: number, model: CostModel): number {
  return cycles / model.clock.ghz;
}
