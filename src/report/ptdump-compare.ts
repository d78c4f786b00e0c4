/**
 * Two page-table dumps in the kernel's ptdump format (arch/x86/mm/dump_pagetables.c), read by
 * formats/ptdump.ts, compared region by region: the model's (report/ptdump.ts) and a real
 * kernel's /sys/kernel/debug/page_tables/* file (`kasi kernel --compare-ptdump FILE`).
 * Regions pair by marker name (and occurrence); within a region the runs must agree exactly
 * (start, end, flags, level); the present bytes per flag set are shown either way, since a real
 * kernel with other RAM, KASLR or modules differs run by run but not in kind.
 */
import type { Ptdump, PtdumpRange, PtdumpRegion } from '../formats/ptdump.ts';

export interface RegionCompare {
  name: string | null;
  /** Where the region is. */
  in: 'both' | 'model' | 'file';
  same: boolean;
  modelRuns: number;
  fileRuns: number;
  /** The first run that differs (null on the side that has none there). */
  first: { model: string | null; file: string | null; line: number | null } | null;
  /** Present bytes by flag set ("RW GLB NX pte" → bytes), each side. */
  model: Record<string, string>;
  file: Record<string, string>;
}

export interface PtdumpCompare {
  ok: boolean;
  regions: RegionCompare[];
}

const runText = (r: PtdumpRange) => `${r.start}-${r.end} ${r.flags.length > 0 ? r.flags.join(' ') : '(not present)'} ${r.level}`;

function presentBytes(r: PtdumpRegion | undefined): Record<string, string> {
  const by = new Map<string, bigint>();
  for (const x of r?.ranges ?? []) {
    if (!x.present) continue;
    const k = `${x.flags.join(' ')} ${x.level}`;
    by.set(k, (by.get(k) ?? 0n) + BigInt(x.bytes));
  }
  return Object.fromEntries([...by].map(([k, v]) => [k, v.toString()]));
}

function keyed(d: Ptdump): Map<string, PtdumpRegion> {
  const seen = new Map<string, number>();
  const out = new Map<string, PtdumpRegion>();
  for (const r of d.regions) {
    const n = seen.get(String(r.name)) ?? 0;
    seen.set(String(r.name), n + 1);
    out.set(`${r.name}#${n}`, r);
  }
  return out;
}

export function comparePtdumps(model: Ptdump, file: Ptdump): PtdumpCompare {
  const m = keyed(model);
  const f = keyed(file);
  const keys = [...m.keys(), ...[...f.keys()].filter((k) => !m.has(k))];
  const regions = keys.map((k): RegionCompare => {
    const a = m.get(k);
    const b = f.get(k);
    const ra = a?.ranges ?? [];
    const rb = b?.ranges ?? [];
    let first: RegionCompare['first'] = null;
    for (let i = 0; i < Math.max(ra.length, rb.length); i++) {
      const x = ra[i] === undefined ? null : runText(ra[i]);
      const y = rb[i] === undefined ? null : runText(rb[i]);
      if (x !== y) { first = { model: x, file: y, line: rb[i]?.line ?? b?.line ?? null }; break; }
    }
    const same = a !== undefined && b !== undefined && first === null;
    return { name: (a ?? b)!.name, in: a === undefined ? 'file' : b === undefined ? 'model' : 'both', same, modelRuns: ra.length, fileRuns: rb.length, first, model: presentBytes(a), file: presentBytes(b) };
  });
  return { ok: regions.every((r) => r.same), regions };
}

export function formatPtdumpCompare(c: PtdumpCompare, file: string): string {
  const out = [`ptdump comparison with ${file}: ${c.ok ? 'every region the same' : `${c.regions.filter((r) => !r.same).length} of ${c.regions.length} regions differ`}`];
  for (const r of c.regions) {
    const name = r.name ?? '(before any marker)';
    if (r.same) { out.push(`  ${name}: same (${r.modelRuns} runs)`); continue; }
    const side = r.in === 'both' ? '' : ` (only in the ${r.in})`;
    out.push(`  ${name}: differs${side}: ${r.modelRuns} runs in the model, ${r.fileRuns} in the file`);
    if (r.first) out.push(`    first difference${r.first.line !== null ? ` (file line ${r.first.line})` : ''}: model ${r.first.model ?? '(none)'} | file ${r.first.file ?? '(none)'}`);
    for (const k of [...new Set([...Object.keys(r.model), ...Object.keys(r.file)])].sort()) {
      if (r.model[k] !== r.file[k]) out.push(`    present ${k}: model ${r.model[k] ?? 0} bytes, file ${r.file[k] ?? 0} bytes`);
    }
  }
  return out.join('\n');
}
