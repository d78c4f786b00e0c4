/**
 * The instruction side of a core, as far as cost goes: which code paths are still in its L1I
 * with their branches trained, so that running one again is cheaper than running it cold.
 *
 * Why it exists: one cycle per instruction (Gregg's whole-workload IPC 1.04, costs.ts
 * kernelCyclesPerInsn) is right for kernel code entered from an application whose own code has
 * flushed the L1I and the branch predictors between two system calls, and ~3× too slow for a loop
 * of two system calls whose few KiB of code stay hot (the kpti-dd curve, examples/calibration).
 * Both happen on real machines; which one an event sees depends on what ran before it on the core.
 *
 * The model: a core's L1I (profile l1iSizeBytes, shared by its hardware threads: Intel
 * Optimization Reference Manual, "the L1 instruction cache is shared by both logical processors")
 * holds code *regions* — one per kernel path (a footprint), one per tenant's user or guest code —
 * each taking `lines` of it, replaced least recently used first (a region is evicted whole: the
 * next run of a path that lost part of its lines is taken as cold). A region bigger than the
 * cache keeps what fits: the share of its lines a random fetch finds. Running a region returns
 * the share of it that was warm — resident, and trained since the core's last IBPB (the barrier
 * discards the indirect branch predictions the code relied on: Intel "Speculative Execution Side
 * Channel Mitigations", IBPB) — and the share that was resident but untrained (an IBPB leaves
 * the L1I's lines where they are), and then makes it resident and trained. The cost of the warm,
 * the untrained and the cold share are the caller's (engine: kernelCyclesPerInsnWarm,
 * kernelCyclesPerInsnUntrained, kernelCyclesPerInsn).
 *
 * Limits: no sets or ways (full associativity), no sharing of lines between paths (the entry
 * code common to all syscalls is counted once per path), no partial eviction; the predictor state
 * is one bit per region. Fixed arrays per core; nothing allocates per call.
 */

/** Regions remembered per core; the least recently used beyond this is forgotten (taken as evicted). */
const SLOTS = 16;
export const CODE_LINE_BYTES = 64;

export class CodeCache {
  private readonly id: Int32Array;
  private readonly lines: Int32Array;
  private readonly stamp: Float64Array;
  private readonly trained: Uint8Array;
  private readonly total: Int32Array;
  private clock = 0;
  /** The share of the last run() that was resident but untrained (an IBPB since it last ran). */
  untrained = 0;
  /** Lines of the cache. */
  readonly capacity: number;

  constructor(readonly cores: number, l1iBytes: number) {
    this.capacity = Math.max(1, Math.floor(l1iBytes / CODE_LINE_BYTES));
    this.id = new Int32Array(cores * SLOTS).fill(-1);
    this.lines = new Int32Array(cores * SLOTS);
    this.stamp = new Float64Array(cores * SLOTS);
    this.trained = new Uint8Array(cores * SLOTS);
    this.total = new Int32Array(cores);
  }

  /**
   * Run `lines` lines of region `region` (>= 0) on `core`: the share of them that was warm, in
   * [0, 1] (and in `untrained` the share that was resident but run after an IBPB); afterwards the
   * region is resident (as much as fits) and trained.
   */
  run(core: number, region: number, lines: number): number {
    this.untrained = 0;
    if (lines <= 0) return 1;
    const b = core * SLOTS;
    let s = -1;
    for (let i = b; i < b + SLOTS; i++) if (this.id[i] === region) { s = i; break; }
    let warm = 0;
    if (s >= 0) {
      const share = this.lines[s] >= lines ? 1 : this.lines[s] / lines;
      if (this.trained[s] === 1) warm = share; else this.untrained = share;
      this.total[core] -= this.lines[s];
      this.id[s] = -1;
      this.lines[s] = 0;
    }
    const need = lines < this.capacity ? lines : this.capacity;
    while (this.total[core] + need > this.capacity) this.evictOldest(core);
    if (s < 0) s = this.freeSlot(core);
    this.id[s] = region;
    this.lines[s] = need;
    this.stamp[s] = ++this.clock;
    this.trained[s] = 1;
    this.total[core] += need;
    return warm;
  }

  /** An IBPB on `core`: every resident region runs with untrained predictors next time (its lines stay in the L1I). */
  flushPredictors(core: number): void {
    this.trained.fill(0, core * SLOTS, core * SLOTS + SLOTS);
  }

  /** Lines of `region` resident on `core` (0 when not); for tests and traces. */
  residentLines(core: number, region: number): number {
    const b = core * SLOTS;
    for (let i = b; i < b + SLOTS; i++) if (this.id[i] === region) return this.lines[i];
    return 0;
  }

  private evictOldest(core: number): void {
    const b = core * SLOTS;
    let o = -1;
    for (let i = b; i < b + SLOTS; i++) if (this.id[i] >= 0 && (o < 0 || this.stamp[i] < this.stamp[o])) o = i;
    if (o < 0) throw new Error(`CodeCache: core ${core} counts ${this.total[core]} lines but holds no region (a bookkeeping bug)`);
    this.total[core] -= this.lines[o];
    this.id[o] = -1;
    this.lines[o] = 0;
  }

  private freeSlot(core: number): number {
    const b = core * SLOTS;
    for (let i = b; i < b + SLOTS; i++) if (this.id[i] < 0) return i;
    this.evictOldest(core); // more regions than slots: the least recently used is forgotten
    return this.freeSlot(core);
  }
}
