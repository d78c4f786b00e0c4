/**
 * Reader of bcc's tools/kvmexit.py output (all threads, -p, -p -a, -p -v, -t, -T), built to the
 * script's prints:
 *  - "Display kvm exit reasons and statistics for CONTEXT" + " after sleeping N secs." or
 *    "... Hit Ctrl-C to end."; CONTEXT is "all threads", "PID P", "PID P VCPU V",
 *    "PID P and its all threads", "TID T", "TIDS [...]";
 *  - a header "%s%-35s %s" % (header_format, "KVM_EXIT_REASON", "COUNT"), header_format being
 *    "PID      TID      " (all threads), "TID      " (-a), "TIDS     " (-T) or empty;
 *  - rows "%-8u %-8u %-35s %-8u" (pid, tid, reason, count), "%-8u %-35s %-8u" (tid, …) or
 *    "%-35s %-8u"; the reason names come from the script's exit_reasons tuple (vmx.h names;
 *    EXIT_REASON_-prefixed in versions before 2022, "N/A" for holes).
 * A Python traceback instead of a table (the script raises on a missing vCPU, a non-Intel CPU,
 * no /dev/kvm) is an error. Counts are summed over threads; -v's vCPU is the rows' vCPU.
 */
import { InputError } from './files.ts';
import { dropExitPrefix, exitReasonKey } from './exit-reasons.ts';
import type { Parsed, Row } from './profile.ts';
import { MAX_LINE, SkipList, count, elision, expectedAt, nextContent, noTable, quote, textLines } from './text.ts';

const EXPECTED = 'a bcc kvmexit.py table (a "KVM_EXIT_REASON   COUNT" header)';
const TITLE = /^Display kvm exit reasons and statistics for (.*?)(?: after sleeping (\d+) secs\.|\.\.\. Hit Ctrl-C to end\.)?$/;
const HEADER = /^((?:(?:PID|TID|TIDS)\s+)*)KVM_EXIT_REASON\s+COUNT$/;

export function parseBccKvmexit(text: string, file: string): Parsed {
  const lines = textLines(text, file);
  const skipped = new SkipList();
  const rows: Row[] = [];
  let ids: number | null = null; // id columns before the reason, once a header was seen
  let headerLine = 0;
  let vcpu: number | null = null;
  let durationNs: number | null = null;
  let seen = false;

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    if (t === '') continue;
    if (raw.length > MAX_LINE) { skipped.add(i + 1, 'line too long'); continue; }
    if (t.startsWith('Traceback (most recent call last)')) throw traceback(file, lines, i);
    const title = TITLE.exec(t);
    if (title !== null) {
      const v = /^PID \d+ VCPU (\d+)$/.exec(title[1]);
      vcpu = v === null ? null : Number(v[1]);
      durationNs = title[2] === undefined ? null : Number(title[2]) * 1e9;
      headerLine = Math.max(headerLine, i + 1); // rows are looked for after the title, or after the header when there is one
      seen = true;
      continue;
    }
    const h = HEADER.exec(t);
    if (h !== null) {
      ids = h[1].trim() === '' ? 0 : h[1].trim().split(/\s+/).length;
      headerLine = i + 1;
      seen = true;
      continue;
    }
    if (t === '^C') continue; // printed on Ctrl-C before the table
    const why = elision(t);
    if (why !== null) { skipped.add(i + 1, why); continue; }
    const toks = t.split(/\s+/);
    const n = toks.length;
    const c = count(toks[n - 1]);
    const lead = toks.slice(0, n - 2);
    const ok = n >= 2 && !Number.isNaN(c) && /^[A-Z][A-Z0-9_/]*$/.test(toks[n - 2]) && lead.length <= 2
      && lead.every((x) => /^\d+$/.test(x)) && (ids === null || lead.length === ids);
    if (!ok) { skipped.add(i + 1, ids === null ? 'not part of a kvmexit.py table' : 'not a row of this table'); continue; }
    const name = dropExitPrefix(toks[n - 2]);
    rows.push({ name, count: c, totalNs: null, errors: null, reason: exitReasonKey(name), vcpu, line: i + 1 });
    seen = true;
  }
  if (!seen) throw noTable(file, lines, EXPECTED);
  if (rows.length === 0) throw expectedAt(file, lines, nextContent(lines, headerLine), 'a "REASON COUNT" row of the kvmexit.py table');
  return { kind: 'vm-exits', rows, durationNs, skipped: skipped.done(), perVcpu: vcpu !== null };
}

/** The tool failed: say so at the traceback, with the exception it ends in. */
function traceback(file: string, lines: readonly string[], at: number): InputError {
  let exc = '';
  for (let j = at + 1; j < lines.length && j < at + 200; j++) {
    const t = lines[j].trim();
    if (/^(?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception|Exit|Interrupt)(?::|$)/.test(t)) exc = t;
  }
  return new InputError(file, `expected a kvmexit.py table, found a Python traceback (the tool failed${exc ? `: ${quote(exc)}` : ''})`, at + 1);
}
