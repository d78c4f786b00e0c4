/**
 * The kernel command line split as the kernel splits it: `next_arg()` of lib/cmdline.c, driven
 * by the loop of parse_args() in kernel/params.c.
 *
 * next_arg() rules, reproduced exactly:
 * - an argument ends at the first whitespace outside double quotes; every `"` toggles quoting;
 * - the first `=` at index > 0 splits name and value (an `=` at index 0 does not count);
 * - a value starting with `"` loses it, and then a trailing `"` of the argument is dropped;
 * - an argument starting with `"` loses it, and a trailing `"` is dropped;
 * - quotes elsewhere stay; there is no escape character.
 * parse_args() stops at a bare `--`: the rest goes to init unparsed.
 * Whitespace is lib/ctype.c's isspace(): \t \n \v \f \r, space, and 0xA0 (read files as latin1).
 */
import { readTextMaybeGz } from './kallsyms.ts';

export interface CmdlineParam {
  /** The name as written (hyphens and underscores are equivalent when comparing, see paramEq). */
  name: string;
  /** null when there was no `=` (a flag such as `nokaslr`); '' for `name=`. */
  value: string | null;
}

export interface ParsedCmdline {
  params: CmdlineParam[];
  /** What follows a bare `--` (arguments for init), or undefined when there is none. */
  initArgs: string | undefined;
}

/** lib/ctype.c: _S or _SP. */
function isspace(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 0xa0;
}

/** lib/string.c skip_spaces(). */
function skipSpaces(s: string, p: number): number {
  while (p < s.length && isspace(s.charCodeAt(p))) p++;
  return p;
}

/** Up to the first NUL of `a` from `from` (the C string the kernel would read). */
function cstr(a: string[], from: number): string {
  let s = '';
  for (let k = from; k < a.length && a[k] !== '\0'; k++) s += a[k];
  return s;
}

/** lib/cmdline.c next_arg(): one parameter from position p; returns it and where the next one starts. */
export function nextArg(s: string, p: number): { param: string; val: string | null; next: number } {
  let args = p;
  let inQuote = false;
  let quoted = false;
  if (s[args] === '"') { args++; inQuote = true; quoted = true; }
  let i = 0;
  let equals = 0;
  for (; args + i < s.length && s[args + i] !== '\0'; i++) {
    const c = s[args + i];
    if (isspace(c.charCodeAt(0)) && !inQuote) break;
    if (equals === 0 && c === '=') equals = i;
    if (c === '"') inQuote = !inQuote;
  }
  // The kernel writes NULs into the argument; model it on a copy of its characters.
  const a = s.slice(args, args + i).split('');
  let val: number | null = null;
  if (equals !== 0) {
    a[equals] = '\0';
    val = equals + 1;
    // Don't include quotes in value.
    if (a[val] === '"') {
      val++;
      if (a[i - 1] === '"') a[i - 1] = '\0';
    }
  }
  // (with i === 0 the kernel looks at args[-1], the opening quote: clearing it changes nothing)
  if (quoted && i > 0 && a[i - 1] === '"') a[i - 1] = '\0';
  let next = args + i;
  if (next < s.length && s[next] !== '\0') next++;
  return { param: cstr(a, 0), val: val === null ? null : cstr(a, val), next: skipSpaces(s, next) };
}

/** kernel/params.c parse_args(): every parameter in order, stopping at `--`. */
export function parseCmdline(text: string): ParsedCmdline {
  const params: CmdlineParam[] = [];
  let p = skipSpaces(text, 0);
  while (p < text.length && text[p] !== '\0') {
    const { param, val, next } = nextArg(text, p);
    p = next;
    if (val === null && param === '--') return { params, initArgs: text.slice(p).replace(/\0.*$/s, '') };
    params.push({ name: param, value: val });
  }
  return { params, initArgs: undefined };
}

/** One parameter with where it starts and where the next one does (offsets into the line). */
export interface ParamSpan extends CmdlineParam { start: number; end: number }

/**
 * The parameters of a line with their offsets, up to a bare `--` or the first NUL (where the C
 * string the kernel reads ends) — parse_args()'s loop, keeping positions for error messages.
 * Every step advances: next_arg() consumes at least one character of a non-empty argument.
 */
export function paramSpans(s: string): ParamSpan[] {
  const out: ParamSpan[] = [];
  let p = skipSpaces(s, 0);
  while (p < s.length && s[p] !== '\0') {
    const a = nextArg(s, p);
    if (a.param === '--' && a.val === null) break;
    out.push({ name: a.param, value: a.val, start: p, end: a.next });
    p = a.next;
  }
  return out;
}

/** kernel/params.c parameq(): names compare equal with '-' and '_' interchangeable. */
export function paramEq(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] === '-' ? '_' : a[i];
    const y = b[i] === '-' ? '_' : b[i];
    if (x !== y) return false;
  }
  return true;
}

/** The last occurrence of a parameter (later ones override earlier for most parameters). */
export function lastParam(c: ParsedCmdline, name: string): CmdlineParam | undefined {
  for (let i = c.params.length - 1; i >= 0; i--) if (paramEq(c.params[i].name, name)) return c.params[i];
  return undefined;
}

export function hasParam(c: ParsedCmdline, name: string): boolean {
  return lastParam(c, name) !== undefined;
}

/** Read /proc/cmdline (or a saved copy) as bytes, one char a byte, and split it. */
export function loadCmdline(file: string): ParsedCmdline {
  return parseCmdline(readTextMaybeGz(file, 'latin1'));
}
