/**
 * Leak records and the registry: a small scenario with several attacks and secrets, run twice
 * with the same seed (byte-identical records), records checked field by field against what the
 * scenario did by construction, and runAttack() dispatching to the same primitives.
 */
import { describe, expect, it } from 'vitest';
import { ATTACKS, attackNames, getAttack, runAttack } from '../../src/attacks/index.ts';
import { formatLeakRecords, leakRecords } from '../../src/attacks/report.ts';
import { ATTACK_NAMES, Samples } from '../../src/attacks/sample.ts';
import { va, world } from './world.ts';

/** Thread 0 (kernel) reads secret A and stores secret B, then idles; threads 1 and 2 attack. */
function scenario(seed: number) {
  const w = world('skylake-sp', { seed });
  const p = w.processes.create('victim');
  const a = w.slab.alloc('cred_jar', p.owner.id);
  const b = w.slab.alloc('key_jar', p.owner.id);
  const sa = w.secrets.plantSlab(w.slab, a.id, 'cred');
  const sb = w.secrets.plantSlab(w.slab, b.id, 'key', 64);
  w.secrets.plantProcess(p, 0x1000000n, 64, 'heap'); // never touched: never leaks
  const kernel = w.thread(0, p.pgd, 0);
  w.loadVa(kernel, a.va, 184);
  w.storePa(0, b.pa, 64);
  w.machine.setIdle(0, true);
  const out = new Samples();
  const sib = w.thread(1, p.pgd, 3);
  const other = w.thread(2, p.pgd, 3); // another core
  runAttack('mfbds', { thread: sib }, out, 10);
  runAttack('msbds', { thread: sib }, out, 11);
  runAttack('mfbds', { thread: other }, out, 12);
  const t = va(a.va);
  runAttack('meltdown', { thread: other, target: { vaLo: t.lo, vaHi: t.hi, len: 184 } }, out, 13);
  return { w, out, sa, sb, records: leakRecords(w.secrets, out) };
}

describe('leak records', () => {
  it('one record per (attack, thread, secret) that leaked, ordered, with its fields', () => {
    const { records, sa, sb } = scenario(5);
    expect(records.map((r) => [r.attack, r.name, r.thread, r.bytes, r.of, r.at, r.sources.join(',')])).toEqual([
      ['mfbds', 'cred', 1, 184, 184, 10, 'fill-buffer'],
      ['mfbds', 'key', 1, 64, 64, 10, 'fill-buffer'], // the store's write-allocate went through a fill buffer
      ['msbds', 'key', 1, 64, 64, 11, 'store-buffer'],
      ['meltdown', 'cred', 2, 184, 184, 13, 'memory'],
    ]);
    expect(records[0]).toMatchObject({ secret: sa.id, owner: 'victim', object: sa.object });
    expect(records[1].secret).toBe(sb.id);
  });

  it('same seed: identical records; another seed: same shape, other bytes', () => {
    const x = scenario(5);
    const y = scenario(5);
    expect(JSON.stringify(y.records)).toBe(JSON.stringify(x.records));
    expect(y.out.data.subarray(0, y.out.used)).toEqual(x.out.data.subarray(0, x.out.used));
    const z = scenario(6);
    expect(z.records.map((r) => r.bytes)).toEqual(x.records.map((r) => r.bytes));
    expect(z.out.data.subarray(0, z.out.used)).not.toEqual(x.out.data.subarray(0, x.out.used));
  });

  it('formats one line per record', () => {
    const { records } = scenario(5);
    const text = formatLeakRecords(records);
    expect(text.trimEnd().split('\n')).toHaveLength(4);
    expect(text).toMatch(/^mfbds\s+#0 cred\s+victim\s+cred_jar object \d+\s+184\/184\s+t1\s+@10\s+fill-buffer$/m);
    expect(formatLeakRecords([])).toBe('no secret bytes leaked\n');
  });
});

describe('registry', () => {
  it('every attack name has a spec gated by a bug the kernel knows', () => {
    expect(attackNames()).toEqual([...ATTACK_NAMES]);
    for (const n of ATTACK_NAMES) expect(ATTACKS.get(n)?.name).toBe(n);
    expect(getAttack('l1tf-guest').bug).toBe('l1tf');
    expect(() => getAttack('rowhammer')).toThrow(/unknown attack "rowhammer" \(known: l1tf-native, /);
  });

  it('runAttack checks the context it needs', () => {
    const w = world('skylake-sp');
    const t = w.thread(0, w.swapper, 3);
    expect(() => runAttack('meltdown', { thread: t }, new Samples(), 0)).toThrow(/meltdown: the context has no target/);
    expect(() => runAttack('l1tf-guest', { target: { vaLo: 0, vaHi: 0, len: 8 } }, new Samples(), 0)).toThrow(/no vCPU/);
    expect(() => runAttack('meltdown', { thread: { cpu: t.cpu, hw: t.hw }, target: { vaLo: 0, vaHi: 0, len: 8 } }, new Samples(), 0)).toThrow(/no MMU/);
    expect(() => runAttack('meltdown', { thread: t, target: { vaLo: 0xff8, vaHi: 0, len: 16 } }, new Samples(), 0)).toThrow(/do not fit one 4 KiB page/);
  });

  it('a reused sample buffer stops allocating', () => {
    const { w } = scenario(5);
    const sib = { cpu: w.profile, hw: w.machine.thread(1) };
    const out = new Samples();
    for (let i = 0; i < 3; i++) runAttack('mfbds', { thread: sib }, out, i);
    const data = out.data;
    const start = out.start;
    for (let round = 0; round < 5; round++) {
      out.clear();
      for (let i = 0; i < 3; i++) runAttack('mfbds', { thread: sib }, out, i);
    }
    expect([out.data === data, out.start === start]).toEqual([true, true]);
  });
});
