/**
 * vmalloc. Truth used:
 *  - the page walker (src/x86/walk.ts translate(), itself checked against QEMU) to see that
 *    every page maps to its frame and every guard page faults not-present;
 *  - the capture (Debian 6.1, pti=on): vmalloc leaf flags, and the layout of task stacks and
 *    one-page areas in the window 0xffffc90000010000..0xffffc90000024000 of the kernel table;
 *  - the RFCs' classes of a vmalloc'd stack, as literal expectations.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BuddyAllocator, USE_PAGE_TABLE, USE_VMALLOC } from '../../src/linux/buddy.ts';
import { Owners } from '../../src/linux/owners.ts';
import { CLASS_FREE, CLASS_GLOBAL_NONSENSITIVE, CLASS_LOCAL_NONSENSITIVE, CLASS_SENSITIVE } from '../../src/linux/sensitivity.ts';
import { THREAD_SIZE, VmallocAllocator } from '../../src/linux/vmalloc.ts';
import { PhysMemory } from '../../src/phys/memory.ts';
import { PageTables } from '../../src/x86/pgtable.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Translation, translate, vaHalves } from '../../src/x86/walk.ts';
import { ACCESS_READ, PFEC_P, VECTOR_PF } from '../../src/x86/bits.ts';

const VMALLOC_START = 0xffffc90000000000n; // Documentation/x86/x86_64/mm.rst, 4-level, no KASLR
const VMALLOC_END = 0xffffe8ffffffffffn;

function setup(model: 'none' | 'asi-2022' | 'asi-2025' = 'none', start = VMALLOC_START) {
  const mem = new PhysMemory(46);
  const buddy = new BuddyAllocator({ ram: [[0x100000, 0x20000000]] });
  const owners = new Owners();
  const pt = new PageTables(mem, 4, () => {
    const pfn = buddy.alloc(0, 0, CLASS_SENSITIVE, 'normal', USE_PAGE_TABLE);
    mem.frameWords(pfn).fill(0);
    return BigInt(pfn) * 4096n;
  });
  const vm = new VmallocAllocator({ buddy, owners, model, pt, start, end: VMALLOC_END, pti: true });
  const cpu = new CpuState(46).load({ cr0: 0x80050033, cr3: pt.root, cr4: 0x750ef0, efer: 0xd01 });
  const out = new Translation();
  const walk = (va: bigint): Translation => {
    const { lo, hi } = vaHalves(va);
    translate(mem, cpu, lo, hi, ACCESS_READ, out);
    return out;
  };
  return { mem, buddy, owners, pt, vm, walk };
}

/** QEMU `info tlb` flag letters of a leaf (test/fixtures/README.md). */
function flagLetters(e: bigint): string {
  const bit = (n: number, c: string) => ((e >> BigInt(n)) & 1n ? c : '-');
  return bit(63, 'X') + bit(8, 'G') + bit(7, 'P') + bit(6, 'D') + bit(5, 'A') + bit(4, 'C') + bit(3, 'T') + bit(2, 'U') + bit(1, 'W');
}

const tlb = gunzipSync(readFileSync(new URL('../fixtures/captures/la48-pti-nokaslr/kernel.tlb.txt.gz', import.meta.url)))
  .toString('utf8').split('\n').map((l) => l.trim()).filter((l) => /^ffffc9/.test(l))
  .map((l) => { const [va, pa, flags] = l.split(/:?\s+/); return { va: BigInt('0x' + va), pa: BigInt('0x' + pa), flags }; });

describe('vmalloc against the capture', () => {
  it('maps with PAGE_KERNEL minus _PAGE_GLOBAL under PTI, as the capture shows', () => {
    const ramFlags = new Set(tlb.filter((t) => t.pa < 0x20000000n).map((t) => t.flags));
    expect(ramFlags).toEqual(new Set(['X--DA---W'])); // every RAM-backed vmalloc leaf
    const { vm, pt } = setup();
    const a = vm.vmalloc(3 * 4096);
    for (let i = 0; i < 3; i++) expect(flagLetters(pt.findEntry(a.va + BigInt(i * 4096), 1)!.value)).toBe('X--DA---W');
  });

  it('lays out stacks and one-page areas with guard pages as in the capture window', () => {
    const lo = VMALLOC_START + 0x10000n;
    const hi = VMALLOC_START + 0x24000n;
    const captured = tlb.filter((t) => t.va >= lo && t.va < hi).map((t) => Number((t.va - lo) / 4096n));
    // Model: the window starts empty; a stack, a page, a stack, a page, a stack.
    const { vm, walk } = setup('none', lo);
    vm.allocStack(0);
    vm.vmalloc(4096);
    vm.allocStack(0);
    vm.vmalloc(4096);
    vm.allocStack(0);
    const mapped: number[] = [];
    for (let p = 0; p < 0x14; p++) if (walk(lo + BigInt(p * 4096)).ok) mapped.push(p);
    expect(mapped).toEqual(captured);
    expect(captured).toEqual([0, 1, 2, 3, 5, 8, 9, 10, 11, 13, 16, 17, 18, 19]);
  });
});

describe('vmalloc mappings walk to their frames', () => {
  it('each page translates to its buddy frame; the guard page faults not-present', () => {
    const { vm, walk, buddy } = setup();
    const areas = [vm.allocStack(0), vm.vmalloc(5 * 4096 - 100), vm.allocStack(0)];
    for (const a of areas) {
      a.pfns.forEach((pfn, i) => {
        const t = walk(a.va + BigInt(i * 4096 + 123));
        expect(t.ok).toBe(true);
        expect(t.pa).toBe(pfn * 4096 + 123);
        expect(t.executeDisable).toBe(true);
        expect(t.writable).toBe(true);
        expect(buddy.useOfPfn(pfn)).toBe(USE_VMALLOC);
        expect(buddy.tagOfPfn(pfn)).toBe(a.id);
      });
      const g = walk(a.va + BigInt(a.size));
      expect(g.vector).toBe(VECTOR_PF);
      expect(g.errorCode & PFEC_P).toBe(0);
      expect(vm.areaAt(a.va + BigInt(a.size))).toBeNull();
      expect(vm.areaAt(a.va + BigInt(a.size - 1))?.id).toBe(a.id);
    }
    expect(areas[0].size).toBe(THREAD_SIZE);
    expect(areas[1].size).toBe(5 * 4096);
    expect(Number(areas[0].va % BigInt(THREAD_SIZE))).toBe(0);
    expect(Number(areas[2].va % BigInt(THREAD_SIZE))).toBe(0);
  });

  it('vfree unmaps, frees the frames, and the range is reused first-fit', () => {
    const { vm, walk, buddy } = setup();
    const a = vm.allocStack(0);
    const b = vm.allocStack(0);
    vm.vfree(a.va);
    expect(walk(a.va).ok).toBe(false);
    for (const pfn of a.pfns) expect(buddy.classOfPfn(pfn)).toBe(CLASS_FREE);
    expect(walk(b.va).ok).toBe(true);
    const c = vm.allocStack(0);
    expect(c.va).toBe(a.va);
    expect(() => vm.vfree(a.va + 4096n)).toThrow();
  });

  it('areas never overlap, guards stay unmapped, frames match (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.nat()), { maxLength: 60, size: 'max' }), (ops) => {
        const { vm, walk } = setup();
        for (const [k, pick] of ops) {
          const live = vm.areas();
          if (k === 0) {
            if (live.length) vm.vfree(live[pick % live.length].va);
          } else if (k === 1) vm.allocStack(0);
          else vm.vmalloc(k * 3000);
        }
        const areas = vm.areas().sort((x, y) => (x.va < y.va ? -1 : 1));
        for (let i = 0; i < areas.length; i++) {
          const a = areas[i];
          if (i > 0) expect(areas[i - 1].va + BigInt(areas[i - 1].size) + 4096n).toBeLessThanOrEqual(a.va);
          expect(walk(a.va + BigInt(a.size)).ok).toBe(false);
          a.pfns.forEach((pfn, j) => expect(walk(a.va + BigInt(j * 4096)).pa).toBe(pfn * 4096));
        }
      }),
      { numRuns: 30 },
    );
  });
});

describe('vmalloc sensitivity classes', () => {
  it('asi-2022: a stack is mapped locally; its frames stay sensitive in the direct map', () => {
    const { vm, owners, buddy } = setup('asi-2022');
    const p = owners.process('qemu', 1234);
    const s = vm.allocStack(p.id);
    expect(s.cls).toBe(CLASS_LOCAL_NONSENSITIVE);
    expect(s.frameCls).toBe(CLASS_SENSITIVE);
    expect(buddy.ownerOfPfn(s.pfns[0])).toBe(p.id);
    expect(buddy.classOfPfn(s.pfns[3])).toBe(CLASS_SENSITIVE);
  });

  it('asi-2025: the vmalloc range is nonsensitive, the frames __GFP_SENSITIVE', () => {
    const { vm, owners, buddy } = setup('asi-2025');
    const p = owners.process('qemu', 1234);
    const s = vm.allocStack(p.id);
    const v = vm.vmalloc(8192, p.id);
    expect([s.cls, s.frameCls]).toEqual([CLASS_GLOBAL_NONSENSITIVE, CLASS_SENSITIVE]);
    expect([v.cls, v.frameCls]).toEqual([CLASS_GLOBAL_NONSENSITIVE, CLASS_SENSITIVE]);
    expect(buddy.classOfPfn(v.pfns[1])).toBe(CLASS_SENSITIVE);
  });

  it('a kernel thread stack has no restricted space to be local to: sensitive under asi-2022', () => {
    const { vm } = setup('asi-2022');
    expect(vm.allocStack(0).cls).toBe(CLASS_SENSITIVE);
  });
});
