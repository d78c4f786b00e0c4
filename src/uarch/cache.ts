/**
 * The L1 data cache of one core: physically tagged, set-associative, true LRU, 64-byte lines
 * that hold REAL BYTES — a copy of the PhysMemory line taken when the line was filled. The
 * copy is not kept up to date behind the cache's back: if memory changes without going
 * through the cache (another agent's write, a page freed and reused), the line keeps the old
 * bytes until it is refilled, invalidated or evicted. That stale copy is exactly what L1TF
 * reads (Documentation/admin-guide/hw-vuln/l1tf.rst: "loads the referenced data if it is
 * present in the Level 1 Data Cache").
 *
 * Storage (slot s = set * ways + way):
 *
 *   column   type          contents
 *   tags     Float64Array  line number (physical address >> 6, a Number < 2^46), -1 = invalid
 *   stamp    Float64Array  LRU clock of the slot's last fill or hit (larger = more recent; the
 *                          clock advances once per hit and fill, so a hit is one store, not a
 *                          re-ranking of the set); way w starts at -w (way 0 most recent)
 *   data     Uint8Array    ways*sets lines of 64 bytes, slot s at s*64 (data32: the same
 *                          buffer as u32 words, for 16-word line copies)
 *
 * The set of an address is physical address bits 6..6+log2(sets)-1 (for 64 sets, bits 11:6,
 * which lie inside the 4 KiB page offset, so the L1D is VIPT-equivalent to PIPT). Stores are
 * write-through into PhysMemory (the model's memory is always the architectural value a
 * coherent system would show to every other agent), so the "writeback" half of an L1D_FLUSH
 * has nothing left to write; flush() is the invalidate half.
 *
 * Hot path (probe, fill, touch) never allocates.
 */
import type { PhysMemory } from '../phys/memory.ts';

export const LINE_SHIFT = 6;
export const LINE_BYTES = 1 << LINE_SHIFT;
const LINE_MASK = LINE_BYTES - 1;

export interface CacheGeometry {
  /** Total data capacity in bytes (e.g. 32 KiB, 48 KiB). */
  sizeBytes: number;
  /** Associativity (lines per set), 1..255. */
  ways: number;
}

export class L1dCache {
  readonly sets: number;
  readonly ways: number;
  readonly setMask: number;
  readonly tags: Float64Array;
  readonly stamp: Float64Array;
  private clock = 0;
  readonly data: Uint8Array;
  /** The same lines as u32 words (slot s at s*16). */
  readonly data32: Uint32Array;
  /**
   * The machine's sharer masks (Machine: a store invalidates other cores' copies): per hash of a
   * line number (line & cohMask), `cohWords` words of one bit per core, set while that core's
   * L1D holds a line of that hash. null on a 1-core machine. Every change of `tags` keeps them
   * exact (lineIn / lineOut). The hash keeps a line's set bits (cohMask >= setMask), so all of
   * this cache's lines of one hash lie in one set: whether another is left is a scan of that
   * set's ways, not a per-hash count (which was a table as large as the masks per core: 32 MiB
   * of host memory touched at random on a 64-core machine).
   */
  cohMasks: Uint32Array | null = null;
  cohMask = 0;
  cohWords = 0;
  /** This core's word and bit in a mask. */
  cohWord = 0;
  cohBit = 0;
  /**
   * Way prediction, not part of the model: per low bits of a line number, the slot that last
   * held such a line. access() tries it before scanning the set; it is checked like any slot
   * (a line is in at most one way), so it changes speed, never results. Sized to cover 256 KiB
   * of consecutive lines, four times the largest L1D, so a working set that fits the cache
   * rarely shares an entry.
   */
  private readonly hint = new Int32Array(4096);
  /** Set by access(): whether the last access hit. */
  lastHit = false;
  hits = 0;
  misses = 0;
  fills = 0;
  evictions = 0;
  flushes = 0;

  constructor(geom: CacheGeometry, private readonly mem: PhysMemory) {
    const { sizeBytes, ways } = geom;
    if (!Number.isInteger(ways) || ways < 1 || ways > 255) throw new RangeError(`L1D: ways must be 1..255, got ${ways}`);
    if (!Number.isInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % (ways * LINE_BYTES) !== 0) {
      throw new RangeError(`L1D: ${sizeBytes} bytes is not a whole number of ${ways}-way sets of ${LINE_BYTES}-byte lines`);
    }
    const sets = sizeBytes / (ways * LINE_BYTES);
    if ((sets & (sets - 1)) !== 0) throw new RangeError(`L1D: ${sets} sets is not a power of two`);
    this.sets = sets;
    this.ways = ways;
    this.setMask = sets - 1;
    const slots = sets * ways;
    this.tags = new Float64Array(slots).fill(-1);
    this.stamp = new Float64Array(slots);
    for (let s = 0; s < sets; s++) for (let w = 0; w < ways; w++) this.stamp[s * ways + w] = -w;
    this.data32 = new Uint32Array(slots * (LINE_BYTES >>> 2));
    this.data = new Uint8Array(this.data32.buffer);
  }

  /** The set a physical address indexes (`>>>` keeps bits 31:0 exactly for any pa < 2^53). */
  setOf(pa: number): number {
    return (pa >>> LINE_SHIFT) & this.setMask;
  }

  /** Slot holding the line of `pa`, or -1. Changes nothing (no LRU update, no counters). */
  lookup(pa: number): number {
    const line = Math.floor(pa / LINE_BYTES);
    const base = ((pa >>> LINE_SHIFT) & this.setMask) * this.ways;
    for (let w = 0; w < this.ways; w++) if (this.tags[base + w] === line) return base + w;
    return -1;
  }

  /** A load or store reaching the L1D: hit updates LRU; miss fills. Returns the slot. */
  access(pa: number): number {
    // lookup() and touch() inlined (the per-touch path); 64 = LINE_BYTES, 6 = LINE_SHIFT as
    // literals (a module constant is a context load and check per use in V8).
    const line = Math.floor(pa / 64);
    const tags = this.tags;
    const h = (pa >>> 6) & 4095;
    let slot = this.hint[h];
    if (tags[slot] !== line) {
      const ways = this.ways;
      const base = ((pa >>> 6) & this.setMask) * ways;
      slot = -1;
      for (let w = 0; w < ways; w++) {
        if (tags[base + w] === line) { slot = base + w; break; }
      }
      if (slot < 0) {
        this.misses++;
        this.lastHit = false;
        return this.fillMiss(pa);
      }
      this.hint[h] = slot;
    }
    this.hits++;
    this.lastHit = true;
    this.stamp[slot] = ++this.clock;
    return slot;
  }

  /**
   * Bring the line of `pa` in (or refresh it if present) with the bytes PhysMemory holds now,
   * replacing an invalid way first, else the least recently used one. Returns the slot.
   */
  fill(pa: number): number {
    const slot = this.lookup(pa);
    if (slot >= 0) {
      this.copyFromMemory(pa - (pa & LINE_MASK), slot);
      this.fills++;
      this.touch(slot);
      return slot;
    }
    return this.fillMiss(pa);
  }

  /** fill() for a line known to be absent: pick the victim, copy, make it MRU. */
  private fillMiss(pa: number): number {
    const ways = this.ways;
    const base = ((pa >>> 6) & this.setMask) * ways;
    const tags = this.tags;
    // The first invalid way, else the least recently used one (the smallest stamp: stamps of a
    // set are distinct), in one pass.
    const stamp = this.stamp;
    let victim = -1;
    let lru = base;
    for (let w = 0; w < ways; w++) {
      const i = base + w;
      if (tags[i] < 0) { victim = i; break; }
      if (stamp[i] < stamp[lru]) lru = i;
    }
    if (victim < 0) {
      victim = lru;
      this.evictions++;
      if (this.cohMasks !== null) this.lineOut(tags[victim], victim);
    }
    // `& 63`, not `% 64`: on a double V8 calls fmod() in libc (~20% of the engine's time with
    // `%` here and in core.ts); ToInt32 keeps the low bits of any integer < 2^53.
    const lineAddr = pa - (pa & 63);
    tags[victim] = lineAddr / 64;
    if (this.cohMasks !== null) this.lineIn(tags[victim]);
    this.copyFromMemory(lineAddr, victim);
    this.fills++;
    this.stamp[victim] = ++this.clock;
    this.hint[(pa >>> 6) & 4095] = victim;
    return victim;
  }

  /**
   * Copy the 64 bytes of memory at `lineAddr` into `slot`: 16 u32 words from PhysMemory's word
   * view into this cache's word view (both views share their buffer with a byte view, so the
   * bytes are PhysMemory's bytes). An unbacked frame reads as zeros.
   */
  private copyFromMemory(lineAddr: number, slot: number): void {
    // 16 = LINE_BYTES / 4, 4096 = PAGE_SIZE (literals: see access()).
    const d = this.data32;
    const o = slot * 16;
    const pfn = Math.floor(lineAddr / 4096);
    const s = this.mem.slot(pfn);
    if (s < 0) {
      d.fill(0, o, o + 16);
      return;
    }
    const words = this.mem.wordsOfSlot(s);
    const w0 = this.mem.wordBaseOfSlot(s) + ((lineAddr - pfn * 4096) >>> 2);
    for (let i = 0; i < 16; i++) d[o + i] = words[w0 + i];
  }

  /** Make `slot` the most recently used of its set (true LRU by stamp). */
  touch(slot: number): void {
    this.stamp[slot] = ++this.clock;
  }

  /** Write 8 bytes (two u32 halves, little endian) into a present line at byte offset `off`. */
  patch64(slot: number, off: number, lo: number, hi: number): void {
    const i = (slot * LINE_BYTES + (off & LINE_MASK & ~7)) >>> 2;
    this.data32[i] = lo;
    this.data32[i + 1] = hi;
  }

  /** Drop the line of `pa` if present (a coherence invalidation from another core's store). */
  invalidateLine(pa: number): boolean {
    const slot = this.lookup(pa);
    if (slot < 0) return false;
    if (this.cohMasks !== null) this.lineOut(this.tags[slot], slot);
    this.tags[slot] = -1;
    this.data.fill(0, slot * LINE_BYTES, slot * LINE_BYTES + LINE_BYTES);
    return true;
  }

  /**
   * IA32_FLUSH_CMD.L1D_FLUSH: "Writeback and invalidate the L1 data cache"
   * (arch/x86/include/asm/msr-index.h). Memory is write-through here, so only the invalidate
   * remains; the data array is zeroed too so no stale byte stays reachable.
   */
  flush(): void {
    this.forgetSharers();
    this.tags.fill(-1);
    this.data.fill(0);
    this.flushes++;
  }

  /** Same as flush() without counting: the uniform clear() every structure has. */
  clear(): void {
    this.forgetSharers();
    this.tags.fill(-1);
    this.data.fill(0);
  }

  /** Every valid line leaves (before the tags are cleared): this core's bit goes from their hashes. */
  private forgetSharers(): void {
    const masks = this.cohMasks;
    if (masks === null) return;
    const tags = this.tags;
    const off = this.cohWord;
    const keep = ~this.cohBit;
    const words = this.cohWords;
    for (let i = 0; i < tags.length; i++) if (tags[i] >= 0) masks[(tags[i] & this.cohMask) * words + off] &= keep;
  }

  /** Line number `line` enters this cache: this core's bit for its hash. */
  private lineIn(line: number): void {
    this.cohMasks![(line & this.cohMask) * this.cohWords + this.cohWord] |= this.cohBit;
  }

  /** Line number `line` leaves slot `slot`: the bit goes unless another way of the set has its hash. */
  private lineOut(line: number, slot: number): void {
    const mask = this.cohMask;
    const h = line & mask;
    const ways = this.ways;
    const base = (line & this.setMask) * ways;
    const tags = this.tags;
    for (let w = 0; w < ways; w++) {
      const s = base + w;
      if (s !== slot && tags[s] >= 0 && (tags[s] & mask) === h) return;
    }
    this.cohMasks![h * this.cohWords + this.cohWord] &= ~this.cohBit;
  }

  /** Number of valid lines. */
  occupancy(): number {
    let n = 0;
    for (let i = 0; i < this.tags.length; i++) if (this.tags[i] >= 0) n++;
    return n;
  }

  /** Number of valid lines holding bytes of physical range [start, end). */
  countLinesIn(start: number, end: number): number {
    const lo = Math.floor(start / LINE_BYTES);
    const hi = Math.ceil(end / LINE_BYTES);
    let n = 0;
    for (let i = 0; i < this.tags.length; i++) {
      const t = this.tags[i];
      if (t >= lo && t < hi) n++;
    }
    return n;
  }

  /** Physical addresses of the valid lines holding bytes of [start, end), ascending (attack queries). */
  linesIn(start: number, end: number): number[] {
    const lo = Math.floor(start / LINE_BYTES);
    const hi = Math.ceil(end / LINE_BYTES);
    const out: number[] = [];
    for (let i = 0; i < this.tags.length; i++) {
      const t = this.tags[i];
      if (t >= lo && t < hi) out.push(t * LINE_BYTES);
    }
    return out.sort((a, b) => a - b);
  }

  /** Physical address of the line in `slot`, or -1 when the slot is invalid. */
  lineAddress(slot: number): number {
    const t = this.tags[slot];
    return t < 0 ? -1 : t * LINE_BYTES;
  }

  /** The byte the cache holds for `pa`, or -1 when its line is not present (what L1TF can read). */
  cachedByte(pa: number): number {
    const slot = this.lookup(pa);
    return slot < 0 ? -1 : this.data[slot * LINE_BYTES + (pa & LINE_MASK)];
  }

  /** Copy the 64 bytes of `slot` into dst[off..off+64). */
  copyLine(slot: number, dst: Uint8Array, off: number): void {
    dst.set(this.data.subarray(slot * LINE_BYTES, slot * LINE_BYTES + LINE_BYTES), off);
  }

  /** The slots of the set of `pa` from most to least recently used (tests, reports). */
  lruOrder(pa: number): number[] {
    const base = this.setOf(pa) * this.ways;
    const order = Array.from({ length: this.ways }, (_, w) => base + w);
    return order.sort((a, b) => this.stamp[b] - this.stamp[a]);
  }
}
