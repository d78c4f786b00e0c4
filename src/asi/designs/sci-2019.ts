/**
 * System Call Isolation (Mike Rapoport, lore 1556228754-12996-1-git-send-email-rppt@linux.ibm.com,
 * April 2019) as an AsiDesign value, for the report and the checker (asi/sci-verify.ts). The
 * tables themselves are per task and built by asi/sci.ts SciTaskTables (sci_pagetable_init());
 * `kasi run` drives them through sim/sci-run.ts, not through the ASI session, so this value is
 * not in the registry: `build()` and `spec()` are not how its space is made.
 *
 * permits() is the allocation side of sci_pagetable_init() (RFC 2/7 arch/x86/mm/sci.c): the
 * process's own user half (sci_sync_user_pagetable()), its own vmapped stack
 * (sci_clone_range(mm->pgd, stack, stack + THREAD_SIZE)), and kernel boot memory behind the
 * other kernel-half pieces (cpu_entry_area and entry text cloned from the KPTI user root, the
 * per-CPU page, do_syscall_64's page). What a fault adds is decided per fault (sci-verify.ts).
 */
import type { AsiDesign } from '../types.ts';

export const sci2019: AsiDesign = {
  name: 'sci-2019',
  title: 'System Call Isolation (Rapoport RFC, 2019)',
  sources: [
    'lore 1556228754-12996-1-git-send-email-rppt@linux.ibm.com (cover letter)',
    'RFC 2/7 arch/x86/mm/sci.c: sci_pagetable_init(), sci_verify_and_map(), sci_clear_data()',
    'RFC 3/7 processor-flags.h X86_CR3_SCI_PCID_BIT; RFC 4/7 entry/common.c sci_syscall_enter()/exit(); RFC 5/7 fault.c sci_fault()',
  ],
  model: 'none',
  contextKinds: ['process'],
  tenantKinds: ['process', 'vm'],
  transition: 'static', // not used: sim/sci-run.ts switches CR3 around each system call (RFC 4/7)
  faultPolicy: 'verify-map',
  pcid: { kind: 'kernel', noflush: 'never', source: 'RFC 3/7-4/7: CR3 = SCI PGD | kern_pcid(asid) | 1 << X86_CR3_SCI_PCID_BIT (10), written without NOFLUSH' },
  taint: null,
  stun: false,
  conventional: { vmentryFlush: 'kept', pti: 'kept', globalKernel: 'cleared', source: 'RFC cover letter: SCI builds on PTI ("a clone of the KPTI user tables") and needs PCID', assumed: ['vmentryFlush', 'globalKernel'] },
  holds: [
    'the process\'s user half (sci_sync_user_pagetable(): its user PGD entries copied at every syscall)',
    'cpu_entry_area and the entry text [__entry_text_start, __irqentry_text_end), cloned leaf by leaf from the KPTI user root (sci_clone_range(u_pgd, ...))',
    'the task\'s stack [stack, stack + THREAD_SIZE) and a per-CPU page of every CPU (cpu_sci), cloned from mm->pgd',
    'do_syscall_64\'s page ("plus do_syscall_64", sci_clone_page(k_pgd, ...))',
    'during a syscall: one 4 KiB PTE per verified fault (sci_verify_and_map(): data always, code at a symbol start or the page after an entered one), cleared at syscall exit (sci_clear_data())',
  ],
  spec() {
    throw new Error('sci-2019: the space is per task, built by SciTaskTables (asi/sci.ts)');
  },
  build() {
    throw new Error('sci-2019: the space is per task, built by SciTaskTables (asi/sci.ts); see asi/sci-space.ts');
  },
  permits(sys, ctx, a, via) {
    const p = ctx.process;
    if (via === 'user') return p !== undefined && a.user?.pid === p.pid; // sci_sync_user_pagetable(): this mm's user half
    if (via === 'vmalloc') return p !== undefined && a.areaId !== undefined && a.areaId === sys.stacks.get(p.pid)?.id; // the task stack
    return a.boot; // cpu_entry_area, entry text, per-CPU page, do_syscall_64: kernel boot memory
  },
};
