// The entry of sim/pool.ts's worker threads: registers tsx's loader in this thread (a worker's
// execArgv cannot carry `--import tsx` on Node 20), then loads the TypeScript task runner.
import { register } from 'tsx/esm/api';

register();
const { runSeedTask } = await import('./seed-worker.ts');
export { runSeedTask };
export default runSeedTask;
