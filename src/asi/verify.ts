/**
 * Checking a restricted space against the full tables, the system's allocations and the
 * design's own construction rule, by walking every leaf of the restricted root
 * (x86/leaves.ts). It tells two things apart:
 *
 * Model errors (`mismatches`, `forbidden`: `ok` is false, `kasi asi --verify` exits 1):
 *  1. a page mapped differently from the full space: another frame, or rights more permissive
 *     (writable, user, executable — SDM Vol. 3A 4.6.1 folding); the 2022 RFC's invariant:
 *     "each mapping is always the same as the corresponding mapping in the full kernel address
 *     space";
 *  2. an allocation the design does not mean to map through that kind of mapping
 *     (AsiDesign.permits()) on a page nothing in the design puts there (exposure.ts Placement:
 *     no allocation of the page is one it maps, and no region it maps whole covers it).
 *
 * Design exposures (`exposures`, each with a cause from exposure.ts; exit 0 unless asked):
 *  3. another tenant's data that is not globally non-sensitive, or sensitive data of no tenant
 *     of this context, reachable because of how the design works: page neighbours of what it
 *     maps, the image-tail alias, a region or class it maps whole.
 * Other tenants' globally non-sensitive memory is allowed and only counted (the designs
 * declare it harmless "even if it were to get leaked to any process or VM").
 */
import { forEachLeaf } from '../x86/leaves.ts';
import { CLASS_GLOBAL_NONSENSITIVE, className } from '../linux/sensitivity.ts';
import type { Allocation, System } from '../linux/system.ts';
import { Probe, probe, viaOf } from './restricted.ts';
import { Placement, bytesOnPage, EXPOSURE_CAUSES, type Exposure, type ExposureCause } from './exposure.ts';
import type { AsiContext, AsiDesign, MapVia, RestrictedSpace } from './types.ts';

export { EXPOSURE_CAUSES, type Exposure, type ExposureCause } from './exposure.ts';

const TWO32 = 4294967296;

export interface Finding {
  va: bigint;
  pa: number;
  why: string;
  alloc?: Allocation;
}

export interface VerifyResult {
  design: string;
  context: string;
  leaves: number;
  mappedPages: number;
  /** Model error: mapped differently from the full space (or not mapped there). */
  mismatches: Finding[];
  /** Model error: an allocation mapped where the design's own rule does not put it. */
  forbidden: Finding[];
  /** Design exposures, one per allocation and cause. */
  exposures: Exposure[];
  /** Exposures counted by cause (every cause listed). */
  exposuresByCause: Record<ExposureCause, number>;
  /** Distinct allocations reachable. */
  reached: number;
  /** Bytes of other tenants' globally non-sensitive allocations reachable (allowed; reported). */
  otherTenantGlobalBytes: number;
  /** No model error. */
  ok: boolean;
}

export interface Leaf { lo: number; hi: number; shift: number; pa: number; user: boolean; writable: boolean; xd: boolean }

export function collectLeaves(sys: System, root: number): Leaf[] {
  const out: Leaf[] = [];
  forEachLeaf(sys.mem, root, sys.levels, (lo, hi, shift, pa, _l, _h, _lv, user, writable, xd) => {
    out.push({ lo, hi, shift, pa, user, writable, xd });
  });
  return out;
}

/** An empty result for `design` and context `label`. */
export function emptyResult(design: string, label: string): VerifyResult {
  return {
    design, context: label, leaves: 0, mappedPages: 0, mismatches: [], forbidden: [], exposures: [],
    exposuresByCause: Object.fromEntries(EXPOSURE_CAUSES.map((c) => [c, 0])) as Record<ExposureCause, number>,
    reached: 0, otherTenantGlobalBytes: 0, ok: true,
  };
}

/**
 * The allocation half of the check (rules 2 and 3 of the header), page by page: every
 * allocation on a mapped page is either one the design means to map there (`intended`), a
 * neighbour of one (an exposure when harmful), or a model error. Results go into `res`.
 */
export class ReachCheck {
  private readonly place: Placement;
  private readonly forbidden = new Set<string>();
  private readonly exposures = new Map<string, Exposure>();
  private readonly counted = new Set<string>(); // exposure key + frame, and global-bytes key + frame: bytes once per frame
  private readonly reached = new Set<number>();

  constructor(private readonly sys: System, design: AsiDesign, ctx: AsiContext, private readonly res: VerifyResult) {
    this.place = new Placement(sys, design, ctx);
  }

  /**
   * The allocations `allocs` on the page at `va` (frame `pa`, mapping kind `via`), of which
   * `intended` are the design's; `intendedCause` is the cause when an intended one is another
   * tenant's (default: the class or region the design maps whole).
   */
  page(va: bigint, pa: number, via: MapVia, allocs: readonly Allocation[], intended: readonly Allocation[], intendedCause?: ExposureCause): void {
    const { sys, place, res, counted } = this;
    for (const a of allocs) {
      this.reached.add(a.id);
      const mine = intended.includes(a);
      let cause: ExposureCause | null = null;
      if (mine) {
        if (place.isOtherTenant(a) && (via === 'vmalloc' ? a.mapCls : a.cls) !== CLASS_GLOBAL_NONSENSITIVE) cause = intendedCause ?? place.intendedCause(via, pa);
      } else {
        cause = place.explain(a, va, pa, via, intended);
        if (cause === null) {
          const key = `${a.id}:${via}`;
          if (!this.forbidden.has(key)) {
            this.forbidden.add(key);
            res.forbidden.push({ va, pa, alloc: a, why: `${a.what} (${className(via === 'vmalloc' ? a.mapCls : a.cls)}, owner ${sys.owners.get(a.owner).name}) is not in the design's ${via} mappings, and nothing the design maps shares its page` });
          }
          continue;
        }
        if (!place.harmful(a, via)) cause = null;
      }
      if (cause === null) {
        if (place.isOtherTenant(a) && !counted.has(`g${a.id}:${pa}`)) { counted.add(`g${a.id}:${pa}`); res.otherTenantGlobalBytes += bytesOnPage(a, pa); }
        continue;
      }
      const key = `${a.id}:${cause}`;
      let e = this.exposures.get(key);
      if (!e) {
        e = place.exposure(a, cause, va, pa, via);
        this.exposures.set(key, e);
        res.exposures.push(e);
        res.exposuresByCause[cause]++;
      }
      if (!counted.has(`${key}:${pa}`)) { counted.add(`${key}:${pa}`); e.bytes += bytesOnPage(a, pa); }
    }
  }

  /** Fill in `reached` and `ok`. */
  finish(): VerifyResult {
    this.res.reached = this.reached.size;
    this.res.ok = this.res.mismatches.length === 0 && this.res.forbidden.length === 0;
    return this.res;
  }
}

export function verifySpace(sys: System, design: AsiDesign, space: RestrictedSpace): VerifyResult {
  const ctx = space.context;
  const res = emptyResult(design.name, ctx.label);
  const check = new ReachCheck(sys, design, ctx, res);
  const pr = new Probe();
  const leaves = collectLeaves(sys, space.root);
  res.leaves = leaves.length;
  for (const leaf of leaves) {
    const va0 = BigInt(leaf.hi >>> 0) * 4294967296n + BigInt(leaf.lo >>> 0);
    const via: MapVia = viaOf(sys, va0, sys.levels);
    const userHalf = (leaf.hi >>> 31) === 0;
    const pages = 2 ** (leaf.shift - 12);
    for (let i = 0; i < pages; i++) {
      const sum = (leaf.lo >>> 0) + i * 4096;
      const lo = sum % TWO32;
      const hi = (leaf.hi + Math.floor(sum / TWO32)) >>> 0;
      const pa = leaf.pa + i * 4096;
      const va = va0 + BigInt(i * 4096);
      res.mappedPages++;
      if (!userHalf || space.compareUserHalf) {
        const why = compare(sys, space.fullRoot, lo, hi, pa, leaf, pr);
        if (why) res.mismatches.push({ va, pa, why });
      }
      const allocs = sys.allocationsIn(pa, 4096);
      if (allocs.length === 0) continue;
      check.page(va, pa, via, allocs, allocs.filter((a) => design.permits(sys, ctx, a, via, pa)));
    }
  }
  return check.finish();
}

/** Is the restricted leaf's page at hi:lo (frame `pa`) mapped as the full root maps it? null, or why not. */
export function compare(sys: System, fullRoot: number, lo: number, hi: number, pa: number, leaf: Leaf, pr: Probe): string | null {
  if (!probe(sys.mem, fullRoot, sys.levels, lo, hi, pr)) return 'not mapped in the full space';
  const fullPa = pr.frame + (lo % 2 ** pr.pageShift) - (lo % 4096);
  if (fullPa !== pa) return `maps 0x${pa.toString(16)}, the full space 0x${fullPa.toString(16)}`;
  if (leaf.writable && !pr.writable) return 'writable here, read-only in the full space';
  if (leaf.user && !pr.user) return 'user-accessible here, supervisor-only in the full space';
  if (!leaf.xd && pr.xd) return 'executable here, NX in the full space';
  return null;
}

export interface RegionRow {
  region: string;
  fullBytes: number;
  restrictedBytes: number;
}

/** Bytes mapped per layout region, full root against restricted root. */
export function compareRegions(sys: System, space: RestrictedSpace): RegionRow[] {
  const rows = sys.layout.regions.map((r) => ({ region: r.id, fullBytes: 0, restrictedBytes: 0 }));
  const add = (root: number, full: boolean) => {
    forEachLeaf(sys.mem, root, sys.levels, (lo, hi, shift) => {
      const i = sys.layout.regionIndexOfHalves(lo, hi);
      if (i < 0) return;
      if (full) rows[i].fullBytes += 2 ** shift;
      else rows[i].restrictedBytes += 2 ** shift;
    });
  };
  add(space.fullRoot, true);
  add(space.root, false);
  return rows.filter((r) => r.fullBytes > 0 || r.restrictedBytes > 0);
}

/** Runs of pages the full space maps and the restricted one does not (at most `limit`). */
export function missingRuns(sys: System, space: RestrictedSpace, limit = 64): Array<{ start: bigint; bytes: number; region: string }> {
  const out: Array<{ start: bigint; bytes: number; region: string }> = [];
  const pr = new Probe();
  let runStart = -1n;
  let runBytes = 0;
  let next = -1n;
  const flush = () => {
    if (runBytes > 0 && out.length < limit) out.push({ start: runStart, bytes: runBytes, region: sys.layout.regionOf(runStart).id });
    runBytes = 0;
  };
  for (const leaf of collectLeaves(sys, space.fullRoot)) {
    const va0 = BigInt(leaf.hi >>> 0) * 4294967296n + BigInt(leaf.lo >>> 0);
    if ((leaf.hi >>> 31) === 0) continue; // the kernel half only
    for (let i = 0; i < 2 ** (leaf.shift - 12); i++) {
      const sum = (leaf.lo >>> 0) + i * 4096;
      const present = probe(sys.mem, space.root, sys.levels, sum % TWO32, (leaf.hi + Math.floor(sum / TWO32)) >>> 0, pr);
      const va = va0 + BigInt(i * 4096);
      if (present) { flush(); continue; }
      if (runBytes > 0 && va === next) runBytes += 4096;
      else { flush(); runStart = va; runBytes = 4096; }
      next = va + 4096n;
    }
  }
  flush();
  return out;
}
