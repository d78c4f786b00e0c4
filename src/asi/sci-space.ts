/**
 * The System Call Isolation space of one process of a booted System (linux/system.ts), for
 * `kasi asi --design sci-2019`: its SciTaskTables (asi/sci.ts, sci_pagetable_init() of RFC 2/7,
 * lore 1556228754-12996-1-git-send-email-rppt@linux.ibm.com) built from the process's PGD pair
 * and its vmapped stack, as sim/sci-run.ts builds them for `kasi run`, plus the RestrictedSpace
 * view the report helpers (compareRegions, missingRuns, ptdump) read.
 *
 * The CPU: SciTaskTables' own MMU with PCID on ("System call isolation requires PCID", RFC
 * cover letter). The captured kernels' CPUs have no PCID (their cpuinfo), so on a capture this
 * is SCI as if the CPU had it, as the footprint replay (sci-report.ts) does.
 * The SCI paging structures come from the System's buddy allocator and are recorded as kernel
 * page tables ('sci page table'), as restricted.ts records an ASI space's.
 */
import type { Kallsyms } from '../formats/kallsyms.ts';
import { KERNEL_OWNER } from '../linux/owners.ts';
import { classify } from '../linux/sensitivity.ts';
import { USE_PAGE_TABLE } from '../linux/buddy.ts';
import type { System } from '../linux/system.ts';
import type { VmArea } from '../linux/vmalloc.ts';
import type { Process } from '../linux/process.ts';
import { SciTaskTables, type SciOptions } from './sci.ts';
import type { AsiContext, RestrictedSpace } from './types.ts';

export interface SciSpace {
  readonly ctx: AsiContext;
  readonly process: Process;
  readonly stack: VmArea;
  readonly tables: SciTaskTables;
  readonly kallsyms: Kallsyms;
  /** The view the report helpers take: root = the SCI PGD, fullRoot = mm->pgd. */
  readonly space: RestrictedSpace;
}

/**
 * The allocator of SCI paging structures: zeroed kernel pages of the page-table class, recorded
 * as 'sci page table' so reports and attacks see whose frames they are (`frames` lists them).
 */
export function sciTableAllocator(sys: System): { alloc: () => number; frames: number[] } {
  const cls = classify(sys.model, 'page-table', sys.owners.kernel);
  const frames: number[] = [];
  const alloc = (): number => {
    const pfn = sys.buddy.alloc(0, KERNEL_OWNER, cls, 'normal', USE_PAGE_TABLE);
    sys.mem.frameWords(pfn).fill(0);
    sys.recordPages(KERNEL_OWNER, pfn, 0, 'page-table', 'sci page table');
    frames.push(pfn);
    return pfn * 4096;
  };
  return { alloc, frames };
}

/** The context of process `index` of the System's user processes. */
export function sciContext(sys: System, index = 0): AsiContext {
  const list = sys.userProcesses;
  if (!Number.isInteger(index) || index < 0 || index >= list.length) throw new RangeError(`process ${index}: the system has ${list.length} (0..${list.length - 1})`);
  const p = list[index];
  return { kind: 'process', label: `process ${p.comm}[${p.pid}]`, process: p, tenants: [p.owner.id], fullRoot: p.pgd };
}

/** Build the SCI tables of process `index` (options as SciTaskTables takes them; the kernel, task and allocator are the System's). */
export function buildSciSpace(sys: System, kallsyms: Kallsyms, index = 0, o: Partial<SciOptions> = {}): SciSpace {
  if (sys.kernel.userRoot === null || !sys.kernel.pti.enabled) throw new RangeError('sci-2019 needs a kernel with PTI (its tables clone the KPTI user tables, RFC 2/7)');
  const ctx = sciContext(sys, index);
  const p = ctx.process!;
  const stack = sys.stacks.get(p.pid);
  if (stack === undefined) throw new RangeError(`sci-2019: process ${p.comm} has no kernel stack`);
  const { alloc, frames } = sciTableAllocator(sys);
  const tables = new SciTaskTables({ kernel: sys.kernel, kallsyms, task: { pgd: p.pgd, userPgd: p.userPgd, stack: stack.va }, alloc, ...o });
  const leaves = tables.premapped.length;
  const space: RestrictedSpace = {
    id: -1, design: 'sci-2019', context: ctx, root: tables.root, fullRoot: p.pgd, tableFrames: frames,
    // The user half shares the user root's tables below the PGD (sci_sync_user_pagetable() copies 256 entries).
    stats: { tablePages: frames.length, sharedSubtrees: userEntries(sys, p.userPgd), copiedLeaves: leaves, splits: { pud: 0, pmd: 0 } },
    compareUserHalf: false, gen: 1,
  };
  return { ctx, process: p, stack, tables, kallsyms, space };
}

function userEntries(sys: System, pgd: number): number {
  let n = 0;
  for (let i = 0; i < 256; i++) if ((sys.mem.read32(pgd + i * 8) & 1) !== 0) n++;
  return n;
}
