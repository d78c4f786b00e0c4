/**
 * Differences between a model's and a capture's kernel tables that set_memory.c's alias
 * processing explains (arch/x86/mm/pat/set_memory.c, cpa_process_alias()): a set_memory_ro()
 * (or _wc()/_uc()) on a vmalloc or module address is repeated
 *  - on the direct-map alias of each page ("if (!(within(vaddr, PAGE_OFFSET, ...)))"), and
 *  - on the high-map alias when the frame is one the high map covers ("if (!within(vaddr,
 *    _text, _brk_end) && __cpa_pfn_in_highmap(cpa->pfn))"): the frames of the last PMD past
 *    _end that cleanup_highmap() keeps, handed to the page allocator (linux/image-tail.ts),
 * splitting the large page around it. NX is never changed on an alias ("Directmap always has
 * NX set, do not modify"; "[_text, _brk_end) also covers data, do not modify NX").
 *
 * The proof demanded is the same for both aliases: grouped by the model's large page, every
 * 4 KiB page of the capture either has the model's attributes (the page was only split) or
 *  1. maps the frame the model maps at that address (the alias is linear: __va(), __pa_symbol()),
 *  2. differs from the model only in RW or the cache bits,
 *  3. is read-only only because a vmalloc/module page of the same frame is read-only in the
 *     capture, and has the cache bits of that page,
 *  4. is a page whose frame the page allocator can hand out (high map: at or past _end),
 * and at least one page of the group is such an alias (the reason for the split).
 */
import { CACHE, F_RW, type Difference, type Leaves } from './leaf-runs.ts';

/** PFNs the capture maps in its vmalloc and modules areas, with their attributes: the candidates for aliases. */
export function vmallocAliases(c: Leaves, regions: ReadonlyArray<{ name: string; start: bigint; end: bigint }>): Map<number, number> {
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

/** How one mapping relates VAs to frames, for the proof: the frame the model maps at a VPN, and whether it may be an alias at all. */
export interface AliasMap {
  /** The frame the model maps at `vpn` (rule 1), or -1. */
  pfnAt(vpn: number): number;
  /** Rule 4: may the page at `vpn` hold a frame the page allocator handed out? */
  allocatable(vpn: number): boolean;
}

/** The direct map: __va(pa) = pa + page_offset_base; every frame may be allocated. */
export function directMapAliases(pageOffsetVpn: number): AliasMap {
  return { pfnAt: (vpn) => vpn - pageOffsetVpn, allocatable: () => true };
}

/**
 * The high map: the frame the model's own leaf maps there (__pa_symbol() is linear over the
 * image), allocatable only from PFN_ALIGN(_end) on (`freeFromVpn`).
 */
export function highMapAliases(model: Leaves, freeFromVpn: number): AliasMap {
  return {
    pfnAt(vpn) {
      const i = model.lowerBound(vpn + 1) - 1; // the model leaf starting at or below vpn
      if (i < 0) return -1;
      const pages = 2 ** (model.shift[i] - 12);
      return vpn < model.vpn[i] + pages ? model.pa[i] / 4096 + (vpn - model.vpn[i]) : -1;
    },
    allocatable: (vpn) => vpn >= freeFromVpn,
  };
}

/** The differences of `diffs` explained as splits around aliases of read-only (or uncached) vmalloc/module pages (see the header). */
export function explainAliasSplits(diffs: readonly Difference[], c: Leaves, aliases: ReadonlyMap<number, number>, map: AliasMap): Set<Difference> {
  const groups = new Map<number, Difference[]>();
  for (const d of diffs) {
    if (!d.m || !d.c || d.c.shift >= d.m.shift) continue; // only a large page of the model split in the capture
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
        if (pfn !== map.pfnAt(c.vpn[i]) || !map.allocatable(c.vpn[i]) || a === undefined || (diff & ~(F_RW | CACHE)) !== 0) { bad = true; break; }
        if ((diff & F_RW) && ((f & F_RW) || (a & F_RW))) bad = true; // only a read-only alias makes the other mapping read-only
        if ((diff & CACHE) && (f & CACHE) !== (a & CACHE)) bad = true;
        sawAlias = true;
      }
    }
    if (!bad && sawAlias) for (const d of g) ok.add(d);
  }
  return ok;
}
