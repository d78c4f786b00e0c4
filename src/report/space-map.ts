/**
 * The address-space map `kasi serve` draws (issue 13): one lane per address space of a booted
 * system — the full kernel tables (swapper_pg_dir), the KPTI user copy (pti.c), an ASI
 * restricted space per VM (google-asi-2025; and vm0's under kvm-asi-2019 and google-asi-2022,
 * each on a system booted with its design's sensitivity model), one per network namespace
 * (netns-asi), and a System Call Isolation task (sci-2019) — as runs of leaves along the kernel's own region table
 * (report/markers.ts, dump_pagetables.c address_markers[]).
 *
 * A run is a VA stretch [s, e) of 4 KiB page numbers on the 48-bit axis (the VA modulo 2^48, so
 * the kernel half sits above the user half as on a ptdump) whose leaves have one page size, one
 * set of effective rights (linux/leaf-runs.ts: USR and RW ANDed, NX ORed over the levels), and
 * whose frames belong to one owner with one sensitivity class (the allocation records of
 * linux/system.ts). A large leaf over frames of several allocations is split at their edges,
 * so zooming to one 4 KiB page shows whose page it is. Nothing here is computed for display only:
 * the runs are the walker's leaves (x86/leaves.ts forEachLeaf) and the allocator's records.
 *
 * `detail()` answers a click: the leaves of a lane in a VA range, their frames and the
 * allocations behind them, and why the design maps that range (the `why` of its RestrictedSpec).
 */
import { getDesign, makeContext, systemFor } from '../asi/registry.ts';
import { buildSpace, contextSpec } from '../asi/restricted.ts';
import { buildSciSpace } from '../asi/sci-space.ts';
import { sci2019 } from '../asi/designs/sci-2019.ts';
import type { AsiContext, AsiDesign, RestrictedSpec } from '../asi/types.ts';
import { markerRegions } from '../linux/compare.ts';
import { collectLeaves, flagsText, type Leaves } from '../linux/leaf-runs.ts';
import { className } from '../linux/sensitivity.ts';
import { bootSystem, populateTenants, type Allocation, type System } from '../linux/system.ts';
import { slidKallsyms } from '../sim/sci-run.ts';

/** Page numbers on the 48-bit axis: 2^36 pages of 4 KiB = 256 TiB. */
export const AXIS_PAGES = 2 ** 36;
const WRAP = 2 ** 36;
const hex = (v: bigint): string => '0x' + BigInt.asUintN(64, v).toString(16).padStart(16, '0');
/** A page number on the axis as its canonical 64-bit VA. */
export function axisVa(vpn: number): bigint {
  const va = BigInt(vpn) << 12n;
  return va >= 1n << 47n ? va | 0xffff000000000000n : va;
}

export interface MapOwner { readonly name: string; readonly kind: string }
/** [start page, end page, owner index, class index, flags, page shift], on the axis. */
export type MapRun = [number, number, number, number, number, number];

export interface MapLane {
  readonly id: string;
  readonly title: string;
  readonly design: string;
  readonly context: string;
  readonly root: string;
  /** The sensitivity model of the lane's system (linux/sensitivity.ts): what its classes mean. */
  readonly model: string;
  readonly leaves: number;
  /** How many runs the lane has at full resolution (runsIn() sends a window of them). */
  readonly runs: number;
  /** Pages mapped in each of the map's regions (same order). */
  readonly regionPages: number[];
}

/** A window of a lane's runs: each as MapRun plus how many runs it stands for (1: exact; more: a bin of `binPages`). */
export interface RunWindow { readonly lane: string; readonly from: number; readonly to: number; readonly binPages: number; readonly runs: Array<[...MapRun, number]> }

export interface SpaceMap {
  readonly axisPages: number;
  readonly levels: number;
  /** The kernel's regions on the axis, each with the stretch any lane maps in it ([first, end) pages; null: nothing). */
  readonly regions: Array<{ name: string; start: number; end: number; va: string; mapped: [number, number] | null }>;
  readonly owners: MapOwner[];
  readonly classes: string[];
  readonly flags: string[];
  readonly lanes: MapLane[];
}

interface LaneSource {
  id: string; title: string; design: string; sys: System; root: number; ctx: AsiContext | null;
  spec: RestrictedSpec | null; why: string; leaves: Leaves;
}

/** A leaf under a click; its allocations grouped by (what, kind, owner, class), `count` of each (at most 16 groups). */
export interface LeafDetail { va: string; size: number; pa: string; rights: string; allocations: Array<{ what: string; kind: string; owner: string; class: string; count: number }> }
export interface MapDetail { lane: string; from: string; to: string; leaves: LeafDetail[]; more: number; owners: string[]; why: string[] }

/** The lanes' sources; built once per process (a few boots, ~2 s) and kept. */
export class SpaceMapModel {
  private readonly lanes: LaneSource[] = [];
  private map: SpaceMap | null = null;
  private readonly runs = new Map<string, MapRun[]>();

  constructor() {
    const asi = getDesign('google-asi-2025');
    const sys = systemFor(asi);
    const full = { sys, ctx: null, spec: null, design: 'full', leaves: collectLeaves(sys.mem, sys.kernel.kernelRoot, sys.levels) };
    this.lanes.push({ ...full, id: 'kernel', title: 'full kernel (swapper_pg_dir)', root: sys.kernel.kernelRoot, why: 'the full kernel tables map every region (swapper_pg_dir)' });
    if (sys.kernel.userRoot !== null) {
      const kpti = getDesign('kpti');
      const ctx = makeContext(sys, kpti, { process: 0 });
      this.add('kpti-user', 'KPTI user copy', kpti, sys, ctx, sys.kernel.userRoot);
    }
    for (let i = 0; i < sys.vms.length; i++) {
      const ctx = makeContext(sys, asi, { vm: i });
      this.add(`asi-vm${i}`, `google-asi-2025 · ${sys.vms[i].owner.name}`, asi, sys, ctx, buildSpace(sys, asi, ctx).root);
    }
    // The earlier VM designs, for comparison: each boots with its own sensitivity model.
    for (const name of ['kvm-asi-2019', 'google-asi-2022'] as const) {
      const d = getDesign(name);
      const dsys = systemFor(d);
      const ctx = makeContext(dsys, d, { vm: 0 });
      this.add(`${name}-vm0`, `${name} · ${dsys.vms[0].owner.name}`, d, dsys, ctx, buildSpace(dsys, d, ctx).root);
    }
    const netns = getDesign('netns-asi');
    const nsys = systemFor(netns);
    for (let i = 0; i < nsys.namespaces.length; i++) {
      const ctx = makeContext(nsys, netns, { netns: i });
      this.add(`netns${i}`, `netns-asi · ${nsys.namespaces[i].name}`, netns, nsys, ctx, buildSpace(nsys, netns, ctx).root);
    }
    const ssys = populateTenants(bootSystem({ model: sci2019.model }));
    if (ssys.kernel.pti.enabled) {
      const sci = buildSciSpace(ssys, slidKallsyms(ssys.kernel.sections.text - 0xffffffff81000000n), 0);
      this.lanes.push({
        id: 'sci-proc0', title: `sci-2019 · ${sci.process.comm}`, design: 'sci-2019', sys: ssys, root: sci.space.root, ctx: sci.ctx, spec: null,
        why: 'sci_pagetable_init() (RFC 2/7): a clone of the KPTI user tables plus ' + [...new Set(sci.tables.premapped.map((p) => p.what))].join(', '),
        leaves: collectLeaves(ssys.mem, sci.space.root, ssys.levels),
      });
    }
  }

  private add(id: string, title: string, d: AsiDesign, sys: System, ctx: AsiContext, root: number): void {
    const spec = d.build ? null : contextSpec(sys, d, ctx);
    this.lanes.push({ id, title, design: d.name, sys, root, ctx, spec, why: d.holds.join('; '), leaves: collectLeaves(sys.mem, root, sys.levels) });
  }

  /** The whole map, as the API sends it. */
  spaceMap(): SpaceMap {
    if (this.map !== null) return this.map;
    const owners: MapOwner[] = [{ name: 'unowned', kind: 'none' }];
    const ownerIx = new Map<string, number>([['unowned', 0]]);
    const classes: string[] = ['none'];
    const flags: string[] = [];
    const idx = <T>(list: T[], m: Map<string, number>, key: string, v: T): number => {
      let i = m.get(key);
      if (i === undefined) { i = list.length; list.push(v); m.set(key, i); }
      return i;
    };
    const classIx = new Map<string, number>([['none', 0]]);
    for (let f = 0; f < 128; f++) flags.push(flagsText(f).replace(/\s+/g, ' ').trim());
    const lanes = this.lanes.map((l): MapLane => {
      const runs: MapRun[] = [];
      const push = (s: number, e: number, a: Allocation | null, f: number, shift: number): void => {
        const o = a === null ? 0 : idx(owners, ownerIx, ownerName(l.sys, a.owner), { name: ownerName(l.sys, a.owner), kind: ownerKind(l.sys, a.owner) });
        const c = a === null ? 0 : idx(classes, classIx, className(a.cls), className(a.cls));
        const last = runs[runs.length - 1];
        if (last && last[1] === s && last[2] === o && last[3] === c && last[4] === f && last[5] === shift) last[1] = e;
        else runs.push([s, e, o, c, f, shift]);
      };
      const L = l.leaves;
      for (let i = 0; i < L.n; i++) {
        const s = L.vpn[i] % WRAP;
        const pages = 2 ** (L.shift[i] - 12);
        const pa = L.pa[i];
        if (pages === 1) { push(s, s + 1, l.sys.allocationAtPa(pa), L.flags[i], 12); continue; }
        // A large leaf: split at the edges of the allocations in its frames.
        let p = 0;
        for (const a of l.sys.allocationsIn(pa, pages * 4096)) {
          for (const r of a.ranges) {
            const from = Math.max(0, Math.floor((r.pa - pa) / 4096));
            const to = Math.min(pages, Math.ceil((r.pa + r.bytes - pa) / 4096));
            if (to <= p || from >= pages) continue;
            if (from > p) push(s + p, s + from, null, L.flags[i], L.shift[i]);
            push(s + Math.max(p, from), s + to, a, L.flags[i], L.shift[i]);
            p = to;
          }
        }
        if (p < pages) push(s + p, s + pages, null, L.flags[i], L.shift[i]);
      }
      this.runs.set(l.id, runs);
      return { id: l.id, title: l.title, design: l.design, context: l.ctx?.label ?? 'kernel', root: '0x' + l.root.toString(16), model: l.sys.model.name, leaves: L.n, runs: runs.length, regionPages: [] };
    });
    const regions = markerRegions(this.lanes[0].sys.layout).map((r) => ({ name: r.name, va: hex(r.start), start: axisOf(r.start), end: axisOf(r.end), mapped: null as [number, number] | null }))
      .filter((r) => r.end > r.start);
    for (const lane of lanes) {
      const runs = this.runs.get(lane.id)!;
      lane.regionPages.push(...regions.map(() => 0));
      let k = 0;
      for (const [s, e] of runs) {
        while (k < regions.length && regions[k].end <= s) k++;
        if (k === regions.length) break;
        const r = regions[k];
        const to = Math.min(e, r.end); // runs do not cross a region edge but at 2 MiB / 1 GiB leaves, which the markers align to
        r.mapped = r.mapped === null ? [s, to] : [Math.min(r.mapped[0], s), Math.max(r.mapped[1], to)];
        lane.regionPages[k] += to - s;
      }
    }
    this.map = { axisPages: AXIS_PAGES, levels: this.lanes[0].sys.levels, regions, owners, classes, flags, lanes };
    return this.map;
  }

  /**
   * The runs of lane `id` overlapping pages [from, to). When more than `max` would be sent, runs
   * narrower than a bin of (to - from) / max pages are merged per bin into one entry that takes the
   * owner, class and rights of the bin's widest run and counts the runs it stands for, so a whole-axis
   * view stays a few thousand rectangles; zoomed in, every run is exact.
   */
  runsIn(id: string, from: number, to: number, max = 4000): RunWindow | null {
    this.spaceMap();
    const runs = this.runs.get(id);
    if (runs === undefined) return null;
    let a = 0;
    let b = runs.length;
    while (a < b) { const m = (a + b) >>> 1; if (runs[m][1] <= from) a = m + 1; else b = m; }
    let last = a;
    while (last < runs.length && runs[last][0] < to) last++;
    if (last - a <= max) return { lane: id, from, to, binPages: 1, runs: runs.slice(a, last).map((r) => [...r, 1] as [...MapRun, number]) };
    const bin = Math.max(1, Math.ceil((to - from) / max));
    const out: Array<[...MapRun, number]> = [];
    for (let i = a; i < last; i++) {
      const r = runs[i];
      const cur = out[out.length - 1];
      const k = Math.floor((Math.max(r[0], from) - from) / bin);
      if (r[1] - r[0] >= bin || cur === undefined || Math.floor((Math.max(cur[0], from) - from) / bin) !== k || cur[1] - cur[0] >= bin) {
        out.push([...r, 1]);
        continue;
      }
      if (r[1] - r[0] > cur[1] - cur[0]) { cur[2] = r[2]; cur[3] = r[3]; cur[4] = r[4]; cur[5] = r[5]; }
      cur[1] = r[1];
      cur[6]++;
    }
    return { lane: id, from, to, binPages: bin, runs: out };
  }

  laneIds(): string[] {
    return this.lanes.map((l) => l.id);
  }

  /** The leaves of lane `id` in pages [from, to) of the axis (at most `limit`), their allocations, and why they are mapped. */
  detail(id: string, from: number, to: number, limit = 64): MapDetail | null {
    const l = this.lanes.find((x) => x.id === id);
    if (l === undefined) return null;
    const L = l.leaves;
    const leaves: LeafDetail[] = [];
    const owners = new Set<string>();
    const why = new Set<string>();
    let more = 0;
    for (let i = 0; i < L.n; i++) {
      const s = L.vpn[i] % WRAP;
      const e = s + 2 ** (L.shift[i] - 12);
      if (e <= from || s >= to) continue;
      if (leaves.length >= limit) { more++; continue; }
      const size = 2 ** L.shift[i];
      // Of a large leaf, the frames under the asked range only.
      const lo = Math.max(s, from);
      const hi = Math.min(e, to);
      const pa = L.pa[i] + (lo - s) * 4096;
      const groups = new Map<string, LeafDetail['allocations'][number]>();
      for (const a of l.sys.allocationsIn(pa, (hi - lo) * 4096)) {
        const g = { what: a.what, kind: a.kind, owner: ownerName(l.sys, a.owner), class: className(a.cls), count: 1 };
        owners.add(g.owner);
        const key = `${g.what}\0${g.kind}\0${g.owner}\0${g.class}`;
        const had = groups.get(key);
        if (had) had.count++;
        else if (groups.size < 16) groups.set(key, g);
      }
      const allocs = [...groups.values()];
      leaves.push({ va: hex(axisVa(s)), size, pa: '0x' + L.pa[i].toString(16), rights: flagsText(L.flags[i]).replace(/\s+/g, ' ').trim(), allocations: allocs });
      for (const w of this.whyAt(l, axisVa(lo))) why.add(w);
    }
    return { lane: l.title, from: hex(axisVa(from)), to: hex(axisVa(to)), leaves, more, owners: [...owners], why: [...why] };
  }

  private whyAt(l: LaneSource, va: bigint): string[] {
    if (l.spec === null) return [l.why];
    // An end of 2^64 (asi_clone_range(…, ULONG_MAX)) stays 2^64: asUintN would make it 0.
    const out = l.spec.ranges.filter((r) => BigInt.asUintN(64, r.start) <= va && va < (r.end >= 1n << 64n ? r.end : BigInt.asUintN(64, r.end))).map((r) => r.why);
    const a = l.sys.layout.addrs;
    if (l.spec.directMap && va >= a.page_offset_base && va < a.page_offset_base + (1n << 46n)) out.push(l.spec.directMap.why);
    if (l.spec.userPgd !== undefined && va < 1n << 47n) out.push('the user half: the PGD entries of the process, shared');
    return out.length > 0 ? out : [l.why];
  }
}

/** A VA (or 2^64, the end) as a page number of the axis; the non-canonical hole folds to the middle. */
export function axisOf(va: bigint): number {
  const HALF = 1n << 47n;
  if (va < HALF) return Number(va >> 12n);
  if (va >= (1n << 64n) - HALF) return Number((va - (1n << 64n) + (1n << 48n)) >> 12n);
  return 2 ** 35;
}

function ownerName(sys: System, id: number): string {
  return sys.owners.has(id) ? sys.owners.get(id).name : `owner ${id}`;
}
function ownerKind(sys: System, id: number): string {
  return sys.owners.has(id) ? sys.owners.get(id).kind : 'unknown';
}
