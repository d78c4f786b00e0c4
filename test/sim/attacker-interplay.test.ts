/**
 * One attacker's attacks are not independent: meltdown's loads bring the secrets' lines into the
 * core's shared L1D, so the victim's next touches hit there and allocate no fill buffer entry
 * for MFBDS to sample (Documentation/arch/x86/mds.rst: "Fill buffers are used internally to
 * manage L1 miss situations"). Found on examples/imported-perf-trace.yaml: mfbds × sock-key leaked
 * in 4/16 seeds under mitigations=off beside meltdown but 15/16 alone, which made PTI (it stops
 * meltdown) look as if it opened an MFBDS leak. The scenario says so in a note.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';

const EXAMPLES = resolve(dirname(fileURLToPath(import.meta.url)), '../../examples');
const FILE = join(EXAMPLES, 'imported-perf-trace.yaml');

function scenario(attacks: string, seed: number) {
  const text = readFileSync(FILE, 'utf8')
    .replace(/attacks: \[meltdown, mfbds\]/, `attacks: [${attacks}]`)
    .replace(/^seed: \d+/m, `seed: ${seed}`)
    .replace(/isolation:[\s\S]*$/, 'isolation:\n  - { name: none, cmdline: "mitigations=off" }\n');
  return parseScenario(text, FILE);
}

describe('an attacker that loads the secrets changes what its samplers see', () => {
  it('mfbds samples the sock key in more seeds alone than beside meltdown, and the scenario notes it', async () => {
    let alone = 0;
    let beside = 0;
    for (let seed = 3; seed < 9; seed++) {
      const a = runScenario(scenario('mfbds', seed)).mitigations[0];
      const b = runScenario(scenario('meltdown, mfbds', seed)).mitigations[0];
      if (a.leaks.some((l) => l.attack === 'mfbds' && l.secret === 'sock-key')) alone++;
      if (b.leaks.some((l) => l.attack === 'mfbds' && l.secret === 'sock-key')) beside++;
      expect(b.leaks.some((l) => l.attack === 'meltdown' && l.secret === 'sock-key')).toBe(true);
      await new Promise((r) => setImmediate(r));
    }
    expect(alone).toBeGreaterThanOrEqual(beside + 2);
    expect(scenario('meltdown, mfbds', 3).notes.some((n) => /^attackers\[0\] runs meltdown beside mfbds: /.test(n))).toBe(true);
    expect(scenario('mfbds', 3).notes.some((n) => n.startsWith('attackers['))).toBe(false);
  }, 120_000);
});
