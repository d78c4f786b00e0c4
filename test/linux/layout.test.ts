// The x86-64 layout against three kinds of truth:
// - Documentation/x86/x86_64/mm.rst's tables, typed in below by hand (not computed);
// - the captured Linux 6.1 kernels: their page_offset_base/vmalloc_base/vmemmap_base as read
//   from the running kernel, and every present leaf of their page tables, which must fall in
//   the region that maps it (checked with the mapping's own VA->PA rule where there is one);
// - lib/random32.c's self-test vectors for the kernel's prandom, and KASLR's stated invariants
//   (arch/x86/mm/kaslr.c) as properties over seeds.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { join } from 'node:path';
import { loadPtImage, type PtImage } from '../../src/x86/ptimage.ts';
import { forEachLeaf } from '../../src/x86/leaves.ts';
import { loadIomem } from '../../src/formats/iomem.ts';
import { loadKconfig } from '../../src/formats/kconfig.ts';
import { layoutConfigFromKconfig } from '../../src/linux/kconfig-layout.ts';
import {
  START_KERNEL_MAP, buildLayout, fixToVirt, fixmapEnum, type LinuxLayout,
} from '../../src/linux/layout.ts';
import {
  CPU_ENTRY_AREA_BASE, PAGE_OFFSET_BASE_L4, PAGE_OFFSET_BASE_L5, chooseRandomLocation, kernelRandomizeMemory,
  kaslrGetRandomLong, prandomU32State, type RndState,
} from '../../src/linux/kaslr.ts';

const CAPTURES = join(import.meta.dirname, '../fixtures/captures');
const TB = 1n << 40n;
const GB = 1n << 30n;

// mm.rst, "Complete virtual memory map with 4-level page tables" (start, inclusive end).
const MM_RST_L4: [string, bigint, bigint][] = [
  ['user', 0x0000000000000000n, 0x00007fffffffffffn],
  ['guard_hole', 0xffff800000000000n, 0xffff87ffffffffffn],
  ['ldt_remap', 0xffff880000000000n, 0xffff887fffffffffn],
  ['direct_map', 0xffff888000000000n, 0xffffc87fffffffffn],
  ['vmalloc', 0xffffc90000000000n, 0xffffe8ffffffffffn],
  ['vmemmap', 0xffffea0000000000n, 0xffffeaffffffffffn],
  ['cpu_entry_area', 0xfffffe0000000000n, 0xfffffe7fffffffffn],
  ['espfix', 0xffffff0000000000n, 0xffffff7fffffffffn],
  ['efi', 0xffffffef00000000n, 0xfffffffeffffffffn],
  ['vsyscall', 0xffffffffff600000n, 0xffffffffff600fffn],
];
// mm.rst, "... with 5-level page tables".
const MM_RST_L5: [string, bigint, bigint][] = [
  ['user', 0x0000000000000000n, 0x00ffffffffffffffn],
  ['guard_hole', 0xff00000000000000n, 0xff0fffffffffffffn],
  ['ldt_remap', 0xff10000000000000n, 0xff10ffffffffffffn],
  ['direct_map', 0xff11000000000000n, 0xff90ffffffffffffn],
  ['vmalloc', 0xffa0000000000000n, 0xffd1ffffffffffffn],
  ['vmemmap', 0xffd4000000000000n, 0xffd5ffffffffffffn],
  ['cpu_entry_area', 0xfffffe0000000000n, 0xfffffe7fffffffffn],
  ['espfix', 0xffffff0000000000n, 0xffffff7fffffffffn],
  ['efi', 0xffffffef00000000n, 0xfffffffeffffffffn],
  ['vsyscall', 0xffffffffff600000n, 0xffffffffff600fffn],
];

describe('layout against mm.rst', () => {
  for (const [levels, table] of [[4, MM_RST_L4], [5, MM_RST_L5]] as const) {
    it(`${levels}-level regions start and end where mm.rst says (no KASLR)`, () => {
      const L = buildLayout({ levels });
      for (const [id, start, lastByte] of table) {
        const r = L.byId(id);
        expect(r, id).toBeDefined();
        expect([id, r!.start.toString(16), (r!.end - 1n).toString(16)]).toEqual([id, start.toString(16), lastByte.toString(16)]);
      }
    });
  }

  it('kernel text 512 MB and modules from ffffffffa0000000 without RANDOMIZE_BASE, 1 GiB with it', () => {
    const small = buildLayout({ levels: 4, randomizeBase: false });
    expect(small.byId('kernel_text')!.end).toBe(0xffffffffa0000000n); // mm.rst: ffffffff9fffffff, 512 MB
    expect(small.byId('modules')!.start).toBe(0xffffffffa0000000n); // mm.rst: module space, 1520 MB
    expect(small.byId('modules')!.end - small.byId('modules')!.start).toBe(1520n << 20n);
    const big = buildLayout({ levels: 4 });
    expect(big.byId('modules')!.start).toBe(0xffffffffc0000000n); // MODULES_VADDR with KERNEL_IMAGE_SIZE 1 GiB
    expect(big.byId('modules')!.end).toBe(0xffffffffff000000n);
  });

  it('4-level KASAN shadow where mm.rst puts it', () => {
    const L = buildLayout({ levels: 4, kasan: true });
    const r = L.byId('kasan_shadow')!;
    expect([r.start, r.end - 1n]).toEqual([0xffffec0000000000n, 0xfffffbffffffffffn]);
  });

  it('fixmap ends below the vsyscall page and starts around -11 MB (mm.rst: "variable size")', () => {
    const L = buildLayout({ levels: 4 });
    const f = L.byId('fixmap')!;
    expect(f.end).toBe(0xffffffffff600000n);
    expect(f.start >= 0xffffffffff600000n - (3n << 20n) / 2n && f.start < 0xffffffffff600000n).toBe(true);
  });

  it('regions tile [0, 2^64) in order and regionOf agrees with a linear scan', () => {
    for (const levels of [4, 5] as const) {
      const L = buildLayout({ levels, kaslr: { seed: 7 }, ramBytes: 3n * GB });
      expect(L.regions[0].start).toBe(0n);
      for (let i = 1; i < L.regions.length; i++) expect(L.regions[i].start).toBe(L.regions[i - 1].end);
      expect(L.regions[L.regions.length - 1].end).toBe(1n << 64n);
      fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (va) => {
        const want = L.regions.find((r) => r.start <= va && va < r.end)!;
        expect(L.regionOf(va)).toBe(want);
      }), { numRuns: 300 });
    }
  });
});

function loadCapture(name: string): { img: PtImage; layout: LinuxLayout; dir: string } {
  const dir = join(CAPTURES, name);
  const img = loadPtImage(join(dir, 'kernel.json.gz'), 40);
  const kv = img.kernel_values!;
  const iomem = loadIomem(join(dir, 'iomem.txt'));
  const cfg = layoutConfigFromKconfig(loadKconfig(join(dir, 'config.gz')));
  const layout = buildLayout({
    ...cfg, levels: img.paging_levels, ramBytes: iomem.maxPhysAddr(),
    kaslr: { page_offset_base: kv.page_offset_base, vmalloc_base: kv.vmalloc_base, vmemmap_base: kv.vmemmap_base },
    image: { textVa: kv['_text.va'], textPa: kv['_text.pa'] },
  });
  return { img, layout, dir };
}

describe.each(['la48-pti-nokaslr', 'la57-pti-nokaslr'])('capture %s', (name) => {
  const { img, layout, dir } = loadCapture(name);
  const kv = img.kernel_values!;

  it('nokaslr bases are the defaults of pgtable_64_types.h / page_64_types.h', () => {
    const L = buildLayout({ levels: img.paging_levels, kaslr: false });
    expect(L.addrs.page_offset_base).toBe(BigInt(kv.page_offset_base));
    expect(L.addrs.vmalloc_base).toBe(BigInt(kv.vmalloc_base));
    expect(L.addrs.vmemmap_base).toBe(BigInt(kv.vmemmap_base));
    expect(L.image.textVa).toBe(BigInt(kv['_text.va'])); // __START_KERNEL = __START_KERNEL_map + LOAD_PHYSICAL_ADDR
    expect(L.image.textPa).toBe(BigInt(kv['_text.pa']));
    expect(L.image.physBase).toBe(BigInt(kv.phys_base));
    expect(layout.kaslr).toBe(false);
  });

  it('the Kconfig-derived fixmap puts the local APIC and IO-APIC 0 where the kernel mapped them', () => {
    // fixmap.h: set_fixmap_nocache(FIX_APIC_BASE, APIC_DEFAULT_PHYS_BASE) and FIX_IO_APIC_BASE_0;
    // the physical addresses come from the capture's /proc/iomem ("Local APIC", "IOAPIC 0").
    const iomem = loadIomem(join(dir, 'iomem.txt'));
    const cfg = layoutConfigFromKconfig(loadKconfig(join(dir, 'config.gz')));
    const fix = fixmapEnum(cfg.fixmap);
    const want = new Map<bigint, bigint>([
      [fixToVirt(fix.index.get('FIX_APIC_BASE')!), iomem.find('Local APIC')[0].start],
      [fixToVirt(fix.index.get('FIX_IO_APIC_BASE_0')!), iomem.find('IOAPIC 0')[0].start],
    ]);
    const seen = new Map<bigint, bigint>();
    forEachLeaf(img.mem, img.roots.kernel, img.paging_levels, (lo, hi, _s, pa) => {
      const va = (BigInt(hi) << 32n) | BigInt(lo);
      if (layout.regionOf(va).id === 'fixmap') seen.set(va, BigInt(pa));
    });
    expect(seen).toEqual(want);
  });

  for (const root of ['kernel', 'user'] as const) {
    it(`every present leaf of the ${root} root lies inside one mapped region, by that region's rule`, () => {
      const levels = img.paging_levels;
      const pob = layout.addrs.page_offset_base;
      const textStart = BigInt(kv['_text.va']);
      const physBase = layout.image.physBase;
      const counts: Record<string, number> = {};
      const bad: string[] = [];
      forEachLeaf(img.mem, img.roots[root], levels, (lo, hi, shift, pa) => {
        const va = (BigInt(hi) << 32n) | BigInt(lo);
        const last = va + (1n << BigInt(shift)) - 1n;
        const r = layout.regionOf(va);
        counts[r.id] = (counts[r.id] ?? 0) + 1;
        if (layout.regionOf(last) !== r) bad.push(`${va.toString(16)} straddles ${r.id}`);
        if (r.kind !== 'user' && r.kind !== 'kernel') bad.push(`${va.toString(16)} in ${r.id}`);
        if (r.kind === 'user' && va >= 1n << 63n) bad.push(`${va.toString(16)} kernel VA in user region`);
        // The direct map maps PA p at page_offset_base + p (mm.rst: "direct mapping of all physical memory").
        if (r.id === 'direct_map' && BigInt(pa) !== va - pob) bad.push(`direct map ${va.toString(16)} -> ${pa.toString(16)}`);
        // The kernel image is mapped linearly: PA = VA - __START_KERNEL_map + phys_base.
        if (r.id === 'kernel_text' && va >= textStart && BigInt(pa) !== va - START_KERNEL_MAP + physBase) {
          bad.push(`text ${va.toString(16)} -> ${pa.toString(16)}`);
        }
      });
      expect(bad.slice(0, 5)).toEqual([]);
      if (root === 'kernel') {
        for (const id of ['direct_map', 'vmalloc', 'vmemmap', 'cpu_entry_area', 'espfix', 'kernel_text', 'modules', 'fixmap', 'user']) {
          expect(counts[id] ?? 0, id).toBeGreaterThan(0);
        }
        expect(counts.espfix).toBe(65536); // fixtures README: one page mapped 65,536 times
      } else {
        // KPTI's user tables hold the user half plus entry text, cpu_entry_area, ESPFIX, and the
        // page of this CPU's cpu_tss_rw (pti.c pti_clone_user_shared()), which lives in the
        // per-CPU first chunk, inside the direct map.
        expect(Object.keys(counts).sort()).toEqual(['cpu_entry_area', 'direct_map', 'espfix', 'kernel_text', 'user']);
        expect(counts.direct_map).toBe(1);
      }
    });
  }
});

describe('prandom (lib/random32.c) against the kernel self-test vectors', () => {
  // prandom_seed_very_weak() + prandom_warmup() as in lib/random32.c's prandom_state_selftest().
  const seedVeryWeak = (seed: number): RndState => {
    const lcg = (x: number) => Math.imul(x, 69069) >>> 0;
    const min = (x: number, m: number) => (x < m ? (x + m) >>> 0 : x);
    const s1 = min(lcg(seed), 2);
    const s2 = min(lcg(s1), 8);
    const s3 = min(lcg(s2), 16);
    const s4 = min(lcg(s3), 128);
    const st = { s1, s2, s3, s4 };
    for (let i = 0; i < 10; i++) prandomU32State(st);
    return st;
  };
  it('test1: seed boundary vectors', () => {
    for (const [seed, want] of [[1, 3484351685], [2, 2623130059], [3, 3125133893], [4, 984847254]]) {
      expect(prandomU32State(seedVeryWeak(seed))).toBe(want);
    }
  });
  it('test2: taus113 vectors from GSL', () => {
    const vectors: [number, number, number][] = [
      [931557656, 959, 2975593782], [1339693295, 876, 3887776532], [1545556285, 961, 1615538833],
      [601730776, 723, 1776162651], [1967883163, 508, 10734624], [1516232129, 557, 3173877],
      [407983964, 921, 728767059],
    ];
    for (const [seed, iteration, want] of vectors) {
      const st = seedVeryWeak(seed);
      for (let j = 0; j < iteration - 1; j++) prandomU32State(st);
      expect(prandomU32State(st)).toBe(want);
    }
  });
});

describe('memory KASLR (arch/x86/mm/kaslr.c) properties', () => {
  const arb = fc.record({
    seed: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    levels: fc.constantFrom(4 as const, 5 as const),
    ram: fc.bigInt({ min: 1n << 28n, max: 1n << 46n }),
  });

  it('bases are 1 GiB aligned, ordered, non-overlapping, inside [vaddr_start, CPU_ENTRY_AREA_BASE)', () => {
    fc.assert(fc.property(arb, ({ seed, levels, ram }) => {
      const L = buildLayout({ levels, kaslr: { seed }, ramBytes: ram });
      const a = L.addrs;
      const start = levels === 5 ? PAGE_OFFSET_BASE_L5 : PAGE_OFFSET_BASE_L4;
      // "This limits the randomization granularity to 1GB for both 4-level and 5-level paging" (kaslr.c)
      for (const b of [a.page_offset_base, a.vmalloc_base, a.vmemmap_base]) expect(b % GB).toBe(0n);
      expect(a.page_offset_base >= start).toBe(true);
      expect(a.page_offset_base + (L.sizeTb.direct * TB) <= a.vmalloc_base).toBe(true);
      expect(a.vmalloc_base + (L.sizeTb.vmalloc * TB) <= a.vmemmap_base).toBe(true);
      expect(a.vmemmap_base + (L.sizeTb.vmemmap * TB) <= CPU_ENTRY_AREA_BASE).toBe(true);
      // The direct map covers all RAM: its size is at least the RAM (+10 TiB padding) or MAXMEM.
      const maxmem = 1n << (levels === 5 ? 52n : 46n);
      expect(L.sizeTb.direct * TB >= (ram < maxmem ? ram : maxmem)).toBe(true);
      // vmemmap holds one 64-byte struct page per 4 KiB of the direct map.
      expect(L.sizeTb.vmemmap * TB >= (L.sizeTb.direct * TB / 4096n) * 64n).toBe(true);
    }), { numRuns: 200 });
  });

  it('is deterministic per seed and varies across seeds', () => {
    const a = buildLayout({ levels: 4, kaslr: { seed: 12345 }, ramBytes: 8n * GB });
    const b = buildLayout({ levels: 4, kaslr: { seed: 12345 }, ramBytes: 8n * GB });
    expect(b.addrs).toEqual(a.addrs);
    expect(b.image).toEqual(a.image);
    const bases = new Set<string>();
    for (let s = 0; s < 50; s++) {
      const L = buildLayout({ levels: 4, kaslr: { seed: s }, ramBytes: 8n * GB });
      bases.add(`${L.addrs.page_offset_base}/${L.addrs.vmalloc_base}/${L.addrs.vmemmap_base}`);
    }
    expect(bases.size).toBe(50);
  });

  it('the first region gets at most a third of the spare space (remain_entropy / 3)', () => {
    for (let s = 0; s < 200; s++) {
      const r = kernelRandomizeMemory({ levels: 4, maxPhysAddr: 4n * GB, randomLong: kaslrGetRandomLong(s, 'Memory') });
      expect(r.page_offset_base - r.vaddr_start <= r.entropy / 3n).toBe(true);
      // 4-level, 4 GiB RAM: direct map 1 + 10 TiB, vmalloc 32 TiB, vmemmap 1 TiB (kaslr.c sizing)
      expect(r.size_tb).toEqual({ direct: 11n, vmalloc: 32n, vmemmap: 1n });
    }
  });

  it('KASAN disables memory randomization (kaslr_memory_enabled)', () => {
    const L = buildLayout({ levels: 4, kaslr: { seed: 1 }, kasan: true });
    expect(L.addrs.page_offset_base).toBe(PAGE_OFFSET_BASE_L4);
    expect(L.byId('kasan_shadow')).toBeDefined();
  });
});

describe('image KASLR (arch/x86/boot/compressed/kaslr.c) properties', () => {
  it('places _text on a CONFIG_PHYSICAL_ALIGN slot inside RAM and inside KERNEL_IMAGE_SIZE', () => {
    const ram = [{ start: 0x100000n, end: 0x9f000n + 0x100000n }, { start: 0x100000n, end: 0x7ffe0000n }];
    const imageSize = 0x3500000n;
    fc.assert(fc.property(fc.integer(), (seed) => {
      const p = chooseRandomLocation({ seed, ram, imageSize });
      expect(p.physAddr % 0x200000n).toBe(0n);
      expect(p.physAddr >= 0x1000000n && p.physAddr + imageSize <= 0x7ffe0000n).toBe(true);
      expect(p.virtAddr % 0x200000n).toBe(0n);
      expect(p.virtAddr >= 0x1000000n && p.virtAddr + imageSize <= 1n << 30n).toBe(true);
      const L = buildLayout({ levels: 4, kaslr: { seed }, ramBytes: 0x7ffe0000n, ramRanges: ram, imageSize });
      expect(L.regionOf(L.image.textVa).id).toBe('kernel_text');
      expect(L.image.textVa - START_KERNEL_MAP).toBe(p.virtAddr);
      expect(L.image.textPa).toBe(p.physAddr);
    }), { numRuns: 200 });
  });

  it('avoids ranges it is told to avoid', () => {
    const avoid = [{ start: 0x2000000n, end: 0x6000000n }];
    for (let seed = 0; seed < 200; seed++) {
      const p = chooseRandomLocation({ seed, ram: [{ start: 0x100000n, end: 0x10000000n }], imageSize: 0x2000000n, avoid });
      expect(p.physAddr + 0x2000000n <= 0x2000000n || p.physAddr >= 0x6000000n).toBe(true);
    }
  });
});
