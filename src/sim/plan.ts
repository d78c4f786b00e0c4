/**
 * A Plan is a footprint (sim/footprints.ts) resolved for one task on one hardware thread: the
 * kernel text pages rebased by the KASLR slide, and for each data touch the actual objects of
 * the world it may land in (the running tenant's, the previous task's, this CPU's per-CPU area,
 * or kernel-global ones), as VA halves in typed arrays; sim/touch.ts runs it.
 *
 * Which lines of an object (assumptions, not in the footprint table): a small object (< 4 KiB)
 * from its first line (the hot fields come first); a page or buffer from a line drawn from the
 * task's PRNG, wrapping; a kernel stack from its top (stacks grow down); a CPU's per-CPU area
 * from a line of its first page: the hot per-CPU variables the footprints name (pcpu_hot,
 * irq_stat, current_vmcs, cpu_tlbstate) are packed together, and the 2022 RFC moved the ones
 * its exit paths use into a not-sensitive per-CPU section, mapped at each unit's start here
 * (google-asi-2022.ts) — a random line of the whole unit would fault on data the RFC annotated. When several objects
 * are candidates (declared objects of the kind, or a few pages), one is drawn per touch.
 * Module text (kvm.ko, kvm-intel.ko: `modulePages`) is not in the kernel model and is not
 * translated.
 */
import { ACCESS_FETCH } from '../x86/bits.ts';
import type { Footprint } from './footprints.ts';
import type { ObjRef, TenantRt, World } from './world.ts';

/**
 * The reads shmem_file_read_iter() serves (a tmpfs file's read_iter: read, pread64 and the vector
 * forms), whose page-cache copy the Aug 2025 branch does through the ephmap (mm/shmem.c).
 */
const EPHMAP_READS: ReadonlySet<string> = new Set(['syscall:read', 'syscall:pread64', 'syscall:readv', 'syscall:preadv', 'syscall:preadv2']);

export const A_READ = 0;
export const A_WRITE = 1;
export const A_RW = 2;
const M_FIRST = 0;
export const M_RANDOM = 1;
export const M_TOP = 2;
export const M_HOT_PAGE = 3;
export const LINES_PER_PAGE = 64;

/** Why a touch happened, for the ASI exit report: one row per text page and per candidate object. */
export class Reasons {
  readonly key: string[] = [];
  readonly part: string[] = [];
  readonly what: string[] = [];
  readonly va: bigint[] = [];
  /** Tenant index of the task whose plan the reason belongs to. */
  readonly tenant: number[] = [];
  counts = new Int32Array(64);
  /** The first faulting VA seen per reason (halves), for checks. */
  faultLo = new Float64Array(64);
  faultHi = new Float64Array(64);

  add(key: string, part: string, what: string, va: bigint, tenant: number): number {
    const id = this.key.length;
    this.tenant.push(tenant);
    this.key.push(key);
    this.part.push(part);
    this.what.push(what);
    this.va.push(va);
    if (id >= this.counts.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => { const b = new (a.constructor as new (n: number) => T)(a.length * 2); b.set(a); return b; };
      this.counts = grow(this.counts);
      this.faultLo = grow(this.faultLo);
      this.faultHi = grow(this.faultHi);
    }
    return id;
  }
}

export class Plan {
  readonly nText: number;
  readonly textLo: Float64Array;
  readonly textHi: Int32Array;
  readonly textReason: Int32Array;
  /** The text pages' low halves as int32 and their access kind (fetch), for Mmu.translateBatch. */
  readonly textLo32: Int32Array;
  readonly textAccess: Uint8Array;
  /** The most page segments a run of the data touches can have (Toucher's scratch arrays). */
  readonly maxSegments: number;
  readonly nData: number;
  readonly access: Uint8Array;
  readonly lines: Int32Array;
  readonly candStart: Int32Array;
  readonly candCount: Int32Array;
  readonly candLo: Float64Array;
  readonly candHi: Int32Array;
  readonly candLines: Int32Array;
  readonly candMode: Uint8Array;
  readonly candReason: Int32Array;
  /** Every candidate object, in candidate order. */
  readonly objects: readonly ObjRef[];
  /**
   * Per data touch: 1 when the ephmap serves it in the restricted space (asi/ephmap.ts): a tmpfs
   * read (what_if ephmap-tmpfs) or a fresh page zeroed (what_if ephmap-zeroing); the touch's
   * access decides whether the slot's PTE is writable.
   */
  readonly ephmap: Uint8Array;
  readonly anyEphmap: boolean;
  /** Per candidate: its physical address when it is a direct-map page (the page the ephmap maps), else -1. */
  readonly candPa: Float64Array;

  constructor(readonly fp: Footprint, text: bigint[], data: { access: number; lines: number; cands: ObjRef[]; ephmap: boolean }[], reasons: Reasons, tenant: number, directMapBase: bigint) {
    this.nText = text.length;
    this.textLo = new Float64Array(text.length);
    this.textHi = new Int32Array(text.length);
    this.textReason = new Int32Array(text.length);
    text.forEach((va, i) => {
      this.textLo[i] = Number(va & 0xffffffffn);
      this.textHi[i] = Number(BigInt.asIntN(32, va >> 32n));
      this.textReason[i] = reasons.add(fp.key, 'text', `kernel text page 0x${BigInt.asUintN(64, va).toString(16)}`, va, tenant);
    });
    this.textLo32 = Int32Array.from(this.textLo, (x) => x | 0);
    this.textAccess = new Uint8Array(text.length).fill(ACCESS_FETCH);
    // A touch of n lines crosses at most ceil(n / 64) page boundaries, and one more where it wraps.
    this.maxSegments = data.reduce((a, d) => a + Math.ceil(d.lines / LINES_PER_PAGE) + 2, 0);
    this.nData = data.length;
    this.access = Uint8Array.from(data, (d) => d.access);
    this.lines = Int32Array.from(data, (d) => d.lines);
    this.candStart = new Int32Array(data.length);
    this.candCount = new Int32Array(data.length);
    const all: { o: ObjRef; k: number }[] = [];
    data.forEach((d, k) => {
      this.candStart[k] = all.length;
      this.candCount[k] = d.cands.length;
      for (const o of d.cands) all.push({ o, k });
    });
    this.candLo = Float64Array.from(all, (x) => Number(BigInt.asUintN(64, x.o.va) & 0xffffffffn));
    this.candHi = Int32Array.from(all, (x) => Number(BigInt.asIntN(32, BigInt.asUintN(64, x.o.va) >> 32n)));
    this.candLines = Int32Array.from(all, (x) => Math.max(1, Math.ceil(x.o.size / 64)));
    this.candMode = Uint8Array.from(all, (x) => (x.o.kind === 'kernel-stack' ? M_TOP : x.o.kind === 'percpu' ? M_HOT_PAGE : x.o.size >= 4096 ? M_RANDOM : M_FIRST));
    this.candReason = Int32Array.from(all, (x) => reasons.add(fp.key, x.o.kind, x.o.what, x.o.va, tenant));
    this.objects = all.map((x) => x.o);
    this.ephmap = Uint8Array.from(data, (d) => (d.ephmap ? 1 : 0));
    this.anyEphmap = data.some((d) => d.ephmap);
    this.candPa = Float64Array.from(all, (x) => (data[x.k].ephmap && x.o.va >= directMapBase ? Number(x.o.va - directMapBase) : -1));
  }
}

/** Resolve footprint `fp` for a task of `tenant` on CPU `cpu`; `prev` is the tenant switched away from (context switch). */
export function buildPlan(w: World, fp: Footprint, tenant: TenantRt, prev: TenantRt, cpu: number, reasons: Reasons): Plan {
  const eph = w.iso.whatIf.includes('ephmap-tmpfs') && EPHMAP_READS.has(fp.key);
  const zero = w.iso.whatIf.includes('ephmap-zeroing');
  const text = fp.text.pages.map((p) => BigInt.asIntN(64, p + w.textSlide));
  const data = fp.data.map((d) => {
    let cands: ObjRef[] | undefined;
    if (d.kind === 'percpu') cands = [w.percpu[cpu]];
    else if (d.scope === 'global' || d.kind === 'kernel-global') cands = w.globals.get(d.kind) ?? tenant.objs.get(d.kind);
    else if (d.seq !== undefined && (tenant.sized.get(d.kind)?.length ?? 0) > 0) { const l = tenant.sized.get(d.kind)!; cands = [l[d.seq % l.length]]; }
    else cands = (d.scope === 'previous' ? prev : tenant).objs.get(d.kind) ?? w.globals.get(d.kind);
    if (cands === undefined || cands.length === 0) throw new RangeError(`footprint ${fp.key}: no ${d.kind} object for tenant ${tenant.spec.name}`);
    const ephmap = (eph && d.kind === 'page-cache' && d.access === 'read') || (zero && d.kind === 'fresh-page' && d.access === 'write');
    return { access: d.access === 'read' ? A_READ : d.access === 'write' ? A_WRITE : A_RW, lines: d.lines, cands, ephmap };
  });
  return new Plan(fp, text, data, reasons, tenant.index, w.sys.layout.addrs.page_offset_base);
}
