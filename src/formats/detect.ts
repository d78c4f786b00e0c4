/**
 * Which tool printed a file: the first line that only one of the formats prints decides
 * (a strace -c or perf trace -s header, perf kvm stat's "Analyze events for" or its table
 * header, a kvm_exit trace line, kvmexit.py's title or header, a ptdump marker or run).
 */
import { straceHeader } from './strace.ts';
import { textLines } from './text.ts';

export const WORKLOAD_FORMATS = ['strace-c', 'perf-trace-summary', 'perf-kvm-stat', 'kvm-trace', 'bcc-kvmexit'] as const;
export type WorkloadFormat = (typeof WORKLOAD_FORMATS)[number];
export const FORMATS = [...WORKLOAD_FORMATS, 'ptdump'] as const;
export type Format = (typeof FORMATS)[number];

const SIGNATURES: readonly (readonly [Format, RegExp])[] = [
  ['strace-c', /^%\s+time\s+(seconds|shortest|longest|usecs\/call|calls)\b/],
  ['strace-c', /^(seconds|calls|usecs\/call)\s+.*\bsyscall$/],
  ['strace-c', /^-{6} -{11} -{11} -{9} -{9} -{16}$/],
  ['perf-trace-summary', /^Summary of events:$/],
  ['perf-trace-summary', /^syscall\s+(calls|count)\s+(errors\s+)?(total|min)\b/],
  ['perf-kvm-stat', /^Analyze events for /],
  ['perf-kvm-stat', /^(VM-EXIT|IO Port Access|MMIO Access)\s+Samples\s+Samples%/],
  ['perf-kvm-stat', /^Total Samples:\s*\d+, Total events handled time:/],
  ['kvm-trace', /(?:^|\s)(?:kvm:)?kvm_(exit|entry):(\s|$)/],
  ['bcc-kvmexit', /^Display kvm exit reasons and statistics for /],
  ['bcc-kvmexit', /^((PID|TID|TIDS)\s+)*KVM_EXIT_REASON\s+COUNT$/],
  ['bcc-kvmexit', /^File ".*kvmexit(\.py)?", line \d+/],
  ['ptdump', /^---\[ .* \]---$/],
  ['ptdump', /^0x[0-9a-fA-F]{8,16}-0x[0-9a-fA-F]{8,16}\s+\d+[BKMGTPE]\s/],
];

/** The detected format and the line that told it, or null. Binary input raises InputError. */
export function detectFormat(text: string, file: string): { format: Format; line: number } | null {
  const lines = textLines(text, file);
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim();
    if (t === '' || t.length > 4096) continue;
    if (straceHeader(t) !== null) return { format: 'strace-c', line: i + 1 }; // count.c's columns in any order (-U)
    for (const [format, re] of SIGNATURES) if (re.test(t)) return { format, line: i + 1 };
  }
  return null;
}
