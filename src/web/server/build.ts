/**
 * The built app: dist/web/ (never committed, .gitignore). `npm run build:web` builds it, and
 * `kasi serve` builds it on first use when index.html is missing, so a fresh clone needs only
 * `npm install && npx kasi serve` — and again when a source of the app is newer than the build
 * (a pull or an edit), so it never serves a stale app. The build is Vite's, with
 * src/web/app/vite.config.ts.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP_DIR = fileURLToPath(new URL('../../../dist/web/', import.meta.url));
export const VITE_CONFIG = fileURLToPath(new URL('../app/vite.config.ts', import.meta.url));

const SOURCES = fileURLToPath(new URL('../app/', import.meta.url));

/** The newest modification time of the app's sources. */
function newestSource(d = SOURCES): number {
  let t = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return t;
}

export function isBuilt(dir = APP_DIR): boolean {
  const index = join(dir, 'index.html');
  return existsSync(index) && statSync(index).mtimeMs >= newestSource();
}

/** Build the app unless it is there; `say` gets one line before a build. Returns the app folder. */
export async function ensureBuilt(say: (line: string) => void = () => {}, dir = APP_DIR): Promise<string> {
  if (isBuilt(dir)) return dir;
  say(`building the web app into ${dir} (${existsSync(join(dir, 'index.html')) ? 'its sources changed' : 'first use'}; npm run build:web does the same)`);
  const { build } = await import('vite');
  await build({ configFile: VITE_CONFIG, logLevel: 'warn', build: { outDir: dir, emptyOutDir: true } });
  if (!isBuilt(dir)) throw new Error(`the web app build wrote no ${join(dir, 'index.html')}`);
  return dir;
}
