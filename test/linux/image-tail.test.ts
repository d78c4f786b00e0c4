// The image tail (src/linux/image-tail.ts): frames past _end that the high map's last PMD still
// maps. Truth used: set_memory.c's alias rule (cpa_process_alias(): a set_memory_ro() on a module
// address is repeated on the high-map alias when __cpa_pfn_in_highmap(pfn), without touching NX),
// cleanup_highmap()'s bound roundup(_brk_end, PMD_SIZE), and the proof `kasi kernel --compare`
// demands for an alias split (the same frame read-only in the capture's modules/vmalloc area).
import { describe, expect, it } from 'vitest';
import { bootKernel, type KernelModel, type KernelOptions } from '../../src/linux/kernel.ts';
import { compareKernels } from '../../src/linux/compare.ts';
import { lookupAddress, setMemoryRo, __PAGE_KERNEL, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW, PTE_PFN_MASK } from '../../src/linux/cpa.ts';
import { populate } from '../../src/linux/fixed.ts';

const PAGE = 4096n;
const side = (m: KernelModel) => ({
  kernel: { mem: m.mem, root: m.kernelRoot, levels: m.levels },
  user: m.userRoot === null ? null : { mem: m.mem, root: m.userRoot, levels: m.levels },
  imageEnd: m.sections.end,
});
const region = (r: ReturnType<typeof compareKernels>, name: string) => r.kernel.regions.find((x) => x.name === name)!;
const highVa = (m: KernelModel, pa: bigint) => pa - m.physBase + m.layout.addrs.__START_KERNEL_map;
const entry = (m: KernelModel, va: bigint) => lookupAddress(m.cpa.pt, va)!;

/** Map one module-area page to `pa` (PAGE_KERNEL), as module_alloc() would. */
function modulePage(m: KernelModel, va: bigint, pa: bigint): void {
  m.cpa.pt.write(populate(m.cpa.pt, va, 1, 0x67n), pa | (__PAGE_KERNEL & m.cpa.masks.defaultKernel));
}

for (const [name, opts] of [['nokaslr', {}], ['KASLR', { kaslr: { seed: 11 }, seed: 11 }]] as Array<[string, KernelOptions]>) {
  describe(`the model's boot places module/BPF text in the image tail (${name})`, () => {
    const m = bootKernel({ ...opts, tailText: [{ name: 'bpf-pack', pages: 3 }, { name: 'mod', pages: 2, at: 8 }] });

    it('the tail is the high map past _end up to roundup(_brk_end, 2 MiB)', () => {
      const t = m.imageTail;
      expect(t.vaStart).toBe(m.sections.end);
      expect(t.vaEnd).toBe(((m.brkEnd + (1n << 21n) - 1n) >> 21n) << 21n);
      expect(t.paStart).toBe(m.sections.end - m.layout.addrs.__START_KERNEL_map + m.physBase);
      expect(m.tailText.map((x) => x.pa)).toEqual([t.paStart, t.paStart + 8n * PAGE]);
    });

    it('set_memory_ro() on the module address splits the last PMD and write-protects the high-map alias, NX untouched', () => {
      for (const t of m.tailText) {
        for (let i = 0n; i < BigInt(t.pages); i++) {
          const mod = entry(m, t.va + i * PAGE);
          expect(mod.level).toBe(1);
          expect(mod.entry & (_PAGE_RW | _PAGE_NX)).toBe(0n); // read-only and executable
          const hi = entry(m, highVa(m, t.pa + i * PAGE));
          expect(hi.level).toBe(1); // the 2 MiB PMD is split
          expect(hi.entry & _PAGE_RW).toBe(0n);
          expect(hi.entry & _PAGE_NX).toBe(_PAGE_NX); // mark_rodata_ro() made it NX; the alias keeps NX
          expect(entry(m, m.layout.addrs.page_offset_base + t.pa + i * PAGE).entry & _PAGE_RW).toBe(0n);
        }
      }
      // The tail pages between the two stay writable.
      const between = entry(m, m.imageTail.vaStart + 5n * PAGE);
      expect(between.level).toBe(1);
      expect(between.entry & _PAGE_RW).toBe(_PAGE_RW);
    });

    it('kasi kernel --compare accepts the split against a model without the text (the capture proves it)', () => {
      const r = compareKernels(bootKernel(opts).layout, side(bootKernel(opts)), side(m));
      const hk = region(r, 'High Kernel Mapping');
      expect(hk.unexplained).toBe(0);
      expect(hk.status).toBe('dynamic');
      expect(hk.reason).toMatch(/__cpa_pfn_in_highmap/);
      expect(region(r, 'Low Kernel Mapping').status).toBe('dynamic');
      expect(r.ok).toBe(true);
    });
  });
}

describe('high-map splits without the proof are rejected', () => {
  const model = bootKernel({});

  it('read-only tail pages with no module/vmalloc alias', () => {
    const cap = bootKernel({});
    const va = cap.imageTail.vaStart + 2n * PAGE;
    setMemoryRo(cap.cpa, va, va + 2n * PAGE); // the high map itself is the primary
    const r = compareKernels(model.layout, side(model), side(cap));
    expect(region(r, 'High Kernel Mapping').status).toBe('differ');
    expect(r.failures).toContain('kernel root: High Kernel Mapping differs');
  });

  it('a writable module alias proves nothing', () => {
    const cap = bootKernel({});
    const pa = cap.imageTail.paStart + 2n * PAGE;
    modulePage(cap, cap.layout.addrs.MODULES_VADDR, pa); // RW
    setMemoryRo(cap.cpa, highVa(cap, pa), highVa(cap, pa) + PAGE);
    const r = compareKernels(model.layout, side(model), side(cap));
    expect(region(r, 'High Kernel Mapping').status).toBe('differ');
  });

  it('a read-only module alias of an image frame before _end is not a page the allocator could have handed out', () => {
    const cap = bootKernel({});
    const pa = cap.imageTail.paStart - 4n * PAGE; // .brk, inside [_text, _end)
    const va = cap.layout.addrs.MODULES_VADDR;
    modulePage(cap, va, pa);
    setMemoryRo(cap.cpa, va, va + PAGE); // cpa_process_alias() write-protects its high-map page too
    expect(entry(cap, highVa(cap, pa)).entry & _PAGE_RW).toBe(0n);
    const r = compareKernels(model.layout, side(model), side(cap));
    expect(region(r, 'High Kernel Mapping').status).toBe('differ');
    // ...and without the model's _end nothing in the high map is explained, even past it.
    const tail = bootKernel({ tailText: [{ name: 't', pages: 1 }] });
    const { imageEnd: _drop, ...noEnd } = side(model);
    expect(region(compareKernels(model.layout, noEnd, side(tail)), 'High Kernel Mapping').status).toBe('differ');
  });
});

describe('highmapTail: unmap (the what-if that closes the alias)', () => {
  const keep = bootKernel({});
  const unmap = bootKernel({ highmapTail: 'unmap' });

  it('every tail page is non-present in the high map; the image before _end and the direct map are unchanged', () => {
    const t = unmap.imageTail;
    for (let va = t.vaStart; va < t.vaEnd; va += PAGE) expect(entry(unmap, va).entry & _PAGE_PRESENT, va.toString(16)).toBe(0n);
    const last = entry(unmap, t.vaStart - PAGE);
    expect(last.entry & _PAGE_PRESENT).toBe(_PAGE_PRESENT);
    expect(last.entry & PTE_PFN_MASK).toBe(t.paStart - PAGE);
    const dm = unmap.layout.addrs.page_offset_base + t.paStart;
    expect(entry(unmap, dm).entry).toBe(entry(keep, dm).entry);
  });

  it('costs one PMD split and one page-table page', () => {
    expect(unmap.stats.splits.pmd - keep.stats.splits.pmd).toBe(1);
    expect(unmap.stats.tablePages - keep.stats.tablePages).toBe(1);
  });
});
