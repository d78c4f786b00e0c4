/**
 * `kasi import`: the --json shape of issue 14 on the shared samples (in process), detection
 * said in the text, footprints and borrowed ones listed, and the bad-input contract through the
 * real binary — exit 2 and one stderr line `FILE:LINE: ...` for a traceback, a truncated gzip,
 * binary data, a file with no table, a bad KIND.
 */
import { kasiRun, ROOT } from '../helpers/kasi-cli.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { importReport } from '../../src/cli/commands/import.ts';

const SAMPLES = join(ROOT, 'test/fixtures/tool-samples');
const TMP = mkdtempSync(join(tmpdir(), 'kasi-import-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const kasi = (...args: string[]) => kasiRun(args);

describe('kasi import --json', () => {
  it('prints the kasi-workload/1 object: format, kind, source, duration_ns, events, skipped', () => {
    const file = join(SAMPLES, 'bcc-kvmexit/bcc-example-pid-collapsed.txt');
    const o = JSON.parse(importReport([file], { json: true }));
    expect(Object.keys(o)).toEqual(['format', 'kind', 'source', 'duration_ns', 'events', 'skipped']);
    expect(o).toMatchObject({ format: 'kasi-workload/1', kind: 'vm-exits', source: { file, detected: 'bcc-kvmexit' }, duration_ns: 5e9, skipped: [] });
    expect(o.events[0]).toEqual({ name: 'MSR_WRITE', count: 13467, total_ns: null, errors: null, reason: 'vm-exit:MSR_WRITE' });
    expect(Object.keys(o.events[0])).toEqual(['name', 'count', 'total_ns', 'errors', 'reason']);
  });

  it('with KIND named, source.detected is null; the counts are the same', () => {
    const file = join(SAMPLES, 'strace-c/strace-issue95-f-c-sleep.txt');
    const named = JSON.parse(importReport(['strace-c', file], { json: true }));
    const detected = JSON.parse(importReport([file], { json: true }));
    expect(named.source.detected).toBeNull();
    expect(detected.source.detected).toBe('strace-c');
    expect(named.events).toEqual(detected.events);
  });

  it('--vcpu selects one vCPU of a trace', () => {
    const file = join(SAMPLES, 'kvm-exit-trace/new-fmt-trace-cmd-intel-exception-nmi-paolo-2022.txt');
    expect(JSON.parse(importReport([file], { json: true, vcpu: '0' })).events.map((e: { name: string }) => e.name)).toEqual(['EXCEPTION_NMI']);
    expect(() => importReport([file], { vcpu: 'x' })).toThrow(/--vcpu: expected a vCPU number/);
  });
});

describe('kasi import (text)', () => {
  it('says which format it detected, lists footprints, borrowed ones and skipped lines', () => {
    const out = importReport([join(SAMPLES, 'strace-c/strace-cw-pr396-author-elided.txt')], {});
    expect(out).toMatch(/^\S+strace-cw-pr396-author-elided\.txt: strace -c \(detected\), syscalls: 3 events, 74 calls\n/);
    expect(out).toMatch(/newfstatat\s+68\s+64\s+1\.591ms\s+syscall:newfstatat\n/);
    expect(out).toMatch(/wait4\s+4\s+2\s+54\.119ms\s+syscall:wait4 → borrows syscall:getppid \(/);
    expect(out).toMatch(/skipped 1 line:\n {2}line 6: elided rows\n$/);
  });

  it('an SVM reason shows the VMX footprint it maps to', () => {
    const out = importReport(['perf-kvm-stat', join(SAMPLES, 'perf-kvm-stat/amd-svm-idle-baseline-notes.txt')], {});
    expect(out).toMatch(/interrupt\s+619522\s+-\s+353\.128ms\s+vm-exit:EXTERNAL_INTERRUPT\n/);
    expect(out).toMatch(/vintr\s+2\s+-\s+1\.640us\s+vm-exit:INTERRUPT_WINDOW → borrows vm-exit:CPUID/);
  });

  it('every shared sample imports, except the traceback', () => {
    for (const [dir, files] of Object.entries({
      'strace-c': 4, 'perf-trace-summary': 2, 'perf-kvm-stat': 5, 'kvm-exit-trace': 3, 'bcc-kvmexit': 2,
    })) {
      const names = readdirOf(join(SAMPLES, dir)).filter((f) => !f.includes('traceback'));
      expect(names, dir).toHaveLength(files);
      for (const f of names) expect(importReport([join(SAMPLES, dir, f)], {})).toContain('(detected)');
    }
  });
});

function readdirOf(dir: string): string[] {
  return readdirSync(dir).sort();
}

describe('kasi import: bad input is one line and exit 2', () => {
  const one = (r: Awaited<ReturnType<typeof kasi>>, re: RegExp) => {
    expect(r.status, r.stderr).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(re);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  };

  it('the kvmexit traceback, a truncated gzip, binary data, no table; an unknown KIND', async () => {
    const tb = join(SAMPLES, 'bcc-kvmexit/bcc-example-vcpu-error-traceback.txt');
    const gz = join(TMP, 'cut.txt.gz');
    writeFileSync(gz, gzipSync(readFileSync(join(SAMPLES, 'strace-c/strace-issue95-f-c-sleep.txt'))).subarray(0, 60));
    const bin = join(TMP, 'bin.txt');
    writeFileSync(bin, Buffer.from([0x25, 0x20, 0x74, 0x69, 0x6d, 0x65, 0x0a, 0x00, 0xff, 0xfe, 0x01]));
    const none = join(TMP, 'none.txt');
    writeFileSync(none, 'just some words\n');
    // Text cut short: perf kvm stat after its header (5 lines: two blank, "Analyze events", blank, the header), bcc after its title, a kvm_exit line cut before its reason.
    const cutKvm = join(TMP, 'cut-kvm.txt');
    writeFileSync(cutKvm, readFileSync(join(SAMPLES, 'perf-kvm-stat/intel-vmexit-sysbench-0xba1a-blog.txt'), 'utf8').split('\n').slice(0, 6).join('\n'));
    const cutBcc = join(TMP, 'cut-bcc.txt');
    writeFileSync(cutBcc, readFileSync(join(SAMPLES, 'bcc-kvmexit/bcc-example-pid-collapsed.txt'), 'utf8').split('\n')[0]);
    const cutTrace = join(TMP, 'cut-trace.txt');
    writeFileSync(cutTrace, ' qemu-system-x86-23579 [005] 22018.775584: kvm_exit:             reas');
    const r = await Promise.all([kasi('import', tb), kasi('import', gz), kasi('import', 'strace-c', bin), kasi('import', none, '--json'),
      kasi('import', cutKvm), kasi('import', cutBcc), kasi('import', cutTrace)]);
    one(r[0], /bcc-example-vcpu-error-traceback\.txt:1: expected a kvmexit\.py table, found a Python traceback \(the tool failed: "Exception: There's no vCPU 4/);
    one(r[1], /cut\.txt\.gz: corrupt or truncated gzip data/);
    one(r[2], /bin\.txt:2: expected text, found binary data \(a NUL byte at offset 7\)/);
    one(r[3], /none\.txt:1: expected the output of strace -c, perf trace -s, .*, found "just some words"$/);
    one(r[4], /cut-kvm\.txt:5: expected a row of the perf kvm stat table, found the end of the file$/);
    one(r[5], /cut-bcc\.txt:1: expected a "REASON COUNT" row of the kvmexit\.py table, found the end of the file$/);
    one(r[6], /cut-trace\.txt:1: expected a kvm_exit line in a trace\.h format \(.*\), found kvm_exit: "reas"$/);
    expect(() => importReport(['strace', none], {})).toThrow(/^import: unknown kind "strace" \(expected one of strace-c, /); // a UsageError: exit 2 the same way
  });
});
