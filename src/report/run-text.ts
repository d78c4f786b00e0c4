/**
 * `kasi run` as text: the mitigation sets side by side — first the leak matrix (attack × secret:
 * bytes leaked / bytes planted), then the cost table (cycles of the same workload, overhead
 * against the baseline, the counts, cycles by event kind), then the ASI exit reasons and the
 * notes of each set. Deterministic: the same report gives the same text.
 */
import type { MitigationResult, RunReport } from '../sim/run.ts';

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

const num = (n: number): string => n.toLocaleString('en-US');

function leakRows(ms: readonly MitigationResult[]): string[][] {
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const m of ms) for (const c of m.matrix) {
    const k = `${c.attack}\u0000${c.secret}`;
    if (!seen.has(k)) { seen.add(k); keys.push(k); }
  }
  return keys.map((k) => {
    const [attack, secret] = k.split('\u0000');
    const owner = ms[0].matrix.find((c) => c.attack === attack && c.secret === secret)?.owner ?? '';
    return [`${attack} × ${secret} (${owner})`, ...ms.map((m) => {
      const c = m.matrix.find((x) => x.attack === attack && x.secret === secret);
      return c === undefined ? '' : c.bytes === 0 ? '-' : `${c.bytes}/${c.of}`;
    })];
  });
}

const COUNTS = ['cr3_writes', 'tlb_flushes', 'asi_exits', 'asi_entries', 'page_faults', 'asi_faults', 'l1d_flushes', 'verw', 'stuns', 'ipis', 'stun_spin_cycles', 'context_switches', 'tlb_walks', 'l1d_misses', 'events'];

function costRows(ms: readonly MitigationResult[]): string[][] {
  const rows: string[][] = [
    ['cycles', ...ms.map((m) => num(m.costs.cycles))],
    ['overhead %', ...ms.map((m) => m.costs.overhead_pct.toFixed(2))],
  ];
  for (const k of COUNTS) rows.push([k, ...ms.map((m) => num(m.costs.counts[k] ?? 0))]);
  const kinds: string[] = [];
  for (const m of ms) for (const k of Object.keys(m.costs.by_kind)) if (!kinds.includes(k)) kinds.push(k);
  for (const k of kinds) rows.push([`cycles: ${k}`, ...ms.map((m) => num(m.costs.by_kind[k] ?? 0))]);
  return rows;
}

export function formatRunText(r: RunReport): string {
  const ms = r.mitigations;
  const head = ['', ...ms.map((m) => m.name)];
  const out: string[] = [
    `kasi run: ${r.scenario} (${r.file}), seed ${r.seed}, cpu ${r.cpu}`,
    `workload: ${r.stop}; baseline for overhead: ${r.baseline}`,
    '',
    'Leaks (bytes of each planted secret recovered by each attack; - = none)',
    ...table(head, leakRows(ms)),
    '',
    'Costs (the same workload under each mitigation set)',
    ...table(head, costRows(ms)),
  ];
  for (const m of ms) {
    const lines: string[] = [];
    if (m.asi_exit_reasons.length > 0) {
      lines.push(`  ASI exits by cause (footprint, what, object: count):`);
      for (const x of m.asi_exit_reasons.slice(0, 8)) lines.push(`    ${x.event}  ${x.part}  ${x.object}: ${x.count}`);
      if (m.asi_exit_reasons.length > 8) lines.push(`    … ${m.asi_exit_reasons.length - 8} more (--json lists them all)`);
    }
    for (const n of m.notes) lines.push(`  note: ${n}`);
    if (lines.length > 0) out.push('', `${m.name} (${m.cmdline || 'default command line'}${m.stun ? ', stun' : ''}):`, ...lines);
  }
  return out.join('\n') + '\n';
}
