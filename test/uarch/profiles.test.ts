/**
 * CPU profiles and the bug set derived from them. Truth: the kernel documentation's lists of
 * affected and unaffected processors (quoted per case), and for qemu-max the captured
 * /proc/cpuinfo of the real Linux 6.1 boot (its `flags` and `bugs` lines).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildProfile, FEATURE_NAMES, getProfile, PROFILE_SPECS, PROFILES, type ProfileSpec } from '../../src/uarch/profiles.ts';
import { BUG_NAMES, deriveBugs, type CpuIdentity } from '../../src/uarch/vulnerability.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cpuinfo = (cap: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(ROOT, 'test/fixtures/captures', cap, 'cpuinfo.txt'), 'latin1').split('\n')) {
    const m = /^([^\t:]+?)\s*:\s?(.*)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
};
const spec = (name: string): ProfileSpec => PROFILE_SPECS.find((s) => s.name === name)!;
const bugs = (name: string): string[] => [...getProfile(name).bugs].sort();

describe('the bug set Linux derives, per profile', () => {
  it('Skylake-SP: Meltdown, L1TF, MDS (not MSBDS-only), TAA with TSX', () => {
    // l1tf.rst/mds.rst: "affects a wide range of Intel processors", not excluded; TAA: TSX with TAA_NO=0
    const b = getProfile('skylake-sp').bugs;
    for (const x of ['cpu_meltdown', 'l1tf', 'mds', 'taa', 'spectre_v1', 'spectre_v2', 'swapgs'] as const) expect(b.has(x), x).toBe(true);
    expect(b.has('msbds_only')).toBe(false);
  });

  it('Cascade Lake: no Meltdown/L1TF/MDS (RDCL_NO, MDS_NO) but TAA while it has TSX', () => {
    // tsx_async_abort.rst: "only affects Intel processors that support Intel TSX when the TAA_NO bit (bit 8) is 0"
    const b = getProfile('cascade-lake').bugs;
    for (const x of ['cpu_meltdown', 'l1tf', 'mds'] as const) expect(b.has(x), x).toBe(false);
    expect(b.has('taa')).toBe(true);
    // l1tf.rst: "Intel processors which have the ARCH_CAP_RDCL_NO bit set [...] not affected by the Meltdown vulnerability either"
  });

  it('a Cascade Lake without TSX (fused off, no TSX_CTRL) is not TAA-affected', () => {
    const s = spec('cascade-lake');
    const noTsx = buildProfile({
      ...s,
      name: 'cascade-lake-no-tsx',
      features: { ...s.features, rtm: [false, 'test variant'] },
      archCapabilities: [['RDCL_NO', 'IBRS_ALL', 'MDS_NO'], 'test variant'],
    });
    expect(noTsx.bugs.has('taa')).toBe(false);
  });

  it('Ice Lake-SP and Sapphire Rapids: none of Meltdown, L1TF, MDS, TAA', () => {
    for (const name of ['ice-lake-sp', 'sapphire-rapids']) {
      const b = getProfile(name).bugs;
      for (const x of ['cpu_meltdown', 'l1tf', 'mds', 'msbds_only', 'taa'] as const) expect(b.has(x), `${name} ${x}`).toBe(false);
    }
    expect(getProfile('ice-lake-sp').bugs.has('mmio_stale_data')).toBe(true); // blacklisted ICELAKE_X
    expect(getProfile('sapphire-rapids').bugs.has('mmio_stale_data')).toBe(false); // immune bits
  });

  it('Zen 3 and Zen 4: none of Meltdown, L1TF, MDS, TAA; Spectre v1/v2 yes', () => {
    // l1tf.rst and mds.rst: "not present on: Processors from AMD, Centaur and other non Intel vendors"
    for (const name of ['zen3', 'zen4']) {
      expect(bugs(name)).toEqual(['spec_store_bypass', 'spectre_v1', 'spectre_v2', 'srso']);
    }
    expect(getProfile('zen4').ibrsEnhanced).toBe(true); // AutoIBRS counts as eIBRS
  });

  it('qemu-max: exactly the cpu_set_bug_bits() bugs the captured kernel printed', () => {
    for (const cap of ['la48-pti-nokaslr', 'la57-pti-nokaslr']) {
      const printed = cpuinfo(cap).bugs.split(' ').filter((b) => (BUG_NAMES as readonly string[]).includes(b)).sort();
      expect(bugs('qemu-max'), cap).toEqual(printed);
    }
  });
});

describe('derivation rules on CPUs outside the profiles (kernel docs as truth)', () => {
  const base: CpuIdentity = {
    vendor: 'intel', family: 6, model: 0, stepping: 0, archCapabilities: 0, rtm: false, rdrand: true, rdseed: true,
    avx: true, hypervisor: false, autoIbrs: false, amdSsbNo: false, btcNo: false, srsoNo: false,
  };
  const d = (over: Partial<CpuIdentity>): Set<string> => deriveBugs({ ...base, ...over }).bugs;

  it('mds.rst: not present on "Some Atoms (Bonnell, Saltwell, Goldmont, GoldmontPlus)"', () => {
    for (const model of [0x1c, 0x36, 0x5c, 0x7a]) expect(d({ model }).has('mds'), model.toString(16)).toBe(false);
  });

  it('mds.rst: XEON PHI "is affected by MSBDS" only; l1tf.rst: not on Silvermont, Airmont, Xeon Phi', () => {
    const knl = d({ model: 0x57 });
    expect([knl.has('mds'), knl.has('msbds_only'), knl.has('l1tf'), knl.has('cpu_meltdown')]).toEqual([true, true, false, true]);
    for (const model of [0x37, 0x4c]) expect(d({ model }).has('l1tf')).toBe(false);
  });

  it('l1tf.rst: not on "Older processor models, where the CPU family is < 6"; RDCL_NO clears Meltdown and L1TF', () => {
    // (cpu_set_bug_bits() still sets itlb_multihit first: only NO_ITLB_MULTIHIT rows prevent it)
    expect([...d({ family: 5, model: 0x2 })]).toEqual(['itlb_multihit']);
    const rdcl = d({ model: 0x55, archCapabilities: 1 });
    expect([rdcl.has('cpu_meltdown'), rdcl.has('l1tf'), rdcl.has('mds')]).toEqual([false, false, true]);
  });

  it('the first matching blacklist row wins (Comet Lake-L stepping 0 has no GDS)', () => {
    expect(d({ model: 0xa6, stepping: 0 }).has('gds')).toBe(false);
    expect(d({ model: 0xa6, stepping: 1 }).has('gds')).toBe(true);
  });
});

describe('profile data', () => {
  it('every value carries a source; unpinned ones say "assumption"', () => {
    for (const p of PROFILES.values()) {
      const paths = ['vendor', 'family', 'model', 'stepping', 'l1d.sizeBytes', 'l1d.ways', 'lfbEntries', 'loadPorts',
        'storeBufferEntries', 'stlbEntries', 'stlbWays', 'smt', 'maxPhysBits', 'archCapabilities', ...FEATURE_NAMES.map((f) => `features.${f}`)];
      for (const path of paths) expect(p.sources[path], `${p.name} ${path}`).toMatch(/\S{3,}/);
    }
    expect(getProfile('skylake-sp').sources.lfbEntries).toMatch(/^assumption:/);
  });

  it('has the geometries the brief fixes: Skylake 32 KiB 8-way / 56-entry SB, Ice Lake 48 KiB 12-way', () => {
    expect([getProfile('skylake-sp').l1d, getProfile('skylake-sp').storeBufferEntries]).toEqual([{ sizeBytes: 32768, ways: 8 }, 56]);
    expect(getProfile('ice-lake-sp').l1d).toEqual({ sizeBytes: 49152, ways: 12 });
  });

  it('qemu-max features equal the flags of the captured /proc/cpuinfo', () => {
    const flags = new Set(cpuinfo('la57-pti-nokaslr').flags.split(' '));
    const info = cpuinfo('la48-pti-nokaslr');
    const p = getProfile('qemu-max');
    const flagOf: Record<string, string> = {
      pcid: 'pcid', invpcid: 'invpcid', la57: 'la57', rtm: 'rtm', flushL1d: 'flush_l1d', mdClear: 'md_clear', pku: 'pku',
      smep: 'smep', smap: 'smap', gbpages: 'pdpe1gb', archCapabilities: 'arch_capabilities', fsgsbase: 'fsgsbase',
      rdrand: 'rdrand', rdseed: 'rdseed', avx: 'avx', hypervisor: 'hypervisor', vmx: 'vmx', ept: 'ept', svm: 'svm',
      autoIbrs: 'auto_ibrs', amdSsbNo: 'amd_ssb_no', btcNo: 'btc_no', srsoNo: 'srso_no',
    };
    for (const f of FEATURE_NAMES) expect(p.features[f], f).toBe(flags.has(flagOf[f]));
    expect([p.vendor, p.family, p.model, p.stepping]).toEqual([info.vendor_id, +info['cpu family'], +info.model, +info.stepping]);
    expect(info['address sizes']).toMatch(new RegExp(`^${p.maxPhysBits} bits physical`));
    expect(p.smt).toBe(+info.siblings > +info['cpu cores']);
  });

  it('refuses ARCH_CAPABILITIES bits on a CPU without the MSR, and unknown names', () => {
    const s = spec('zen3');
    expect(() => buildProfile({ ...s, archCapabilities: [['MDS_NO'], 'x'] })).toThrow(/does not enumerate the MSR/);
    expect(() => getProfile('pentium')).toThrow(/unknown CPU profile "pentium" \(known: skylake-sp/);
  });
});
