/**
 * `kasi capture [--out DIR] [--root DIR]`: collect from this Linux host what the kernel model
 * needs, into a new capture folder laid out like test/fixtures/captures/* (formats/host-capture.ts
 * lists the files). `kasi kernel --capture DIR` and `kasi vulns --capture DIR` then read it.
 *
 * What cannot be read (kallsyms addresses zeroed by kptr_restrict, iomem hidden, debugfs without
 * root, no /proc/config.gz) is said on stderr, one line each, and the capture carries on; the
 * folder's capture.json lists it too. The folder is written whole or not at all: the files go into
 * a temporary folder beside it, renamed to DIR at the end. An existing DIR is refused.
 * --root reads every path under another folder (tests use a fake root built from a shared capture).
 */
import type { Command } from 'commander';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { captureManifest, collectHostCapture, type HostCapture } from '../../formats/host-capture.ts';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';

export interface CaptureOpts {
  out?: string;
  root?: string;
}

/** Collect and write; returns the report for stdout and the warnings for stderr (exported for tests). */
export function runCapture(opts: CaptureOpts): { out: string; capture: HostCapture; report: string; warnings: string[] } {
  const root = opts.root ?? '/';
  let st;
  try {
    st = statSync(root);
  } catch (err) {
    throw new UsageError(`--root ${root}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!st.isDirectory()) throw new UsageError(`--root ${root}: not a folder`);
  if (opts.out !== undefined && existsSync(opts.out)) throw new UsageError(`--out ${opts.out}: already exists (kasi capture writes a new folder and never adds to one)`);
  const capture = collectHostCapture(root);
  if (capture.files.length === 0) {
    throw new UsageError(`nothing could be read under ${root} (${capture.missing.map((m) => `${m.from}: ${m.why}`).slice(0, 3).join('; ')}): is this a Linux host, or the right --root?`);
  }
  const out = opts.out ?? `kasi-capture-${(capture.release ?? 'unknown').replace(/[^\w.+-]/g, '_')}`;
  if (opts.out === undefined && existsSync(out)) throw new UsageError(`${out}: already exists (give --out DIR for a new folder)`);
  writeFolder(out, capture, root);
  const w = Math.max(...capture.files.map((f) => f.name.length));
  const lines = [`${out}: ${capture.files.length} files from ${root === '/' ? 'this host' : root}${capture.release ? ` (Linux ${capture.release})` : ''}`];
  for (const f of capture.files) lines.push(`  ${f.name.padEnd(w)}  ${String(f.data.length).padStart(9)} bytes  from ${f.from}`);
  if (capture.missing.length > 0) lines.push(`not captured (${capture.missing.length}; see ${join(out, 'capture.json')}):`, ...capture.missing.map((m) => `  ${m.name}: ${m.from}: ${m.why}`));
  lines.push(`next: kasi kernel --capture ${out}; kasi vulns --capture ${out}`);
  const warnings = capture.missing.map((m) => `kasi capture: could not read ${m.from}: ${m.why}`);
  return { out, capture, report: `${lines.join('\n')}\n`, warnings };
}

/** All files into a temporary sibling folder, then one rename: DIR appears complete or not at all. */
function writeFolder(out: string, c: HostCapture, root: string): void {
  const parent = dirname(resolve(out));
  let tmp: string;
  try {
    tmp = mkdtempSync(join(parent, `.${basename(out)}.tmp-`));
  } catch (err) {
    throw new UsageError(`--out ${out}: cannot write in ${parent} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    for (const f of c.files) writeFileSync(join(tmp, f.name), f.data);
    writeFileSync(join(tmp, 'capture.json'), captureManifest(c, root));
    renameSync(tmp, out);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new UsageError(`--out ${out}: ${(err as NodeJS.ErrnoException).code ?? String(err)} while writing the capture (nothing was written)`);
  }
}

export function registerCapture(program: Command): void {
  program
    .command('capture')
    .description('collect what the kernel model needs from this Linux host (kallsyms, iomem, cmdline, cpuinfo, meminfo, vulnerabilities, .config, ptdump) into a capture folder')
    .option('--out <dir>', 'the new capture folder (default: kasi-capture-RELEASE)')
    .option('--root <dir>', 'read /proc, /sys and /boot under this folder instead of / (for tests)')
    .action((opts: CaptureOpts) => {
      const r = runCapture(opts);
      for (const w of r.warnings) process.stderr.write(`${w}\n`);
      writeOutput(r.report);
    });
}
