/**
 * System Call Isolation driven by `kasi run` (asi=sci-2019; the RFC and its rules: asi/sci.ts).
 *
 * Every process task gets its own SCI tables (sci_pagetable_init() at fork: the PTI user
 * tables' cpu_entry_area and entry text, its stack, the per-CPU page, do_syscall_64). A system
 * call of that task, after the PTI entry switched to the kernel CR3, runs on them
 * (sci_syscall_enter(): one CR3 write with the SCI PCID bit); every kernel touch that faults
 * goes to sci_verify_and_map() — data is mapped in, code only at a symbol start or in the page
 * after an entered one, within the 256-PTE and 64-entry caps — and a refusal kills the task
 * (SIGKILL, 5/7 fault.c). At the end, sci_syscall_exit() writes the kernel CR3 back and clears
 * the PTEs the faults added. Interrupts and page faults are not system calls: they run on the
 * kernel tables as under PTI (the RFC hooks do_syscall_64 only).
 *
 * The verifier needs the kernel's symbols: the Debian 6.1 kallsyms of the shipped capture
 * (the image the built-in kernel model and the footprints come from), moved by the image's KASLR
 * slide. Module symbols are not moved (module text is not translated, sim/touch.ts).
 *
 * Which address of a text page the first fetch is at decides the symbol rule, and the engine's
 * footprints are pages: as the footprint replay does (asi/sci-report.ts replayPart()), the fetch
 * is at the first start, in that page, of a function the measured part of the event executed
 * (footprints.json `functions`), else at the page itself (a continuation, allowed only after
 * the previous page's function was entered); for modelled text (no measured part) at the page's
 * first start of any function the measured footprints execute, else its first symbol start
 * (assumption: the code entered there is its first function). As in the replay, the whole
 * kernel entry runs isolated (the RFC switches CR3 around sys_call_table[nr]() only), so the
 * faults are an upper bound for the RFC's placement.
 */
import { fileURLToPath } from 'node:url';
import { Kallsyms, loadKallsyms } from '../formats/kallsyms.ts';
import { SCI, SciSession, SciTaskTables } from '../asi/sci.ts';
import { sciTableAllocator } from '../asi/sci-space.ts';
import { FAULT_KILL, FAULT_MAPPED } from '../asi/types.ts';
import type { System } from '../linux/system.ts';
import type { Mmu } from '../x86/mmu.ts';
import { Counts } from './thread.ts';
import { loadFootprints } from '../formats/footprints.ts';
import { DEFAULT_FOOTPRINTS_FILE, measuredRefs } from './footprints.ts';
import { ACCESS_FETCH } from '../x86/bits.ts';
import type { Task } from './world.ts';

export const SCI_KALLSYMS_FILE = fileURLToPath(new URL('../../test/fixtures/captures/la48-pti-nokaslr/kallsyms.txt.gz', import.meta.url));

let cached: Kallsyms | null = null;

/** The kallsyms of the built-in kernel, with kernel-half symbols moved by `slide` (the image's KASLR). */
export function slidKallsyms(slide: bigint, file = SCI_KALLSYMS_FILE): Kallsyms {
  if (cached === null || cached.file !== file) cached = loadKallsyms(file);
  const ks = cached;
  if (slide === 0n) return ks;
  const raws = Array.from({ length: ks.count }, (_, i) => {
    const a = BigInt.asUintN(64, ((BigInt(ks.addrHi[i]) << 32n) | BigInt(ks.addrLo[i])) + (ks.modules[i] === undefined ? slide : 0n));
    return { hi: Number(a >> 32n), lo: Number(a & 0xffffffffn), type: ks.types[i], name: ks.names[i], module: ks.modules[i], line: i + 1 };
  });
  return new Kallsyms(`${file} (slid by 0x${slide.toString(16)})`, raws, ks.perCpu, ks.absolute);
}

export class SciRun {
  /** Per task: its SCI tables (null: not a process task). */
  readonly tables: (SciTaskTables | null)[];
  /** Per hardware thread: the isolated system call in flight, or null. */
  readonly session: (SciSession | null)[];
  /** Per task: killed by a refusal (the reason), or ''. */
  readonly killed: string[];
  readonly kallsyms: Kallsyms;
  /** Refusals by code (mid-symbol, no-room-ptes, …), for the report. */
  readonly refusals = new Map<string, number>();
  /** Sorted starts (slid) of the functions the measured footprints execute, and of every symbol. */
  private readonly entered: bigint[];
  private readonly starts: bigint[];
  private readonly fetchOf = new Map<string, bigint>();
  /** Per footprint key with measured text: the sorted starts of the functions its parts executed. */
  private readonly partStarts = new Map<string, bigint[]>();
  private readonly fp = loadFootprints(DEFAULT_FOOTPRINTS_FILE);
  /** The footprint whose touches run now (Toucher sets it). */
  key = '';

  /** The run's counters (Engine binds them). */
  counts: Counts = new Counts();

  constructor(sys: System, tasks: readonly Task[], private readonly mmus: readonly Mmu[], textSlide: bigint, caps = true) {
    if (sys.kernel.userRoot === null) throw new RangeError('asi=sci-2019 needs PTI on (its tables clone the KPTI user tables)');
    this.kallsyms = slidKallsyms(textSlide);
    const { alloc } = sciTableAllocator(sys);
    this.tables = tasks.map((task) => {
      if (task.tenant.vm !== null) return null;
      const p = task.tenant.process;
      const stack = sys.stacks.get(p.pid);
      if (stack === undefined) throw new Error(`sci: process ${p.comm} has no kernel stack`);
      // The mm's first dynamic ASID on its CPU (asid.ts): kernel PCID asid + 1, as the PTI session writes it.
      return new SciTaskTables({ kernel: sys.kernel, kallsyms: this.kallsyms, task: { pgd: p.pgd, userPgd: p.userPgd, stack: stack.va }, alloc, mmu: mmus[task.thread], asid: 0, caps });
    });
    this.session = mmus.map(() => null);
    this.killed = tasks.map(() => '');
    const ks = this.kallsyms;
    const names = new Set<string>();
    for (const test of this.fp.tests) for (const part of test.parts) for (const f of part.functions) names.add(f.name);
    this.entered = [];
    this.starts = [];
    for (let i = 0; i < ks.count; i++) {
      if (ks.modules[i] !== undefined) continue;
      const a = ks.addressAt(i);
      this.starts.push(a);
      if (names.has(ks.names[i])) this.entered.push(a);
    }
  }

  /** The address the first fetch of text page `page` is at, for the footprint `key` (see the header). */
  fetchVa(page: bigint, key = this.key): bigint {
    const k = `${key}:${page}`;
    let v = this.fetchOf.get(k);
    if (v === undefined) {
      const part = this.startsOf(key);
      v = part !== null ? firstIn(part, page) ?? page : firstIn(this.entered, page) ?? firstIn(this.starts, page) ?? page;
      this.fetchOf.set(k, v);
    }
    return v;
  }

  private startsOf(key: string): bigint[] | null {
    let s = this.partStarts.get(key);
    if (s !== undefined) return s;
    const refs = measuredRefs(key);
    if (refs.length === 0) return null;
    const names = new Set<string>();
    for (const r of refs) for (const f of this.fp.tests.find((t) => t.name === r.test)?.parts[r.part]?.functions ?? []) names.add(f.name);
    const ks = this.kallsyms;
    s = [];
    for (let i = 0; i < ks.count; i++) if (ks.modules[i] === undefined && names.has(ks.names[i])) s.push(ks.addressAt(i));
    this.partStarts.set(key, s);
    return s;
  }

  /** do_syscall_64 → sci_syscall_enter() for `task` on thread t (a no-op for tasks without tables). */
  begin(t: number, task: Task): void {
    const tb = this.tables[task.id];
    if (tb === null || this.killed[task.id] !== '') return;
    tb.mmu = this.mmus[t]; // the CPU it runs on now
    this.session[t] = tb.syscall();
  }

  /** sci_syscall_exit(); returns the PTEs the call mapped. */
  end(t: number): number {
    const s = this.session[t];
    if (s === null) return 0;
    this.session[t] = null;
    return s.end().ptes;
  }

  inSyscall(t: number): boolean {
    return this.session[t] !== null;
  }

  /** A touch faulted on the SCI tables: verify and map (FAULT_MAPPED) or kill (FAULT_KILL). */
  fault(t: number, task: number, lo: number, hi: number, access: number): number {
    const s = this.session[t]!;
    const c = this.counts;
    if (this.killed[task] !== '') return FAULT_KILL; // the rest of a killed call does not run
    c.sciFaults++;
    let va = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    if ((access & ACCESS_FETCH) !== 0) va = this.fetchVa(va - (va & 4095n));
    const n = s.refusals.length;
    const r = s.access(va, access);
    if (r === SCI.MAPPED) { c.sciMapped++; return FAULT_MAPPED; }
    if (r === SCI.KILLED) {
      c.kills++;
      for (let i = n; i < s.refusals.length; i++) this.refusals.set(s.refusals[i].code, (this.refusals.get(s.refusals[i].code) ?? 0) + 1);
      this.killed[task] = s.killReason;
      return FAULT_KILL;
    }
    return r === SCI.HIT ? FAULT_MAPPED : FAULT_KILL;
  }
}

/** The first of sorted `a` inside the 4 KiB page at `page`, or undefined. */
function firstIn(a: readonly bigint[], page: bigint): bigint | undefined {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] < page) lo = m + 1; else hi = m; }
  return lo < a.length && a[lo] < page + 4096n ? a[lo] : undefined;
}
