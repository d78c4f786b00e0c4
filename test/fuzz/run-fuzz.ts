/**
 * Run one fuzz target in a worker thread with a watchdog (test/fuzz/readers.fuzz.test.ts): the
 * worker posts each input before trying it; if no message comes for `watchdogMs`, the case hangs
 * (a loop, a runaway walk): the worker is terminated — that stops even a synchronous loop — and
 * the result names the input. A hang fails the test instead of stalling the suite. One worker
 * serves the tasks of a test file one after another (starting one costs a second); after a hang
 * or a crash the next task starts a new one.
 */
import { Worker } from 'node:worker_threads';

export interface FuzzResult {
  readonly ok: boolean;
  readonly numRuns: number;
  /** Why it failed: the hanging or failing input and the error. */
  readonly report: string;
}

const BOOT = new URL('./worker-boot.mjs', import.meta.url);
let shared: { w: Worker; fresh: boolean } | null = null;

function worker(): { w: Worker; fresh: boolean } {
  if (shared === null) {
    const w = new Worker(BOOT, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: 2048 } });
    w.unref(); // an idle worker does not keep the test process alive
    shared = { w, fresh: true };
  }
  return shared;
}

/** `corpus`: instead of generated cases, these files, each of which must be refused (test/scenario/hostile-corpus.test.ts). */
export function runFuzz(target: string, cases: number, seed: number, watchdogMs: number, corpus?: { file: string; text: string }[]): Promise<FuzzResult> {
  return new Promise((resolve) => {
    const slot = worker();
    const { w } = slot;
    let last = '(before the first case)';
    let runs = 0;
    let settled = false;
    const finish = (r: FuzzResult, kill: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      w.off('message', onMessage).off('error', onError).off('exit', onExit);
      if (kill) { shared = null; void w.terminate(); }
      resolve(r);
    };
    let timer = setTimeout(() => {}, 0);
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => finish({ ok: false, numRuns: runs, report: `${target}: no answer in ${ms} ms (a hang) on case ${runs} (seed ${seed}):\n${last}` }, true), ms);
    };
    const onMessage = (m: { kind: string; text?: string; failed?: boolean; numRuns?: number; counterexample?: string | null; error?: string | null }) => {
      if (m.kind === 'case') {
        last = m.text!;
        runs++;
        arm(watchdogMs);
        return;
      }
      finish({
        ok: !m.failed, numRuns: m.numRuns ?? runs,
        report: m.failed ? `${target}: seed ${seed}: ${m.error}\ninput (shrunk):\n${m.counterexample}` : '',
      }, false);
    };
    const onError = (err: Error) => finish({ ok: false, numRuns: runs, report: `${target}: the worker died (${err.message}) on case ${runs} (seed ${seed}):\n${last.slice(0, 4000)}` }, true);
    const onExit = (code: number) => finish({ ok: false, numRuns: runs, report: `${target}: the worker exited (${code}) on case ${runs} (seed ${seed}):\n${last.slice(0, 4000)}` }, true);
    w.on('message', onMessage).on('error', onError).on('exit', onExit);
    arm(slot.fresh ? watchdogMs * 4 : watchdogMs); // loading the worker (tsx, the seeds) is slower than one case
    slot.fresh = false;
    w.postMessage({ target, cases, seed, corpus });
  });
}
