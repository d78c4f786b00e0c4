/**
 * One boot per distinct kernel, cloned for every isolation entry that boots it (issue 16).
 *
 * buildWorld() boots a kernel model (linux/kernel.ts bootKernel(): the image, the direct map with
 * its set_memory_*() splits, PTI's user copy, the fixmap, ESPFIX, …) for each isolation entry,
 * and that boot is ~70% of building a small world. Entries often boot the same kernel: the same
 * options (PTI on or off, the ASI design's global-kernel rule, the image tail) with only their
 * mitigations' runtime state differing. bootKernel() is a function of its options alone, so the
 * first boot with a set of options is kept, never handed out, and every entry gets a deep copy
 * of it (its PhysMemory frames, page tables and records): what it would have booted itself.
 * bench/sim.ts and test/sim/batch-boot.test.ts compare reports built both ways.
 *
 * The copy keeps object identity within the model (two references to one object stay one, a
 * typed array's views of one ArrayBuffer stay views of one copy). The layout (linux/layout.ts:
 * region tables and the lookups that close over them, never written after boot) is shared, not
 * copied. The one function with state, the boot-time page-table allocator (CpaEnv.pt), is nothing called
 * after boot; in a copy it throws rather than allocate from the original's state.
 * Captures (kernel.capture) are read from files and not cached.
 */
import { bootKernel, type KernelModel, type KernelOptions } from '../linux/kernel.ts';

/** Kernels kept (each a few hundred KiB): more distinct boots than this in a process boot again. */
const MAX_KEPT = 16;
const kept = new Map<string, KernelModel>();
let enabled = true;

/** Turn the cache off (tests compare against booting every entry). */
export function useBootCache(on: boolean): void {
  enabled = on;
  kept.clear();
}

/** How many kernels are kept (tests). */
export function keptKernels(): number {
  return kept.size;
}

/** bootKernel(opts), or a copy of the kernel an earlier call booted with the same options. */
export function bootKernelCached(opts: KernelOptions): KernelModel {
  if (!enabled) return bootKernel(opts);
  const key = JSON.stringify(opts, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
  let k = kept.get(key);
  if (k === undefined) {
    k = bootKernel(opts);
    if (kept.size >= MAX_KEPT) kept.delete(kept.keys().next().value!);
    kept.set(key, k);
  }
  const c = deepCopy(k, [k.layout]);
  // PageTables' `alloc` (x86/pgtable.ts) is private: set through the copy's own property.
  Object.defineProperty(c.cpa.pt, 'alloc', { value: noAllocAfterBoot });
  return c;
}

function noAllocAfterBoot(): never {
  throw new Error('boot-cache: a copied kernel model has no boot-time page-table allocator (nothing may call it after boot)');
}

type TypedArray = Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array | BigInt64Array | BigUint64Array;

/**
 * A deep copy of `root` that keeps identity and prototypes (class instances stay instances);
 * the objects in `shared`, and functions, are referenced, not copied.
 */
export function deepCopy<T>(root: T, shared: readonly object[] = []): T {
  const seen = new Map<object, unknown>(shared.map((o) => [o, o]));
  const buffers = new Map<ArrayBufferLike, ArrayBuffer>();
  const buffer = (b: ArrayBufferLike): ArrayBuffer => {
    let c = buffers.get(b);
    if (c === undefined) { c = (b as ArrayBuffer).slice(0); buffers.set(b, c); }
    return c;
  };
  const copy = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const got = seen.get(v);
    if (got !== undefined) return got;
    if (ArrayBuffer.isView(v)) {
      if (v instanceof DataView) { const d = new DataView(buffer(v.buffer), v.byteOffset, v.byteLength); seen.set(v, d); return d; }
      const t = v as TypedArray;
      const C = t.constructor as new (b: ArrayBuffer, o: number, n: number) => TypedArray;
      const c = new C(buffer(t.buffer), t.byteOffset, t.length);
      seen.set(v, c);
      return c;
    }
    if (v instanceof ArrayBuffer) { const c = buffer(v); seen.set(v, c); return c; }
    if (v instanceof Map) {
      const m = new Map();
      seen.set(v, m);
      for (const [k, x] of v) m.set(copy(k), copy(x));
      return m;
    }
    if (v instanceof Set) {
      const s = new Set();
      seen.set(v, s);
      for (const x of v) s.add(copy(x));
      return s;
    }
    if (Array.isArray(v)) {
      const a: unknown[] = new Array(v.length);
      seen.set(v, a);
      for (let i = 0; i < v.length; i++) a[i] = copy(v[i]);
      return a;
    }
    const o = Object.create(Object.getPrototypeOf(v)) as object;
    seen.set(v, o);
    for (const key of Reflect.ownKeys(v)) {
      const d = Object.getOwnPropertyDescriptor(v, key)!;
      if ('value' in d) d.value = copy(d.value);
      Object.defineProperty(o, key, d);
    }
    return o;
  };
  return copy(root) as T;
}
