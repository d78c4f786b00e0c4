/**
 * Compare a modelled kernel's page tables with a captured kernel's, region by region (the
 * regions of dump_pagetables.c's address_markers[], report/markers.ts).
 *
 * Each root is reduced to runs of leaves: (VA range, page size, effective USR/RW/NX, leaf
 * GLB/PWT/PCD/PAT) — the attributes ptdump prints, with USR/RW ANDed and NX ORed over the
 * levels (effective_prot()). A region matches when both sides have the same runs; physical
 * addresses are compared afterwards, leaf by leaf, and reported apart, because some of them
 * come from allocations the model cannot predict.
 *
 * A difference is never dropped silently. It is "dynamic" only when a rule explains it:
 *  - regions filled at run time (user space, LDT remap, vmalloc, vmemmap, modules): the model
 *    leaves them empty on purpose, and what the capture has there is listed as dynamic;
 *  - in the direct map, pages the capture has read-only (or with another cache mode) whose
 *    physical page is mapped with those same attributes in the capture's vmalloc or modules
 *    area: set_memory_ro()/_wc()/_uc() on a vmalloc address changes its direct-map alias too
 *    (cpa_process_alias(), arch/x86/mm/pat/set_memory.c), splitting the large page around it.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { forEachLeaf } from '../x86/leaves.ts';
import { addressMarkers, type KernelLayout } from '../report/markers.ts';
import type { LinuxLayout } from './layout.ts';

export const F_USR = 1;
export const F_RW = 2;
export const F_NX = 4;
export const F_GLB = 8;
export const F_PWT = 16;
export const F_PCD = 32;
export const F_PAT = 64;
const CACHE = F_PWT | F_PCD | F_PAT;

/** Every present leaf of one root, in VA order, in typed arrays (ESPFIX alone is 65,536 leaves). */
export class Leaves {
  n = 0;
  vpn = new Float64Array(1024); // VA >> 12 (< 2^52)
  shift = new Uint8Array(1024);
  pa = new Float64Array(1024);
  flags = new Uint8Array(1024);

  push(vpn: number, shift: number, pa: number, flags: number): void {
    if (this.n === this.vpn.length) {
      const grow = <T extends Float64Array | Uint8Array>(a: T): T => { const b = new (a.constructor as new (n: number) => T)(a.length * 2); b.set(a); return b; };
      this.vpn = grow(this.vpn); this.shift = grow(this.shift); this.pa = grow(this.pa); this.flags = grow(this.flags);
    }
    this.vpn[this.n] = vpn; this.shift[this.n] = shift; this.pa[this.n] = pa; this.flags[this.n] = flags;
    this.n++;
  }

  /** First index with vpn >= v. */
  lowerBound(v: number): number {
    let a = 0;
    let b = this.n;
    while (a < b) { const m = (a + b) >>> 1; if (this.vpn[m] < v) a = m + 1; else b = m; }
    return a;
  }
}

/** Effective attributes of a leaf, as compared. */
export function leafFlags(level: number, lo: number, user: boolean, writable: boolean, xd: boolean): number {
  let f = (user ? F_USR : 0) | (writable ? F_RW : 0) | (xd ? F_NX : 0);
  if (lo & 0x100) f |= F_GLB;
  if (lo & 0x8) f |= F_PWT;
  if (lo & 0x10) f |= F_PCD;
  if (level === 1 ? lo & 0x80 : lo & 0x1000) f |= F_PAT;
  return f;
}

export function collectLeaves(mem: PhysMemory, root: number, levels: 4 | 5): Leaves {
  const out = new Leaves();
  forEachLeaf(mem, root, levels, (vaLo, vaHi, shift, pa, lo, _hi, level, user, writable, xd) => {
    const vpn = ((vaHi >>> 0) * 4294967296 + (vaLo >>> 0)) / 4096;
    out.push(vpn, shift, pa, leafFlags(level, lo, user, writable, xd));
  });
  return out;
}

export function flagsText(f: number): string {
  return [(f & F_USR) ? 'USR' : '   ', (f & F_RW) ? 'RW' : 'ro', (f & F_PWT) ? 'PWT' : '', (f & F_PCD) ? 'PCD' : '',
    (f & F_PAT) ? 'PAT' : '', (f & F_GLB) ? 'GLB' : '', (f & F_NX) ? 'NX' : 'x'].filter(Boolean).join(' ');
}

const sizeText = (shift: number) => (shift === 12 ? '4K' : shift === 21 ? '2M' : '1G');
const vaText = (vpn: number) => '0x' + (BigInt(vpn) << 12n).toString(16).padStart(16, '0');

/** A run: consecutive leaves of one size and attribute set, [startVpn, endVpn). */
interface Run { s: number; e: number; shift: number; flags: number }

function runsOf(l: Leaves, fromVpn: number, toVpn: number): Run[] {
  const out: Run[] = [];
  for (let i = l.lowerBound(fromVpn); i < l.n && l.vpn[i] < toVpn; i++) {
    const s = l.vpn[i];
    const e = s + 2 ** (l.shift[i] - 12);
    const last = out[out.length - 1];
    if (last && last.e === s && last.shift === l.shift[i] && last.flags === l.flags[i]) last.e = e;
    else out.push({ s, e, shift: l.shift[i], flags: l.flags[i] });
  }
  return out;
}

/** A stretch where the two sides disagree. `m`/`c`: the model's and capture's run there (null: nothing mapped). */
export interface Difference { s: number; e: number; m: Run | null; c: Run | null }

function diffRuns(a: Run[], b: Run[], from: number, to: number): Difference[] {
  const out: Difference[] = [];
  let i = 0;
  let j = 0;
  let p = from;
  while (p < to) {
    while (i < a.length && a[i].e <= p) i++;
    while (j < b.length && b[j].e <= p) j++;
    const ra = i < a.length && a[i].s <= p ? a[i] : null;
    const rb = j < b.length && b[j].s <= p ? b[j] : null;
    let next = to;
    if (ra) next = Math.min(next, ra.e); else if (i < a.length) next = Math.min(next, a[i].s);
    if (rb) next = Math.min(next, rb.e); else if (j < b.length) next = Math.min(next, b[j].s);
    if (!ra && !rb && next === to) break;
    const same = (ra === null && rb === null) || (ra !== null && rb !== null && ra.shift === rb.shift && ra.flags === rb.flags);
    if (!same) {
      const last = out[out.length - 1];
      if (last && last.e === p && last.m === ra && last.c === rb) last.e = next;
      else out.push({ s: p, e: next, m: ra, c: rb });
    }
    p = next;
  }
  return out;
}

export type Status = 'match' | 'differ' | 'dynamic';

export interface RegionResult {
  name: string;
  start: bigint;
  end: bigint;
  required: boolean;
  status: Status;
  /** Why the region (or its differences) is dynamic. */
  reason?: string;
  modelLeaves: number;
  captureLeaves: number;
  /** Differences not explained by any rule (shown first), then explained ones. */
  differences: string[];
  unexplained: number;
  /** Physical addresses of the leaves both sides have with the same VA and size. */
  pa: { compared: number; equal: number; expectation: string; first?: string };
}

export interface RootCompare {
  root: 'kernel' | 'user';
  regions: RegionResult[];
}

export interface CompareResult {
  kernel: RootCompare;
  user: RootCompare | null;
  /** Required items that do not match. Empty: the model reproduces the capture. */
  failures: string[];
  ok: boolean;
}

interface Policy { required: boolean; dynamic?: string; pa: string }

/** What each ptdump region is, for the comparison. */
const POLICY: Record<string, Policy> = {
  'User Space': { required: false, dynamic: 'the captured process\'s own mappings (its mm), not part of the kernel model', pa: 'dynamic' },
  'Kernel Space': { required: true, pa: 'static' },
  'LDT remap': { required: false, dynamic: 'per-mm LDT aliases (map_ldt_struct(), arch/x86/kernel/ldt.c) of tasks that called modify_ldt()', pa: 'dynamic' },
  'Low Kernel Mapping': { required: true, pa: 'static: __va(pa) = pa + page_offset_base' },
  'vmalloc() Area': { required: false, dynamic: 'vmalloc/ioremap areas, vmap stacks and per-CPU chunks allocated at run time (mm/vmalloc.c, mm/percpu-vm.c)', pa: 'dynamic' },
  'Vmemmap': { required: false, dynamic: 'struct pages of memory added after boot (memory hotplug, ZONE_DEVICE: mm/sparse-vmemmap.c)', pa: 'dynamic: sparse_init() takes the memmap from memblock' },
  'CPU entry Area': { required: true, pa: 'per-CPU area: from the capture (pcpu_embed_first_chunk() placement)' },
  'ESPfix Area': { required: true, pa: 'dynamic: the stack page is an alloc_pages_node() page (espfix_64.c)' },
  'EFI Runtime Services': { required: true, pa: 'static' },
  'High Kernel Mapping': { required: true, pa: 'static: __pa_symbol(va) = va - __START_KERNEL_map + phys_base' },
  'Modules': { required: false, dynamic: 'module_alloc(): loaded modules, BPF JIT program packs, ftrace trampolines', pa: 'dynamic' },
  'End Modules': { required: true, pa: 'static' },
  'Fixmap Area': { required: true, pa: 'static: APIC and IO-APIC from /proc/iomem' },
};

export function markerLayout(layout: LinuxLayout): KernelLayout {
  const a = layout.addrs;
  return {
    levels: layout.levels, page_offset_base: a.page_offset_base, vmalloc_base: a.vmalloc_base, vmemmap_base: a.vmemmap_base,
    fixaddr_start: a.FIXADDR_START, kernel_image_size: a.KERNEL_IMAGE_SIZE,
  };
}

/** The marker regions sorted by address, [start, end). */
export function markerRegions(layout: LinuxLayout): Array<{ name: string; start: bigint; end: bigint }> {
  const m = addressMarkers(markerLayout(layout)).filter((x) => x.name !== '').sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
  return m.map((x, i) => ({ name: x.name, start: x.start, end: i + 1 < m.length ? m[i + 1].start : 1n << 64n }));
}

/** PFNs the capture maps in its vmalloc and modules areas, with their attributes: the candidates for direct-map aliases. */
function vmallocAliases(c: Leaves, regions: Array<{ name: string; start: bigint; end: bigint }>): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of regions) {
    if (r.name !== 'vmalloc() Area' && r.name !== 'Modules') continue;
    const from = Number(r.start >> 12n);
    const to = Number((r.end - 1n) >> 12n) + 1;
    for (let i = c.lowerBound(from); i < c.n && c.vpn[i] < to; i++) {
      const pages = 2 ** (c.shift[i] - 12);
      for (let k = 0; k < pages; k++) out.set(c.pa[i] / 4096 + k, c.flags[i]);
    }
  }
  return out;
}

/**
 * Direct-map differences, grouped by the model's large page they fall in, are explained when
 * every 4 KiB page of the group either has the model's attributes (the large page was only
 * split) or has the attributes of a vmalloc/module alias of the same physical page — and at
 * least one page of the group is such an alias (the reason for the split).
 */
function explainDirectMap(diffs: Difference[], c: Leaves, aliases: Map<number, number>, pageOffsetVpn: number): Set<Difference> {
  const groups = new Map<number, Difference[]>();
  for (const d of diffs) {
    if (!d.m || !d.c || d.c.shift >= d.m.shift) continue;
    const span = 2 ** (d.m.shift - 12);
    const key = Math.floor(d.s / span) * span;
    if (Math.floor((d.e - 1) / span) * span !== key) continue; // crosses a large page: not a split of one
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(d);
  }
  const ok = new Set<Difference>();
  for (const g of groups.values()) {
    let sawAlias = false;
    let bad = false;
    for (const d of g) {
      for (let i = c.lowerBound(d.s); i < c.n && c.vpn[i] < d.e && !bad; i++) {
        const f = c.flags[i];
        if (f === d.m!.flags) continue;
        const pfn = c.pa[i] / 4096;
        const a = aliases.get(pfn);
        const diff = f ^ d.m!.flags;
        if (pfn !== c.vpn[i] - pageOffsetVpn || a === undefined || (diff & ~(F_RW | CACHE)) !== 0) { bad = true; break; }
        if ((diff & F_RW) && ((f & F_RW) || (a & F_RW))) bad = true; // only a read-only alias makes the direct map read-only
        if ((diff & CACHE) && (f & CACHE) !== (a & CACHE)) bad = true;
        sawAlias = true;
      }
    }
    if (!bad && sawAlias) for (const d of g) ok.add(d);
  }
  return ok;
}

function describe(d: Difference): string {
  const side = (r: Run | null) => (r ? `${sizeText(r.shift)} ${flagsText(r.flags)}` : 'unmapped');
  return `${vaText(d.s)}-${vaText(d.e)}: model ${side(d.m)} | capture ${side(d.c)}`;
}

function compareRoot(
  which: 'kernel' | 'user', m: Leaves, c: Leaves, regions: Array<{ name: string; start: bigint; end: bigint }>,
  pageOffset: bigint, maxShown: number,
): RootCompare {
  const aliases = vmallocAliases(c, regions);
  const out: RegionResult[] = [];
  const pageOffsetVpn = Number(pageOffset >> 12n);
  for (const r of regions) {
    const policy = POLICY[r.name] ?? { required: true, pa: 'static' };
    const from = Number(r.start >> 12n);
    const to = Number((r.end - 1n) >> 12n) + 1;
    const mr = runsOf(m, from, to);
    const cr = runsOf(c, from, to);
    const count = (l: Leaves) => l.lowerBound(to) - l.lowerBound(from);
    const diffs = diffRuns(mr, cr, from, to);
    const unexplained: Difference[] = [];
    const explained: Difference[] = [];
    const ok = r.name === 'Low Kernel Mapping' ? explainDirectMap(diffs, c, aliases, pageOffsetVpn) : new Set<Difference>();
    for (const d of diffs) (ok.has(d) ? explained : unexplained).push(d);
    // In the KPTI user root only the process's half and its LDT may hold what the model lacks.
    const required = which === 'user' ? r.name !== 'User Space' && r.name !== 'LDT remap' : policy.required;
    let status: Status = 'match';
    let reason: string | undefined;
    if (unexplained.length > 0 && policy.dynamic !== undefined && !required && mr.length === 0) {
      status = 'dynamic';
      reason = `only in the capture: ${policy.dynamic}`;
    } else if (unexplained.length > 0) {
      status = 'differ';
    } else if (explained.length > 0) {
      status = 'dynamic';
      reason = `${explained.length} stretches of large pages split around direct-map aliases of read-only (or uncached) vmalloc/module pages: set_memory_ro() on a vmalloc address changes its alias too (cpa_process_alias(), set_memory.c)`;
    }
    // Physical addresses, for leaves with the same VA and size on both sides.
    let compared = 0;
    let equal = 0;
    let first: string | undefined;
    let j = c.lowerBound(from);
    for (let i = m.lowerBound(from); i < m.n && m.vpn[i] < to; i++) {
      while (j < c.n && c.vpn[j] < m.vpn[i]) j++;
      if (j >= c.n || c.vpn[j] !== m.vpn[i] || c.shift[j] !== m.shift[i]) continue;
      compared++;
      if (c.pa[j] === m.pa[i]) equal++;
      else first ??= `${vaText(m.vpn[i])}: model 0x${m.pa[i].toString(16)} | capture 0x${c.pa[j].toString(16)}`;
    }
    out.push({
      name: r.name, start: r.start, end: r.end, required,
      status, reason, modelLeaves: count(m), captureLeaves: count(c),
      differences: [...unexplained, ...explained].slice(0, maxShown).map(describe),
      unexplained: unexplained.length,
      pa: { compared, equal, expectation: policy.pa, first },
    });
  }
  return { root: which, regions: out };
}

export interface CompareInput {
  mem: PhysMemory;
  root: number;
  levels: 4 | 5;
}

/**
 * Compare model and capture: the kernel roots over all regions, and (when both have one) the
 * KPTI user roots' kernel halves. Required: every region marked required matches, or differs
 * only in explained dynamic ways; and the user root's kernel half matches page for page.
 */
export function compareKernels(
  layout: LinuxLayout, model: { kernel: CompareInput; user: CompareInput | null },
  capture: { kernel: CompareInput; user: CompareInput | null }, maxShown = 5,
): CompareResult {
  const regions = markerRegions(layout);
  const kernel = compareRoot('kernel', collectLeaves(model.kernel.mem, model.kernel.root, model.kernel.levels),
    collectLeaves(capture.kernel.mem, capture.kernel.root, capture.kernel.levels), regions, layout.addrs.page_offset_base, maxShown);
  let user: RootCompare | null = null;
  const failures: string[] = [];
  if (model.user && capture.user) {
    user = compareRoot('user', collectLeaves(model.user.mem, model.user.root, model.user.levels),
      collectLeaves(capture.user.mem, capture.user.root, capture.user.levels), regions, layout.addrs.page_offset_base, maxShown);
  } else if (model.user || capture.user) {
    failures.push(`KPTI user root: ${model.user ? 'the capture has none' : 'the model has none (PTI off)'}`);
  }
  for (const rc of [kernel, user]) {
    if (!rc) continue;
    for (const r of rc.regions) if (r.required && r.status === 'differ') failures.push(`${rc.root} root: ${r.name} differs`);
  }
  return { kernel, user, failures, ok: failures.length === 0 };
}

/** The comparison as text: one table per root, then the differences. */
export function formatCompare(res: CompareResult): string {
  const lines: string[] = [];
  for (const rc of [res.kernel, res.user]) {
    if (!rc) continue;
    lines.push(`${rc.root} root`);
    lines.push(`  ${'region'.padEnd(22)} ${'status'.padEnd(8)} ${'req'.padEnd(3)} ${'leaves model/capture'.padStart(21)}  physical addresses`);
    for (const r of rc.regions) {
      const pa = r.pa.compared === 0 ? '-' : r.pa.equal === r.pa.compared ? `all ${r.pa.compared} equal` : `${r.pa.compared - r.pa.equal} of ${r.pa.compared} differ (${r.pa.expectation})`;
      lines.push(`  ${r.name.padEnd(22)} ${r.status.padEnd(8)} ${(r.required ? 'yes' : 'no').padEnd(3)} ${`${r.modelLeaves}/${r.captureLeaves}`.padStart(21)}  ${pa}`);
    }
    for (const r of rc.regions) {
      if (r.reason) lines.push(`  ${r.name}: dynamic — ${r.reason}`);
      if (r.pa.first && r.pa.equal !== r.pa.compared) lines.push(`  ${r.name}: first PA difference ${r.pa.first}`);
      for (const d of r.differences) lines.push(`  ${r.name}: ${d}`);
    }
    lines.push('');
  }
  lines.push(res.ok ? 'required items: all match' : `required items that differ:\n${res.failures.map((f) => '  ' + f).join('\n')}`);
  return lines.join('\n');
}
