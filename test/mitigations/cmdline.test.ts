/**
 * Reading mitigation parameters off a kernel command line. Truth: the parameter grammar in
 * Documentation/admin-guide/kernel-parameters.txt and the hw-vuln docs, and how each is
 * read (early_param via parse_args, cmdline_find_option, module parameters), as the
 * kernel sources cited in src/mitigations/cmdline.ts do it.
 */
import { describe, expect, it } from 'vitest';
import { CmdlineError, parseMitigationCmdline } from '../../src/mitigations/cmdline.ts';

describe('defaults', () => {
  it('an empty command line is every kernel default', () => {
    const c = parseMitigationCmdline('');
    expect(c).toMatchObject({
      cpuMitigations: 'auto', nosmt: 'no', pti: null, nopti: false, l1tf: null, mds: null, tsxAsyncAbort: null,
      tsx: null, nospectreV1: false, kvmIntel: { vmentryL1dFlush: 'auto', ept: true }, asi: 'off', schedCore: false, highmapTail: 'keep',
    });
  });

  it('ignores parameters that are not about mitigations (the captures\' command line)', () => {
    const c = parseMitigationCmdline('console=ttyS0 pti=on panic=-1 nokaslr');
    expect(c.pti).toBe('on');
    expect(c.cpuMitigations).toBe('auto');
  });
});

describe('each parameter', () => {
  it.each([
    ['mitigations=off', { cpuMitigations: 'off' }],
    ['mitigations=auto,nosmt', { cpuMitigations: 'auto,nosmt' }],
    ['nosmt', { nosmt: 'yes' }],
    ['nosmt=force', { nosmt: 'force' }],
    ['nopti', { nopti: true }],
    ['pti=auto', { pti: 'auto' }],
    ['l1tf=full,force', { l1tf: 'full,force' }],
    ['l1tf=flush,nowarn', { l1tf: 'flush,nowarn' }],
    ['mds=full,nosmt', { mds: 'full,nosmt' }],
    ['tsx_async_abort=off', { tsxAsyncAbort: 'off' }],
    ['mmio_stale_data=full,nosmt', { mmioStaleData: 'full,nosmt' }],
    ['tsx=auto', { tsx: 'auto' }],
    ['nospectre_v1', { nospectreV1: true }],
    ['l1d_flush=on', { l1dFlush: true }],
    ['kvm-intel.vmentry_l1d_flush=always', { kvmIntel: { vmentryL1dFlush: 'always', ept: true } }],
    ['kvm_intel.ept=0', { kvmIntel: { vmentryL1dFlush: 'auto', ept: false } }],
    ['kvm-intel.ept=N', { kvmIntel: { vmentryL1dFlush: 'auto', ept: false } }],
    ['kvm-intel.ept=off', { kvmIntel: { vmentryL1dFlush: 'auto', ept: false } }],
    ['kvm-intel.ept=0 kvm-intel.ept=Y', { kvmIntel: { vmentryL1dFlush: 'auto', ept: true } }],
    ['kvm-intel.ept', { kvmIntel: { vmentryL1dFlush: 'auto', ept: true } }], // param_set_bool: no value = true
    ['asi=kvm sched_core=1', { asi: 'kvm', schedCore: true }],
    ['asi=google asi_highmap_tail=unmap', { asi: 'google', highmapTail: 'unmap' }],
    ['asi_highmap_tail=unmap asi-highmap-tail=keep', { highmapTail: 'keep' }], // early param: last wins, '-' == '_'
  ])('%s', (text, want) => {
    expect(parseMitigationCmdline(text)).toMatchObject(want);
  });
});

describe('how the kernel reads them', () => {
  it('early params: every occurrence applies, so the last value wins', () => {
    expect(parseMitigationCmdline('mds=off mds=full').mds).toBe('full');
    expect(parseMitigationCmdline('mitigations=off mitigations=auto').cpuMitigations).toBe('auto');
  });

  it('early params: "-" and "_" are the same in names (parameq)', () => {
    expect(parseMitigationCmdline('tsx-async-abort=off').tsxAsyncAbort).toBe('off');
    expect(parseMitigationCmdline('nospectre-v1').nospectreV1).toBe(true);
  });

  it('nosmt=force cannot be weakened by a later nosmt (cpu_smt_disable needs cpu_smt_possible())', () => {
    expect(parseMitigationCmdline('nosmt=force nosmt').nosmt).toBe('force');
    expect(parseMitigationCmdline('nosmt nosmt=force').nosmt).toBe('force');
  });

  it('early params stop at "--"; cmdline_find_option() scans the whole line with exact names', () => {
    const c = parseMitigationCmdline('mds=full -- mds=off pti=off');
    expect(c.mds).toBe('full'); // parse_args() hands the rest to init
    expect(c.pti).toBe('off'); // arch/x86/lib/cmdline.c sees it
    expect(parseMitigationCmdline('pti=off pti=on').pti).toBe('on'); // "returns the last instance"
    expect(parseMitigationCmdline('no-pti').nopti).toBe(false); // no parameq for find_option_bool
  });

  it('quoted values are unquoted by next_arg()', () => {
    expect(parseMitigationCmdline('l1tf="full,force"').l1tf).toBe('full,force');
  });
});

describe('bad values: a clear error naming the parameter', () => {
  it.each([
    ['mds=bogus', 'mds', /mds=bogus: unknown value "bogus" \(expected one of off, full, full,nosmt\)/],
    ['l1tf=flush,force', 'l1tf', /l1tf=flush,force: unknown value/],
    ['l1tf', 'l1tf', /l1tf needs a value/],
    ['mitigations=on', 'mitigations', /expected one of off, auto, auto,nosmt/],
    ['nosmt=yes', 'nosmt', /expected nosmt or nosmt=force/],
    ['pti=maybe', 'pti', /pti=maybe/],
    ['tsx=enabled', 'tsx', /tsx=enabled/],
    ['kvm-intel.vmentry_l1d_flush=sometimes', 'kvm-intel.vmentry_l1d_flush', /expected one of auto, never, cond, always/],
    ['kvm-intel.ept=maybe', 'kvm-intel.ept', /not a boolean/],
    ['spectre_v1=off', 'spectre_v1', /no spectre_v1= parameter/],
    ['asi=magic', 'asi', /expected one of off, kvm, sci, netns, google/],
    ['sched_core=yes', 'sched_core', /expected one of 0, 1/],
    ['asi_highmap_tail=drop', 'asi_highmap_tail', /expected one of keep, unmap/],
  ])('%s', (text, param, msg) => {
    let err: unknown;
    try {
      parseMitigationCmdline(`console=ttyS0 ${text}`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CmdlineError);
    expect((err as CmdlineError).param).toBe(param);
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).not.toContain('\n');
  });
});
