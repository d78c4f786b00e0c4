/**
 * `npm run bench:scale` (`npx tsx bench/scale.ts`): how boot, address-space building and the
 * engine grow with RAM, hardware threads and tenants. Writes bench/scale-results.json.
 *
 * Each cell is a host of bench/scale-scenario.ts (sapphire-rapids, 2 threads a core) run in a
 * child process of its own, so its peak RSS (getrusage maxrss) is its own. For each isolation
 * entry the cell asks for, buildWorld() is timed in its phases (sim/world.ts BuildTimes: boot =
 * the kernel and its allocators; tenants = the VMs, processes, their objects and working sets;
 * spaces = KPTI's user tables, the ASI design's restricted spaces), then the engine runs the
 * cell's duration. Wall-clock milliseconds on a loaded machine: compare within one run.
 *
 *   RAM axis      4 / 64 / 1024 GiB, 16 threads, 20 VMs + 5 processes (VMs of up to 4 GiB)
 *   threads axis  2 / 16 / 128 threads, 64 GiB, 20 VMs + 5 processes
 *   tenants axis  25 / 250 tenants (20+5, 200+50), 1 TiB, 128 threads
 *   the host      1 TiB, 128 threads, 200 VMs of 4 GiB + 50 processes: every entry (none, KPTI,
 *                 kvm-asi-2019, google-asi-2022, google-asi-2025, netns-asi, sci-2019), 10 ms
 *
 * Axis cells build KPTI (pti=on) and google-asi-2025 and run 1 ms. `--quick` runs the RAM and
 * threads axes only; `--cell JSON` is the child's entry point.
 *
 * Then the host as a user runs it: its scenario written to a file and `kasi run FILE --seeds 1
 * --force` through bin/kasi.js (the compiled CLI when built), on 1 worker and on 2 (the default
 * on this 2-core machine), each a fresh process: wall time, CPU time (every thread) and peak RSS
 * from /usr/bin/time when the machine has it, and whether the two reports are identical.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScenario } from '../src/scenario/load.ts';
import { Engine } from '../src/sim/engine.ts';
import { nsToCycles } from '../src/sim/costs.ts';
import { buildWorld, type BuildTimes } from '../src/sim/world.ts';
import { scaleScenarioYaml, vmBytes, type ScaleShape } from './scale-scenario.ts';
import { timedNode } from './timed-child.ts';

const here = dirname(fileURLToPath(import.meta.url));

interface Cell extends ScaleShape {
  readonly axis: string;
  /** Isolation entries of bench/scale-scenario.ts to build and run. */
  readonly entries: readonly string[];
}

const AXIS_ENTRIES = ['kpti', 'asi-2025'];
const ALL_ENTRIES = ['none', 'kpti', 'asi-2019', 'asi-2022', 'asi-2025', 'netns-asi', 'sci-2019'];

function cells(quick: boolean): Cell[] {
  const c = (axis: string, ramGiB: number, threads: number, vms: number, procs: number, duration = '1ms', entries = AXIS_ENTRIES): Cell => ({ axis, ramGiB, threads, vms, procs, duration, entries });
  const out = [
    c('ram', 4, 16, 20, 5), c('ram', 64, 16, 20, 5), c('ram', 1024, 16, 20, 5),
    c('threads', 64, 2, 20, 5), c('threads', 64, 16, 20, 5), c('threads', 64, 128, 20, 5),
  ];
  if (!quick) out.push(c('tenants', 1024, 128, 20, 5), c('tenants', 1024, 128, 200, 50), c('host', 1024, 128, 200, 50, '10ms', ALL_ENTRIES));
  return out;
}

/** The child: build and run the cell's entries, print one JSON line. */
function runCell(cell: Cell): void {
  const yaml = scaleScenarioYaml(cell);
  const t0 = performance.now();
  const s = parseScenario(yaml, `scale-${cell.ramGiB}g-${cell.threads}t.yaml`);
  const parse = performance.now() - t0;
  const entries = cell.entries.map((name) => {
    const i = s.isolation.findIndex((x) => x.name === name);
    const times: BuildTimes = { boot: 0, tenants: 0, spaces: 0 };
    const w = buildWorld(s, i, times);
    const stop = s.stop.kind === 'duration' ? s.stop.time : { unit: 'ns' as const, value: 1e6 };
    const endCycles = stop.unit === 'cycles' ? stop.value : nsToCycles(stop.value, w.costs);
    const e = new Engine(w, { targets: null, endCycles });
    const r0 = performance.now();
    e.run();
    const run = performance.now() - r0;
    const c = e.meter.counts;
    return { entry: name, boot_ms: Math.round(times.boot), tenants_ms: Math.round(times.tenants), spaces_ms: Math.round(times.spaces), run_ms: Math.round(run), events: c.events, touches: c.touches };
  });
  const total = entries.reduce((a, x) => a + x.boot_ms + x.tenants_ms + x.spaces_ms + x.run_ms, 0);
  console.log(JSON.stringify({
    axis: cell.axis, ram_gib: cell.ramGiB, threads: cell.threads, vms: cell.vms, vm_mib: vmBytes(cell) / 2 ** 20, procs: cell.procs, duration: cell.duration,
    parse_ms: Math.round(parse), total_ms: Math.round(total + parse), peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024), entries,
  }));
}

interface HostRun { workers: number; wall_ms: number; cpu_ms: number | null; peak_rss_mib: number | null; report: string }

/** `kasi run` of the host scenario on `workers` workers, in a fresh process. */
function hostRun(file: string, workers: number): HostRun {
  const args = [join(here, '../bin/kasi.js'), 'run', file, '--json', '--no-store', '--seeds', '1', '--force', '--workers', String(workers)];
  const r = timedNode(args, `kasi run ${file} --workers ${workers}`);
  return { workers, wall_ms: Math.round(r.ms), cpu_ms: r.cpuMs === null ? null : Math.round(r.cpuMs), peak_rss_mib: r.peakRssMiB, report: r.stdout };
}

function main(): void {
  const i = process.argv.indexOf('--cell');
  if (i >= 0) { runCell(JSON.parse(process.argv[i + 1]) as Cell); return; }
  const results: unknown[] = [];
  for (const cell of cells(process.argv.includes('--quick'))) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--cell', JSON.stringify(cell)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    let row: Record<string, unknown>;
    try { row = JSON.parse(line) as Record<string, unknown>; } catch { row = { axis: cell.axis, ram_gib: cell.ramGiB, threads: cell.threads, vms: cell.vms, procs: cell.procs, failed: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(0, 3).join(' | ') }; }
    results.push(row);
    const e = (row.entries as { entry: string; boot_ms: number; tenants_ms: number; spaces_ms: number; run_ms: number }[] | undefined) ?? [];
    console.log(`${String(row.axis).padEnd(8)} ${String(cell.ramGiB).padStart(5)} GiB ${String(cell.threads).padStart(4)} thr ${String(cell.vms + cell.procs).padStart(4)} tenants  total ${String(row.total_ms ?? '-').padStart(7)} ms  rss ${String(row.peak_rss_mib ?? '-').padStart(5)} MiB  ${e.map((x) => `${x.entry}: boot ${x.boot_ms} tenants ${x.tenants_ms} spaces ${x.spaces_ms} run ${x.run_ms}`).join('; ')}${row.failed ? ` FAILED ${String(row.failed)}` : ''}`);
  }
  let host: unknown = null;
  if (!process.argv.includes('--quick')) {
    const tmp = mkdtempSync(join(tmpdir(), 'kasi-bench-scale-'));
    try {
      const file = join(tmp, 'host.yaml');
      writeFileSync(file, scaleScenarioYaml({ ramGiB: 1024, threads: 128, vms: 200, procs: 50, duration: '10ms' }));
      const runs = [hostRun(file, 1), hostRun(file, 2)];
      const same = runs[0].report === runs[1].report;
      host = { scenario: '1 TiB, 128 threads, 200 VMs of 4 GiB + 50 processes, 7 entries, 10 ms, 1 seed', runs: runs.map(({ report: _r, ...x }) => x), identical_reports: same, speedup: Number((runs[0].wall_ms / runs[1].wall_ms).toFixed(2)) };
      for (const x of runs) console.log(`kasi run host --workers ${x.workers}: ${(x.wall_ms / 1000).toFixed(1)} s wall, ${x.cpu_ms === null ? '-' : (x.cpu_ms / 1000).toFixed(1)} s CPU, peak RSS ${x.peak_rss_mib ?? '-'} MiB`);
      console.log(`  reports identical: ${same}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  writeFileSync(join(here, 'scale-results.json'), JSON.stringify({ cells: results, host_kasi_run: host, node: process.version, note: 'wall-clock ms on the shared 2-core machine (loaded): compare within one run' }, null, 2) + '\n');
}

main();
