/**
 * A mitigation set written as a kernel command line, read the way Linux 6.1 reads it.
 *
 * The kernel reads these parameters through three different mechanisms, and the differences
 * show on odd command lines, so each parameter is read through the one it really uses:
 *   - early_param() handlers (mitigations, nosmt, l1tf, mds, tsx_async_abort, mmio_stale_data,
 *     reg_file_data_sampling, nospectre_v1, l1d_flush, nopcid, retbleed, spec_rstack_overflow): parse_early_param() runs parse_args(),
 *     which splits with next_arg(), compares names with parameq() ('-' == '_'), stops at a bare
 *     `--`, and calls the handler for EVERY occurrence in order — so the last value wins
 *     (kernel/params.c, init/main.c do_early_param());
 *   - cmdline_find_option()/cmdline_find_option_bool() (pti, nopti, tsx, clearcpuid, no5lvl): a plain scan of the
 *     whole string with exact names, `--` included; "if this option is repeated, this returns
 *     the last instance" (arch/x86/lib/cmdline.c);
 *   - module parameters of kvm_intel (kvm-intel.vmentry_l1d_flush, kvm-intel.ept): applied in
 *     order when the module loads (modprobe passes `kvm_intel.*` from /proc/cmdline), last wins.
 * kasi's own parameters, `asi=`, `sched_core=` and `asi_highmap_tail=`, are read like early params.
 *
 * The kernel ignores (or only logs) a value it does not know; kasi refuses it with an error
 * naming the parameter, because a mistyped mitigation silently falling back to the default is
 * the wrong answer for a what-if tool. Parameters that are not about mitigations are ignored.
 */
import { paramEq, parseCmdline, type CmdlineParam, type ParsedCmdline } from '../formats/cmdline.ts';

export type CpuMitigations = 'off' | 'auto' | 'auto,nosmt';
export type L1tfCmd = 'off' | 'flush,nowarn' | 'flush' | 'flush,nosmt' | 'full' | 'full,force';
export type VerwCmd = 'off' | 'full' | 'full,nosmt';
export type VmentryL1dFlushCmd = 'auto' | 'never' | 'cond' | 'always';
/** kasi's ASI designs (docs/DESIGN.md): off, KVM ASI, System Call Isolation, namespace address spaces, Google ASI 2024-25. */
export const ASI_DESIGNS = ['off', 'kvm', 'sci', 'netns', 'google'] as const;
export type AsiDesign = (typeof ASI_DESIGNS)[number];

/** What the command line asks for, validated; resolved against a CPU by select.ts. null = not given (kernel default). */
export interface MitigationCmdline {
  text: string;
  /** kernel/cpu.c mitigations_parse_cmdline(); default CPU_MITIGATIONS_AUTO. */
  cpuMitigations: CpuMitigations;
  /** nosmt / nosmt=force: cpu_smt_disable(force) for each occurrence; force once is force for good. */
  nosmt: 'no' | 'yes' | 'force';
  pti: 'on' | 'off' | 'auto' | null;
  nopti: boolean;
  l1tf: L1tfCmd | null;
  mds: VerwCmd | null;
  tsxAsyncAbort: VerwCmd | null;
  mmioStaleData: VerwCmd | null;
  regFileDataSampling: 'on' | 'off' | null;
  tsx: 'on' | 'off' | 'auto' | null;
  nospectreV1: boolean;
  /** l1d_flush=on: opt-in L1D flush on switch_mm for tasks that ask (l1d_flush.rst). */
  l1dFlush: boolean;
  kvmIntel: { vmentryL1dFlush: VmentryL1dFlushCmd; ept: boolean };
  asi: AsiDesign;
  schedCore: boolean;
  /** asi_highmap_tail=keep|unmap: the what-if that unmaps the image tail past _end from the high map at boot (linux/image-tail.ts). */
  highmapTail: 'keep' | 'unmap';
  /**
   * nopcid: arch/x86/kernel/cpu/common.c x86_nopcid_setup() clears X86_FEATURE_PCID, so
   * setup_pcid() leaves CR4.PCIDE off and every CR3 write flushes the non-global TLB entries
   * (Documentation/admin-guide/kernel-parameters.txt: "nopcid [X86-64] Disable the PCID cpu feature").
   */
  nopcid: boolean;
  /**
   * no5lvl: arch/x86/boot/compressed/pgtable_64.c configure_5level_paging() enables 5-level
   * paging only `!cmdline_find_option_bool("no5lvl")`, so a CPU with LA57 boots 4-level (the
   * Aug 2025 ASI posting's boot lines carry it). Not a mitigation: kasi reads it because it
   * decides the tables every set builds.
   */
  no5lvl: boolean;
  /** retbleed=: retbleed_parse_cmdline() (bugs.c), comma-separated; only `ibpb` changes what kasi runs. */
  retbleed: 'off' | 'auto' | 'unret' | 'ibpb' | null;
  /** spec_rstack_overflow=: srso_parse_cmdline() (bugs.c, 6.1.44+); only `ibpb` changes what kasi runs. */
  srso: 'off' | 'microcode' | 'safe-ret' | 'ibpb' | 'ibpb-vmexit' | null;
  /**
   * clearcpuid=: the feature names cpu_parse_early_param() clears (arch/x86/kernel/cpu/common.c:
   * cmdline_find_option(), the last instance, comma-separated; setup_clear_cpu_cap()). kasi models
   * `ibpb` (X86_FEATURE_IBPB: no IBPB from the mitigations that ask for the feature, the way the Aug
   * 2025 ASI posting turned its hard-coded asi_exit() IBPB off, lore
   * DC83J9RSZZ0E.3VKGEVIDMSA2R@google.com; select.ts says which) and refuses other
   * names and bit numbers (the kernel also takes 7*32+26), so a what-if never silently clears nothing.
   */
  clearCpuid: readonly ClearableFeature[];
}

/** The CPU features clearcpuid= may name in kasi (/proc/cpuinfo names, x86_cap_flags[]). */
export const CLEARABLE_FEATURES = ['ibpb'] as const;
export type ClearableFeature = (typeof CLEARABLE_FEATURES)[number];

/** A command-line value kasi does not accept: names the parameter and what was expected. */
export class CmdlineError extends RangeError {
  constructor(readonly param: string, message: string) {
    super(`kernel command line: ${message}`);
    this.name = 'CmdlineError';
  }
}

const show = (p: CmdlineParam): string => (p.value === null ? p.name : `${p.name}=${p.value}`);

function oneOf<T extends string>(p: CmdlineParam, allowed: readonly T[]): T {
  if (p.value === null) throw new CmdlineError(p.name, `${p.name} needs a value (one of ${allowed.join(', ')})`);
  const v = allowed.find((a) => a === p.value);
  if (v === undefined) throw new CmdlineError(p.name, `${show(p)}: unknown value "${p.value}" (expected one of ${allowed.join(', ')})`);
  return v;
}

/** lib/kstrtox.c kstrtobool(): "the first character is one of 'Yy1Nn0', or [oO][NnFf]"; no value means true (param_set_bool). */
function kstrtobool(p: CmdlineParam): boolean {
  const s = p.value ?? '1';
  const c = s[0];
  if (c === 'y' || c === 'Y' || c === '1') return true;
  if (c === 'n' || c === 'N' || c === '0') return false;
  if ((c === 'o' || c === 'O') && (s[1] === 'n' || s[1] === 'N')) return true;
  if ((c === 'o' || c === 'O') && (s[1] === 'f' || s[1] === 'F')) return false;
  throw new CmdlineError(p.name, `${show(p)}: not a boolean (expected 0, 1, N, Y, on or off)`);
}

/** The parameters parse_args() sees (before a bare `--`) and what a raw string scan sees (all). */
function allTokens(c: ParsedCmdline): CmdlineParam[] {
  return c.initArgs === undefined ? c.params : [...c.params, ...parseCmdline(c.initArgs).params];
}

/** Parse and validate a command line. Throws CmdlineError on a value kasi does not accept. */
export function parseMitigationCmdline(text: string): MitigationCmdline {
  const parsed = parseCmdline(text);
  const out: MitigationCmdline = {
    text,
    cpuMitigations: 'auto',
    nosmt: 'no',
    pti: null,
    nopti: false,
    l1tf: null,
    mds: null,
    tsxAsyncAbort: null,
    mmioStaleData: null,
    regFileDataSampling: null,
    tsx: null,
    nospectreV1: false,
    l1dFlush: false,
    kvmIntel: { vmentryL1dFlush: 'auto', ept: true },
    asi: 'off',
    schedCore: false,
    highmapTail: 'keep',
    nopcid: false,
    no5lvl: false,
    retbleed: null,
    srso: null,
    clearCpuid: [],
  };
  const VERW: readonly VerwCmd[] = ['off', 'full', 'full,nosmt'];

  // Early params, module params and kasi's own: in order, every occurrence applied.
  for (const p of parsed.params) {
    const is = (name: string): boolean => paramEq(p.name, name);
    if (is('mitigations')) out.cpuMitigations = oneOf(p, ['off', 'auto', 'auto,nosmt'] as const);
    else if (is('nosmt')) {
      // smt_cmdline_disable(): cpu_smt_disable(str && !strcmp(str, "force"))
      if (p.value !== null && p.value !== 'force') throw new CmdlineError(p.name, `${show(p)}: expected nosmt or nosmt=force`);
      if (p.value === 'force') out.nosmt = 'force';
      else if (out.nosmt === 'no') out.nosmt = 'yes';
    } else if (is('l1tf')) out.l1tf = oneOf(p, ['full', 'full,force', 'flush', 'flush,nosmt', 'flush,nowarn', 'off'] as const);
    else if (is('mds')) out.mds = oneOf(p, VERW);
    else if (is('tsx_async_abort')) out.tsxAsyncAbort = oneOf(p, VERW);
    else if (is('mmio_stale_data')) out.mmioStaleData = oneOf(p, VERW);
    else if (is('reg_file_data_sampling')) out.regFileDataSampling = oneOf(p, ['on', 'off'] as const);
    else if (is('nospectre_v1')) out.nospectreV1 = true;
    else if (is('spectre_v1')) {
      throw new CmdlineError(p.name, `${show(p)}: Linux 6.1 has no spectre_v1= parameter (use nospectre_v1 to turn the mitigation off)`);
    } else if (is('l1d_flush')) {
      // l1d_flush_parse_cmdline(): only "on" means anything
      out.l1dFlush = oneOf(p, ['on', 'off'] as const) === 'on';
    } else if (is('kvm-intel.vmentry_l1d_flush')) {
      // vmentry_l1d_flush_parse(): the for_parse entries of vmentry_l1d_param[]
      out.kvmIntel.vmentryL1dFlush = oneOf(p, ['auto', 'never', 'cond', 'always'] as const);
    } else if (is('kvm-intel.ept')) out.kvmIntel.ept = kstrtobool(p);
    else if (is('asi')) out.asi = oneOf(p, ASI_DESIGNS);
    else if (is('sched_core')) out.schedCore = oneOf(p, ['0', '1'] as const) === '1';
    else if (is('asi_highmap_tail')) out.highmapTail = oneOf(p, ['keep', 'unmap'] as const);
    else if (is('retbleed')) {
      // retbleed_parse_cmdline(): "off", "auto", "unret", "ibpb" and "nosmt", comma-separated, the last mode wins
      if (p.value === null) throw new CmdlineError(p.name, 'retbleed needs a value (off, auto, unret, ibpb, nosmt)');
      for (const o of p.value.split(',')) {
        if (o === 'nosmt') continue; // retbleed_nosmt: with STIBP (every modelled part has it) it disables nothing
        out.retbleed = oneOf({ ...p, value: o }, ['off', 'auto', 'unret', 'ibpb'] as const);
      }
    } else if (is('spec_rstack_overflow')) out.srso = oneOf(p, ['off', 'microcode', 'safe-ret', 'ibpb', 'ibpb-vmexit'] as const);
    else if (is('nopcid')) {
      // x86_nopcid_setup(): "nopcid doesn't accept parameters" (returns -EINVAL, the feature stays)
      if (p.value !== null) throw new CmdlineError(p.name, `${show(p)}: nopcid takes no value`);
      out.nopcid = true;
    }
  }

  // cmdline_find_option()/_bool(): exact names over the whole line, the last instance.
  for (const p of allTokens(parsed)) {
    if (p.name === 'pti') {
      if (p.value === null) continue; // "pti" without '=' is not the option "pti=" (st_wordcmp needs '=')
      out.pti = oneOf(p, ['on', 'off', 'auto'] as const);
    } else if (p.name === 'nopti' && p.value === null) out.nopti = true;
    else if (p.name === 'no5lvl' && p.value === null) out.no5lvl = true; // the bare word only, as the boot code looks for it
    else if (p.name === 'tsx' && p.value !== null) out.tsx = oneOf(p, ['on', 'off', 'auto'] as const);
    else if (p.name === 'clearcpuid' && p.value !== null) {
      // "clearcpuid" without '=' is not the option; an empty value as the last instance clears nothing (arglen <= 0)
      out.clearCpuid = p.value === '' ? [] : p.value.split(',').map((name) => oneOf({ ...p, value: name }, CLEARABLE_FEATURES));
    }
  }
  return out;
}
