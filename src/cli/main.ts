/**
 * The `kasi` command line. Each subcommand lives in its own file under commands/ and
 * registers itself on the program; this file only wires them and turns errors into what
 * errors.ts prints: one line and exit 2 for bad input, "internal error" and exit 70 for a bug.
 */
import { Command, CommanderError } from 'commander';
import { describeError } from './errors.ts';
import { registerSummary } from './commands/summary.ts';
// -- command imports (one line each) --
import { registerKernel } from './commands/kernel.ts';
import { registerMappings } from './commands/mappings.ts';
import { registerTranslate } from './commands/translate.ts';
import { registerPtdump } from './commands/ptdump.ts';
import { registerAccessCheck } from './commands/access-check.ts';
import { registerVulns } from './commands/vulns.ts';
import { registerAsi } from './commands/asi.ts';
import { registerRun } from './commands/run.ts';
import { registerHistory } from './commands/history.ts';
import { registerShow } from './commands/show.ts';
import { registerDiff } from './commands/diff.ts';
import { registerExport } from './commands/export.ts';
import { registerImport } from './commands/import.ts';
import { registerCalibrate } from './commands/calibrate.ts';
import { registerSweep } from './commands/sweep.ts';
import { registerMerge } from './commands/merge.ts';
import { registerServe } from './commands/serve.ts';
import { registerCapture } from './commands/capture.ts';

const program = new Command();
program
  .name('kasi')
  .description('Model, attack and measure kernel address space isolation on x86-64')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

registerSummary(program);
// -- command registrations (one line each) --
registerKernel(program);
registerMappings(program);
registerTranslate(program);
registerPtdump(program);
registerAccessCheck(program);
registerVulns(program);
registerAsi(program);
registerRun(program);
registerHistory(program);
registerShow(program);
registerDiff(program);
registerExport(program);
registerImport(program);
registerCalibrate(program);
registerSweep(program);
registerMerge(program);
registerServe(program);
registerCapture(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const { text, status } = describeError(err);
  process.stderr.write(text);
  process.exit(status);
}
