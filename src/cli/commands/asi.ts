/**
 * `kasi asi`: build a design's restricted address space for a context of a booted system
 * (2 processes, 2 VMs, 2 network namespaces with objects) and show it next to the full one.
 *
 *   kasi asi --design NAME [--capture DIR] [--vm N | --process N | --netns N]
 *            [--ptdump] [--diff full] [--verify [--fail-on-exposure]] [--highmap-tail keep|unmap]
 *            [--json] [--footprints]
 *
 * --verify walks every leaf of the restricted root and checks it against the full tables, the
 * design's construction rule and every allocation (src/asi/verify.ts). A model error (a page
 * mapped differently from the full space, or where the design does not put it) exits 1; design
 * exposures (other tenants' or sensitive data reachable because of how the design works, each
 * with a cause) are reported and exit 0, or 1 with --fail-on-exposure.
 * --highmap-tail unmap boots the kernel with the image tail unmapped from the high map
 * (src/linux/image-tail.ts), the what-if that closes the image-tail alias.
 * --footprints with --design sci-2019 replays the captured syscall footprints through System
 * Call Isolation (src/asi/sci-report.ts).
 */
import type { Command } from 'commander';
import { ptdump } from '../../report/ptdump.ts';
import { formatSize } from '../../report/units.ts';
import { markerLayout } from '../../linux/compare.ts';
import { designNames, getDesign, makeContext, systemFor, type ContextSelection } from '../../asi/registry.ts';
import { buildSpace } from '../../asi/restricted.ts';
import { compareRegions, missingRuns, verifySpace, type VerifyResult } from '../../asi/verify.ts';
import { sciFootprintsReport } from '../../asi/sci-report.ts';
import type { RestrictedSpace } from '../../asi/types.ts';
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
    `  page tables of its own: ${s.tablePages} (${formatSize(s.tablePages * 4096)}); subtrees shared with the full tables: ${s.sharedSubtrees}; leaves copied: ${s.copiedLeaves}; large pages split: ${s.splits.pmd} PMD, ${s.splits.pud} PUD`,
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
    .action((o: Opts) => {
      const name = o.design ?? '';
      if (o.footprints) {
        if (name !== 'sci-2019') throw new UsageError(`--footprints: only with --design sci-2019, found --design ${name}`);
        writeOutput(sciFootprintsReport({ captureDir: o.capture, json: o.json }));
        return;
      }
      if (name === 'sci-2019') throw new UsageError('--design sci-2019: use --footprints (SCI spaces are per task and built from syscall footprints)');
      if (o.diff !== undefined && o.diff !== 'full') throw new UsageError(`--diff: expected "full", found ${JSON.stringify(o.diff)}`);
      const design = getDesign(name);
      const sel: ContextSelection = { vm: index('vm', o.vm), process: index('process', o.process), netns: index('netns', o.netns) };
      if ([sel.vm, sel.process, sel.netns].filter((x) => x !== undefined).length > 1) throw new UsageError('give at most one of --vm, --process, --netns');
      if (o.highmapTail !== undefined && o.highmapTail !== 'keep' && o.highmapTail !== 'unmap') throw new UsageError(`--highmap-tail: expected keep or unmap, found ${JSON.stringify(o.highmapTail)}`);
      if (o.failOnExposure && !o.verify) throw new UsageError('--fail-on-exposure: only with --verify');
      const kernelOptions = o.highmapTail ? { highmapTail: o.highmapTail as 'keep' | 'unmap' } : undefined;
      const sys = systemFor(design, { ...(o.capture ? { capture: o.capture } : {}), kernelOptions });
      const ctx = makeContext(sys, design, sel);
      const space = buildSpace(sys, design, ctx);
      const rows = compareRegions(sys, space);
      const verify = o.verify ? verifySpace(sys, design, space) : null;
      const missing = o.diff === 'full' ? missingRuns(sys, space, 256) : null;
      const model = typeof design.model === 'string' ? design.model : design.model.name + ' (netns objects local)';
      if (o.json) {
        const f = (l: VerifyResult['forbidden']) => l.map((x) => ({ va: hex(x.va), pa: hex(x.pa), why: x.why, allocation: x.alloc?.id }));
        const ex = (l: VerifyResult['exposures']) => l.map((x) => ({
          cause: x.cause, owner: x.owner, ownerKind: x.ownerKind, object: x.object, kind: x.kind, class: x.cls, bytes: x.bytes,
          va: hex(x.va), pa: hex(x.pa), allocation: x.allocation, why: x.why,
        }));
        writeOutput(JSON.stringify({
          design: design.name, title: design.title, context: ctx.label, model, root: hex(space.root), fullRoot: hex(space.fullRoot),
          pcid: design.pcid, stats: space.stats, holds: design.holds, regions: rows, highmapTail: sys.kernel.highmapTail,
          missing: missing?.map((m) => ({ start: hex(m.start), bytes: m.bytes, region: m.region })),
          verify: verify && { ok: verify.ok, leaves: verify.leaves, mappedPages: verify.mappedPages, reached: verify.reached, otherTenantGlobalBytes: verify.otherTenantGlobalBytes, mismatches: f(verify.mismatches), forbidden: f(verify.forbidden), exposures: ex(verify.exposures), exposuresByCause: verify.exposuresByCause },
        }, null, 2) + '\n');
      } else {
        let text = spaceText(space, rows, design.holds, design.title, model, design.pcid.source);
        if (missing) {
          text += `\nmapped in the full space, absent from the restricted one (kernel half, first ${missing.length} runs):\n`;
          for (const m of missing) text += `  ${hex(m.start)}  ${formatSize(m.bytes).padStart(9)}  ${m.region}\n`;
        }
        if (verify) {
          const lines = [
            '', `verify: ${verify.ok ? 'OK (no model error)' : 'MODEL ERRORS'} — ${verify.leaves} leaves, ${verify.mappedPages} pages, ${verify.reached} allocations reachable, ${formatSize(verify.otherTenantGlobalBytes)} of other tenants' globally non-sensitive memory; high-map tail ${sys.kernel.highmapTail}`,
            `  model errors: mapped differently from the full space: ${verify.mismatches.length}; mapped where the design does not put it: ${verify.forbidden.length}`,
            ...findingLines('mapped differently', verify.mismatches),
            ...findingLines('not put there by the design', verify.forbidden),
            ...exposureLines(verify),
          ];
          text += lines.join('\n') + '\n';
        }
        if (o.ptdump) text += '\n' + ptdump(sys.mem, space.root, markerLayout(sys.layout)).text;
        writeOutput(text);
      }
      if (verify && (!verify.ok || (o.failOnExposure && verify.exposures.length > 0))) process.exitCode = 1;
    });
}
