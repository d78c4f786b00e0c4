/**
 * SCI's construction rule, derived again from the kernel (kallsyms, layout, the System's
 * records) rather than read back from SciTaskTables, so that sci-verify.ts can catch a builder
 * that departs from it. The rule is sci_pagetable_init() of RFC 2/7 (arch/x86/mm/sci.c, lore
 * 1556228754-12996-1-git-send-email-rppt@linux.ibm.com), item by item:
 *  - sci_clone_range(u_pgd, CPU_ENTRY_AREA_BASE, CPU_ENTRY_AREA_BASE + CPU_ENTRY_AREA_MAP_SIZE);
 *  - sci_clone_range(u_pgd, __entry_text_start, __irqentry_text_end);
 *  - sci_clone_range(mm->pgd, stack, stack + THREAD_SIZE);
 *  - sci_clone_page(k_pgd, &per_cpu(cpu_sci, cpu)) for every possible CPU;
 *  - "plus do_syscall_64": sci_clone_page(k_pgd, syscall_entry_addr);
 *  - sci_sync_user_pagetable(): the first PGD_KERNEL_START entries of the user PGD;
 * and, while a system call runs, sci_verify_and_map(): sci_clone_page(mm->pgd, address) for
 * every fault it grants, until sci_clear_data() clears them at syscall exit.
 * sci_clone_range() copies the source's leaves over the range at their own size ("*target_pmd =
 * *pmd" for a large PMD); sci_clone_page() writes one 4 KiB PTE (a slice of a large leaf).
 */
import type { Kallsyms } from '../formats/kallsyms.ts';
import type { System } from '../linux/system.ts';
import { THREAD_SIZE } from './sci.ts';

const P4D_SIZE = 1n << 39n; // asm/pgtable_areas.h (6.1.y): CPU_ENTRY_AREA_MAP_SIZE is P4D_SIZE on x86-64
const PFN_MASK = 0x000ffffffffff000n;
const PS = 0x80n;
const PAGE = 4096n;

export type SciSource = 'user-root' | 'kernel';

/** One piece of the rule: a VA range, the tables it is cloned from, and how. */
export interface SciRuleItem {
  readonly what: string;
  readonly start: bigint;
  readonly end: bigint;
  /** The KPTI user root (u_pgd) or the mm's kernel PGD (mm->pgd / k_pgd). */
  readonly from: SciSource;
  /** 'range': the source's leaves at their own size (sci_clone_range()); 'page': one 4 KiB PTE (sci_clone_page()). */
  readonly clone: 'range' | 'page';
  readonly source: string;
}

/** A leaf the rule puts in the SCI tables: [start, end) at `shift`, as the source maps it. */
export interface ExpectedLeaf {
  readonly start: bigint;
  readonly end: bigint;
  readonly shift: number;
  readonly item: SciRuleItem;
  /** The physical root the item is cloned from. */
  readonly root: number;
}

export interface SciTaskView {
  readonly pgd: number;
  readonly userPgd: number;
  readonly stack: bigint;
}

function need(ks: Kallsyms, name: string): bigint {
  const v = ks.addressOf(name);
  if (v === undefined) throw new RangeError(`${ks.file}: symbol ${name} not found (SCI's rule needs it)`);
  return v;
}

/** The items of sci_pagetable_init() for a task (cpu_sci: `cpuSciOffset` into each CPU's unit, default its first page). */
export function sciRule(sys: System, ks: Kallsyms, task: SciTaskView, cpuSciOffset = 0n): SciRuleItem[] {
  const cea = sys.layout.addrs.CPU_ENTRY_AREA_BASE;
  const sys64 = need(ks, 'do_syscall_64');
  const items: SciRuleItem[] = [
    { what: 'cpu_entry_area', start: cea, end: cea + P4D_SIZE, from: 'user-root', clone: 'range', source: 'RFC 2/7 sci_pagetable_init(): sci_clone_range(u_pgd, CPU_ENTRY_AREA_BASE, +CPU_ENTRY_AREA_MAP_SIZE)' },
    { what: 'entry text', start: need(ks, '__entry_text_start'), end: need(ks, '__irqentry_text_end'), from: 'user-root', clone: 'range', source: 'RFC 2/7 sci_pagetable_init(): sci_clone_range(u_pgd, __entry_text_start, __irqentry_text_end)' },
    { what: 'task stack', start: task.stack, end: task.stack + THREAD_SIZE, from: 'kernel', clone: 'range', source: 'RFC 2/7 sci_pagetable_init(): sci_clone_range(mm->pgd, stack, stack + THREAD_SIZE)' },
  ];
  // &per_cpu(cpu_sci, cpu): the embedded first chunk's units through the direct map (pcpu_embed_first_chunk()).
  const units = sys.bootAllocations().filter((a) => a.kind === 'percpu');
  units.forEach((a, c) => {
    const va = (sys.directMapVa(a.ranges[0].pa) + cpuSciOffset) & ~(PAGE - 1n);
    items.push({ what: `per-CPU page of CPU ${c}`, start: va, end: va + PAGE, from: 'kernel', clone: 'page', source: 'RFC 2/7 sci_pagetable_init(): sci_clone_page(k_pgd, &per_cpu(cpu_sci, cpu)) for_each_possible_cpu' });
  });
  const p = sys64 & ~(PAGE - 1n);
  items.push({ what: 'do_syscall_64', start: p, end: p + PAGE, from: 'kernel', clone: 'page', source: 'RFC 2/7 sci_pagetable_init(): "plus do_syscall_64", sci_clone_page(k_pgd, syscall_entry_addr)' });
  return items;
}

/** The item of one granted fault: sci_verify_and_map() → sci_clone_page(mm->pgd, address). */
export function faultItem(va: bigint, what: string): SciRuleItem {
  const p = BigInt.asUintN(64, va) & ~(PAGE - 1n);
  return { what: `fault: ${what}`, start: p, end: p + PAGE, from: 'kernel', clone: 'page', source: 'RFC 2/7 sci_verify_and_map(): sci_clone_page(mm->pgd, address), one PTE per granted fault' };
}

/** Every leaf the items put in the SCI tables, sorted by address. */
export function expectedLeaves(sys: System, task: SciTaskView, items: readonly SciRuleItem[]): ExpectedLeaf[] {
  const out: ExpectedLeaf[] = [];
  for (const item of items) {
    const root = item.from === 'user-root' ? task.userPgd : task.pgd;
    if (item.clone === 'page') {
      if (leafAt(sys, root, item.start) !== null) out.push({ start: item.start, end: item.end, shift: 12, item, root });
      continue;
    }
    leavesIn(sys, root, item.start, item.end, (start, shift) => out.push({ start, end: start + (1n << BigInt(shift)), shift, item, root }));
  }
  return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/** The first expected leaf holding `va` (binary search over the sorted list), or null. */
export function findExpected(list: readonly ExpectedLeaf[], va: bigint): ExpectedLeaf | null {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (list[m].end <= va) lo = m + 1; else hi = m; }
  for (let i = lo; i < list.length && list[i].start <= va; i++) if (va < list[i].end) return list[i];
  return null;
}

/** The leaf of `root` that maps `va`: its start and size, or null. */
export function leafAt(sys: System, root: number, va: bigint): { start: bigint; shift: number; entry: bigint } | null {
  let table = root;
  for (let level: number = sys.levels; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const e = sys.mem.read64Big(table + Number((BigInt.asUintN(64, va) >> BigInt(shift)) & 511n) * 8);
    if ((e & 1n) === 0n) return null;
    if (level === 1 || (level <= 3 && (e & PS) !== 0n)) return { start: va & ~((1n << BigInt(shift)) - 1n), shift, entry: e };
    table = Number(e & PFN_MASK);
  }
  return null;
}

/** The present leaves of `root` that intersect [start, end), as (canonical start, shift). */
function leavesIn(sys: System, root: number, start: bigint, end: bigint, f: (start: bigint, shift: number) => void): void {
  const canon = (v: bigint) => BigInt.asUintN(64, BigInt.asIntN(sys.levels === 5 ? 57 : 48, v));
  const span = (level: number) => 1n << BigInt(12 + 9 * (level - 1));
  const s = BigInt.asUintN(sys.levels === 5 ? 57 : 48, start);
  const e = s + (end - start);
  const walk = (table: number, level: number, base: bigint) => {
    const size = span(level);
    for (let i = 0; i < 512; i++) {
      const a = base + BigInt(i) * size;
      if (a + size <= s || a >= e) continue;
      const v = sys.mem.read64Big(table + i * 8);
      if ((v & 1n) === 0n) continue;
      if (level === 1 || (level <= 3 && (v & PS) !== 0n)) f(canon(a), 12 + 9 * (level - 1));
      else walk(Number(v & PFN_MASK), level - 1, a);
    }
  };
  walk(root, sys.levels, 0n);
}
