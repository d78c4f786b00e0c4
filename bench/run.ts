/**
 * `npm run bench`: page walks, TLB hits and a bare typed-array read loop over the same
 * memory, on the real la48 (and la57) kernel captures. Writes bench/results.json.
 *
 *   walks_per_s       full 4-level walks (rights folded, A/D checked/updated), TLB bypassed,
 *                     random VAs on present leaves of the la48 kernel capture
 *   walks5_per_s      the same on the la57 capture (5-level)
 *   tlb_hits_per_s    Mmu.translate where every access hits (a page set that fits the TLB)
 *   tlb_hits_batch_per_s  the same accesses through Mmu.translateBatch, 64 touches a call
 *                     (a footprint's worth), physical addresses into a Float64Array
 *   tlb_misses_per_s  Mmu.translate over all leaves (almost every access misses and fills)
 *   bare_reads_per_s  random u32 reads from the same physical-memory words
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPtImage } from '../src/x86/ptimage.ts';
import { Mmu } from '../src/x86/mmu.ts';
import { PWC_GEOMETRY } from '../src/x86/pwc.ts';
import { SKYLAKE_L1_DTLB } from '../src/x86/tlb.ts';
import { translate, Translation } from '../src/x86/walk.ts';
import { allLeaves, collectLeaves, fittingLeaves, prng, randomVas, type VaSet } from './workload.ts';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'test', 'fixtures', 'captures');
const N = 1 << 20;
const ROUNDS = 15;

/**
 * Round-robin timing: every round runs every task once, so a quiet (or busy) moment of the
 * machine falls on all of them alike; each task keeps its best round. Rates are operations
 * per second of that best round.
 *
 * Each task first runs WARM_CALLS times on WARM_OPS operations, untimed. Called cold on a
 * million operations, V8 compiles a task's loop on-stack (OSR) in its first call, before the
 * code around the loop has type feedback; the second call then left that code for the
 * interpreter, and the loop could stay in the OSR version for the rest of the run: one hits
 * loop ran 3-6x slower in some runs than in others (seen with --trace-deopt: "Insufficient type
 * feedback" at the loop's entry). Short calls first give every task ordinary optimized code.
 */
const WARM_CALLS = 300;
const WARM_OPS = 2048;

function measure(tasks: Record<string, (n: number) => number>): Record<string, { rate: number; check: number }> {
  for (const body of Object.values(tasks)) for (let k = 0; k < WARM_CALLS; k++) body(WARM_OPS);
  const bestMs: Record<string, number> = {};
  const check: Record<string, number> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, body] of Object.entries(tasks)) {
      const t0 = performance.now();
      check[name] = body(N);
      const ms = performance.now() - t0;
      if (!(ms >= bestMs[name])) bestMs[name] = ms;
    }
  }
  return Object.fromEntries(Object.keys(tasks).map((k) => [k, { rate: N / (bestMs[k] / 1000), check: check[k] }]));
}

// One function per task (not closures of one function): V8 keeps type feedback per function, so
// a task's call sites see only its own workload (the hits loop never sees the misses loop's walks).

function walkLoop(img: ReturnType<typeof loadPtImage>, vas: VaSet): (n: number) => number {
  const out = new Translation();
  const { mem, cpu } = img;
  return (n) => {
    let sum = 0;
    const { lo, hi, access } = vas;
    for (let i = 0; i < n; i++) {
      if (translate(mem, cpu, lo[i], hi[i], access[i], out)) sum += out.pa;
      else sum += out.errorCode;
    }
    return sum;
  };
}

function walk5Loop(img: ReturnType<typeof loadPtImage>, vas: VaSet): (n: number) => number {
  const out = new Translation();
  const { mem, cpu } = img;
  return (n) => {
    let sum = 0;
    const { lo, hi, access } = vas;
    for (let i = 0; i < n; i++) {
      if (translate(mem, cpu, lo[i], hi[i], access[i], out)) sum += out.pa;
      else sum += out.errorCode;
    }
    return sum;
  };
}

const BATCH = 64;
const batchPa = new Float64Array(N);

/** One event's touches at a time: 64 addresses in, their physical addresses out, read at once. */
function batchLoop(mmu: Mmu, vas: VaSet): (n: number) => number {
  return (n) => {
    const { lo, hi, access } = vas;
    let sum = 0;
    for (let i = 0; i + BATCH <= n; i += BATCH) {
      if (mmu.translateBatch(lo, hi, access, i, i + BATCH, batchPa) !== i + BATCH) throw new Error('TLB-hit benchmark faulted');
      for (let j = i; j < i + BATCH; j++) sum += batchPa[j];
    }
    return sum;
  };
}

function hitLoop(mmu: Mmu, vas: VaSet): (n: number) => number {
  return (n) => {
    let sum = 0;
    const { lo, hi, access } = vas;
    const out = mmu.out;
    for (let i = 0; i < n; i++) {
      if (mmu.translate(lo[i], hi[i], access[i])) sum += out.pa;
      else sum += out.errorCode;
    }
    return sum;
  };
}

function missLoop(mmu: Mmu, vas: VaSet): (n: number) => number {
  return (n) => {
    let sum = 0;
    const { lo, hi, access } = vas;
    const out = mmu.out;
    for (let i = 0; i < n; i++) {
      if (mmu.translate(lo[i], hi[i], access[i])) sum += out.pa;
      else sum += out.errorCode;
    }
    return sum;
  };
}

// 4-level: the la48 kernel snapshot (CPL 0, kernel CR3). MAXPHYADDR 40 as captured.
const img48 = loadPtImage(join(fixtures, 'la48-pti-nokaslr', 'kernel.json.gz'), 40);
const leaves48 = collectLeaves(img48.mem, img48.cpu.rootAddr, 4);
// Mostly reads, one access in four a write (write faults on read-only pages are full walks too).
const walkVas = randomVas(leaves48, allLeaves(leaves48), N, 1);
{
  const r = prng(7);
  for (let i = 0; i < N; i++) walkVas.access[i] = (r() & 3) === 0 ? 1 : 0;
}

const img57 = loadPtImage(join(fixtures, 'la57-pti-nokaslr', 'kernel.json.gz'), 40);
const leaves57 = collectLeaves(img57.mem, img57.cpu.rootAddr, 5);
const walk5Vas = randomVas(leaves57, allLeaves(leaves57), N, 2);
walk5Vas.access.set(walkVas.access);

// TLB hits: reads of pages that all fit in the default (Skylake L1 DTLB) geometry.
const g = SKYLAKE_L1_DTLB;
const fit = fittingLeaves(leaves48, g.sets4K, g.ways4K, g.sets2M, g.ways2M);
const hitVas = randomVas(leaves48, fit, N, 3);
const mmu = new Mmu(img48.cpu, img48.mem);
hitLoop(mmu, hitVas)(N); // fill every page once
mmu.resetCounters();

// TLB misses: every leaf, so almost every access misses, walks and fills (and evicts).
const mmuMiss = new Mmu(img48.cpu, img48.mem);
const missVas = randomVas(leaves48, allLeaves(leaves48), N, 4);
// The same with the paging-structure caches the engine's Mmus have (x86/pwc.ts: a lookup and a fill per walk).
const mmuMissPwc = new Mmu(img48.cpu, img48.mem, {}, null, PWC_GEOMETRY);

// Bare reads: random u32 loads from the words that back the same physical memory.
const words = img48.mem.wordsOfSlot(0);
const span = img48.mem.frameCount * 1024;
const idx = new Uint32Array(N);
{
  const r = prng(5);
  for (let i = 0; i < N; i++) idx[i] = r() % span;
}

const m0 = measure({
  walks: walkLoop(img48, walkVas),
  walks5: walk5Loop(img57, walk5Vas),
  hits: hitLoop(mmu, hitVas),
  batch: batchLoop(mmu, hitVas),
  misses: missLoop(mmuMiss, missVas),
  missesPwc: missLoop(mmuMissPwc, missVas),
  bare: (n) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum = (sum + words[idx[i]]) | 0;
    return sum;
  },
});
const { walks, walks5, hits, batch, misses, missesPwc, bare } = m0;
if (mmu.tlb.misses !== 0) throw new Error(`TLB-hit benchmark missed ${mmu.tlb.misses} times`);
const missRatio = mmuMiss.tlb.misses / (mmuMiss.tlb.hits + mmuMiss.tlb.misses);

const results = {
  walks_per_s: Math.round(walks.rate),
  walks5_per_s: Math.round(walks5.rate),
  tlb_hits_per_s: Math.round(hits.rate),
  tlb_hits_batch_per_s: Math.round(batch.rate),
  tlb_misses_per_s: Math.round(misses.rate),
  tlb_misses_pwc_per_s: Math.round(missesPwc.rate),
  tlb_miss_ratio: Number(missRatio.toFixed(4)),
  bare_reads_per_s: Math.round(bare.rate),
  walks_vs_bare: Number((walks.rate / bare.rate).toFixed(4)),
  walks5_vs_bare: Number((walks5.rate / bare.rate).toFixed(4)),
  tlb_hits_vs_bare: Number((hits.rate / bare.rate).toFixed(4)),
  tlb_hits_vs_walks: Number((hits.rate / walks.rate).toFixed(2)),
  leaves_la48: leaves48.count,
  hit_set_pages: fit.length,
  ops_per_round: N,
  rounds: ROUNDS,
  node: process.version,
};
writeFileSync(join(here, 'results.json'), JSON.stringify(results, null, 2) + '\n');

const m = (x: number) => (x / 1e6).toFixed(1).padStart(8);
console.log('benchmark                    M ops/s   vs bare');
console.log(`4-level walks (no TLB)      ${m(walks.rate)}   ${results.walks_vs_bare.toFixed(3)}`);
console.log(`5-level walks (no TLB)      ${m(walks5.rate)}   ${results.walks5_vs_bare.toFixed(3)}`);
console.log(`Mmu.translate, all hits     ${m(hits.rate)}   ${results.tlb_hits_vs_bare.toFixed(3)}`);
console.log(`Mmu.translateBatch, hits    ${m(batch.rate)}   ${(batch.rate / bare.rate).toFixed(3)}`);
console.log(`Mmu.translate, ${(missRatio * 100).toFixed(1)}% misses ${m(misses.rate)}   ${(misses.rate / bare.rate).toFixed(3)}`);
console.log(`  the same with PWC          ${m(missesPwc.rate)}   ${(missesPwc.rate / bare.rate).toFixed(3)}`);
console.log(`bare typed-array reads      ${m(bare.rate)}   1.000`);
console.log(`(best of ${ROUNDS} rounds of ${N} ops; checksums ${walks.check} ${hits.check}; written to bench/results.json)`);
