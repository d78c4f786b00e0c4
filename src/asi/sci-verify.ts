/**
 * Checking a task's System Call Isolation tables (asi/sci.ts) as verify.ts checks the other
 * designs' spaces, with SCI's own construction rule (sci-rule.ts, RFC 2/7 arch/x86/mm/sci.c,
 * lore 1556228754-12996-1-git-send-email-rppt@linux.ibm.com) in place of a RestrictedSpec.
 *
 * Model errors (`ok` false; `kasi asi --verify` exits 1):
 *  - mismatches: a leaf of the SCI tables mapped differently from the tables its rule item
 *    clones (frame, rights more permissive — SDM Vol. 3A 4.6.1 folding — or size: sci_clone_range()
 *    copies a source leaf as it is, sci_clone_page() writes a 4 KiB PTE) or from the full space
 *    (mm->pgd); a user-half PGD entry that is not the user root's (sci_sync_user_pagetable() is a
 *    memcpy); a leaf the rule puts there that is absent;
 *  - forbidden: a kernel-half page no rule item puts there (not cloned by sci_pagetable_init(),
 *    and no fault of the system call in flight asked for it: sci_verify_and_map()), or an
 *    allocation on a rule page the item is not for, with nothing it is for on that page.
 * Design exposures (each with an exposure.ts cause): neighbours on the pages SCI maps — a fault
 * maps the whole 4 KiB page of the object it touched ("sci_clone_page()"), so other objects of
 * that slab page come with it — and another tenant's data a fault asked for ('fault-mapped').
 */
import type { Allocation, System } from '../linux/system.ts';
import { sci2019 } from './designs/sci-2019.ts';
import { Probe, viaOf } from './restricted.ts';
import { expectedLeaves, faultItem, findExpected, leafAt, sciRule, type ExpectedLeaf, type SciRuleItem, type SciTaskView } from './sci-rule.ts';
import type { SciSpace } from './sci-space.ts';
import { ReachCheck, collectLeaves, compare, emptyResult, type Finding, type Leaf, type VerifyResult } from './verify.ts';

const TWO32 = 4294967296;
const PFN_MASK = 0x000ffffffffff000n;

/** One fault of the system call in flight, as sci_verify_and_map() decided it. */
export interface SciFault {
  readonly va: bigint;
  readonly access: 'fetch' | 'read' | 'write';
  /** What was touched: "getppid+0x0", "task_struct of proc0". */
  readonly what: string;
  /** Granted (a PTE was mapped) or refused (the task is killed). */
  readonly granted: boolean;
  /** Allocation ids the access was for (data); a fetch is for the kernel image. */
  readonly allocations: readonly number[];
  readonly refusal?: string;
}

export interface SciVerifyResult extends VerifyResult {
  /** The rule items checked (the construction rule plus one per granted fault). */
  readonly rule: readonly SciRuleItem[];
  /** Leaves the rule puts in the tables. */
  readonly expectedLeaves: number;
}

const size = (shift: number) => (shift === 12 ? '4 KiB' : shift === 21 ? '2 MiB' : '1 GiB');

/** Verify the SCI tables of `sci` (with the faults of a system call in flight, if any). */
export function verifySci(sys: System, sci: Pick<SciSpace, 'ctx' | 'stack' | 'kallsyms' | 'space'>, faults: readonly SciFault[] = [], cpuSciOffset = 0n): SciVerifyResult {
  const ctx = sci.ctx;
  const p = ctx.process!;
  const task: SciTaskView = { pgd: p.pgd, userPgd: p.userPgd, stack: sci.stack.va };
  const root = sci.space.root;
  const granted = faults.filter((f) => f.granted);
  const rule = [...sciRule(sys, sci.kallsyms, task, cpuSciOffset), ...granted.map((f) => faultItem(f.va, f.what))];
  const expected = expectedLeaves(sys, task, rule);
  const faultOf = new Map<SciRuleItem, SciFault>();
  granted.forEach((f, i) => faultOf.set(rule[rule.length - granted.length + i], f));
  const res = emptyResult(sci2019.name, ctx.label);
  const check = new ReachCheck(sys, sci2019, ctx, res);
  checkUserPgd(sys, root, task.userPgd, res.mismatches);
  const leaves = collectLeaves(sys, root);
  res.leaves = leaves.length;
  const pr = new Probe();
  // Pages no item explains, one finding per layout region (ESPFIX alone has 65536 leaves).
  const outsideBy = new Map<string, { first: Finding; leaves: number; pages: number; whole: boolean; shift: number }>();
  for (const leaf of leaves) {
    const va0 = BigInt(leaf.hi >>> 0) * 4294967296n + BigInt(leaf.lo >>> 0);
    const via = viaOf(sys, va0, sys.levels);
    const userHalf = (leaf.hi >>> 31) === 0;
    const pages = 2 ** (leaf.shift - 12);
    let outside = 0;
    let firstOutside: Finding | null = null;
    let differs = 0;
    let firstDiff: Finding | null = null;
    const sized = new Set<ExpectedLeaf>();
    for (let i = 0; i < pages; i++) {
      const sum = (leaf.lo >>> 0) + i * 4096;
      const lo = sum % TWO32;
      const hi = (leaf.hi + Math.floor(sum / TWO32)) >>> 0;
      const pa = leaf.pa + i * 4096;
      const va = va0 + BigInt(i * 4096);
      res.mappedPages++;
      const allocs = sys.allocationsIn(pa, 4096);
      if (userHalf) { // the user root's own tables (checked entry by entry above): its pages must be this process's
        if (allocs.length) check.page(va, pa, via, allocs, allocs.filter((a) => sci2019.permits(sys, ctx, a, via, pa)));
        continue;
      }
      const e = findExpected(expected, va);
      if (e === null) {
        if (outside++ === 0) firstOutside = { va, pa, alloc: allocs[0], why: '' };
        continue;
      }
      if (!sized.has(e)) {
        sized.add(e);
        if (leaf.shift !== e.shift) res.mismatches.push({ va, pa, why: `${e.item.what}: a ${size(leaf.shift)} leaf where ${e.item.clone === 'page' ? 'sci_clone_page() writes a 4 KiB PTE' : `sci_clone_range() copies the source's ${size(e.shift)} leaf as it is`}` });
      }
      const why = differ(sys, e, task.pgd, lo, hi, pa, leaf, pr);
      if (why && differs++ === 0) firstDiff = { va, pa, why: `${e.item.what}: ${why}` };
      const f = faultOf.get(e.item);
      if (allocs.length === 0) continue;
      const intended = f ? allocs.filter((a) => f.allocations.includes(a.id) || (f.access === 'fetch' && a.boot)) : allocs.filter((a) => forItem(sys, ctx, e.item, a, via, pa));
      check.page(va, pa, via, allocs, intended, f ? 'fault-mapped' : undefined);
    }
    if (firstOutside) {
      const region = sys.layout.regionOf(firstOutside.va).id;
      const r = outsideBy.get(region);
      if (r) { r.leaves++; r.pages += outside; } else outsideBy.set(region, { first: firstOutside, leaves: 1, pages: outside, whole: outside === pages, shift: leaf.shift });
    }
    if (firstDiff) res.mismatches.push({ ...firstDiff, why: differs > 1 ? `${firstDiff.why} (and ${differs - 1} more pages of this leaf)` : firstDiff.why });
  }
  for (const [region, r] of outsideBy) {
    const n = r.leaves === 1 ? (r.whole ? `this ${size(r.shift)} leaf` : `${r.pages} pages of this ${size(r.shift)} leaf`) : `${r.leaves} leaves (${r.pages} pages) from here`;
    res.forbidden.push({ ...r.first, why: `${region}: ${n}: not put there by sci_pagetable_init() (cpu_entry_area, entry text, task stack, per-CPU page, do_syscall_64) nor by a granted fault of the system call in flight (sci_verify_and_map())` });
  }
  for (const e of expected) {
    if (leafAt(sys, root, e.start) !== null) continue;
    const src = leafAt(sys, e.root, e.start);
    res.mismatches.push({ va: e.start, pa: src ? Number(src.entry & PFN_MASK) : 0, why: `absent: the rule maps ${e.item.what} here (${e.item.source})` });
  }
  return { ...check.finish(), rule, expectedLeaves: expected.length };
}

/** Is the page mapped as the rule item's source maps it, and no more permissively than the full space? */
function differ(sys: System, e: ExpectedLeaf, fullRoot: number, lo: number, hi: number, pa: number, leaf: Leaf, pr: Probe): string | null {
  const why = compare(sys, e.root, lo, hi, pa, leaf, pr);
  if (why) return e.root === fullRoot ? why : why.replace('the full space', 'the KPTI user root it is cloned from');
  return e.root === fullRoot ? null : compare(sys, fullRoot, lo, hi, pa, leaf, pr);
}

/** The allocations a rule item of sci_pagetable_init() is for: the task stack's area, else kernel boot memory. */
function forItem(sys: System, ctx: SciSpace['ctx'], item: SciRuleItem, a: Allocation, via: ReturnType<typeof viaOf>, pa: number): boolean {
  if (item.what === 'task stack') return via === 'vmalloc' && sci2019.permits(sys, ctx, a, via, pa);
  return a.boot;
}

/** sci_sync_user_pagetable(): memcpy(sci_pgd, u_pgd, PGD_KERNEL_START * sizeof(pgd_t)). */
function checkUserPgd(sys: System, root: number, userPgd: number, out: Finding[]): void {
  const top = BigInt(12 + 9 * (sys.levels - 1));
  for (let i = 0; i < 256; i++) {
    const a = sys.mem.read64Big(root + i * 8);
    const b = sys.mem.read64Big(userPgd + i * 8);
    if (a === b) continue;
    out.push({ va: BigInt(i) << top, pa: Number(a & PFN_MASK), why: `user PGD entry ${i} is 0x${a.toString(16)}, the user root's 0x${b.toString(16)} (sci_sync_user_pagetable() copies it)` });
  }
}
