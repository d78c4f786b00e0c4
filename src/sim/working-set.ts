/**
 * What a tenant's own code touches (docs/DESIGN.md "Tenants use their own memory"): a guest's code
 * (`guest-run`) and a process's user code (`user-compute`) load and store lines of their own
 * working set, so their data passes the core's L1D, fill buffers and store buffers exactly as
 * the kernel's does — the state l1tf.rst and mds.rst describe a sibling reading ("This context
 * can be host OS, host user space or a different guest").
 *
 * A working set is pages: `bytes` of the tenant's memory (guest RAM from GPA 2 MiB for a VM,
 * the start of its anonymous mapping for a process) plus its declared objects that are not
 * `cold` (a guest page, an anonymous page, a mapped page-cache page). Each event of `cycles`
 * cycles touches round(cycles × linesPerKcycle / 1000) lines, each drawn uniformly from all the
 * working set's lines with the task's PRNG; a touch is a store with probability `writes` where
 * the page is writable.
 *
 * How a touch reaches memory:
 *  - guest code: guest-physical → host-physical through the VM's EPT (Vm.gpaToHpa, resolved
 *    once per page when the set is built: the model's EPT of guest RAM does not change during a
 *    run). The guest's own paging is not walked (assumption: the guest kernel maps its working
 *    set once; guest TLB misses are not priced), and host CR3 plays no part in guest mode;
 *  - user code: the user VA through the thread's Mmu at CPL 3 on whatever CR3 the thread has
 *    at that moment (the PTI user copy when PTI is on), so a mapping the mitigation removed
 *    would show up as an unmapped touch. Before its data, each event fetches its hot code
 *    (`code_bytes`, one fetch a page, at most the process's 'text' VMA) through the thread's
 *    instruction-side TLB (Mmu.fetchSide): a flush of the user PCID, or a CR3 write without
 *    NOFLUSH, costs the code's walks as well as the data's (SDM 4.10.2: instruction fetches are
 *    translated through the TLBs as data accesses are).
 * Each touch that misses the L1D costs an L2 hit (costs.l2Hit), and the user code's walks what
 * the kernel's touches pay (sim/walk-meter.ts): the cost of refilling
 * what a flush evicted (L1D lines, TLB entries after a CR3 write without NOFLUSH) lands on the
 * tenant's own time, where it is paid. Nothing here allocates per touch.
 */
import type { Xoshiro128 } from '../linux/kaslr.ts';
import type { System } from '../linux/system.ts';
import type { Machine } from '../uarch/machine.ts';
import type { Mmu } from '../x86/mmu.ts';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE } from '../x86/bits.ts';
import type { Counts } from './thread.ts';
import { WalkMeter, type WalkPrices } from './walk-meter.ts';
import type { ObjRef, TenantRt } from './world.ts';

const PAGE = 4096;
const LINES_PER_PAGE = 64;
const TWO32 = 4294967296;
/** Guest RAM below this GPA is the guest kernel's (assumption); the working set starts here. */
export const GUEST_WS_GPA = 2 * 1024 * 1024;

export class WorkingSet {
  /** Per page: host-physical address (guest) or user VA halves (process); writable. */
  readonly pageLo: Float64Array;
  readonly pageHi: Int32Array;
  readonly writable: Uint8Array;
  readonly lines: number;
  /** Line touches per cycle of the tenant's code. */
  readonly perCycle: number;
  /** Store threshold on a u32 draw. */
  readonly writeCut: number;
  /** A process's text VMA (user VA halves of its first page) and its pages; 0 pages for a guest. */
  codeLo = 0;
  codeHi = 0;
  codePages = 0;

  constructor(readonly guest: boolean, pages: { lo: number; hi: number; writable: boolean }[], linesPerKcycle: number, writes: number, readonly objects: readonly ObjRef[]) {
    this.pageLo = Float64Array.from(pages, (p) => p.lo);
    this.pageHi = Int32Array.from(pages, (p) => p.hi);
    this.writable = Uint8Array.from(pages, (p) => (p.writable ? 1 : 0));
    this.lines = pages.length * LINES_PER_PAGE;
    this.perCycle = linesPerKcycle / 1000;
    this.writeCut = Math.floor(writes * TWO32);
  }
}

/** A 64-bit address as u32 halves (the high one signed), as the Mmu takes them. */
export const halves = (v: bigint): { lo: number; hi: number } => {
  const u = BigInt.asUintN(64, v);
  return { lo: Number(u & 0xffffffffn), hi: Number(BigInt.asIntN(32, u >> 32n)) };
};

/** The working set of a vm or process tenant (null for netns tenants or an empty set). */
export function buildWorkingSet(sys: System, t: TenantRt): WorkingSet | null {
  const ws = t.spec.workingSet;
  const hot = t.own.filter((o) => !o.cold);
  const pages: { lo: number; hi: number; writable: boolean }[] = [];
  if (t.vm !== null) {
    const vm = t.vm;
    for (let gpa = GUEST_WS_GPA; gpa < GUEST_WS_GPA + ws.bytes; gpa += PAGE) pages.push({ lo: vm.gpaToHpa(gpa), hi: 0, writable: true });
    for (const o of hot) pages.push({ lo: o.hpa, hi: 0, writable: true });
  } else if (t.netns === null) {
    const p = t.process;
    const anon = p.vmas.find((v) => v.name === '[anon]');
    if (anon !== undefined) for (let off = 0; off < ws.bytes; off += PAGE) pages.push({ ...halves(anon.start + BigInt(off)), writable: true });
    for (const o of hot) pages.push({ ...halves(o.userVa), writable: o.kind === 'user-pages' });
  }
  // A process's code is fetched whether or not its data is modelled (no working set, or
  // lines_per_kcycle 0): a set with no data lines then carries only its text.
  const text = t.vm === null && t.netns === null ? t.process.vmas.find((v) => v.name === 'text') : undefined;
  const data = pages.length > 0 && ws.linesPerKcycle > 0;
  if (!data && text === undefined) return null;
  void sys;
  const set = new WorkingSet(t.vm !== null, data ? pages : [], data ? ws.linesPerKcycle : 0, ws.writes, data ? hot : []);
  if (text !== undefined) {
    const h = halves(text.start);
    set.codeLo = h.lo;
    set.codeHi = h.hi;
    set.codePages = Number((text.end - text.start) / BigInt(PAGE));
  }
  return set;
}

/** Runs working sets on hardware threads: the tenant-code hot path. */
export class WorkingSetRunner {
  constructor(
    private readonly machine: Machine,
    private readonly mmus: readonly Mmu[],
    private readonly counts: Counts,
    private readonly l1dMissCycles: number,
    walkPrices: WalkPrices,
  ) {
    this.walkMeter = new WalkMeter(walkPrices, counts);
  }

  private readonly walkMeter: WalkMeter;

  /**
   * `cycles` of the tenant's code, `codeLines` lines of it hot, on thread t: returns the cycles
   * its L1D misses and page walks add.
   */
  run(t: number, ws: WorkingSet, cycles: number, codeLines: number, rng: Xoshiro128): number {
    const n = Math.round(cycles * ws.perCycle);
    if (n <= 0 && ws.codePages === 0) return 0;
    const machine = this.machine;
    const mem = machine.memory;
    const c = this.counts;
    let misses = 0;
    let walkCycles = 0;
    if (ws.guest) {
      for (let i = 0; i < n; i++) {
        const line = rng.nextU32() % ws.lines;
        const page = line >>> 6;
        const pa = ws.pageLo[page] + (line & 63) * 64;
        if (rng.nextU32() < ws.writeCut) {
          // The value memory holds (planted bytes stay): nothing to write through (Machine.storeHeld).
          if (!machine.storeHeld(t, pa, mem.read32(pa), mem.read32(pa + 4))) misses++;
        } else if (!machine.load(t, pa)) misses++;
      }
    } else {
      const mmu = this.mmus[t];
      const cpu = mmu.cpu;
      const cpl = cpu.cpl;
      cpu.cpl = 3; // user code
      this.walkMeter.begin(mmu);
      const codePages = Math.min(Math.ceil(codeLines / LINES_PER_PAGE), ws.codePages);
      if (codePages > 0) {
        const fetch = mmu.fetchSide ?? mmu;
        for (let i = 0; i < codePages; i++) {
          let lo = ws.codeLo + i * PAGE;
          let hi = ws.codeHi;
          if (lo >= TWO32) { lo -= TWO32; hi = (hi + 1) | 0; }
          c.translations++;
          if (!fetch.translate(lo | 0, hi, ACCESS_FETCH)) c.unmapped++;
        }
        c.touches += codePages; // as the kernel's text pages count (sim/touch.ts)
      }
      for (let i = 0; i < n; i++) {
        const line = rng.nextU32() % ws.lines;
        const page = line >>> 6;
        const write = ws.writable[page] === 1 && rng.nextU32() < ws.writeCut;
        let lo = ws.pageLo[page] + (line & 63) * 64;
        let hi = ws.pageHi[page];
        if (lo >= TWO32) { lo -= TWO32; hi = (hi + 1) | 0; }
        c.translations++;
        if (!mmu.translate(lo | 0, hi, write ? ACCESS_WRITE : ACCESS_READ)) { c.unmapped++; continue; }
        const pa = mmu.out.pa;
        if (write) {
          if (!machine.storeHeld(t, pa, mem.read32(pa), mem.read32(pa + 4))) misses++;
        } else if (!machine.load(t, pa)) misses++;
      }
      cpu.cpl = cpl;
      walkCycles = this.walkMeter.end(mmu);
    }
    c.touches += n;
    c.l1dMisses += misses;
    return misses * this.l1dMissCycles + walkCycles;
  }
}
