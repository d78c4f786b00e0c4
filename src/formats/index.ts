/**
 * Tool outputs in: detect the format (or take the one named), parse it, sum it into a workload
 * profile (profile.ts). ptdump is a reader of its own (ptdump.ts): page tables, not a workload.
 */
import { InputError } from './files.ts';
import { parseBccKvmexit } from './bcc-kvmexit.ts';
import { WORKLOAD_FORMATS, detectFormat, type Format, type WorkloadFormat } from './detect.ts';
import { parseKvmTrace } from './kvm-trace.ts';
import { parsePerfKvmStat } from './perf-kvm-stat.ts';
import { parsePerfTrace } from './perf-trace.ts';
import { toProfile, type Parsed, type WorkloadProfile } from './profile.ts';
import { parseStraceC } from './strace.ts';
import { noTable, textLines } from './text.ts';

export { FORMATS, WORKLOAD_FORMATS, detectFormat, type Format, type WorkloadFormat } from './detect.ts';
export type { WorkloadEvent, WorkloadProfile, Skipped, ProfileKind } from './profile.ts';

export const PARSERS: Readonly<Record<WorkloadFormat, (text: string, file: string) => Parsed>> = {
  'strace-c': parseStraceC,
  'perf-trace-summary': parsePerfTrace,
  'perf-kvm-stat': parsePerfKvmStat,
  'kvm-trace': parseKvmTrace,
  'bcc-kvmexit': parseBccKvmexit,
};

const ALL = 'the output of strace -c, perf trace -s, perf kvm stat, a kvm_exit trace, bcc kvmexit.py or the kernel\'s ptdump';

/** The format named, or the one detected; InputError when nothing in the file is one. */
export function resolveFormat(text: string, file: string, kind?: Format): { format: Format; detected: boolean } {
  if (kind !== undefined) return { format: kind, detected: false };
  const d = detectFormat(text, file);
  if (d === null) throw noTable(file, textLines(text, file), ALL);
  return { format: d.format, detected: true };
}

/** A tool's output as a workload profile. */
export function importWorkload(text: string, file: string, opts: { kind?: WorkloadFormat; vcpu?: number } = {}): { profile: WorkloadProfile; format: WorkloadFormat; detected: boolean } {
  const { format, detected } = resolveFormat(text, file, opts.kind);
  if (!(WORKLOAD_FORMATS as readonly string[]).includes(format)) {
    throw new InputError(file, `this is the kernel's ptdump (page tables), not a workload: import it as ptdump`);
  }
  const f = format as WorkloadFormat;
  const profile = toProfile(PARSERS[f](text, file), file, { detected: detected ? f : null, vcpu: opts.vcpu });
  return { profile, format: f, detected };
}
