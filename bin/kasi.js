#!/usr/bin/env node
// The `kasi` command: the compiled CLI, dist/cli/kasi.js (scripts/build.mjs; npm's `prepare` builds
// it on `npm install` in a checkout, on an install from git and on `npm pack`). In a checkout whose
// TypeScript sources are newer than that build (an edit, a pull) or that has no build, it runs the
// sources through tsx's loader instead, as it did before there was a build, so it never runs stale
// code. An installed package ships dist/ and not the CLI's sources, so it always runs dist/.
import { existsSync, readdirSync, statSync } from 'node:fs';

const DIST = new URL('../dist/cli/kasi.js', import.meta.url);
const SRC = new URL('../src/', import.meta.url);
const MAIN = new URL('cli/main.ts', SRC);

/** The newest modification time under `dir` (the web app is Vite's build, not the CLI's). */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (e.name !== 'app' || !dir.pathname.endsWith('/web/')) t = Math.max(t, newest(new URL(`${e.name}/`, dir)));
    } else t = Math.max(t, statSync(new URL(e.name, dir)).mtimeMs);
  }
  return t;
}

const built = existsSync(DIST) && statSync(DIST).mtimeMs;
if (built !== false && (!existsSync(MAIN) || newest(SRC) <= built)) {
  await import(DIST.href);
} else {
  process.stderr.write(`kasi: ${built === false ? 'no compiled CLI (dist/cli/)' : 'src/ is newer than dist/cli/'}; running the sources through tsx (npm run build compiles them)\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import(MAIN.href);
}
