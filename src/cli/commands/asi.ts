/**
 * `kasi asi`: build a design's restricted address space for a context of a booted system
 * (2 processes, 2 VMs, 2 network namespaces with objects) and show it next to the full one.
 *
 *   kasi asi --design NAME [--capture DIR] [--vm N | --process N | --netns N]
 *            [--ptdump] [--diff full] [--verify [--fail-on-exposure]] [--highmap-tail keep|unmap]
 *            [--json] [--footprints] [--after SYSCALL]
 *
 * --verify walks every leaf of the restricted root and checks it against the full tables, the
 * design's construction rule and every allocation (src/asi/verify.ts). A model error (a page
 * mapped differently from the full space, or where the design does not put it) exits 1; design
 * exposures (other tenants' or sensitive data reachable because of how the design works, each
 * with a cause) are reported and exit 0, or 1 with --fail-on-exposure.
 * --highmap-tail unmap boots the kernel with the image tail unmapped from the high map
 * (src/linux/image-tail.ts), the what-if that closes the image-tail alias.
 * --design sci-2019 builds the per-task System Call Isolation tables of --process N
 * (src/asi/sci-space.ts) and --verify checks them against SCI's construction rule
 * (src/asi/sci-verify.ts); --after SYSCALL replays one isolated system call and shows and
 * verifies what SCI has mapped in the middle of it (src/asi/sci-after.ts); --footprints
 * replays the captured syscall footprints through SCI (src/asi/sci-report.ts).
 */
import type { Command } from 'commander';
import { ptdump } from '../../report/ptdump.ts';
import { formatSize } from '../../report/units.ts';
import { markerLayout } from '../../linux/compare.ts';
import { designNames, getDesign, makeContext, systemFor, type ContextSelection } from '../../asi/registry.ts';
import { buildSpace } from '../../asi/restricted.ts';
import { compareRegions, missingRuns, verifySpace, type VerifyResult } from '../../asi/verify.ts';
import { DEFAULT_FOOTPRINTS, sciFootprintsReport } from '../../asi/sci-report.ts';
import { sci2019 } from '../../asi/designs/sci-2019.ts';
import { buildSciSpace } from '../../asi/sci-space.ts';
import { verifySci } from '../../asi/sci-verify.ts';
import { sciAfterSyscall, type SciAfter } from '../../asi/sci-after.ts';
import type { RestrictedSpace } from '../../asi/types.ts';
import { bootSystem, populateTenants, type System } from '../../linux/system.ts';
import { loadKallsyms } from '../../formats/kallsyms.ts';
import { loadFootprints } from '../../formats/footprints.ts';
import { slidKallsyms } from '../../sim/sci-run.ts';
import { loadFootprintTable } from '../../sim/footprints.ts';
import { join } from 'node:path';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';

interface Opts {
  design?: string;
  capture?: string;
  vm?: string;
  process?: string;
  netns?: string;
  ptdump?: boolean;
  diff?: string;
  verify?: boolean;
  failOnExposure?: boolean;
  highmapTail?: string;
  json?: boolean;
  footprints?: boolean;
  after?: string;
}

const hex = (v: bigint | number) => '0x' + (typeof v === 'bigint' ? BigInt.asUintN(64, v) : v).toString(16);

function index(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,6}$/.test(v)) throw new UsageError(`--${name}: expected a non-negative integer, found ${JSON.stringify(v)}`);
  return Number(v);
}

function findingLines(title: string, list: VerifyResult['forbidden'], limit = 20): string[] {
  if (list.length === 0) return [];
  const out = [`  ${title}: ${list.length}`];
  for (const f of list.slice(0, limit)) out.push(`    ${hex(f.va)} -> ${hex(f.pa)}: ${f.why}`);
  if (list.length > limit) out.push(`    … ${list.length - limit} more`);
  return out;
}

function exposureLines(v: VerifyResult, limit = 20): string[] {
  const e = v.exposures;
  const byCause = Object.entries(v.exposuresByCause).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${n}`).join(', ');
  const bytes = e.reduce((n, x) => n + x.bytes, 0);
  const out = [`  design exposures: ${e.length}${e.length ? ` (${byCause}), ${formatSize(bytes)}` : ''}`];
  for (const x of e.slice(0, limit)) out.push(`    ${x.cause.padEnd(16)} ${`${x.ownerKind} ${x.owner}`.padEnd(16)} ${x.object.padEnd(24)} ${String(x.bytes).padStart(6)} B  ${hex(x.va)} -> ${hex(x.pa)}`);
  if (e.length > limit) out.push(`    … ${e.length - limit} more`);
  return out;
}

function spaceText(space: RestrictedSpace, rows: ReturnType<typeof compareRegions>, holds: readonly string[], title: string, model: string, pcid: string): string {
  const s = space.stats;
  const lines = [
    `ASI design ${space.design}: ${title}`,
    `  context: ${space.context.label}; sensitivity model ${model}`,
    `  restricted root ${hex(space.root)}, full root ${hex(space.fullRoot)}; PCID: ${pcid}`,
    '  holds:',
    ...holds.map((h) => `    - ${h}`),
    `  page tables of its own: ${s.tablePages} (${formatSize(s.tablePages * 4096)})${s.sharedTablePages !== undefined ? `; of the kernel half every context shares (asi_global_nonsensitive_pgd): ${s.sharedTablePages} (${formatSize(s.sharedTablePages * 4096)})` : ''}; subtrees shared with the full tables: ${s.sharedSubtrees}; leaves copied: ${s.copiedLeaves}; large pages split: ${s.splits.pmd} PMD, ${s.splits.pud} PUD`,
    `  ${'region'.padEnd(16)} ${'full'.padStart(10)} ${'restricted'.padStart(12)}`,
  ];
  let full = 0;
  let restricted = 0;
  for (const r of rows) {
    lines.push(`  ${r.region.padEnd(16)} ${formatSize(r.fullBytes).padStart(10)} ${formatSize(r.restrictedBytes).padStart(12)}`);
    full += r.fullBytes;
    restricted += r.restrictedBytes;
  }
  lines.push(`  ${'total'.padEnd(16)} ${formatSize(full).padStart(10)} ${formatSize(restricted).padStart(12)}`);
  return lines.join('\n') + '\n';
}

const findingsJson = (l: VerifyResult['forbidden']) => l.map((x) => ({ va: hex(x.va), pa: hex(x.pa), why: x.why, allocation: x.alloc?.id }));

/** verify as the JSON of every design gives it. */
function verifyJson(v: VerifyResult) {
  const ex = v.exposures.map((x) => ({
    cause: x.cause, owner: x.owner, ownerKind: x.ownerKind, object: x.object, kind: x.kind, class: x.cls, bytes: x.bytes,
    va: hex(x.va), pa: hex(x.pa), allocation: x.allocation, why: x.why,
  }));
  return { ok: v.ok, leaves: v.leaves, mappedPages: v.mappedPages, reached: v.reached, otherTenantGlobalBytes: v.otherTenantGlobalBytes, mismatches: findingsJson(v.mismatches), forbidden: findingsJson(v.forbidden), exposures: ex, exposuresByCause: v.exposuresByCause };
}

/** verify as the text of every design gives it. */
function verifyLines(v: VerifyResult, tail: string, label = 'verify'): string[] {
  return [
    `${label}: ${v.ok ? 'OK (no model error)' : 'MODEL ERRORS'} — ${v.leaves} leaves, ${v.mappedPages} pages, ${v.reached} allocations reachable, ${formatSize(v.otherTenantGlobalBytes)} of other tenants' globally non-sensitive memory; high-map tail ${tail}`,
    `  model errors: mapped differently from the full space: ${v.mismatches.length}; mapped where the design does not put it: ${v.forbidden.length}`,
    ...findingLines('mapped differently', v.mismatches),
    ...findingLines('not put there by the design', v.forbidden),
    ...exposureLines(v),
  ];
}

function missingText(missing: ReturnType<typeof missingRuns>): string {
  let text = `\nmapped in the full space, absent from the restricted one (kernel half, first ${missing.length} runs):\n`;
  for (const m of missing) text += `  ${hex(m.start)}  ${formatSize(m.bytes).padStart(9)}  ${m.region}\n`;
  return text;
}

/** The kallsyms of the kernel SCI runs on: the capture's own, or the built-in image's moved by its KASLR slide. */
function sciKallsyms(sys: System, capture: string | undefined) {
  return capture ? loadKallsyms(join(capture, 'kallsyms.txt.gz')) : slidKallsyms(textSlide(sys));
}

const textSlide = (sys: System) => sys.kernel.sections.text - 0xffffffff81000000n; // footprints are the nokaslr image's link addresses

function afterLines(a: SciAfter, tail: string): string[] {
  const code = a.steps.filter((x) => x.kind === 'code');
  const data = a.steps.filter((x) => x.kind === 'data');
  const n = (l: typeof code, k: string) => l.filter((x) => x.outcome === k).length;
  const out = [
    '', `after ${a.syscall}: footprints.json ${a.test} parts[${a.part}] (${a.handler}) on the SCI tables, in the middle of the call:`,
    `  code: ${code.length} pages: ${n(code, 'hit')} mapped already, ${n(code, 'mapped')} faults granted, ${n(code, 'killed')} refused, ${n(code, 'not-run')} not run`,
    `  data: ${data.length} line touches: ${n(data, 'hit')} mapped already, ${n(data, 'mapped')} faults granted, ${n(data, 'killed')} refused, ${n(data, 'not-run')} not run`,
    ...a.notReplayed.map((x) => `    not replayed: ${x.kind} (${x.scope}${x.touches > 1 ? `, ${x.touches} touches` : ''}): ${x.why}`),
    `  faults (${a.faults.length}):`,
    ...a.faults.map((f) => `    ${f.access.padEnd(5)} ${hex(f.va)}  ${f.what.padEnd(40)} ${f.granted ? 'mapped' : `refused: ${f.refusal}`}`),
    `  sci->ptes: ${a.ptes} (${a.ptesMatch ? 'exactly the granted faults\' PTEs' : 'NOT the granted faults\' PTEs'}); backtrace: ${a.backtrace}`,
    `  ${a.killed ? `the task is killed (sci_fault(): SIGKILL): ${a.killed}` : 'the call runs to its end'}`,
    ...verifyLines(a.verify, tail, 'verify (mid-call)').map((l) => '  ' + l),
    ...verifyLines(a.afterExit, tail, 'verify (after sci_syscall_exit(), sci_clear_data())').slice(0, 2).map((l) => '  ' + l),
  ];
  return out;
}

/** `kasi asi --design sci-2019`: the SCI tables of one process, verified, and optionally mid-syscall. */
function sciCommand(o: Opts, proc: number, kernelOptions: { highmapTail: 'keep' | 'unmap' } | undefined): void {
  const sys = populateTenants(bootSystem({ ...(o.capture ? { capture: o.capture } : {}), kernelOptions, model: sci2019.model }));
  const sci = buildSciSpace(sys, sciKallsyms(sys, o.capture), proc);
  const { space, ctx } = sci;
  const rows = compareRegions(sys, space);
  const verify = o.verify ? verifySci(sys, sci) : null;
  const missing = o.diff === 'full' ? missingRuns(sys, space, 256) : null;
  const pcid = sys.kernel.cpu.pcid ? sci2019.pcid.source
    : `${sci2019.pcid.source}; this CPU has no PCID (cpuinfo), which SCI requires: modelled as if it had (as the footprint replay)`;
  let dumpMid: string | null = null;
  const after = o.after === undefined ? null : sciAfterSyscall(sys, sci, loadFootprints(DEFAULT_FOOTPRINTS), o.after,
    loadFootprintTable().entries.get(`syscall:${o.after}`)?.data ?? [], textSlide(sys),
    () => { if (o.ptdump) dumpMid = ptdump(sys.mem, space.root, markerLayout(sys.layout)).text; });
  const groups = new Map<string, Array<{ va: bigint; level: number }>>();
  for (const x of sci.tables.premapped) { const l = groups.get(x.what); if (l) l.push(x); else groups.set(x.what, [x]); }
  const premapped = [...groups].map(([what, l]) => ({ what, leaves: l.length, first: hex(l[0].va), levels: [...new Set(l.map((x) => x.level))] }));
  if (o.json) {
    const v = (r: typeof verify) => r && { ...verifyJson(r), rule: r.rule.map((x) => ({ what: x.what, start: hex(x.start), end: hex(x.end), from: x.from, clone: x.clone, source: x.source })), expectedLeaves: r.expectedLeaves };
    writeOutput(JSON.stringify({
      design: sci2019.name, title: sci2019.title, context: ctx.label, model: sci2019.model, root: hex(space.root), fullRoot: hex(space.fullRoot),
      pcid: { ...sci2019.pcid, cpuHasPcid: sys.kernel.cpu.pcid }, stats: space.stats, holds: sci2019.holds, premapped, regions: rows, highmapTail: sys.kernel.highmapTail,
      missing: missing?.map((m) => ({ start: hex(m.start), bytes: m.bytes, region: m.region })),
      verify: v(verify),
      after: after && {
        syscall: after.syscall, test: after.test, part: after.part, handler: after.handler, killed: after.killed, ptes: after.ptes, backtrace: after.backtrace, ptesMatch: after.ptesMatch,
        faults: after.faults.map((f) => ({ va: hex(f.va), access: f.access, what: f.what, granted: f.granted, allocations: f.allocations, ...(f.refusal ? { refusal: f.refusal } : {}) })),
        steps: after.steps.map((x) => ({ kind: x.kind, va: hex(x.va), access: x.access, what: x.what, outcome: x.outcome, ...(x.reason ? { reason: x.reason } : {}) })),
        notReplayed: after.notReplayed, verify: v(after.verify), afterExit: v(after.afterExit),
      },
    }, null, 2) + '\n');
  } else {
    let text = spaceText(space, rows, sci2019.holds, sci2019.title, String(sci2019.model), pcid);
    text += '  built by sci_pagetable_init() (RFC 2/7):\n' + premapped.map((p) => `    ${p.what.padEnd(24)} ${String(p.leaves).padStart(3)} ${p.leaves === 1 ? 'leaf  ' : 'leaves'} from ${p.first} (level ${p.levels.join('/')})\n`).join('');
    if (missing) text += missingText(missing);
    if (verify) text += ['', ...verifyLines(verify, sys.kernel.highmapTail)].join('\n') + '\n';
    if (after) text += afterLines(after, sys.kernel.highmapTail).join('\n') + '\n';
    if (o.ptdump) text += '\n' + (dumpMid !== null ? `SCI tables in the middle of ${o.after}:\n${dumpMid}` : ptdump(sys.mem, space.root, markerLayout(sys.layout)).text);
    writeOutput(text);
  }
  const bad = (r: VerifyResult | null) => r !== null && (!r.ok || (o.failOnExposure === true && r.exposures.length > 0));
  if (bad(verify) || (after && (bad(after.verify) || bad(after.afterExit) || !after.ptesMatch))) process.exitCode = 1;
}

/** The registry's RangeError for a name or index it does not have, as the usage error of the option that gave it. */
function asUsage<T>(flag: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(`${flag}: ${err.message}`);
    throw err;
  }
}

export function registerAsi(program: Command): void {
  program
    .command('asi')
    .description('Build an ASI design\'s restricted address space for a VM, process or network namespace and check it')
    .requiredOption('--design <name>', `design: ${[...designNames(), 'sci-2019'].join(', ')}`)
    .option('--capture <dir>', 'boot the kernel model of a capture directory (default: the built-in Linux 6.1 model)')
    .option('--vm <n>', 'context: VM n')
    .option('--process <n>', 'context: process n')
    .option('--netns <n>', 'context: network namespace n')
    .option('--ptdump', 'dump the restricted tables as the kernel\'s ptdump would')
    .option('--diff <what>', '"full": list kernel ranges the full space maps and the restricted one does not')
    .option('--verify', 'check every restricted leaf against the full tables, the design\'s rule and the allocations (exit 1 on a model error)')
    .option('--fail-on-exposure', 'with --verify: exit 1 on a design exposure too')
    .option('--highmap-tail <mode>', 'keep (default) or unmap: boot with the image tail past _end unmapped from the high map')
    .option('--json', 'JSON output')
    .option('--footprints', 'sci-2019: replay the captured syscall footprints through SCI')
    .option('--after <syscall>', 'sci-2019: replay one isolated system call (e.g. getppid) and show and verify what SCI has mapped in the middle of it')
    .action((o: Opts) => {
      const name = o.design ?? '';
      if (o.footprints) {
        if (name !== 'sci-2019') throw new UsageError(`--footprints: only with --design sci-2019, found --design ${name}`);
        writeOutput(sciFootprintsReport({ captureDir: o.capture, json: o.json }));
        return;
      }
      if (o.diff !== undefined && o.diff !== 'full') throw new UsageError(`--diff: expected "full", found ${JSON.stringify(o.diff)}`);
      const sel: ContextSelection = { vm: index('vm', o.vm), process: index('process', o.process), netns: index('netns', o.netns) };
      if ([sel.vm, sel.process, sel.netns].filter((x) => x !== undefined).length > 1) throw new UsageError('give at most one of --vm, --process, --netns');
      if (o.highmapTail !== undefined && o.highmapTail !== 'keep' && o.highmapTail !== 'unmap') throw new UsageError(`--highmap-tail: expected keep or unmap, found ${JSON.stringify(o.highmapTail)}`);
      if (o.failOnExposure && !o.verify && !o.after) throw new UsageError('--fail-on-exposure: only with --verify');
      if (o.after !== undefined && name !== 'sci-2019') throw new UsageError(`--after: only with --design sci-2019, found --design ${name}`);
      const kernelOptions = o.highmapTail ? { highmapTail: o.highmapTail as 'keep' | 'unmap' } : undefined;
      if (name === 'sci-2019') {
        if (sel.vm !== undefined || sel.netns !== undefined) throw new UsageError('--design sci-2019: SCI isolates a process\'s system calls: use --process N');
        if (o.after !== undefined && !/^[a-z0-9_]{1,40}$/.test(o.after)) throw new UsageError(`--after: expected a syscall name such as getppid, found ${JSON.stringify(o.after)}`);
        sciCommand(o, sel.process ?? 0, kernelOptions);
        return;
      }
      const design = asUsage('--design', () => getDesign(name));
      const sys = systemFor(design, { ...(o.capture ? { capture: o.capture } : {}), kernelOptions });
      const flag = sel.vm !== undefined ? '--vm' : sel.process !== undefined ? '--process' : sel.netns !== undefined ? '--netns' : '--design';
      const ctx = asUsage(flag, () => makeContext(sys, design, sel));
      const space = buildSpace(sys, design, ctx);
      const rows = compareRegions(sys, space);
      const verify = o.verify ? verifySpace(sys, design, space) : null;
      const missing = o.diff === 'full' ? missingRuns(sys, space, 256) : null;
      const model = typeof design.model === 'string' ? design.model : design.model.name + ' (netns objects local)';
      if (o.json) {
        writeOutput(JSON.stringify({
          design: design.name, title: design.title, context: ctx.label, model, root: hex(space.root), fullRoot: hex(space.fullRoot),
          pcid: design.pcid, stats: space.stats, holds: design.holds, regions: rows, highmapTail: sys.kernel.highmapTail,
          missing: missing?.map((m) => ({ start: hex(m.start), bytes: m.bytes, region: m.region })),
          verify: verify && verifyJson(verify),
        }, null, 2) + '\n');
      } else {
        let text = spaceText(space, rows, design.holds, design.title, model, design.pcid.source);
        if (missing) text += missingText(missing);
        if (verify) text += ['', ...verifyLines(verify, sys.kernel.highmapTail)].join('\n') + '\n';
        if (o.ptdump) text += '\n' + ptdump(sys.mem, space.root, markerLayout(sys.layout)).text;
        writeOutput(text);
      }
      if (verify && (!verify.ok || (o.failOnExposure && verify.exposures.length > 0))) process.exitCode = 1;
    });
}
