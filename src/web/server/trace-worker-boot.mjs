// The trace worker's entry: registers tsx's loader in this thread (as sim/seed-worker-boot.mjs), then loads trace-worker.ts.
import { register } from 'tsx/esm/api';

register();
const { runTraceTask } = await import('./trace-worker.ts');
export { runTraceTask };
export default runTraceTask;
