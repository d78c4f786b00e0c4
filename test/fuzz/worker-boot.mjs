// The entry of the fuzz worker threads (test/fuzz/run-fuzz.ts): registers tsx's loader in this
// thread (a worker's execArgv cannot carry `--import tsx` on Node 20), then runs the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./fuzz-worker.ts');
