// The kernel model against three kinds of truth:
// - the captured Linux 6.1 kernels (every folder under test/fixtures/captures): the model built
//   from a capture's inputs must reproduce the captured tables region by region, and its
//   DirectMap counters must agree with the capture's /proc/meminfo;
// - the page sizes arch/x86/mm/init.c split_mem_range() / adjust_range_page_size_mask() and
//   init_64.c phys_*_init() choose, worked out by hand below for synthetic e820 maps and
//   checked by walking the model with the x86 walker (translate);
// - invariants the kernel states: no W+X page after mark_rodata_ro() (debug_checkwx()), and
//   set_memory.c's split/preserve/alias rules on small cases.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CpuState } from '../../src/x86/cpu.ts';
import { Translation, walkFrom, vaHalves } from '../../src/x86/walk.ts';
import { ACCESS_READ } from '../../src/x86/bits.ts';
import { forEachLeaf } from '../../src/x86/leaves.ts';
import { bootKernel, percpuUnitSize, type KernelModel, type KernelOptions } from '../../src/linux/kernel.ts';
import { splitMemRange, memblockMemory, PG_LEVEL_1G_MASK, PG_LEVEL_2M_MASK } from '../../src/linux/directmap.ts';
import { modelFromCapture } from '../../src/linux/capture.ts';
import { compareKernels, collectLeaves, F_RW, F_NX } from '../../src/linux/compare.ts';
import { lookupAddress, setMemoryRo, setMemoryRw, type CpaEnv } from '../../src/linux/cpa.ts';

const CAPTURES = join(import.meta.dirname, '../fixtures/captures');
const DIRS = readdirSync(CAPTURES).filter((d) => existsSync(join(CAPTURES, d, 'kernel.json.gz'))).sort();
const K = 1n << 10n;
const M = 1n << 20n;
const G = 1n << 30n;

/** Walk the model's kernel root for `va`: page size (12/21/30) and PA, or null when unmapped. */
function walk(m: KernelModel, va: bigint, root = m.kernelRoot): { shift: number; pa: bigint; writable: boolean; nx: boolean } | null {
  const cpu = new CpuState(52).load({ cr0: 0x80050033, cr4: m.levels === 5 ? 0x1000 | 0x6a0 : 0x6a0, efer: 0xd01, cr3: root });
  const t = new Translation();
  const { lo, hi } = vaHalves(va);
  if (!walkFrom(m.mem, cpu, root, lo, hi, ACCESS_READ, t)) return null;
  return { shift: t.pageShift, pa: BigInt(t.pa), writable: t.writable, nx: t.executeDisable };
}

describe('models built from the captures', () => {
  it('finds the capture folders', () => {
    expect(DIRS.length).toBeGreaterThanOrEqual(2);
  });

  for (const dir of DIRS) {
    describe(dir, () => {
      const { model, image } = modelFromCapture(join(CAPTURES, dir));
      const img = image!;
      const res = compareKernels(model.layout,
        { kernel: { mem: model.mem, root: model.kernelRoot, levels: model.levels }, user: model.userRoot === null ? null : { mem: model.mem, root: model.userRoot, levels: model.levels } },
        { kernel: { mem: img.mem, root: img.roots.kernel, levels: img.paging_levels }, user: img.roots.user === undefined ? null : { mem: img.mem, root: img.roots.user, levels: img.paging_levels } });

      it('uses the capture\'s paging depth', () => {
        expect(model.levels).toBe(img.paging_levels);
      });

      it('reproduces every required region of the kernel root (direct map, image, cpu_entry_area, ESPFIX, fixmap)', () => {
        expect(res.failures).toEqual([]);
        for (const name of ['Low Kernel Mapping', 'CPU entry Area', 'ESPfix Area', 'High Kernel Mapping', 'Fixmap Area']) {
          const r = res.kernel.regions.find((x) => x.name === name)!;
          expect(r.required, name).toBe(true);
          expect(r.unexplained, `${name}: ${r.differences.join('; ')}`).toBe(0);
          expect(r.modelLeaves, name).toBeGreaterThan(0);
        }
      });

      it('lays out the boot-time struct page array as the capture has it (sparse_init(), vmemmap_populate())', () => {
        const v = res.kernel.regions.find((x) => x.name === 'Vmemmap')!;
        expect(v.status, v.differences.join('; ')).toBe('match');
        expect(v.modelLeaves).toBeGreaterThan(0);
      });

      it('has the captured physical addresses for every leaf it shares with the capture in static regions', () => {
        for (const name of ['Low Kernel Mapping', 'High Kernel Mapping', 'Fixmap Area', 'CPU entry Area', 'ESPfix Area']) {
          const r = res.kernel.regions.find((x) => x.name === name)!;
          expect(r.pa.equal, `${name}: ${r.pa.first}`).toBe(r.pa.compared);
        }
      });

      it('reproduces the KPTI user root\'s kernel half page for page', () => {
        const m = collectLeaves(model.mem, model.userRoot!, model.levels);
        const c = collectLeaves(img.mem, img.roots.user, img.paging_levels);
        const half = 2 ** 51; // VA 0x8000000000000000 >> 12
        const pick = (l: typeof m) => {
          const out: string[] = [];
          for (let i = l.lowerBound(half); i < l.n; i++) out.push(`${l.vpn[i]}:${l.shift[i]}:${l.flags[i]}:${l.pa[i]}`);
          return out;
        };
        const a = pick(m);
        const b = pick(c);
        expect(a.length).toBe(b.length);
        expect(a).toEqual(b);
      });

      it('classifies what it does not model as dynamic, with a reason', () => {
        for (const r of [...res.kernel.regions, ...res.user!.regions]) {
          if (r.status === 'dynamic') expect(r.reason, r.name).toMatch(/\S/);
          if (r.modelLeaves === 0 && r.captureLeaves > 0 && res.kernel.regions.includes(r)) {
            expect(['User Space', 'vmalloc() Area', 'Vmemmap', 'Modules', 'LDT remap']).toContain(r.name);
          }
        }
      });

      it('agrees with the capture\'s /proc/meminfo DirectMap counters, up to the splits the capture explains as dynamic', () => {
        const meminfo = readFileSync(join(CAPTURES, dir, 'meminfo.txt'), 'utf8');
        const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(meminfo)![1]);
        // 2 MiB blocks of the direct map that the capture splits and the model does not.
        const po = Number(model.layout.addrs.page_offset_base >> 12n);
        const mm = collectLeaves(model.mem, model.kernelRoot, model.levels);
        const cc = collectLeaves(img.mem, img.roots.kernel, img.paging_levels);
        const model2m = new Set<number>();
        for (let i = mm.lowerBound(po); i < mm.n && mm.vpn[i] < po + 2 ** 28; i++) if (mm.shift[i] === 21) model2m.add(mm.vpn[i]);
        const split = new Set<number>();
        for (let i = cc.lowerBound(po); i < cc.n && cc.vpn[i] < po + 2 ** 28; i++) {
          const block = Math.floor(cc.vpn[i] / 512) * 512;
          if (cc.shift[i] === 12 && model2m.has(block)) split.add(block);
        }
        expect(split.size).toBeGreaterThan(0);
        expect(model.stats.directMap.k4 / 1024 + split.size * 2048).toBe(kb('DirectMap4k'));
        expect(model.stats.directMap.m2 / 1024 - split.size * 2048).toBe(kb('DirectMap2M'));
        expect(model.stats.directMap.g1 / 1024).toBe(kb('DirectMap1G'));
      });
    });
  }
});

describe('direct-map page sizes (init.c split_mem_range(), init_64.c phys_*_init())', () => {
  // A QEMU-like low memory map: RAM [4 KiB, 639 KiB) and from 1 MiB on.
  const low = { start: 0x1000n, end: 0x9fc00n };

  it('3 GiB + 4 KiB with GB pages: 4K to 2M, 2M to 1G, 1G pages, a 4K tail; the ISA hole mapped anyway', () => {
    const m = bootKernel({ ram: [low, { start: M, end: 3n * G + 4n * K }], cpu: { gbpages: true } });
    const po = m.layout.addrs.page_offset_base;
    // "the ISA range is always mapped regardless of memory holes" (init_mem_mapping())
    expect(walk(m, po + 0xa0000n)?.shift).toBe(12);
    expect(walk(m, po + 0x0n)?.shift).toBe(12);
    // head [1M, 2M): [0, 2M) is not one memblock region, so adjust_range_page_size_mask() keeps 4K
    expect(walk(m, po + M)?.shift).toBe(12);
    // big page (2M) range up to the first 1G boundary; [0, 1G) is not all memory, no 1G
    expect(walk(m, po + 2n * M)?.shift).toBe(21);
    expect(walk(m, po + G - 2n * M)?.shift).toBe(21);
    // 1G range [1G, 3G)
    expect(walk(m, po + G)).toMatchObject({ shift: 30, pa: G });
    expect(walk(m, po + 3n * G - 1n)).toMatchObject({ shift: 30, pa: 3n * G - 1n });
    // tail [3G, 3G + 4K): 4K, and nothing after it
    expect(walk(m, po + 3n * G)?.shift).toBe(12);
    expect(walk(m, po + 3n * G + 4n * K)).toBeNull();
    expect(walk(m, po + 3n * G + 2n * M)).toBeNull();
    // PAGE_KERNEL: writable, NX
    expect(walk(m, po + G)).toMatchObject({ writable: true, nx: true });
  });

  it('the same without GB pages (nogbpages): 2M pages up to the tail', () => {
    const m = bootKernel({ ram: [low, { start: M, end: 3n * G + 4n * K }], cmdline: 'nogbpages' });
    const po = m.layout.addrs.page_offset_base;
    for (const off of [2n * M, G, 2n * G, 3n * G - 2n * M]) expect(walk(m, po + off)?.shift, off.toString(16)).toBe(21);
    expect(walk(m, po + 3n * G)?.shift).toBe(12);
    expect(m.stats.directMap.g1).toBe(0);
  });

  it('holes and unaligned ranges: 4K heads and tails, no large page over a hole, 1G only for a whole GiB of memory', () => {
    const ram = [low, { start: M, end: 0x7fee0000n }, { start: 4n * G + M, end: 5n * G }, { start: 5n * G, end: 6n * G }];
    const m = bootKernel({ ram, cpu: { gbpages: true } });
    const po = m.layout.addrs.page_offset_base;
    expect(walk(m, po + G)?.shift).toBe(21); // [1G, 2G) has a hole at the top: no 1G page
    expect(walk(m, po + 0x7fc00000n)?.shift).toBe(21);
    expect(walk(m, po + 0x7fe00000n)?.shift).toBe(12); // 4K tail of an unaligned end
    expect(walk(m, po + 0x7fedf000n)?.shift).toBe(12);
    expect(walk(m, po + 0x7fee0000n)).toBeNull();
    expect(walk(m, po + 3n * G)).toBeNull(); // the PCI hole
    expect(walk(m, po + 4n * G)).toBeNull(); // [4G, 4G+1M) is not RAM
    expect(walk(m, po + 4n * G + M)?.shift).toBe(12); // head up to 2M
    expect(walk(m, po + 4n * G + 2n * M)?.shift).toBe(21); // [4G, 5G) is not all memory: 2M
    expect(walk(m, po + 5n * G)).toMatchObject({ shift: 30, pa: 5n * G }); // [5G, 6G) is: memblock merges the two ranges
  });

  it('without PSE everything is 4 KiB (no 2M in page_size_mask)', () => {
    const m = bootKernel({ ram: [low, { start: M, end: 64n * M }], cpu: { pse: false } });
    const po = m.layout.addrs.page_offset_base;
    for (const off of [2n * M, 32n * M, 64n * M - 4n * K]) expect(walk(m, po + off)?.shift).toBe(12);
    expect(m.stats.directMap.m2).toBe(0);
    expect(m.stats.directMap.k4).toBe(Number(64n * M)); // [0, 1M) (ISA) + [1M, 64M)
  });

  it('splitMemRange cuts [1M+4K, 3G+8K) the way split_mem_range() does', () => {
    const mb = memblockMemory([{ start: M, end: 4n * G }]);
    const r = splitMemRange(M + 4n * K, 3n * G + 8n * K, PG_LEVEL_2M_MASK | PG_LEVEL_1G_MASK, mb);
    // head 4K -> [1M+4K, 2M) promoted to 2M? [0, 2M) is not inside [1M, 4G): stays 4K.
    // [2M, 1G) 2M; [1G, 3G) 1G|2M; tail [3G, 3G+8K) 4K, promoted to 2M and 1G because [3G, 3G+2M) and [3G, 4G) are memory.
    expect(r).toEqual([
      { start: M + 4n * K, end: 2n * M, mask: 0 },
      { start: 2n * M, end: G, mask: PG_LEVEL_2M_MASK },
      { start: G, end: 3n * G + 8n * K, mask: PG_LEVEL_2M_MASK | PG_LEVEL_1G_MASK },
    ]);
  });

  it('maps every RAM page at __va(pa) and no page outside RAM or the ISA range', () => {
    const ram = [low, { start: M, end: 0x7fee0000n }, { start: 4n * G + M, end: 5n * G }];
    const m = bootKernel({ ram, cpu: { gbpages: true } });
    const po = m.layout.addrs.page_offset_base;
    const inRam = (pa: bigint) => pa < M || ram.some((r) => pa >= r.start && pa < r.end);
    let n = 0;
    forEachLeaf(m.mem, m.kernelRoot, m.levels, (vaLo, vaHi, shift, pa) => {
      const va = (BigInt(vaHi >>> 0) << 32n) | BigInt(vaLo >>> 0);
      if (va < po || va >= po + (1n << 46n)) return;
      n++;
      expect(BigInt(pa)).toBe(va - po);
      const size = 1n << BigInt(shift);
      // a large page may not cover a hole
      for (let p = BigInt(pa); p < BigInt(pa) + size; p += size >= 2n * M ? 2n * M : 4096n) expect(inRam(p) || p < M, `0x${p.toString(16)}`).toBe(true);
    });
    expect(n).toBeGreaterThan(0);
  });
});

describe('kernel image and set_memory.c', () => {
  const m = bootKernel({});
  const s = m.sections;
  const a = m.layout.addrs;

  it('keeps the image high mapping only from _text to roundup(_brk_end, 2M) (cleanup_highmap())', () => {
    expect(walk(m, s.text - 4096n)).toBeNull();
    expect(walk(m, s.text)).not.toBeNull();
    const end = ((m.brkEnd + 2n * M - 1n) / (2n * M)) * (2n * M);
    expect(walk(m, end - 4096n)).not.toBeNull();
    expect(walk(m, end)).toBeNull();
  });

  it('mark_rodata_ro(): text read-only and executable, rodata read-only NX, data writable NX, the gaps and init unmapped (PTI)', () => {
    expect(walk(m, s.text)).toMatchObject({ writable: false, nx: false });
    expect(walk(m, s.etext - 1n)).toMatchObject({ writable: false, nx: false });
    expect(walk(m, s.startRodata)).toMatchObject({ writable: false, nx: true });
    expect(walk(m, s.sdata)).toMatchObject({ writable: true, nx: true });
    expect(walk(m, s.bssStart)).toMatchObject({ writable: true, nx: true });
    expect(walk(m, ((s.etext + 4095n) / 4096n) * 4096n)).toBeNull(); // text/rodata gap
    expect(walk(m, ((s.endRodata + 4095n) / 4096n) * 4096n)).toBeNull(); // rodata/data gap
    expect(walk(m, s.initBegin)).toBeNull();
    expect(walk(m, s.initEnd - 4096n)).toBeNull();
  });

  it('the direct-map alias of text and rodata is read-only, the freed gaps writable again', () => {
    const alias = (va: bigint) => a.page_offset_base + va - a.__START_KERNEL_map + m.physBase;
    expect(walk(m, alias(s.text))).toMatchObject({ writable: false, nx: true });
    expect(walk(m, alias(s.startRodata))).toMatchObject({ writable: false, nx: true });
    expect(walk(m, alias(((s.etext + 4095n) / 4096n) * 4096n))).toMatchObject({ writable: true, nx: true });
    expect(walk(m, alias(s.sdata))).toMatchObject({ writable: true, nx: true });
  });

  it('has no page both writable and executable in the kernel half (debug_checkwx())', () => {
    for (const opts of [{}, { pti: 'off' }, { pti: 'auto', cpu: { pcid: false } }, { cpu: { gbpages: false } }] as KernelOptions[]) {
      const mm = bootKernel(opts);
      for (const root of [mm.kernelRoot, mm.userRoot].filter((r): r is number => r !== null)) {
        const l = collectLeaves(mm.mem, root, mm.levels);
        let wx = 0;
        for (let i = l.lowerBound(2 ** 51); i < l.n; i++) if ((l.flags[i] & F_RW) && !(l.flags[i] & F_NX)) wx++;
        expect(wx, JSON.stringify(opts)).toBe(0);
      }
    }
  });

  it('set_memory_ro() of one page splits the 2M page around it and repeats on the alias; a whole 2M page is preserved', () => {
    const mm = bootKernel({});
    const env: CpaEnv = mm.cpa;
    const data = mm.sections.bssStart + 0x100000n + 2n * M; // somewhere in .bss, a 2M PMD
    const va = (data / (2n * M)) * (2n * M) + 0x5000n;
    expect(lookupAddress(env.pt, va)?.level).toBe(2);
    const before = env.splits.pmd;
    setMemoryRo(env, va, va + 4096n);
    expect(lookupAddress(env.pt, va)?.level).toBe(1);
    expect(env.splits.pmd).toBeGreaterThan(before);
    expect(walk(mm, va)).toMatchObject({ writable: false });
    expect(walk(mm, va + 4096n)).toMatchObject({ writable: true });
    const alias = mm.layout.addrs.page_offset_base + va - mm.layout.addrs.__START_KERNEL_map + mm.physBase;
    expect(walk(mm, alias)).toMatchObject({ writable: false, shift: 12 }); // cpa_process_alias()
    // A whole, aligned 2M page whose attributes change stays one large page.
    const whole = (va / (2n * M) + 1n) * (2n * M);
    const splits = env.splits.pmd;
    setMemoryRo(env, whole, whole + 2n * M);
    expect(lookupAddress(env.pt, whole)?.level).toBe(2);
    setMemoryRw(env, whole, whole + 2n * M);
    expect(env.splits.pmd - splits).toBe(0);
  });

  it('allocates everything from free RAM: no overlap with the first MiB, the image or each other; an external allocator is used when given', () => {
    const mm = bootKernel({ cpus: 3 });
    const img = { start: mm.sections.text - mm.layout.addrs.__START_KERNEL_map + mm.physBase, end: mm.sections.end - mm.layout.addrs.__START_KERNEL_map + mm.physBase };
    const t = mm.trampoline!; // reserve_real_mode(): below 1 MiB, by design
    expect(t.base + t.size <= M).toBe(true);
    const used = mm.reserved.filter((r) => !(r.start === 0n && r.end === M) && !(r.start === img.start && r.end === img.end) && r.start !== t.base);
    const table = new Set(mm.tableFrames);
    expect(table.size).toBe(mm.tableFrames.length);
    for (const r of used) {
      expect(r.start >= M, `0x${r.start.toString(16)}`).toBe(true);
      expect(r.end <= img.start || r.start >= img.end, `0x${r.start.toString(16)}`).toBe(true);
    }
    const sorted = [...used].sort((x, y) => (x.start < y.start ? -1 : 1));
    for (let i = 1; i < sorted.length; i++) expect(sorted[i].start >= sorted[i - 1].end, `0x${sorted[i].start.toString(16)}`).toBe(true);
    // An external allocator (say the buddy allocator) gets every request.
    let next = 0x40000000n;
    const asked: bigint[] = [];
    const ext = bootKernel({ ram: [{ start: 0x1000n, end: 0x9fc00n }, { start: M, end: 2n * G }], alloc: (size, align) => { next = ((next + align - 1n) / align) * align; const pa = next; next += size; asked.push(size); return pa; } });
    expect(asked.length).toBe(ext.tableFrames.length + 1 + 1 + 16); // tables, the per-CPU chunk, the ESPFIX page, 16 memmap blocks (2 GiB: 16 sections of 128 MiB)
    expect(ext.tableFrames.every((f) => f >= 0x40000)).toBe(true);
  });

  it('sizes the per-CPU unit as pcpu_build_alloc_info() does ("percpu: Embedded 62 pages/cpu ... u2097152" for one CPU)', () => {
    expect(percpuUnitSize(0x35000n, 1)).toBe(2097152n);
    expect(percpuUnitSize(0x35000n, 4)).toBe(524288n); // 4 units share one 2M atom: no waste
  });
});

