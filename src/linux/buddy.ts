/**
 * The buddy page allocator (mm/page_alloc.c, Linux 6.1) over the usable physical RAM.
 *
 * Rules taken from the kernel:
 *  - orders 0..10: MAX_ORDER is 11 in 6.1 and the largest block has order MAX_ORDER-1
 *    (include/linux/mmzone.h);
 *  - the buddy of the block at `pfn` of order `o` is `pfn ^ (1 << o)` (__find_buddy_pfn());
 *  - freeing merges with the buddy while it is a free block of the same order
 *    (__free_one_page());
 *  - splitting a larger block keeps the lower half and puts each upper half on the free list
 *    of its order (expand());
 *  - blocks are taken from the head of a free list (get_page_from_free_area()) and freed
 *    ones added at the head (add_to_free_list()); the kernel sometimes adds at the tail
 *    (buddy_merge_likely(), page shuffling), not modelled. Boot-time frees go to the tail
 *    (__free_pages_core() passes FPI_TO_TAIL), so fresh memory is handed out lowest address
 *    first, as here;
 *  - zones: an allocation tries ZONE_NORMAL first and falls back to ZONE_DMA32, as the
 *    zonelist of a GFP_KERNEL allocation does; a DMA32 allocation uses ZONE_DMA32 only. ZONE_DMA
 *    (the first 16 MiB) is folded into DMA32 here, and there are no per-CPU page lists, no
 *    migrate types and no NUMA nodes (simplifications, not kernel rules).
 *
 * Bookkeeping, and why it scales (the SPARSEMEM idea, mm/sparse.c): per-PFN state lives in
 * typed arrays per *section* of 4096 frames (16 MiB; the kernel's x86-64 sections are 128 MiB).
 * A section entirely inside usable RAM starts "pristine": it is known to consist of four free
 * order-10 blocks and has no arrays at all. Only when an allocation needs it is it
 * materialised: a state byte per frame; two Int16 free-list links per frame only while the
 * section has a free block; and what a frame is allocated as (owner, class, use, tag: an id in
 * the allocator's table of such attributes) per 2 MiB chunk while the chunk is uniform, per frame
 * only once a chunk mixes attributes. Sections cut by a hole or a reserved range are materialised
 * at construction. So a 1 TiB machine (268M frames) costs a few hundred KiB until it allocates,
 * each 16 MiB it hands out in 2 MiB blocks (THP, guest RAM) 4 KiB once full, in 4 KiB pages of
 * mixed owners at most 28 KiB (bench/scale.ts: 200 VMs of 4 GiB). Free lists are intrusive: inside a section, Int16 next/prev links by frame;
 * across sections, one Int32 list per (zone, order) of the sections that have a free block of
 * that order. Pristine sections are used in ascending address order, after the blocks already
 * on the lists. Everything is deterministic: the same calls give the same frames.
 */
import { CLASS_FREE, CLASS_SENSITIVE } from './sensitivity.ts';
import { KERNEL_OWNER } from './owners.ts';

/** include/linux/mmzone.h (6.1): MAX_ORDER 11, so orders 0..10. */
export const MAX_ORDER = 11;
export const MAX_BLOCK_ORDER = MAX_ORDER - 1;
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;

export const SECTION_SHIFT = 12;
export const SECTION_PFNS = 1 << SECTION_SHIFT;
const BLOCKS_PER_SECTION = SECTION_PFNS >>> MAX_BLOCK_ORDER;

export const ZONE_DMA32 = 0;
export const ZONE_NORMAL = 1;
/** ZONE_DMA32 ends at 4 GiB (arch/x86/mm/init.c zone_sizes_init(): MAX_DMA32_PFN). */
export const DMA32_END_PFN = 1 << 20;

/** What a page is used for (a column the callers fill; the allocator does not interpret it). */
export const USE_NONE = 0;
export const USE_SLAB = 1;
export const USE_VMALLOC = 2;
export const USE_PAGE_TABLE = 3;
export const USE_USER = 4;
export const USE_OTHER = 5;

// Per-frame state byte:
//   7     6     5     4..0
//  +-----+-----+-----+-------+
//  |FREE |USED |TAIL | order |   FREE|o: head of a free block; USED|o: head of an allocated
//  +-----+-----+-----+-------+   block; TAIL: inside a block; 0: not usable (hole or reserved).
const ST_FREE = 0x80;
const ST_USED = 0x40;
const ST_TAIL = 0x20;
const ST_ORDER_MASK = 0x1f;
const ST_UNUSABLE = 0;

const SEC_HOLE = 0;
const SEC_PRISTINE = 1;
const SEC_LIVE = 2;

export type Range = readonly [bigint | number, bigint | number];

export interface BuddyOptions {
  /** Physical RAM as [start, end) byte ranges (e.g. /proc/iomem "System RAM", end exclusive). */
  ram: readonly Range[];
  /** Ranges never handed out (kernel image, firmware tables, …), [start, end) bytes. */
  reserved?: readonly Range[];
}

export class OutOfMemoryError extends Error {
  constructor(readonly order: number, readonly zone: 'normal' | 'dma32') {
    super(`out of memory: no free block of order ${order} in ${zone === 'normal' ? 'ZONE_NORMAL or ZONE_DMA32' : 'ZONE_DMA32'}`);
    this.name = 'OutOfMemoryError';
  }
}

/** Frames per attribute chunk (2 MiB): a block of order >= 9 covers whole chunks. */
const CHUNK_SHIFT = 9;
const CHUNKS = SECTION_PFNS >>> CHUNK_SHIFT;
/** Link arrays kept for reuse (BuddyAllocator.spareLinks). */
const MAX_SPARE_LINKS = 64;
/** Attribute id of a free frame: owner 0, CLASS_FREE, USE_NONE, tag -1. */
const ATTR_FREE = 0;

/** Sections whose fixed arrays share one block of memory (SectionArrays). */
const POOL_SECTIONS = 256;
/** Int32 words a section takes from its pool block: chunkAttr, then count. */
const SECTION_I32 = CHUNKS + MAX_ORDER;

/**
 * The fixed arrays of new sections, as views of blocks made for POOL_SECTIONS sections at a time:
 * a typed array of its own for each (four a section) cost ~8 us each, 0.4 s of building a 1 TiB
 * host whose 200 VMs materialise 51,200 sections. One pool per allocator, so a copy of the
 * allocator (sim/boot-cache.ts) hands out views of its own copy of the blocks.
 */
class SectionArrays {
  private u8 = new Uint8Array(0);
  private i32 = new Int32Array(0);
  private i16 = new Int16Array(0);
  private used = POOL_SECTIONS;

  /** The next section's arrays: state (zeros), chunkAttr and count (zeros), head (-1). */
  take(): { state: Uint8Array; chunkAttr: Int32Array; count: Int32Array; head: Int16Array } {
    if (this.used === POOL_SECTIONS) {
      this.u8 = new Uint8Array(POOL_SECTIONS * SECTION_PFNS);
      this.i32 = new Int32Array(POOL_SECTIONS * SECTION_I32);
      this.i16 = new Int16Array(POOL_SECTIONS * MAX_ORDER).fill(-1);
      this.used = 0;
    }
    const k = this.used++;
    const w = k * SECTION_I32;
    return {
      state: this.u8.subarray(k * SECTION_PFNS, (k + 1) * SECTION_PFNS),
      chunkAttr: this.i32.subarray(w, w + CHUNKS),
      count: this.i32.subarray(w + CHUNKS, w + SECTION_I32),
      head: this.i16.subarray(k * MAX_ORDER, (k + 1) * MAX_ORDER),
    };
  }
}

class Section {
  readonly state: Uint8Array;
  /** Free-list links, next at [l] and prev at [SECTION_PFNS + l]; null while no block is free. */
  links: Int16Array | null = null;
  free = 0;
  /** Attribute id per chunk, or -1: the chunk's frames differ, see `attr`. */
  readonly chunkAttr: Int32Array;
  /** Attribute id per frame, for the chunks whose chunkAttr is -1 (null until one is). */
  attr: Int32Array | null = null;
  /** Per order: first free block (local index) and count. */
  readonly head: Int16Array;
  readonly count: Int32Array;
  constructor(readonly num: number, readonly slot: number, readonly zone: number, arrays: SectionArrays) {
    const a = arrays.take();
    this.state = a.state;
    this.chunkAttr = a.chunkAttr;
    this.head = a.head;
    this.count = a.count;
  }

  static readonly FIXED_BYTES = SECTION_PFNS + CHUNKS * 4 + MAX_ORDER * 6;

  get bytes(): number {
    return Section.FIXED_BYTES + (this.links ? this.links.byteLength : 0) + (this.attr ? this.attr.byteLength : 0);
  }

  attrOf(l: number): number {
    const a = this.chunkAttr[l >>> CHUNK_SHIFT];
    return a >= 0 ? a : this.attr![l];
  }

  /** Frames [l, l + n) get attribute `id`. */
  setAttr(l: number, n: number, id: number): void {
    const end = l + n;
    for (let c = l >>> CHUNK_SHIFT; c << CHUNK_SHIFT < end; c++) {
      const c0 = c << CHUNK_SHIFT;
      const c1 = c0 + (1 << CHUNK_SHIFT);
      const cur = this.chunkAttr[c];
      if (l <= c0 && end >= c1) { this.chunkAttr[c] = id; continue; }
      if (cur === id) continue;
      if (this.attr === null) this.attr = new Int32Array(SECTION_PFNS);
      if (cur >= 0) { this.attr.fill(cur, c0, c1); this.chunkAttr[c] = -1; }
      this.attr.fill(id, Math.max(l, c0), Math.min(end, c1));
    }
  }
}

function toPfnFloor(v: bigint | number): number {
  return Number(BigInt(v) >> 12n);
}
function toPfnCeil(v: bigint | number): number {
  return Number((BigInt(v) + 4095n) >> 12n);
}

/** Union of [a, b) PFN runs, sorted. */
function mergeRuns(runs: Array<[number, number]>): Array<[number, number]> {
  const s = runs.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export class BuddyAllocator {
  /** Usable frames (RAM minus reserved). */
  readonly totalPages: number;
  /** Usable PFN runs [start, end), sorted. */
  readonly usableRuns: ReadonlyArray<readonly [number, number]>;
  private readonly sectionCount: number;
  private readonly secKind: Uint8Array;
  private readonly secSlot: Int32Array;
  private readonly slots: Section[] = [];
  /** Pristine sections per zone, ascending, consumed from `pristineNext[zone]`. */
  private readonly pristine: Int32Array[];
  private readonly pristineNext = new Int32Array(2);
  /** Per (zone, order): head slot of the list of sections with a free block of that order. */
  private readonly listHead = new Int32Array(2 * MAX_ORDER).fill(-1);
  private secNext = new Int32Array(0);
  private secPrev = new Int32Array(0);
  /** Free blocks per order in materialised sections. */
  private readonly freeCount = new Float64Array(MAX_ORDER);
  private allocated = 0;
  /** Bumped by every alloc() and free(): lets callers tell that a snapshot of the state is stale. */
  changes = 0;
  // What frames are allocated as, by attribute id (Section.chunkAttr / attr); id 0 = free.
  private attrOwner: number[] = [0];
  private attrCls: number[] = [CLASS_FREE];
  private attrUse: number[] = [USE_NONE];
  private attrTag: number[] = [-1];
  private readonly attrIds = new Map<string, number>();
  /**
   * Link arrays of sections that filled up, for the next section that gets a free block (their
   * old contents are never read: a list is reached from head[] and pushFree() writes a block's
   * links when it joins one). Saves allocating and collecting 16 KiB per section filled.
   */
  private readonly spareLinks: Int16Array[] = [];
  private readonly sectionArrays = new SectionArrays();

  /** The id of (owner, cls, use, tag), made on first use. */
  private attrId(owner: number, cls: number, use: number, tag: number): number {
    const key = `${owner},${cls},${use},${tag}`;
    let id = this.attrIds.get(key);
    if (id === undefined) {
      id = this.attrOwner.length;
      this.attrIds.set(key, id);
      this.attrOwner.push(owner & 0xffff); // owners were a Uint16 column
      this.attrCls.push(cls & 0xff);
      this.attrUse.push(use & 0xff);
      this.attrTag.push(tag | 0);
    }
    return id;
  }

  constructor(opts: BuddyOptions) {
    const ram = mergeRuns(opts.ram.map(([a, b]) => [toPfnCeil(a), toPfnFloor(b)]));
    const reserved = mergeRuns((opts.reserved ?? []).map(([a, b]) => [toPfnFloor(a), toPfnCeil(b)]));
    const maxPfn = ram.length ? ram[ram.length - 1][1] : 0;
    if (maxPfn > 2 ** 40) throw new RangeError(`RAM ends beyond 2^52 bytes (PFN 0x${maxPfn.toString(16)})`);

    // Usable = RAM minus reserved.
    const usable: Array<[number, number]> = [];
    let r = 0;
    for (const [a0, b] of ram) {
      let a = a0;
      while (r < reserved.length && reserved[r][1] <= a) r++;
      let k = r;
      while (a < b) {
        if (k < reserved.length && reserved[k][0] < b) {
          if (reserved[k][0] > a) usable.push([a, reserved[k][0]]);
          a = Math.max(a, reserved[k][1]);
          k++;
        } else {
          usable.push([a, b]);
          a = b;
        }
      }
    }
    this.usableRuns = usable;
    this.totalPages = usable.reduce((n, [a, b]) => n + (b - a), 0);

    this.sectionCount = Math.ceil(maxPfn / SECTION_PFNS);
    this.secKind = new Uint8Array(this.sectionCount);
    this.secSlot = new Int32Array(this.sectionCount).fill(-1);
    const pristine: number[][] = [[], []];
    const partial = new Map<number, Array<[number, number]>>();
    for (const [a, b] of usable) {
      let p = a;
      while (p < b) {
        const sec = Math.floor(p / SECTION_PFNS);
        const start = sec * SECTION_PFNS;
        const e = Math.min(b, start + SECTION_PFNS);
        if (p === start && e === start + SECTION_PFNS) {
          this.secKind[sec] = SEC_PRISTINE;
          pristine[zoneOfSection(sec)].push(sec);
        } else {
          let runs = partial.get(sec);
          if (!runs) partial.set(sec, (runs = []));
          runs.push([p - start, e - start]);
        }
        p = e;
      }
    }
    this.pristine = pristine.map((l) => Int32Array.from(l));
    // Descending, so that the lowest partial section ends up at the head of each list.
    for (const sec of [...partial.keys()].sort((x, y) => y - x)) this.materialise(sec, partial.get(sec)!);
  }

  // -- allocation ---------------------------------------------------------------------------

  /**
   * Allocate a block of 2^order frames for `owner` with sensitivity class `cls`; returns its
   * first PFN. `use` and the zone are recorded / honoured as described at the top.
   */
  alloc(order: number, owner: number = KERNEL_OWNER, cls: number = CLASS_SENSITIVE, zone: 'normal' | 'dma32' = 'normal', use: number = USE_OTHER): number {
    if (!Number.isInteger(order) || order < 0 || order > MAX_BLOCK_ORDER) throw new RangeError(`order ${order} outside 0..${MAX_BLOCK_ORDER}`);
    if (cls === CLASS_FREE) throw new RangeError(`class ${CLASS_FREE} marks free frames`);
    const first = zone === 'dma32' ? ZONE_DMA32 : ZONE_NORMAL;
    for (let z = first; z >= ZONE_DMA32; z--) {
      for (;;) {
        for (let j = order; j < MAX_ORDER; j++) {
          const slot = this.listHead[z * MAX_ORDER + j];
          if (slot >= 0) return this.take(this.slots[slot], j, order, owner, cls, use);
        }
        if (!this.materialiseNextPristine(z)) break;
      }
    }
    throw new OutOfMemoryError(order, zone);
  }

  /** Free a block previously returned by alloc() with the same order. */
  free(pfn: number, order: number): void {
    const s = this.sectionOf(pfn);
    const local = pfn - (s ? s.num * SECTION_PFNS : 0);
    if (!s || s.state[local] !== (ST_USED | order)) {
      throw new Error(`free of PFN 0x${pfn.toString(16)} order ${order}: not an allocated block of that order`);
    }
    const n = 1 << order;
    s.setAttr(local, n, ATTR_FREE);
    s.state[local] = ST_TAIL;
    this.allocated -= n;
    this.changes++;
    // __free_one_page(): merge while the buddy is a free block of the same order.
    let head = local;
    let o = order;
    while (o < MAX_BLOCK_ORDER) {
      const buddy = head ^ (1 << o); // __find_buddy_pfn()
      if (s.state[buddy] !== (ST_FREE | o)) break;
      this.removeFree(s, buddy, o);
      s.state[buddy] = ST_TAIL;
      head &= buddy;
      o++;
    }
    this.pushFree(s, head, o);
  }

  private take(s: Section, j: number, order: number, owner: number, cls: number, use: number): number {
    const local = s.head[j];
    this.removeFree(s, local, j);
    // expand(): keep the lower half, free each upper half at its order.
    while (j > order) {
      j--;
      this.pushFree(s, local + (1 << j), j);
    }
    s.state[local] = ST_USED | order;
    const n = 1 << order;
    s.setAttr(local, n, this.attrId(owner, cls, use, -1));
    this.allocated += n;
    this.changes++;
    return s.num * SECTION_PFNS + local;
  }

  // -- intrusive lists ----------------------------------------------------------------------

  private pushFree(s: Section, local: number, order: number): void {
    s.state[local] = ST_FREE | order;
    const h = s.head[order];
    if (s.links === null) s.links = this.spareLinks.pop() ?? new Int16Array(2 * SECTION_PFNS);
    const links = s.links;
    links[local] = h;
    links[SECTION_PFNS + local] = -1;
    if (h >= 0) links[SECTION_PFNS + h] = local;
    s.head[order] = local;
    s.free++;
    if (s.count[order]++ === 0) this.linkSection(s, order);
    this.freeCount[order]++;
  }

  private removeFree(s: Section, local: number, order: number): void {
    const links = s.links!;
    const n = links[local];
    const p = links[SECTION_PFNS + local];
    if (p >= 0) links[p] = n;
    else s.head[order] = n;
    if (n >= 0) links[SECTION_PFNS + n] = p;
    if (--s.free === 0) { // no free block left: no list to link; the array goes to the next section that needs one
      if (this.spareLinks.length < MAX_SPARE_LINKS) this.spareLinks.push(links);
      s.links = null;
    }
    if (--s.count[order] === 0) this.unlinkSection(s, order);
    this.freeCount[order]--;
  }

  private linkSection(s: Section, order: number): void {
    const li = s.zone * MAX_ORDER + order;
    const i = s.slot * MAX_ORDER + order;
    const h = this.listHead[li];
    this.secNext[i] = h;
    this.secPrev[i] = -1;
    if (h >= 0) this.secPrev[h * MAX_ORDER + order] = s.slot;
    this.listHead[li] = s.slot;
  }

  private unlinkSection(s: Section, order: number): void {
    const i = s.slot * MAX_ORDER + order;
    const n = this.secNext[i];
    const p = this.secPrev[i];
    if (p >= 0) this.secNext[p * MAX_ORDER + order] = n;
    else this.listHead[s.zone * MAX_ORDER + order] = n;
    if (n >= 0) this.secPrev[n * MAX_ORDER + order] = p;
  }

  // -- sections -----------------------------------------------------------------------------

  private newSection(sec: number): Section {
    const slot = this.slots.length;
    if ((slot + 1) * MAX_ORDER > this.secNext.length) {
      const cap = Math.max(16, slot * 2) * MAX_ORDER;
      const nn = new Int32Array(cap).fill(-1);
      const np = new Int32Array(cap).fill(-1);
      nn.set(this.secNext);
      np.set(this.secPrev);
      this.secNext = nn;
      this.secPrev = np;
    }
    const s = new Section(sec, slot, zoneOfSection(sec), this.sectionArrays);
    this.slots.push(s);
    this.secSlot[sec] = slot;
    this.secKind[sec] = SEC_LIVE;
    return s;
  }

  /** Materialise a section from its usable local runs, freeing maximal aligned blocks. */
  private materialise(sec: number, runs: Array<[number, number]>): void {
    const s = this.newSection(sec);
    const blocks: number[] = [];
    for (const [a0, b] of runs) {
      s.state.fill(ST_TAIL, a0, b);
      let a = a0;
      while (a < b) {
        let o = MAX_BLOCK_ORDER;
        while (o > 0 && ((a & ((1 << o) - 1)) !== 0 || a + (1 << o) > b)) o--;
        blocks.push(a, o);
        a += 1 << o;
      }
    }
    // Push the highest block first so that the lowest one is at the head of its list.
    for (let i = blocks.length - 2; i >= 0; i -= 2) this.pushFree(s, blocks[i], blocks[i + 1]);
  }

  private materialiseNextPristine(zone: number): boolean {
    const list = this.pristine[zone];
    const i = this.pristineNext[zone];
    if (i >= list.length) return false;
    this.pristineNext[zone] = i + 1;
    const s = this.newSection(list[i]);
    s.state.fill(ST_TAIL);
    for (let b = BLOCKS_PER_SECTION - 1; b >= 0; b--) this.pushFree(s, b << MAX_BLOCK_ORDER, MAX_BLOCK_ORDER);
    return true;
  }

  private sectionOf(pfn: number): Section | null {
    const sec = Math.floor(pfn / SECTION_PFNS);
    if (!(sec >= 0 && sec < this.sectionCount)) return null;
    const slot = this.secSlot[sec];
    return slot < 0 ? null : this.slots[slot];
  }

  // -- per-frame queries (no allocation) ------------------------------------------------------

  /** Owner id of an allocated frame, or -1 if the frame is free or not usable RAM. */
  ownerOfPfn(pfn: number): number {
    const sec = Math.floor(pfn / SECTION_PFNS);
    if (!(sec >= 0 && sec < this.sectionCount)) return -1;
    const slot = this.secSlot[sec];
    if (slot < 0) return -1;
    const a = this.slots[slot].attrOf(pfn - sec * SECTION_PFNS);
    return this.attrCls[a] === CLASS_FREE ? -1 : this.attrOwner[a];
  }

  /** Sensitivity class of an allocated frame, or CLASS_FREE. */
  classOfPfn(pfn: number): number {
    const sec = Math.floor(pfn / SECTION_PFNS);
    if (!(sec >= 0 && sec < this.sectionCount)) return CLASS_FREE;
    const slot = this.secSlot[sec];
    return slot < 0 ? CLASS_FREE : this.attrCls[this.slots[slot].attrOf(pfn - sec * SECTION_PFNS)];
  }

  /** USE_* of an allocated frame (USE_NONE if free). */
  useOfPfn(pfn: number): number {
    const s = this.sectionOf(pfn);
    return s ? this.attrUse[s.attrOf(pfn - s.num * SECTION_PFNS)] : USE_NONE;
  }

  /** The caller's tag of a frame (a slab id, a vmalloc area id, …), or -1. */
  tagOfPfn(pfn: number): number {
    const s = this.sectionOf(pfn);
    return s ? this.attrTag[s.attrOf(pfn - s.num * SECTION_PFNS)] : -1;
  }

  /** Tag the 2^order frames of an allocated block. */
  setTag(pfn: number, order: number, tag: number): void {
    const s = this.sectionOf(pfn);
    const l = pfn - (s ? s.num * SECTION_PFNS : 0);
    if (!s || s.state[l] !== (ST_USED | order)) throw new Error(`setTag: PFN 0x${pfn.toString(16)} is not an allocated block of order ${order}`);
    const a = s.attrOf(l); // a block's frames share one attribute
    s.setAttr(l, 1 << order, this.attrId(this.attrOwner[a], this.attrCls[a], this.attrUse[a], tag));
  }

  isAllocated(pfn: number): boolean {
    return this.classOfPfn(pfn) !== CLASS_FREE;
  }

  /**
   * The end (exclusive, > pfn) of a run of frames from `pfn` over which classOfPfn(),
   * ownerOfPfn() and isAllocated() answer as they do for `pfn`: a section never materialised
   * (all free), the block whose head is `pfn` (take() and free() fill class and owner for the
   * whole block) followed by further free blocks, or unusable frames; `pfn + 1` otherwise
   * (inside a block). For callers that scan every frame (the ASI direct-map allow lists).
   */
  sameStateEnd(pfn: number): number {
    const sec = Math.floor(pfn / SECTION_PFNS);
    if (!(sec >= 0 && sec < this.sectionCount)) return pfn + 1;
    const base = sec * SECTION_PFNS;
    const slot = this.secSlot[sec];
    if (slot < 0) {
      let n = sec + 1;
      while (n < this.sectionCount && this.secSlot[n] < 0) n++;
      return n * SECTION_PFNS;
    }
    const state = this.slots[slot].state;
    let l = pfn - base;
    const st = state[l];
    if (st & ST_USED) return pfn + (1 << (st & ST_ORDER_MASK));
    if (st !== ST_UNUSABLE && (st & ST_FREE) === 0) return pfn + 1;
    // Free blocks and unusable frames alike: class CLASS_FREE, owner -1.
    while (l < SECTION_PFNS) {
      const x = state[l];
      if (x & ST_FREE) l += 1 << (x & ST_ORDER_MASK);
      else if (x === ST_UNUSABLE) l++;
      else break;
    }
    return base + l;
  }

  /** Whether the frame is usable RAM (inside RAM and outside every reserved range). */
  isUsable(pfn: number): boolean {
    const sec = Math.floor(pfn / SECTION_PFNS);
    if (!(sec >= 0 && sec < this.sectionCount)) return false;
    const kind = this.secKind[sec];
    if (kind === SEC_PRISTINE) return true;
    if (kind === SEC_HOLE) return false;
    return this.slots[this.secSlot[sec]].state[pfn - sec * SECTION_PFNS] !== ST_UNUSABLE;
  }

  // -- counts ---------------------------------------------------------------------------------

  /** Free blocks of this order (what /proc/buddyinfo shows per order, summed over zones). */
  freeBlocks(order: number): number {
    let n = this.freeCount[order];
    if (order === MAX_BLOCK_ORDER) {
      for (let z = 0; z < 2; z++) n += (this.pristine[z].length - this.pristineNext[z]) * BLOCKS_PER_SECTION;
    }
    return n;
  }

  get freePages(): number {
    let n = 0;
    for (let o = 0; o < MAX_ORDER; o++) n += this.freeBlocks(o) * (1 << o);
    return n;
  }

  get allocatedPages(): number {
    return this.allocated;
  }

  /** Bytes of bookkeeping currently held (typed arrays). */
  get bookkeepingBytes(): number {
    return this.slots.reduce((n, s) => n + s.bytes, 0) + this.secKind.byteLength + this.secSlot.byteLength +
      this.secNext.byteLength + this.secPrev.byteLength + this.pristine.reduce((n, a) => n + a.byteLength, 0);
  }

  get materialisedSections(): number {
    return this.slots.length;
  }

  /** Every free block as [pfn, order], ascending (for tests and dumps; pristine sections included). */
  freeBlockList(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let sec = 0; sec < this.sectionCount; sec++) {
      const kind = this.secKind[sec];
      if (kind === SEC_PRISTINE) {
        for (let b = 0; b < BLOCKS_PER_SECTION; b++) out.push([sec * SECTION_PFNS + (b << MAX_BLOCK_ORDER), MAX_BLOCK_ORDER]);
      } else if (kind === SEC_LIVE) {
        const s = this.slots[this.secSlot[sec]];
        for (let l = 0; l < SECTION_PFNS; l++) if (s.state[l] & ST_FREE) out.push([sec * SECTION_PFNS + l, s.state[l] & ST_ORDER_MASK]);
      }
    }
    return out;
  }

  /** Every allocated block as [pfn, order], ascending. */
  allocatedBlockList(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const s of [...this.slots].sort((a, b) => a.num - b.num)) {
      for (let l = 0; l < SECTION_PFNS; l++) if (s.state[l] & ST_USED) out.push([s.num * SECTION_PFNS + l, s.state[l] & ST_ORDER_MASK]);
    }
    return out;
  }
}

function zoneOfSection(sec: number): number {
  return sec * SECTION_PFNS < DMA32_END_PFN ? ZONE_DMA32 : ZONE_NORMAL;
}

/** get_order(): the smallest order whose block holds `bytes` (include/asm-generic/getorder.h). */
export function getOrder(bytes: number): number {
  let o = 0;
  while (PAGE_SIZE * 2 ** o < bytes) o++;
  return o;
}
