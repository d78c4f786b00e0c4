/**
 * The sharer masks that let a store look only at the cores that may hold its line
 * (uarch/machine.ts invalidateOthers, uarch/cache.ts L1dCache.cohMasks). Random loads, stores, held stores, L1D flushes and
 * invalidations on a 4-core machine whose lines collide in the count table (few distinct
 * lines): after every step the masks equal a recount of every L1D's tags, and after a store
 * no other core holds the stored line (the invalidation an invalidation-based protocol makes),
 * while a load leaves other cores' copies alone. A filter that skipped an invalidation it needed,
 * or cleared a bit on an eviction while another line of the hash stayed, fails one of these.
 */
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { Machine } from '../../src/uarch/machine.ts';
import { getProfile } from '../../src/uarch/profiles.ts';
import { Xoshiro128 } from '../../src/linux/kaslr.ts';

describe('L1D sharer masks', () => {
  for (const cores of [4, 40]) it(`stay exact and never skip a needed invalidation (${cores} cores: ${Math.ceil(cores / 32)} mask words)`, async () => {
    const p = getProfile('skylake-sp');
    const mem = new PhysMemory(p.maxPhysBits);
    const m = Machine.fromProfile(mem, p, { cores, threadsPerCore: 2 });
    const words = Math.ceil(cores / 32);
    const masks = m.cores[0].l1d.cohMasks!;
    expect(masks).not.toBeNull();
    const size = m.cores[0].l1d.cohMask + 1;
    const rng = new Xoshiro128(99);
    // 3 pages of lines in two address ranges 1 TiB apart (same hash low bits), plus 8 aliases 256 KiB apart: 48 lines a set, 8 ways.
    const lineAt = (r: number) => (r % 3 === 0 ? 2 ** 40 : 0) + ((r >>> 2) % 192) * 64 + ((r >>> 10) % 8) * 4096 * 64;
    const holders = (pa: number) => m.cores.filter((c) => c.l1d.lookup(pa) >= 0).map((c) => c.id);
    let skipsSeen = 0;
    let evictions = 0;
    for (let step = 0; step < 6000; step++) {
      const r = rng.nextU32();
      const t = r % (2 * cores);
      const pa = lineAt(rng.nextU32()) + 8 * (r % 8);
      const op = (r >>> 8) % 16;
      const core = m.threads[t].core.id;
      if (step % 1000 === 0) await new Promise((res) => setImmediate(res));
      if (op < 7) {
        const before = holders(pa).filter((c) => c !== core);
        m.load(t, pa);
        expect(holders(pa).filter((c) => c !== core)).toEqual(before);
      } else if (op < 13) {
        if (holders(pa).length === 0) skipsSeen++;
        if (op < 10) m.store(t, pa, r, step);
        else m.storeHeld(t, pa, mem.read32(pa), mem.read32(pa + 4));
        expect(holders(pa)).toEqual([core]);
      } else if (op < 14) { if ((r >>> 16) % 16 === 0) m.l1dFlush(t); }
      else m.cores[(r >>> 12) % cores].l1d.invalidateLine(pa);
      if (cores > 8 ? step % 997 === 0 : step % 97 === 0 || op >= 14) {
        const wantMask = new Uint32Array(size * words);
        for (const c of m.cores) for (const tag of c.l1d.tags) if (tag >= 0) wantMask[(tag & (size - 1)) * words + (c.id >>> 5)] |= 1 << (c.id & 31);
        let bad = -1;
        for (let i = 0; i < size * words && bad < 0; i++) if (wantMask[i] !== masks[i]) bad = i;
        expect(bad, `mask of hash ${bad} after step ${step}`).toBe(-1);
      }
    }
    for (const c of m.cores) evictions += c.l1d.evictions;
    expect(skipsSeen).toBeGreaterThan(50);
    if (cores === 4) expect(evictions).toBeGreaterThan(100); // 48 lines a set over 4 L1Ds of 8 ways
  }, 30_000);
});
