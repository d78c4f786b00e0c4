/**
 * The checker must fail on a planted violation (src/asi/verify.ts) and tell it from a design
 * exposure, and `kasi asi --verify` must report both through its exit code and JSON. Truth:
 * the violations are built by hand — a sensitive page mapped into a restricted root at its
 * correct direct-map address, a page mapped at the wrong frame, a read-only page made
 * writable — each one a rule the designs state; the same page inside a region a design maps
 * whole is an exposure of that design instead.
 */
import { describe, expect, it } from 'vitest';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getDesign, makeContext, systemFor } from '../../src/asi/registry.ts';
import { buildSpace, pageRange } from '../../src/asi/restricted.ts';
import type { AsiDesign } from '../../src/asi/types.ts';
import { EXPOSURE_CAUSES, verifySpace } from '../../src/asi/verify.ts';
import { PageTables, SIZE_4K } from '../../src/x86/pgtable.ts';
import { __PAGE_KERNEL } from '../../src/linux/cpa.ts';
import { CLASS_SENSITIVE } from '../../src/linux/sensitivity.ts';
import { kasi } from '../helpers/kasi-cli.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');


function world() {
  const design = getDesign('google-asi-2022');
  const sys = systemFor(design);
  const ctx = makeContext(sys, design, { vm: 0 });
  const space = buildSpace(sys, design, ctx);
  // Writes into the restricted tables only (new tables from the buddy allocator).
  const pt = new PageTables(sys.mem, sys.levels, () => {
    const pfn = sys.buddy.alloc(0);
    sys.mem.frameWords(pfn).fill(0);
    sys.recordPages(0, pfn, 0, 'page-table', 'planted table');
    return BigInt(pfn * 4096);
  }, BigInt(space.root));
  return { design, sys, ctx, space, pt };
}

describe('verify catches planted violations', () => {
  it('a clean space passes', async () => {
    const w = world();
    expect(verifySpace(w.sys, w.design, w.space).ok).toBe(true);
  });

  it('a sensitive page of the other VM mapped at its own direct-map address', async () => {
    const w = world();
    const victim = w.sys.allocations().find((a) => a.owner === w.sys.vms[1].vmm.owner.id && a.kind === 'anon' && a.cls === CLASS_SENSITIVE)
      ?? w.sys.allocations().find((a) => a.owner === w.sys.userProcesses[1].owner.id && a.cls === CLASS_SENSITIVE)!;
    const pa = victim.ranges[0].pa;
    w.pt.mapPage(w.sys.directMapVa(pa), BigInt(pa), SIZE_4K, __PAGE_KERNEL);
    const v = verifySpace(w.sys, w.design, w.space);
    expect(v.ok).toBe(false);
    expect(v.mismatches).toEqual([]); // same frame, same rights as the full direct map
    expect(v.forbidden.map((f) => f.alloc)).toContain(victim); // nothing in the design puts it there: a model error
    expect(v.exposures.map((f) => f.alloc)).not.toContain(victim); // ...not a design exposure
  });

  it('the same page inside a region the design maps whole is a design exposure (class-mapped), not an error', async () => {
    const base = getDesign('google-asi-2022');
    const sys = systemFor(base);
    const victim = sys.allocations().find((a) => a.owner === sys.vms[1].owner.id && a.kind === 'guest-memory')!;
    const va = sys.directMapVa(victim.ranges[0].pa);
    const design: AsiDesign = { ...base, spec: (s, c) => { const sp = base.spec(s, c); return { ...sp, ranges: [...sp.ranges, pageRange(va, va + 4096n, 'a region mapped whole')] }; } };
    const ctx = makeContext(sys, design, { vm: 0 });
    const v = verifySpace(sys, design, buildSpace(sys, design, ctx));
    expect(v.ok).toBe(true);
    const e = v.exposures.filter((x) => x.alloc === victim);
    expect(e.map((x) => x.cause)).toEqual(['class-mapped']);
    expect(e[0].bytes).toBe(4096);
    expect(e[0].owner).toBe('vm1');
  });

  it('a page at the wrong frame, and a read-only page made writable', async () => {
    const w = world();
    const s = w.sys.kernel.sections;
    const textPa = Number(s.text - w.sys.layout.addrs.__START_KERNEL_map + w.sys.kernel.physBase);
    // A hole of the vmalloc area, mapped to the kernel text: the full space has nothing there.
    const hole = w.sys.layout.addrs.vmalloc_base + (1n << 40n);
    w.pt.mapPage(hole, BigInt(textPa), SIZE_4K, __PAGE_KERNEL);
    let v = verifySpace(w.sys, w.design, w.space);
    expect(v.mismatches.map((m) => m.why)).toEqual(['not mapped in the full space']);
    // The rodata page at its own address, but writable (the full space maps it read-only).
    const w2 = world();
    const ro = s.startRodata + 0x3000n;
    w2.pt.splitTo(ro, SIZE_4K);
    // R/W folds over every level (SDM 4.6.1): set it in the PTE and in the PMD entry above it.
    for (const level of [1, 2]) { const e = w2.pt.findEntry(ro, level)!; w2.pt.write(e.addr, e.value | 2n); }
    v = verifySpace(w2.sys, w2.design, w2.space);
    expect(v.mismatches.map((m) => m.why)).toContain('writable here, read-only in the full space');
  });
});

describe('kasi asi', () => {
  it('--verify exits 0 on a clean space and prints the region table', async () => {
    const r = await kasi('asi', '--design', 'google-asi-2022', '--vm', '1', '--verify');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verify: OK/);
    expect(r.stdout).toMatch(/direct_map/);
  });

  it('--verify: design exposures exit 0 with a cause each, 1 with --fail-on-exposure; --highmap-tail unmap closes the image-tail alias', async () => {
    const r = await kasi('asi', '--design', 'kvm-asi-2019', '--verify', '--json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.verify.ok).toBe(true);
    expect(j.verify.mismatches).toEqual([]);
    expect(j.verify.forbidden).toEqual([]);
    expect(j.verify.exposures.length).toBeGreaterThan(0);
    for (const e of j.verify.exposures) {
      expect(EXPOSURE_CAUSES).toContain(e.cause);
      expect(e.owner).toBeTruthy();
      expect(e.object).toBeTruthy();
      expect(e.bytes).toBeGreaterThan(0);
    }
    expect(j.verify.exposuresByCause['image-tail-alias']).toBeGreaterThan(0);
    expect((await kasi('asi', '--design', 'kvm-asi-2019', '--verify', '--fail-on-exposure')).status).toBe(1);
    const u = await kasi('asi', '--design', 'kvm-asi-2019', '--verify', '--json', '--highmap-tail', 'unmap');
    expect(u.status, u.stderr).toBe(0);
    const ju = JSON.parse(u.stdout);
    expect(ju.highmapTail).toBe('unmap');
    expect(ju.verify.exposuresByCause['image-tail-alias']).toBe(0);
    expect(ju.verify.exposuresByCause['slab-neighbour']).toBeGreaterThan(0); // the other exposure stays
  });

  it('--verify --capture: netns-asi hides other namespaces\' objects in the image tail of a captured kernel too', async () => {
    const r = await kasi('asi', '--design', 'netns-asi', '--verify', '--json', '--capture', join(ROOT, 'test/fixtures/captures/la48-pti-nokaslr'));
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.verify.forbidden).toEqual([]);
    expect(j.verify.exposures).toEqual([]);
  });

  it('bad input: one line, exit 2', async () => {
    for (const args of [['--design', 'nope'], ['--design', 'netns-asi', '--vm', '0'], ['--design', 'kpti', '--process', 'x'], ['--design', 'kpti', '--process', '9'],
      ['--design', 'kpti', '--highmap-tail', 'sometimes'], ['--design', 'kpti', '--fail-on-exposure']]) {
      const r = await kasi('asi', ...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
