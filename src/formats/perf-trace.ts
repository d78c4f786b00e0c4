/**
 * Reader of `perf trace -s` / `--summary` / `-S` output, built to tools/perf/builtin-trace.c
 * (trace__fprintf_thread(), thread__dump_stats()) and tools/perf/util/bpf-trace-summary.c:
 *  - "\n Summary of events:\n\n", then per thread " COMM (TID), N events, P%" with
 *    ", N majfaults" / ", N minfaults" (with -F/--pf) and ", X msec" (with --sched) appended;
 *    the BPF summary prints " thread (TID), N events" or, with --summary-mode=total,
 *    " total, N events"; --summary-mode=cgroup " CGROUP, N events";
 *  - a header "syscall calls errors total min avg max stddev" (the errors column since 5.5,
 *    commit "perf trace: Add syscall failure stats"; before that "calls total min avg max
 *    stddev"; the first layout, 3.x, "count min max avg stddev"), a "(msec)" units line and a
 *    dashes line;
 *  - rows "   %-15s %8u %6u %9.3f %9.3f %9.3f %9.3f %9.2f%%" (name, calls, errors, total msec,
 *    min, avg, max, stddev %); unknown syscalls as "syscall:NNN" (BPF); with --errno-summary,
 *    "\t\t\t\tEAGAIN: 5" lines under a row.
 * Rows are summed by syscall over threads; a thread's majfaults/minfaults become events of
 * those names (they are page faults perf counted for it).
 */
import type { Parsed, Row } from './profile.ts';
import { MAX_LINE, SkipList, count, decimal, elision, expectedAt, nextContent, noTable, textLines } from './text.ts';

const EXPECTED = 'a perf trace -s summary (a "syscall  calls  errors  total  min  avg  max  stddev" header)';
const NUMERIC = new Set(['calls', 'count', 'errors', 'total', 'min', 'avg', 'max', 'stddev']);

/** Column layouts by the number of values after the name, for tables whose header was cut off. */
const BY_WIDTH: Readonly<Record<number, readonly string[]>> = {
  7: ['calls', 'errors', 'total', 'min', 'avg', 'max', 'stddev'],
  6: ['calls', 'total', 'min', 'avg', 'max', 'stddev'],
  5: ['count', 'min', 'max', 'avg', 'stddev'],
};

const THREAD = /^(.+?)(?: \((\d+)\))?, (\d+) events\b(.*)$/;
const CHATTER = [
  /^Summary of events:$/, /^E[A-Z0-9]+: \d+$/, /^\((msec|%)\)(\s+\((msec|%)\))*$/, /^-+(\s+-+)*$/,
  /^\d+\.\d+ \(\s*[\d.]+ ms\): /, /^\d+\.\d+ \S+\/\d+ /, /^LOST \d+ events!$/, /^\^C$/,
];

function header(t: string): string[] | null {
  const cols = t.split(/\s+/);
  if (cols[0] !== 'syscall' || cols.length < 4) return null;
  return cols.slice(1).every((c) => NUMERIC.has(c)) ? cols.slice(1) : null;
}

export function parsePerfTrace(text: string, file: string): Parsed {
  const lines = textLines(text, file);
  const skipped = new SkipList();
  const rows: Row[] = [];
  let cols: string[] | null = null;
  let headerLine = 0;
  let seen = false; // a header, a thread line or a row

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    if (t === '') continue;
    if (raw.length > MAX_LINE) { skipped.add(i + 1, 'line too long'); continue; }
    const h = header(t);
    if (h !== null) {
      cols = h;
      headerLine = i + 1;
      seen = true;
      // A header that mail wrapping cut: the rest of its column names alone on the next line ("max       stddev").
      const rest = i + 1 < lines.length && lines[i + 1].length <= MAX_LINE ? lines[i + 1].trim().split(/\s+/) : [];
      if (rest[0] !== '' && rest.every((c) => NUMERIC.has(c)) && !rest.some((c) => h.includes(c))) { cols = [...h, ...rest]; i++; }
      continue;
    }
    const why = elision(t);
    if (why !== null) { skipped.add(i + 1, why); continue; }
    const r = row(cols, t, i + 1) ?? (i + 1 < lines.length && lines[i + 1].length <= MAX_LINE ? joinedRow(cols, t, lines[i + 1].trim(), i + 1) : null);
    if (r !== null) {
      if (r.line < 0) { r.line = i + 1; i++; }
      rows.push(r);
      seen = true;
      continue;
    }
    const th = THREAD.exec(t);
    if (th !== null) {
      seen = true;
      cols = null; // each section prints its own header
      const faults = /, (\d+) majfaults/.exec(th[4]);
      const minor = /, (\d+) minfaults/.exec(th[4]);
      if (faults) rows.push({ name: 'majfaults', count: Number(faults[1]), totalNs: null, errors: null, reason: null, vcpu: null, line: i + 1 });
      if (minor) rows.push({ name: 'minfaults', count: Number(minor[1]), totalNs: null, errors: null, reason: null, vcpu: null, line: i + 1 });
      continue;
    }
    if (CHATTER.some((re) => re.test(t))) continue;
    skipped.add(i + 1, 'not part of a perf trace summary');
  }
  if (!seen) throw noTable(file, lines, EXPECTED);
  if (rows.length === 0) throw expectedAt(file, lines, nextContent(lines, headerLine, (t) => CHATTER.some((re) => re.test(t))), 'a syscall row of the summary table');
  return { kind: 'syscalls', rows, durationNs: null, skipped: skipped.done(), perVcpu: false };
}

/** A mail-wrapped row: this line and the next together (line -1 marks that two were used). */
function joinedRow(cols: string[] | null, a: string, b: string, line: number): Row | null {
  if (b === '' || header(b) !== null || THREAD.test(b)) return null;
  const r = row(cols, `${a} ${b}`, line);
  if (r !== null) r.line = -1;
  return r;
}

function row(cols: readonly string[] | null, t: string, line: number): Row | null {
  const toks = t.split(/\s+/);
  const name = toks[0];
  if (!/^[A-Za-z_][\w]{0,63}$/.test(name) && !/^syscall:\d{1,6}$/.test(name)) return null;
  const layout = cols ?? BY_WIDTH[toks.length - 1];
  if (layout === undefined || toks.length - 1 !== layout.length) return null;
  const v: Record<string, number> = {};
  for (let k = 0; k < layout.length; k++) {
    const c = layout[k];
    const s = toks[k + 1];
    const x = c === 'calls' || c === 'count' || c === 'errors' ? count(s) : c === 'stddev' ? (s.endsWith('%') ? decimal(s.slice(0, -1)) : NaN) : decimal(s);
    if (Number.isNaN(x)) return null;
    v[c] = x;
  }
  const calls = v.calls ?? v.count;
  // "total" is msecs; the 3.x layout has none: the tool itself computes it as calls × avg.
  const totalMs = v.total ?? (v.avg !== undefined ? v.avg * calls : undefined);
  return { name, count: calls, totalNs: totalMs === undefined ? null : Math.round(totalMs * 1e6), errors: v.errors ?? null, reason: null, vcpu: null, line };
}
