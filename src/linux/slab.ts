/**
 * SLUB-like slab caches placed in buddy pages (mm/slub.c, mm/slab_common.c, Linux 6.1).
 *
 * Geometry is computed as SLUB does, so objects-per-slab and slab order match /proc/slabinfo:
 *  - calculate_alignment(): SLAB_HWCACHE_ALIGN uses the cache line (64 B), halved while the
 *    object fits in half of it; at least ARCH_SLAB_MINALIGN (8); rounded to sizeof(void *);
 *  - kmalloc caches: create_boot_cache() aligns power-of-two sizes naturally, else
 *    ARCH_KMALLOC_MINALIGN (8);
 *  - calculate_sizes(): size = ALIGN(object_size, 8); the free pointer sits in the middle of
 *    the object, or after it (size += 8) for caches with a constructor or SLAB_TYPESAFE_BY_RCU;
 *    then ALIGN(size, align) (no debug flags: CONFIG_SLUB_DEBUG_ON is off in Debian 6.1);
 *  - calculate_order() / calc_slab_order(): min_objects = 4 * (fls(nr_cpus) + 1),
 *    slub_max_order = PAGE_ALLOC_COSTLY_ORDER = 3 (the capture's boot log: "SLUB: HWalign=64,
 *    Order=0-3, MinObjects=0"), fractions 16, 8, 4 of leftover, then fallbacks;
 *  - order_objects() = (PAGE_SIZE << order) / size; a slab whose order cannot be allocated
 *    falls back to s->min = get_order(size) (allocate_slab());
 *  - kmalloc size classes (include/linux/slab.h, mm/slab_common.c kmalloc_info[] and
 *    size_index[]): 8, 16, 32, 64, 96, 128, 192, 256, 512, 1k, 2k, 4k, 8k (KMALLOC_MIN_SIZE 8,
 *    KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1 for SLUB), plus the kmalloc-cg-* twins used for
 *    __GFP_ACCOUNT allocations (CONFIG_MEMCG_KMEM=y in the capture's config);
 *  - freeing an object puts it at the head of its slab's free list; an empty slab is given back
 *    to the buddy allocator once its cache keeps min_partial = clamp(ilog2(size)/2, 5, 10)
 *    partial slabs (__slab_free(), kmem_cache_open()).
 * Not modelled: per-CPU slabs, cache merging (CONFIG_SLAB_MERGE_DEFAULT would merge some
 * caches of equal geometry), NUMA nodes, debug metadata. CONFIG_SLAB_FREELIST_RANDOM is
 * modelled when an rng is given (shuffle_freelist(): a per-cache random permutation, a random
 * start per slab); without one the free list runs in address order.
 *
 * Sensitivity: an object's class is its slab's class; a cache keeps separate slabs per class,
 * and per owner for locally non-sensitive objects (the 2022 RFC's per-process child caches), so
 * classes, and local memory of different owners, never share a page.
 */
import { BuddyAllocator, OutOfMemoryError, PAGE_SIZE, USE_SLAB, getOrder } from './buddy.ts';
import { KERNEL_OWNER, type Owners } from './owners.ts';
import { CLASS_LOCAL_NONSENSITIVE, classify, className, getModel, type ModelName, type SensitivityModel } from './sensitivity.ts';
import type { PhysMemory } from '../phys/memory.ts';

export const SLUB_MAX_ORDER = 3; // PAGE_ALLOC_COSTLY_ORDER (mm/slub.c slub_max_order)
export const MAX_OBJS_PER_PAGE = 32767; // mm/slub.c
export const CACHE_LINE = 64; // cache_line_size() on x86-64
export const KMALLOC_MAX_CACHE_SIZE = 8192; // 1 << KMALLOC_SHIFT_HIGH (SLUB: PAGE_SHIFT + 1)
export const KMALLOC_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192] as const;

export interface CacheDef {
  name: string;
  /** object_size as passed to kmem_cache_create(). */
  objectSize: number;
  /** The align argument (0 = none). */
  align?: number;
  hwcacheAlign?: boolean;
  /** Has a constructor: the free pointer goes after the object. */
  ctor?: boolean;
  typesafeByRcu?: boolean;
  /** Allocation kind for the sensitivity model (default: the name). */
  kind?: string;
  /** Where object_size comes from. */
  source: string;
}

const fls = (x: number): number => (x === 0 ? 0 : 32 - Math.clz32(x));
const alignUp = (x: number, a: number): number => Math.ceil(x / a) * a;

export function orderObjects(order: number, size: number): number {
  return Math.floor((PAGE_SIZE * 2 ** order) / size);
}

/** mm/slub.c calc_slab_order(). Returns maxOrder + 1 when nothing fits. */
export function calcSlabOrder(size: number, minObjects: number, maxOrder: number, fractLeftover: number, minOrder = 0): number {
  if (orderObjects(minOrder, size) > MAX_OBJS_PER_PAGE) return getOrder(size * MAX_OBJS_PER_PAGE) - 1;
  let order = Math.max(minOrder, getOrder(minObjects * size));
  for (; order <= maxOrder; order++) {
    const slabSize = PAGE_SIZE * 2 ** order;
    if (slabSize % size <= Math.floor(slabSize / fractLeftover)) break;
  }
  return order;
}

/** mm/slub.c calculate_order() with slub_min_objects = 0 (computed from the CPU count). */
export function calculateOrder(size: number, cpus: number, maxOrder = SLUB_MAX_ORDER): number {
  let minObjects = 4 * (fls(cpus) + 1);
  minObjects = Math.min(minObjects, orderObjects(maxOrder, size));
  while (minObjects > 1) {
    for (let fraction = 16; fraction >= 4; fraction = Math.floor(fraction / 2)) {
      const order = calcSlabOrder(size, minObjects, maxOrder, fraction);
      if (order <= maxOrder) return order;
    }
    minObjects--;
  }
  let order = calcSlabOrder(size, 1, maxOrder, 1);
  if (order <= maxOrder) return order;
  order = calcSlabOrder(size, 1, 11, 1); // MAX_ORDER
  if (order < 11) return order;
  throw new RangeError(`no slab order fits objects of ${size} bytes`);
}

/** mm/slab_common.c calculate_alignment(). */
export function calculateAlignment(hwcacheAlign: boolean, align: number, size: number): number {
  if (hwcacheAlign) {
    let ralign = CACHE_LINE;
    while (size <= ralign / 2) ralign /= 2;
    align = Math.max(align, ralign);
  }
  align = Math.max(align, 8); // arch_slab_minalign(): __alignof__(unsigned long long)
  return alignUp(align, 8);
}

export interface CacheGeometry {
  /** s->size: the slot size (slabinfo's objsize). */
  size: number;
  /** Free pointer offset. */
  offset: number;
  align: number;
  order: number;
  /** Objects per slab at `order` (slabinfo's objperslab). */
  objects: number;
  /** s->min: the fallback order. */
  minOrder: number;
}

/** mm/slub.c calculate_sizes() for a cache without debug flags. */
export function cacheGeometry(def: CacheDef, cpus: number): CacheGeometry {
  const align = calculateAlignment(def.hwcacheAlign ?? false, def.align ?? 0, def.objectSize);
  let size = alignUp(def.objectSize, 8);
  let offset: number;
  if (def.typesafeByRcu || def.ctor) {
    offset = size;
    size += 8;
  } else {
    offset = Math.floor(def.objectSize / 2 / 8) * 8; // ALIGN_DOWN(object_size / 2, sizeof(void *))
  }
  size = alignUp(size, align);
  const order = calculateOrder(size, cpus);
  return { size, offset, align, order, objects: orderObjects(order, size), minOrder: getOrder(size) };
}

function kmallocName(n: number, cg: boolean): string {
  const s = n >= 1024 ? `${n / 1024}k` : String(n);
  return cg ? `kmalloc-cg-${s}` : `kmalloc-${s}`;
}

/** kmalloc caches as create_kmalloc_caches() makes them. */
export function kmallocCacheDefs(): CacheDef[] {
  const defs: CacheDef[] = [];
  for (const cg of [false, true]) {
    for (const n of KMALLOC_SIZES) {
      // create_boot_cache(): natural alignment for power-of-two sizes, else ARCH_KMALLOC_MINALIGN.
      defs.push({ name: kmallocName(n, cg), objectSize: n, align: (n & (n - 1)) === 0 ? n : 8, kind: 'kmalloc', source: 'mm/slab_common.c kmalloc_info[]' });
    }
  }
  return defs;
}

/** The kmalloc size class of a request (mm/slab_common.c size_index[] and fls()). */
export function kmallocSizeClass(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes <= 0) throw new RangeError(`kmalloc of ${bytes} bytes`);
  if (bytes > KMALLOC_MAX_CACHE_SIZE) throw new RangeError(`kmalloc of ${bytes} bytes exceeds KMALLOC_MAX_CACHE_SIZE (${KMALLOC_MAX_CACHE_SIZE}); the kernel takes such requests from the page allocator (kmalloc_large)`);
  if (bytes <= 8) return 8;
  if (bytes <= 16) return 16;
  if (bytes <= 32) return 32;
  if (bytes <= 64) return 64;
  if (bytes <= 96) return 96;
  if (bytes <= 128) return 128;
  if (bytes <= 192) return 192;
  return 2 ** fls(bytes - 1);
}

const EST = 'assumption: estimated for a Debian 6.1 x86-64 config (no slabinfo of that kernel was available)';
const HTOP = 'x86-64 /proc/slabinfo quoted in github.com/htop-dev/htop/issues/821 (Linux 5.x, 2021): objsize';
/** Named caches. object_size is the struct size the kernel passes; sources say how it is known. */
export const NAMED_CACHES: readonly CacheDef[] = [
  { name: 'task_struct', objectSize: 7616, align: 64, source: `${EST}: arch_task_struct_size = sizeof(task_struct) with the 4 KiB fpregs padding replaced by an 832-byte XSAVE area (fpu__init_task_struct_size); align ARCH_MIN_TASKALIGN = L1_CACHE_BYTES (kernel/fork.c)` },
  { name: 'cred_jar', objectSize: 184, hwcacheAlign: true, source: `${EST}: sizeof(struct cred); SLAB_HWCACHE_ALIGN (kernel/cred.c) gives the 192-byte objects usually seen` },
  { name: 'mm_struct', objectSize: 1344, hwcacheAlign: true, source: `${EST}: sizeof(mm_struct) + cpumask_size() (kernel/fork.c proc_caches_init)` },
  { name: 'vm_area_struct', objectSize: 200, source: `${EST}: KMEM_CACHE(vm_area_struct, SLAB_PANIC|SLAB_ACCOUNT)` },
  { name: 'files_cache', objectSize: 704, hwcacheAlign: true, source: `${EST}: sizeof(files_struct) with NR_OPEN_DEFAULT 64` },
  { name: 'signal_cache', objectSize: 1152, hwcacheAlign: true, source: EST },
  { name: 'sighand_cache', objectSize: 2088, hwcacheAlign: true, ctor: true, typesafeByRcu: true, source: `${EST}: SLAB_TYPESAFE_BY_RCU + sighand_ctor (kernel/fork.c) give the 2112-byte objects of slabinfo(5)` },
  { name: 'dentry', objectSize: 192, hwcacheAlign: true, source: `${EST}: dentry objects are 0.19K, 42 per 2-page slab, in a public Ubuntu slabtop` },
  { name: 'inode_cache', objectSize: 600, ctor: true, source: `${EST}: sizeof(struct inode) + init_once ctor (fs/inode.c)` },
  { name: 'skbuff_head_cache', objectSize: 232, hwcacheAlign: true, source: `${EST}: sizeof(struct sk_buff) = 232 on x86-64 (net/core/skbuff.c skb_init)` },
  { name: 'sock_inode_cache', objectSize: 768, hwcacheAlign: true, ctor: true, source: `${EST}: sizeof(struct socket_alloc) + init_once (net/socket.c)` },
  { name: 'key_jar', objectSize: 224, hwcacheAlign: true, source: `${EST}: sizeof(struct key) (security/keys/key.c)` },
  { name: 'kvm_vcpu', objectSize: 8880, align: 16, source: `${HTOP} 8880 (sizeof(struct vcpu_vmx)), 3 objects per 8-page slab` },
  { name: 'x86_emulator', objectSize: 2672, align: 16, source: `${HTOP} 2672` },
  { name: 'kvm_mmu_page_header', objectSize: 184, source: `${HTOP} 184` },
  { name: 'radix_tree_node', objectSize: 576, ctor: true, source: `${EST}: sizeof(radix_tree_node) with 64 slots + radix_tree_node_ctor (lib/radix-tree.c)` },
  { name: 'eventpoll_epi', objectSize: 128, hwcacheAlign: true, source: EST },
  { name: 'eventpoll_pwq', objectSize: 72, source: EST },
];

export interface SlabObject {
  id: number;
  pa: number;
  /** Direct-map address: page_offset_base + pa. */
  va: bigint;
  /** The cache's object_size (for kmalloc: the size class). */
  size: number;
  cache: string;
  owner: number;
  cls: number;
}

interface Cache {
  id: number;
  name: string;
  kind: string;
  def: CacheDef;
  geo: CacheGeometry;
  minPartial: number;
  /** Per slab key (class, owner): head of the list of partial slabs, and its length. */
  partial: Map<number, number>;
  partialCount: Map<number, number>;
  /** Released slab records, for reuse. */
  dead: number[];
  randomSeq: Int32Array | null;
  activeObjs: number;
  slabs: number;
}

export interface SlabOptions {
  buddy: BuddyAllocator;
  owners: Owners;
  model: ModelName | SensitivityModel;
  /** page_offset_base: start of the direct map (0xffff888000000000 without KASLR, 4-level). */
  pageOffsetBase: bigint;
  /** CPU count that sizes slabs (num_present_cpus(), or nr_cpu_ids when that is <= 1). */
  cpus?: number;
  /** Backing memory for write()/read(). */
  mem?: PhysMemory;
  /** A seeded PRNG in [0, 1) to model CONFIG_SLAB_FREELIST_RANDOM. */
  rng?: () => number;
}

/** A typed array with room for `need` elements (doubling), contents kept. */
function grow<T extends Int32Array | Uint16Array | Uint8Array | Float64Array>(a: T, need: number): T {
  if (need <= a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, a.length * 2, 64));
  b.set(a);
  return b;
}

export class SlabAllocator {
  readonly model: SensitivityModel;
  readonly cpus: number;
  private readonly buddy: BuddyAllocator;
  private readonly owners: Owners;
  private readonly base: bigint;
  private readonly baseHi: number;
  private readonly baseLo: number;
  private readonly mem?: PhysMemory;
  private readonly rng?: () => number;
  private readonly caches: Cache[] = [];
  private readonly byName = new Map<string, Cache>();
  // Slab columns.
  private nSlabs = 0;
  private slabPfn = new Float64Array(0);
  private slabCache = new Int32Array(0);
  private slabCls = new Uint8Array(0);
  private slabKey = new Int32Array(0);
  private slabOrder = new Uint8Array(0);
  private slabObjs = new Int32Array(0);
  private slabFirst = new Int32Array(0);
  private slabInuse = new Int32Array(0);
  private slabFree = new Int32Array(0);
  private slabNext = new Int32Array(0);
  private slabPrev = new Int32Array(0);
  private slabLive = new Uint8Array(0);
  // Object columns.
  private nObjs = 0;
  private objSlab = new Int32Array(0);
  private objOwner = new Uint16Array(0);
  private objLive = new Uint8Array(0);
  private objNext = new Int32Array(0);

  constructor(opts: SlabOptions) {
    this.buddy = opts.buddy;
    this.owners = opts.owners;
    this.model = getModel(opts.model);
    this.cpus = opts.cpus ?? 1;
    this.base = BigInt.asUintN(64, opts.pageOffsetBase);
    this.baseHi = Number(this.base >> 32n);
    this.baseLo = Number(this.base & 0xffffffffn);
    this.mem = opts.mem;
    this.rng = opts.rng;
    for (const d of [...kmallocCacheDefs(), ...NAMED_CACHES]) this.createCache(d);
  }

  /** kmem_cache_create(): add a cache; returns its id. */
  createCache(def: CacheDef): number {
    if (this.byName.has(def.name)) throw new RangeError(`slab cache '${def.name}' exists`);
    const geo = cacheGeometry(def, this.cpus);
    let randomSeq: Int32Array | null = null;
    if (this.rng) {
      // freelist_randomize(): Fisher-Yates over oo_objects(s->oo) indices.
      randomSeq = new Int32Array(geo.objects);
      for (let i = 0; i < geo.objects; i++) randomSeq[i] = i;
      for (let i = geo.objects - 1; i > 0; i--) {
        const r = Math.floor(this.rng() * (i + 1));
        const t = randomSeq[i];
        randomSeq[i] = randomSeq[r];
        randomSeq[r] = t;
      }
    }
    const c: Cache = {
      id: this.caches.length, name: def.name, kind: def.kind ?? def.name, def, geo,
      minPartial: Math.max(5, Math.min(10, Math.floor(Math.floor(Math.log2(geo.size)) / 2))),
      partial: new Map(), partialCount: new Map(), dead: [], randomSeq, activeObjs: 0, slabs: 0,
    };
    this.caches.push(c);
    this.byName.set(def.name, c);
    return c.id;
  }

  cacheInfo(cache: string | number): { name: string; kind: string; objectSize: number; geometry: CacheGeometry; source: string } {
    const c = this.cache(cache);
    return { name: c.name, kind: c.kind, objectSize: c.def.objectSize, geometry: { ...c.geo }, source: c.def.source };
  }

  cacheNames(): string[] {
    return this.caches.map((c) => c.name);
  }

  private cache(ref: string | number): Cache {
    const c = typeof ref === 'number' ? this.caches[ref] : this.byName.get(ref);
    if (!c) throw new RangeError(`unknown slab cache '${ref}'`);
    return c;
  }

  /**
   * kmem_cache_alloc(): an object of `cache` for `owner`. Its class comes from the sensitivity
   * model for the cache's kind (or `opts.kind`), unless `opts.cls` forces one (a GFP flag).
   */
  alloc(cache: string | number, owner: number = KERNEL_OWNER, opts: { kind?: string; cls?: number } = {}): SlabObject {
    return this.objectInfo(this.allocId(cache, owner, opts))!;
  }

  /** As alloc(), returning only the object id (no record, no BigInt). */
  allocId(cache: string | number, owner: number = KERNEL_OWNER, opts: { kind?: string; cls?: number } = {}): number {
    const c = this.cache(cache);
    const cls = opts.cls ?? classify(this.model, opts.kind ?? c.kind, this.owners.get(owner));
    if (!this.model.classes.includes(cls)) throw new RangeError(`class ${className(cls)} is not used by model ${this.model.name}`);
    if (cls === CLASS_LOCAL_NONSENSITIVE && owner === KERNEL_OWNER) throw new RangeError('a locally non-sensitive object needs a non-kernel owner');
    const key = cls * 65536 + (cls === CLASS_LOCAL_NONSENSITIVE ? owner : 0);
    let slab = c.partial.get(key) ?? -1;
    if (slab < 0) slab = this.newSlab(c, cls, key);
    const obj = this.slabFree[slab];
    this.slabFree[slab] = this.objNext[obj];
    if (++this.slabInuse[slab] === this.slabObjs[slab]) this.unlinkPartial(c, slab);
    this.objLive[obj] = 1;
    this.objOwner[obj] = owner;
    c.activeObjs++;
    return obj;
  }

  /** kmalloc(): the object comes from the size class's kmalloc (or kmalloc-cg, with `account`) cache. */
  kmalloc(bytes: number, owner: number = KERNEL_OWNER, opts: { account?: boolean; kind?: string; cls?: number } = {}): SlabObject {
    const name = kmallocName(kmallocSizeClass(bytes), opts.account ?? false);
    return this.alloc(name, owner, { kind: opts.kind, cls: opts.cls });
  }

  /** kmem_cache_free() / kfree(). */
  free(objId: number): void {
    if (!(objId >= 0 && objId < this.nObjs) || this.objLive[objId] === 0) throw new Error(`free of slab object ${objId}: not allocated`);
    const slab = this.objSlab[objId];
    const c = this.caches[this.slabCache[slab]];
    this.objLive[objId] = 0;
    this.objNext[objId] = this.slabFree[slab];
    this.slabFree[slab] = objId;
    c.activeObjs--;
    const wasFull = this.slabInuse[slab] === this.slabObjs[slab];
    const inuse = --this.slabInuse[slab];
    if (wasFull) this.linkPartial(c, slab);
    if (inuse === 0 && (c.partialCount.get(this.slabKey[slab]) ?? 0) > c.minPartial) this.discardSlab(c, slab);
  }

  private newSlab(c: Cache, cls: number, key: number): number {
    const pageOwner = cls === CLASS_LOCAL_NONSENSITIVE ? key - cls * 65536 : KERNEL_OWNER;
    let order = c.geo.order;
    let pfn: number;
    try {
      pfn = this.buddy.alloc(order, pageOwner, cls, 'normal', USE_SLAB);
    } catch (e) {
      if (!(e instanceof OutOfMemoryError) || c.geo.minOrder >= order) throw e;
      order = c.geo.minOrder; // allocate_slab(): fall back to s->min
      pfn = this.buddy.alloc(order, pageOwner, cls, 'normal', USE_SLAB);
    }
    const objs = orderObjects(order, c.geo.size);
    let slab = -1;
    for (let i = c.dead.length - 1; i >= 0; i--) {
      if (this.slabObjs[c.dead[i]] === objs) {
        slab = c.dead[i];
        c.dead.splice(i, 1);
        break;
      }
    }
    if (slab < 0) slab = this.newSlabRecord(objs);
    this.slabPfn[slab] = pfn;
    this.slabCache[slab] = c.id;
    this.slabCls[slab] = cls;
    this.slabKey[slab] = key;
    this.slabOrder[slab] = order;
    this.slabInuse[slab] = 0;
    this.slabLive[slab] = 1;
    this.buddy.setTag(pfn, order, slab);
    // Build the free list (shuffle_freelist() when randomised).
    const first = this.slabFirst[slab];
    const seq = c.randomSeq;
    const pos = seq ? Math.floor(this.rng!() * seq.length) : 0;
    let prev = -1;
    for (let n = 0; n < (seq ? seq.length : objs); n++) {
      const idx = seq ? seq[(pos + n) % seq.length] : n;
      if (idx >= objs) continue; // a fallback-order slab holds fewer objects
      const obj = first + idx;
      this.objNext[obj] = -1;
      if (prev < 0) this.slabFree[slab] = obj;
      else this.objNext[prev] = obj;
      prev = obj;
    }
    this.linkPartial(c, slab);
    c.slabs++;
    return slab;
  }

  private newSlabRecord(objs: number): number {
    const s = this.nSlabs++;
    const n = this.nSlabs;
    this.slabPfn = grow(this.slabPfn, n);
    this.slabCache = grow(this.slabCache, n);
    this.slabCls = grow(this.slabCls, n);
    this.slabKey = grow(this.slabKey, n);
    this.slabOrder = grow(this.slabOrder, n);
    this.slabObjs = grow(this.slabObjs, n);
    this.slabFirst = grow(this.slabFirst, n);
    this.slabInuse = grow(this.slabInuse, n);
    this.slabFree = grow(this.slabFree, n);
    this.slabNext = grow(this.slabNext, n);
    this.slabPrev = grow(this.slabPrev, n);
    this.slabLive = grow(this.slabLive, n);
    this.slabObjs[s] = objs;
    this.slabFirst[s] = this.nObjs;
    const m = this.nObjs + objs;
    this.objSlab = grow(this.objSlab, m);
    this.objOwner = grow(this.objOwner, m);
    this.objLive = grow(this.objLive, m);
    this.objNext = grow(this.objNext, m);
    this.objSlab.fill(s, this.nObjs, m);
    this.nObjs = m;
    return s;
  }

  private discardSlab(c: Cache, slab: number): void {
    this.unlinkPartial(c, slab);
    this.buddy.free(this.slabPfn[slab], this.slabOrder[slab]);
    this.slabLive[slab] = 0;
    c.dead.push(slab);
    c.slabs--;
  }

  private linkPartial(c: Cache, slab: number): void {
    const key = this.slabKey[slab];
    const h = c.partial.get(key) ?? -1;
    this.slabNext[slab] = h;
    this.slabPrev[slab] = -1;
    if (h >= 0) this.slabPrev[h] = slab;
    c.partial.set(key, slab);
    c.partialCount.set(key, (c.partialCount.get(key) ?? 0) + 1);
  }

  private unlinkPartial(c: Cache, slab: number): void {
    const key = this.slabKey[slab];
    const n = this.slabNext[slab];
    const p = this.slabPrev[slab];
    if (p >= 0) this.slabNext[p] = n;
    else if (n >= 0) c.partial.set(key, n);
    else c.partial.delete(key);
    if (n >= 0) this.slabPrev[n] = p;
    c.partialCount.set(key, (c.partialCount.get(key) ?? 1) - 1);
  }

  // -- queries ----------------------------------------------------------------------------------

  objectInfo(objId: number): SlabObject | null {
    if (!(objId >= 0 && objId < this.nObjs) || this.objLive[objId] === 0) return null;
    const slab = this.objSlab[objId];
    const c = this.caches[this.slabCache[slab]];
    const pa = this.slabPfn[slab] * PAGE_SIZE + (objId - this.slabFirst[slab]) * c.geo.size;
    return { id: objId, pa, va: this.base + BigInt(pa), size: c.def.objectSize, cache: c.name, owner: this.objOwner[objId], cls: this.slabCls[slab] };
  }

  /** The live object whose slot holds physical address `pa`, or -1 (no allocation). */
  objectIdAtPa(pa: number): number {
    const pfn = Math.floor(pa / PAGE_SIZE);
    if (this.buddy.useOfPfn(pfn) !== USE_SLAB) return -1;
    const slab = this.buddy.tagOfPfn(pfn);
    if (slab < 0 || this.slabLive[slab] === 0) return -1;
    const idx = Math.floor((pa - this.slabPfn[slab] * PAGE_SIZE) / this.caches[this.slabCache[slab]].geo.size);
    if (idx >= this.slabObjs[slab]) return -1; // the slab's unused tail
    const obj = this.slabFirst[slab] + idx;
    return this.objLive[obj] ? obj : -1;
  }

  objectAtPa(pa: number): SlabObject | null {
    return this.objectInfo(this.objectIdAtPa(pa));
  }

  /** As objectIdAtPa() for a direct-map address given as u32 halves. */
  objectIdAtVa(vaLo: number, vaHi: number): number {
    const pa = (vaHi - this.baseHi) * 4294967296 + ((vaLo >>> 0) - this.baseLo);
    return pa >= 0 && pa < 2 ** 52 ? this.objectIdAtPa(pa) : -1;
  }

  objectAtVa(va: bigint): SlabObject | null {
    const off = BigInt.asUintN(64, va) - this.base;
    return off >= 0n && off < 1n << 52n ? this.objectAtPa(Number(off)) : null;
  }

  /** Every live object of an owner, in id order. */
  objectsOf(owner: number): SlabObject[] {
    const out: SlabObject[] = [];
    for (let i = 0; i < this.nObjs; i++) if (this.objLive[i] && this.objOwner[i] === owner) out.push(this.objectInfo(i)!);
    return out;
  }

  /** Every live object, in id order. */
  liveObjects(): SlabObject[] {
    const out: SlabObject[] = [];
    for (let i = 0; i < this.nObjs; i++) if (this.objLive[i]) out.push(this.objectInfo(i)!);
    return out;
  }

  /** Write bytes into an object (bounded by its object_size). */
  write(objId: number, bytes: Uint8Array, offset = 0): void {
    const o = this.objectInfo(objId);
    if (!o) throw new Error(`write to slab object ${objId}: not allocated`);
    if (!this.mem) throw new Error('write: the slab allocator was built without a PhysMemory');
    if (offset < 0 || offset + bytes.length > o.size) throw new RangeError(`write of ${bytes.length} bytes at +${offset} overflows a ${o.size}-byte ${o.cache} object`);
    this.mem.writeBytes(o.pa + offset, bytes);
  }

  read(objId: number, len?: number, offset = 0): Uint8Array {
    const o = this.objectInfo(objId);
    if (!o) throw new Error(`read of slab object ${objId}: not allocated`);
    if (!this.mem) throw new Error('read: the slab allocator was built without a PhysMemory');
    const n = len ?? o.size - offset;
    const out = new Uint8Array(n);
    this.mem.readBytes(o.pa + offset, out, 0, n);
    return out;
  }

  /** /proc/slabinfo-like rows. */
  slabinfo(): Array<{ name: string; activeObjs: number; numObjs: number; objsize: number; objPerSlab: number; pagesPerSlab: number; slabs: number }> {
    return this.caches.map((c) => {
      let numObjs = 0;
      for (let s = 0; s < this.nSlabs; s++) if (this.slabLive[s] && this.slabCache[s] === c.id) numObjs += this.slabObjs[s];
      return { name: c.name, activeObjs: c.activeObjs, numObjs, objsize: c.geo.size, objPerSlab: c.geo.objects, pagesPerSlab: 2 ** c.geo.order, slabs: c.slabs };
    });
  }

  /** The slab holding an object: its first PFN, order and object count (for checks and dumps). */
  slabOf(objId: number): { pfn: number; order: number; objects: number; cls: number } | null {
    if (!(objId >= 0 && objId < this.nObjs)) return null;
    const s = this.objSlab[objId];
    return this.slabLive[s] ? { pfn: this.slabPfn[s], order: this.slabOrder[s], objects: this.slabObjs[s], cls: this.slabCls[s] } : null;
  }
}
