/**
 * Buddy allocator. Truth used:
 *  - the kernel's rules written as expected frame numbers (expand() keeps the lower half,
 *    LIFO free lists, buddy = pfn ^ (1 << order), MAX_ORDER 11);
 *  - a reference model (a plain Set of free frames built from the input ranges) checked by
 *    fast-check against random alloc/free sequences;
 *  - the capture's /proc/iomem (System RAM minus the kernel image) for reserved ranges.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BuddyAllocator, MAX_BLOCK_ORDER, OutOfMemoryError, getOrder } from '../../src/linux/buddy.ts';
import { CLASS_FREE, CLASS_GLOBAL_NONSENSITIVE, CLASS_LOCAL_NONSENSITIVE } from '../../src/linux/sensitivity.ts';

const MiB = 1 << 20;
const GiB = 2 ** 30;

describe('buddy: kernel rules as expected frames', () => {
  it('splits keep the lower half and free lists are LIFO (mm/page_alloc.c expand())', () => {
    const b = new BuddyAllocator({ ram: [[0, 4 * MiB]] }); // one order-10 block
    expect(b.freeBlockList()).toEqual([[0, 10]]);
    expect(b.alloc(0)).toBe(0); // 1024 -> 512 + 256 + … + 1 + [0]
    expect(b.alloc(0)).toBe(1); // the order-0 buddy left by the split
    expect(b.alloc(1)).toBe(2);
    expect(b.alloc(2)).toBe(4);
    expect(b.alloc(0)).toBe(8); // order 0..2 lists are empty: split the order-3 block at 8
    expect(b.alloc(0)).toBe(9);
    expect(b.alloc(9)).toBe(512);
    expect(b.freeBlocks(10)).toBe(0);
  });

  it('merges a block with its buddy pfn ^ (1 << order) only when the buddy is free', () => {
    const b = new BuddyAllocator({ ram: [[0, 4 * MiB]] });
    const a0 = b.alloc(0);
    const a1 = b.alloc(0);
    expect(a1).toBe(a0 ^ 1);
    b.free(a1, 0); // buddy 0 still allocated: stays an order-0 free block
    expect(b.freeBlocks(0)).toBe(1);
    b.free(a0, 0); // now both halves free: merges all the way back
    expect(b.freeBlockList()).toEqual([[0, 10]]);
    // And in the other order: the lower half freed first, the upper half merges down onto it.
    const c0 = b.alloc(0);
    const c1 = b.alloc(0);
    b.free(c0, 0);
    expect(b.freeBlocks(0)).toBe(1);
    b.free(c1, 0);
    expect(b.freeBlockList()).toEqual([[0, 10]]);
  });

  it('orders run 0..10 (MAX_ORDER 11 in 6.1); order 11 is refused', () => {
    const b = new BuddyAllocator({ ram: [[0, 8 * MiB]] });
    expect(b.alloc(10)).toBe(0);
    expect(() => b.alloc(11)).toThrow(RangeError);
    expect(getOrder(4096)).toBe(0);
    expect(getOrder(4097)).toBe(1);
    expect(getOrder(16384)).toBe(2);
  });

  it('carves an unaligned range into maximal aligned blocks, as memblock frees it', () => {
    // PFNs [3, 1030): 3, 4-7, 8-15, …, 512-1023 and 1024-1029 = 1024 + 4 + 2.
    const b = new BuddyAllocator({ ram: [[3 * 4096, 1030 * 4096]] });
    expect(b.freeBlockList()).toEqual([
      [3, 0], [4, 2], [8, 3], [16, 4], [32, 5], [64, 6], [128, 7], [256, 8], [512, 9], [1024, 2], [1028, 1],
    ]);
  });

  it('records owner and class on every frame of a block, and clears them on free', () => {
    const b = new BuddyAllocator({ ram: [[0, 4 * MiB]] });
    const p = b.alloc(2, 7, CLASS_LOCAL_NONSENSITIVE);
    for (let i = 0; i < 4; i++) {
      expect(b.ownerOfPfn(p + i)).toBe(7);
      expect(b.classOfPfn(p + i)).toBe(CLASS_LOCAL_NONSENSITIVE);
    }
    expect(b.ownerOfPfn(p + 4)).toBe(-1);
    b.free(p, 2);
    expect(b.ownerOfPfn(p)).toBe(-1);
    expect(b.classOfPfn(p + 3)).toBe(CLASS_FREE);
  });

  it('refuses a double free and a free with the wrong order', () => {
    const b = new BuddyAllocator({ ram: [[0, 4 * MiB]] });
    const p = b.alloc(1);
    expect(() => b.free(p, 0)).toThrow();
    b.free(p, 1);
    expect(() => b.free(p, 1)).toThrow();
  });

  it('ZONE_NORMAL first, then ZONE_DMA32 below 4 GiB; DMA32 requests stay below 4 GiB', () => {
    const b = new BuddyAllocator({ ram: [[MiB, 6 * GiB]] });
    const n = b.alloc(0);
    expect(n).toBeGreaterThanOrEqual(2 ** 20);
    expect(b.alloc(0, 0, 0, 'dma32')).toBeLessThan(2 ** 20);
    // Exhaust ZONE_NORMAL (2 GiB = 512 order-10 blocks, minus the one split above).
    const big: number[] = [];
    for (let i = 0; i < 511; i++) big.push(b.alloc(10));
    expect(big.every((p) => p >= 2 ** 20)).toBe(true);
    const fallback = b.alloc(10);
    expect(fallback).toBeLessThan(2 ** 20);
  });

  it('throws OutOfMemoryError when nothing fits', () => {
    const b = new BuddyAllocator({ ram: [[0, 4 * MiB]] });
    b.alloc(9);
    expect(() => b.alloc(10)).toThrow(OutOfMemoryError);
    b.alloc(9);
    expect(() => b.alloc(0)).toThrow(OutOfMemoryError);
  });
});

describe('buddy: reserved ranges from the capture /proc/iomem', () => {
  const iomem = readFileSync(new URL('../fixtures/captures/la48-pti-nokaslr/iomem.txt', import.meta.url), 'utf8');
  const ram: Array<[bigint, bigint]> = [];
  const reserved: Array<[bigint, bigint]> = [];
  for (const line of iomem.split('\n')) {
    const m = /^(\s*)([0-9a-f]+)-([0-9a-f]+) : (.*)$/.exec(line);
    if (!m) continue;
    const range: [bigint, bigint] = [BigInt('0x' + m[2]), BigInt('0x' + m[3]) + 1n]; // iomem ends are inclusive
    if (m[1] === '' && m[4] === 'System RAM') ram.push(range);
    if (m[1] !== '' && m[4].startsWith('Kernel ')) reserved.push(range);
  }

  it('hands out every usable frame exactly once and never a reserved or non-RAM one', () => {
    expect(ram.length).toBe(2);
    expect(reserved.length).toBe(4);
    const b = new BuddyAllocator({ ram, reserved });
    // Independent count: whole pages inside RAM, minus pages touching the kernel image.
    const ramN = ram.map(([s, e]) => [Number(s), Number(e)]);
    const resN = reserved.map(([s, e]) => [Number(s), Number(e)]);
    const inRam = (pfn: number): boolean => ramN.some(([s, e]) => pfn * 4096 >= s && (pfn + 1) * 4096 <= e);
    const inRes = (pfn: number): boolean => resN.some(([s, e]) => (pfn + 1) * 4096 > s && pfn * 4096 < e);
    let expected = 0;
    for (let pfn = 0; pfn < 0x20000; pfn++) if (inRam(pfn) && !inRes(pfn)) expected++;
    expect(b.totalPages).toBe(expected);
    const seen = new Uint8Array(0x20000);
    let got = 0;
    let twice = 0;
    let bad = 0;
    for (;;) {
      let p: number;
      try {
        p = b.alloc(0);
      } catch (e) {
        expect(e).toBeInstanceOf(OutOfMemoryError);
        break;
      }
      if (seen[p]) twice++;
      seen[p] = 1;
      got++;
    }
    expect(twice).toBe(0);
    expect(got).toBe(expected);
    for (let pfn = 0; pfn < 0x20000; pfn++) if (seen[pfn] && !(inRam(pfn) && !inRes(pfn))) bad++;
    expect(bad).toBe(0);
  });
});

describe('buddy: random sequences against a reference set (fast-check)', () => {
  const ram: Array<[number, number]> = [[0x1000, 0x9fc00], [0x100000, 0x2800000]];
  const reserved: Array<[number, number]> = [[0x1000000, 0x1234567]];
  const refFree = (): Set<number> => {
    const s = new Set<number>();
    for (const [a, e] of ram) {
      for (let pfn = Math.ceil(a / 4096); (pfn + 1) * 4096 <= e; pfn++) {
        if ((pfn + 1) * 4096 > reserved[0][0] && pfn * 4096 < reserved[0][1]) continue;
        s.add(pfn);
      }
    }
    return s;
  };
  const op = fc.oneof(
    fc.record({ t: fc.constant('alloc' as const), order: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 6 })) }),
    fc.record({ t: fc.constant('free' as const), pick: fc.nat() }),
  );

  it('never hands out a frame twice, keeps blocks aligned, and coalesces back to the initial state', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300, size: 'max' }), (ops) => {
        const b = new BuddyAllocator({ ram, reserved });
        const initial = b.freeBlockList();
        const free = refFree();
        expect(b.freePages).toBe(free.size);
        const live: Array<[number, number]> = [];
        for (const o of ops) {
          if (o.t === 'alloc') {
            let p: number;
            try {
              p = b.alloc(o.order, 1, CLASS_GLOBAL_NONSENSITIVE);
            } catch (e) {
              expect(e).toBeInstanceOf(OutOfMemoryError);
              continue;
            }
            expect(p % (1 << o.order)).toBe(0);
            for (let i = 0; i < 1 << o.order; i++) {
              expect(free.has(p + i)).toBe(true);
              free.delete(p + i);
            }
            live.push([p, o.order]);
          } else if (live.length > 0) {
            const [p, order] = live.splice(o.pick % live.length, 1)[0];
            b.free(p, order);
            for (let i = 0; i < 1 << order; i++) free.add(p + i);
          }
          expect(b.freePages).toBe(free.size);
        }
        for (const [p, order] of live) b.free(p, order);
        expect(b.freeBlockList()).toEqual(initial);
        expect(b.allocatedPages).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('is deterministic: the same calls give the same frames', () => {
    const run = (): number[] => {
      const b = new BuddyAllocator({ ram, reserved });
      const out: number[] = [];
      const live: Array<[number, number]> = [];
      for (let i = 0; i < 2000; i++) {
        if (i % 3 === 2 && live.length) {
          const [p, o] = live.splice((i * 7919) % live.length, 1)[0];
          b.free(p, o);
        } else {
          const o = (i * 31) % 5;
          const p = b.alloc(o);
          live.push([p, o]);
          out.push(p);
        }
      }
      return out;
    };
    expect(run()).toEqual(run());
  });
});

describe('buddy: a 1 TiB machine is cheap until it allocates', () => {
  it('builds in milliseconds with well under 4 MiB of bookkeeping', () => {
    const t0 = performance.now();
    const b = new BuddyAllocator({ ram: [[0x100000, 2 ** 40]], reserved: [[0x1000000, 0x4400000]] });
    const buildMs = performance.now() - t0;
    expect(b.totalPages).toBe(2 ** 28 - 256 - (0x4400000 - 0x1000000) / 4096);
    expect(b.freeBlocks(MAX_BLOCK_ORDER)).toBeGreaterThan(262000);
    const builtBytes = b.bookkeepingBytes;
    const t1 = performance.now();
    const pages: number[] = [];
    for (let i = 0; i < 100_000; i++) pages.push(b.alloc(0, 1, CLASS_GLOBAL_NONSENSITIVE));
    const allocMs = performance.now() - t1;
    const usedBytes = b.bookkeepingBytes;
    for (const p of pages) b.free(p, 0);
    console.info(`1 TiB buddy: build ${buildMs.toFixed(1)} ms, ${(builtBytes / 1024).toFixed(0)} KiB; ` +
      `100k order-0 allocs ${allocMs.toFixed(1)} ms, ${(usedBytes / 1024).toFixed(0)} KiB in ${b.materialisedSections} sections`);
    expect(buildMs).toBeLessThan(500);
    expect(builtBytes).toBeLessThan(4 * MiB);
    expect(usedBytes).toBeLessThan(16 * MiB); // ~400 MiB of frames touched: 25 sections
  });
});

describe('sameStateEnd(): the run hint the ASI allow lists skip by', () => {
  it('every frame of [pfn, sameStateEnd(pfn)) answers as pfn does, after random alloc/free (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ order: fc.integer({ min: 0, max: 4 }), owner: fc.integer({ min: 1, max: 3 }), cls: fc.constantFrom(CLASS_GLOBAL_NONSENSITIVE, CLASS_LOCAL_NONSENSITIVE), free: fc.boolean() }), { minLength: 1, maxLength: 60 }),
      (ops) => {
        // Two RAM ranges with a hole, 64 MiB above the first: sections never touched, holes, blocks.
        const b = new BuddyAllocator({ ram: [[0x100000, 40 * MiB], [64 * MiB, 80 * MiB]] });
        const live: Array<[number, number]> = [];
        for (const op of ops) {
          if (op.free && live.length > 0) { const [p, o] = live.splice(live.length >> 1, 1)[0]; b.free(p, o); continue; }
          live.push([b.alloc(op.order, op.owner, op.cls), op.order]);
        }
        const end = (80 * MiB) / 4096;
        for (let pfn = 0; pfn < end;) {
          const next = b.sameStateEnd(pfn);
          expect(next).toBeGreaterThan(pfn);
          const want = `${b.classOfPfn(pfn)}/${b.ownerOfPfn(pfn)}/${b.isAllocated(pfn)}`;
          // Check the run's ends and a sample inside (the whole run for short ones).
          const probes = next - pfn <= 64 ? Array.from({ length: next - pfn }, (_, i) => pfn + i) : [pfn + 1, (pfn + next) >> 1, next - 1];
          for (const q of probes) expect(`${b.classOfPfn(q)}/${b.ownerOfPfn(q)}/${b.isAllocated(q)}`).toBe(want);
          pfn = next;
        }
      },
    ), { numRuns: 25 });
  });
});
