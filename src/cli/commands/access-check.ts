/**
 * `kasi access-check CASES.jsonl[.gz] [--json]`: replay QEMU's measured access-rights cases
 * (test/fixtures/access/README.md) through the walker and report every case whose fault,
 * error code or A/D bits differ from the expected answer (the SDM's where QEMU departs
 * from it, QEMU's elsewhere). Exit 0 when all pass, 1 when any fails, 2 on bad input.
 */
import type { Command } from 'commander';
import {
  LEVEL_NAMES, formatAD, formatErrorCode, formatFault, loadAccessCases, runAccessCase, type CaseOutcome, type Outcome,
} from '../../x86/access-cases.ts';

const HELP_AFTER = `
Text output: one block per failing case, then a final line "N passed, M failed".
--json: one JSON object per case on stdout (JSON lines), fields
  id, family, desc, access, cpl, ctl, source ("sdm_expected" | "result"), pass,
  expected, got ({vector, error_code, error_bits, ad: {pml4e: {A, D}, ...}}), clobbered;
  the "N passed, M failed" line goes to stderr.
Exit status: 0 all passed, 1 some failed, 2 unreadable or invalid input.`;

export function registerAccessCheck(program: Command): void {
  program
    .command('access-check')
    .description("replay QEMU's measured access-rights cases through the page walker and compare (SDM answer where QEMU departs)")
    .argument('<cases>', 'a .jsonl or .jsonl.gz file of access cases')
    .option('--json', 'print one JSON object per case (JSON lines); the summary line goes to stderr')
    .addHelpText('after', HELP_AFTER)
    .action((file: string, opts: { json?: boolean }) => {
      // A reader that stops early (`| head`) is not an error.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
        throw err;
      });
      const cases = loadAccessCases(file);
      let passed = 0;
      let failed = 0;
      const out: string[] = [];
      for (const c of cases) {
        const r = runAccessCase(c);
        if (r.pass) passed++;
        else failed++;
        if (opts.json) out.push(JSON.stringify(toJson(r)));
        else if (!r.pass) out.push(describeFailure(r));
        if (out.length >= 512) flush(out);
      }
      flush(out);
      const summary = `${passed} passed, ${failed} failed`;
      if (opts.json) process.stderr.write(`${summary}\n`);
      else process.stdout.write(`${summary}\n`);
      process.exitCode = failed > 0 ? 1 : 0;
    });
}

function flush(lines: string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  lines.length = 0;
}

function describeFailure(r: CaseOutcome): string {
  const c = r.case;
  const ctl = Object.entries(c.ctl).map(([k, v]) => `${k.toUpperCase()}=${v}`).join(' ');
  const lines = [
    `FAIL case ${c.id} (line ${c.line}) [${c.family}] ${c.desc}`,
    `  access ${c.access} cpl ${c.cpl} addr 0x${c.addr.toString(16).padStart(16, '0')} ${c.pageSize} page; ${ctl}`,
    `  ${`expected (${r.source === 'sdm_expected' ? 'SDM' : 'QEMU'}):`.padEnd(17)} ${formatFault(r.expected).padEnd(24)} ${formatAD(r.expected.ad)}`,
    `  ${'got:'.padEnd(17)} ${formatFault(r.got).padEnd(24)} ${formatAD(r.got.ad)}`,
  ];
  if (r.clobbered.length > 0) lines.push(`  entries changed beyond A/D: ${r.clobbered.join(', ')}`);
  return lines.join('\n');
}

function outcomeJson(o: Outcome) {
  const ec = o.vector === 0 ? null : o.errorCode;
  return {
    vector: o.vector === 0 ? null : o.vector,
    error_code: ec,
    error_bits: o.vector === 14 ? formatErrorCode(o.errorCode) : null,
    ad: Object.fromEntries(LEVEL_NAMES.map((l) => [l, o.ad[l]])),
  };
}

function toJson(r: CaseOutcome) {
  const c = r.case;
  return {
    id: c.id, family: c.family, desc: c.desc, access: c.access, cpl: c.cpl, ctl: c.ctl,
    source: r.source, pass: r.pass, expected: outcomeJson(r.expected), got: outcomeJson(r.got),
    clobbered: r.clobbered,
  };
}
