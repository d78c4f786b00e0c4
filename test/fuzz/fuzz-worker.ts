/**
 * Fuzz runs in a worker thread (started by test/fuzz/run-fuzz.ts): for each task it is sent,
 * fast-check over one target of test/fuzz/targets.ts (or a corpus of files). Before each case it posts the input, so that when a case hangs the
 * main thread's watchdog can terminate this thread and say which input it was; at the end it
 * posts the result (the shrunk counterexample and its error, if a case failed).
 */
import { parentPort } from 'node:worker_threads';
import fc from 'fast-check';
import { CAPTURE_FOLDER, SELF_TEST_HANG, TARGETS, isAnswer, type Target } from './targets.ts';

interface Task { target: string; cases: number; seed: number; corpus?: { file: string; text: string }[] }
const post = (m: unknown) => parentPort!.postMessage(m);
const MAX_POSTED = 1 << 16;
const targetOf = (name: string): Target => (name === 'capture-folder' ? CAPTURE_FOLDER : name === 'selftest-hang' ? SELF_TEST_HANG : TARGETS[name]);

/** Corpus mode (test/scenario/hostile-corpus.test.ts): each file must be refused with an answer, not accepted. */
function runCorpus(t: Target, seed: number, files: { file: string; text: string }[]): void {
  for (const c of files) {
    post({ kind: 'case', text: c.file });
    let failure: string | null = `${c.file}: accepted (it must be refused)`;
    try {
      t.run(c.text, c.file);
    } catch (err) {
      failure = isAnswer(t, err) ? null : `${c.file}: ${(err as Error).stack ?? String(err)}`;
    }
    if (failure !== null) {
      post({ kind: 'done', failed: true, numRuns: 0, seed, counterexample: c.file, error: failure.slice(0, 4000) });
      return;
    }
  }
  post({ kind: 'done', failed: false, numRuns: files.length, seed, counterexample: null, error: null });
}

function runCases(t: Target, cases: number, seed: number): void {
  const details = fc.check(fc.property(t.arbitrary(), (text) => {
    post({ kind: 'case', text: text.length > MAX_POSTED ? `${text.slice(0, MAX_POSTED)}… (${text.length} characters)` : text });
    try {
      t.run(text);
    } catch (err) {
      if (isAnswer(t, err)) return true;
      throw err;
    }
    return true;
  }), { numRuns: cases, seed, endOnFailure: false });
  const err = details.errorInstance as Error | null | undefined;
  post({
    kind: 'done', failed: details.failed, numRuns: details.numRuns, seed: details.seed,
    counterexample: details.counterexample === null ? null : String(details.counterexample[0]).slice(0, 4000),
    error: err == null ? null : `${err.name}: ${err.message}\n${err.stack ?? ''}`.slice(0, 4000),
  });
}

// One task a message, so one worker serves every test of a file (a hang ends it: run-fuzz.ts starts another).
parentPort!.on('message', (task: Task) => {
  const t = targetOf(task.target);
  if (task.corpus !== undefined) runCorpus(t, task.seed, task.corpus);
  else runCases(t, task.cases, task.seed);
});
