/**
 * Fuzzing every importer with fast-check: files made of real sample lines (all the shared
 * samples, test/fixtures/tool-samples/README.md), those lines cut and spliced, tokens of the
 * formats in random order, and random text or bytes. Whatever comes in, a parser returns a
 * well-formed result or raises the project's InputError — nothing else escapes, nothing hangs.
 * 20,000 cases per parser (KASI_FUZZ_SEED=N for another seed), run in batches of BATCH with a seed each (fast-check prints the seed
 * of a failing batch), yielding to vitest's worker between batches: one 20,000-case synchronous
 * fc.assert blocked the worker's RPC ("Timeout calling onTaskUpdate") on a loaded machine.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/formats/files.ts';
import { PARSERS, detectFormat, importWorkload } from '../../src/formats/index.ts';
import { toProfile, type Parsed } from '../../src/formats/profile.ts';
import { parsePtdump } from '../../src/formats/ptdump.ts';
import { SAMPLES } from './helpers.ts';

const RUNS = 20_000;
const BATCH = 2_000;
const SEED = Number(process.env.KASI_FUZZ_SEED ?? 0x6b617369);

/** fc.assert over `runs` cases in batches, awaiting setImmediate between batches (see the header). */
async function assertInBatches<T extends unknown[]>(prop: () => fc.IProperty<T>, runs: number, salt: number): Promise<void> {
  for (let done = 0, k = 0; done < runs; done += BATCH, k++) {
    fc.assert(prop(), { numRuns: Math.min(BATCH, runs - done), seed: (SEED + salt * 1009 + k * 7919) | 0 });
    await new Promise((r) => setImmediate(r));
  }
}

const SAMPLE_LINES: string[] = readdirSync(SAMPLES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => readdirSync(join(SAMPLES, d.name)).flatMap((f) => readFileSync(join(SAMPLES, d.name, f), 'utf8').split('\n')));
SAMPLE_LINES.push(
  '---[ High Kernel Mapping ]---', '0xffffffff81000000-0xffffffff82000000          16M     ro         PSE GLB x  pmd',
  '... 131059 entries skipped ... ', '0xc0000000-0xc0400000           4M     RW         PSE GLB NX pmd',
  '\x1b[H\x1b[2J10:00:01.000000', 'System call usage summary for 32 bit mode:', '\t\t\t\tEAGAIN: 5',
  'qemu-1 [000] 1.000001: kvm_exit: reason INVALID_STATE FAILED_VMENTRY rip 0x0 info 0 0',
  'qemu-kvm  4244 [002] 100.000020: kvm:kvm_exit: exit_reason=12 guest_rip=0x4 isa=2 info1=0x1 info2=0x0 vcpu_id=2',
  'Display kvm exit reasons and statistics for PID 77 VCPU 1... Hit Ctrl-C to end.', 'TID      KVM_EXIT_REASON                     COUNT',
  // Forms the readers learnt from the tools' source since (strace -U, bcc on AMD, perf kvm live --duration, mail wrapping, trace-cmd raw fields).
  'syscall          calls    errors  longest shortest usecs/call     seconds', '---------------- --------- --------- -------- -------- ----------- -----------',
  'NPF                                 9120    ', 'CR3_WRITE_TRAP                      3       ', '1234567890123 VM 4242, vcpu 0: EPT_VIOLATION event took 1500usec',
  '> max       stddev', '> (msec)        (%)', '>      futex                372     18  4373.773     0.000    11.757', '> 997.715    660.42%',
  '       qemu-kvm-1234  [001]  5000.000001: kvm_exit:             [FAILED TO PARSE] exit_reason=30 guest_rip=0xffffffff81063b44 isa=1 info1=0 info2=0 vcpu_id=1',
);
const TOKENS = [
  '%', 'time', 'seconds', 'usecs/call', 'calls', 'errors', 'syscall', 'total', '------', '-', '100.00', '0.000476', '32', '3',
  'read', 'Summary', 'of', 'events:', '(msec)', '(%)', '0.150', '11.90%', '(383382),', 'events,', 'VM-EXIT', 'Samples',
  'Samples%', 'Time%', 'Min', 'Max', 'Avg', 'HLT', 'npf', 'PF', 'excp', '0.57us', '(', '+-', '0.14%', ')', 'Total', 'Samples:1,',
  'Analyze', 'VCPU', '0:', 'kvm_exit:', 'kvm_entry:', 'vcpu', '0,', 'reason', 'rip', '0x4004ad', 'info1', 'info', '[005]',
  '6204.951632:', 'KVM_EXIT_REASON', 'COUNT', 'EXIT_REASON_HLT', 'N/A', 'Traceback', '---[', ']---', '0x0000000000000000-0xffff880000000000',
  '4K', 'RW', 'NX', 'pte', '...', '[...]', '#', '\t', '99999999999999999999', 'nan%', '-nan%', '1e308', 'NaN', '\u00a0', '\ufffd',
];

const mutate = (s: string) => fc.tuple(fc.nat(s.length), fc.nat(8), fc.string({ maxLength: 6 })).map(([at, del, ins]) => s.slice(0, at) + ins + s.slice(at + del));
const line = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SAMPLE_LINES) },
  { weight: 3, arbitrary: fc.constantFrom(...SAMPLE_LINES).chain(mutate) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...TOKENS), { maxLength: 12 }).chain((ts) => fc.array(fc.constantFrom(' ', '  ', '     ', '\t'), { minLength: ts.length, maxLength: ts.length }).map((sp) => ts.map((t, i) => sp[i] + t).join(''))) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);
const file = fc.tuple(fc.array(line, { maxLength: 24 }), fc.constantFrom('\n', '\r\n'), fc.boolean())
  .map(([ls, nl, end]) => ls.join(nl) + (end ? nl : ''));

/** A plain check (expect() per row would cost more than the parse). */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`not well-formed: ${what}`);
}

function wellFormed(p: Parsed, text: string): void {
  const n = Math.max(1, text.split('\n').length);
  for (const r of p.rows) {
    check(Number.isSafeInteger(r.count) && r.count >= 0, `count ${r.count}`);
    check(r.line >= 1 && r.line <= n, `line ${r.line}`);
    check(r.totalNs === null || (Number.isFinite(r.totalNs) && r.totalNs >= 0), `total ${r.totalNs}`);
    check(typeof r.name === 'string' && r.name.length > 0, 'a name');
  }
  for (const s of p.skipped) check(s.line >= 1 && s.line <= n, `skipped line ${s.line}`);
  check(p.durationNs === null || (Number.isFinite(p.durationNs) && p.durationNs >= 0), `duration ${p.durationNs}`);
  toProfile(p, 'fuzz');
}

/** Only InputError may escape. */
function onlyInputError(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    check(!e.message.includes('\n'), 'one line');
  }
}

describe('fuzz: only InputError escapes', () => {
  for (const [k, [name, parse]] of Object.entries(PARSERS).entries()) {
    it(`${name} (${RUNS} cases)`, async () => {
      await assertInBatches(() => fc.property(file, (text) => onlyInputError(() => wellFormed(parse(text, 'fuzz'), text))), RUNS, k);
    });
  }

  it(`ptdump (${RUNS} cases)`, async () => {
    await assertInBatches(() => fc.property(file, (text) => onlyInputError(() => {
      for (const r of parsePtdump(text, 'fuzz').regions) for (const x of r.ranges) check(BigInt(x.bytes) >= 0n, x.bytes);
    })), RUNS, 100);
  });

  it(`detection and import of whatever is detected (${RUNS / 4} cases)`, async () => {
    await assertInBatches(() => fc.property(file, fc.option(fc.nat(3), { nil: undefined }), (text, vcpu) => onlyInputError(() => {
      const d = detectFormat(text, 'fuzz');
      if (d !== null && d.format !== 'ptdump') importWorkload(text, 'fuzz', { vcpu });
    })), RUNS / 4, 200);
  });

  it('a long line, a file of one huge token, and deep nesting of spaces do not hang', () => {
    const t0 = Date.now();
    const long = `${' '.repeat(4000)}1 `.repeat(20);
    for (const parse of [...Object.values(PARSERS), parsePtdump]) {
      for (const text of [long, 'a'.repeat(1 << 20), `kvm_exit: reason ${'x '.repeat(2000)}`, `${'0'.repeat(4000)}%\n`.repeat(50)]) onlyInputError(() => { parse(text, 'big'); });
    }
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
