/**
 * What kernel instructions cost, given what ran before them on the core (uarch/code-cache.ts):
 * a path whose code is still in the L1I with trained predictors runs at kernelCyclesPerInsnWarm,
 * one still in the L1I after an IBPB at kernelCyclesPerInsnUntrained, a cold one (its lines
 * evicted) at kernelCyclesPerInsn, a partly warm one in proportion.
 *
 * Regions: each kernel footprint is one (its lines: instructions × BYTES_PER_INSN, a straight
 * path), each tenant's own code another (guest-run, user-compute: `code_bytes` of the mix item,
 * DEFAULT_TENANT_CODE_BYTES when absent). A tenant's code costs its given `cycles` whatever the
 * L1I holds; what it does here is evict the kernel's. An IBPB (mitigate.ts) untrains every region
 * of the core and evicts none. An event's path is priced after its entry's actions (an IBPB on entry runs before
 * the handler) and before its touches (an ASI exit they fault into untrains what follows, not the
 * path already charged); a context switch's before its mm switch (the scheduler's code runs first).
 */
import { CODE_LINE_BYTES, CodeCache } from '../uarch/code-cache.ts';
import type { CostModel } from './costs.ts';
import type { Counts } from './thread.ts';

/** assumption: x86-64 kernel code averages ~4 bytes an instruction (prefixes, ModRM, displacements; no published figure for Linux's text). */
export const BYTES_PER_INSN = 4;
/**
 * assumption: an application's or a guest's hot code between two kernel entries is larger than any
 * L1I (Kanev et al., "Profiling a warehouse-scale computer", ISCA 2015: instruction footprints of
 * production binaries are far beyond the 32 KiB L1I, front-end stalls 15-30% of cycles), so it
 * leaves the kernel's paths cold; a scenario gives `code_bytes` for a small loop (dd, fio).
 */
export const DEFAULT_TENANT_CODE_BYTES = 64 * 1024;

export class CodeWarmth {
  readonly cache: CodeCache;
  private readonly coreOf: Int32Array;
  private readonly regions = new Map<string, number>();
  private readonly cold: number;
  private readonly warm: number;
  private readonly untrained: number;

  constructor(threads: number, threadsPerCore: number, l1iBytes: number, costs: CostModel, private readonly counts: Counts | null = null) {
    this.cache = new CodeCache(Math.ceil(threads / threadsPerCore), l1iBytes);
    this.coreOf = Int32Array.from({ length: threads }, (_, t) => Math.floor(t / threadsPerCore));
    this.cold = costs.params.kernelCyclesPerInsn.cycles;
    this.warm = costs.params.kernelCyclesPerInsnWarm.cycles;
    this.untrained = costs.params.kernelCyclesPerInsnUntrained.cycles;
  }

  /** The region id of `name` (a footprint key, or "tenant:<index>"). */
  region(name: string): number {
    let r = this.regions.get(name);
    if (r === undefined) this.regions.set(name, (r = this.regions.size));
    return r;
  }

  /** The L1I lines a kernel path of `insns` instructions takes. */
  static kernelLines(insns: number): number {
    return Math.ceil((insns * BYTES_PER_INSN) / CODE_LINE_BYTES);
  }

  static tenantLines(codeBytes: number | undefined): number {
    return Math.ceil((codeBytes ?? DEFAULT_TENANT_CODE_BYTES) / CODE_LINE_BYTES);
  }

  /** Run region `region` of `lines` lines on thread t: the cycles of its `insns` kernel instructions. */
  run(t: number, region: number, lines: number, insns: number): number {
    const f = this.cache.run(this.coreOf[t], region, lines);
    const u = this.cache.untrained;
    if (this.counts !== null) { this.counts.kernelInsns += insns; this.counts.kernelInsnsWarm += insns * f; this.counts.kernelInsnsUntrained += insns * u; }
    return insns * (this.cold + (this.warm - this.cold) * f + (this.untrained - this.cold) * u);
  }

  /** An IBPB on thread t. */
  ibpb(t: number): void {
    this.cache.flushPredictors(this.coreOf[t]);
  }
}
