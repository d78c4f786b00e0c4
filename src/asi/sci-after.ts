/**
 * What System Call Isolation has mapped in the middle of one system call, and whether that is
 * exactly what the call's faults asked for (`kasi asi --design sci-2019 --after SYSCALL`).
 *
 * One isolated system call of the task (SciTaskTables.syscall(): sci_init() +
 * sci_syscall_enter(), RFC 2/7 and 4/7, lore 1556228754-12996-1-git-send-email-rppt@linux.ibm.com)
 * replays, in enforce mode (a refusal kills the task, RFC 5/7 sci_fault()):
 *  - the code: the measured text pages of the syscall's part in footprints.json (first-touch
 *    order), each fetched where the footprint replay fetches it (sci-report.ts pageEntry(): a
 *    listed function's start in the page, else the page's first byte);
 *  - the data: the touches the caller gives (kasi's footprint table, sim/footprints.ts) that
 *    name an object this task has in the System: its task_struct, mm_struct and first VMA (slab
 *    objects), its kernel stack (from the top), CPU 0's per-CPU page (from its start), `lines`
 *    64-byte lines each. The others are listed as not replayed, with why.
 * The fixture gives no interleaving of code and data, so data follows code; the set of PTEs
 * does not depend on the order unless a cap or a refusal stops the call (then less runs).
 * Then, before sci_syscall_exit(), the tables are verified with the granted faults as rule
 * items (sci-verify.ts); sci->ptes must be exactly those faults' PTEs; and after the exit
 * (sci_clear_data()) the tables must be the construction rule's again.
 */
import type { Footprints } from '../formats/footprints.ts';
import type { Allocation, System } from '../linux/system.ts';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE } from '../x86/bits.ts';
import { SCI } from './sci.ts';
import { checkSameKernel, pageEntry, textSymbols } from './sci-report.ts';
import type { SciSpace } from './sci-space.ts';
import { verifySci, type SciFault, type SciVerifyResult } from './sci-verify.ts';

const PFN_MASK = 0x000ffffffffff000n;
const LINE = 64n;

/** A data touch as the footprint table states it (sim/footprints.ts DataTouch). */
export interface SciDataTouch {
  readonly kind: string;
  readonly access: 'read' | 'write' | 'rw';
  readonly lines: number;
  readonly scope: string;
  readonly source?: string;
}

export interface SciStep {
  readonly kind: 'code' | 'data';
  readonly va: bigint;
  readonly access: 'fetch' | 'read' | 'write';
  readonly what: string;
  /** hit: mapped already; mapped: a granted fault; killed: refused (or after the kill: not run). */
  readonly outcome: 'hit' | 'mapped' | 'killed' | 'not-run' | 'other-fault';
  readonly reason?: string;
}

export interface SciAfter {
  readonly syscall: string;
  readonly test: string;
  readonly part: number;
  readonly handler: string;
  readonly steps: readonly SciStep[];
  readonly faults: readonly SciFault[];
  readonly killed: string | null;
  readonly ptes: number;
  readonly backtrace: number;
  readonly notReplayed: ReadonlyArray<{ kind: string; scope: string; why: string; touches: number }>;
  /** sci->ptes holds exactly the PTEs of the granted faults. */
  readonly ptesMatch: boolean;
  /** The tables in the middle of the call, and after sci_syscall_exit(). */
  readonly verify: SciVerifyResult;
  readonly afterExit: SciVerifyResult;
}

interface Target { va: bigint; bytes: number; what: string; allocations: number[] }

/** The object a touch lands on for this task, or why none. */
function target(sys: System, sci: SciSpace, t: SciDataTouch): Target | string {
  const p = sci.process;
  const slab = (i: number, name: string): Target | string => {
    const id = p.slabObjects[i];
    const o = id === undefined ? null : sys.slab.objectInfo(id);
    if (o === null) return `${p.comm} has no ${name}`;
    return { va: o.va, bytes: o.size, what: `${o.cache} of ${p.comm}`, allocations: allocs(sys, (a) => a.slabId === id) };
  };
  if (t.scope === 'current') {
    switch (t.kind) {
      case 'task_struct': return slab(0, 'task_struct');
      case 'mm_struct': return slab(1, 'mm_struct');
      case 'vma': return slab(2, 'vm_area_struct');
      case 'kernel-stack': { // from the top: the stack grows down
        const top = sci.stack.va + BigInt(sci.stack.size);
        const bytes = t.lines * 64;
        return { va: top - BigInt(bytes), bytes, what: `kernel stack of ${p.comm}`, allocations: allocs(sys, (a) => a.areaId === sci.stack.id) };
      }
      case 'user-pages': return 'a user address: mapped by sci_sync_user_pagetable(); its faults are do_user_addr_fault()\'s, not SCI\'s';
    }
  }
  if (t.scope === 'cpu' && t.kind === 'percpu') {
    const unit = sys.bootAllocations().find((a) => a.kind === 'percpu');
    if (unit) return { va: sys.directMapVa(unit.ranges[0].pa), bytes: unit.ranges[0].bytes, what: 'per-CPU page of CPU 0', allocations: [unit.id] };
  }
  return `no ${t.scope} object of kind ${t.kind} for this task in the populated system`;
}

function allocs(sys: System, f: (a: Allocation) => boolean): number[] {
  return sys.allocations().filter(f).map((a) => a.id);
}

/** The footprint part whose handler is __x64_sys_<syscall>. */
export function findPart(fp: Footprints, syscall: string): { test: string; part: number; handler: string; textPages: bigint[]; functions: { name: string }[] } {
  const handler = `__x64_sys_${syscall}`;
  for (const t of fp.tests) {
    const i = t.parts.findIndex((p) => p.kind === 'syscall' && p.handler === handler);
    if (i >= 0) return { test: t.name, part: i, handler, textPages: t.parts[i].textPages, functions: t.parts[i].functions };
  }
  const known = [...new Set(fp.tests.flatMap((t) => t.parts.map((p) => p.handler?.replace(/^__x64_sys_/, '')).filter((h): h is string => !!h)))];
  throw new RangeError(`--after ${syscall}: no measured part runs ${handler} in ${fp.file} (measured: ${known.join(', ')})`);
}

/** Run one isolated `syscall` on the task's SCI tables and verify them mid-call and after the exit. */
export function sciAfterSyscall(sys: System, sci: SciSpace, fp: Footprints, syscall: string, data: readonly SciDataTouch[], textSlide: bigint, midCall?: () => void): SciAfter {
  checkSameKernel(fp, sci.kallsyms); // footprint link addresses are the nokaslr image's: rebased by textSlide
  const part = findPart(fp, syscall);
  const ks = sci.kallsyms;
  const syms = textSymbols(ks);
  const tables = sci.tables;
  const s = tables.syscall();
  const steps: SciStep[] = [];
  const faults: SciFault[] = [];
  const one = (kind: SciStep['kind'], va: bigint, access: SciStep['access'], what: string, allocations: readonly number[]) => {
    if (s.killed) { steps.push({ kind, va, access, what, outcome: 'not-run' }); return; }
    const n = s.refusals.length;
    const r = s.access(va, access === 'fetch' ? ACCESS_FETCH : access === 'write' ? ACCESS_WRITE : ACCESS_READ);
    const refusal = s.refusals[n];
    const outcome = r === SCI.HIT ? 'hit' : r === SCI.MAPPED ? 'mapped' : r === SCI.KILLED ? 'killed' : 'other-fault';
    steps.push({ kind, va, access, what, outcome, ...(refusal ? { reason: refusal.reason } : {}) });
    if (outcome === 'mapped' || outcome === 'killed') faults.push({ va, access, what, granted: outcome === 'mapped', allocations, ...(refusal ? { refusal: refusal.reason } : {}) });
  };
  for (const page0 of part.textPages) {
    const page = page0 + textSlide;
    const e = pageEntry(ks, syms, part.functions, page);
    const h = ks.symbolAt(e.fetch);
    one('code', e.fetch, 'fetch', h ? `${h.name}+0x${h.offset.toString(16)}` : e.symbol, []);
  }
  const notReplayed: Array<{ kind: string; scope: string; why: string; touches: number }> = [];
  for (const t of data) {
    const o = target(sys, sci, t);
    if (typeof o === 'string') {
      const same = notReplayed.find((x) => x.kind === t.kind && x.scope === t.scope);
      if (same) same.touches++; else notReplayed.push({ kind: t.kind, scope: t.scope, why: o, touches: 1 });
      continue;
    }
    const access = t.access === 'read' ? 'read' : 'write';
    const lines = Math.max(1, Math.min(t.lines, Math.ceil(o.bytes / 64)));
    for (let i = 0; i < lines; i++) one('data', o.va + BigInt(i) * LINE, access, o.what, o.allocations);
  }
  const granted = faults.filter((f) => f.granted);
  const want = new Set(granted.map((f) => pteAddr(sys, tables.root, f.va)));
  const ptesMatch = want.size === tables.ptes.length && tables.ptes.every((x) => want.has(x));
  const verify = verifySci(sys, sci, faults);
  midCall?.(); // the caller's look at the tables before sci_syscall_exit()
  const { ptes, backtrace } = s.end();
  const afterExit = verifySci(sys, sci);
  return {
    syscall, test: part.test, part: part.part, handler: part.handler, steps, faults, killed: s.killed ? s.killReason : null,
    ptes, backtrace, notReplayed, ptesMatch, verify, afterExit,
  };
}

/** Physical address of the PTE mapping `va` in `root`, or -1. */
function pteAddr(sys: System, root: number, va: bigint): number {
  let table = root;
  for (let level: number = sys.levels; level >= 1; level--) {
    const at = table + Number((BigInt.asUintN(64, va) >> BigInt(12 + 9 * (level - 1))) & 511n) * 8;
    if (level === 1) return at;
    const e = sys.mem.read64Big(at);
    if ((e & 1n) === 0n || (level <= 3 && (e & 0x80n) !== 0n)) return -1;
    table = Number(e & PFN_MASK);
  }
  return -1;
}
