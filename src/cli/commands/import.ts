/**
 * `kasi import [KIND] FILE [--vcpu N] [--json]`: a tool's output read as a workload profile
 * (formats/: strace -c, perf trace -s, perf kvm stat, kvm_exit traces, bcc kvmexit.py) or, for
 * the kernel's ptdump, as regions and runs. Without KIND the format is detected and the output
 * says which. Text: one row per event with the footprint it maps to (or borrows, see
 * sim/import-mix.ts) and the lines skipped; --json: the profile object of formats/profile.ts.
 */
import type { Command } from 'commander';
import { readTextMaybeGz } from '../../formats/files.ts';
import { FORMATS, WORKLOAD_FORMATS, importWorkload, resolveFormat, type Format, type WorkloadFormat, type WorkloadProfile } from '../../formats/index.ts';
import { parsePtdump, type Ptdump } from '../../formats/ptdump.ts';
import { footprintKeys } from '../../sim/footprints.ts';
import { profileToMix } from '../../sim/import-mix.ts';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';

export interface ImportOpts {
  json?: boolean;
  vcpu?: string;
}

const TOOL: Readonly<Record<Format, string>> = {
  'strace-c': 'strace -c', 'perf-trace-summary': 'perf trace -s', 'perf-kvm-stat': 'perf kvm stat',
  'kvm-trace': 'kvm_exit trace', 'bcc-kvmexit': 'bcc kvmexit.py', ptdump: "the kernel's ptdump",
};

/** The command's output (exported for tests). `args` are KIND FILE or FILE. */
export function importReport(args: readonly string[], opts: ImportOpts): string {
  const [kindArg, file] = args.length >= 2 ? [args[0], args[1]] : [undefined, args[0]];
  if (file === undefined) throw new UsageError('import: a FILE is required (kasi import [KIND] FILE)');
  if (kindArg !== undefined && !(FORMATS as readonly string[]).includes(kindArg)) {
    throw new UsageError(`import: unknown kind "${kindArg}" (expected one of ${FORMATS.join(', ')})`);
  }
  let vcpu: number | undefined;
  if (opts.vcpu !== undefined) {
    if (!/^\d{1,6}$/.test(opts.vcpu)) throw new UsageError(`--vcpu: expected a vCPU number, found "${opts.vcpu}"`);
    vcpu = Number(opts.vcpu);
  }
  const text = readTextMaybeGz(file);
  const { format, detected } = resolveFormat(text, file, kindArg as Format | undefined);
  if (format === 'ptdump') {
    if (vcpu !== undefined) throw new UsageError('--vcpu: not for a ptdump');
    const dump = parsePtdump(text, file);
    return opts.json ? ptdumpJson(dump, file, detected) : ptdumpText(dump, file, detected);
  }
  const { profile } = importWorkload(text, file, { kind: detected ? undefined : (format as WorkloadFormat), vcpu });
  return opts.json ? `${JSON.stringify(profile)}\n` : profileText(profile, format as WorkloadFormat, detected);
}

function profileText(p: WorkloadProfile, format: WorkloadFormat, detected: boolean): string {
  const keys = new Set(footprintKeys());
  const borrowed = new Map(profileToMix(p, { keys: [...keys] }).borrowed.map((b) => [b.name, b]));
  const total = p.events.reduce((a, e) => a + e.count, 0);
  const out: string[] = [];
  out.push(`${p.source.file}: ${TOOL[format]}${detected ? ' (detected)' : ''}, ${p.kind}: ${p.events.length} events, ${total} ${unit(format)}`);
  out.push(`duration: ${p.duration_ns === null ? 'not in the file' : fmtNs(p.duration_ns)}`);
  const nameW = Math.max(10, ...p.events.map((e) => e.name.length));
  out.push(`  ${'name'.padEnd(nameW)} ${'count'.padStart(10)} ${'errors'.padStart(8)} ${'total'.padStart(12)}  footprint`);
  for (const e of p.events) {
    const b = borrowed.get(e.name);
    const own = p.kind === 'syscalls' ? (e.name === 'majfaults' || e.name === 'minfaults' ? 'page-fault' : `syscall:${e.name}`) : e.reason;
    const fp = b !== undefined ? `${b.key ?? 'unknown reason'} → borrows ${b.from} (${b.why})` : own ?? '-';
    out.push(`  ${e.name.padEnd(nameW)} ${String(e.count).padStart(10)} ${(e.errors === null ? '-' : String(e.errors)).padStart(8)} ${(e.total_ns === null ? '-' : fmtNs(e.total_ns)).padStart(12)}  ${fp}`);
  }
  out.push(...skippedText(p.skipped));
  return `${out.join('\n')}\n`;
}

function unit(format: WorkloadFormat): string {
  return format === 'strace-c' || format === 'perf-trace-summary' ? 'calls' : format === 'perf-kvm-stat' ? 'samples' : format === 'kvm-trace' ? 'kvm_exit lines' : 'exits';
}

function skippedText(skipped: readonly { line: number; why: string }[]): string[] {
  if (skipped.length === 0) return ['skipped: none'];
  return [`skipped ${skipped.length} line${skipped.length === 1 ? '' : 's'}:`, ...skipped.map((s) => `  line ${s.line}: ${s.why}`)];
}

function fmtNs(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(3)}s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(3)}ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(3)}us`;
  return `${ns}ns`;
}

function ptdumpJson(d: Ptdump, file: string, detected: boolean): string {
  return `${JSON.stringify({ format: 'kasi-ptdump/1', kind: 'page-tables', source: { file, detected: detected ? 'ptdump' : null }, regions: d.regions, skipped: d.skipped })}\n`;
}

function ptdumpText(d: Ptdump, file: string, detected: boolean): string {
  const runs = d.regions.reduce((a, r) => a + r.ranges.length, 0);
  const out = [`${file}: ${TOOL.ptdump}${detected ? ' (detected)' : ''}: ${d.regions.length} regions, ${runs} runs`];
  const w = Math.max(8, ...d.regions.map((r) => (r.name ?? '(before any marker)').length));
  out.push(`  ${'region'.padEnd(w)} ${'runs'.padStart(6)} ${'present'.padStart(8)} ${'mapped'.padStart(14)}`);
  for (const r of d.regions) {
    const present = r.ranges.filter((x) => x.present);
    const bytes = present.reduce((a, x) => a + BigInt(x.bytes), 0n);
    out.push(`  ${(r.name ?? '(before any marker)').padEnd(w)} ${String(r.ranges.length).padStart(6)} ${String(present.length).padStart(8)} ${fmtBytes(bytes).padStart(14)}${r.skippedEntries ? `  (+${r.skippedEntries} entries skipped by the kernel)` : ''}`);
  }
  out.push(...skippedText(d.skipped));
  return `${out.join('\n')}\n`;
}

function fmtBytes(b: bigint): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  let u = 0;
  while (b >= 1024n && b % 1024n === 0n && u < units.length - 1) { b /= 1024n; u++; }
  return `${b}${units[u]}`;
}

export function registerImport(program: Command): void {
  program
    .command('import')
    .description(`read a tool's output as a workload profile (${WORKLOAD_FORMATS.join(', ')}) or the kernel's ptdump; without KIND the format is detected`)
    .argument('[kind]', `${FORMATS.join(' | ')} (default: detected)`)
    .argument('[file]', 'the tool output (text, or gzip)')
    .option('--vcpu <n>', "one vCPU's events (kvm-trace, perf-kvm-stat per-VCPU reports, bcc kvmexit -v)")
    .option('--json', 'one JSON object (format kasi-workload/1)')
    .action((kind: string | undefined, file: string | undefined, opts: ImportOpts) => {
      writeOutput(importReport([kind, file].filter((x): x is string => x !== undefined), opts));
    });
}
