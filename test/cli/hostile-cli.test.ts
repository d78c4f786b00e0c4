/**
 * Hostile input through the CLI (issue 15): only the project's input errors are one line and
 * exit 2; anything else is "internal error" with the stack, a request to report it, exit 70
 * (cli/errors.ts). `--out` never replaces what is not a regular file (cli/out-file.ts). Each case
 * was a hang, a stack trace, a silently ignored option or a replaced device before the fix.
 */
import { spawn, spawnSync } from 'node:child_process';
import { expectInputError, kasiRun, type CliResult } from '../helpers/kasi-cli.ts';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { describeError, EXIT_INPUT, EXIT_INTERNAL } from '../../src/cli/errors.ts';
import { writeOutFile } from '../../src/cli/out-file.ts';
import { InputError } from '../../src/formats/files.ts';
import { UsageError } from '../../src/cli/usage.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CAP = join(ROOT, 'test/fixtures/captures/la48-pti-nokaslr');
const TMP = mkdtempSync(join(tmpdir(), 'kasi-hostile-cli-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const kasi = (...args: string[]): Promise<CliResult> => kasiRun(args, { timeoutMs: 60_000 });

describe('what reaches the user', () => {
  it('an InputError or UsageError is one line, exit 2; so is one that crossed a worker thread by name', async () => {
    expect(describeError(new InputError('f.yaml', 'bad', 3))).toEqual({ text: 'kasi: f.yaml:3: bad\n', status: EXIT_INPUT });
    expect(describeError(new UsageError('--seeds: expected 1..9')).status).toBe(EXIT_INPUT);
    const fromWorker = Object.assign(new Error('f.yaml:1:1: field x: expected y, found z'), { name: 'ScenarioError' });
    expect(describeError(fromWorker)).toEqual({ text: 'kasi: f.yaml:1:1: field x: expected y, found z\n', status: EXIT_INPUT });
  });

  it('anything else — a RangeError from the model included — is an internal error: the stack, a request to report, exit 70', async () => {
    const r = describeError(new RangeError('frame 0x1 is beyond MAXPHYADDR 52'));
    expect(r.status).toBe(EXIT_INTERNAL);
    expect(r.text).toMatch(/^kasi: internal error: RangeError: frame 0x1 is beyond MAXPHYADDR 52\n/);
    expect(r.text).toMatch(/\n\s+at /);
    expect(r.text).toMatch(/this is a bug in kasi.*please report it/);
    expect(describeError(Object.assign(new TypeError('x'), { name: 'InputError' })).status).toBe(EXIT_INTERNAL);
  });
});

describe('commands on hostile files', () => {
  it('kasi run /dev/zero: one line at once (the scenario limit is 1 MiB)', async () => {
    const r = await kasi('run', '/dev/zero', '--no-store');
    expectInputError(r, '/dev/zero', /more than 1MiB/);
    const base = await kasi('run', '--seeds', 'x');
    expect(r.ms - base.ms).toBeLessThan(1000); // beyond starting the CLI itself
  });

  it('kasi mappings on a capture whose root points back at itself: one line naming the page, no hang', async () => {
    const d = JSON.parse(gunzipSync(readFileSync(join(CAP, 'kernel.json.gz'))).toString('utf8'));
    const root = Number(BigInt(d.roots.kernel));
    const page = Buffer.alloc(4096);
    for (let i = 0; i < 512; i++) page.writeBigUInt64LE(BigInt(root) | 0x67n, i * 8);
    d.pages[d.roots.kernel] = page.toString('base64');
    const f = join(TMP, 'loop.json');
    writeFileSync(f, JSON.stringify(d));
    for (const cmd of ['mappings', 'ptdump', 'summary']) expectInputError(await kasi(cmd, f), f, /a loop in the page tables/);
  }, 60_000);

  it('kasi kernel --capture DIR --system-map /nope: the missing map is an error, not ignored', async () => {
    expectInputError(await kasi('kernel', '--capture', CAP, '--system-map', join(TMP, 'nope.map')), 'nope.map', /cannot read: ENOENT/);
  });

  it('kasi kernel --cpus 8192 (the option\'s own maximum) says the RAM is too small', async () => {
    const r = await kasi('kernel', '--cpus', '8192');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^kasi: cannot boot the kernel with --cpus 8192 in the built-in 512 MiB of RAM .*out of memory at boot/);
  });
});

describe('--out never replaces what is not a regular file', () => {
  it('a FIFO is written through and stays a FIFO', async () => {
    const fifo = join(TMP, 'out.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const reader = spawn('cat', [fifo]);
    let got = '';
    reader.stdout.on('data', (b) => { got += b; });
    const done = new Promise((r) => reader.on('close', r));
    writeOutFile(fifo, 'report text\n');
    await done;
    expect(got).toBe('report text\n');
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });

  it('a device is written through (/dev/null stays a character device); a folder is refused', async () => {
    writeOutFile('/dev/null', 'x');
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(() => writeOutFile('/dev/full', 'x')).toThrow(/--out \/dev\/full: ENOSPC/);
    expect(statSync('/dev/full').isCharacterDevice()).toBe(true);
    expect(() => writeOutFile(TMP, 'x')).toThrow(/is a folder/);
  });

  it('a regular file is replaced atomically, through a symlink that stays a symlink', async () => {
    const target = join(TMP, 'report.txt');
    const link = join(TMP, 'link.txt');
    writeFileSync(target, 'old');
    symlinkSync(target, link);
    writeOutFile(link, 'new');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('new');
    writeOutFile(join(TMP, 'fresh.txt'), 'made');
    expect(readFileSync(join(TMP, 'fresh.txt'), 'utf8')).toBe('made');
    expect(existsSync(join(TMP, '.fresh.txt.tmp'))).toBe(false);
  });
});
