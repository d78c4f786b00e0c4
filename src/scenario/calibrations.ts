/** The calibration figures of a folder, as scenarios (sim/calibrate.ts runs them). */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from '../sim/scenario-types.ts';
import { loadScenario } from './load.ts';

/** The calibration scenarios of a folder (every *.yaml with a `calibration:` block), sorted by file name. */
export function loadCalibrations(dir: string): Scenario[] {
  const out: Scenario[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')).sort()) {
    const s = loadScenario(join(dir, f));
    if (s.calibration !== null) out.push(s);
  }
  return out;
}
