/**
 * A binary min-heap of hardware-thread ids keyed by their cycle clocks (docs/DESIGN.md "Time": the
 * engine always advances the thread with the smallest clock). Ties break on the lower thread
 * id, so the order is a total order and runs are deterministic.
 *
 * Storage: `ids` (Int32Array) is the heap array; `pos` (Int32Array) the index of each id in it
 * (-1 = not in the heap); the keys are read from the caller's clock array, which must not
 * change while the id is in the heap (pop, change the clock, push again), except downwards with
 * decrease() (a halted CPU woken early). No allocation after
 * construction.
 */
export class ThreadHeap {
  private readonly ids: Int32Array;
  private readonly pos: Int32Array;
  private n = 0;

  constructor(readonly clock: Float64Array) {
    this.ids = new Int32Array(clock.length);
    this.pos = new Int32Array(clock.length).fill(-1);
  }

  get size(): number {
    return this.n;
  }

  has(id: number): boolean {
    return this.pos[id] >= 0;
  }

  /** Whether thread a comes before thread b. */
  private less(a: number, b: number): boolean {
    const ca = this.clock[a];
    const cb = this.clock[b];
    return ca < cb || (ca === cb && a < b);
  }

  push(id: number): void {
    if (this.pos[id] >= 0) throw new RangeError(`heap: thread ${id} is already queued`);
    this.siftUp(id, this.n++);
  }

  /** Thread `id` (queued) had its clock lowered: move it up to its place. */
  decrease(id: number): void {
    const i = this.pos[id];
    if (i < 0) throw new RangeError(`heap: thread ${id} is not queued`);
    this.siftUp(id, i);
  }

  /** Place `id`, starting from slot i, above every parent it comes before. */
  private siftUp(id: number, i: number): void {
    const ids = this.ids;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(id, ids[p])) break;
      ids[i] = ids[p];
      this.pos[ids[i]] = i;
      i = p;
    }
    ids[i] = id;
    this.pos[id] = i;
  }

  /** The id with the smallest clock, removed; -1 when empty. */
  pop(): number {
    if (this.n === 0) return -1;
    const ids = this.ids;
    const top = ids[0];
    this.pos[top] = -1;
    const last = ids[--this.n];
    if (this.n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= this.n) break;
        const r = l + 1;
        const c = r < this.n && this.less(ids[r], ids[l]) ? r : l;
        if (!this.less(ids[c], last)) break;
        ids[i] = ids[c];
        this.pos[ids[i]] = i;
        i = c;
      }
      ids[i] = last;
      this.pos[last] = i;
    }
    return top;
  }

  /** The id with the smallest clock, left in place; -1 when empty. */
  peek(): number {
    return this.n === 0 ? -1 : this.ids[0];
  }
}
