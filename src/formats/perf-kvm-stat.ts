/**
 * Reader of `perf kvm stat report` and `perf kvm stat live` output, built to
 * tools/perf/builtin-kvm.c print_result() / print_vcpu_info() / show_timeofday():
 *  - "Analyze events for all VMs, all VCPUs:" ("pid(s) P, " for -p, "VCPU N:" for --vcpu N;
 *    3.x: "Analyze events for all VCPUs:");
 *  - the header "%*s %10s %9s %9s %11s %11s %16s": the event type (VM-EXIT, "IO Port Access",
 *    "MMIO Access"), Samples, Samples%, Time%, Min Time, Max Time, Avg time (3.x has no Min/Max);
 *  - rows: the key right-aligned (exit reason — VMX names on Intel, svm.h's lower-case ones on
 *    AMD, some with a space like "PF excp" —, "0x3f8:POUT" for ioport, "0xfee00380:W" for mmio),
 *    "%10llu %8.2f%% %8.2f%% %9.2fus %9.2fus %9.2fus ( +-%7.2f%% )";
 *  - "Total Samples:N, Total events handled time:Xus." closes a table; "Lost events: N".
 * Live mode clears the screen (ESC[H ESC[2J), prints "HH:MM:SS.usec" and a table every
 * --display interval, and resets the counts after each (perf_kvm__handle_timerfd →
 * clear_events_cache_stats), so of repeated tables of one section the last complete one counts
 * and the interval between the last two timestamps is its duration. Tables of different
 * sections (per-VCPU reports) are summed; with an all-VCPU table present, that one is the total.
 * A row's total time is Samples × Avg time (avg = etime / ecount in print_result()).
 */
import { exitReasonKey } from './exit-reasons.ts';
import type { Parsed, ProfileKind, Row } from './profile.ts';
import { MAX_LINE, SkipList, count, decimal, elision, expectedAt, nextContent, noTable, textLines } from './text.ts';

const EXPECTED = 'a perf kvm stat table (an "Analyze events for ..." line or a "VM-EXIT  Samples  Samples%  Time% ..." header)';
const KINDS: Readonly<Record<string, ProfileKind>> = { 'VM-EXIT': 'vm-exits', 'IO Port Access': 'ioport', 'MMIO Access': 'mmio' };

interface Table {
  section: string;
  vcpu: number | null;
  kind: ProfileKind;
  minMax: boolean;
  rows: Row[];
  complete: boolean;
  line: number;
  /** Live mode: the timestamp printed before the table (µs of the day). */
  tsUs: number | null;
  /** The "Total Samples:N" line that closed the table. */
  total?: { samples: number; line: number };
}

const SECTION = /^Analyze events for (.*?)(?:all VCPUs|VCPU (\d+)):?$/;
const HEADER = /^(.*?)\s+Samples\s+Samples%\s+Time%(.*)$/;
const TOTAL = /^Total Samples:\s*(\d+), Total events handled time:\s*([\d.]+)us\.?$/;
const TIMESTAMP = /^(\d\d):(\d\d):(\d\d)\.(\d{6})$/;
/**
 * "Lost events", the rest of a header that mail wrapping moved to the next line, and live mode's
 * --duration reports (handle_end_event(): "%llu VM %d, vcpu %d: %s event took %lluusec").
 */
const CHATTER = [/^Lost events: \d+$/, /^((Min|Max|Time)\s+)*Avg time$/, /^\d+ VM -?\d+, vcpu -?\d+: .* event took \d+usec$/];

export function parsePerfKvmStat(text: string, file: string): Parsed {
  const lines = textLines(text, file);
  const skipped = new SkipList();
  const tables: Table[] = [];
  let section = { name: 'all', vcpu: null as number | null };
  let tsUs: number | null = null;
  const stamps: number[] = [];
  let table: Table | null = null;
  let seen = false;
  let lastHeader = 0; // the last section or table header line

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    if (t === '') continue;
    if (raw.length > MAX_LINE) { skipped.add(i + 1, 'line too long'); continue; }
    const ts = TIMESTAMP.exec(t);
    if (ts !== null) {
      tsUs = ((Number(ts[1]) * 60 + Number(ts[2])) * 60 + Number(ts[3])) * 1e6 + Number(ts[4]);
      stamps.push(tsUs);
      continue;
    }
    const sec = SECTION.exec(t);
    if (sec !== null) {
      section = { name: `${sec[1]}${sec[2] === undefined ? 'all' : `VCPU ${sec[2]}`}`, vcpu: sec[2] === undefined ? null : Number(sec[2]) };
      seen = true;
      table = null;
      lastHeader = i + 1;
      continue;
    }
    const h = HEADER.exec(t);
    if (h !== null && KINDS[h[1].trim()] !== undefined) {
      table = { section: section.name, vcpu: section.vcpu, kind: KINDS[h[1].trim()], minMax: /Min Time/.test(h[2]), rows: [], complete: false, line: i + 1, tsUs };
      tables.push(table);
      seen = true;
      lastHeader = i + 1;
      continue;
    }
    const tot = TOTAL.exec(t);
    if (tot !== null) {
      if (table !== null) { table.complete = true; table.total = { samples: Number(tot[1]), line: i + 1 }; }
      table = null;
      seen = true;
      continue;
    }
    if (CHATTER.some((re) => re.test(t))) continue;
    const why = elision(t);
    if (why !== null) { skipped.add(i + 1, why); continue; }
    if (table === null) {
      // Rows whose header was cut off: an implicit table, laid out as the first row is.
      const guess: Table = { section: section.name, vcpu: section.vcpu, kind: 'vm-exits', minMax: true, rows: [], complete: false, line: i + 1, tsUs };
      for (const minMax of [true, false]) {
        const r = row({ ...guess, minMax }, t, i + 1);
        if (r === null) continue;
        const kind: ProfileKind = /^0x[0-9a-f]+:(PIN|POUT)$/i.test(r.name) ? 'ioport' : /^0x[0-9a-f]+:[RW]$/i.test(r.name) ? 'mmio' : 'vm-exits';
        table = { ...guess, minMax, kind };
        tables.push(table);
        seen = true;
        break;
      }
    }
    if (table !== null) {
      let r = row(table, t, i + 1);
      if (r === null && i + 1 < lines.length && lines[i + 1].length <= MAX_LINE) {
        const next = lines[i + 1].trim();
        if (next !== '' && !TOTAL.test(next) && !HEADER.test(next)) {
          r = row(table, `${t} ${next}`, i + 1); // a mail-wrapped row
          if (r !== null) i++;
        }
      }
      if (r !== null) { table.rows.push(r); continue; }
    }
    skipped.add(i + 1, table !== null ? 'not a row of this table' : 'not part of a perf kvm stat table');
  }
  if (!seen) throw noTable(file, lines, EXPECTED);
  const chosen = choose(tables, skipped);
  const empty = tables.filter((t) => t.complete && t.rows.length === 0);
  if (chosen.length === 0 && empty.length > 0) {
    // A complete table of no samples ("Total Samples:0"): a real answer, not a missing table.
    return { kind: empty[0].kind, rows: [], durationNs: null, skipped: skipped.done(), perVcpu: empty.some((t) => t.vcpu !== null) };
  }
  if (chosen.length === 0) {
    throw expectedAt(file, lines, nextContent(lines, lastHeader, (t) => CHATTER.some((re) => re.test(t))), 'a row of the perf kvm stat table');
  }
  for (const c of chosen) {
    // print_result() sums every event into Total Samples: rows adding up to less were cut from the file (an author's elision, a lost line).
    const sum = c.rows.reduce((a, r) => a + r.count, 0);
    if (c.total !== undefined && sum !== c.total.samples) {
      skipped.add(c.total.line, `the rows read add up to ${sum} samples, this line says ${c.total.samples}: ${Math.abs(c.total.samples - sum)} ${sum < c.total.samples ? 'are in rows the file does not have (cut?)' : 'more than counted (rows of another table?)'}`);
    }
  }
  const all = chosen.filter((c) => c.vcpu === null);
  const perVcpu = chosen.filter((c) => c.vcpu !== null);
  const rows = (all.length > 0 ? all : perVcpu).flatMap((c) => c.rows);
  let durationNs: number | null = null;
  const last = chosen[chosen.length - 1];
  if (chosen.length === 1 && last.tsUs !== null) {
    const k = stamps.lastIndexOf(last.tsUs);
    if (k > 0) durationNs = Math.round((((last.tsUs - stamps[k - 1]) % 864e8) + 864e8) % 864e8 * 1000);
  }
  return { kind: chosen[0].kind, rows, vcpuRows: perVcpu.flatMap((c) => c.rows), durationNs, skipped: skipped.done(), perVcpu: perVcpu.length > 0 };
}

/** Per section, the last complete table (else the last with rows); tables of another event type than the first are dropped. */
function choose(tables: readonly Table[], skipped: SkipList): Table[] {
  const withRows = tables.filter((t) => t.rows.length > 0);
  if (withRows.length === 0) return [];
  const kind = withRows.some((t) => t.kind === 'vm-exits') ? 'vm-exits' : withRows[0].kind;
  const bySection = new Map<string, Table[]>();
  for (const t of withRows) {
    if (t.kind !== kind) { skipped.add(t.line, `a ${t.kind} table: only the ${kind} tables are counted`); continue; }
    bySection.set(t.section, [...(bySection.get(t.section) ?? []), t]);
  }
  const out: Table[] = [];
  for (const ts of bySection.values()) {
    const complete = ts.filter((t) => t.complete);
    const pick = complete.length > 0 ? complete[complete.length - 1] : ts[ts.length - 1];
    for (const t of ts) {
      if (t === pick) continue;
      skipped.add(t.line, t.complete ? 'an earlier table of the same section (live mode: the last complete table counts)' : 'an incomplete table (no "Total Samples" line): the last complete one counts');
    }
    out.push(pick);
  }
  return out.sort((a, b) => a.line - b.line);
}

/** A row: KEY SAMPLES SAMPLES% TIME% [MIN MAX] AVG [( +- X% )], or null. */
function row(table: Table, t: string, line: number): Row | null {
  const toks = t.split(/\s+/);
  // The key may hold spaces (svm.h "PF excp"): it ends where samples, samples% and time% begin.
  let k = 1;
  while (k + 2 < toks.length && !(/^\d+$/.test(toks[k]) && pct(toks[k + 1]) && pct(toks[k + 2]))) k++;
  if (k + 2 >= toks.length || k > 4) return null;
  const samples = count(toks[k]);
  const us = toks.slice(k + 3).map((s) => (s.endsWith('us') ? decimal(s.slice(0, -2)) : NaN));
  const nTimes = table.minMax ? 3 : 1;
  if (us.length < nTimes || us.slice(0, nTimes).some(Number.isNaN)) return null;
  const rest = toks.slice(k + 3 + nTimes);
  if (rest.length > 0 && !rest[0].startsWith('(')) return null;
  const avgUs = us[nTimes - 1];
  const name = toks.slice(0, k).join(' ');
  return { name, count: samples, totalNs: Math.round(avgUs * samples * 1000), errors: null, reason: reasonOf(table.kind, name), vcpu: table.vcpu, line };
}

function pct(s: string): boolean {
  return /^(\d+\.\d+|-?nan|inf)%$/.test(s);
}

/**
 * ioport keys are IO_INSTRUCTION exits. mmio keys are emulated MMIO: EPT_MISCONFIG on the
 * KVM MMIO-SPTE path (handle_ept_misconfig), or APIC_ACCESS for the local APIC page
 * (0xfee00000-0xfeefffff, the APIC-access page; vmx.c handle_apic_access).
 */
function reasonOf(kind: ProfileKind, name: string): string | null {
  if (kind === 'vm-exits') return exitReasonKey(name);
  if (kind === 'ioport') return 'vm-exit:IO_INSTRUCTION';
  return /^0xfee[0-9a-f]{5}:/i.test(name) ? 'vm-exit:APIC_ACCESS' : 'vm-exit:EPT_MISCONFIG';
}
