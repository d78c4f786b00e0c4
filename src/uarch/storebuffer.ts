/**
 * The store buffer of one core, statically partitioned between its hardware threads.
 *
 * Documentation/arch/x86/mds.rst (MSBDS): "Store buffers are partitioned between Hyper-Threads
 * so cross thread forwarding is not possible. But if a thread enters or exits a sleep state
 * the store buffer is repartitioned which can expose data from one thread to the other."
 * And for C-states: "stale data from the idling CPU [can spill] to the Hyper-Thread sibling
 * after the store buffer got repartitioned and all entries are available to the non idle
 * sibling. When coming out of idle the store buffer is partitioned again so each sibling has
 * half of it available."
 *
 * The model: `entries` physical entries. With both threads active, thread t owns the entries
 * [t*half, t*half + half); with one thread active (the other idle, or a 1-thread core) that
 * thread owns all of them. A thread writes its stores round-robin within what it owns, and may
 * be forwarded (sampled) any entry it owns — so after a repartition the active thread owns
 * entries still holding its idle sibling's stores. Repartitioning moves no data; only a
 * buffer clear (VERW with MD_CLEAR microcode) overwrites entries.
 *
 *   column  type          contents
 *   pa      Float64Array  physical address of the store (8-aligned), -1 = empty/cleared
 *   lo, hi  Uint32Array   the 8 bytes stored, as u32 halves
 *   owner   Int8Array     index within the core of the thread that stored, -1 = none
 */
export class StoreBuffer {
  readonly entries: number;
  readonly threads: number;
  readonly pa: Float64Array;
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
  readonly owner: Int8Array;
  /** Whether each thread is active (not idle). */
  private readonly active = new Uint8Array(2);
  /** The next entry each thread writes. */
  private readonly cursor = new Int32Array(2);
  stores = 0;
  clears = 0;
  repartitions = 0;

  constructor(entries: number, threads: number) {
    if (!Number.isInteger(entries) || entries < 2 || entries > 1024) throw new RangeError(`store buffer: entries must be 2..1024, got ${entries}`);
    if (threads !== 1 && threads !== 2) throw new RangeError(`store buffer: 1 or 2 threads, got ${threads}`);
    this.entries = entries;
    this.threads = threads;
    this.pa = new Float64Array(entries).fill(-1);
    this.lo = new Uint32Array(entries);
    this.hi = new Uint32Array(entries);
    this.owner = new Int8Array(entries).fill(-1);
    this.active[0] = 1;
    this.active[1] = threads === 2 ? 1 : 0;
    this.cursor[0] = this.start(0);
    this.cursor[1] = this.start(1);
  }

  /** Both threads of a 2-thread core active: the buffer is split in two halves. */
  get partitioned(): boolean {
    return this.active[0] === 1 && this.active[1] === 1;
  }

  /** First entry thread t owns. */
  start(t: number): number {
    return this.partitioned ? t * (this.entries >>> 1) : 0;
  }

  /** One past the last entry thread t owns (start == end when t is idle). */
  end(t: number): number {
    if (this.active[t] === 0) return this.start(t);
    return this.partitioned ? this.start(t) + (this.entries >>> 1) : this.entries;
  }

  isActive(t: number): boolean {
    return this.active[t] === 1;
  }

  /** Thread t enters (idle=true) or leaves a sleep state: the buffer is repartitioned. */
  setIdle(t: number, idle: boolean): void {
    if (t < 0 || t >= this.threads) throw new RangeError(`store buffer: no thread ${t} in a ${this.threads}-thread core`);
    const v = idle ? 0 : 1;
    if (this.active[t] === v) return;
    this.active[t] = v;
    this.repartitions++;
    for (let u = 0; u < this.threads; u++) {
      const s = this.start(u);
      const e = this.end(u);
      if (this.cursor[u] < s || this.cursor[u] >= e) this.cursor[u] = s;
    }
  }

  /** A store of 8 bytes at `pa` by thread t (must be active). Returns the entry, or -1 if idle. */
  record(t: number, pa: number, lo: number, hi: number): number {
    // start(t) and end(t) inlined (once per store).
    const act = this.active;
    if (act[t] === 0) return -1;
    const half = act[0] === 1 && act[1] === 1 ? this.entries >>> 1 : 0;
    const s = half === 0 ? 0 : t * half;
    const e = half === 0 ? this.entries : s + half;
    const i = this.cursor[t];
    this.cursor[t] = i + 1 === e ? s : i + 1;
    this.pa[i] = pa;
    this.lo[i] = lo;
    this.hi[i] = hi;
    this.owner[i] = t;
    this.stores++;
    return i;
  }

  /** Overwrite every entry (VERW with MD_CLEAR microcode, mds.rst). Partitioning is unchanged. */
  clear(): void {
    this.pa.fill(-1);
    this.lo.fill(0);
    this.hi.fill(0);
    this.owner.fill(-1);
    this.clears++;
  }

  /** Entries thread t owns that hold a store of the other thread (what MSBDS exposes to t). */
  foreignEntries(t: number): number[] {
    const out: number[] = [];
    for (let i = this.start(t); i < this.end(t); i++) if (this.owner[i] >= 0 && this.owner[i] !== t) out.push(i);
    return out;
  }

  occupancy(): number {
    let n = 0;
    for (let i = 0; i < this.entries; i++) if (this.pa[i] >= 0) n++;
    return n;
  }
}
