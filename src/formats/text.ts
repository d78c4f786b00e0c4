/**
 * What every tool-output reader shares: text in lines (binary refused), the list of skipped
 * lines, numbers, and the one error a reader raises when nothing in the file is a table.
 * Errors are the project's InputError (formats/files.ts): `FILE:LINE: expected …, found …`.
 */
import { InputError } from './files.ts';
import type { Skipped } from './profile.ts';

/** Lines longer than this are not parsed (no regex ever runs on them): no pathological input can hang a reader. */
export const MAX_LINE = 4096;
/** At most this many skipped lines are listed; the last entry then says how many more there were. */
const MAX_SKIPPED = 200;

// CSI sequences (perf kvm stat live clears the screen with ESC[H ESC[2J before each table) and other ESC x.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;

/** Mail quoting ("> > " before a quoted line): no line of any of the formats starts with '>'. */
const QUOTE = /^[ \t]*>(?:[ \t]?>)*[ \t]?/;

/**
 * The file's lines (1-based: lines[0] is line 1), CR, terminal escapes and mail quote markers removed.
 * A NUL byte, or more than 1% replacement characters (bytes that are not UTF-8), is binary data.
 */
export function textLines(text: string, file: string): string[] {
  const nul = text.indexOf('\u0000');
  if (nul >= 0) throw new InputError(file, `expected text, found binary data (a NUL byte at offset ${nul})`, lineOf(text, nul));
  let bad = 0;
  for (let i = text.indexOf('\ufffd'); i >= 0; i = text.indexOf('\ufffd', i + 1)) bad++;
  if (bad > 0 && bad * 100 > text.length) throw new InputError(file, `expected text, found binary data (${bad} bytes that are not UTF-8)`, lineOf(text, text.indexOf('\ufffd')));
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.includes('\x1b') ? l.replace(ANSI, '') : l).replace(/\r+$/, '').replace(/\r/g, ' ').replace(QUOTE, ''));
}

function lineOf(text: string, offset: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Skipped lines, in line order, capped. */
export class SkipList {
  readonly list: Skipped[] = [];
  private more = 0;
  private lastLine = 0;

  add(line: number, why: string): void {
    if (this.list.length < MAX_SKIPPED) this.list.push({ line, why });
    else this.more++;
    this.lastLine = line;
  }

  done(): Skipped[] {
    this.list.sort((a, b) => a.line - b.line); // notes added after the walk (a table's total) go where their line is
    if (this.more > 0) this.list.push({ line: this.lastLine, why: `and ${this.more} more skipped lines, not listed` });
    this.more = 0;
    return this.list;
  }
}

/** A line as quoted in a message: trimmed, at most 60 characters. */
export function quote(s: string): string {
  const t = s.trim();
  return JSON.stringify(t.length > 60 ? `${t.slice(0, 57)}...` : t);
}

/** The error when nothing in the file is the expected table: at the first non-blank line. */
export function noTable(file: string, lines: readonly string[], expected: string): InputError {
  const i = lines.findIndex((l) => l.trim() !== '');
  if (i < 0) return new InputError(file, `expected ${expected}, found ${lines.length === 0 ? 'an empty file' : 'only blank lines'}`, Math.max(1, lines.length));
  return new InputError(file, `expected ${expected}, found ${quote(lines[i])}`, i + 1);
}

/** `expected X, found <line N>` (or the end of the file when line N does not exist). */
export function expectedAt(file: string, lines: readonly string[], line: number, expected: string): InputError {
  if (line >= 1 && line <= lines.length) return new InputError(file, `expected ${expected}, found ${quote(lines[line - 1])}`, line);
  return new InputError(file, `expected ${expected}, found the end of the file`, Math.max(1, lines.length));
}

/** The first line after `after` (1-based) that is not blank, a divider or `also` (trimmed); beyond the end when none. */
export function nextContent(lines: readonly string[], after: number, also?: (t: string) => boolean): number {
  let i = after;
  while (i < lines.length && (lines[i].trim() === '' || /^[\s-]+$/.test(lines[i]) || (also?.(lines[i].trim()) ?? false))) i++;
  return i + 1;
}

/** A decimal count ("12345"), or NaN. */
export function count(s: string): number {
  return /^\d{1,15}$/.test(s) ? Number(s) : NaN;
}

/** A decimal number ("0.054119", "12"), or NaN. */
export function decimal(s: string): number {
  return /^\d{1,15}(\.\d{1,12})?$/.test(s) ? Number(s) : NaN;
}

/** Round a time to whole nanoseconds (null stays null). */
export function ns(x: number | null): number | null {
  return x === null || !Number.isFinite(x) ? null : Math.round(x);
}

/** A line a human put into the tool's output: an elision or an annotation. */
export function elision(t: string): string | null {
  if (/^(\.{3}|…|\[\.{3}\]|\[…\]|<snip>|\[snip\]|<\.{3}>)/i.test(t)) return 'elided rows';
  if (t.startsWith('#') || t.startsWith('//')) return 'annotation';
  return null;
}
