/**
 * `kasi run` as text: the mitigation sets side by side — first the leak matrix (attack × secret),
 * then the cost table (cycles of the same workload, overhead against the baseline, the counts,
 * cycles by event kind), then the ASI exit reasons and the notes of each set, and the sets that
 * resolve to one configuration (sim/same-state.ts).
 *
 * One seed: a cell is bytes leaked / bytes planted. N seeds (sim/seeds.ts): a cell is the seeds
 * that leaked / N and the median bytes recovered in those (any seed that leaked makes the verdict
 * `leaks`, sim/seeds.ts verdictOf; `~` marks only an `unstable` cell of a run stored before that
 * rule); a second matrix gives the median time to first leak; the costs are medians with their
 * min..max. Deterministic: the same report gives the same text.
 */
import type { CellStats, SeedsReport, SetStats } from '../sim/seeds.ts';
import { rareLeak, sameStateLines, wilson95 } from '../sim/seeds.ts';
import { seedCount } from './cell-text.ts';
import { cutShort } from './cut-short.ts';

/** An interval's bounds as whole percents, rounded outward. */
const pctLo = (x: number): string => `${Math.floor(100 * x + 1e-9)}%`;
const pctHi = (x: number): string => `${Math.ceil(100 * x - 1e-9)}%`;

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

const num = (n: number): string => n.toLocaleString('en-US');

/** 3 significant digits, trailing zeros dropped. */
const sig = (x: number): string => String(Number(x.toPrecision(3)));

/** A duration in ns as 850ns, 41.2us, 1.23ms, 2.5s. */
export function formatNs(ns: number): string {
  if (ns < 1e3) return `${Math.round(ns)}ns`;
  if (ns < 1e6) return `${sig(ns / 1e3)}us`;
  if (ns < 1e9) return `${sig(ns / 1e6)}ms`;
  return `${sig(ns / 1e9)}s`;
}

/** Matrix cell text: one seed `32/32` or `-`; N seeds `8/8 32B`, `3/8 32B` or `-` (`~3/8` for a stored `unstable` cell). */
export function cellText(c: CellStats | undefined): string {
  if (c === undefined) return '';
  if (c.seeds_leaked === 0) return '-';
  if (c.seeds === 1) return `${c.bytes}/${c.of}`;
  return `${seedCount(c)} ${c.bytes_median}B`;
}

function cellKeys(ms: readonly SetStats[]): [string, string][] {
  const keys: [string, string][] = [];
  const seen = new Set<string>();
  for (const m of ms) for (const c of m.matrix) {
    const k = `${c.attack}\u0000${c.secret}`;
    if (!seen.has(k)) { seen.add(k); keys.push([c.attack, c.secret]); }
  }
  return keys;
}

function leakRows(ms: readonly SetStats[], cell: (c: CellStats | undefined) => string, withSize: boolean): string[][] {
  return cellKeys(ms).map(([attack, secret]) => {
    const first = ms.map((m) => m.matrix.find((c) => c.attack === attack && c.secret === secret)).find((c) => c !== undefined);
    const label = `${attack} × ${secret} (${first?.owner ?? ''}${withSize && first !== undefined ? `, ${first.of}B` : ''})`;
    return [label, ...ms.map((m) => cell(m.matrix.find((x) => x.attack === attack && x.secret === secret)))];
  });
}

const COUNTS = ['cr3_writes', 'tlb_flushes', 'asi_exits', 'asi_entries', 'page_faults', 'asi_faults', 'l1d_flushes', 'verw', 'stuns', 'ipis', 'stun_spin_cycles', 'context_switches', 'tlb_walks', 'walk_upper_loads', 'stlb_hits', 'l1d_misses', 'events'];

const OPTIONAL_COUNTS = ['sci_faults', 'sci_mapped_ptes', 'kills', 'ephmap_maps', 'migrations'];

function costRows(r: SeedsReport, ms: readonly SetStats[], seeds: number): string[][] {
  const rows: string[][] = [['cycles', ...ms.map((m) => num(m.costs.cycles))]];
  if (seeds > 1) rows.push(['cycles (max-min)/median %', ...ms.map((m) => (m.costs.cycles > 0 ? ((m.costs.spread.cycles.max - m.costs.spread.cycles.min) / m.costs.cycles * 100).toFixed(2) : '0.00'))]);
  rows.push(['overhead %', ...ms.map((m) => (cutShort(r, m) ? 'killed' : m.costs.overhead_pct.toFixed(2)))]);
  if (seeds > 1) rows.push(['overhead % min..max', ...ms.map((m) => (cutShort(r, m) ? 'killed' : `${m.costs.spread.overhead_pct.min.toFixed(2)}..${m.costs.spread.overhead_pct.max.toFixed(2)}`))]);
  for (const k of COUNTS) rows.push([k, ...ms.map((m) => num(m.costs.counts[k] ?? 0))]);
  // How much of the kernel's code ran warm (sim/code-warmth.ts): why one workload's overhead differs from another's.
  if (ms.some((m) => (m.costs.counts.kernel_insns ?? 0) > 0)) {
    const share = (k: string) => (m: SetStats): string => { const n = m.costs.counts.kernel_insns ?? 0; return n > 0 ? ((100 * (m.costs.counts[k] ?? 0)) / n).toFixed(1) : '-'; };
    rows.push(['kernel insns warm %', ...ms.map(share('kernel_insns_warm'))]);
    // After an IBPB: still in the L1I, predictions discarded (uarch/code-cache.ts); runs stored before have no count.
    if (ms.some((m) => (m.costs.counts.kernel_insns_untrained ?? 0) > 0)) rows.push(['kernel insns untrained %', ...ms.map(share('kernel_insns_untrained'))]);
  }
  // System Call Isolation's, the ephmap's and load balancing's own counts, when any set has them.
  for (const k of OPTIONAL_COUNTS) if (ms.some((m) => (m.costs.counts[k] ?? 0) > 0)) rows.push([k, ...ms.map((m) => num(m.costs.counts[k] ?? 0))]);
  const kinds: string[] = [];
  for (const m of ms) for (const k of Object.keys(m.costs.by_kind)) if (!kinds.includes(k)) kinds.push(k);
  for (const k of kinds) rows.push([`cycles: ${k}`, ...ms.map((m) => num(m.costs.by_kind[k] ?? 0))]);
  return rows;
}

export function formatRunText(r: SeedsReport): string {
  const ms = r.mitigations;
  const n = r.seeds;
  const head = ['', ...ms.map((m) => m.name)];
  const seedText = n === 1 ? `seed ${r.seed}` : `seeds ${r.seed}..${r.seed + n - 1} (${n})`;
  const out: string[] = [
    `kasi run: ${r.scenario} (${r.file}), ${seedText}, cpu ${r.cpu}`,
    `workload: ${r.stop}; baseline for overhead: ${r.baseline}`,
    '',
  ];
  if (n === 1) {
    out.push('Leaks (bytes of each planted secret recovered by each attack; - = none)', ...table(head, leakRows(ms, cellText, false)));
  } else {
    out.push(
      `Leaks over ${n} seeds: seeds that leaked/${n} and the median bytes they recovered`,
      `(verdict: k/${n} = leaks: leaked in k of the ${n} seeds, so the set does not stop this attack; - = no leak in any seed:`,
      ` the chance that a run this long leaks is then below ${pctHi(wilson95(0, n)[1])} at 95% confidence; --json gives every cell's interval)`,
      ...(ms.some((m) => m.matrix.some((c) => c.verdict === 'unstable')) ? ['(~k/N: unstable, the verdict of a run stored before the any-seed rule: leaked in fewer than half of the seeds)'] : []),
      ...table(head, leakRows(ms, cellText, true)),
      '',
      'Time to first leak (median over the seeds that leaked, simulated time)',
      ...table(head, leakRows(ms, (c) => (c === undefined ? '' : c.first_leak_ns_median === null ? '-' : formatNs(c.first_leak_ns_median)), false)),
    );
    // From k and N, so a run stored before these fields existed lists its rare cells too.
    const rare = ms.flatMap((m) => m.matrix.filter((c) => rareLeak(c.seeds_leaked, c.seeds)).map((c) => {
      const [lo, hi] = wilson95(c.seeds_leaked, c.seeds);
      return `  ${m.name}: ${c.attack} × ${c.secret} ${c.seeds_leaked}/${c.seeds}, rate ${pctLo(lo)}–${pctHi(hi)} (95%)`;
    }));
    if (rare.length > 0) out.push('', `Rare leaks: another ${n} seeds could well show none of these (--seeds ${4 * n} to decide them)`, ...rare);
  }
  out.push('', `Costs (the same workload under each mitigation set${n > 1 ? `; medians over ${n} seeds` : ''})`, ...table(head, costRows(r, ms, n)));
  // A price the published figures do not pin (kasi calibrate --fit's valley) says so where it is paid.
  if (ms.some((m) => (m.costs.counts.l1d_flushes ?? 0) > 0)) out.push(`  l1d_flushes: each priced at costs.ts l1dFlushMsr (l1dFlushSoftware without X86_FEATURE_FLUSH_L1D), an assumption no published figure pins (kasi calibrate --fit finds a wide range as good; README "Calibration"); the scenario's costs.override (l1d_flush_msr: N) prices it otherwise`);
  const baseEvents = ms.find((m) => m.name === r.baseline)?.costs.counts.events ?? 0;
  for (const m of ms) if (cutShort(r, m)) out.push(`  ${m.name}: a kill cut the workload short (${num(m.costs.counts.events ?? 0)} of the baseline's ${num(baseEvents)} events${n > 1 ? ', median' : ''}): its cycles are of what ran, so it has no overhead (the notes below say what was killed)`);
  for (const m of ms) {
    const lines: string[] = [];
    if (m.asi_exit_reasons.length > 0) {
      lines.push(n === 1 ? `  ASI exits by cause (footprint, what, object: count):` : `  ASI exits by cause over ${n} seeds (footprint, what, object: total count, in how many seeds):`);
      for (const x of m.asi_exit_reasons.slice(0, 8)) lines.push(`    ${x.event}  ${x.part}  ${x.object}: ${x.count}${n === 1 ? '' : ` (${x.seeds}/${n})`}`);
      if (m.asi_exit_reasons.length > 8) lines.push(`    … ${m.asi_exit_reasons.length - 8} more (--json lists them all)`);
    }
    for (const note of m.notes) lines.push(`  note: ${note}`);
    if (lines.length > 0) out.push('', `${m.name} (${m.cmdline || 'default command line'}${m.stun ? ', stun' : ''}):`, ...lines);
  }
  const same = sameStateLines(r);
  if (same.length > 0) out.push('', 'Same configuration:', ...same.map((l) => `  note: ${l}`));
  return out.join('\n') + '\n';
}
