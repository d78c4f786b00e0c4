/** Plain-text and Markdown tables for the store's commands. */

/** `align`: one letter a column, l or r (default: the first column left, the others right). */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[], indent = '', align = ''): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const left = (c: number): boolean => (align[c] ?? (c === 0 ? 'l' : 'r')) === 'l';
  const line = (r: readonly string[]): string => indent + r.map((v, c) => (left(c) ? (v ?? '').padEnd(widths[c]) : (v ?? '').padStart(widths[c]))).join('  ').trimEnd();
  return [line(header), indent + widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

const mdCell = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return [
    `| ${header.map(mdCell).join(' | ')} |`,
    `|${header.map((_, c) => (c === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
  ];
}

/** A signed delta: +1.5, -2, 0. */
export function signed(x: number, digits = 2): string {
  const r = Number(x.toFixed(digits));
  return r > 0 ? `+${r.toFixed(digits)}` : r < 0 ? r.toFixed(digits) : (0).toFixed(digits);
}

export const num = (n: number): string => n.toLocaleString('en-US');

/** "2026-12-02 01:50:12" from an ISO time. */
export const when = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');

/** The commit, shortened to 12 hex digits (and "-dirty" kept). */
export const shortCommit = (c: string | null): string => (c === null ? 'no commit' : c.replace(/^([0-9a-f]{12})[0-9a-f]*/, '$1'));
