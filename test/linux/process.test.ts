/**
 * Processes and their mm (src/linux/process.ts). Truth used:
 *  - the la48 capture (a real Linux 6.1 PTI process under QEMU, test/fixtures): its PGD pair is
 *    given as the "kernel PGD" a new mm copies, so the new mm's kernel half must equal it entry
 *    for entry and translate every kernel-half leaf QEMU listed for the user root exactly as QEMU
 *    did; its user-half PML4 entries (XD in the kernel copy only) and its leaf flags per kind of
 *    VMA (r-x file, r-- file, rw- anonymous, 2 MiB THP) are what a new process must show;
 *  - the SDM access rules as implemented by the walker (walk.ts, itself tested against QEMU):
 *    user pages work at CPL 3 through the user root, and through the kernel root an instruction
 *    fetch faults with P|I/D because of XD at the PML4;
 *  - the sensitivity tables as literals: 2022 RFC "userspace memory" is locally non-sensitive,
 *    page cache sensitive; 2025 RFC GFP_USER memory sensitive.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPtImage } from '../../src/x86/ptimage.ts';
import { BuddyAllocator } from '../../src/linux/buddy.ts';
import { Owners } from '../../src/linux/owners.ts';
import { ProcessTable, STACK_TOP, defaultLayout, type Process } from '../../src/linux/process.ts';
import { CLASS_LOCAL_NONSENSITIVE, CLASS_SENSITIVE, type ModelName } from '../../src/linux/sensitivity.ts';
import { SlabAllocator } from '../../src/linux/slab.ts';
import { AsidState } from '../../src/linux/asid.ts';
import { tlbFlags } from '../../src/report/infotlb.ts';
import { forEachLeaf, hex16 } from '../../src/x86/leaves.ts';
import { Translation, vaHalves, walkFrom } from '../../src/x86/walk.ts';
import {
  ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, CR4_PAE, PFEC_ID, PFEC_P, PFEC_U, PFEC_W, VECTOR_PF,
} from '../../src/x86/bits.ts';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'captures', 'la48-pti-nokaslr');
const PAGE_OFFSET = 0xffff888000000000n;

function setup(model: ModelName = 'asi-2022', o: { pti?: boolean; slab?: boolean } = {}) {
  const img = loadPtImage(join(FIX, 'user.json.gz'), 40);
  // RAM for new allocations above everything the capture uses (its RAM is 512 MiB).
  const buddy = new BuddyAllocator({ ram: [[0x40000000n, 0x60000000n]] });
  const owners = new Owners();
  const slab = o.slab ? new SlabAllocator({ buddy, owners, model, pageOffsetBase: PAGE_OFFSET, mem: img.mem }) : undefined;
  const table = new ProcessTable({
    mem: img.mem, buddy, owners, model, levels: 4, pti: o.pti ?? true,
    kernelPgd: img.roots.kernel, kernelUserPgd: img.roots.user, pageOffset: PAGE_OFFSET,
    asids: new AsidState({ cpus: 1, pcid: true, pti: true, initPgd: img.roots.kernel }), slab,
  });
  return { img, buddy, owners, table };
}

const entry = (mem: { read64Big(pa: number): bigint }, table: number, i: number) => mem.read64Big(table + i * 8);

function walk(img: ReturnType<typeof setup>['img'], root: number, va: bigint, cpl: number, access: number): Translation {
  const t = new Translation();
  img.cpu.load({ cpl, cr4: CR4_PAE }); // no SMEP/SMAP: a kernel fetch fault can only come from XD
  const { lo, hi } = vaHalves(va);
  walkFrom(img.mem, img.cpu, root, lo, hi, access, t);
  return t;
}

describe('a new mm copies the kernel half (pgd_ctor / clone_pgd_range)', () => {
  const { img, table } = setup();
  const p = table.create('victim');

  it('uses an order-1 PGD pair with KERNEL_PGD_BOUNDARY = pgd_index(PAGE_OFFSET) = 273', () => {
    expect(p.pgd % 8192).toBe(0);
    expect(p.userPgd).toBe(p.pgd + 4096);
    expect(table.kernelPgdBoundary).toBe(273);
  });

  it('kernel half entry for entry in both copies; slots 256..272 (LDT remap, guard hole) not copied', () => {
    for (let i = 256; i < 512; i++) {
      const want = i >= 273 ? [entry(img.mem, img.roots.kernel, i), entry(img.mem, img.roots.user, i)] : [0n, 0n];
      expect([i, entry(img.mem, p.pgd, i), entry(img.mem, p.userPgd, i)]).toEqual([i, ...want]);
    }
  });

  it('translates every kernel-half leaf of QEMU info tlb (user root) as QEMU did', () => {
    const want = img.qemu_info_tlb!.filter(([va]) => va >= '8000000000000000').map((l) => l.join(' '));
    expect(want.length).toBeGreaterThan(1000);
    const got: string[] = [];
    forEachLeaf(img.mem, p.userPgd, 4, (lo, hi, shift, pa, elo, ehi, level) => {
      if (hi >= 0x80000000) got.push(`${hex16(lo, hi)} ${pa.toString(16).padStart(16, '0')} ${tlbFlags(elo, ehi, level)}`);
    });
    expect(got).toEqual(want);
  });
});

describe('user half as Linux builds it', () => {
  const { img, table, owners } = setup();
  const p = table.create('victim');
  const thp = p.mmap({ name: 'thp', start: 0x10000000000n, size: 4 << 20, prot: 'rw-', pageShift: 21 });

  it('PML4 entries: _PAGE_TABLE in the user copy, + NX in the kernel copy (as the capture shows)', () => {
    const FLAGS = 0xfff0000000000fffn;
    const real = [entry(img.mem, img.roots.kernel, 0) & FLAGS, entry(img.mem, img.roots.user, 0) & FLAGS];
    expect(real).toEqual([0x8000000000000067n, 0x67n]);
    for (const i of [0, 2, 255]) { // text and heap; the THP at 0x10000000000; mmap and stack
      expect([entry(img.mem, p.pgd, i) & FLAGS, entry(img.mem, p.userPgd, i) & FLAGS]).toEqual(real);
      expect(entry(img.mem, p.pgd, i) & ~FLAGS).toBe(entry(img.mem, p.userPgd, i) & ~FLAGS);
    }
  });

  it('leaf flags per kind of VMA equal the real process\'s (most common flags per prot and size)', () => {
    const maps = img.guest_maps!.map((l) => {
      const [range, prot] = l.split(/\s+/);
      const [a, b] = range.split('-').map((x) => BigInt('0x' + x));
      return { a, b, prot: prot.slice(0, 3) };
    });
    const real = new Map<string, Map<string, number>>();
    forEachLeaf(img.mem, img.roots.user, 4, (lo, hi, shift, _pa, elo, ehi, level) => {
      const va = (BigInt(hi) << 32n) | BigInt(lo);
      const m = maps.find((x) => va >= x.a && va < x.b);
      if (!m || hi >= 0x80000000) return;
      const key = `${m.prot}/${shift}`;
      const c = real.get(key) ?? new Map<string, number>();
      c.set(tlbFlags(elo, ehi, level), (c.get(tlbFlags(elo, ehi, level)) ?? 0) + 1);
      real.set(key, c);
    });
    const mode = (k: string) => [...real.get(k)!].sort((x, y) => y[1] - x[1])[0][0];
    const mine = new Map<string, Set<string>>();
    forEachLeaf(img.mem, p.userPgd, 4, (lo, hi, shift, _pa, elo, ehi, level) => {
      if (hi >= 0x80000000) return;
      const v = p.vmaAt((BigInt(hi) << 32n) | BigInt(lo))!;
      const key = `${v.prot}/${shift}`;
      (mine.get(key) ?? mine.set(key, new Set()).get(key)!).add(tlbFlags(elo, ehi, level));
    });
    expect([...mine.keys()].sort()).toEqual(['r--/12', 'r-x/12', 'rw-/12', 'rw-/21']);
    for (const [k, flags] of mine) expect([k, [...flags]]).toEqual([k, [mode(k)]]);
    expect(mode('rw-/21')).toBe('X-PDA--UW'); // the capture's THP
    expect(thp.pfns.length).toBe(2);
  });

  it('CPL 3 through the user root works; through the kernel root a fetch faults on XD', () => {
    const text = 0x401000n;
    let t = walk(img, p.userPgd, text, 3, ACCESS_FETCH);
    expect([t.vector, t.pa]).toEqual([0, p.paOf(text)]);
    t = walk(img, p.userPgd, text, 3, ACCESS_WRITE);
    expect([t.vector, t.errorCode]).toEqual([VECTOR_PF, PFEC_P | PFEC_W | PFEC_U]);
    t = walk(img, p.userPgd, 0x1000000n, 3, ACCESS_WRITE); // heap
    expect(t.vector).toBe(0);
    // Kernel root: a supervisor fetch from user text is XD (only the PML4 entry carries it).
    t = walk(img, p.pgd, text, 0, ACCESS_FETCH);
    expect([t.vector, t.errorCode, t.executeDisable]).toEqual([VECTOR_PF, PFEC_P | PFEC_ID, true]);
    t = walk(img, p.pgd, text, 3, ACCESS_FETCH); // returning to user with the kernel CR3
    expect([t.vector, t.errorCode]).toEqual([VECTOR_PF, PFEC_P | PFEC_ID | PFEC_U]);
    t = walk(img, p.pgd, text, 0, ACCESS_READ); // data reads still work (no SMAP here)
    expect(t.pa).toBe(p.paOf(text));
  });

  it('owner and class of every user page, by PA and by VA', () => {
    const want: Record<string, number> = { 'page-cache': CLASS_SENSITIVE, anon: CLASS_LOCAL_NONSENSITIVE };
    let n = 0;
    for (const v of p.vmas) {
      const step = 2n ** BigInt(v.pageShift);
      for (let i = 0; i < v.pfns.length; i++) {
        const va = v.start + BigInt(i) * step;
        const byVa = table.pageAtVa(p, va)!;
        const byPa = table.pageAt(walk(img, p.userPgd, va, 3, ACCESS_READ).pa);
        expect(byVa).toEqual(byPa);
        expect([byPa.owner, byPa.cls, byPa.vma?.name]).toEqual([p.owner.id, want[v.kind], v.name]);
        n++;
      }
    }
    expect(n).toBe(16 + 4 + 4 + 8 + 16 + 33 + 2);
    expect(owners.get(p.owner.id)).toMatchObject({ kind: 'process', name: 'victim', pid: p.pid });
    // The PGD itself: the process's page-table page, sensitive under asi-2022, no VMA.
    expect(table.pageAt(p.pgd)).toMatchObject({ owner: p.owner.id, cls: CLASS_SENSITIVE, vma: null });
    expect(table.pageAtVa(p, 0x500000n)).toBeNull();
  });

  it('bytes written at a VA are where the walker says the VA is', () => {
    const secret = new TextEncoder().encode('correct horse battery staple');
    const va = 0x1000ff0n; // crosses a page boundary
    p.write(va, secret);
    expect(new TextDecoder().decode(p.read(va, secret.length))).toBe('correct horse battery staple');
    const t = walk(img, p.userPgd, va + 16n, 3, ACCESS_READ);
    expect(img.mem.readByte(t.pa)).toBe(secret[16]);
    expect(() => p.write(0x500000n, secret)).toThrow(/not mapped/);
  });
});

describe('several processes, other models, no PTI', () => {
  it('processes get separate pages and independent user halves', () => {
    const { table, img } = setup('asi-2025', { slab: true });
    const a = table.create('a');
    const b = table.create('b');
    const pas = (p: Process) => p.vmas.flatMap((v) => [...v.pfns]);
    const shared = pas(a).filter((x) => pas(b).includes(x));
    expect(shared).toEqual([]);
    expect(a.paOf(0x401000n)).not.toBe(b.paOf(0x401000n));
    expect(entry(img.mem, a.pgd, 0)).not.toBe(entry(img.mem, b.pgd, 0));
    // asi-2025: GFP_USER pages are __GFP_SENSITIVE, whatever the kind.
    for (const v of a.vmas) expect(table.pageAtVa(a, v.start)!.cls).toBe(CLASS_SENSITIVE);
    expect(a.ctx!.ctxId).toBe(b.ctx!.ctxId - 1);
    expect(a.slabObjects.length).toBe(2 + defaultLayout().length); // task_struct, mm_struct, one vm_area_struct per VMA
  });

  it('a VMA may belong to another owner (guest RAM of a VM) and uses that kind', () => {
    const { table, owners } = setup();
    const qemu = table.create('qemu-system-x86', { vmas: [] });
    const vm = owners.vm('vm0');
    const ram = qemu.mmap({ name: 'guest-ram', start: 0x7f0000000000n, size: 8 << 20, prot: 'rw-', kind: 'guest-memory', owner: vm, pageShift: 21 });
    expect(ram.pfns.length).toBe(4);
    expect(table.pageAtVa(qemu, 0x7f0000000000n + 0x234567n)).toMatchObject({ owner: vm.id, cls: CLASS_LOCAL_NONSENSITIVE });
  });

  it('without PTI: one 4 KiB PGD, no user copy, no XD on the user PML4 entries', () => {
    const { table, img } = setup('none', { pti: false });
    const p = table.create('plain');
    expect(p.userPgd).toBe(p.pgd);
    expect(entry(img.mem, p.pgd, 0) >> 63n).toBe(0n);
    const t = walk(img, p.pgd, 0x401000n, 3, ACCESS_FETCH);
    expect(t.vector).toBe(0);
  });

  it('rejects bad VMAs', () => {
    const { table } = setup();
    const p = table.create('x', { vmas: [] });
    expect(() => p.mmap({ name: 'odd', start: 0x1001n, size: 4096, prot: 'rw-' })).toThrow(/aligned/);
    expect(() => p.mmap({ name: 'high', start: STACK_TOP, size: 8192, prot: 'rw-' })).toThrow(/aligned user range/);
    p.mmap({ name: 'a', start: 0x10000n, size: 8192, prot: 'rw-' });
    expect(() => p.mmap({ name: 'b', start: 0x11000n, size: 4096, prot: 'rw-' })).toThrow(/overlaps/);
    expect(() => p.mmap({ name: 'c', start: 0x20000n, size: 4096, prot: 'rwz' })).toThrow(/prot/);
  });
});
