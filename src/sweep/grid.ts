/**
 * A sweep file (`kasi sweep FILE`, issue 12 "Sweeps"): a scenario plus a `sweep:` block that maps
 * paths into the scenario to lists of values,
 *
 *   sweep:
 *     machine.cores: [2, 8, 32]
 *     workload[0].mix[0].weight: [1, 4, 16]
 *
 * and stands for the grid of every combination (the cartesian product, the first path varying
 * slowest). Each point is the scenario with those values put in place — a YAML node replaced, or a
 * missing field (and mapping) added; a list index must exist — and is checked exactly as a scenario file is
 * (scenario/load.ts parseScenario), so a value a scenario refuses is refused here too.
 *
 * Errors are one line naming the file, line and column: the scenario without its sweep block is
 * checked first with the sweep block blanked out (every line keeps its number), so a mistake
 * outside the sweep points at itself; a mistake a point's values make points at the value in the
 * sweep block, with the sweep path and the point ("sweep machine.cores[2] = 512 (point 3 of 9)").
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { InputError, readTextMaybeGz } from '../formats/files.ts';
import { LIMITS } from '../formats/limits.ts';
import { parseScenario, ScenarioError } from '../scenario/load.ts';
import { formatPath, posAt, type PathSeg, type Pos } from '../scenario/yaml-locate.ts';
import type { Scenario } from '../sim/scenario-types.ts';

/** At most this many points in one sweep (each is a full kasi run). */
export const MAX_POINTS = 100_000;

export interface Axis {
  /** The path as written ("workload[0].mix[0].weight") and parsed. */
  readonly path: string;
  readonly segs: readonly PathSeg[];
  /** The values, as plain data, and each one's position in the file. */
  readonly values: readonly unknown[];
  readonly pos: readonly Pos[];
}

export interface Point {
  /** 0 … points - 1, in grid order. */
  readonly index: number;
  /** The value index on each axis. */
  readonly at: readonly number[];
  /** path → value: the identity of the point in the store (canonical JSON). */
  readonly params: Readonly<Record<string, unknown>>;
  /** "machine.cores=8, isolation=[none, asi]" */
  readonly label: string;
  /** The point's scenario text (the sweep block removed, the values in place). */
  readonly text: string;
  readonly scenario: Scenario;
}

export interface Grid {
  readonly file: string;
  /** The sweep file's whole text. */
  readonly text: string;
  readonly axes: readonly Axis[];
  readonly size: number;
  /** The scenario without its sweep block. */
  readonly base: Scenario;
}

class SweepError extends ScenarioError {}

const SEG = /^([A-Za-z_][A-Za-z0-9_-]*)|^\[(\d{1,6})\]|^\.([A-Za-z_][A-Za-z0-9_-]*)/;

/** "a.b[0].c" → ['a', 'b', 0, 'c'], or null when it is not a path. */
export function parsePath(s: string): PathSeg[] | null {
  const out: PathSeg[] = [];
  let rest = s;
  while (rest !== '') {
    const m = SEG.exec(rest);
    if (m === null || (out.length === 0 && m[1] === undefined) || (out.length > 0 && m[1] !== undefined)) return null;
    out.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[3]));
    rest = rest.slice(m[0].length);
  }
  return out.length > 0 ? out : null;
}

/** A short text of a value for labels. */
export function valueText(v: unknown): string {
  if (Array.isArray(v) && v.every((x) => x !== null && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string')) return `[${v.map((x) => (x as { name: string }).name).join(', ')}]`;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

function fail(file: string, pos: Pos, detail: string): never {
  throw new SweepError(file, pos, detail);
}

/** The node at `segs` in `doc` must exist up to its parent; a mapping may lack the last key. */
function checkPath(file: string, doc: Document, segs: readonly PathSeg[], at: Pos, path: string): void {
  let n: unknown = doc.contents;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    const last = i === segs.length - 1;
    if (typeof s === 'number') {
      if (!isSeq(n)) fail(file, at, `sweep path ${path}: ${formatPath(segs.slice(0, i)) } is not a list in the scenario`);
      if (s >= n.items.length) fail(file, at, `sweep path ${path}: ${formatPath(segs.slice(0, i))} has ${n.items.length} item(s), so no [${s}]`);
      n = n.items[s];
    } else {
      if (i === 0 && s === 'sweep') fail(file, at, 'sweep path sweep: the sweep block cannot sweep itself');
      if (!isMap(n)) fail(file, at, `sweep path ${path}: ${formatPath(segs.slice(0, i))} is not a mapping in the scenario`);
      n = n.get(s, true); // a missing field is added (a missing mapping too: the loader then checks its name)
      if (n === undefined && !last) return;
    }
  }
}

/** The text with the characters from `start` to `end` blanked (newlines kept: lines keep their numbers). */
function blank(text: string, start: number, end: number): string {
  return text.slice(0, start) + text.slice(start, end).replace(/[^\n]/g, ' ') + text.slice(end);
}

/** Read the sweep file `file` (or its `text`): the axes and the base scenario; points are made by point(). */
export function loadGrid(file: string, text = readTextMaybeGz(file, 'utf8', LIMITS.scenarioBytes)): Grid {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  if (doc.errors.length > 0 || !isMap(doc.contents)) {
    parseScenario(text, file); // names the YAML error with its position
    throw new InputError(file, 'expected a mapping of scenario fields with a sweep block');
  }
  const root = doc.contents as YAMLMap;
  const pair = root.items.find((p) => isScalar(p.key) && p.key.value === 'sweep') as Pair<Node, Node> | undefined;
  if (pair === undefined) fail(file, { line: 1, column: 1 }, 'field sweep: expected a sweep block (sweep: { PATH: [values…] }; a file without one runs with kasi run), found nothing');
  const keyPos = posAt(lc, (pair.key as Node).range![0]);
  const value = pair.value;
  if (!isMap(value) || value.items.length === 0) fail(file, value?.range ? posAt(lc, value.range[0]) : keyPos, 'field sweep: expected a mapping of scenario paths to lists of values, found ' + (isMap(value) ? 'an empty mapping' : isSeq(value) ? 'a list' : 'a value'));
  const end = value.range![2];
  const base = parseScenario(blank(text, (pair.key as Node).range![0], end), file);
  const axes: Axis[] = [];
  let size = 1;
  for (const p of value.items) {
    const k = p.key as Node;
    const at = posAt(lc, k.range![0]);
    const path = isScalar(k) ? String(k.value) : '';
    const segs = parsePath(path);
    if (segs === null) fail(file, at, `field sweep: expected a scenario path such as machine.cores or workload[0].mix[0].weight, found ${JSON.stringify(path)}`);
    if (axes.some((a) => a.path === path)) fail(file, at, `field sweep.${path}: expected each path once, found it again`);
    for (const a of axes) {
      const short = a.segs.length < segs.length ? a.segs : segs;
      if (short.every((s, i) => s === a.segs[i] && s === segs[i])) fail(file, at, `field sweep.${path}: expected paths that do not contain each other, found it inside ${a.path} (or around it)`);
    }
    checkPath(file, doc, segs, at, path);
    const v = p.value as Node | null;
    const vr = v?.range;
    if (!isSeq(v) || v.items.length === 0) fail(file, vr ? posAt(lc, vr[0]) : at, `field sweep.${path}: expected a non-empty list of values, found ${isSeq(v) ? 'an empty list' : 'one value (write it as a list: [value])'}`);
    const items = v.items as Node[];
    axes.push({ path, segs, values: items.map((x) => x.toJS(doc)), pos: items.map((x) => posAt(lc, x.range![0])) });
    size *= items.length;
    if (size > MAX_POINTS) fail(file, at, `field sweep: expected at most ${MAX_POINTS} points, found more with ${path}`);
  }
  return { file, text, axes, size, base };
}

/** The value index on each axis of point `index`. */
export function coordinates(g: Grid, index: number): number[] {
  const at = new Array<number>(g.axes.length);
  let rest = index;
  for (let i = g.axes.length - 1; i >= 0; i--) {
    const n = g.axes[i].values.length;
    at[i] = rest % n;
    rest = Math.floor(rest / n);
  }
  return at;
}

/** Point `index` of the grid, checked as a scenario file is. */
export function point(g: Grid, index: number): Point {
  const at = coordinates(g, index);
  const doc = parseDocument(g.text, { uniqueKeys: true });
  doc.delete('sweep');
  const params: Record<string, unknown> = {};
  at.forEach((k, i) => {
    const a = g.axes[i];
    params[a.path] = a.values[k];
    doc.setIn(a.segs, doc.createNode(a.values[k]));
  });
  const text = doc.toString();
  const label = g.axes.map((a, i) => `${a.path}=${valueText(a.values[at[i]])}`).join(', ');
  let scenario: Scenario;
  try {
    scenario = parseScenario(text, g.file);
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err;
    const detail = err.message.replace(/^.*?:\d+:\d+: /, '');
    const field = /^field (\S+):/.exec(detail)?.[1] ?? '';
    // Blame the axis whose path the field lies on (or under, or above), else the first.
    const on = (x: string, y: string) => x === y || x.startsWith(`${y}.`) || x.startsWith(`${y}[`);
    let ai = g.axes.findIndex((a) => on(field, a.path) || on(a.path, field));
    if (ai < 0) ai = 0;
    const a = g.axes[ai];
    fail(g.file, a.pos[at[ai]], `sweep ${a.path}[${at[ai]}] = ${valueText(a.values[at[ai]])} (point ${index + 1} of ${g.size}: ${label}): ${detail}`);
  }
  return { index, at, params, label, text, scenario };
}
