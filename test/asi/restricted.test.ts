/**
 * Restricted address spaces of every design on a system with 2 VMs, 2 processes and 2
 * network namespaces with objects. Truth used:
 *  - the invariant all the designs state — a restricted space maps nothing differently from the
 *    full one (2022 cover letter: "each mapping is always the same as the corresponding mapping
 *    in the full kernel address space") — checked leaf by leaf by verify.ts against a walk of
 *    the full tables;
 *  - what each design says it maps, as sizes computed here from the kernel's symbols and
 *    rules (pti.c clones the entry text at PMD level; the 2022 RFC maps _stext.._etext and
 *    rodata; the 2025 RFC clones everything from VMALLOC_START up; netns B's tables lack A's
 *    objects);
 *  - one kernel rule for the exposures the checker must report: cleanup_highmap() keeps the
 *    high-map PMDs up to roundup(_brk_end, PMD_SIZE) (arch/x86/mm/init_64.c), while only
 *    [_text, _end) stays reserved, so buddy pages past _end keep an alias in the image mapping.
 */
import { describe, expect, it } from 'vitest';
import { designNames, getDesign, makeContext, systemFor } from '../../src/asi/registry.ts';
import { allowList, buildSpace, Probe, probe, type DirectMapRuns } from '../../src/asi/restricted.ts';
import { compareRegions, verifySpace } from '../../src/asi/verify.ts';
import { vaHalves } from '../../src/x86/walk.ts';
import type { System } from '../../src/linux/system.ts';
import { KERNEL_OWNER } from '../../src/linux/owners.ts';
import { CLASS_GLOBAL_NONSENSITIVE } from '../../src/linux/sensitivity.ts';
import type { AsiContext, RestrictedSpace } from '../../src/asi/types.ts';

const PMD = 1n << 21n;
const roundUp = (v: bigint, a: bigint) => ((v + a - 1n) / a) * a;

function mapsVa(sys: System, root: number, va: bigint): number {
  const { lo, hi } = vaHalves(va);
  const p = new Probe();
  return probe(sys.mem, root, sys.levels, lo, hi, p) ? p.frame + Number(BigInt.asUintN(64, va) % (1n << BigInt(p.pageShift))) : -1;
}

function region(sys: System, space: RestrictedSpace, id: string) {
  return compareRegions(sys, space).find((r) => r.region === id) ?? { region: id, fullBytes: 0, restrictedBytes: 0 };
}

/** The image high-map window past _end that still maps buddy pages (see the header). */
function aliasWindow(sys: System): [bigint, bigint] {
  return [sys.kernel.sections.end, roundUp(sys.kernel.brkEnd, PMD)];
}

const cache = new Map<string, System>();
function world(name: string): System {
  if (!cache.has(name)) cache.set(name, systemFor(getDesign(name)));
  return cache.get(name)!;
}

function spaces(name: string): Array<{ ctx: AsiContext; space: RestrictedSpace }> {
  const d = getDesign(name);
  const sys = world(name);
  const out: Array<{ ctx: AsiContext; space: RestrictedSpace }> = [];
  for (const kind of d.contextKinds) for (const i of [0, 1]) {
    const ctx = makeContext(sys, d, { [kind]: i });
    out.push({ ctx, space: buildSpace(sys, d, ctx) });
  }
  return out;
}

describe('every design, every context', () => {
  for (const name of designNames()) {
    it(`${name}: never maps an address differently from the full space`, () => {
      const sys = world(name);
      for (const { space } of spaces(name)) {
        const v = verifySpace(sys, getDesign(name), space);
        expect(v.mismatches, `${name} ${space.context.label}`).toEqual([]);
        expect(v.leaves).toBeGreaterThan(0);
      }
    });
  }

  for (const name of ['kpti', 'google-asi-2022', 'netns-asi']) {
    it(`${name}: no model error and no exposure at all`, () => {
      const sys = world(name);
      for (const { space } of spaces(name)) {
        const v = verifySpace(sys, getDesign(name), space);
        expect(v.forbidden.map((f) => f.why), space.context.label).toEqual([]);
        expect(v.exposures.map((f) => f.why), space.context.label).toEqual([]);
      }
    });
  }

  it('google-asi-2025: exposures come only from the image alias past _end, no model error', () => {
    const sys = world('google-asi-2025');
    const [lo, hi] = aliasWindow(sys);
    for (const { space } of spaces('google-asi-2025')) {
      const v = verifySpace(sys, getDesign('google-asi-2025'), space);
      expect(v.ok).toBe(true);
      expect(v.exposures.length).toBeGreaterThan(0); // the window holds user pages of the first processes
      for (const f of v.exposures) {
        expect(f.va >= lo && f.va < hi, `${f.va.toString(16)} ${f.why}`).toBe(true);
        expect(f.cause).toBe('image-tail-alias');
      }
    }
  });

  it('kvm-asi-2019: copying whole pages exposes neighbours of the VM\'s objects, and the image alias; no model error', () => {
    const sys = world('kvm-asi-2019');
    const d = getDesign('kvm-asi-2019');
    const [lo, hi] = aliasWindow(sys);
    for (const { ctx, space } of spaces('kvm-asi-2019')) {
      const v = verifySpace(sys, d, space);
      expect(v.ok).toBe(true);
      const causes = new Set(v.exposures.map((f) => f.cause));
      expect([...causes].sort()).toEqual(['image-tail-alias', 'slab-neighbour']);
      for (const f of v.exposures) {
        const page = f.pa - (f.pa % 4096);
        if (f.cause === 'image-tail-alias') expect(f.va >= lo && f.va < hi, f.why).toBe(true);
        else expect(sys.allocationsIn(page, 4096).some((a) => ctx.tenants.includes(a.owner) && d.permits(sys, ctx, a, 'direct', page)), f.why).toBe(true);
        expect(f.bytes).toBeGreaterThan(0);
        expect(f.bytes).toBeLessThanOrEqual(f.alloc.ranges.reduce((n, r) => n + r.bytes, 0));
      }
    }
  });
});

describe('what each design holds', () => {
  it('kpti: the user copy has the entry text PMDs, one TSS page per CPU and the process\'s user half', () => {
    const sys = world('kpti');
    const { space, ctx } = spaces('kpti')[0];
    const s = sys.kernel.sections;
    const pmds = (roundUp(s.entryTextEnd, PMD) - (s.entryTextStart / PMD) * PMD) / PMD;
    expect(region(sys, space, 'kernel_text').restrictedBytes).toBe(Number(pmds * PMD));
    expect(region(sys, space, 'direct_map').restrictedBytes).toBe(4096 * sys.kernel.cpus);
    expect(space.root).toBe(ctx.process!.pgd + 4096);
    const user = ctx.process!.vmas.reduce((n, v) => n + Number(v.end - v.start), 0);
    expect(region(sys, space, 'user').restrictedBytes).toBe(user);
  });

  it('google-asi-2022: text and rodata, no vmemmap, the VMM\'s user half; the root is a fresh PGD', () => {
    const sys = world('google-asi-2022');
    const { space, ctx } = spaces('google-asi-2022')[0];
    const s = sys.kernel.sections;
    const pages = (a: bigint, b: bigint) => Number(roundUp(b, 4096n) - (a / 4096n) * 4096n);
    expect(region(sys, space, 'kernel_text').restrictedBytes).toBe(pages(s.text, s.etext) + pages(s.startRodata, s.endRodata));
    expect(region(sys, space, 'vmemmap').restrictedBytes).toBe(0);
    expect(region(sys, space, 'user').restrictedBytes).toBe(Number(ctx.vm!.ram.end - ctx.vm!.ram.start));
    // Guest RAM of this VM is in the direct map; the other VM's is not.
    const mine = sys.vms[0].ram.pfns[0] * 4096;
    const theirs = sys.vms[1].ram.pfns[0] * 4096;
    expect(mapsVa(sys, space.root, sys.directMapVa(mine))).toBe(mine);
    expect(mapsVa(sys, space.root, sys.directMapVa(theirs))).toBe(-1);
    expect(space.stats.splits.pmd).toBeGreaterThan(0); // 2 MiB direct-map pages split where classes change
  });

  it('google-asi-2025: everything from VMALLOC_START up is shared entry for entry', () => {
    const sys = world('google-asi-2025');
    const { space } = spaces('google-asi-2025')[0];
    for (const id of ['vmalloc', 'vmemmap', 'cpu_entry_area', 'espfix', 'kernel_text', 'fixmap']) {
      const r = region(sys, space, id);
      expect(r.restrictedBytes, id).toBe(r.fullBytes);
    }
    expect(region(sys, space, 'user').restrictedBytes).toBe(0); // the KVM class maps no user addresses
    // The vmalloc PGD entry is the full table's own (asi_clone_range shares the subtree).
    const idx = Number((sys.layout.addrs.vmalloc_base >> 39n) & 511n);
    expect(sys.mem.read64Big(space.root + idx * 8)).toBe(sys.mem.read64Big(space.fullRoot + idx * 8));
    // GFP_USER pages (a process's anon memory) are absent from the direct map.
    const anon = sys.allocations().find((a) => a.kind === 'anon')!;
    expect(mapsVa(sys, space.root, sys.directMapVa(anon.ranges[0].pa))).toBe(-1);
    // A process context (ASI_CLASS_USERSPACE) has its user half.
    const p = spaces('google-asi-2025').find((x) => x.ctx.kind === 'process')!;
    expect(region(sys, p.space, 'user').restrictedBytes).toBe(p.ctx.process!.vmas.reduce((n, v) => n + Number(v.end - v.start), 0));
  });

  it('google-asi-2025: every context copies the kernel entries of one global half; a later allocation gives a new half', () => {
    // asi_init(): set_pgd(asi->pgd + i, asi_global_nonsensitive_pgd[i]) from KERNEL_PGD_BOUNDARY up.
    const sys = systemFor(getDesign('google-asi-2025'));
    const d = getDesign('google-asi-2025');
    const ctxs = [makeContext(sys, d, { vm: 0 }), makeContext(sys, d, { vm: 1 }), makeContext(sys, d, { process: 0 })];
    const built = ctxs.map((c) => buildSpace(sys, d, c));
    const boundary = Number((sys.layout.addrs.page_offset_base >> 39n) & 511n);
    const dmIdx = boundary; // the direct map starts at PAGE_OFFSET
    for (let i = boundary; i < 512; i++) {
      const e = sys.mem.read64Big(built[0].root + i * 8);
      for (const s of built.slice(1)) expect(sys.mem.read64Big(s.root + i * 8), `PGD ${i}`).toBe(e);
    }
    // The direct-map entry points at a table of the half, not at the full tables' own.
    const dm = sys.mem.read64Big(built[0].root + dmIdx * 8);
    expect(dm & 1n).toBe(1n);
    expect(dm).not.toBe(sys.mem.read64Big(built[0].fullRoot + dmIdx * 8));
    expect(built[0].stats.tablePages).toBe(2); // only the root pair is the context's own
    expect(built[0].stats.sharedTablePages).toBeGreaterThan(0);
    // A non-sensitive page allocated afterwards is in the direct map of a space built after it only.
    const pfn = sys.buddy.alloc(0, KERNEL_OWNER, CLASS_GLOBAL_NONSENSITIVE);
    const later = buildSpace(sys, d, ctxs[0]);
    const va = sys.directMapVa(pfn * 4096);
    expect(mapsVa(sys, later.root, va)).toBe(pfn * 4096);
    expect(mapsVa(sys, built[0].root, va)).toBe(-1);
    expect(sys.mem.read64Big(later.root + dmIdx * 8)).not.toBe(dm);
    const v = verifySpace(sys, d, later);
    expect(v.mismatches).toEqual([]);
    expect(v.forbidden).toEqual([]);
  });

  it('google-asi-2022: the allow list decided per run of equal buddy state equals the one asked frame by frame', () => {
    const d = getDesign('google-asi-2022');
    const sys = world('google-asi-2022');
    for (const sel of [{ vm: 0 }, { vm: 1 }]) {
      const spec = d.spec(sys, makeContext(sys, d, sel));
      const dm = spec.directMap as DirectMapRuns;
      expect(dm.byState).toBeDefined();
      const perFrame = allowList(sys, { ...spec, directMap: { allow: dm.allow, why: dm.why } });
      expect(allowList(sys, spec).intervals()).toEqual(perFrame.intervals());
    }
  });

  it('kvm-asi-2019: the whole image, the ASI root in the upper half of its 8 KiB pair', () => {
    const sys = world('kvm-asi-2019');
    const { space } = spaces('kvm-asi-2019')[0];
    expect(space.root % 8192).toBe(4096); // ASI_PGTABLE_BIT
    const r = region(sys, space, 'kernel_text');
    expect(r.restrictedBytes).toBe(r.fullBytes);
    expect(region(sys, space, 'vmemmap').restrictedBytes).toBe(0);
  });

  it('netns-asi: an object of A is in A\'s tables and absent from B\'s', () => {
    const sys = world('netns-asi');
    const [a, b] = spaces('netns-asi');
    const nsA = a.ctx.netns!;
    for (const [id] of nsA.objects) {
      const o = sys.slab.objectInfo(id)!;
      expect(mapsVa(sys, a.space.root, o.va)).toBe(o.pa);
      expect(mapsVa(sys, b.space.root, o.va)).toBe(-1);
    }
    // Everything else of the direct map is there in both.
    const full = region(sys, b.space, 'direct_map');
    const bytesOfA = new Set([...nsA.objects.keys()].map((id) => Math.floor(sys.slab.objectInfo(id)!.pa / 4096))).size * 4096;
    expect(full.fullBytes - full.restrictedBytes).toBeGreaterThanOrEqual(bytesOfA);
    expect(full.fullBytes - full.restrictedBytes).toBeLessThan(64 * 4096);
  });
});
