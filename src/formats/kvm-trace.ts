/**
 * Reader of kvm_exit / kvm_entry trace lines (tracefs `trace`/`trace_pipe`, `trace-cmd report`,
 * `perf script`), in every generation of the tracepoint format of arch/x86/kvm/trace.h:
 *  - kvm_exit "reason %s rip 0x%lx info %llx %llx" (to 5.6; no vCPU);
 *  - "vcpu %u reason %s%s%s rip 0x%lx info %llx %llx" (vcpu_id added);
 *  - "vcpu %u reason %s%s%s rip 0x%lx info1 0x%016llx info2 0x%016llx intr_info 0x%08x
 *    error_code 0x%08x" (5.10+), later with " requests 0x%016llx" and flags appended;
 *  - the reason is kvm_print_exit_reason(): a VMX_EXIT_REASONS name plus " FAILED_VMENTRY"
 *    flags, or an SVM_EXIT_REASONS lower-case name ("hlt", "msr", "npf", "PF excp"); trace-cmd's
 *    kvm plugin prints "reason %s rip 0x%lx info %llx %llx" with its own names ("EXIT_NPF",
 *    "UNKNOWN (N)"); a trace without print formats shows raw "exit_reason=48 ... isa=1" fields;
 *  - kvm_entry "vcpu %u" (old), "vcpu %u, rip 0x%lx" (5.x), with intr_info etc. appended (6.12).
 * The prefix "TASK-PID [CPU] FLAGS TIMESTAMP: " (ftrace; trace-cmd has no flags column, perf
 * script "COMM PID [CPU] TIMESTAMP: kvm:kvm_exit:") may be missing in part or whole.
 * Each kvm_exit line counts one exit; an exit followed by the next kvm_entry of the same vCPU
 * thread (task, else vCPU, else CPU) gives that exit its handling time; the span of the
 * timestamps is the duration. Exits never paired add no time.
 */
import { dropExitPrefix, exitReasonKey, exitReasonName } from './exit-reasons.ts';
import type { Parsed, Row } from './profile.ts';
import { InputError } from './files.ts';
import { MAX_LINE, SkipList, elision, noTable, quote, textLines } from './text.ts';

const EXPECTED = 'kvm_exit trace lines ("kvm_exit: vcpu 0 reason HLT rip 0x... info1 ..." or "kvm_exit: reason EPT_VIOLATION rip 0x... info 181 0")';

const EVENT = /(?:^|\s)(?:kvm:)?(kvm_exit|kvm_entry):(?:\s+|$)/;
/** Any trace line: "... TIMESTAMP: [system:]event:" (a counter clock prints no fraction). */
const TRACE_LINE = /(?:^|[\s\]])(\d{1,12})(?:\.(\d{1,9}))?:\s+(?:\w+:)?\w+:(?:\s|$)/;
const FORMATTED = /^(?:vcpu (\d+),? )?reason (.+?) rip (?:0x)?([0-9a-fA-F]+)(?: info1? (?:0x)?([0-9a-fA-F]+))?/;
const CHATTER = [/^#/, /^cpus=\d+$/, /^version = /, /^CPU \d+ is empty$/, /^CPU:\d+ \[LOST \d+ EVENTS\]$/, /^trace-cmd: /];

export function parseKvmTrace(text: string, file: string): Parsed {
  const lines = textLines(text, file);
  const skipped = new SkipList();
  const rows: Row[] = [];
  const pending = new Map<string, { row: Row; ts: number | null }>();
  const vcpuOf = new Map<string, number>();
  let first: number | null = null;
  let last: number | null = null;
  let badExit: { line: number; payload: string } | null = null;

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    if (t === '') continue;
    if (raw.length > MAX_LINE) { skipped.add(i + 1, 'line too long'); continue; }
    const ev = EVENT.exec(t);
    const tl = TRACE_LINE.exec(ev !== null ? t.slice(0, ev.index + ev[0].length) : t);
    const ts = tl !== null ? Number(tl[1]) * 1e9 + Number((tl[2] ?? '').padEnd(9, '0')) : null;
    if (ts !== null) {
      if (first === null || ts < first) first = ts;
      if (last === null || ts > last) last = ts;
    }
    if (ev === null) {
      if (tl !== null || CHATTER.some((re) => re.test(t))) continue;
      skipped.add(i + 1, elision(t) ?? 'not a trace line');
      continue;
    }
    const prefix = t.slice(0, ev.index);
    const payload = t.slice(ev.index + ev[0].length);
    const task = /^(.*\S)-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]/.exec(prefix) ?? /^(.*\S)\s+(\d+)\s+\[\d+\]/.exec(prefix);
    const cpu = /\[(\d+)\]/.exec(prefix);
    if (ev[1] === 'kvm_entry') {
      const v = /^vcpu (\d+)/.exec(payload) ?? /\bvcpu_id=(\d+)/.exec(payload);
      const key = task !== null ? `task ${task[2]}` : v !== null ? `vcpu ${v[1]}` : cpu !== null ? `cpu ${cpu[1]}` : 'all';
      if (v !== null) vcpuOf.set(key, Number(v[1]));
      const p = pending.get(key);
      if (p !== undefined && p.ts !== null && ts !== null && ts >= p.ts) p.row.totalNs = (p.row.totalNs ?? 0) + (ts - p.ts);
      pending.delete(key);
      continue;
    }
    const exit = parseExit(payload);
    if (exit === null) { skipped.add(i + 1, 'a kvm_exit line in no known format'); badExit ??= { line: i + 1, payload }; continue; }
    const key = task !== null ? `task ${task[2]}` : exit.vcpu !== null ? `vcpu ${exit.vcpu}` : cpu !== null ? `cpu ${cpu[1]}` : 'all';
    const vcpu = exit.vcpu ?? vcpuOf.get(key) ?? null;
    const row: Row = { name: exit.name, count: 1, totalNs: null, errors: null, reason: exit.reason, vcpu, line: i + 1 };
    rows.push(row);
    pending.set(key, { row, ts });
  }
  if (rows.length === 0 && badExit !== null) {
    // kvm_exit lines, none readable (cut short, or a format of no trace.h generation): say so at the first, quoting what follows "kvm_exit:".
    throw new InputError(file, `expected ${EXPECTED.replace('kvm_exit trace lines', 'a kvm_exit line in a trace.h format')}, found kvm_exit: ${quote(badExit.payload)}`, badExit.line);
  }
  if (rows.length === 0) throw noTable(file, lines, EXPECTED);
  const durationNs = first !== null && last !== null && last > first ? last - first : null;
  return { kind: 'vm-exits', rows, durationNs, skipped: skipped.done(), perVcpu: rows.some((r) => r.vcpu !== null) };
}

function parseExit(payload: string): { name: string; reason: string | null; vcpu: number | null } | null {
  const m = FORMATTED.exec(payload);
  if (m !== null) {
    const name = dropExitPrefix(m[2].trim());
    if (name === '') return null;
    const info1 = m[4] !== undefined && m[4].length <= 16 ? BigInt(`0x${m[4]}`) : undefined;
    return { name, reason: exitReasonKey(name, info1), vcpu: m[1] === undefined ? null : Number(m[1]) };
  }
  // No print format: the raw fields (exit_reason=48 guest_rip=0x... isa=1 info1=0x... vcpu_id=0).
  const code = /\bexit_reason=(\d{1,10})\b/.exec(payload);
  if (code === null) return null;
  const isa = /\bisa=(\d)\b/.exec(payload);
  const name = exitReasonName(Number(code[1]), isa === null ? 1 : Number(isa[1])) ?? `exit_reason=${code[1]}`;
  const info = /\binfo1=(?:0x)?([0-9a-fA-F]{1,16})\b/.exec(payload);
  const vcpu = /\bvcpu_id=(\d+)/.exec(payload);
  return { name, reason: exitReasonKey(name, info === null ? undefined : BigInt(`0x${info[1]}`)), vcpu: vcpu === null ? null : Number(vcpu[1]) };
}
