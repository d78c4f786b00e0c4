// KPTI in the model against the rules of arch/x86/mm/pti.c (Linux 6.1), quoted per test, and
// against the captures' user roots for 5-level paging's folded/unfolded P4D.
//  - pti_check_boottime_disable(): pti=on forces, pti=off disables, auto follows X86_BUG_CPU_MELTDOWN;
//  - __default_kernel_pte_mask drops _PAGE_GLOBAL with PTI (init.c probe_page_size_mask());
//  - pti_kernel_image_global_ok(): no PCID, pti=auto, not K8, not RANDSTRUCT;
//  - pti_clone_kernel_text(): _text..__end_rodata_aligned cloned, _text.._etext made global;
//  - free_kernel_image_pages(): with PTI the freed image ranges leave the high mapping;
//  - __pti_set_user_pgtbl(): user PGD entries go to both copies, NX in the kernel's.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { bootKernel, hasK8, DEFAULT_CPU, type KernelModel } from '../../src/linux/kernel.ts';
import { ptiKernelImageGlobalOk, ptiModeFromCmdline, setPgdEntry } from '../../src/linux/pti.ts';
import { parseCmdline } from '../../src/formats/cmdline.ts';
import { collectLeaves, F_GLB, F_NX, F_RW, F_USR, type Leaves } from '../../src/linux/compare.ts';
import { loadPtImage } from '../../src/x86/ptimage.ts';
import { PageTables } from '../../src/x86/pgtable.ts';
import { PhysMemory } from '../../src/phys/memory.ts';

const CAPTURES = join(import.meta.dirname, '../fixtures/captures');

/** The leaf covering `va` in a root, or null. */
function leafAt(l: Leaves, va: bigint): { vpn: number; shift: number; flags: number; pa: number } | null {
  const v = Number(va >> 12n);
  let i = l.lowerBound(v + 1) - 1;
  if (i < 0) return null;
  const end = l.vpn[i] + 2 ** (l.shift[i] - 12);
  if (v >= end) return null;
  return { vpn: l.vpn[i], shift: l.shift[i], flags: l.flags[i], pa: l.pa[i] };
}

function kernelHalf(l: Leaves): number {
  return l.n - l.lowerBound(2 ** 51);
}

describe('pti=on / off / auto', () => {
  const on = bootKernel({ pti: 'on' });
  const off = bootKernel({ pti: 'off' });
  const autoNoPcid = bootKernel({ pti: 'auto', cpu: { pcid: false } });
  const autoPcid = bootKernel({ pti: 'auto', cpu: { pcid: true } });
  const s = on.sections;
  const alias = (m: KernelModel, va: bigint) => m.layout.addrs.page_offset_base + va - m.layout.addrs.__START_KERNEL_map + m.physBase;

  it('pti=off: no user copy; kernel mappings keep _PAGE_GLOBAL (image and direct map)', () => {
    expect(off.pti.enabled).toBe(false);
    expect(off.userRoot).toBeNull();
    const k = collectLeaves(off.mem, off.kernelRoot, off.levels);
    expect(leafAt(k, s.text)!.flags & F_GLB).toBe(F_GLB);
    expect(leafAt(k, s.sdata)!.flags & F_GLB).toBe(F_GLB);
    expect(leafAt(k, off.layout.addrs.page_offset_base + 0x10000000n)!.flags & F_GLB).toBe(F_GLB);
  });

  it('pti=off: freed image ranges stay mapped in the high mapping (no set_memory_np_noalias())', () => {
    const k = collectLeaves(off.mem, off.kernelRoot, off.levels);
    const gap = leafAt(k, ((s.etext + 4095n) / 4096n) * 4096n);
    expect(gap).not.toBeNull();
    expect(gap!.flags & (F_RW | F_NX)).toBe(F_RW | F_NX); // free_init_pages(): NX and RW
    expect(leafAt(k, s.initBegin)).not.toBeNull();
  });

  it('pti=on: the kernel is non-global except the entry text PMD, cpu_entry_area and ESPFIX', () => {
    expect(on.pti.enabled).toBe(true);
    const k = collectLeaves(on.mem, on.kernelRoot, on.levels);
    expect(leafAt(k, s.text)!.flags & F_GLB).toBe(0);
    expect(leafAt(k, s.entryTextStart)!.flags & F_GLB).toBe(F_GLB);
    expect(leafAt(k, s.entryTextStart)!.shift).toBe(21);
    expect(leafAt(k, on.layout.addrs.page_offset_base + 0x10000000n)!.flags & F_GLB).toBe(0);
    expect(leafAt(k, on.layout.addrs.CPU_ENTRY_AREA_BASE)!.flags & F_GLB).toBe(F_GLB);
    const esp = Number(on.layout.addrs.ESPFIX_BASE_ADDR >> 12n);
    let espLeaves = 0;
    const espFlags = new Set<number>();
    for (let i = k.lowerBound(esp); i < k.n && k.vpn[i] < esp + 2 ** 27; i++) { espLeaves++; espFlags.add(k.flags[i]); }
    expect(espLeaves).toBe(65536); // one page, 65,536 times
    expect([...espFlags]).toEqual([F_GLB | F_NX]); // __PAGE_KERNEL_RO & __supported_pte_mask
    expect(leafAt(k, s.initBegin)).toBeNull(); // free_kernel_image_pages(): unmapped with PTI
  });

  it('pti=on: the user copy holds the entry text (read-only, global), the cpu_entry_area, the TSS page and ESPFIX — no other kernel text', () => {
    const u = collectLeaves(on.mem, on.userRoot!, on.levels);
    const entry = leafAt(u, s.entryTextStart)!;
    expect(entry.shift).toBe(21);
    expect(entry.flags & (F_RW | F_NX | F_GLB | F_USR)).toBe(F_GLB);
    expect(leafAt(u, s.text)).toBeNull();
    expect(leafAt(u, s.startRodata)).toBeNull();
    expect(leafAt(u, on.layout.addrs.CPU_ENTRY_AREA_BASE)).not.toBeNull();
    const tss = on.layout.addrs.page_offset_base + on.perCpuPa[0] + s.percpu.cpuTssRw;
    expect(leafAt(u, tss)).toMatchObject({ shift: 12, flags: F_RW | F_NX }); // PAGE_KERNEL: no GLOBAL under PTI
    expect(leafAt(u, tss + 4096n)).toBeNull(); // only the first page (the sp2 scratch slot)
    // The only kernel-half leaves of the user copy: entry text, TSS, cpu_entry_area, ESPFIX.
    const k = collectLeaves(on.mem, on.kernelRoot, on.levels);
    const ceaLeaves = k.lowerBound(Number(on.layout.addrs.CPU_ENTRY_AREA_BASE >> 12n) + 2 ** 27) - k.lowerBound(Number(on.layout.addrs.CPU_ENTRY_AREA_BASE >> 12n));
    expect(kernelHalf(u)).toBe(1 + 1 + ceaLeaves + 65536);
  });

  it('pti=auto without PCID (and not K8, not RANDSTRUCT): kernel text and rodata cloned at PMD level, text global in both aliases', () => {
    expect(autoNoPcid.pti).toMatchObject({ enabled: true, kernelImageGlobal: true });
    const u = collectLeaves(autoNoPcid.mem, autoNoPcid.userRoot!, autoNoPcid.levels);
    const k = collectLeaves(autoNoPcid.mem, autoNoPcid.kernelRoot, autoNoPcid.levels);
    expect(leafAt(u, s.text)).not.toBeNull();
    expect(leafAt(u, s.startRodata)).not.toBeNull();
    expect(leafAt(u, s.endRodataAligned - 4096n)).toBeNull(); // the rodata/data gap is unmapped in the shared PTE page
    expect(leafAt(u, s.sdata)).toBeNull(); // "do not clone the areas past rodata"
    expect(leafAt(k, s.text)!.flags & F_GLB).toBe(F_GLB);
    expect(leafAt(k, s.etext - 1n)!.flags & F_GLB).toBe(F_GLB); // set_memory_global() reaches the PTEs too
    expect(leafAt(k, s.startRodata)!.flags & F_GLB).toBe(F_GLB); // the cloned rodata PMDs get GLOBAL from pti_clone_pgtable()
    expect(leafAt(k, alias(autoNoPcid, s.text))!.flags & F_GLB).toBe(F_GLB); // set_memory_global() processes the alias
    expect(leafAt(k, s.sdata)!.flags & F_GLB).toBe(0);
  });

  it('pti=auto with PCID: only the entry text, as with pti=on', () => {
    expect(autoPcid.pti).toMatchObject({ enabled: true, kernelImageGlobal: false });
    const u = collectLeaves(autoPcid.mem, autoPcid.userRoot!, autoPcid.levels);
    expect(leafAt(u, s.text)).toBeNull();
    expect(leafAt(u, s.entryTextStart)).not.toBeNull();
  });

  it('pti=auto on a CPU without Meltdown leaves PTI off; pti=on forces it', () => {
    expect(bootKernel({ pti: 'auto', cpu: { meltdown: false } }).pti.enabled).toBe(false);
    expect(bootKernel({ pti: 'on', cpu: { meltdown: false } }).pti.enabled).toBe(true);
  });

  it('pti_kernel_image_global_ok(): each of PCID, pti=on, K8, RANDSTRUCT forbids a global kernel image', () => {
    const base = { pcid: false, mode: 'auto' as const, k8: false, randstruct: false };
    expect(ptiKernelImageGlobalOk(base)).toBe(true);
    expect(ptiKernelImageGlobalOk({ ...base, pcid: true })).toBe(false);
    expect(ptiKernelImageGlobalOk({ ...base, mode: 'on' })).toBe(false);
    expect(ptiKernelImageGlobalOk({ ...base, k8: true })).toBe(false);
    expect(ptiKernelImageGlobalOk({ ...base, randstruct: true })).toBe(false);
    // X86_FEATURE_K8: AMD family >= 0xf (early_init_amd()), every Hygon
    expect(hasK8({ ...DEFAULT_CPU, vendor: 'amd', family: 0x19 })).toBe(true);
    expect(hasK8({ ...DEFAULT_CPU, vendor: 'amd', family: 0xe })).toBe(false);
    expect(hasK8({ ...DEFAULT_CPU, vendor: 'intel', family: 6 })).toBe(false);
    const amd = bootKernel({ pti: 'auto', cpu: { vendor: 'amd', family: 0x17, meltdown: true, pcid: false } });
    expect(amd.pti).toMatchObject({ enabled: true, kernelImageGlobal: false });
  });

  it('reads pti=, nopti and mitigations=off from the command line (last pti= wins)', () => {
    expect(ptiModeFromCmdline(parseCmdline('pti=on').params)).toBe('on');
    expect(ptiModeFromCmdline(parseCmdline('pti=on pti=off').params)).toBe('off');
    expect(ptiModeFromCmdline(parseCmdline('nopti').params)).toBe('off');
    expect(ptiModeFromCmdline(parseCmdline('mitigations=off').params)).toBe('off');
    expect(ptiModeFromCmdline(parseCmdline('quiet').params)).toBe('auto');
  });

  it('vsyscall=emulate: the page in the fixmap (USER, NX) and in the user copy, with USER on the user path', () => {
    const m = bootKernel({ pti: 'on', cmdline: 'vsyscall=emulate' });
    const va = m.layout.addrs.VSYSCALL_ADDR;
    const k = collectLeaves(m.mem, m.kernelRoot, m.levels);
    const u = collectLeaves(m.mem, m.userRoot!, m.levels);
    expect(leafAt(k, va)).toMatchObject({ shift: 12, flags: F_USR | F_NX });
    expect(leafAt(u, va)).toMatchObject({ shift: 12, flags: F_USR | F_NX });
    expect(leafAt(k, va)!.pa).toBe(Number(m.sections.vsyscallPage! - m.layout.addrs.__START_KERNEL_map + m.physBase));
    expect(leafAt(collectLeaves(bootKernel({ pti: 'on' }).mem, m.kernelRoot, m.levels), va)).toBeNull(); // Debian: LEGACY_VSYSCALL_NONE
  });
});

describe('__pti_set_user_pgtbl()', () => {
  it('a present USER entry in the user half goes to both copies, with NX in the kernel copy only', () => {
    const mem = new PhysMemory(52);
    let next = 0x100000n;
    const pt = new PageTables(mem, 4, () => (next += 0x1000n), 0x10000n);
    const e = 0x200000n | 0x67n; // _PAGE_TABLE (USER)
    const k = setPgdEntry(pt, 0x10000n, 5, e, true, true);
    expect(k).toBe(e | (1n << 63n));
    expect(mem.read64Big(0x10000 + 5 * 8)).toBe(e | (1n << 63n));
    expect(mem.read64Big(0x11000 + 5 * 8)).toBe(e);
    // A kernel-only entry keeps its bits; a kernel-half entry is not copied.
    setPgdEntry(pt, 0x10000n, 6, 0x300063n, true, true);
    expect(mem.read64Big(0x10000 + 6 * 8)).toBe(0x300063n);
    setPgdEntry(pt, 0x10000n, 300, e, true, true);
    expect(mem.read64Big(0x11000 + 300 * 8)).toBe(0n);
    // Without NX support, no NX.
    expect(setPgdEntry(pt, 0x10000n, 7, e, false, true)).toBe(e);
  });
});

describe('the captures follow __pti_set_user_pgtbl()', () => {
  for (const dir of ['la48-pti-nokaslr', 'la57-pti-nokaslr']) {
    it(`${dir}: each user-half PGD entry of the kernel root is the user root's, plus NX when USER|PRESENT`, () => {
      const img = loadPtImage(join(CAPTURES, dir, 'kernel.json.gz'));
      const mem = new PhysMemory(52);
      const pt = new PageTables(mem, img.paging_levels, () => { throw new Error('no tables needed'); }, 0x10000n);
      let present = 0;
      for (let i = 0; i < 256; i++) {
        const u = img.mem.read64Big(img.roots.user + i * 8);
        const k = img.mem.read64Big(img.roots.kernel + i * 8);
        if (u === 0n) { expect(k).toBe(0n); continue; }
        present++;
        expect(setPgdEntry(pt, 0x10000n, i, u, true, true)).toBe(k);
      }
      expect(present).toBeGreaterThan(0);
    });
  }
});

describe('5-level paging (the la57 capture)', () => {
  it('the user copy has its own P4D page; cpu_entry_area and ESPFIX share the kernel\'s P4D entries (pti_clone_p4d())', () => {
    const img = loadPtImage(join(CAPTURES, 'la57-pti-nokaslr/kernel.json.gz'));
    const m = bootKernel({ levels: 5, cpu: { la57: true }, pti: 'on' });
    const read = (mem: PhysMemory, t: number, i: number) => mem.read64Big(t + i * 8);
    for (const [mem, kroot, uroot] of [[img.mem, img.roots.kernel, img.roots.user], [m.mem, m.kernelRoot, m.userRoot!]] as const) {
      const kp = read(mem, kroot, 511);
      const up = read(mem, uroot, 511);
      expect(up & 0xffffffffff000n).not.toBe(kp & 0xffffffffff000n);
      const kP4d = Number(kp & 0xffffffffff000n);
      const uP4d = Number(up & 0xffffffffff000n);
      expect(read(mem, uP4d, 508)).toBe(read(mem, kP4d, 508)); // CPU_ENTRY_AREA_BASE: p4d index 508
      expect(read(mem, uP4d, 510)).toBe(read(mem, kP4d, 510)); // ESPFIX_BASE_ADDR: p4d index 510
      expect(read(mem, uP4d, 511)).not.toBe(read(mem, kP4d, 511)); // the image P4D is walked, not shared
    }
  });
});
