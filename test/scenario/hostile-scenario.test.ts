/**
 * Hostile scenarios (issue 15): values that used to run for hours, end in "the engine made no
 * progress" or a buddy-allocator stack trace, wrap an Int32Array or give an all-zero report are
 * refused where they are written (`FILE:LINE:COL: field PATH: expected …, found …`, the bound's
 * reason in the message), and a scenario whose predicted work is absurd is refused before it
 * runs unless --force (sim/budget.ts, cli/commands/run-guard.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/formats/files.ts';
import { loadScenario, parseScenario, ScenarioError } from '../../src/scenario/load.ts';
import { predictWork, WORK_LIMIT } from '../../src/sim/budget.ts';
import { checkRunBudget, guardRun } from '../../src/cli/commands/run-guard.ts';
import { runSeeds } from '../../src/sim/pool.ts';
import { UsageError } from '../../src/cli/usage.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kasi-hostile-scn-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const SMALL = `name: small
seed: 4
duration: 150us
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: victim, kind: vm, vcpus: 1, memory: 16MiB, objects: [{ name: k, kind: guest-page }] }
  - { name: evil, kind: vm, vcpus: 1, memory: 16MiB }
secrets: [{ name: key, in: victim/k, bytes: 32 }]
workload:
  - { thread: 1, tenant: victim, mix: [{ event: vm-exit, reason: EPT_VIOLATION, weight: 1 }, { event: guest-run, cycles: 3000, weight: 2 }] }
attackers: [{ thread: 0, tenant: evil, attacks: [l1tf-guest], every: 2us }]
isolation:
  - { name: none, cmdline: "mitigations=off" }
  - { name: nosmt, cmdline: "nosmt" }
`;

/** SMALL with `from` replaced by `to` (which must occur once). */
function edit(from: string, to: string): string {
  expect(SMALL.split(from)).toHaveLength(2);
  return SMALL.replace(from, to);
}

function scenarioError(text: string): string {
  try {
    parseScenario(text, 'h.yaml');
  } catch (e) {
    expect(e, (e as Error).stack).toBeInstanceOf(ScenarioError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('values past what the model can do are refused where they are written', () => {
  const cases: [string, string, string, RegExp][] = [
    ['NUL in a cmdline (the tokenizer looped)', 'cmdline: "nosmt"', 'cmdline: "nosmt\\0x"', /^h\.yaml:14:\d+: field isolation\[1\]\.cmdline: expected a kernel command line without NUL characters/],
    ['events beyond Int32 (wrapped to 1 event)', 'duration: 150us', 'events: 4294967297', /^h\.yaml:3:9: field events: expected at most 2147483647 events per task/],
    ['a duration too short for one event (an all-zero report)', 'duration: 150us', 'duration: 0.0001ns', /^h\.yaml:3:11: field duration: expected a duration of at least \d+ cycles .*no event would complete in 0 cycles/],
    ['clock_ghz 1e300 (ran for hours)', 'seed: 4\n', 'seed: 4\ncosts: { clock_ghz: 1e300 }\n', /field costs\.clock_ghz: expected a clock of at most 10 GHz/],
    ['a price of 1e308 cycles (the engine made no progress)', 'seed: 4\n', 'seed: 4\ncosts: { override: { cr3_write: 1e308 } }\n', /field costs\.override\.cr3_write: expected at most 10000000 cycles/],
    ['a price as { cycles, source }', 'seed: 4\n', 'seed: 4\ncosts: { override: { cr3_write: { cycles: 1e308, source: x } } }\n', /field costs\.override\.cr3_write/],
    ['guest-run cycles 1e15 (hours of working-set touches)', 'cycles: 3000', 'cycles: 1000000000000000', /field workload\[0\]\.mix\[1\]\.cycles: expected at most 1000000000 cycles/],
    ['vcpus 10^9 (the buddy allocator died)', 'vcpus: 1, memory: 16MiB, objects', 'vcpus: 1000000000, memory: 16MiB, objects', /field tenants\[0\]\.vcpus: expected at most 1024 vCPUs \(KVM_MAX_VCPUS/],
    ['footprint insns 1e300', 'seed: 4\n', 'seed: 4\nfootprints: { override: { "vm-exit:EPT_VIOLATION": { insns: 1e300 } } }\n', /field footprints\.override\.vm-exit:EPT_VIOLATION\.insns: expected at most 10000000 instructions/],
    ['tlb_flush_pages 1e9', 'seed: 4\n', 'seed: 4\nfootprints: { override: { "vm-exit:EPT_VIOLATION": { tlb_flush_pages: 1000000000 } } }\n', /tlb_flush_pages: expected at most 33 single-page flushes \(tlb_single_page_flush_ceiling/],
    ['a non-canonical footprint page', 'seed: 4\n', 'seed: 4\nfootprints: { override: { "vm-exit:EPT_VIOLATION": { text: { pages: ["0x0000900000000000"] } } } }\n', /text\.pages\[0\]: expected a canonical address \(bits 63:47 equal/],
    ['RAM above what the model boots', 'ram: 1GiB', 'ram: 65TiB', /field machine\.ram: expected at most 2\^46 bytes/],
    ['weights whose sum is not exact', 'weight: 2 }', 'weight: 1e300 }', /weight: expected a weight of at most 1000000/],
  ];
  for (const [what, from, to, want] of cases) it(what, () => expect(scenarioError(edit(from, to))).toMatch(want));

  it('RAM: kasi models at most 64 TiB (the 4-level direct map), even where MAXPHYADDR allows more', () => {
    expect(scenarioError(edit('cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB', 'cpu: zen4, cores: 1, threads_per_core: 2, ram: 128TiB').replace(/kind: vm/g, 'kind: process').replace(/vcpus: 1, /g, '').replace(/guest-page/, 'anon-page').replace(/vm-exit, reason: EPT_VIOLATION/, 'syscall, name: read').replace('guest-run', 'user-compute').replace('l1tf-guest', 'mfbds')))
      .toMatch(/field machine\.ram: expected at most 64TiB: kasi models at most 64TiB of RAM/);
  });

  it('a 50 MB scenario stops at the 1 MiB limit before YAML sees it, and /dev/zero at once', () => {
    const f = join(TMP, 'huge.yaml');
    writeFileSync(f, `${SMALL}tenants_padding:\n${'  - { name: x, kind: netns }\n'.repeat(2_000_000)}`);
    const t = performance.now();
    expect(() => loadScenario(f)).toThrow(/huge\.yaml: \d+ bytes, above the 1MiB kasi reads from one file of this kind/);
    expect(() => loadScenario('/dev/zero')).toThrow(/^\/dev\/zero: more than 1MiB/);
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it('more than 1024 tenants is refused by the schema', () => {
    const many = `tenants:\n${Array.from({ length: 1025 }, (_, i) => `  - { name: n${i}, kind: netns }\n`).join('')}`;
    expect(scenarioError(many)).toMatch(/field tenants: expected at most 1024 tenants/);
  });
});

describe('predicted work (sim/budget.ts)', () => {
  it('follows the engine: the small scenario predicts what it runs (94 events, ~5000 touches, measured)', () => {
    const p = predictWork(parseScenario(SMALL, 'h.yaml'));
    expect(p.tasks[0].events).toBeGreaterThan(60);
    expect(p.tasks[0].events).toBeLessThan(140);
    expect(p.touches).toBeGreaterThan(2500);
    expect(p.touches).toBeLessThan(10000);
    expect(p.impossible).toBeNull();
    expect(p.excessive).toBeNull();
  });

  it('never predicts fewer events than a run makes: a warm syscall loop is priced at the warm price', async () => {
    const { runScenario } = await import('../../src/sim/run.ts');
    const loop = parseScenario(`duration: 1ms
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process }]
workload: [{ thread: 0, tenant: p, mix: [{ event: syscall, name: getppid }] }]
isolation: [{ name: off, cmdline: "mitigations=off" }]
`, 'loop.yaml');
    const ran = runScenario(loop).mitigations[0].events_per_task[0];
    const predicted = predictWork(loop).tasks[0].events;
    expect(predicted).toBeGreaterThanOrEqual(ran);
    expect(predicted).toBeLessThan(ran * 1.3);
  });

  it('duration 1000s or every 1ns over a long run is refused with the numbers, unless --force', () => {
    const s = parseScenario(edit('duration: 150us', 'duration: 1000s'), 'h.yaml');
    expect(predictWork(s, 8).total).toBeGreaterThan(WORK_LIMIT);
    let msg = '';
    try { checkRunBudget(s, { seeds: 8, force: false }); } catch (e) { expect(e).toBeInstanceOf(InputError); msg = (e as Error).message; }
    expect(msg).toMatch(/^h\.yaml: predicted work \S+ \(\S+ touches \+ \S+ attack samples per run × 16 runs: 2 entries × 8 seeds; the busiest task, thread 1 \(victim\), makes \S+ events × \d+ touches\) is above 1\.00e\+9.*--force/);
    expect(() => checkRunBudget(s, { seeds: 8, force: true })).not.toThrow();
    const samples = parseScenario(edit('every: 2us', 'every: 1ns').replace('duration: 150us', 'duration: 1s'), 'h.yaml');
    expect(() => checkRunBudget(samples, { seeds: 1, force: false })).toThrow(/attack samples/);
  });

  it('--duration is checked like the file: too short for one event is a usage error', () => {
    const s = parseScenario(SMALL, 'h.yaml');
    expect(() => checkRunBudget(s, { seeds: 1, duration: { unit: 'ns', value: 0.0001 }, force: true })).toThrow(UsageError);
  });

  it('a valid scenario whose machine cannot hold its tenants is one line naming it (it was an OutOfMemoryError stack trace)', async () => {
    const tight = parseScenario(SMALL.replace('ram: 1GiB', 'ram: 64MiB').replaceAll('memory: 16MiB', 'memory: 32MiB'), 'tight.yaml');
    let msg = '';
    try { await guardRun(tight, () => runSeeds(tight, { seeds: 1, workers: 1 })); } catch (e) { expect(e).toBeInstanceOf(InputError); msg = (e as Error).message; }
    expect(msg).toMatch(/^tight\.yaml: cannot build the machine this scenario describes \(machine\.ram 64MiB, 2 tenant\(s\)\): out of memory: no free block of order \d+/);
    // and by name, as errors come back from sim/pool.ts's worker threads
    const fromWorker = guardRun(tight, async () => { throw Object.assign(new Error('out of memory at boot: …'), { name: 'BootError' }); });
    await expect(fromWorker).rejects.toThrow(InputError);
  });

  it('events mode: clocks past 2^52 cycles are impossible, not merely excessive', () => {
    const text = edit('duration: 150us', 'events: 2000000000').replace('cycles: 3000', 'cycles: 1000000000');
    expect(scenarioError(text)).toMatch(/field events: expected a run that ends below 2\^52 cycles/);
  });
});
