/**
 * Source positions of YAML nodes: a value path (["tenants", 1, "pin", 0]) → line:column (both
 * 1-based), through the `yaml` package's Document API. Documents must be parsed with a
 * LineCounter (and keepSourceTokens, so scalars keep their source text for positions inside a
 * string). Aliases are followed to their anchors.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type PathSeg = string | number;

export interface Pos {
  line: number;
  column: number;
}

/** "tenants[1].secrets[0].bytes" */
export function formatPath(path: readonly PathSeg[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s === '' ? '(top level)' : s;
}

export function posAt(lc: LineCounter, offset: number): Pos {
  const { line, col } = lc.linePos(offset);
  return { line, column: col };
}

function deref(doc: Document, n: unknown): unknown {
  return isAlias(n) ? n.resolve(doc) : n;
}

interface Found {
  /** The deepest node reached along the path. */
  node: Node;
  /** The key node of the last map step taken (undefined after a sequence step or at the top). */
  keyNode: Node | undefined;
  /** How many path segments were matched. */
  depth: number;
}

function walk(doc: Document, path: readonly PathSeg[]): Found | undefined {
  let node = deref(doc, doc.contents) as Node | null;
  if (node === null || node === undefined) return undefined;
  let keyNode: Node | undefined;
  let depth = 0;
  for (const seg of path) {
    let next: unknown;
    let nextKey: Node | undefined;
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
      if (pair === undefined) break;
      nextKey = pair.key as Node;
      next = deref(doc, pair.value) ?? pair.key;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = deref(doc, node.items[seg]);
      if (next === undefined) break;
    } else break;
    node = next as Node;
    keyNode = nextKey;
    depth++;
  }
  return { node, keyNode, depth };
}

function nodeStart(n: Node | undefined): number | undefined {
  return n?.range?.[0];
}

/**
 * Where `path` was written: the value's start, or with `key` the key's start (an unknown
 * field). A path that goes past what exists (a missing field) points at the deepest node that
 * does exist. The top of an empty document is 1:1.
 */
export function locate(doc: Document, lc: LineCounter, path: readonly PathSeg[], opts: { key?: boolean } = {}): Pos {
  const f = walk(doc, path);
  if (f === undefined) return { line: 1, column: 1 };
  const exact = f.depth === path.length;
  const off = exact && opts.key ? nodeStart(f.keyNode) ?? nodeStart(f.node) : nodeStart(f.node);
  return off === undefined ? { line: 1, column: 1 } : posAt(lc, off);
}

/**
 * The position of character `index` of the string at `path`: exact for a one-line plain or
 * quoted scalar written without escapes (its source text is the value), else the scalar's start.
 */
export function locateInString(doc: Document, lc: LineCounter, path: readonly PathSeg[], index: number): Pos {
  const f = walk(doc, path);
  if (f === undefined || f.depth !== path.length || !isScalar(f.node) || f.node.range === undefined || f.node.range === null) {
    return locate(doc, lc, path);
  }
  const n = f.node;
  const [start, end] = n.range!;
  const raw = (n.srcToken && 'source' in n.srcToken ? n.srcToken.source : undefined) ?? '';
  const value = String(n.value);
  let inner = -1;
  if (n.type === 'PLAIN' && raw === value) inner = 0;
  else if ((n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE') && raw.slice(1, -1) === value) inner = 1;
  if (inner < 0 || index < 0 || index > value.length || start + inner + index > end) return posAt(lc, start);
  return posAt(lc, start + inner + index);
}

/** Every node's position by formatted path (the value's start), for later error messages. */
export function collectPositions(doc: Document, lc: LineCounter): Map<string, Pos> {
  const out = new Map<string, Pos>();
  const seen = new Set<unknown>();
  const visit = (n: unknown, path: PathSeg[]): void => {
    const node = deref(doc, n) as Node | null | undefined;
    if (node === null || node === undefined || seen.has(node) || path.length > 64) return;
    const off = nodeStart(node);
    if (off !== undefined && path.length > 0) out.set(formatPath(path), posAt(lc, off));
    if (isMap(node)) {
      seen.add(node);
      for (const it of node.items) if (isPair(it) && isScalar(it.key)) visit(it.value ?? it.key, [...path, String(it.key.value)]);
      seen.delete(node);
    } else if (isSeq(node)) {
      seen.add(node);
      node.items.forEach((it, i) => visit(it, [...path, i]));
      seen.delete(node);
    }
  };
  visit(doc.contents, []);
  return out;
}
