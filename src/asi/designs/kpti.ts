/**
 * KPTI (arch/x86/mm/pti.c, Documentation/arch/x86/pti.rst) in the ASI framework: the restricted
 * space of user mode is the process's user copy of the PGD pair (+4 KiB, kernel_to_user_pgdp()),
 * whose kernel half pti_init()/pti_finalize() filled (linux/pti.ts): the entry text, the
 * cpu_entry_area, each CPU's cpu_tss_rw page, ESPFIX, vsyscall when emulated, and the kernel
 * text too when pti_kernel_image_global_ok(). "Every kernel entry" leaves it
 * (SWITCH_TO_KERNEL_CR3); the return to user enters it (SWITCH_TO_USER_CR3_NOSTACK), with the
 * PCID pair kPCID = ASID + 1, uPCID = kPCID | 1 << 11 and the user_pcid_flush_mask rule for
 * NOFLUSH (arch/x86/entry/calling.h, arch/x86/mm/tlb.c; linux/asid.ts).
 */
import { forEachLeaf } from '../../x86/leaves.ts';
import type { System } from '../../linux/system.ts';
import type { AsiContext, AsiDesign, RestrictedSpace } from '../types.ts';

/** Paging-structure pages reachable from `root` (large leaves end the walk). */
export function tablePagesOf(sys: System, root: number): Set<number> {
  const seen = new Set<number>();
  const walk = (table: number, level: number): void => {
    const pfn = Math.floor(table / 4096);
    if (seen.has(pfn)) return;
    seen.add(pfn);
    if (level === 1) return;
    const w = sys.mem.frameWords(pfn);
    for (let i = 0; i < 512; i++) {
      const lo = w[2 * i];
      if ((lo & 1) === 0 || (level <= 3 && (lo & 0x80) !== 0)) continue;
      walk((w[2 * i + 1] & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0), level - 1);
    }
  };
  walk(root, sys.levels);
  return seen;
}

export const kpti: AsiDesign = {
  name: 'kpti',
  title: 'Kernel page-table isolation (mainline pti.c)',
  sources: ['arch/x86/mm/pti.c', 'Documentation/arch/x86/pti.rst', 'arch/x86/entry/calling.h SWITCH_TO_USER_CR3', 'arch/x86/mm/tlb.c kern_pcid()/user_pcid()'],
  model: 'none',
  contextKinds: ['process', 'vm'],
  tenantKinds: ['process', 'vm'],
  transition: 'kpti',
  faultPolicy: 'exit-retry',
  pcid: { kind: 'kpti', noflush: 'kpti-mask', source: 'tlb.c: kPCID = asid + 1, uPCID = kPCID | 1 << X86_CR3_PTI_PCID_USER_BIT; calling.h user_pcid_flush_mask' },
  taint: null,
  stun: false,
  conventional: { vmentryFlush: 'kept', pti: 'kept', globalKernel: 'cleared', source: 'KPTI is the PTI of the kernel (arch/x86/mm/pti.c): "Except when with PTI where the kernel is mostly non-Global"', assumed: [] },
  holds: [
    'the process\'s user half',
    'entry text (PMD-cloned), cpu_entry_area (P4D-cloned), each CPU\'s cpu_tss_rw page, ESPFIX (X86_BUG_ESPFIX)',
    'vsyscall page with vsyscall=emulate; kernel text when pti_kernel_image_global_ok() (no PCID, pti=auto)',
  ],
  spec() {
    throw new Error('kpti: the restricted space is the existing user copy (build())');
  },
  build(sys: System, ctx: AsiContext): RestrictedSpace {
    if (!sys.kernel.pti.enabled || sys.kernel.userRoot === null) throw new RangeError('kpti: this kernel runs without PTI (pti=off or a CPU without Meltdown under pti=auto)');
    const p = ctx.process;
    if (!p) throw new RangeError('kpti: a process context is needed');
    const mine = tablePagesOf(sys, p.userPgd);
    const full = tablePagesOf(sys, p.pgd);
    const own = [...mine].filter((f) => !full.has(f)).sort((a, b) => a - b);
    let leaves = 0;
    forEachLeaf(sys.mem, p.userPgd, sys.levels, () => { leaves++; });
    return {
      id: -1, design: 'kpti', context: ctx, root: p.userPgd, fullRoot: p.pgd, tableFrames: own,
      stats: { tablePages: own.length, sharedSubtrees: mine.size - own.length, copiedLeaves: leaves, splits: { pud: 0, pmd: 0 } },
      compareUserHalf: false, gen: 1,
    };
  },
  permits(_sys, ctx, a, via) {
    if (via === 'user') return a.user?.pid === ctx.process?.pid;
    return a.boot; // entry text, GDT/IDT, per-CPU TSS and stacks, ESPFIX stack: all boot memory of the kernel
  },
};
