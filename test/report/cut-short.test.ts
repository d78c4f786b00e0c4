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
