/**
 * The L1D model against independent truth: the geometry rules (set = physical address bits
 * 6.. of a 64-byte-line cache, true LRU within a set) written as explicit scenarios, a
 * reference LRU written differently (a list per set) for random access streams, and
 * PhysMemory's own bytes for what a line holds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { L1dCache, LINE_BYTES } from '../../src/uarch/cache.ts';

const KiB = 1024;

function patterned(mem: PhysMemory, pa: number, len: number, seed: number): void {
  for (let i = 0; i < len; i++) mem.writeByte(pa + i, (seed + i * 7) & 0xff);
}

describe('geometry', () => {
  it('Skylake 32 KiB 8-way and Ice Lake 48 KiB 12-way both have 64 sets', () => {
    const mem = new PhysMemory(46);
    expect(new L1dCache({ sizeBytes: 32 * KiB, ways: 8 }, mem).sets).toBe(64);
    expect(new L1dCache({ sizeBytes: 48 * KiB, ways: 12 }, mem).sets).toBe(64);
  });

  it('rejects geometries that are not whole power-of-two sets', () => {
    const mem = new PhysMemory(46);
    expect(() => new L1dCache({ sizeBytes: 40 * KiB, ways: 8 }, mem)).toThrow(/not a power of two/);
    expect(() => new L1dCache({ sizeBytes: 1000, ways: 8 }, mem)).toThrow(/whole number/);
    expect(() => new L1dCache({ sizeBytes: 32 * KiB, ways: 0 }, mem)).toThrow(/ways/);
  });

  it('indexes sets by physical address bits 11:6 (64 sets), above bit 32 too', () => {
    const c = new L1dCache({ sizeBytes: 32 * KiB, ways: 8 }, new PhysMemory(46));
    // table: address -> set, from the bit layout alone
    const table: [number, number][] = [
      [0x0, 0], [0x3f, 0], [0x40, 1], [0xfc0, 63], [0x1000, 0], [0x1040, 1],
      [0x12345_6789 - (0x12345_6789 % 64), (0x789 >> 6) & 63], [2 ** 45 + 0x7c0, 31],
    ];
    for (const [pa, set] of table) expect(c.setOf(pa)).toBe(set);
  });
});

describe('true LRU within a set', () => {
  it('fills the 8 ways, then evicts the least recently used line (scenario)', () => {
    const mem = new PhysMemory(46);
    const c = new L1dCache({ sizeBytes: 32 * KiB, ways: 8 }, mem);
    const line = (k: number): number => 0x100000 + k * 4096 + 0x80; // all in set 2
    for (let k = 0; k < 8; k++) c.access(line(k));
    expect(c.misses).toBe(8);
    c.access(line(0)); // 0 becomes MRU; LRU is now 1
    expect(c.lastHit).toBe(true);
    c.access(line(8)); // evicts 1
    expect(c.lookup(line(1))).toBe(-1);
    expect(c.lookup(line(0))).toBeGreaterThanOrEqual(0);
    expect(c.evictions).toBe(1);
    // MRU -> LRU order by line address: 8, 0, 7, 6, 5, 4, 3, 2
    expect(c.lruOrder(line(0)).map((s) => c.lineAddress(s))).toEqual([8, 0, 7, 6, 5, 4, 3, 2].map(line));
    c.access(line(9)); // evicts 2
    expect(c.lookup(line(2))).toBe(-1);
    expect(c.countLinesIn(0x100000, 0x100000 + 10 * 4096)).toBe(8);
  });

  it('lines of other sets are never disturbed', () => {
    const c = new L1dCache({ sizeBytes: 32 * KiB, ways: 8 }, new PhysMemory(46));
    c.access(0x40); // set 1
    for (let k = 0; k < 100; k++) c.access(k * 4096); // set 0 only
    expect(c.lookup(0x40)).toBeGreaterThanOrEqual(0);
  });

  it('agrees with a list-per-set LRU on random access streams (hits, misses, residency)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(31), fc.nat(3)), { minLength: 1, maxLength: 300 }), (stream) => {
        const c = new L1dCache({ sizeBytes: 4 * 4 * LINE_BYTES, ways: 4 }, new PhysMemory(40)); // 4 sets x 4 ways
        const ref: number[][] = [[], [], [], []]; // per set, MRU first
        for (const [tag, set] of stream) {
          const pa = tag * 4 * LINE_BYTES + set * LINE_BYTES + 8;
          const line = Math.floor(pa / LINE_BYTES);
          const list = ref[set];
          const at = list.indexOf(line);
          const refHit = at >= 0;
          if (refHit) list.splice(at, 1);
          list.unshift(line);
          if (list.length > 4) list.pop();
          c.access(pa);
          if (c.lastHit !== refHit) return false;
        }
        for (let s = 0; s < 4; s++) {
          const held = c.lruOrder(s * LINE_BYTES).map((slot) => c.lineAddress(slot) / LINE_BYTES).filter((l) => l >= 0);
          if (JSON.stringify(held) !== JSON.stringify(ref[s])) return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
});

describe('real bytes', () => {
  it('a filled line holds exactly the bytes PhysMemory held at fill time', () => {
    const mem = new PhysMemory(46);
    patterned(mem, 0x2000, 4096, 3);
    const c = new L1dCache({ sizeBytes: 48 * KiB, ways: 12 }, mem);
    const slot = c.fill(0x2345);
    expect(c.lineAddress(slot)).toBe(0x2340);
    const got = new Uint8Array(64);
    c.copyLine(slot, got, 0);
    const want = new Uint8Array(64);
    mem.readBytes(0x2340, want, 0, 64);
    expect([...got]).toEqual([...want]);
    expect(c.cachedByte(0x2345)).toBe(mem.readByte(0x2345));
  });

  it('stays stale after memory changes behind its back, until refilled', () => {
    const mem = new PhysMemory(46);
    mem.writeByte(0x5000, 0xaa);
    const c = new L1dCache({ sizeBytes: 32 * KiB, ways: 8 }, mem);
    c.access(0x5000);
    mem.writeByte(0x5000, 0x55); // e.g. the page was freed and reused
    expect(c.cachedByte(0x5000)).toBe(0xaa);
    c.access(0x5000); // a hit does not refresh
    expect(c.cachedByte(0x5000)).toBe(0xaa);
    c.fill(0x5000);
    expect(c.cachedByte(0x5000)).toBe(0x55);
  });

  it('reads an unbacked frame as zeros and works above 4 GiB', () => {
    const mem = new PhysMemory(46);
    mem.writeByte(2 ** 40 + 0x1234, 0x77);
    const c = new L1dCache({ sizeBytes: 32 * KiB, ways: 8 }, mem);
    expect(c.cachedByte(2 ** 40 + 0x1234)).toBe(-1);
    c.access(2 ** 40 + 0x1234);
    expect(c.cachedByte(2 ** 40 + 0x1234)).toBe(0x77);
    c.access(0x9000);
    expect(c.cachedByte(0x9001)).toBe(0);
  });

  it('flush() (L1D_FLUSH) empties the cache; occupancy queries see nothing', () => {
    const mem = new PhysMemory(46);
    patterned(mem, 0x10000, 8192, 1);
    const c = new L1dCache({ sizeBytes: 32 * KiB, ways: 8 }, mem);
    for (let pa = 0x10000; pa < 0x12000; pa += 64) c.access(pa);
    expect(c.countLinesIn(0x10000, 0x12000)).toBe(128);
    expect(c.linesIn(0x10040, 0x100c0)).toEqual([0x10040, 0x10080]);
    c.flush();
    expect(c.occupancy()).toBe(0);
    expect(c.countLinesIn(0, 2 ** 46)).toBe(0);
    expect(c.cachedByte(0x10000)).toBe(-1);
    expect(c.data.every((b) => b === 0)).toBe(true);
    expect(c.flushes).toBe(1);
  });
});
