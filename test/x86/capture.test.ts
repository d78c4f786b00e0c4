/**
 * Differential test against real captures (test/fixtures/captures/*): the leaf enumerator and
 * the walker must agree with what QEMU and the guest kernel themselves reported.
 *
 * Truth used, all recorded by the capture and none computed by kasi:
 *  - `qemu_info_tlb` / `<snap>.tlb.txt.gz`: QEMU's own listing of every leaf for the CR3 held;
 *  - `guest_pagemap`: the guest kernel's /proc/self/pagemap (VA -> PFN, THP size) for the
 *    captured process;
 *  - `kernel_values` X.va/X.pa: addresses the capture tool resolved inside the guest;
 *  - `kernel_symbols` (from /proc/kallsyms) with the kernel's own rule for the high kernel
 *    mapping, __pa_symbol(x) = x - __START_KERNEL_map + phys_base (asm/page_64.h).
 * Every capture folder is discovered, not named.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { loadPtImage, type PtImage } from '../../src/x86/ptimage.ts';
import { forEachLeaf, hex16, hexNum16 } from '../../src/x86/leaves.ts';
import { Translation, vaHalves, walkFrom } from '../../src/x86/walk.ts';
import { ACCESS_FETCH, ACCESS_READ, PFEC_P, VECTOR_PF } from '../../src/x86/bits.ts';
import { infoTlbText, tlbFlags } from '../../src/report/infotlb.ts';

const CAPTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/captures');
const FOLDERS = readdirSync(CAPTURES).filter((d) => existsSync(join(CAPTURES, d, 'kernel.json.gz'))).sort();
const SNAPS = ['kernel', 'user'] as const;
const START_KERNEL_MAP = 0xffffffff80000000n; // asm/page_64_types.h

/** Two loads per snapshot: translate() sets A/D bits, so leaf listings use a pristine copy. */
const cache = new Map<string, PtImage>();
function image(folder: string, snap: string, purpose: 'pristine' | 'walk'): PtImage {
  const key = `${folder}/${snap}/${purpose}`;
  let img = cache.get(key);
  if (!img) {
    img = loadPtImage(join(CAPTURES, folder, `${snap}.json.gz`));
    cache.set(key, img);
  }
  return img;
}

function translateVa(img: PtImage, root: number, va: bigint, cpl: number, access = ACCESS_READ): Translation {
  const t = new Translation();
  img.cpu.load({ cpl });
  const { lo, hi } = vaHalves(va);
  walkFrom(img.mem, img.cpu, root, lo, hi, access, t);
  return t;
}

it('finds the capture folders', () => {
  expect(FOLDERS.length).toBeGreaterThanOrEqual(1);
});

describe.each(FOLDERS)('capture %s', (folder) => {
  describe.each(SNAPS)('%s snapshot', (snap) => {
    it('enumerates exactly the leaves of qemu_info_tlb, entry for entry', () => {
      const img = image(folder, snap, 'pristine');
      const want = img.qemu_info_tlb!;
      expect(want.length).toBeGreaterThan(1000);
      const got: [string, string, string][] = [];
      forEachLeaf(img.mem, img.roots[img.active_root], img.paging_levels, (vaLo, vaHi, _s, pa, lo, hi, level) => {
        got.push([hex16(vaLo, vaHi), hexNum16(pa), tlbFlags(lo, hi, level)]);
      });
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        if (got[i][0] !== want[i][0] || got[i][1] !== want[i][1] || got[i][2] !== want[i][2]) {
          expect(got[i], `entry ${i}`).toEqual(want[i]);
        }
      }
    });

    it('prints the mappings text byte for byte as QEMU did', () => {
      const img = image(folder, snap, 'pristine');
      const want = gunzipSync(readFileSync(join(CAPTURES, folder, `${snap}.tlb.txt.gz`))).toString('latin1').replace(/\r\n/g, '\n');
      const got = infoTlbText(img.mem, img.roots[img.active_root], img.paging_levels);
      expect(got.length).toBe(want.length);
      expect(got === want).toBe(true);
    });

    it('translates every guest_pagemap sample as the guest kernel saw it, through both roots', () => {
      const img = image(folder, snap, 'walk');
      const samples = img.guest_pagemap!;
      expect(samples.length).toBeGreaterThan(5);
      expect(samples.some((s) => !s.present)).toBe(true);
      expect(samples.some((s) => s.leaf_shift === 21)).toBe(true);
      for (const rootName of ['user', 'kernel']) {
        for (const s of samples) {
          // User VAs, read from user mode: with KPTI both roots share the user half.
          const t = translateVa(img, img.roots[rootName], BigInt(s.va), 3);
          const where = `${s.name} ${s.va} via ${rootName} root`;
          expect(t.ok, where).toBe(s.present);
          if (s.present) {
            expect(Math.floor(t.pa / 4096), where).toBe(Number(BigInt(s.pfn)));
            expect(t.pageShift, where).toBe(s.leaf_shift);
            expect(t.user, where).toBe(true);
          } else {
            expect(t.vector, where).toBe(VECTOR_PF);
            expect(t.errorCode & PFEC_P, where).toBe(0);
          }
        }
      }
    });

    it('maps each kernel_values X.va to X.pa, and the direct map at page_offset_base', () => {
      const img = image(folder, snap, 'walk');
      const kv = img.kernel_values!;
      const pairs = Object.keys(kv).filter((k) => k.endsWith('.va') && kv[k.replace(/\.va$/, '.pa')] !== undefined);
      expect(pairs.length).toBeGreaterThanOrEqual(3);
      const kernelRoot = img.roots.kernel;
      for (const k of pairs) {
        const pa = BigInt(kv[k.replace(/\.va$/, '.pa')]);
        const t = translateVa(img, kernelRoot, BigInt(kv[k]), 0);
        expect(t.ok, k).toBe(true);
        expect(BigInt(t.pa), k).toBe(pa);
        expect(t.user, k).toBe(false);
        // The direct map (Documentation/x86/x86_64/mm.rst) maps physical x at page_offset_base + x.
        const d = translateVa(img, kernelRoot, BigInt(kv.page_offset_base) + pa, 0);
        expect(d.ok && BigInt(d.pa) === pa, `direct map of ${k.replace(/\.va$/, '.pa')}`).toBe(true);
        expect(d.executeDisable, `direct map of ${k} is NX`).toBe(true);
      }
    });

    it('maps kernel symbols at __pa_symbol(), and only the entry text into the KPTI user root', () => {
      const img = image(folder, snap, 'walk');
      const physBase = BigInt(img.kernel_values!.phys_base);
      const syms = Object.entries(img.kernel_symbols!).filter(([, v]) => BigInt(v) >= START_KERNEL_MAP);
      const mapped = new Set<string>();
      for (const [name, v] of syms) {
        const va = BigInt(v);
        const t = translateVa(img, img.roots.kernel, va, 0);
        if (t.ok) {
          expect(BigInt(t.pa), name).toBe(va - START_KERNEL_MAP + physBase);
          mapped.add(name);
        } else {
          expect(t.errorCode & PFEC_P, `${name} faults only as not present`).toBe(0);
        }
      }
      for (const name of ['_text', 'entry_SYSCALL_64', '__start_rodata', '_sdata', 'init_top_pgt', 'idt_table', 'empty_zero_page']) {
        expect(mapped.has(name), `${name} is mapped`).toBe(true);
      }
      // pti.c pti_clone_entry_text(): the entry text is in the user root, executable by the kernel.
      const entry = BigInt(img.kernel_symbols!.entry_SYSCALL_64);
      const u = translateVa(img, img.roots.user, entry, 0, ACCESS_FETCH);
      expect(u.ok).toBe(true);
      expect(BigInt(u.pa)).toBe(entry - START_KERNEL_MAP + physBase);
      // pti.c pti_kernel_image_global_ok(): with pti=on the rest of the image is not cloned.
      if (/\bpti=on\b/.test(img.kernel?.cmdline ?? '')) {
        expect(translateVa(img, img.roots.user, BigInt(img.kernel_symbols!._text), 0).ok).toBe(false);
      }
    });
  });

  it("has the user root's kernel half as a strict subset of the kernel root's", () => {
    const img = image(folder, 'kernel', 'pristine');
    const kernelHalf = (root: number): Map<string, string> => {
      const m = new Map<string, string>();
      forEachLeaf(img.mem, root, img.paging_levels, (vaLo, vaHi, shift, pa, lo, hi, _l, u, w, x) => {
        // Same frame, size, entry bits (A/D aside: set by use) and folded rights.
        if (vaHi >= 0x80000000) m.set(hex16(vaLo, vaHi), `${pa}/${shift}/${(lo & ~0x60) >>> 0}/${hi}/${u}${w}${x}`);
      });
      return m;
    };
    const k = kernelHalf(img.roots.kernel);
    const u = kernelHalf(img.roots.user);
    expect(u.size).toBeGreaterThan(0);
    for (const [va, v] of u) {
      if (k.get(va) !== v) expect(`${va} ${k.get(va)}`).toBe(`${va} ${v}`);
    }
    expect(k.size).toBeGreaterThan(u.size);
  });
});
