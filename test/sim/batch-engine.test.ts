/**
 * The batched touch path (sim/touch.ts Toucher.runBatched: text pages through
 * Mmu.translateBatch, the data touches' page segments through Mmu.translateHits, the slow
 * translation where the per-touch path meets it) against the per-touch path it replaced
 * (usePerTouchPath(true)): whole run reports — leak matrix, every count and cycle, exit
 * reasons, secrets' addresses, notes — must be equal, on scenarios that take every way through
 * touch.ts: ASI faults on restricted spaces with retries (the default scenario's asi-*), SCI's
 * verify-and-map faults and kills (sci-syscalls), 5-level paging (la57-icelake), network
 * namespaces (netns-containers), and several seeds. A batched path that skipped, reordered or
 * mistranslated a touch, drew a candidate differently, or walked before an earlier store would
 * change a count (touches, translations, walks, L1D misses, faults) or the cycles.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { defaultScenario, loadScenario } from '../../src/scenario/load.ts';
import { runScenario, type RunReport } from '../../src/sim/run.ts';
import { usePerTouchPath } from '../../src/sim/touch.ts';
import type { Scenario } from '../../src/sim/scenario-types.ts';

afterEach(() => usePerTouchPath(false));

function both(s: Scenario, seed: number, ms: string): { batched: RunReport; perTouch: RunReport } {
  const d = { value: Number.parseFloat(ms) * 1e6, unit: 'ns' as const };
  usePerTouchPath(true);
  const perTouch = runScenario(s, { seed, duration: d });
  usePerTouchPath(false);
  const batched = runScenario(s, { seed, duration: d });
  return { batched, perTouch };
}

const sum = (r: RunReport, k: string) => r.mitigations.reduce((a, m) => a + (m.costs.counts[k] ?? 0), 0);

describe('batched touches = per-touch touches', () => {
  for (const seed of [42, 7]) {
    it(`default scenario (ASI faults and retries), seed ${seed}`, () => {
      const { batched, perTouch } = both(defaultScenario(), seed, '0.25');
      // The scenario reaches the paths the comparison is about.
      expect(sum(perTouch, 'asi_faults')).toBeGreaterThan(0);
      expect(sum(perTouch, 'tlb_walks')).toBeGreaterThan(0);
      expect(sum(perTouch, 'translations')).toBeLessThan(sum(perTouch, 'touches'));
      expect(batched).toEqual(perTouch);
    }, 60_000);
  }

  for (const [file, want] of [['examples/sci-syscalls.yaml', 'sci_faults'], ['examples/la57-icelake.yaml', 'tlb_walks'], ['examples/netns-containers.yaml', 'tlb_walks']] as const) {
    it(`${file}, seeds 1 and 2`, async () => {
      const s = loadScenario(file);
      for (const seed of [1, 2]) {
        const { batched, perTouch } = both(s, seed, '0.2');
        expect(sum(perTouch, want)).toBeGreaterThan(0);
        expect(batched).toEqual(perTouch);
        await new Promise((r) => setImmediate(r));
      }
    }, 60_000);
  }
});
