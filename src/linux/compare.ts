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
 *    (cpa_process_alias(), arch/x86/mm/pat/set_memory.c), splitting the large page around it;
 *  - in the high kernel mapping, the same for the last PMD past _end: its frames go to the page
 *    allocator, and set_memory_ro() on module/BPF text in them write-protects their high-map
 *    alias as well (__cpa_pfn_in_highmap()); only pages at or past the model's _end qualify.
 * Both rules demand the same proof (linux/compare-aliases.ts).
 */
import type { PhysMemory } from '../phys/memory.ts';
import { addressMarkers, type KernelLayout } from '../report/markers.ts';
import type { LinuxLayout } from './layout.ts';
import { collectLeaves, diffRuns, flagsText, runsOf, sizeText, vaText, type Difference, type Leaves, type Run } from './leaf-runs.ts';
import { directMapAliases, explainAliasSplits, highMapAliases, vmallocAliases } from './compare-aliases.ts';

export {
  CACHE, F_GLB, F_NX, F_PAT, F_PCD, F_PWT, F_RW, F_USR, Leaves, collectLeaves, flagsText, leafFlags, type Difference,
} from './leaf-runs.ts';

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

function describe(d: Difference): string {
  const side = (r: Run | null) => (r ? `${sizeText(r.shift)} ${flagsText(r.flags)}` : 'unmapped');
  return `${vaText(d.s)}-${vaText(d.e)}: model ${side(d.m)} | capture ${side(d.c)}`;
}

function compareRoot(
  which: 'kernel' | 'user', m: Leaves, c: Leaves, regions: Array<{ name: string; start: bigint; end: bigint }>,
  pageOffset: bigint, imageEnd: bigint | undefined, maxShown: number,
): RootCompare {
  const aliases = vmallocAliases(c, regions);
  const out: RegionResult[] = [];
  const direct = directMapAliases(Number(pageOffset >> 12n));
  // Without the model's _end no high-map page is known to be allocatable: nothing there is explained.
  const high = highMapAliases(m, imageEnd === undefined ? Infinity : Number((imageEnd + 4095n) >> 12n));
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
    const map = r.name === 'Low Kernel Mapping' ? direct : r.name === 'High Kernel Mapping' ? high : null;
    const ok = map ? explainAliasSplits(diffs, c, aliases, map) : new Set<Difference>();
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
      reason = r.name === 'High Kernel Mapping'
        ? `${explained.length} stretches of the last PMD past _end split around high-map aliases of read-only module/BPF pages: set_memory_ro() on a module address changes the high-map alias of a frame past _end too (cpa_process_alias(), __cpa_pfn_in_highmap(), set_memory.c)`
        : `${explained.length} stretches of large pages split around direct-map aliases of read-only (or uncached) vmalloc/module pages: set_memory_ro() on a vmalloc address changes its alias too (cpa_process_alias(), set_memory.c)`;
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
 * KPTI user roots' kernel halves; `model.imageEnd` (the model's _end) lets high-map splits past it
 * be explained. Required: every region marked required matches, or differs
 * only in explained dynamic ways; and the user root's kernel half matches page for page.
 */
export function compareKernels(
  layout: LinuxLayout, model: { kernel: CompareInput; user: CompareInput | null; imageEnd?: bigint },
  capture: { kernel: CompareInput; user: CompareInput | null }, maxShown = 5,
): CompareResult {
  const regions = markerRegions(layout);
  const kernel = compareRoot('kernel', collectLeaves(model.kernel.mem, model.kernel.root, model.kernel.levels),
    collectLeaves(capture.kernel.mem, capture.kernel.root, capture.kernel.levels), regions, layout.addrs.page_offset_base, model.imageEnd, maxShown);
  let user: RootCompare | null = null;
  const failures: string[] = [];
  if (model.user && capture.user) {
    user = compareRoot('user', collectLeaves(model.user.mem, model.user.root, model.user.levels),
      collectLeaves(capture.user.mem, capture.user.root, capture.user.levels), regions, layout.addrs.page_offset_base, model.imageEnd, maxShown);
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
