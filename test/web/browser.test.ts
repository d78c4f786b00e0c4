/**
 * `kasi serve` in a real browser (issue 13): playwright-core driving Debian's chromium
 * (/usr/bin/chromium, or $KASI_CHROMIUM; never a downloaded browser), one browser launched once.
 * Loads every view, runs the default example from the page and watches its progress (with a
 * second page watching the same run), clicks a heatmap cell and checks it against the report,
 * traces the run's timeline,
 * walks a VA and compares with `kasi translate --json`, zooms the map to one 4 KiB page and
 * clicks it. Screenshots go to test-artifacts/web/ (gitignored), or $KASI_SCREENSHOTS.
 * Skipped, and said so by `npm test`, when there is no chromium.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { buildServer } from '../../src/web/server/app.ts';
import { ensureBuilt } from '../../src/web/server/build.ts';
import { CAPTURES_DIR } from '../../src/web/server/walk.ts';
import { translateImage } from '../../src/cli/commands/translate.ts';

const CHROMIUM = process.env.KASI_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.KASI_SCREENSHOTS ?? join(process.cwd(), 'test-artifacts', 'web');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe.skipIf(!existsSync(CHROMIUM))('kasi serve in chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kasi-e2e-'));
  let app: ReturnType<typeof buildServer>;
  let base = '';
  let browser: BrowserContext;
  let page: Page;
  const errors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const appDir = await ensureBuilt();
    app = buildServer({ db: join(dir, 'kasi.db'), appDir, workers: 2 });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    const { chromium } = await import('playwright-core');
    // A fresh profile of its own (launchPersistentContext passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, args: ARGS, viewport: { width: 1440, height: 900 } });
    page = browser.pages()[0] ?? await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    // (a 4xx the page asked for on purpose, the bad upload below, is logged by chromium too)
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) errors.push(m.text()); });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('walks a VA as kasi translate does', async () => {
    await page.goto(`${base}/#/walk`);
    await page.getByTestId('walk-root').locator('option', { hasText: 'kernel' }).waitFor({ state: 'attached' });
    for (const [va, access] of [['0xffffffff81c00080', 'read'], ['0xffff888000000000', 'exec']]) {
      await page.getByTestId('walk-va').fill(va);
      await page.getByTestId('walk-access').selectOption(access);
      await page.getByTestId('walk-go').click();
      const res = page.getByTestId('walk-result');
      await expect.poll(async () => JSON.parse((await res.getAttribute('data-json')) ?? '{}').va).toBe('0x' + BigInt(va).toString(16).padStart(16, '0'));
      const cli = JSON.parse(translateImage(join(CAPTURES_DIR, 'la48-pti-nokaslr', 'kernel.json.gz'), [va], { json: true, root: 'kernel', access })[0]);
      expect(JSON.parse((await res.getAttribute('data-json'))!)).toEqual(cli);
    }
    expect(await page.getByTestId('walk-result').textContent()).toContain('#PF');
    await page.getByTestId('walk-va').fill('0xffffffff81c00080');
    await page.getByTestId('walk-access').selectOption('read');
    await page.getByTestId('walk-go').click();
    await expect.poll(async () => page.getByTestId('walk-result').textContent()).toContain('PDE (level 2)');
    await shot('walk');
  });

  it('zooms the map from 256 TiB to one 4 KiB page and opens it', async () => {
    await page.goto(`${base}/#/map`);
    const win = page.getByTestId('map-window');
    await win.waitFor({ timeout: 30_000 });
    expect(Number(await win.getAttribute('data-span'))).toBe(2 ** 36);
    await page.waitForTimeout(500);
    await shot('map');
    await page.getByRole('button', { name: 'Low Kernel Mapping' }).click();
    await page.waitForTimeout(400);
    await page.getByTestId('map-va').fill('0xffffffff81000000');
    await page.getByTestId('map-goto').click();
    await expect.poll(async () => win.getAttribute('data-span')).toBe('1');
    expect(Number(await win.getAttribute('data-from'))).toBe(Number((0xffffffff81000000n - 0xffff000000000000n) >> 12n));
    expect(await win.textContent()).toContain('0xffffffff81000000 – 0xffffffff81001000 (4 KiB');
    await page.waitForTimeout(300);
    const box = (await page.getByTestId('map-canvas').boundingBox())!;
    await page.mouse.click(box.x + box.width * 0.6, box.y + 44 + 30 * 0.5); // the first lane: the full kernel tables
    const det = page.getByTestId('map-detail');
    await det.waitFor();
    await expect.poll(async () => det.textContent()).toContain('0xffffffff81000000');
    expect(await det.textContent()).toContain('kernel');
    await shot('map-page');
    // the wheel zooms out about the cursor
    await page.mouse.move(box.x + box.width * 0.6, box.y + 60);
    await page.mouse.wheel(0, 400);
    await expect.poll(async () => Number(await win.getAttribute('data-span'))).toBeGreaterThan(1);
  });

  it('runs the default example from the page, shows its progress to a second page, and opens the report', async () => {
    await page.goto(`${base}/#/run`);
    await page.getByTestId('run-example').locator('option', { hasText: 'default' }).first().waitFor({ state: 'attached' });
    await page.getByTestId('run-example').selectOption('default');
    await page.getByTestId('run-seeds').fill('1');
    await page.getByTestId('run-duration').fill('50us');
    await page.getByTestId('run-go').click();
    await page.getByTestId('run-progress').waitFor();
    const other = await browser.newPage();
    await other.goto(`${base}/#/run`);
    const seen = new Set<string>();
    const seenOther = new Set<string>();
    const count = async (p: Page) => (await p.getByTestId('run-count').textContent({ timeout: 200 }).catch(() => null)) ?? '';
    // Until the finished report opens in the leak view (the run view then goes away).
    for (let i = 0; i < 1200 && !(await page.getByTestId('heatmap').isVisible()); i++) {
      seen.add(await count(page));
      seenOther.add(await count(other));
      await page.waitForTimeout(50);
    }
    // The report opens in the leak view once the run is done.
    await page.getByTestId('heatmap').waitFor({ timeout: 60_000 });
    expect(seen.size).toBeGreaterThan(2); // counts moved: progress streamed
    expect([...seenOther].some((c) => /^\d+\/10$/.test(c))).toBe(true); // the second page saw the same run
    await expect.poll(async () => other.getByTestId('run-progress').getAttribute('data-status')).toBe('done');
    await other.close();
    await shot('leaks');
    const report = (await (await fetch(`${base}/api/runs/1`)).json()).report;
    const set = report.mitigations.find((s: { name: string }) => s.name === 'default');
    const cell = set.matrix[0];
    await page.getByTestId(`cell-default-${cell.attack}-${cell.secret}`).click();
    await expect.poll(async () => page.getByTestId('detail-verdict').textContent()).toBe(`${cell.verdict} (${cell.seeds_leaked} of ${cell.seeds} seeds)`);
    const [lo, hi] = cell.leak_rate_ci95 as [number, number];
    expect(lo).toBeLessThanOrEqual(cell.seeds_leaked / cell.seeds);
    expect(await page.getByTestId('detail-rate').textContent()).toBe(`${Math.floor(100 * lo + 1e-9)}–${Math.ceil(100 * hi - 1e-9)}% (95% interval, Wilson)`);
    await shot('leak-cell');
  });

  it('shows costs with the run\'s timeline, and history', async () => {
    await page.getByRole('link', { name: 'Costs' }).click();
    await page.getByTestId('overhead-chart').locator('canvas').waitFor();
    expect(await page.getByTestId('costs-table').locator('tbody tr').count()).toBe(10);
    await page.getByTestId('timeline-load').click();
    await page.getByTestId('timeline-canvas').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('timeline-set').locator('option').count()).toBe(10);
    await shot('costs');
    await page.getByRole('link', { name: 'History' }).click();
    await page.getByTestId('history-table').waitFor();
    expect(await page.getByTestId('history-table').locator('tbody tr').count()).toBe(1);
    await shot('history');
    await page.getByRole('link', { name: 'Run' }).click();
    await page.getByTestId('run-mode-upload').check();
    await page.getByTestId('run-yaml').fill('name: bad\nmachine: { cpu: nope }\n');
    await page.getByTestId('run-check').click();
    await expect.poll(async () => page.getByTestId('run-error').textContent()).toMatch(/^2:17: field machine\.cpu: expected a CPU profile/);
    await shot('run');
    expect(errors).toEqual([]);
  });
});
