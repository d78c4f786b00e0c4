/**
 * The built app: dist/web/ (never committed, .gitignore). `npm run build:web` builds it, and
 * `kasi serve` builds it on first use when index.html is missing, so a fresh clone needs only
 * `npm install && npx kasi serve`. The build is Vite's, with src/web/app/vite.config.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP_DIR = fileURLToPath(new URL('../../../dist/web/', import.meta.url));
export const VITE_CONFIG = fileURLToPath(new URL('../app/vite.config.ts', import.meta.url));

export function isBuilt(dir = APP_DIR): boolean {
  return existsSync(join(dir, 'index.html'));
}

/** Build the app unless it is there; `say` gets one line before a build. Returns the app folder. */
export async function ensureBuilt(say: (line: string) => void = () => {}, dir = APP_DIR): Promise<string> {
  if (isBuilt(dir)) return dir;
  say(`building the web app into ${dir} (first use; npm run build:web does the same)`);
  const { build } = await import('vite');
  await build({ configFile: VITE_CONFIG, logLevel: 'warn', build: { outDir: dir, emptyOutDir: true } });
  if (!isBuilt(dir)) throw new Error(`the web app build wrote no ${join(dir, 'index.html')}`);
  return dir;
}
