/**
 * Whitespace-separated tokens with their columns, and the column spans a `---- ------` divider
 * line gives: the tables of strace -c (src/count.c prints each column as `width` dashes, one
 * space apart) and perf trace -s are laid out that way.
 */
export interface Token {
  text: string;
  start: number;
  /** Exclusive. */
  end: number;
}

export function tokens(line: string): Token[] {
  const out: Token[] = [];
  const re = /\S+/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) out.push({ text: m[0], start: m.index, end: m.index + m[0].length });
  return out;
}

/** The spans of a divider line (`------ ----------- ...`), or null when the line is not one. */
export function dividerSpans(line: string): Token[] | null {
  if (!/^\s*-+(\s+-+)*\s*$/.test(line)) return null;
  return tokens(line);
}

/**
 * Assign tokens to columns by position: a right-aligned value ends inside its column, a
 * left-aligned one starts inside it; a token past the last span belongs to the last column.
 * Returns one token (or undefined, a blank cell) per column, or null when two tokens fall in one
 * column or a token falls in none.
 */
export function byColumns(toks: readonly Token[], spans: readonly Token[], leftAligned: ReadonlySet<number>): (Token | undefined)[] | null {
  const cells: (Token | undefined)[] = new Array(spans.length).fill(undefined);
  for (const t of toks) {
    let col = -1;
    for (let c = 0; c < spans.length; c++) {
      const s = spans[c];
      const probe = leftAligned.has(c) ? t.start : t.end - 1;
      if (probe >= s.start && probe < s.end) { col = c; break; }
    }
    if (col < 0 && t.start >= spans[spans.length - 1].start) col = spans.length - 1;
    if (col < 0 || cells[col] !== undefined) return null;
    cells[col] = t;
  }
  return cells;
}
