/**
 * Trace-event JSON (src/report/trace.ts): a recorder's slices and instants come out as a document
 * the structural check accepts (one process per mitigation set, a named thread per hardware
 * thread, µs times from cycles at the profile's clock); the limit bounds what is kept and the
 * dropped count is reported; and the check rejects what a viewer could not draw.
 */
import { describe, expect, it } from 'vitest';
import { checkTrace, INSTANT_KINDS, SLICE_KINDS, traceJson, TraceRecorder } from '../../src/report/trace.ts';

const S = (k: (typeof SLICE_KINDS)[number]): number => SLICE_KINDS.indexOf(k);
const I = (k: (typeof INSTANT_KINDS)[number]): number => INSTANT_KINDS.indexOf(k);

describe('trace events', () => {
  it('slices and instants of two sets: a well-formed trace with µs times', () => {
    const a = new TraceRecorder(100);
    const vmexit = a.intern('EPT_VIOLATION');
    a.slice(0, S('guest'), 0, 2000);
    a.slice(0, S('kernel-restricted'), 2000, 2600, vmexit);
    a.instant(0, I('asi-exit'), 2300, 0xffff888000001000, 1, a.intern('kvm_mmu_page_fault'));
    a.slice(0, S('kernel-full'), 2300, 2600);
    a.instant(1, I('attack'), 2400, 32, 0, a.intern('l1tf-guest'));
    const b = new TraceRecorder(100);
    b.slice(0, S('guest'), 0, 4000);
    const doc = JSON.parse(traceJson([
      { name: 'none', recorder: a, ghz: 2, threads: ['cpu0: victim', 'cpu1: attacker'] },
      { name: 'asi-2025', recorder: b, ghz: 2, threads: ['cpu0: victim', 'cpu1: attacker'] },
    ], { scenario: 'tiny' }));
    expect(checkTrace(doc)).toEqual([]);
    const evs = doc.traceEvents as { name: string; ph: string; pid: number; tid?: number; ts?: number; dur?: number; args?: Record<string, unknown> }[];
    expect(evs.filter((e) => e.name === 'process_name').map((e) => e.args?.name)).toEqual(['none', 'asi-2025']);
    const exit = evs.find((e) => e.name === 'asi-exit')!;
    expect(exit).toMatchObject({ ph: 'i', pid: 1, tid: 0, ts: 1.15, args: { what: 'kvm_mmu_page_fault', cycle: 2300 } });
    expect(evs.find((e) => e.name === 'kernel-restricted')).toMatchObject({ ph: 'X', ts: 1, dur: 0.3, args: { what: 'EPT_VIOLATION' } });
    expect(doc.otherData).toEqual({ scenario: 'tiny', dropped_events: { none: 0, 'asi-2025': 0 } });
  });

  it('keeps the first `limit` events and counts the rest', () => {
    const r = new TraceRecorder(3);
    for (let i = 0; i < 10; i++) r.slice(0, S('user'), i * 10, i * 10 + 5);
    expect(r.length).toBe(3);
    expect(r.dropped).toBe(7);
    const doc = JSON.parse(traceJson([{ name: 'x', recorder: r, ghz: 1, threads: ['cpu0'] }]));
    expect(doc.traceEvents.filter((e: { ph: string }) => e.ph === 'X')).toHaveLength(3);
    expect(doc.otherData.dropped_events).toEqual({ x: 7 });
    expect(checkTrace(doc)).toEqual([]);
  });

  it('the check rejects overlapping slices, a slice without dur, a thread without a name, a bad phase', () => {
    const meta = [{ name: 'thread_name', ph: 'M', pid: 1, tid: 0, args: { name: 'cpu0' } }];
    expect(checkTrace({ traceEvents: [...meta, { name: 'a', ph: 'X', ts: 0, dur: 5, pid: 1, tid: 0 }, { name: 'b', ph: 'X', ts: 3, dur: 5, pid: 1, tid: 0 }] }))
      .toEqual([expect.stringMatching(/overlaps another without nesting/)]);
    expect(checkTrace({ traceEvents: [...meta, { name: 'a', ph: 'X', ts: 0, dur: 5, pid: 1, tid: 0 }, { name: 'b', ph: 'X', ts: 1, dur: 2, pid: 1, tid: 0 }] })).toEqual([]);
    expect(checkTrace({ traceEvents: [...meta, { name: 'a', ph: 'X', ts: 0, pid: 1, tid: 0 }] })).toEqual([expect.stringMatching(/without dur/)]);
    expect(checkTrace({ traceEvents: [{ name: 'a', ph: 'i', ts: 0, pid: 1, tid: 3 }] })).toEqual([expect.stringMatching(/has no thread_name/)]);
    expect(checkTrace({ traceEvents: [...meta, { name: 'a', ph: 'B', ts: 0, pid: 1, tid: 0 }] })).toEqual([expect.stringMatching(/phase "B"/)]);
    expect(checkTrace([])).toEqual(['not an object with a traceEvents array']);
  });
});
