/**
 * What `kasi run` stores besides its report: the scenario's text (a file's own text; the built-in
 * scenario's examples/default.yaml, which test/scenario/scenario.test.ts keeps in step with it, or its
 * JSON when that file is absent), the scenario as run (the YAML document as plain data with the
 * run's seed, --duration and --workload file applied, canonical JSON: what `kasi diff` compares), kasi's version
 * (package.json) and the git commit of kasi's own checkout when there is one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { readTextMaybeGz } from '../formats/files.ts';
import type { Scenario } from '../sim/scenario-types.ts';
import type { SeedsReport } from '../sim/seeds.ts';
import { sha256, type RunRecord } from './save.ts';

/** kasi's own folder (the one holding package.json). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function kasiVersion(): string {
  try {
    return String((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

let commitMemo: string | null | undefined;

/** HEAD of kasi's checkout, with "-dirty" when tracked files differ from it; null outside a checkout or without git. */
export function gitCommit(): string | null {
  if (commitMemo !== undefined) return commitMemo;
  commitMemo = null;
  try {
    const git = (...args: string[]): string => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    // Only kasi's own repository: not one that kasi happens to be installed inside.
    if (realpathSync(git('rev-parse', '--show-toplevel')) !== realpathSync(ROOT)) return commitMemo;
    const head = git('rev-parse', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    commitMemo = /^[0-9a-f]{40}$/.test(head) ? `${head}${dirty ? '-dirty' : ''}` : null;
  } catch {
    // no git, or not a checkout
  }
  return commitMemo;
}

/** JSON with object keys sorted (the same data gives the same text). */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return x.toString();
    if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
      return Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return x;
  });
}

/** The text of the scenario `file` (undefined: the built-in one, `scenario`). */
export function scenarioText(file: string | undefined, scenario: Scenario): string {
  if (file !== undefined) return readTextMaybeGz(file);
  const yaml = join(ROOT, 'examples', 'default.yaml');
  if (existsSync(yaml)) return readFileSync(yaml, 'utf8');
  const { positions: _p, ...rest } = scenario;
  return JSON.stringify(rest, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Map || x instanceof Set ? [...x] : x), 2) + '\n';
}

/** The scenario document as run: seed and --duration of the run applied, and the --workload file (path and sha256) when one replaced a workload entry. */
export function scenarioAsRun(text: string, seed: number, duration: string | null, workload: { file: string; sha256: string } | null = null): string {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    doc = null;
  }
  const obj: Record<string, unknown> = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? { ...(doc as Record<string, unknown>) } : { text };
  obj.seed = seed;
  if (duration !== null) {
    delete obj.events;
    obj.duration = duration;
  }
  if (workload !== null) obj['(--workload)'] = workload;
  return canonicalJson(obj);
}

export function runRecord(args: { file: string | undefined; scenario: Scenario; report: SeedsReport; reportJson: string; duration: string | null; workload?: string | null }): RunRecord {
  const text = scenarioText(args.file, args.scenario);
  let workload: { file: string; sha256: string } | null = null;
  if (args.workload !== undefined && args.workload !== null) {
    let sha = 'unreadable';
    try { sha = sha256(readTextMaybeGz(args.workload)); } catch { /* read before the run; gone since */ }
    workload = { file: args.workload, sha256: sha };
  }
  return {
    report: args.report,
    reportJson: args.reportJson,
    scenarioText: text,
    scenarioJson: scenarioAsRun(text, args.report.seed, args.duration, workload),
    duration: args.duration,
    kasiVersion: kasiVersion(),
    gitCommit: gitCommit(),
    createdAt: new Date().toISOString(),
  };
}
