// Runs vitest with its JSON reporter beside the default one, then prints the
// plain "N passed, N failed" line CI reads (vitest's own summary is not one it knows).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'kasi-test-'));
const out = join(dir, 'vitest.json');
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...process.argv.slice(2)];
const run = spawnSync('npx', args, { stdio: 'inherit' });
let passed = 0, failed = 0, skipped = 0;
try {
  const report = JSON.parse(readFileSync(out, 'utf8'));
  passed = report.numPassedTests;
  failed = report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
  skipped = report.numPendingTests + report.numTodoTests;
  for (const suite of report.testResults) {
    if (suite.status === 'failed' && suite.assertionResults.length === 0) failed += 1; // a file that failed to load
  }
} catch (err) {
  console.error(`kasi test: no vitest report (${err.message})`);
  failed += 1;
}
rmSync(dir, { recursive: true, force: true });
// test/web/browser.test.ts skips itself without a browser; say so (.ci/run always installs Debian's chromium).
const chromium = process.env.KASI_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(chromium)) console.log(`kasi test: browser tests skipped (test/web/browser.test.ts): no ${chromium}; apt-get install chromium to run them`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || run.status !== 0 || passed === 0 ? 1 : 0);
