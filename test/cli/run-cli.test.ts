/**
 * `kasi run` as a user runs it: the --json shape, --out written atomically (and nothing written
 * when the run fails), bad input → one line naming the file and exit 2, byte-identical output
 * for the same file and seed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kasi } from '../helpers/kasi-cli.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-run-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));


const SMALL = join(TMP, 'small.yaml');
writeFileSync(SMALL, tinyScenario({ name: 'small', duration: '150us', isolation: [['none', 'mitigations=off'], ['nosmt', 'nosmt']] }));

describe('kasi run', () => {
  let first = '';
  it('--json prints one object with the leak and cost fields of every mitigation set', async () => {
    const r = await kasi('run', SMALL, '--json');
    expect(r.status, r.stderr).toBe(0);
    first = r.stdout;
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ scenario: 'small', seed: 4, baseline: 'none' });
    expect(j.mitigations.map((m: { name: string }) => m.name)).toEqual(['none', 'nosmt']);
    for (const m of j.mitigations) {
      expect(typeof m.cmdline).toBe('string');
      expect(Array.isArray(m.leaks)).toBe(true);
      expect(typeof m.costs.cycles).toBe('number');
      expect(typeof m.costs.overhead_pct).toBe('number');
      for (const k of ['cr3_writes', 'tlb_flushes', 'asi_exits', 'asi_entries', 'page_faults', 'l1d_flushes', 'verw', 'stuns', 'ipis']) expect(typeof m.costs.counts[k]).toBe('number');
    }
    const leak = j.mitigations[0].leaks[0];
    expect(leak).toMatchObject({ attack: 'l1tf-guest', secret: 'key', owner: 'victim', bytes: 32, of: 32 });
    expect(j.mitigations[1].leaks).toEqual([]);
  }, 30_000);

  it('gives byte-identical output for the same file and seed; --seed changes it', async () => {
    const again = await kasi('run', SMALL, '--json');
    expect(again.stdout === first).toBe(true);
    const other = await kasi('run', SMALL, '--json', '--seed', '5');
    expect(other.status).toBe(0);
    expect(JSON.parse(other.stdout).seed).toBe(5);
    expect(other.stdout === first).toBe(false);
  }, 30_000);

  it('--out writes the report atomically and prints nothing', async () => {
    const out = join(TMP, 'report.json');
    const r = await kasi('run', SMALL, '--json', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(readFileSync(out, 'utf8') === first).toBe(true);
    expect(readdirSync(TMP).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 30_000);

  it('bad input: one line naming the file, exit 2, and --out writes nothing', async () => {
    const bad = join(TMP, 'bad.yaml');
    writeFileSync(bad, readFileSync(SMALL, 'utf8').replace('cores: 1', 'cores: 0'));
    const out = join(TMP, 'never.json');
    const r = await kasi('run', bad, '--out', out);
    expect(r.status).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(bad);
    expect(lines[0]).toMatch(/:\d+:\d+: field machine\.cores/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
    const missing = await kasi('run', join(TMP, 'nope.yaml'));
    expect(missing.status).toBe(2);
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('nope.yaml');
    const dur = await kasi('run', SMALL, '--duration', '5 parsecs');
    expect(dur.status).toBe(2);
    expect(dur.stderr).toMatch(/--duration/);
  }, 30_000);

  it('without a file runs the built-in scenario (text)', async () => {
    const r = await kasi('run', '--duration', '100us');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^kasi run: kvm-host-default/);
    expect(r.stdout).toMatch(/Leaks/);
    expect(r.stdout).toMatch(/overhead %/);
    for (const n of ['none', 'default', 'nosmt', 'core-sched', 'asi-2025', 'asi-2025-stun']) expect(r.stdout).toContain(n);
  }, 30_000);
});
