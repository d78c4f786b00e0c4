/**
 * Reader of `strace -c` summaries (`-c`, `-c -w`, `-f -c`, `-S`, `-U`), built to strace's
 * src/count.c call_summary_pers():
 *  - a header of column names, each right-aligned to its width except the left-aligned syscall
 *    name: "% time", "seconds" (system time, or wall time under -w), "usecs/call", "calls",
 *    "errors", "syscall" by default; -U picks others ("shortest", "longest", "wall-total", …);
 *  - a divider of `width` dashes per column, one space apart (so it gives the column spans);
 *  - one row per syscall; the errors column is printed with "%.0u" (and "%9.u" in strace 4), so
 *    it is blank, not 0, when a syscall never failed;
 *  - the divider again and a "total" row (strace 4 leaves its usecs/call blank);
 *  - per personality after the first, "System call usage summary for 32 bit mode:" and a table.
 * Around the table: "strace: Process N attached" (strace 4: "Process N attached - interrupt to
 * quit", "^CProcess N detached"), "+++ exited with 0 +++", signals, the traced program's output.
 * Rows of every table are summed by name; the total row is not an event.
 */
import { byColumns, dividerSpans, tokens, type Token } from './columns.ts';
import type { Parsed, Row } from './profile.ts';
import { MAX_LINE, SkipList, count, decimal, elision, expectedAt, nextContent, noTable, textLines } from './text.ts';

const EXPECTED = 'a strace -c table (a "% time     seconds  usecs/call     calls    errors syscall" header)';

/** count.c cdesc[] header texts ("% time" is one column). */
const COLUMNS = new Set(['%time', 'seconds', 'usecs/call', 'calls', 'errors', 'syscall', 'shortest', 'longest', 'wall-total', 'wall-min', 'wall-max', 'wall-avg']);

interface Table {
  cols: string[];
  spans: Token[] | null;
  /** After the second divider: the total row. */
  footer: boolean;
  rows: number;
  /** The calls of its rows, to check against the total row. */
  calls: number;
  header: number;
}

/** The column names of a count.c header line (any order, as -U prints them), or null. */
export function straceHeader(t: string): string[] | null {
  const cols = t.replace(/%\s+time/, '%time').split(/\s+/);
  if (!cols.includes('syscall') || cols.length < 2) return null;
  return cols.every((c) => COLUMNS.has(c)) ? cols : null;
}

const CHATTER = [
  /^(strace: )?Process \d+ (attached|detached)/, /^\^C/, /^(\[pid\s+\d+\] )?\+\+\+ (exited|killed)/, /^(\[pid\s+\d+\] )?--- SIG\w+ /, /^strace: /,
  /^System call usage summary for /, /^(\[ )?Process PID=\d+ runs in /,
  /^(\[pid\s+\d+\] )?\w+\(.*(\) += |<unfinished \.\.\.>$)/, /^(\[pid\s+\d+\] )?<\.\.\. \w+ resumed>/, // -C: the trace before the summary
];
/** A row of the default layout, for a table whose header was cut off: "% time  seconds  usecs/call  calls  [errors]  syscall". */
const DEFAULT_ROW = /^\d{1,3}\.\d{2}\s+\d+\.\d{6}\s+\d+\s+\d+(\s+\d+)?\s+[A-Za-z_][\w.:+-]*$/;
const DEFAULT_COLS = ['%time', 'seconds', 'usecs/call', 'calls', 'errors', 'syscall'];

export function parseStraceC(text: string, file: string): Parsed {
  const lines = textLines(text, file);
  const skipped = new SkipList();
  const rows: Row[] = [];
  let table: Table | null = null;
  let tables = 0;
  /** The last table begun (a personality's summary line ends `table`, not this). */
  let last: Table | null = null;
  /** A "System call usage summary for 32 bit mode:" line came since the last table. */
  let personality = false;

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    if (t === '') continue;
    if (raw.length > MAX_LINE) { skipped.add(i + 1, 'line too long'); continue; }
    const cols = straceHeader(t);
    if (cols !== null) {
      if (table !== null && table.rows === 0 && !table.footer) skipped.add(table.header, 'a table header with no rows');
      // call_summary() prints one table per personality, each after the first announced: another table is another run.
      if (last !== null && last.rows > 0 && !personality) skipped.add(i + 1, 'a second table with no "System call usage summary for" line before it (another run?): its rows are added to the others\'');
      personality = false;
      table = { cols, spans: null, footer: false, rows: 0, calls: 0, header: i + 1 };
      last = table;
      tables++;
      continue;
    }
    if (table !== null && CHATTER.some((re) => re.test(t))) {
      // strace's own lines after a table: a personality's summary header starts the next table.
      if (t.startsWith('System call usage summary for ')) { table = null; personality = true; }
      continue;
    }
    if (table !== null) {
      const spans = dividerSpans(raw);
      if (spans !== null) {
        if (table.spans === null && spans.length === table.cols.length) table.spans = spans;
        else if (table.rows > 0 || table.spans !== null) table.footer = true;
        continue;
      }
      const why = elision(t);
      if (why !== null) { skipped.add(i + 1, why); continue; }
      let r = row(table, tokens(raw), i + 1);
      if (typeof r === 'string' && i + 1 < lines.length && lines[i + 1].length <= MAX_LINE && !straceHeader(lines[i + 1].trim())) {
        // A mail-wrapped row: the rest of it is on the next line.
        const joined = row(table, [...tokens(raw), ...tokens(lines[i + 1]).map((k) => ({ ...k, start: k.start + MAX_LINE, end: k.end + MAX_LINE }))], i + 1, true);
        if (typeof joined !== 'string') { r = joined; i++; }
      }
      if (r === 'total') {
        table.footer = true;
        // count.c prints stats.call_cum in the total row: rows adding up to less were cut from the file.
        const said = totalCalls(table, tokens(raw));
        if (said !== null && said !== table.calls) {
          skipped.add(i + 1, `the rows read add up to ${table.calls} calls, the total row says ${said}: ${Math.abs(said - table.calls)} ${table.calls < said ? 'are in rows the file does not have (cut?)' : 'more than counted'}`);
        }
        continue;
      }
      if (typeof r === 'string') { skipped.add(i + 1, r); continue; }
      if (table.footer) { skipped.add(i + 1, 'a row after the total row'); continue; }
      rows.push(r);
      table.rows++;
      table.calls += r.count;
      continue;
    }
    if (CHATTER.some((re) => re.test(t))) { if (t.startsWith('System call usage summary for ')) personality = true; continue; }
    if (DEFAULT_ROW.test(t) || (dividerSpans(raw)?.length === DEFAULT_COLS.length)) {
      // Rows (or the divider) of a table whose header was cut off: the default columns.
      table = { cols: DEFAULT_COLS, spans: null, footer: false, rows: 0, calls: 0, header: i + 1 };
      last = table;
      tables++;
      i--;
      continue;
    }
    skipped.add(i + 1, 'not part of a strace -c table');
  }
  if (tables === 0 || last === null) throw noTable(file, lines, EXPECTED);
  if (rows.length === 0 && last.footer) return { kind: 'syscalls', rows, durationNs: null, skipped: skipped.done(), perVcpu: false }; // a complete table of no calls
  if (rows.length === 0) {
    if (last.cols.indexOf('calls') < 0) throw expectedAt(file, lines, last.header, 'a table with a calls column (strace -U without calls counts nothing)');
    throw expectedAt(file, lines, nextContent(lines, last.header), `a syscall row under the header of line ${last.header}`);
  }
  return { kind: 'syscalls', rows, durationNs: null, skipped: skipped.done(), perVcpu: false };
}

/** The calls the total row says (its calls column by the divider's spans, or by position in a full row), or null. */
function totalCalls(table: Table, toks: Token[]): number | null {
  const k = table.cols.indexOf('calls');
  if (k < 0) return null;
  const cells = toks.length === table.cols.length ? toks : table.spans !== null ? byColumns(toks, table.spans, new Set([table.cols.indexOf('syscall')])) : null;
  const v = cells?.[k]?.text;
  return v === undefined || Number.isNaN(count(v)) ? null : count(v);
}

/** A data row, 'total' for the total row, or why the line is not a row. */
function row(table: Table, toks: Token[], line: number, joined = false): Row | 'total' | string {
  const { cols } = table;
  const nameCol = cols.indexOf('syscall');
  const errCol = cols.indexOf('errors');
  let cells: (Token | undefined)[] | null = null;
  if (toks.length === cols.length) cells = toks;
  else if (toks.length === cols.length - 1 && errCol >= 0) cells = [...toks.slice(0, errCol), undefined, ...toks.slice(errCol)];
  if (cells !== null && !valid(cols, cells)) cells = null;
  if (cells === null && table.spans !== null && !joined) cells = byColumns(toks, table.spans, new Set([nameCol]));
  if (cells !== null && !valid(cols, cells)) cells = null;
  if (cells === null) {
    if (toks.length > 0 && toks[toks.length - 1].text === 'total') return 'total';
    if (!toks.some((k) => /^\d/.test(k.text))) return 'not a row of this table'; // text (prose, a command line), not a row cut short
    return toks.length < cols.length - 1 ? 'a partial row (columns missing)' : 'not a row of this table';
  }
  const name = cells[nameCol]!.text;
  if (name === 'total') return 'total';
  const get = (c: string): number | null => {
    const k = cols.indexOf(c);
    if (k < 0) return null;
    const cell = cells![k];
    return cell === undefined ? 0 : Number(cell.text);
  };
  const calls = get('calls');
  if (calls === null) return 'no calls column in this table (strace -U without calls)';
  const seconds = get('seconds') ?? get('wall-total');
  const usecs = get('usecs/call');
  const totalNs = seconds !== null ? Math.round(seconds * 1e9) : usecs !== null ? Math.round(usecs * 1000 * calls) : null;
  return { name, count: calls, totalNs, errors: errCol >= 0 ? get('errors') : null, reason: null, vcpu: null, line };
}

/** Every cell holds what its column prints; only errors (and the total row's usecs/call) may be blank. */
function valid(cols: readonly string[], cells: readonly (Token | undefined)[]): boolean {
  for (let c = 0; c < cols.length; c++) {
    const cell = cells[c];
    if (cell === undefined) {
      if (cols[c] !== 'errors') return false;
      continue;
    }
    const v = cell.text;
    switch (cols[c]) {
      case 'syscall': if (!/^[A-Za-z_][\w.:+-]{0,63}$/.test(v)) return false; break;
      case 'calls': case 'errors': case 'usecs/call': case 'wall-avg': if (Number.isNaN(count(v))) return false; break;
      default: if (Number.isNaN(decimal(v))) return false;
    }
  }
  return true;
}
