/**
 * ptdump against three kinds of truth:
 *  - differential: QEMU's `info mem` (qemu_info_mem) is an independent fold of U and W over
 *    all levels; every present range of the dump's effective protections must agree with it;
 *  - the guest's own boot log: the kernel ran the same W+X check on the same tables' ancestors
 *    and printed its verdict for the kernel and the KPTI user tables;
 *  - golden text for a hand-built table, derived by hand from dump_pagetables.c's printf
 *    formats ("0x%016lx-0x%016lx   %9lu%c " + printk_prot) and mm/ptdump.c's walk order.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPtImage, type PtImage } from '../../src/x86/ptimage.ts';
import { PhysMemory } from '../../src/phys/memory.ts';
import { PROT_PRESENT, PROT_RW, PROT_USER, formatRun, printkProt, ptdump } from '../../src/report/ptdump.ts';
import { layoutFromKernelValues } from '../../src/report/markers.ts';

const CAPTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/captures');
const FOLDERS = readdirSync(CAPTURES).filter((d) => existsSync(join(CAPTURES, d, 'kernel.json.gz'))).sort();

const images = new Map<string, PtImage>();
function image(folder: string, snap: string): PtImage {
  const key = `${folder}/${snap}`;
  if (!images.has(key)) images.set(key, loadPtImage(join(CAPTURES, folder, `${snap}.json.gz`)));
  return images.get(key)!;
}

const hex = (n: bigint): string => n.toString(16).padStart(16, '0');

/** The x86-64 region names in the order of the kernel's enum address_markers_idx (6.1). */
const KERNEL_MARKER_ORDER = [
  'User Space', 'Kernel Space', 'LDT remap', 'Low Kernel Mapping', 'vmalloc() Area', 'Vmemmap',
  'CPU entry Area', 'ESPfix Area', 'EFI Runtime Services', 'High Kernel Mapping', 'Modules',
  'End Modules', 'Fixmap Area',
];

describe.each(FOLDERS)('capture %s', (folder) => {
  describe.each(['kernel', 'user'])('%s snapshot', (snap) => {
    it("folds U and W over the levels exactly as QEMU's info mem does", (ctx) => {
      const img = image(folder, snap);
      if (!img.qemu_info_mem) return ctx.skip(); // QEMU 7.2 prints no info mem with LA57
      // Present runs of the dump, merged like QEMU merges pages of equal (U, W).
      const got: [string, string, string][] = [];
      let open: { start: bigint; end: bigint; uw: string } | undefined;
      const flush = (): void => {
        if (open) got.push([`${hex(open.start)}-${hex(open.end)}`, hex(open.end - open.start), open.uw]);
        open = undefined;
      };
      ptdump(img.mem, img.roots[img.active_root], layoutFromKernelValues(img.paging_levels, img.kernel_values), {
        text: false,
        onRun: (startVpn, endVpn, prot, eff) => {
          if ((prot & PROT_PRESENT) === 0) return flush();
          const start = BigInt(startVpn) << 12n;
          const end = endVpn === 0 ? 1n << 64n : BigInt(endVpn) << 12n;
          const uw = `${eff & PROT_USER ? 'u' : '-'}r${eff & PROT_RW ? 'w' : '-'}`;
          if (open && open.end === start && open.uw === uw) open.end = end;
          else {
            flush();
            open = { start, end, uw };
          }
        },
      });
      flush();
      const want = img.qemu_info_mem;
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        if (got[i].join(' ') !== want[i].join(' ')) expect(`${i}: ${got[i].join(' ')}`).toBe(`${i}: ${want[i].join(' ')}`);
      }
    });

    for (const rootName of ['kernel', 'user']) {
      it(`prints every region marker once, in the kernel's table order (${rootName} root)`, () => {
        const img = image(folder, snap);
        const r = ptdump(img.mem, img.roots[rootName], layoutFromKernelValues(img.paging_levels, img.kernel_values));
        const headers = [...r.text.matchAll(/^---\[ (.*) \]---$/gm)].map((m) => m[1]);
        // Kernel root: every region has entries. User root: nothing is mapped from the modules
        // area on, so the last hole runs to the end and later markers are never reached.
        expect(headers).toEqual(KERNEL_MARKER_ORDER.slice(0, rootName === 'kernel' ? KERNEL_MARKER_ORDER.length : 11));
        const lines = r.text.split('\n');
        expect(lines[0]).toBe('---[ User Space ]---');
        // ESPfix maps one page 65,536 times: the kernel caps the region at 16 lines.
        const esp = lines.indexOf('---[ ESPfix Area ]---');
        expect(lines[esp + 17]).toMatch(/^\.\.\. \d+ entries skipped \.\.\. $/);
        expect(lines[esp + 18]).toBe('---[ EFI Runtime Services ]---');
        // Every run line has the kernel's fixed columns.
        for (const l of lines) {
          if (l === '' || l.startsWith('---[') || l.startsWith('...')) continue;
          expect(l).toMatch(/^0x[0-9a-f]{16}-0x[0-9a-f]{16}   (?=[ \d]{9})( *\d+)[BKMGTPE] ((USR |    )(RW |ro )(PWT |    )(PCD |    )(PSE |    )(PAT |    )(GLB |    )(NX |x  )| {30})(pgd|p4d|pud|pmd|pte)$/);
        }
      });
    }
  });

  it('finds no W+X pages in either root, as the kernel reported at boot', () => {
    const log = readFileSync(join(CAPTURES, folder, 'boot.log'), 'utf8').split(/\r?\n/);
    const checked = (i: number): string => log[i].replace(/^\[[^\]]*\] /, '');
    const userIdx = log.findIndex((l) => l.includes('x86/mm: Checking user space page tables'));
    expect(userIdx).toBeGreaterThan(0);
    const bootKernel = checked(userIdx - 1); // ptdump_walk_pgd_level_checkwx(), then the user tables
    const bootUser = checked(userIdx + 1);
    expect(bootKernel).toMatch(/^x86\/mm: Checked W\+X mappings: /);
    const img = image(folder, 'kernel');
    const layout = layoutFromKernelValues(img.paging_levels, img.kernel_values);
    const k = ptdump(img.mem, img.roots.kernel, layout, { text: false });
    const u = ptdump(img.mem, img.roots.user, layout, { text: false });
    expect(k.wxPages).toBe(0);
    expect(u.wxPages).toBe(0);
    expect(u.wxUserPages).toBe(0);
    expect(k.wxMessages).toEqual([bootKernel]);
    expect(u.wxMessages).toEqual([bootUser]);
  });
});

describe('ptdump of a hand-built table (4-level, default layout)', () => {
  // PML4[511] -> PDPT; PDPT[510] -> PD (0xffffffff80000000); PD[0] -> PT;
  // PT[0..2] = P|RW (writable and executable), PT[3] = P|RW|NX, the rest empty.
  const mem = new PhysMemory(46);
  mem.write64(0x1000 + 511 * 8, 0x2003, 0);
  mem.write64(0x2000 + 510 * 8, 0x3003, 0);
  mem.write64(0x3000, 0x4003, 0);
  for (let i = 0; i < 3; i++) mem.write64(0x4000 + i * 8, 0x10003 + i * 0x1000, 0);
  mem.write64(0x4000 + 3 * 8, 0x13003, 0x80000000);
  const layout = layoutFromKernelValues(4, undefined);

  it('prints the kernel text for it', () => {
    const blank = ' '.repeat(30);
    const want = [
      '---[ User Space ]---',
      `0x0000000000000000-0xffff880000000000    16777096T ${blank}pgd`,
      '---[ Kernel Space ]---',
      `0xffff880000000000-0xffff888000000000         512G ${blank}pgd`,
      '---[ LDT remap ]---',
      `0xffff888000000000-0xffff890000000000         512G ${blank}pgd`,
      '---[ Low Kernel Mapping ]---',
      `0xffff890000000000-0xffffc90000000000          64T ${blank}pgd`,
      '---[ vmalloc() Area ]---',
      `0xffffc90000000000-0xffffea0000000000          33T ${blank}pgd`,
      '---[ Vmemmap ]---',
      `0xffffea0000000000-0xfffffe0000000000          20T ${blank}pgd`,
      '---[ CPU entry Area ]---',
      `0xfffffe0000000000-0xffffff0000000000           1T ${blank}pgd`,
      '---[ ESPfix Area ]---',
      `0xffffff0000000000-0xffffff8000000000         512G ${blank}pgd`,
      `0xffffff8000000000-0xffffffef00000000         444G ${blank}pud`,
      '---[ EFI Runtime Services ]---',
      `0xffffffef00000000-0xffffffff80000000          66G ${blank}pud`,
      '---[ High Kernel Mapping ]---',
      '0xffffffff80000000-0xffffffff80003000          12K     RW                     x  pte',
      '0xffffffff80003000-0xffffffff80004000           4K     RW                     NX pte',
      `0xffffffff80004000-0xffffffff80200000        2032K ${blank}pte`,
      `0xffffffff80200000-0xffffffffc0000000        1022M ${blank}pmd`,
      '---[ Modules ]---',
      `0xffffffffc0000000-0x0000000000000000           1G ${blank}pud`,
      '',
    ].join('\n');
    expect(ptdump(mem, 0x1000, layout).text).toBe(want);
  });

  it("counts the W+X pages and prints the kernel's warnings", () => {
    const r = ptdump(mem, 0x1000, layout, { text: false });
    expect(r.wxPages).toBe(3);
    expect(r.wxMessages).toEqual([
      'x86/mm: Found insecure W+X mapping at address 0xffffffff80000000',
      'x86/mm: Checked W+X mappings: FAILED, 3 W+X pages found.',
    ]);
  });

  it('folds as effective_prot(): USER and RW ANDed over the levels, NX ORed', () => {
    // Linux's own tables always set USER|RW above the leaf, so only a hand-built table can
    // tell an AND from "the leaf's bits". Four PDEs over four PTs, each PT[0] writable:
    //   PD[0] P|RW -> PTE P|RW        : effective RW, executable  (the only W+X page)
    //   PD[1] P    -> PTE P|RW        : effective read-only
    //   PD[2] P|RW|NX -> PTE P|RW     : effective RW, NX
    //   PD[3] P|RW|U -> PTE P|RW|U|NX : no USER (PML4E and PDPTE are supervisor)
    const m = new PhysMemory(46);
    m.write64(0x1000 + 511 * 8, 0x2003, 0);
    m.write64(0x2000 + 510 * 8, 0x3003, 0);
    const pdes: [number, number][] = [[0x3, 0], [0x1, 0], [0x3, 0x80000000], [0x7, 0]];
    const ptes: [number, number][] = [[0x3, 0], [0x3, 0], [0x3, 0], [0x7, 0x80000000]];
    pdes.forEach(([lo, hi], i) => {
      m.write64(0x3000 + i * 8, 0x4000 + i * 0x1000 + lo, hi);
      m.write64(0x4000 + i * 0x1000, 0x100000 + i * 0x1000 + ptes[i][0], ptes[i][1]);
    });
    const present: [string, number][] = [];
    const r = ptdump(m, 0x1000, layout, {
      text: false,
      onRun: (s, _e, prot, eff) => {
        if (prot & PROT_PRESENT) present.push([`0x${(BigInt(s) << 12n).toString(16)}`, eff]);
      },
    });
    expect(present).toEqual([
      ['0xffffffff80000000', PROT_RW],
      ['0xffffffff80200000', 0],
      ['0xffffffff80400000', PROT_RW | (1 << 23)],
      ['0xffffffff80600000', PROT_RW | (1 << 23)],
    ]);
    expect(r.wxPages).toBe(1);
  });

  it('prints every printk_prot() column in order', () => {
    // USR RW PWT PCD PSE PAT GLB NX, each with its blank form (dump_pagetables.c printk_prot()).
    expect(printkProt(0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x80 | 0x100 | (1 << 23), 3)).toBe('USR RW PWT PCD PSE     GLB NX pmd\n');
    expect(printkProt(0x1 | 0x80, 4)).toBe('    ro             PAT     x  pte\n');
    expect(printkProt(0x2 | 0x4, 4)).toBe(`${' '.repeat(30)}pte\n`);
    expect(formatRun(0, 1, 0, 4)).toBe(`0x0000000000000000-0x0000000000001000           4K ${' '.repeat(30)}pte\n`);
    expect(formatRun(0, 2 ** 18 * 3, 0x83, 2)).toBe('0x0000000000000000-0x00000000c0000000           3G     RW         PSE         x  pud\n');
    expect(formatRun(0, 3, 0x1, 4)).toBe('0x0000000000000000-0x0000000000003000          12K     ro                     x  pte\n');
  });
});
