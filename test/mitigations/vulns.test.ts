/**
 * The sysfs vulnerabilities strings, as a table: each expected string is written out by hand
 * and carries the sentence of the kernel documentation (hw-vuln/*.rst, kernel-parameters.txt)
 * or the line of bugs.c that makes it so. Plus the one capture of a real system: the QEMU
 * boots' vulnerabilities.txt.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseMitigationCmdline } from '../../src/mitigations/cmdline.ts';
import { selectMitigations, type MitigationState, type SelectOptions } from '../../src/mitigations/select.ts';
import { vulnerabilities, VULN_FILES, type VulnFile } from '../../src/mitigations/vulns.ts';
import { buildProfile, getProfile, PROFILE_SPECS, type CpuProfile, type ProfileSpec } from '../../src/uarch/profiles.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const PTE = 'Mitigation: PTE Inversion';
const CLEAR = 'Mitigation: Clear CPU buffers';
const V1_ON = 'Mitigation: usercopy/swapgs barriers and __user pointer sanitization';
const V1_OFF = 'Vulnerable: __user pointer sanitization and usercopy barriers only; no swapgs barriers';
const NA = 'Not affected';

/** Test-only variants of the shipped profiles. */
function variant(base: string, name: string, edit: (s: ProfileSpec) => Partial<ProfileSpec>): CpuProfile {
  const s = PROFILE_SPECS.find((p) => p.name === base)!;
  return buildProfile({ ...s, name, ...edit(s) });
}
const SKX_NO_UCODE = variant('skylake-sp', 'skx-old-microcode', (s) => ({
  features: { ...s.features, mdClear: [false, 'test'], flushL1d: [false, 'test'] },
}));
const SKX_GUEST = variant('skylake-sp', 'skx-guest', (s) => ({ features: { ...s.features, hypervisor: [true, 'test'], vmx: [false, 'test'] } }));
const KNL = variant('skylake-sp', 'xeon-phi-knl', (s) => ({
  model: [0x57, 'intel-family.h XEON_PHI_KNL'], features: { ...s.features, rtm: [false, 'test'] },
}));
const CLX_OLD_UCODE = variant('cascade-lake', 'clx-no-tsx-ctrl', () => ({
  archCapabilities: [['RDCL_NO', 'IBRS_ALL', 'MDS_NO'], 'test: before the TSX_CTRL microcode'],
}));

interface Case {
  cpu: string | CpuProfile;
  cmdline: string;
  opts?: SelectOptions;
  want: Partial<Record<VulnFile, string>>;
  state?: Partial<MitigationState>;
  why: string;
}

const CASES: Case[] = [
  // ---- Skylake-SP: affected by Meltdown, L1TF, MDS, TAA
  { cpu: 'skylake-sp', cmdline: '', why: 'l1tf.rst "The kernel defaults to conditional mode on affected processors" and "does not by default enforce the disabling of SMT"; mds.rst "Not specifying this option is equivalent to mds=full"; tsx_async_abort.rst "For platforms without TSX control (MSR_IA32_ARCH_CAPABILITIES.MDS_NO=0) tsx command line argument has no effect" and table row "0 1 0 MDS and TAA mitigated via VERW"; spectre.rst; bugs.c cpu_show_common "Mitigation: PTI"',
    want: { l1tf: `${PTE}; VMX: conditional cache flushes, SMT vulnerable`, mds: `${CLEAR}; SMT vulnerable`, meltdown: 'Mitigation: PTI', spectre_v1: V1_ON, tsx_async_abort: `${CLEAR}; SMT vulnerable` },
    state: { smtControl: 'on', vmentryL1dFlush: 'cond', clearCpuBuffers: true } },
  { cpu: 'skylake-sp', cmdline: '', opts: { kvm: false }, why: 'l1tf.rst "If KVM/VMX is enabled and the processor is vulnerable then the following information is appended"',
    want: { l1tf: PTE } },
  { cpu: 'skylake-sp', cmdline: 'l1tf=full', why: 'l1tf.rst "full: Disables SMT and enables all mitigations in the hypervisors, i.e. unconditional L1D flushing"',
    want: { l1tf: `${PTE}; VMX: cache flushes, SMT disabled`, mds: `${CLEAR}; SMT disabled`, tsx_async_abort: `${CLEAR}; SMT disabled` }, state: { smtControl: 'off' } },
  { cpu: 'skylake-sp', cmdline: 'l1tf=full,force kvm-intel.vmentry_l1d_flush=never', why: 'l1tf.rst "If l1tf=full,force is given on the kernel command line, then always is enforced and the kvm-intel.vmentry_l1d_flush module parameter is ignored"; "Implies the nosmt=force command line option"',
    want: { l1tf: `${PTE}; VMX: cache flushes, SMT disabled` }, state: { smtControl: 'forceoff' } },
  { cpu: 'skylake-sp', cmdline: 'l1tf=flush,nosmt', why: 'l1tf.rst "flush,nosmt: Disables SMT and enables the default hypervisor mitigation, i.e. conditional L1D flushing"',
    want: { l1tf: `${PTE}; VMX: conditional cache flushes, SMT disabled` } },
  { cpu: 'skylake-sp', cmdline: 'l1tf=off', why: 'l1tf.rst "off: Disables hypervisor mitigations"; PTE inversion "is permanently enabled"; bugs.c l1tf_show_state: NEVER with SMT active prints "%s; VMX: %s"',
    want: { l1tf: `${PTE}; VMX: vulnerable` }, state: { vmentryL1dFlush: 'never', l1tfPteInversion: true } },
  { cpu: 'skylake-sp', cmdline: 'l1tf=off nosmt', why: 'bugs.c l1tf_show_state: "%s; VMX: %s, SMT %s" once SMT is off',
    want: { l1tf: `${PTE}; VMX: vulnerable, SMT disabled` } },
  { cpu: 'skylake-sp', cmdline: 'kvm-intel.vmentry_l1d_flush=always', why: 'l1tf.rst "always: L1D cache flush on every VMENTER"',
    want: { l1tf: `${PTE}; VMX: cache flushes, SMT vulnerable` } },
  { cpu: 'skylake-sp', cmdline: 'kvm-intel.ept=0', why: 'l1tf.rst "Disabling EPT for virtual machines provides full mitigation for L1TF even with SMT enabled"; bugs.c prints "%s; VMX: %s" for EPT_DISABLED',
    want: { l1tf: `${PTE}; VMX: EPT disabled` } },
  { cpu: 'skylake-sp', cmdline: 'nosmt', why: 'l1tf.rst "nosmt makes sure that from each physical core only one - the so called primary (hyper) thread is activated"; mds.rst "SMT disabled: SMT is disabled"',
    want: { l1tf: `${PTE}; VMX: conditional cache flushes, SMT disabled`, mds: `${CLEAR}; SMT disabled` }, state: { smtControl: 'off', smtActive: false } },
  { cpu: 'skylake-sp', cmdline: 'nosmt=force', why: 'l1tf.rst "nosmt=force: Has the same effect as nosmt but it does not allow to undo the SMT disable"',
    want: { mds: `${CLEAR}; SMT disabled` }, state: { smtControl: 'forceoff' } },
  { cpu: 'skylake-sp', cmdline: '', opts: { threadsPerCore: 1 }, why: 'l1tf.rst smt/control "notsupported: The processor does not support SMT"',
    want: { l1tf: `${PTE}; VMX: conditional cache flushes, SMT disabled` }, state: { smtControl: 'notsupported' } },
  { cpu: 'skylake-sp', cmdline: 'mitigations=off', why: 'kernel-parameters.txt mitigations=off "Disable all optional CPU mitigations" (equivalent to nopti, nospectre_v1, l1tf=off, mds=off, tsx_async_abort=off ...); mds.rst "Vulnerable: The processor is vulnerable, but no mitigation enabled"',
    want: { l1tf: `${PTE}; VMX: vulnerable`, mds: 'Vulnerable; SMT vulnerable', meltdown: 'Vulnerable', spectre_v1: V1_OFF, tsx_async_abort: 'Vulnerable' },
    state: { pti: false, clearCpuBuffers: false } },
  { cpu: 'skylake-sp', cmdline: 'mitigations=auto,nosmt', why: 'kernel-parameters.txt mitigations=auto,nosmt "Mitigate all CPU vulnerabilities, disabling SMT if needed"',
    want: { l1tf: `${PTE}; VMX: conditional cache flushes, SMT disabled`, mds: `${CLEAR}; SMT disabled` }, state: { smtControl: 'off' } },
  { cpu: 'skylake-sp', cmdline: 'mds=off', why: 'mds.rst "specifying just mds=off without an accompanying tsx_async_abort=off will have no effect as the same mitigation is used for both vulnerabilities"',
    want: { mds: `${CLEAR}; SMT vulnerable`, tsx_async_abort: `${CLEAR}; SMT vulnerable` } },
  { cpu: 'skylake-sp', cmdline: 'mds=off tsx_async_abort=off', why: 'bugs.c mmio_select_mitigation "Enable CPU buffer clear mitigation for host and VMM, if also affected by MDS or TAA" then md_clear_update_mitigation "X86_FEATURE_CLEAR_CPU_BUF is now enabled. Update MDS, TAA and MMIO Stale Data mitigation": Skylake-SP also has MMIO stale data',
    want: { mds: `${CLEAR}; SMT vulnerable`, tsx_async_abort: `${CLEAR}; SMT vulnerable` } },
  { cpu: 'skylake-sp', cmdline: 'mds=off tsx_async_abort=off mmio_stale_data=off', why: 'bugs.c: with all three off nothing sets X86_FEATURE_CLEAR_CPU_BUF; mds_strings[OFF] "Vulnerable", tsx_async_abort_show_state prints OFF without an SMT suffix',
    want: { mds: 'Vulnerable; SMT vulnerable', tsx_async_abort: 'Vulnerable' } },
  { cpu: 'skylake-sp', cmdline: 'mds=full,nosmt', why: 'mds.rst "full,nosmt: The same as mds=full, with SMT disabled on vulnerable CPUs"',
    want: { mds: `${CLEAR}; SMT disabled` }, state: { smtControl: 'off' } },
  { cpu: 'skylake-sp', cmdline: 'nopti', why: 'kernel-parameters.txt nopti "Equivalent to pti=off"; bugs.c cpu_show_common falls through to "Vulnerable"',
    want: { meltdown: 'Vulnerable' }, state: { pti: false } },
  { cpu: 'skylake-sp', cmdline: 'mitigations=off pti=on', why: 'mm/pti.c pti_check_boottime_disable(): pti= is read before nopti / cpu_mitigations_off()',
    want: { meltdown: 'Mitigation: PTI', spectre_v1: V1_OFF } },
  { cpu: 'skylake-sp', cmdline: 'nospectre_v1', why: 'spectre.rst "Vulnerable: __user pointer sanitization and usercopy barriers only; no swapgs barriers: The swapgs protections are disabled"',
    want: { spectre_v1: V1_OFF } },
  { cpu: 'skylake-sp', cmdline: '', opts: { ramEnd: 2 ** 45 + 4096 }, why: 'bugs.c l1tf_select_mitigation "System has more than MAX_PA/2 memory. L1TF mitigation not effective." (no PTEINV, so cpu_show_common says Vulnerable)',
    want: { l1tf: 'Vulnerable' } },
  { cpu: 'skylake-sp', cmdline: 'l1tf=off', opts: { ramEnd: 2 ** 45 + 4096 }, why: 'l1tf.rst "off ... also drops the swap size and available RAM limit restrictions"',
    want: { l1tf: `${PTE}; VMX: vulnerable` } },
  { cpu: SKX_NO_UCODE, cmdline: '', why: 'mds.rst "Vulnerable: Clear CPU buffers attempted, no microcode: The processor is vulnerable but microcode is not updated"; tsx_async_abort.rst same string',
    want: { mds: 'Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable', tsx_async_abort: 'Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable' } },
  { cpu: SKX_GUEST, cmdline: '', why: 'mds.rst "SMT Host state unknown: Kernel runs in a VM, Host SMT state unknown"; no VMX in the guest, so no VMX part',
    want: { mds: `${CLEAR}; SMT Host state unknown`, tsx_async_abort: `${CLEAR}; SMT Host state unknown`, l1tf: PTE } },
  { cpu: KNL, cmdline: '', why: 'mds.rst "SMT mitigated: SMT is enabled and mitigated"; "For CPUs which are only affected by MSBDS the user space, guest and idle transition mitigations are sufficient"; l1tf.rst: not present on "The Intel XEON PHI family"',
    want: { mds: `${CLEAR}; SMT mitigated`, l1tf: NA, meltdown: 'Mitigation: PTI' }, state: { idleClear: true } },
  { cpu: KNL, cmdline: 'mds=off', why: 'bugs.c mds_show_state: MSBDS_ONLY with MDS_MITIGATION_OFF prints "SMT vulnerable"',
    want: { mds: 'Vulnerable; SMT vulnerable' } },

  // ---- Cascade Lake: MDS_NO, RDCL_NO, TAA with TSX, TSX_CTRL
  { cpu: 'cascade-lake', cmdline: '', why: 'tsx_async_abort.rst "The kernel\'s default action for vulnerable processors is: Deploy TSX disable mitigation (tsx_async_abort=full tsx=off)"; "Not specifying this option is equivalent to tsx=off" (CONFIG_X86_INTEL_TSX_MODE_OFF in the captures\' config)',
    want: { l1tf: NA, mds: NA, meltdown: NA, spectre_v1: V1_ON, tsx_async_abort: 'Mitigation: TSX disabled' }, state: { tsxEnabled: false } },
  { cpu: 'cascade-lake', cmdline: 'tsx=on', why: 'tsx_async_abort.rst "tsx=on tsx_async_abort=full: The system will use VERW to clear CPU buffers. Cross-thread attacks are still possible on SMT machines."',
    want: { tsx_async_abort: `${CLEAR}; SMT vulnerable`, mds: NA } },
  { cpu: 'cascade-lake', cmdline: 'tsx=on tsx_async_abort=full,nosmt', why: 'tsx_async_abort.rst "tsx=on tsx_async_abort=full,nosmt: As above, cross-thread attacks on SMT mitigated."',
    want: { tsx_async_abort: `${CLEAR}; SMT disabled` }, state: { smtControl: 'off' } },
  { cpu: 'cascade-lake', cmdline: 'tsx=on tsx_async_abort=off mmio_stale_data=off', why: 'tsx_async_abort.rst "tsx=on tsx_async_abort=off: The system is vulnerable."',
    want: { tsx_async_abort: 'Vulnerable' } },
  { cpu: 'cascade-lake', cmdline: 'tsx=on tsx_async_abort=off', why: 'bugs.c 6.1.y mmio_select_mitigation: TAA && RTM sets X86_FEATURE_CLEAR_CPU_BUF, and md_clear_update_mitigation re-enables TAA (the tsx_async_abort.rst table predates MMIO stale data)',
    want: { tsx_async_abort: `${CLEAR}; SMT vulnerable` } },
  { cpu: 'cascade-lake', cmdline: 'tsx=auto', why: 'tsx_async_abort.rst "auto: Disables TSX if X86_BUG_TAA is present, otherwise enables TSX"',
    want: { tsx_async_abort: 'Mitigation: TSX disabled' } },
  { cpu: 'cascade-lake', cmdline: 'mitigations=off', why: 'bugs.c taa_select_mitigation checks "TSX previously disabled by tsx=off" before cpu_mitigations_off()',
    want: { tsx_async_abort: 'Mitigation: TSX disabled', spectre_v1: V1_OFF } },
  { cpu: 'cascade-lake', cmdline: 'mitigations=auto,nosmt', why: 'bugs.c mmio_select_mitigation "if (mmio_nosmt || cpu_mitigations_auto_nosmt()) cpu_smt_disable(false)": Cascade Lake has MMIO stale data',
    want: { tsx_async_abort: 'Mitigation: TSX disabled' }, state: { smtControl: 'off', mmio: 'verw' } },
  { cpu: CLX_OLD_UCODE, cmdline: 'tsx=off', why: 'tsx_async_abort.rst table "MDS_NO=1 MD_CLEAR=1 TSX_CTRL_MSR=0: MDS fixed, TAA vulnerable if TSX enabled because MD_CLEAR has no meaning and VERW is not guaranteed to clear buffers"; tsx= has no effect without TSX_CTRL',
    want: { tsx_async_abort: 'Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable' } },

  // ---- CPUs not affected
  ...['ice-lake-sp', 'sapphire-rapids', 'zen3', 'zen4'].map((cpu): Case => ({
    cpu, cmdline: '', why: 'l1tf.rst/mds.rst: not present with RDCL_NO / MDS_NO or on "Processors from AMD"; tsx_async_abort.rst: TAA_NO or no TSX',
    want: { l1tf: NA, mds: NA, meltdown: NA, spectre_v1: V1_ON, tsx_async_abort: NA },
  })),
  { cpu: 'zen3', cmdline: 'pti=on l1tf=full mds=full', why: 'bugs.c cpu_show_common: "if (!boot_cpu_has_bug(bug)) return Not affected", whatever the mitigation (the QEMU captures booted pti=on too)',
    want: { meltdown: NA, l1tf: NA, mds: NA }, state: { pti: true, smtControl: 'on' } },
];

describe('sysfs vulnerabilities table (6.1 bugs.c strings)', () => {
  it.each(CASES.map((c) => [`${typeof c.cpu === 'string' ? c.cpu : c.cpu.name} [${c.cmdline}]${c.opts ? ' ' + JSON.stringify(c.opts) : ''}`, c]))('%s', (_n, c) => {
    expect(c.why.length).toBeGreaterThan(20);
    const profile = typeof c.cpu === 'string' ? getProfile(c.cpu) : c.cpu;
    const state = selectMitigations(profile, parseMitigationCmdline(c.cmdline), c.opts);
    const got = vulnerabilities(state);
    for (const [file, want] of Object.entries(c.want)) expect(got[file as VulnFile], `${file}: ${c.why}`).toBe(want);
    if (c.state) expect(state).toMatchObject(c.state);
  });
});

describe('the captured QEMU boots', () => {
  for (const cap of ['la48-pti-nokaslr', 'la57-pti-nokaslr']) {
    it(`${cap}: qemu-max with the captured command line gives the captured vulnerabilities.txt`, () => {
      const dir = join(ROOT, 'test/fixtures/captures', cap);
      const truth = new Map(readFileSync(join(dir, 'vulnerabilities.txt'), 'utf8').trimEnd().split('\n').map((l) => {
        const i = l.indexOf(': ');
        return [l.slice(0, i), l.slice(i + 2)] as [string, string];
      }));
      const cmdline = readFileSync(join(dir, 'cmdline.txt'), 'latin1').trim();
      const got = vulnerabilities(selectMitigations(getProfile('qemu-max'), parseMitigationCmdline(cmdline)));
      let compared = 0;
      for (const f of VULN_FILES) {
        if (!truth.has(f)) continue;
        expect(got[f], f).toBe(truth.get(f));
        compared++;
      }
      expect(compared).toBe(VULN_FILES.length);
    });
  }
});
