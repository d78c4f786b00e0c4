/**
 * A mitigation command line resolved against a CPU into the state Linux 6.1 ends up in:
 * a port, in boot order, of the selection logic of arch/x86/kernel/cpu/bugs.c (6.1.y stable
 * with the 2024 RFDS/BHI backports), tsx.c tsx_init(), mm/pti.c pti_check_boottime_disable(),
 * kernel/cpu.c (cpu_smt_disable, cpu_smt_check_topology) and arch/x86/kvm/vmx/vmx.c
 * vmx_setup_l1d_flush(). Each step names the function it ports; the order matters because the
 * MDS/TAA/MMIO/RFDS selections feed one another through X86_FEATURE_CLEAR_CPU_BUF.
 */
import type { BugName } from '../uarch/vulnerability.ts';
import { ARCH_CAP } from '../uarch/vulnerability.ts';
import type { CpuProfile } from '../uarch/profiles.ts';
import type { AsiDesign, CpuMitigations, MitigationCmdline } from './cmdline.ts';

export type L1tfMitigation = 'off' | 'flush,nowarn' | 'flush' | 'flush,nosmt' | 'full' | 'full,force';
/** enum vmx_l1d_flush_state; 'auto' = kvm_intel never set it up (not loaded). */
export type VmxL1dFlush = 'auto' | 'never' | 'cond' | 'always' | 'ept-disabled' | 'not-required';
export type SmtControl = 'on' | 'off' | 'forceoff' | 'notsupported';

/** Kernel build options that change the outcome. */
export interface KernelBuild {
  /** CONFIG_X86_INTEL_TSX_MODE_{OFF,ON,AUTO}: what tsx_init() does without tsx=. */
  tsxMode: 'off' | 'on' | 'auto';
  /** CONFIG_KVM_INTEL (y or m): l1tf_show_state() reports the VMX state. */
  kvmIntel: boolean;
}

/** Debian 6.1.0-56 (the captures' config.gz): CONFIG_X86_INTEL_TSX_MODE_OFF=y, CONFIG_KVM_INTEL=m. */
export const DEBIAN_6_1_BUILD: KernelBuild = { tsxMode: 'off', kvmIntel: true };

export interface SelectOptions {
  /** kvm_intel loaded (a KVM host). It only loads on a CPU with VMX. Default true. */
  kvm?: boolean;
  /** Hardware threads per core brought up (1 = SMT off in firmware). Default: 2 if the CPU has SMT. */
  threadsPerCore?: number;
  /** One past the highest RAM address (e820), for l1tf_select_mitigation()'s MAX_PA/2 check. Default 0 (small). */
  ramEnd?: number;
  build?: KernelBuild;
}

export interface MitigationState {
  profile: string;
  bugs: ReadonlySet<BugName>;
  hypervisor: boolean;
  cpuMitigations: CpuMitigations;
  /** /sys/devices/system/cpu/smt/control. */
  smtControl: SmtControl;
  /** sched_smt_active(): some core runs two threads. */
  smtActive: boolean;
  /** X86_FEATURE_PTI: the kernel runs with KPTI. */
  pti: boolean;
  /** X86_FEATURE_RTM after tsx_init(): TSX usable. */
  tsxEnabled: boolean;
  spectreV1: 'none' | 'auto';
  l1tf: L1tfMitigation;
  /** X86_FEATURE_L1TF_PTEINV: non-present PTEs are inverted. */
  l1tfPteInversion: boolean;
  kvmLoaded: boolean;
  /** enable_ept of kvm_intel. */
  ept: boolean;
  /** l1tf_vmx_mitigation: when KVM flushes L1D before VM entry. */
  vmentryL1dFlush: VmxL1dFlush;
  mds: 'off' | 'full' | 'vmwerv';
  taa: 'off' | 'ucode-needed' | 'verw' | 'tsx-disabled';
  mmio: 'off' | 'ucode-needed' | 'verw';
  rfds: 'off' | 'verw' | 'ucode-needed';
  /** X86_FEATURE_CLEAR_CPU_BUF: VERW on return to user space and before VM entry. */
  clearCpuBuffers: boolean;
  /** mmio_stale_data_clear: VERW before VM entry only (KVM-only MMIO mitigation). */
  mmioKvmClear: boolean;
  /** mds_idle_clear: VERW before idle (halt/mwait). */
  idleClear: boolean;
  /** switch_mm_cond_l1d_flush: L1D flush on switch_mm for tasks that opted in (l1d_flush=on). */
  l1dFlushOnSwitchMm: boolean;
  asi: AsiDesign;
  schedCore: boolean;
  /** asi_highmap_tail=: keep the image tail in the high map (the kernel's behaviour) or unmap it at boot (image-tail.ts what-if). */
  highmapTail: 'keep' | 'unmap';
  /** X86_FEATURE_PCID after the command line: the CPU has it and no nopcid (cpu/common.c x86_nopcid_setup()). */
  pcid: boolean;
  /**
   * X86_FEATURE_ENTRY_IBPB: an IBPB on every kernel entry from user space (UNTRAIN_RET in
   * entry_64.S calls entry_ibpb). Set by retbleed=ibpb on a CPU with X86_BUG_RETBLEED
   * (retbleed_select_mitigation(): RETBLEED_MITIGATION_IBPB) or spec_rstack_overflow=ibpb on one
   * with X86_BUG_SRSO (srso_select_mitigation(): SRSO_MITIGATION_IBPB; kasi takes the microcode
   * as present), never under mitigations=off. Their defaults (untrained return thunk, safe RET)
   * are return thunks kasi does not price. retbleed=ibpb needs X86_FEATURE_IBPB: without it it
   * warns "CPU does not support IBPB" and takes the default (retbleed_select_mitigation());
   * spec_rstack_overflow=ibpb does not ask (srso_select_mitigation() checks only the microcode).
   */
  entryIbpb: boolean;
  /**
   * X86_FEATURE_IBPB after the command line: every modelled part has the barrier (CPUID.7.0:EDX[26]
   * on Intel, 0x80000008:EBX[12] on AMD) unless clearcpuid=ibpb clears it; then no mitigation issues
   * one (ASI's control-taint flush, retbleed=ibpb's entry barrier).
   */
  ibpb: boolean;
}

/** override_cache_bits(): models whose cache uses 44 address bits internally. */
const CACHE_BITS_44 = new Set([0x1e, 0x25, 0x2a, 0x3a, 0x3c, 0x45, 0x46, 0x3d, 0x47, 0x4e, 0x5e, 0x8e, 0x9e]);

export function selectMitigations(profile: CpuProfile, cmd: MitigationCmdline, opts: SelectOptions = {}): MitigationState {
  const build = opts.build ?? DEBIAN_6_1_BUILD;
  const bugs = profile.bugs;
  const bug = (b: BugName): boolean => bugs.has(b);
  const f = profile.features;
  const cap = profile.archCapabilities; // x86_read_arch_cap_msr(): 0 when the MSR is not enumerated
  const off = cmd.cpuMitigations === 'off'; // cpu_mitigations_off()
  const autoNosmt = cmd.cpuMitigations === 'auto,nosmt'; // cpu_mitigations_auto_nosmt()
  const threadsPerCore = opts.threadsPerCore ?? (profile.smt ? 2 : 1);
  if (threadsPerCore !== 1 && threadsPerCore !== 2) throw new RangeError(`threads per core must be 1 or 2, got ${threadsPerCore}`);
  if (threadsPerCore === 2 && !profile.smt) throw new RangeError(`${profile.name} has no SMT: 2 threads per core impossible`);

  // Early params: nosmt -> cpu_smt_disable(force) (kernel/cpu.c).
  let smt: SmtControl = cmd.nosmt === 'force' ? 'forceoff' : cmd.nosmt === 'yes' ? 'off' : 'on';
  const smtDisable = (force: boolean): void => {
    // cpu_smt_disable(): only while cpu_smt_possible()
    if (smt === 'forceoff' || smt === 'notsupported') return;
    smt = force ? 'forceoff' : 'off';
  };

  // identify_boot_cpu() -> tsx_init() (arch/x86/kernel/cpu/tsx.c)
  let rtm = f.rtm;
  if (cap & ARCH_CAP.TSX_CTRL_MSR) {
    const mode = cmd.tsx ?? build.tsxMode;
    // x86_get_tsx_auto_mode(): disable if X86_BUG_TAA
    const enable = mode === 'on' || (mode === 'auto' && !bug('taa'));
    rtm = enable; // tsx_enable()/tsx_disable() and the RTM/HLE cpu caps follow
  } // else TSX_CTRL_NOT_SUPPORTED: "tsx= cmdline requests will do nothing"

  // check_bugs(): cpu_smt_check_topology()
  if (threadsPerCore === 1) smt = 'notsupported';

  // spectre_v1_select_mitigation()
  const spectreV1 = !bug('spectre_v1') || off || cmd.nospectreV1 ? 'none' : 'auto';

  // l1tf_select_mitigation()
  let l1tf: L1tfMitigation = cmd.l1tf ?? 'flush'; // default L1TF_MITIGATION_FLUSH
  let pteInv = false;
  if (bug('l1tf')) {
    if (off) l1tf = 'off';
    else if (autoNosmt) l1tf = 'flush,nosmt';
    if (l1tf === 'flush,nosmt' || l1tf === 'full') smtDisable(false);
    else if (l1tf === 'full,force') smtDisable(true);
    let cacheBits = profile.maxPhysBits;
    if (profile.vendor === 'GenuineIntel' && profile.family === 6 && CACHE_BITS_44.has(profile.model) && cacheBits < 44) cacheBits = 44;
    const halfPa = 2 ** (cacheBits - 1); // l1tf_pfn_limit() << PAGE_SHIFT
    // "System has more than MAX_PA/2 memory. L1TF mitigation not effective."
    pteInv = !(l1tf !== 'off' && (opts.ramEnd ?? 0) > halfPa);
  }

  // md_clear_select_mitigation(): mds, taa, mmio, rfds, then md_clear_update_mitigation()
  let clearCpuBuf = false;
  let mmioKvmClear = false;
  let idleClear = false;
  const mdsNosmt = cmd.mds === 'full,nosmt';
  const taaNosmt = cmd.tsxAsyncAbort === 'full,nosmt';
  const mmioNosmt = cmd.mmioStaleData === 'full,nosmt';
  let mds = (cmd.mds === 'off' ? 'off' : 'full') as MitigationState['mds'];
  let taa = (cmd.tsxAsyncAbort === 'off' ? 'off' : 'verw') as MitigationState['taa'];
  let mmio = (cmd.mmioStaleData === 'off' ? 'off' : 'verw') as MitigationState['mmio'];
  let rfds = (cmd.regFileDataSampling === 'off' ? 'off' : 'verw') as MitigationState['rfds'];

  const mdsSelect = (): void => {
    if (!bug('mds') || off) { mds = 'off'; return; }
    if (mds === 'full') {
      if (!f.mdClear) mds = 'vmwerv';
      clearCpuBuf = true;
      if (!bug('msbds_only') && (mdsNosmt || autoNosmt)) smtDisable(false);
    }
  };
  const taaSelect = (): void => {
    if (!bug('taa')) { taa = 'off'; return; }
    if (!rtm) { taa = 'tsx-disabled'; return; } // "TSX previously disabled by tsx=off"
    if (off) { taa = 'off'; return; }
    // "TAA mitigation via VERW is turned off if both tsx_async_abort=off and mds=off are specified."
    if (taa === 'off' && mds === 'off') return;
    taa = f.mdClear ? 'verw' : 'ucode-needed';
    // "On MDS_NO=1 CPUs if ARCH_CAP_TSX_CTRL_MSR is not set, microcode update is required."
    if ((cap & ARCH_CAP.MDS_NO) && !(cap & ARCH_CAP.TSX_CTRL_MSR)) taa = 'ucode-needed';
    clearCpuBuf = true;
    if (taaNosmt || autoNosmt) smtDisable(false);
  };
  const mmioSelect = (): void => {
    if (!bug('mmio_stale_data') || bug('mmio_unknown') || off) { mmio = 'off'; return; }
    if (mmio === 'off') return;
    // "Enable CPU buffer clear mitigation for host and VMM, if also affected by MDS or TAA."
    if (bug('mds') || (bug('taa') && rtm)) clearCpuBuf = true;
    mmioKvmClear = !clearCpuBuf;
    if (!(cap & ARCH_CAP.FBSDP_NO)) idleClear = true;
    mmio = (cap & ARCH_CAP.FB_CLEAR) || (f.mdClear && f.flushL1d && !(cap & ARCH_CAP.MDS_NO)) ? 'verw' : 'ucode-needed';
    if (mmioNosmt || autoNosmt) smtDisable(false);
  };
  const rfdsSelect = (): void => {
    if (!bug('rfds') || off) { rfds = 'off'; return; }
    if (rfds === 'off') return;
    if (cap & ARCH_CAP.RFDS_CLEAR) clearCpuBuf = true;
    else rfds = 'ucode-needed';
  };
  mdsSelect();
  taaSelect();
  mmioSelect();
  rfdsSelect();
  // md_clear_update_mitigation(): once VERW runs anyway, every VERW-mitigated bug is mitigated
  if (!off && clearCpuBuf) {
    if (mds === 'off' && bug('mds')) { mds = 'full'; mdsSelect(); }
    if (taa === 'off' && bug('taa')) { taa = 'verw'; taaSelect(); }
    // "MMIO_MITIGATION_OFF is not checked here"
    if (bug('mmio_stale_data')) { mmio = 'verw'; mmioSelect(); }
    if (rfds === 'off' && bug('rfds')) { rfds = 'verw'; rfdsSelect(); }
  }

  // l1d_flush_select_mitigation()
  const l1dFlushOnSwitchMm = cmd.l1dFlush && f.flushL1d;

  // pti_check_boottime_disable() (arch/x86/mm/pti.c): pti= first, then nopti / mitigations=off
  let pti: boolean;
  if (cmd.pti === 'off') pti = false;
  else if (cmd.pti === 'on') pti = true;
  else if (cmd.pti !== 'auto' && (cmd.nopti || off)) pti = false;
  else pti = bug('cpu_meltdown'); // autosel

  // SMP bring-up: sched_smt_active(), then cpu_bugs_smt_update() -> update_mds_branch_idle()
  const smtActive = smt === 'on' && threadsPerCore === 2;
  if ((mds === 'full' || mds === 'vmwerv') && bug('msbds_only')) {
    if (smtActive) idleClear = true;
    else if (mmio === 'off' || (cap & ARCH_CAP.FBSDP_NO)) idleClear = false;
  }

  // kvm_intel: vmx_init() -> vmx_setup_l1d_flush(vmentry_l1d_flush_param)
  const kvmLoaded = (opts.kvm ?? true) && f.vmx;
  const ept = kvmLoaded && cmd.kvmIntel.ept && f.ept;
  const ibpb = !cmd.clearCpuid.includes('ibpb'); // clearcpuid=ibpb: setup_clear_cpu_cap(X86_FEATURE_IBPB)

  let vmentryL1dFlush: VmxL1dFlush = 'auto';
  if (kvmLoaded) {
    if (!bug('l1tf')) vmentryL1dFlush = 'not-required';
    else if (!ept) vmentryL1dFlush = 'ept-disabled';
    else if (cap & ARCH_CAP.SKIP_VMENTRY_L1DFLUSH) vmentryL1dFlush = 'not-required';
    else if (cmd.kvmIntel.vmentryL1dFlush === 'auto') {
      // "If set to auto use the default l1tf mitigation method"
      vmentryL1dFlush = l1tf === 'off' ? 'never' : l1tf === 'full' || l1tf === 'full,force' ? 'always' : 'cond';
    } else vmentryL1dFlush = l1tf === 'full,force' ? 'always' : cmd.kvmIntel.vmentryL1dFlush;
  }

  return {
    profile: profile.name,
    bugs,
    hypervisor: f.hypervisor,
    cpuMitigations: cmd.cpuMitigations,
    smtControl: smt,
    smtActive,
    pti,
    tsxEnabled: rtm,
    spectreV1,
    l1tf,
    l1tfPteInversion: pteInv,
    kvmLoaded,
    ept,
    vmentryL1dFlush,
    mds,
    taa,
    mmio,
    rfds,
    clearCpuBuffers: clearCpuBuf,
    mmioKvmClear,
    idleClear,
    l1dFlushOnSwitchMm,
    asi: cmd.asi,
    schedCore: cmd.schedCore,
    highmapTail: cmd.highmapTail,
    pcid: f.pcid && !cmd.nopcid,
    // srso_select_mitigation() (6.1.44+) forces ENTRY_IBPB with the microcode without asking for X86_FEATURE_IBPB (entry_ibpb writes PRED_CMD itself)
    entryIbpb: !off && ((ibpb && bug('retbleed') && cmd.retbleed === 'ibpb') || (bug('srso') && cmd.srso === 'ibpb')),
    ibpb,
  };
}
