/**
 * A set whose workload a kill cut short has no overhead: System Call Isolation kills the app of
 * examples/sci-syscalls.yaml when a fetch outgrows its 64-entry backtrace cap, so its run covers a
 * few events where the baseline covers all of them, and "-99%" would be a number about nothing.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { summarize } from '../../src/sim/seeds.ts';
import { formatRunText } from '../../src/report/run-text.ts';
import { cutShort } from '../../src/report/cut-short.ts';
import { formatRunJson } from '../../src/report/run-json.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/db.ts';
import { getRun } from '../../src/store/query.ts';
import { runRecord } from '../../src/store/record.ts';
import { saveRun } from '../../src/store/save.ts';
import { diffRuns, formatDiff } from '../../src/store/diff.ts';
import { exportCsv, exportMarkdown } from '../../src/store/export.ts';

describe('a set a kill cut short', () => {
  const text = readFileSync('examples/sci-syscalls.yaml', 'utf8').replace(/^events: \d+$/m, 'events: 1500');
  const r = summarize([runScenario(parseScenario(text, 'sci-syscalls.yaml'))]);
  const by = (name: string) => r.mitigations.find((m) => m.name === name)!;

  it('is the set whose task was killed before it ran the baseline\'s events, and only that one', () => {
    expect(by('sci').costs.counts.kills).toBeGreaterThan(0);
    expect(by('sci').costs.counts.events).toBeLessThan(by('none').costs.counts.events);
    expect(r.mitigations.filter((m) => cutShort(r, m)).map((m) => m.name)).toEqual(['sci']);
    // The attacker killed again and again under sci-no-caps is not the workload: its events all ran.
    expect(by('sci-no-caps').costs.counts.kills).toBe(0);
  });

  it('shows "killed" for its overhead, a line saying why, and the other sets\' overheads as numbers', () => {
    const out = formatRunText(r);
    const row = out.split('\n').find((l) => l.startsWith('overhead %'))!;
    const cells = row.trim().split(/\s{2,}/).slice(1);
    expect(cells).toHaveLength(4);
    expect(cells[2]).toBe('killed');
    for (const i of [0, 1, 3]) expect(cells[i]).toMatch(/^-?\d+\.\d\d$/);
    expect(out).toMatch(/sci: a kill cut the workload short \([\d,.]+ of the baseline's 1,500 events\)/);
  });
});

describe('a set a kill cut short, in the JSON, the store\'s exports and a diff', () => {
  it('says cut_short in the JSON costs (false for the others) and "killed" in a stored run\'s markdown, CSV and diff', () => {
    const text = readFileSync('examples/sci-syscalls.yaml', 'utf8').replace(/^events: \d+$/m, 'events: 1500');
    const scenario = parseScenario(text, 'sci-syscalls.yaml');
    const r = summarize([runScenario(scenario)]);
    const json = formatRunJson(r);
    expect(JSON.parse(json).mitigations.map((m: { costs: { cut_short: boolean } }) => m.costs.cut_short)).toEqual([false, false, true, false]);
    const dir = mkdtempSync(join(tmpdir(), 'kasi-cut-'));
    try {
      const path = join(dir, 'k.db');
      const db = openStore(path, { create: true });
      const id = saveRun(db, runRecord({ file: undefined, scenario, report: r, reportJson: json, duration: null }));
      const stored = getRun(db, id, path);
      const csv = exportCsv(stored).split('\r\n');
      const col = csv[0].split(',').indexOf('cut_short');
      expect(csv.slice(1, 5).map((l) => l.split(',')[col])).toEqual(['false', 'false', 'true', 'false']);
      expect(exportMarkdown(stored)).toMatch(/\| overhead % \|[^\n]*\| killed \|/);
      const d = diffRuns(stored, stored);
      expect(d.costs.find((c) => c.set === 'sci')!.cut_short).toEqual({ a: true, b: true });
      expect(formatDiff(d, stored, stored)).toMatch(/sci\s+killed\s+killed\s+-/);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
