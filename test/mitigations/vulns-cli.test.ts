/**
 * `kasi vulns` end to end, as a user runs it: golden text for the QEMU capture (its
 * vulnerabilities.txt), a known Skylake-SP answer, JSON, and the bad-input contract — exit 2
 * and ONE line on stderr naming the option and the problem.
 */
import { expectInputError, kasiRun, type CliResult } from '../helpers/kasi-cli.ts';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const kasi = (...args: string[]): Promise<CliResult> => kasiRun(['vulns', ...args]);

describe('kasi vulns', () => {
  it('qemu-max with the capture\'s command line prints the capture\'s lines for the modelled files', async () => {
    const cap = join(ROOT, 'test/fixtures/captures/la48-pti-nokaslr');
    const r = await kasi('--cpu', 'qemu-max', '--cmdline', readFileSync(join(cap, 'cmdline.txt'), 'latin1').trim());
    expect(r.status).toBe(0);
    const truth = new Set(readFileSync(join(cap, 'vulnerabilities.txt'), 'utf8').trimEnd().split('\n'));
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(truth.has(l), l).toBe(true);
  });

  it('Skylake-SP defaults on a KVM host, and --no-kvm', async () => {
    const r = await kasi('--cpu', 'skylake-sp');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe([
      'l1tf: Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT vulnerable',
      'mds: Mitigation: Clear CPU buffers; SMT vulnerable',
      'meltdown: Mitigation: PTI',
      'spectre_v1: Mitigation: usercopy/swapgs barriers and __user pointer sanitization',
      'tsx_async_abort: Mitigation: Clear CPU buffers; SMT vulnerable',
      '',
    ].join('\n'));
    expect((await kasi('--cpu', 'skylake-sp', '--kvm')).stdout).toBe(r.stdout);
    expect((await kasi('--cpu', 'skylake-sp', '--no-kvm')).stdout).toMatch(/^l1tf: Mitigation: PTE Inversion\n/);
  });

  it('--json carries the files and the resolved state', async () => {
    const r = await kasi('--cpu', 'cascade-lake', '--cmdline', 'nosmt tsx=on asi=kvm', '--json');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.vulnerabilities.tsx_async_abort).toBe('Mitigation: Clear CPU buffers; SMT disabled');
    expect(j.state).toMatchObject({ smtControl: 'off', tsxEnabled: true, asi: 'kvm' });
    expect(j.bugs).toContain('taa');
  });

  it('a bad profile name: exit 2, one line', async () => {
    expectInputError(await kasi('--cpu', 'pentium4'), null, /^kasi: --cpu: unknown CPU profile "pentium4" \(expected one of skylake-sp, .*qemu-max\)$/);
  });

  it('a bad command-line value: exit 2, one line naming the parameter', async () => {
    expectInputError(await kasi('--cpu', 'skylake-sp', '--cmdline', 'quiet l1tf=sometimes'), null, /^kasi: --cmdline: l1tf=sometimes: unknown value "sometimes" \(expected one of full, full,force, flush, flush,nosmt, flush,nowarn, off\)$/);
  });

  it('no --cpu: exit 2, one line', async () => {
    expectInputError(await kasi(), null, /^kasi: --cpu: required/);
  });
});
