/**
 * What /sys/devices/system/cpu/vulnerabilities/* says for a resolved mitigation state: the
 * show functions of arch/x86/kernel/cpu/bugs.c (6.1.y) with their exact strings —
 * cpu_show_common(), l1tf_show_state(), mds_show_state(), tsx_async_abort_show_state() and
 * the tables l1tf_vmx_states[], mds_strings[], taa_strings[], spectre_v1_strings[].
 */
import type { MitigationState, VmxL1dFlush } from './select.ts';

/** The files modelled, in the order `ls` lists them. */
export const VULN_FILES = ['l1tf', 'mds', 'meltdown', 'spectre_v1', 'tsx_async_abort'] as const;
export type VulnFile = (typeof VULN_FILES)[number];

const L1TF_DEFAULT_MSG = 'Mitigation: PTE Inversion';

/** l1tf_vmx_states[] */
const L1TF_VMX_STATES: Record<VmxL1dFlush, string> = {
  auto: 'auto',
  never: 'vulnerable',
  cond: 'conditional cache flushes',
  always: 'cache flushes',
  'ept-disabled': 'EPT disabled',
  'not-required': 'flush not necessary',
};

/** mds_strings[] */
const MDS_STRINGS: Record<MitigationState['mds'], string> = {
  off: 'Vulnerable',
  full: 'Mitigation: Clear CPU buffers',
  vmwerv: 'Vulnerable: Clear CPU buffers attempted, no microcode',
};

/** taa_strings[] */
const TAA_STRINGS: Record<MitigationState['taa'], string> = {
  off: 'Vulnerable',
  'ucode-needed': 'Vulnerable: Clear CPU buffers attempted, no microcode',
  verw: 'Mitigation: Clear CPU buffers',
  'tsx-disabled': 'Mitigation: TSX disabled',
};

/** spectre_v1_strings[] */
const SPECTRE_V1_STRINGS: Record<MitigationState['spectreV1'], string> = {
  none: 'Vulnerable: __user pointer sanitization and usercopy barriers only; no swapgs barriers',
  auto: 'Mitigation: usercopy/swapgs barriers and __user pointer sanitization',
};

/** l1tf_show_state() as built with CONFIG_KVM_INTEL. */
function l1tfShowState(s: MitigationState): string {
  const vmx = s.vmentryL1dFlush;
  if (vmx === 'auto') return L1TF_DEFAULT_MSG;
  if (vmx === 'ept-disabled' || (vmx === 'never' && s.smtActive)) return `${L1TF_DEFAULT_MSG}; VMX: ${L1TF_VMX_STATES[vmx]}`;
  return `${L1TF_DEFAULT_MSG}; VMX: ${L1TF_VMX_STATES[vmx]}, SMT ${s.smtActive ? 'vulnerable' : 'disabled'}`;
}

function mdsShowState(s: MitigationState): string {
  if (s.hypervisor) return `${MDS_STRINGS[s.mds]}; SMT Host state unknown`;
  if (s.bugs.has('msbds_only')) {
    return `${MDS_STRINGS[s.mds]}; SMT ${s.mds === 'off' ? 'vulnerable' : s.smtActive ? 'mitigated' : 'disabled'}`;
  }
  return `${MDS_STRINGS[s.mds]}; SMT ${s.smtActive ? 'vulnerable' : 'disabled'}`;
}

function tsxAsyncAbortShowState(s: MitigationState): string {
  if (s.taa === 'tsx-disabled' || s.taa === 'off') return TAA_STRINGS[s.taa];
  if (s.hypervisor) return `${TAA_STRINGS[s.taa]}; SMT Host state unknown`;
  return `${TAA_STRINGS[s.taa]}; SMT ${s.smtActive ? 'vulnerable' : 'disabled'}`;
}

/** cpu_show_common() for one file (without the trailing newline sysfs adds). */
export function vulnerability(s: MitigationState, file: VulnFile): string {
  const bug = file === 'meltdown' ? 'cpu_meltdown' : file === 'tsx_async_abort' ? 'taa' : file;
  if (!s.bugs.has(bug)) return 'Not affected';
  switch (file) {
    case 'meltdown':
      if (s.pti) return 'Mitigation: PTI';
      break;
    case 'spectre_v1':
      return SPECTRE_V1_STRINGS[s.spectreV1];
    case 'l1tf':
      if (s.l1tfPteInversion) return l1tfShowState(s);
      break;
    case 'mds':
      return mdsShowState(s);
    case 'tsx_async_abort':
      return tsxAsyncAbortShowState(s);
  }
  return 'Vulnerable';
}

/** Every modelled file, in `ls` order. */
export function vulnerabilities(s: MitigationState): Record<VulnFile, string> {
  const out = {} as Record<VulnFile, string>;
  for (const f of VULN_FILES) out[f] = vulnerability(s, f);
  return out;
}

/** `name: content` lines, the format of the captures' vulnerabilities.txt. */
export function formatVulnerabilities(s: MitigationState): string {
  return VULN_FILES.map((f) => `${f}: ${vulnerability(s, f)}\n`).join('');
}
