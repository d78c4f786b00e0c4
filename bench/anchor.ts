/**
 * `npm run bench:anchor`: kasi's MMU figures as ratios to QEMU measured in the same run.
 *
 * Copies the perf-anchor harness (../shared/perf-anchor, or $KASI_PERF_ANCHOR) to a temporary
 * folder (its run.sh builds into its own folder, which may be read-only where it lies), runs it
 * without v86 (QEMU TCG on the 4-level and 2-level guests, and the native reference), then runs
 * bench/run.ts, and writes the anchor's figures and the ratios into bench/results.json under
 * "anchor". The anchor's walks are 4-level 4 KiB walks with A/D preset over 4096 pages, its hits
 * loads from 64 hot pages (see its README); kasi's are its own bench/run.ts figures.
 *
 * Without qemu-system-x86_64 (or gcc, ld, objcopy, or the harness) it prints one line and exits
 * 0: CI does not depend on QEMU. Options: --ms=N --reps=N are passed to the harness.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const source = process.env.KASI_PERF_ANCHOR ?? resolve(repo, '..', 'shared', 'perf-anchor');
const passOn = process.argv.slice(2).filter((a) => /^--(ms|reps)=\d+$/.test(a));

function skip(why: string): never {
  console.log(`bench:anchor: skipped: ${why}`);
  process.exit(0);
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
if (!has('qemu-system-x86_64')) skip('qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)');
for (const tool of ['gcc', 'ld', 'objcopy']) if (!has(tool)) skip(`${tool} not found (Debian: apt-get install gcc binutils)`);
if (!existsSync(join(source, 'run.sh'))) skip(`no perf-anchor harness at ${source} (set KASI_PERF_ANCHOR)`);

const work = mkdtempSync(join(tmpdir(), 'kasi-perf-anchor-'));
let anchor: Record<string, unknown>;
try {
  cpSync(source, work, { recursive: true, filter: (src) => !/\/(build|results|node_modules)(\/|$)/.test(src.slice(source.length)) });
  console.error(`bench:anchor: perf-anchor in ${work} (QEMU, native; no v86)`);
  const run = spawnSync('bash', [join(work, 'run.sh'), '--no-v86', ...passOn], { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = (run.stdout ?? '').trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !line.startsWith('{')) throw new Error(`perf-anchor failed (exit ${run.status})`);
  anchor = JSON.parse(line);
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.error('bench:anchor: kasi bench/run.ts');
const bench = spawnSync(join(repo, 'node_modules', '.bin', 'tsx'), [join(here, 'run.ts')], { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'] });
if (bench.status !== 0) throw new Error(`bench/run.ts failed (exit ${bench.status})`);

const file = join(here, 'results.json');
const kasi = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const num = (o: Record<string, unknown>, k: string): number | null => (typeof o[k] === 'number' ? (o[k] as number) : null);
const ratio = (a: number | null, b: number | null) => (a && b ? Number((a / b).toPrecision(4)) : null);
const figures: Record<string, number | null> = {};
for (const emu of ['qemu_tcg', 'qemu_tcg_i386']) {
  for (const k of ['walks_per_s', 'walks_per_s_n65536', 'tlb_hits_per_s']) figures[`${emu}_${k}`] = num(anchor, `${emu}_${k}`);
}
for (const k of ['native_walks_per_s', 'native_walks_per_s_n4096', 'native_tlb_hits_per_s']) figures[k] = num(anchor, k);
const walks = num(kasi, 'walks_per_s');
const hits = num(kasi, 'tlb_hits_per_s');
const batchHits = num(kasi, 'tlb_hits_batch_per_s');
const result = {
  ...figures,
  // kasi's 4-level walks against QEMU's 4-level walks; hits against QEMU's softmmu hits.
  ratio_kasi_over_qemu_tcg_walks: ratio(walks, figures.qemu_tcg_walks_per_s),
  ratio_kasi_over_qemu_tcg_tlb_hits: ratio(hits, figures.qemu_tcg_tlb_hits_per_s),
  ratio_kasi_batch_over_qemu_tcg_tlb_hits: ratio(batchHits, figures.qemu_tcg_tlb_hits_per_s),
  ratio_kasi_over_qemu_tcg_i386_walks: ratio(walks, figures.qemu_tcg_i386_walks_per_s),
  ratio_kasi_over_native_walks: ratio(walks, figures.native_walks_per_s),
  ratio_kasi_over_native_tlb_hits: ratio(hits, figures.native_tlb_hits_per_s),
  same_run: true,
  env: anchor.env,
};
writeFileSync(file, JSON.stringify({ ...kasi, anchor: result }, null, 2) + '\n');

const m = (x: number | null) => (x === null ? '-' : (x / 1e6).toFixed(1).padStart(8));
console.log('figure (M/s)                 kasi   QEMU TCG   kasi/QEMU');
console.log(`4-level walks            ${m(walks)} ${m(figures.qemu_tcg_walks_per_s)}   ${result.ratio_kasi_over_qemu_tcg_walks}`);
console.log(`TLB hits (translate)     ${m(hits)} ${m(figures.qemu_tcg_tlb_hits_per_s)}   ${result.ratio_kasi_over_qemu_tcg_tlb_hits}`);
console.log(`TLB hits (batch)         ${m(batchHits)} ${m(figures.qemu_tcg_tlb_hits_per_s)}   ${result.ratio_kasi_batch_over_qemu_tcg_tlb_hits}`);
console.log(`(written to bench/results.json under "anchor"; QEMU 2-level walks ${m(figures.qemu_tcg_i386_walks_per_s)} M/s, native walks ${m(figures.native_walks_per_s)} M/s)`);
