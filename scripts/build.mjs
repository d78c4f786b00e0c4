// The compiled CLI: esbuild bundles src/ into dist/cli/ (npm's `prepare`, so `npm install` in a
// checkout, an install from git and `npm pack` all produce it; bin/kasi.js runs it). tsx stays for
// development and the tests, which run the TypeScript sources.
//
// Entries: the CLI and the two worker-thread modules piscina loads by path (sim/pool.ts,
// web/server/trace-jobs.ts), with shared code split into chunks beside them, so a lazily imported
// command (serve, sweep's plots) is not parsed at start-up. Packages stay external, loaded from
// node_modules as under tsx (better-sqlite3 and resvg are native; vite, fastify and vega are large
// and loaded on demand; piscina starts its threads from its own files), except the small pure-JS
// ones every command loads (BUNDLED): Node's ESM loader resolving, reading and linking their
// dozens of files was half of `kasi --help`'s start-up (bench/startup.ts).
//
// Sources find files relative to themselves (examples/, test/fixtures/, src/web/app/, dist/web/,
// package.json) through import.meta.url / dirname / filename. In a bundle those would name the
// bundle, so the plugin below gives each module the URL its source file has in the package,
// computed from the bundle's own URL at run time: the same files are found wherever the package is
// installed. `KASI_COMPILED` (a define: the bundles' folder, dist/cli) tells the worker-path spots where their worker bundles are.
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = resolve(ROOT, 'src') + sep;
// KASI_BUILD_OUT: another folder under dist/ for the bundles (test/build-cli.ts builds the tests'
// into dist/test-cli/PID/, so `npm pack` rebuilding dist/cli/ in the pack test never pulls a bundle
// from under a running test's child).
const OUT_DIR = process.env.KASI_BUILD_OUT ?? 'dist/cli';
const OUT = resolve(ROOT, OUT_DIR);
if (!OUT.startsWith(resolve(ROOT, 'dist') + sep)) throw new Error(`KASI_BUILD_OUT: ${OUT_DIR} is not a folder under dist/`);

const ENTRIES = {
  kasi: 'src/cli/main.ts',
  'seed-worker': 'src/sim/seed-worker.ts',
  'trace-worker': 'src/web/server/trace-worker.ts',
};

/** Packages inlined into the bundle, with whatever they import; every other package is external. */
const BUNDLED = new Set(['commander', 'yaml', 'zod', 'cli-progress']);

const externals = {
  name: 'kasi-externals',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.importer.includes(`${sep}node_modules${sep}`)) return undefined; // inside a bundled package
      const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      return BUNDLED.has(name) ? undefined : { path: args.path, external: true };
    });
  },
};

/** import.meta.{url,dirname,filename} of a source file, as its path in the package seen from dist/cli/. */
const sourceLocation = {
  name: 'kasi-source-location',
  setup(b) {
    b.onLoad({ filter: /\.tsx?$/ }, async (args) => {
      let text = await readFile(args.path, 'utf8');
      const loader = args.path.endsWith('x') ? 'tsx' : 'ts';
      if (!args.path.startsWith(SRC) || !text.includes('import.meta.')) return { contents: text, loader };
      const rel = relative(OUT, args.path).split(sep).join('/');
      const url = `new URL(${JSON.stringify(rel)}, import.meta.url)`;
      // url first: the dirname and filename replacements bring an import.meta.url of their own (the bundle's).
      text = text.replace(/import\.meta\.url\b/g, `${url}.href`);
      let head = '';
      if (/import\.meta\.(dirname|filename)/.test(text)) {
        head = "import { fileURLToPath as __kasiPath } from 'node:url'; import { dirname as __kasiDir } from 'node:path';\n";
        text = text.replace(/import\.meta\.dirname\b/g, `__kasiDir(__kasiPath(${url}))`).replace(/import\.meta\.filename\b/g, `__kasiPath(${url})`);
      }
      const left = /import\.meta\.(?!url\b)\w+/.exec(text.replaceAll(url, ''));
      if (left) throw new Error(`${relative(ROOT, args.path)}: ${left[0]} has no compiled meaning in scripts/build.mjs`);
      return { contents: head + text, loader };
    });
  },
};

const t = performance.now();
await rm(OUT, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ENTRIES,
  outdir: OUT,
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]', // flat in dist/cli/: the plugin's relative paths hold for every output file
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Bundled CommonJS (commander, yaml) requires Node's modules; an ES module has no `require` of its own.
  banner: { js: "import { createRequire as __kasiRequire } from 'node:module'; const require = __kasiRequire(import.meta.url);" },
  define: { KASI_COMPILED: JSON.stringify(relative(ROOT, OUT).split(sep).join('/')) },
  sourcemap: 'linked', // for node --enable-source-maps; the sources themselves are not shipped
  sourcesContent: false,
  plugins: [externals, sourceLocation],
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js')).reduce((s, [, o]) => s + o.bytes, 0);
console.error(`kasi build: ${relative(ROOT, OUT)}/ (${Object.keys(ENTRIES).join(', ')}; ${(bytes / 1024).toFixed(0)} KiB of JavaScript) in ${((performance.now() - t) / 1000).toFixed(2)} s`);
