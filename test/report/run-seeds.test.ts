/**
 * `kasi run --seeds N --workers W` as a user runs it (tsx, worker threads loading TypeScript):
 * the same file, seed and N give byte-identical text and JSON with 1 or 2 workers; the JSON cells
 * carry the statistics; entries that are one configuration give a note and a stderr warning;
 * --seeds 1 prints the one-seed matrix. And the cell and time formats of the text matrix.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cellText, formatNs } from '../../src/report/run-text.ts';
import { cellStats } from '../../src/sim/seeds.ts';
import { kasi } from '../helpers/kasi-cli.ts';
import { tinyScenario } from '../helpers/tiny-scenario.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-seeds-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));


const FILE = join(TMP, 'tiny.yaml');
writeFileSync(FILE, tinyScenario({ seed: 9, duration: '60us', every: '5us', isolation: [['none', 'mitigations=off'], ['l1d-cond', 'kvm-intel.vmentry_l1d_flush=cond'], ['kpti', 'pti=on']] }));

describe('kasi run --seeds', () => {
  it('byte-identical text and JSON with --workers 1 and --workers 2', async () => {
    const j1 = await kasi('run', FILE, '--seeds', '4', '--workers', '1', '--json');
    const j2 = await kasi('run', FILE, '--seeds', '4', '--workers', '2', '--json');
    expect(j1.status, j1.stderr).toBe(0);
    expect(j2.status, j2.stderr).toBe(0);
    expect(j2.stdout === j1.stdout).toBe(true);
    const t1 = await kasi('run', FILE, '--seeds', '4', '--workers', '1');
    const t2 = await kasi('run', FILE, '--seeds', '4', '--workers', '2');
    expect(t2.stdout === t1.stdout).toBe(true);
    expect(t1.stdout).toMatch(/^kasi run: tiny \(.*\), seeds 9\.\.12 \(4\), cpu skylake-sp/);
    expect(t1.stdout).toMatch(/Time to first leak/);
    expect(t1.stdout).toMatch(/overhead % min\.\.max/);

    const j = JSON.parse(j1.stdout);
    expect(j).toMatchObject({ seed: 9, seeds: 4 });
    const none = j.mitigations[0];
    expect(none.matrix).toHaveLength(1);
    for (const c of none.matrix) {
      for (const k of ['seeds', 'seeds_leaked', 'bytes_median', 'first_leak_ns_median', 'verdict', 'leak_rate_ci95', 'bytes', 'of', 'when']) expect(c).toHaveProperty(k);
      expect(c.seeds).toBe(4);
      expect(c.verdict).toBe(c.seeds_leaked > 0 ? 'leaks' : 'no leak');
      const [lo, hi] = c.leak_rate_ci95;
      expect(lo).toBeLessThanOrEqual(c.seeds_leaked / 4);
      expect(hi).toBeGreaterThanOrEqual(c.seeds_leaked / 4);
    }
    for (const c of none.leaks) expect(c.seeds_leaked).toBeGreaterThan(0);
    for (const m of j.mitigations) {
      expect(m.costs.spread.cycles.min).toBeLessThanOrEqual(m.costs.cycles);
      expect(m.costs.spread.cycles.max).toBeGreaterThanOrEqual(m.costs.cycles);
      expect(m.costs.cycles_by_seed).toHaveLength(4);
    }
    // l1d-cond and kpti are both the 6.1 default on Skylake-SP.
    expect(j.mitigations.map((m: { same_as: string | null }) => m.same_as)).toEqual([null, null, 'l1d-cond']);
    expect(j1.stderr).toMatch(/^kasi run: warning: l1d-cond and kpti resolve to the same mitigation state: /m);
    expect(t1.stdout).toMatch(/note: l1d-cond and kpti resolve to the same mitigation state/);
  }, 90_000);

  it('--seeds 1 prints the one-seed matrix (bytes/planted), no spread rows; bad counts are usage errors', async () => {
    const r = await kasi('run', FILE, '--seeds', '1');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^kasi run: tiny \(.*\), seed 9, cpu/);
    expect(r.stdout).toMatch(/Leaks \(bytes of each planted secret recovered by each attack; - = none\)/);
    expect(r.stdout).not.toMatch(/Time to first leak|min\.\.max/);
    for (const bad of [['--seeds', '0'], ['--workers', 'two'], ['--seeds', '-3']]) {
      const b = await kasi('run', FILE, ...bad);
      expect(b.status).toBe(2);
      expect(b.stderr).toMatch(new RegExp(bad[0]));
    }
  }, 60_000);
});

describe('matrix cells', () => {
  const c = (bytes: number) => ({ attack: 'a', secret: 's', owner: 'o', bytes, of: 32, when: bytes > 0 ? 2500 : -1 });
  it('one seed: bytes/planted or -; N seeds: k/N and median bytes, ~ only for a stored unstable cell', async () => {
    expect(cellText(cellStats([c(32)], [2.5]))).toBe('32/32');
    expect(cellText(cellStats([c(0)], [2.5]))).toBe('-');
    expect(cellText(cellStats([c(32), c(32), c(16)], [2.5, 2.5, 2.5]))).toBe('3/3 32B');
    expect(cellText(cellStats([c(32), c(0), c(16)], [2.5, 2.5, 2.5]))).toBe('2/3 24B');
    expect(cellText(cellStats([c(32), c(0), c(0)], [2.5, 2.5, 2.5]))).toBe('1/3 32B');
    // A run stored before the any-seed rule keeps its verdict and is shown as it was.
    expect(cellText({ ...cellStats([c(32), c(0), c(0)], [2.5, 2.5, 2.5]), verdict: 'unstable' })).toBe('~1/3 32B');
    expect(cellText(cellStats([c(0), c(0)], [2.5, 2.5]))).toBe('-');
  });
  it('times: ns, us, ms, s with three significant digits', async () => {
    expect(formatNs(850)).toBe('850ns');
    expect(formatNs(41_234)).toBe('41.2us');
    expect(formatNs(410_000)).toBe('410us');
    expect(formatNs(1_230_000)).toBe('1.23ms');
    expect(formatNs(28_000_000)).toBe('28ms');
    expect(formatNs(2_500_000_000)).toBe('2.5s');
  });
});

describe('a price no published figure pins', () => {
  it('is named under the cost table when a set paid it (L1D flushes), and only then', async () => {
    const withFlush = join(TMP, 'flush.yaml');
    const without = join(TMP, 'noflush.yaml');
    writeFileSync(withFlush, tinyScenario({ seed: 1, duration: '60us', every: '5us', isolation: [['none', 'mitigations=off'], ['always', 'kvm-intel.vmentry_l1d_flush=always']] }));
    writeFileSync(without, tinyScenario({ seed: 1, duration: '60us', every: '5us', isolation: [['none', 'mitigations=off'], ['kpti', 'mitigations=off pti=on']] }));
    const a = await kasi('run', withFlush, '--seeds', '1', '--no-store');
    const b = await kasi('run', without, '--seeds', '1', '--no-store');
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect(a.stdout).toMatch(/^l1d_flushes +0 +[1-9]/m);
    expect(a.stdout).toMatch(/l1d_flushes: each priced at costs\.ts l1dFlushMsr .* an assumption no published figure pins/);
    expect(b.stdout).toMatch(/^l1d_flushes +0 +0$/m);
    expect(b.stdout).not.toMatch(/an assumption no published figure pins/);
  }, 120_000);
});

