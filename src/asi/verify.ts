/**
 * Checking a restricted space against the full tables and against the system's allocations,
 * by walking every leaf of the restricted root (x86/leaves.ts) and, for each 4 KiB page:
 *  1. the full space must map the same VA to the same frame, with rights no more permissive
 *     (writable, user, executable — SDM 4.6.1 folding); the 2022 RFC's invariant: "each mapping
 *     is always the same as the corresponding mapping in the full kernel address space";
 *  2. every allocation on the page must be one the design permits through that kind of mapping
 *     (AsiDesign.permits: the design's stated rule, e.g. no sensitive allocation);
 *  3. no allocation of another tenant (an owner of a kind the design isolates, not one of the
 *     context's) may be reachable unless its class there is globally non-sensitive — memory the
 *     design declares harmless "even if it were to get leaked to any process or VM".
 * The restricted tables are built from per-frame allocator state (restricted.ts); the checks
 * here use the allocation records, so a builder error or a stray mapping shows up.
 */
import { forEachLeaf } from '../x86/leaves.ts';
import { CLASS_GLOBAL_NONSENSITIVE, className } from '../linux/sensitivity.ts';
import type { Allocation, System } from '../linux/system.ts';
import { Probe, probe, viaOf } from './restricted.ts';
import type { AsiDesign, MapVia, RestrictedSpace } from './types.ts';

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
  /** Mapped differently from the full space (or not mapped there). */
  mismatches: Finding[];
  /** Allocations the design's rule does not permit. */
  forbidden: Finding[];
  /** Another tenant's allocations that are not globally non-sensitive. */
  foreign: Finding[];
  /** Distinct allocations reachable. */
  reached: number;
  /** Bytes of other tenants' globally non-sensitive allocations reachable (allowed; reported). */
  otherTenantGlobalBytes: number;
  ok: boolean;
}

interface Leaf { lo: number; hi: number; shift: number; pa: number; user: boolean; writable: boolean; xd: boolean }

export function collectLeaves(sys: System, root: number): Leaf[] {
  const out: Leaf[] = [];
  forEachLeaf(sys.mem, root, sys.levels, (lo, hi, shift, pa, _l, _h, _lv, user, writable, xd) => {
    out.push({ lo, hi, shift, pa, user, writable, xd });
  });
  return out;
}

export function verifySpace(sys: System, design: AsiDesign, space: RestrictedSpace): VerifyResult {
  const ctx = space.context;
  const res: VerifyResult = {
    design: design.name, context: ctx.label, leaves: 0, mappedPages: 0, mismatches: [], forbidden: [], foreign: [],
    reached: 0, otherTenantGlobalBytes: 0, ok: true,
  };
  const pr = new Probe();
  const reported = new Set<string>();
  const reached = new Set<number>();
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
      res.mappedPages++;
      if (!userHalf || space.compareUserHalf) {
        const why = compare(sys, space.fullRoot, lo, hi, pa, leaf, pr);
        if (why) res.mismatches.push({ va: va0 + BigInt(i * 4096), pa, why });
      }
      for (const a of sys.allocationsIn(pa, 4096)) {
        reached.add(a.id);
        const key = `${a.id}:${via}`;
        if (!design.permits(sys, ctx, a, via, pa) && !reported.has('p' + key)) {
          reported.add('p' + key);
          res.forbidden.push({ va: va0 + BigInt(i * 4096), pa, alloc: a, why: `${a.what} (${className(via === 'vmalloc' ? a.mapCls : a.cls)}, owner ${sys.owners.get(a.owner).name}) is not in the design's ${via} mappings` });
        }
        const kind = sys.owners.get(a.owner).kind;
        if (!design.tenantKinds.includes(kind) || ctx.tenants.includes(a.owner)) continue;
        const cls = via === 'vmalloc' ? a.mapCls : a.cls;
        if (cls === CLASS_GLOBAL_NONSENSITIVE) {
          if (!reported.has('g' + key + ':' + pa)) { reported.add('g' + key + ':' + pa); res.otherTenantGlobalBytes += overlap(a, pa); }
        } else if (!reported.has('f' + key)) {
          reported.add('f' + key);
          res.foreign.push({ va: va0 + BigInt(i * 4096), pa, alloc: a, why: `${a.what} of ${kind} ${sys.owners.get(a.owner).name} (${className(cls)}) is reachable from ${ctx.label}` });
        }
      }
    }
  }
  res.reached = reached.size;
  res.ok = res.mismatches.length === 0 && res.forbidden.length === 0 && res.foreign.length === 0;
  return res;
}

function compare(sys: System, fullRoot: number, lo: number, hi: number, pa: number, leaf: Leaf, pr: Probe): string | null {
  if (!probe(sys.mem, fullRoot, sys.levels, lo, hi, pr)) return 'not mapped in the full space';
  const fullPa = pr.frame + (lo % 2 ** pr.pageShift) - (lo % 4096);
  if (fullPa !== pa) return `maps 0x${pa.toString(16)}, the full space 0x${fullPa.toString(16)}`;
  if (leaf.writable && !pr.writable) return 'writable here, read-only in the full space';
  if (leaf.user && !pr.user) return 'user-accessible here, supervisor-only in the full space';
  if (!leaf.xd && pr.xd) return 'executable here, NX in the full space';
  return null;
}

function overlap(a: Allocation, pa: number): number {
  let n = 0;
  for (const r of a.ranges) n += Math.max(0, Math.min(r.pa + r.bytes, pa + 4096) - Math.max(r.pa, pa));
  return n;
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
