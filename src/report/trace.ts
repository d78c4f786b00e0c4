/**
 * Timelines as Chrome/Perfetto trace-event JSON (issue 12 "Timelines"; the JSON Object Format of
 * the Trace Event Format: {"traceEvents": [...]}, complete events ph "X" with ts/dur in µs,
 * instant events ph "i" with scope "t", metadata ph "M" naming processes and threads), loadable in
 * ui.perfetto.dev and chrome://tracing.
 *
 * A TraceRecorder is what the engine would call as it runs: one per mitigation set, slices of a
 * hardware thread's modes (guest, user, kernel on full tables, kernel on restricted tables) and
 * instant events (ASI exits, faults, flushes, VERWs, stuns, attacker primitives) with two numeric
 * arguments and an interned label. It stores into preallocated typed arrays (no allocation per
 * event, docs/DESIGN.md "Speed") and keeps the first `limit` events, counting the rest, so a long
 * run gives a bounded file (`--trace-limit`). traceJson() writes one process per mitigation set
 * and one thread per hardware thread; checkTrace() is the structural check the tests apply.
 */

import { ARG_NAMES, INSTANT_KINDS, SLICE_KINDS, type InstantKind, type TraceSink } from '../sim/engine-trace.ts';

export { ARG_NAMES, INSTANT_KINDS, SLICE_KINDS, type InstantKind, type SliceKind } from '../sim/engine-trace.ts';

/** Default bound on the events kept per recorder. */
export const DEFAULT_TRACE_LIMIT = 200_000;

const IS_INSTANT = 0x80;

export class TraceRecorder implements TraceSink {
  private readonly kind: Uint8Array;
  private readonly tid: Uint16Array;
  private readonly start: Float64Array;
  private readonly end: Float64Array;
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private readonly label: Int32Array;
  private readonly strings: string[] = [];
  private readonly ids = new Map<string, number>();
  private n = 0;
  /** Events not kept: past the limit. */
  dropped = 0;

  constructor(readonly limit: number = DEFAULT_TRACE_LIMIT) {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`trace limit: expected an integer >= 0, found ${limit}`);
    this.kind = new Uint8Array(limit);
    this.tid = new Uint16Array(limit);
    this.start = new Float64Array(limit);
    this.end = new Float64Array(limit);
    this.a = new Float64Array(limit);
    this.b = new Float64Array(limit);
    this.label = new Int32Array(limit);
  }

  get length(): number {
    return this.n;
  }

  get full(): boolean {
    return this.n >= this.limit;
  }

  /** The id of a label (an event name's detail: a footprint, a symbol, an attack); -1 = none. */
  intern(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.ids.set(s, id);
    }
    return id;
  }

  /** Thread `tid` was in mode `kind` from cycle `from` to `to`. */
  slice(tid: number, kind: number, from: number, to: number, label = -1): void {
    if (this.n >= this.limit) { this.dropped++; return; }
    const i = this.n++;
    this.kind[i] = kind; this.tid[i] = tid; this.start[i] = from; this.end[i] = to; this.label[i] = label;
    this.a[i] = 0; this.b[i] = 0;
  }

  /** Something happened on thread `tid` at `cycle`; `a`, `b`: its numeric arguments (an address, a count). */
  instant(tid: number, kind: number, cycle: number, a = 0, b = 0, label = -1): void {
    if (this.n >= this.limit) { this.dropped++; return; }
    const i = this.n++;
    this.kind[i] = kind | IS_INSTANT; this.tid[i] = tid; this.start[i] = cycle; this.end[i] = cycle; this.label[i] = label;
    this.a[i] = a; this.b[i] = b;
  }

  /** The events as trace-event objects of process `pid` (cycles to µs at `ghz`). */
  events(pid: number, ghz: number, argNames: Partial<Record<InstantKind, readonly [string, string]>> = {}): TraceEvent[] {
    const us = (c: number): number => Math.round(c / ghz) / 1000; // cycles → ns (whole) → µs
    const out: TraceEvent[] = [];
    for (let i = 0; i < this.n; i++) {
      const k = this.kind[i];
      const label = this.label[i] >= 0 ? this.strings[this.label[i]] : undefined;
      if ((k & IS_INSTANT) === 0) {
        const name = SLICE_KINDS[k] ?? `mode-${k}`;
        out.push({ name, cat: 'mode', ph: 'X', ts: us(this.start[i]), dur: Math.max(0, Math.round((us(this.end[i]) - us(this.start[i])) * 1000) / 1000), pid, tid: this.tid[i], ...(label !== undefined ? { args: { what: label } } : {}) });
      } else {
        const kind = INSTANT_KINDS[k & ~IS_INSTANT] ?? `event-${k & ~IS_INSTANT}`;
        const [an, bn] = argNames[kind as InstantKind] ?? ['a', 'b'];
        const args: Record<string, string | number> = { cycle: Math.round(this.start[i]) };
        if (an !== '') args[an] = this.a[i];
        if (bn !== '') args[bn] = this.b[i];
        if (label !== undefined) args.what = label;
        out.push({ name: kind, cat: 'event', ph: 'i', s: 't', ts: us(this.start[i]), pid, tid: this.tid[i], args });
      }
    }
    return out;
  }
}

export interface TraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'i' | 'M';
  ts?: number;
  dur?: number;
  s?: 't' | 'p' | 'g';
  pid: number;
  tid?: number;
  args?: Record<string, unknown>;
}

export interface TraceTrack {
  /** The mitigation set's name: one process in the trace. */
  readonly name: string;
  readonly recorder: TraceRecorder;
  /** The clock, cycles per ns. */
  readonly ghz: number;
  /** One name per hardware thread ("cpu1: victim-vm"). */
  readonly threads: readonly string[];
}

/** The trace-event JSON of `tracks` (`ts` and `dur` in µs). */
export function traceJson(tracks: readonly TraceTrack[], meta: Record<string, unknown> = {}): string {
  const events: TraceEvent[] = [];
  tracks.forEach((t, p) => {
    const pid = p + 1;
    events.push({ name: 'process_name', ph: 'M', pid, args: { name: t.name } });
    events.push({ name: 'process_sort_index', ph: 'M', pid, args: { sort_index: pid } });
    t.threads.forEach((name, tid) => events.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name } }));
    for (const e of t.recorder.events(pid, t.ghz, ARG_NAMES)) events.push(e);
  });
  const dropped = Object.fromEntries(tracks.map((t) => [t.name, t.recorder.dropped]));
  return JSON.stringify({ traceEvents: events, displayTimeUnit: 'ns', otherData: { ...meta, dropped_events: dropped } }) + '\n';
}

/** Structural problems of a trace-event JSON document (empty: none). */
export function checkTrace(doc: unknown): string[] {
  const errs: string[] = [];
  if (doc === null || typeof doc !== 'object' || !Array.isArray((doc as { traceEvents?: unknown }).traceEvents)) return ['not an object with a traceEvents array'];
  const evs = (doc as { traceEvents: unknown[] }).traceEvents;
  const named = new Set<string>();
  evs.forEach((e, i) => {
    const at = `traceEvents[${i}]`;
    if (e === null || typeof e !== 'object') { errs.push(`${at}: not an object`); return; }
    const x = e as Record<string, unknown>;
    if (typeof x.name !== 'string' || x.name === '') errs.push(`${at}: no name`);
    if (typeof x.pid !== 'number' || !Number.isInteger(x.pid)) errs.push(`${at}: pid is not an integer`);
    if (x.ph === 'M') {
      if (x.name === 'thread_name') named.add(`${x.pid}/${x.tid}`);
      if (typeof (x.args as { name?: unknown; sort_index?: unknown } | undefined)?.name !== 'string' && typeof (x.args as { sort_index?: unknown } | undefined)?.sort_index !== 'number') errs.push(`${at}: metadata without args.name`);
      return;
    }
    if (typeof x.tid !== 'number' || !Number.isInteger(x.tid)) errs.push(`${at}: tid is not an integer`);
    if (typeof x.ts !== 'number' || !Number.isFinite(x.ts) || x.ts < 0) errs.push(`${at}: ts is not a time >= 0`);
    if (x.ph === 'X') {
      if (typeof x.dur !== 'number' || !Number.isFinite(x.dur) || x.dur < 0) errs.push(`${at}: complete event without dur >= 0`);
    } else if (x.ph === 'i') {
      if (x.s !== undefined && x.s !== 't' && x.s !== 'p' && x.s !== 'g') errs.push(`${at}: instant scope ${JSON.stringify(x.s)}`);
    } else {
      errs.push(`${at}: phase ${JSON.stringify(x.ph)} (expected X, i or M)`);
    }
    if (x.args !== undefined && (x.args === null || typeof x.args !== 'object')) errs.push(`${at}: args is not an object`);
  });
  for (const [i, e] of evs.entries()) {
    const x = e as Record<string, unknown>;
    if (x !== null && typeof x === 'object' && x.ph !== 'M' && !named.has(`${x.pid}/${x.tid}`)) { errs.push(`traceEvents[${i}]: thread ${x.pid}/${x.tid} has no thread_name`); break; }
  }
  // Slices of one thread must nest or follow each other (what the viewers draw as one track).
  const open = new Map<string, { end: number }[]>();
  const slices = evs.filter((e): e is Record<string, number> & { ph: 'X' } => (e as { ph?: unknown }).ph === 'X')
    .map((e) => ({ key: `${e.pid}/${e.tid}`, ts: e.ts as number, end: (e.ts as number) + (e.dur as number) }))
    .sort((p, q) => (p.key < q.key ? -1 : p.key > q.key ? 1 : p.ts - q.ts || q.end - p.end));
  const EPS = 1e-6;
  for (const s of slices) {
    const stack = open.get(s.key) ?? [];
    while (stack.length > 0 && stack[stack.length - 1].end <= s.ts + EPS) stack.pop();
    if (stack.length > 0 && s.end > stack[stack.length - 1].end + EPS) { errs.push(`thread ${s.key}: a slice at ${s.ts}µs overlaps another without nesting`); break; }
    stack.push({ end: s.end });
    open.set(s.key, stack);
  }
  return errs;
}
