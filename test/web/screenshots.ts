/**
 * The README's screenshots (docs/screenshots/*.png): `npx tsx test/web/screenshots.ts [DIR]`.
 * Runs the built-in default scenario (examples/default.yaml, 8 seeds) through the API into a
 * temporary store, then shows each view in Debian's chromium and saves it. Not a test (vitest
 * runs *.test.ts only); the browser tests check the views, this only pictures them.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { buildServer } from '../../src/web/server/app.ts';
import { ensureBuilt } from '../../src/web/server/build.ts';

const out = process.argv[2] ?? 'docs/screenshots';
mkdirSync(out, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'kasi-shots-'));
const app = buildServer({ db: join(dir, 'kasi.db'), appDir: await ensureBuilt() });
const base = await app.listen({ port: 0, host: '127.0.0.1' });
const ctx = await chromium.launchPersistentContext(join(dir, 'profile'), {
  executablePath: process.env.KASI_CHROMIUM ?? '/usr/bin/chromium', viewport: { width: 1440, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = ctx.pages()[0] ?? await ctx.newPage();
const shot = async (name: string, fullPage = false) => { await page.waitForTimeout(600); await page.screenshot({ path: join(out, `${name}.png`), fullPage }); process.stderr.write(`${name}.png\n`); };
try {
  await page.goto(`${base}/#/run`);
  await page.getByTestId('run-example').locator('option', { hasText: 'default' }).first().waitFor({ state: 'attached' });
  await page.getByTestId('run-go').click();
  await page.getByTestId('run-progress').waitFor();
  await page.waitForTimeout(4000);
  await shot('run');
  // The finished report opens in the leak view; a failed run stays on the run view with its error.
  await Promise.race([
    page.getByTestId('heatmap').waitFor({ timeout: 600_000 }),
    page.locator('[data-testid="run-progress"][data-status="failed"]').waitFor({ timeout: 600_000 }).then(async () => { throw new Error(`the run failed: ${await page.getByTestId('run-progress').textContent()}`); }),
  ]);
  const cell = page.locator('[data-verdict="leaks"]').first();
  await cell.click();
  await shot('leaks');
  await page.getByRole('link', { name: 'Costs' }).click();
  await page.getByTestId('timeline-load').click();
  await page.getByTestId('timeline-canvas').waitFor({ timeout: 300_000 });
  await page.getByTestId('timeline-set').selectOption({ label: 'asi-2025' });
  await shot('costs', true);
  await page.getByRole('link', { name: 'History' }).click();
  await shot('history');
  await page.getByRole('link', { name: 'Page walk' }).click();
  await page.getByTestId('walk-root').locator('option', { hasText: 'kernel' }).waitFor({ state: 'attached' });
  await page.getByTestId('walk-va').fill('0xffffffff81c00080');
  await page.getByTestId('walk-go').click();
  await page.getByTestId('walk-result').waitFor();
  await shot('walk');
  await page.getByRole('link', { name: 'Address spaces' }).click();
  await page.getByTestId('map-window').waitFor({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Low Kernel Mapping' }).click();
  await page.waitForTimeout(500);
  const box = (await page.getByTestId('map-canvas').boundingBox())!;
  await page.mouse.click(box.x + 360, box.y + 44 + 15); // the full kernel lane, in the kernel's own pages
  await shot('map', true);
  await page.getByTestId('map-colour').selectOption('class');
  await shot('map-class');
} finally {
  await ctx.close();
  await app.close();
  rmSync(dir, { recursive: true, force: true });
}
