/**
 * The workload profile every tool-output importer produces (issue 14): plain data, no model
 * types. `kasi import --json` prints it as is:
 *
 *   {"format":"kasi-workload/1","kind":"syscalls"|"vm-exits"|"ioport"|"mmio",
 *    "source":{"file":…,"detected":…},"duration_ns":N|null,
 *    "events":[{"name":…,"count":N,"total_ns":N|null,"errors":N|null,"reason":…},…],
 *    "skipped":[{"line":N,"why":…}]}
 *
 * Parsers return rows (one per table row or trace line, tagged with the vCPU where the tool says
 * it); toProfile() sums them by name over thread/vCPU sections, or keeps one vCPU's.
 */
import { InputError } from './files.ts';

export const WORKLOAD_FORMAT = 'kasi-workload/1';

export type ProfileKind = 'syscalls' | 'vm-exits' | 'ioport' | 'mmio';

export interface WorkloadEvent {
  /** The syscall or exit reason as the tool printed it (an EXIT_REASON_ prefix dropped). */
  name: string;
  count: number;
  total_ns: number | null;
  errors: number | null;
  /** Exits: the footprint key the reason maps to (`vm-exit:EPT_VIOLATION`); null for syscalls and unknown reasons. */
  reason: string | null;
}

export interface Skipped {
  line: number;
  why: string;
}

export interface WorkloadProfile {
  format: typeof WORKLOAD_FORMAT;
  kind: ProfileKind;
  source: { file: string; detected: string | null };
  duration_ns: number | null;
  events: WorkloadEvent[];
  skipped: Skipped[];
}

/** One readable row, before summing. */
export interface Row {
  name: string;
  count: number;
  totalNs: number | null;
  errors: number | null;
  reason: string | null;
  /** The vCPU the row belongs to, where the tool says (per-VCPU sections, trace lines); else null. */
  vcpu: number | null;
  line: number;
}

export interface Parsed {
  kind: ProfileKind;
  rows: Row[];
  durationNs: number | null;
  skipped: Skipped[];
  /** True when rows carry vCPU ids (a per-vCPU breakdown exists). */
  perVcpu: boolean;
  /** The rows a vCPU is selected from, when they are not `rows` (perf kvm stat: per-VCPU tables beside an all-VCPU one). */
  vcpuRows?: Row[];
}

export interface ProfileOptions {
  /** The format name when it was detected (source.detected), else null. */
  detected?: string | null;
  /** Keep this vCPU's rows only (needs a per-vCPU breakdown). */
  vcpu?: number;
}

/** Sum rows by name (first-seen order); optionally one vCPU's. */
export function toProfile(p: Parsed, file: string, opts: ProfileOptions = {}): WorkloadProfile {
  let rows = p.rows;
  if (opts.vcpu !== undefined) {
    if (!p.perVcpu) throw new InputError(file, `no per-vCPU breakdown in this file: cannot select vCPU ${opts.vcpu} (import it without a vCPU for the counts of all vCPUs)`);
    const from = p.vcpuRows ?? p.rows;
    rows = from.filter((r) => r.vcpu === opts.vcpu);
    if (rows.length === 0) {
      const have = [...new Set(from.map((r) => r.vcpu).filter((v) => v !== null))].sort((a, b) => a! - b!);
      throw new InputError(file, `no events of vCPU ${opts.vcpu} (the file has vCPU ${have.join(', ') || 'none'})`);
    }
  }
  const byName = new Map<string, WorkloadEvent>();
  for (const r of rows) {
    const e = byName.get(r.name);
    if (e === undefined) {
      byName.set(r.name, { name: r.name, count: r.count, total_ns: r.totalNs, errors: r.errors, reason: r.reason });
      continue;
    }
    e.count += r.count;
    e.total_ns = e.total_ns === null || r.totalNs === null ? (e.total_ns ?? r.totalNs) : e.total_ns + r.totalNs;
    e.errors = e.errors === null || r.errors === null ? (e.errors ?? r.errors) : e.errors + r.errors;
  }
  return {
    format: WORKLOAD_FORMAT,
    kind: p.kind,
    source: { file, detected: opts.detected ?? null },
    duration_ns: p.durationNs,
    events: [...byName.values()],
    skipped: p.skipped,
  };
}
