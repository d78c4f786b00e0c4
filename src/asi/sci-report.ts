/**
 * SCI on a real kernel, and the replay of measured code footprints through it.
 *
 * `sciTaskOnModel()` puts a task on a booted kernel model: a process (linux/process.ts, its PGD pair
 * cloned from swapper's), a vmapped THREAD_SIZE stack (linux/vmalloc.ts) and an allocator of zeroed
 * frames, all from a buddy allocator over the model's free RAM; then builds its SCI tables.
 *
 * `replayFootprints()` replays each kernel entry ("part") of each measured test as code fetches in
 * first-touch page order through a fresh SCI syscall. The fixture gives pages, not addresses, so
 * one fetch stands for each page, chosen by this rule (its limits are in the notes below):
 *  - symbol start: a function the part executed (its `functions`) starts in the page: the first
 *    fetch there is taken to be that function's entry (the lowest such address);
 *  - continuation: else a listed function begun in an earlier page runs on into this one: the
 *    fetch is the page's first byte, inside that function (offset > 0);
 *  - unexplained: neither: the page's first byte, whatever kallsyms says it is.
 * The SCI verifier (sci.ts, the RFC's rule) then decides; a page where a listed function both
 * starts and continues from the page before is "ambiguous", and "doubtful" when the continuation
 * reading would have been refused. Replays run in audit mode: every refusal is listed, and the
 * first one is where the RFC kills the task.
 */
import { join } from 'node:path';
import { loadKallsyms, type Kallsyms } from '../formats/kallsyms.ts';
import { InputError } from '../formats/files.ts';
import { loadFootprints, type FootprintPart, type Footprints } from '../formats/footprints.ts';
import { BuddyAllocator, USE_PAGE_TABLE } from '../linux/buddy.ts';
import { modelFromCapture } from '../linux/capture.ts';
import type { KernelModel } from '../linux/kernel.ts';
import { Owners } from '../linux/owners.ts';
import { ProcessTable, type Process } from '../linux/process.ts';
import { VmallocAllocator, type VmArea } from '../linux/vmalloc.ts';
import { PageTables } from '../x86/pgtable.ts';
import { SCI, SCI_MAX_BACKTRACE, SCI_MAX_PTES, SciTaskTables, type SciOptions, type SciRefusal } from './sci.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
export const DEFAULT_CAPTURE = join(FIXTURES, 'captures', 'la48-pti-nokaslr');
export const DEFAULT_FOOTPRINTS = join(FIXTURES, 'footprints', 'footprints.json');

export interface SciWorld {
  model: KernelModel;
  kallsyms: Kallsyms;
  buddy: BuddyAllocator;
  process: Process;
  stack: VmArea;
  alloc: () => number;
  /** A new SCI task table set for the process (options override the defaults). */
  tables(o?: Partial<SciOptions>): SciTaskTables;
}

/** A task on `model`: a process with a vmapped stack, and its SCI tables on demand. */
export function sciTaskOnModel(model: KernelModel, kallsyms: Kallsyms): SciWorld {
  if (model.userRoot === null) throw new RangeError('SCI needs a kernel with PTI (its tables clone the KPTI user root)');
  const ram = model.pfnMapped.map(([a, b]) => [a << 12n, b << 12n] as const);
  const buddy = new BuddyAllocator({ ram, reserved: model.reserved.map((r) => [r.start, r.end] as const) });
  const owners = new Owners();
  const alloc = (): number => {
    const pfn = buddy.alloc(0, 0, undefined, 'normal', USE_PAGE_TABLE);
    model.mem.frameWords(pfn).fill(0);
    return pfn * 4096;
  };
  const { addrs } = model.layout;
  const processes = new ProcessTable({
    mem: model.mem, buddy, owners, model: 'none', levels: model.levels, pti: true,
    kernelPgd: model.kernelRoot, kernelUserPgd: model.userRoot, pageOffset: addrs.page_offset_base,
  });
  const process = processes.create('sci-task');
  // The stack goes into the kernel's vmalloc tables, which every mm shares below the PGD
  // (preallocate_vmalloc_pages()), so the process's PGD sees it: alloc_thread_stack_node().
  const vm = new VmallocAllocator({
    buddy, owners, model: 'none', pt: new PageTables(model.mem, model.levels, () => BigInt(alloc()), BigInt(model.kernelRoot)),
    start: addrs.vmalloc_base, end: addrs.VMALLOC_END,
  });
  const stack = vm.allocStack(process.owner.id);
  const task = { pgd: process.pgd, userPgd: process.userPgd, stack: stack.va };
  return {
    model, kallsyms, buddy, process, stack, alloc,
    tables: (o = {}) => new SciTaskTables({ kernel: model, kallsyms, task, alloc, ...o }),
  };
}

export interface PageStep {
  page: bigint;
  /** Mapped before the syscall: no fault. */
  premapped: boolean;
  basis: 'symbol-start' | 'continuation' | 'unexplained';
  /** The function the fetch is taken to enter or continue. */
  symbol: string;
  fetch: bigint;
  ambiguous: boolean;
  doubtful: boolean;
  refusal: SciRefusal | null;
}

export interface PartReplay {
  test: string;
  part: number;
  kind: string;
  handler: string | null;
  /** Whether the RFC runs this entry on the SCI tables at all, and why not. */
  rfcIsolates: boolean;
  rfcNote: string;
  pages: number;
  premapped: number;
  codeFaults: number;
  admittedStart: number;
  admittedContinuation: number;
  refused: PageStep[];
  ambiguous: number;
  doubtful: number;
  /** Code PTEs the part needs, and the backtrace it builds (RFC caps: 256 and 64). */
  ptes: number;
  backtrace: number;
  /** Where the RFC kills the task (its first refusal), or null. */
  kill: { fault: number; page: bigint; code: string; reason: string } | null;
  steps: PageStep[];
}

/** Text symbols by name (several for static functions of one name), with their extents (next symbol). */
export function textSymbols(ks: Kallsyms): Map<string, Array<[bigint, bigint]>> {
  const stext = ks.addressOf('_stext') ?? 0n;
  const etext = ks.addressOf('_etext') ?? 0n;
  const out = new Map<string, Array<[bigint, bigint]>>();
  for (let i = 0; i < ks.count; i++) {
    const a = ks.addressAt(i);
    if (a < stext || a > etext) continue;
    let j = i + 1;
    while (j < ks.count && ks.addressAt(j) === a) j++;
    const end = j < ks.count ? ks.addressAt(j) : a + 1n; // kallsyms_lookup(): the symbol ends at the next address
    const l = out.get(ks.names[i]);
    if (l) l.push([a, end]); else out.set(ks.names[i], [[a, end]]);
  }
  return out;
}

/** The footprints must come from the kernel whose kallsyms we hold: every symbol they list must agree. */
export function checkSameKernel(fp: Footprints, ks: Kallsyms): void {
  for (const [name, va] of fp.symbols) {
    const k = ks.addressOf(name);
    if (k !== undefined && k !== va) {
      throw new InputError(fp.file, `field symbols.${name}: 0x${va.toString(16)}, but ${ks.file} has 0x${k.toString(16)} (footprints of another kernel)`);
    }
  }
}

/**
 * The first fetch of text page `page` by the header's rule: the lowest start, in the page, of a
 * function in `functions`, else the page's first byte (continuing a listed function begun
 * earlier, or unexplained).
 */
export function pageEntry(ks: Kallsyms, syms: Map<string, Array<[bigint, bigint]>>, functions: readonly { name: string }[], page: bigint): { start: [bigint, string] | null; cont: string | null; basis: PageStep['basis']; fetch: bigint; symbol: string } {
  const end = page + 4096n;
  let start: [bigint, string] | null = null;
  let cont: string | null = null;
  for (const f of functions) {
    for (const [a, e] of syms.get(f.name) ?? []) {
      if (a >= page && a < end) { if (!start || a < start[0]) start = [a, f.name]; }
      else if (a < page && e > page) cont = f.name;
    }
  }
  const basis = start ? 'symbol-start' : cont ? 'continuation' : 'unexplained';
  return { start, cont, basis, fetch: start ? start[0] : page, symbol: start ? start[1] : cont ?? ks.symbolAt(page)?.name ?? '?' };
}

/** Replay one part through a fresh syscall of `tables` (audit mode). */
export function replayPart(tables: SciTaskTables, ks: Kallsyms, syms: Map<string, Array<[bigint, bigint]>>, test: string, index: number, part: FootprintPart): PartReplay {
  const s = tables.syscall();
  const steps: PageStep[] = [];
  let faultNo = 0;
  let kill: PartReplay['kill'] = null;
  for (const page of part.textPages) {
    const { start, cont, basis, fetch, symbol } = pageEntry(ks, syms, part.functions, page);
    const prevEntered = tables.backtrace.some((r) => (r >> 12n) + 1n === page >> 12n); // what the continuation reading needs
    const nRef = s.refusals.length;
    const r = s.fetch(fetch);
    const premapped = r === SCI.HIT;
    if (!premapped) faultNo++;
    const refusal = s.refusals.length > nRef ? s.refusals[nRef] : null;
    if (refusal && !kill) kill = { fault: faultNo, page, code: refusal.code, reason: refusal.reason };
    const ambiguous = !premapped && start !== null && cont !== null;
    steps.push({ page, premapped, basis, symbol, fetch, ambiguous, doubtful: ambiguous && !prevEntered, refusal });
  }
  const faults = steps.filter((x) => !x.premapped);
  const refusedByRule = (x: PageStep) => x.refusal !== null && !x.refusal.code.startsWith('no-room');
  const { ptes, backtrace } = s.end();
  const isSyscall = part.kind === 'syscall';
  return {
    test, part: index, kind: part.kind, handler: part.handler,
    rfcIsolates: isSyscall && part.handler !== null,
    rfcNote: !isSyscall ? 'exception/interrupt entries switch to the full kernel tables (RFC 3/7)'
      : part.handler === null ? 'nr >= NR_syscalls: do_syscall_64() never enters SCI (RFC 4/7)' : 'only sys_call_table[nr]() runs isolated (RFC 4/7)',
    pages: part.textPages.length, premapped: steps.length - faults.length, codeFaults: faults.length,
    admittedStart: faults.filter((x) => !refusedByRule(x) && x.basis === 'symbol-start').length,
    admittedContinuation: faults.filter((x) => !refusedByRule(x) && x.basis !== 'symbol-start').length,
    refused: faults.filter(refusedByRule), ambiguous: faults.filter((x) => x.ambiguous).length,
    doubtful: faults.filter((x) => x.doubtful).length, ptes, backtrace, kill, steps,
  };
}

/** Every part of every test, each through a fresh SCI syscall of one task. */
export function replayFootprints(world: SciWorld, fp: Footprints): PartReplay[] {
  checkSameKernel(fp, world.kallsyms);
  const tables = world.tables({ mode: 'audit' });
  const syms = textSymbols(world.kallsyms);
  const out: PartReplay[] = [];
  for (const t of fp.tests) t.parts.forEach((p, i) => out.push(replayPart(tables, world.kallsyms, syms, t.name, i, p)));
  return out;
}

const NOTES = [
  'Model: the RFC\'s tables (sci_pagetable_init: cpu_entry_area and entry text cloned from the KPTI user root, the task stack, a per-CPU page, do_syscall_64\'s page) on the captured Debian 6.1 kernel; the capture\'s CPU has no PCID, which the RFC requires, so this is SCI as if it had.',
  'Replay: the whole kernel entry is treated as isolated, as the fixture traces it. The RFC switches CR3 inside do_syscall_64() around sys_call_table[nr]() only, so entry/exit code (syscall_enter_from_user_mode, exit_to_user_mode_prepare, ...) would run on the full tables there: the counts are an upper bound for the RFC\'s placement; rows marked "no" are never isolated by the RFC.',
  'Page rule: a page is entered at the start of a function the part executed when one starts in it, else continued from a function begun earlier; QEMU gives pages, not first addresses, so "ambiguous" pages could have been entered either way and "doubtful" ones would be refused under the other reading.',
  `Caps: SCI_MAX_PTES ${SCI_MAX_PTES} and SCI_MAX_BACKTRACE ${SCI_MAX_BACKTRACE} (do_syscall_64 + one entry per function-start fault); past either, every fault is refused and the task killed. PTEs here are code only: data, stack, per-CPU and page-table accesses fault too and are not in the fixture, so PTE counts are lower bounds and kills come no later than shown.`,
];

/** The table of `kasi asi --design sci-2019 --footprints`. */
export function sciFootprintsReport(opts: { captureDir?: string; json?: boolean; footprints?: string } = {}): string {
  const dir = opts.captureDir ?? DEFAULT_CAPTURE;
  const fp = loadFootprints(opts.footprints ?? DEFAULT_FOOTPRINTS);
  const ks = loadKallsyms(join(dir, 'kallsyms.txt.gz'));
  checkSameKernel(fp, ks);
  const { model } = modelFromCapture(dir);
  const rows = replayFootprints(sciTaskOnModel(model, ks), fp);
  const hex = (v: bigint) => `0x${v.toString(16)}`;
  if (opts.json) {
    return JSON.stringify({
      format: 'kasi-sci-footprints/1', design: 'sci-2019', capture: dir, footprints: fp.file,
      caps: { ptes: SCI_MAX_PTES, backtrace: SCI_MAX_BACKTRACE },
      rows: rows.map((r) => ({
        test: r.test, part: r.part, kind: r.kind, handler: r.handler, rfc_isolates: r.rfcIsolates, rfc_note: r.rfcNote,
        pages: r.pages, premapped: r.premapped, code_faults: r.codeFaults, admitted_symbol_start: r.admittedStart,
        admitted_continuation: r.admittedContinuation, ambiguous: r.ambiguous, doubtful: r.doubtful,
        refused: r.refused.map((x) => ({ page: hex(x.page), fetch: hex(x.fetch), symbol: x.symbol, code: x.refusal!.code, reason: x.refusal!.reason })),
        ptes: r.ptes, backtrace: r.backtrace,
        killed: r.kill && { at_fault: r.kill.fault, page: hex(r.kill.page), code: r.kill.code, reason: r.kill.reason },
      })),
      notes: NOTES,
    }, null, 1) + '\n';
  }
  const head = ['test', 'part', 'RFC', 'pages', 'pre', 'faults', 'start', 'cont', 'refused', 'ambig', 'PTEs', 'bt', 'fate'];
  const body = rows.map((r) => [
    r.test, `${r.part} ${r.handler ?? r.kind}`, r.rfcIsolates ? 'yes' : 'no', r.pages, r.premapped, r.codeFaults, r.admittedStart,
    r.admittedContinuation, r.refused.length, r.doubtful ? `${r.ambiguous} (${r.doubtful}?)` : r.ambiguous, r.ptes, r.backtrace,
    r.kill ? `killed at fault ${r.kill.fault} (${hex(r.kill.page)}, ${r.kill.code})` : 'runs',
  ].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i < 3 || i === c.length - 1 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ').trimEnd();
  const out = ['System Call Isolation (sci-2019): measured kernel code footprints replayed through the SCI page tables', '', line(head), ...body.map(line), ''];
  const refused = rows.flatMap((r) => r.refused.map((x) => `  ${r.test}/${r.part}: ${hex(x.page)} (${x.basis} of ${x.symbol}): ${x.refusal!.reason}`));
  out.push(refused.length ? 'Pages the symbol rule refuses:' : 'The symbol rule refuses no page of any test.', ...refused, '');
  out.push('Columns: pre = pages already mapped (entry text PMD, do_syscall_64); start/cont = code faults admitted at a function start / as a continuation; ambig = pages entered either way (doubtful ones in brackets); bt = backtrace entries.');
  for (const n of NOTES) out.push(`- ${n}`);
  return out.join('\n') + '\n';
}
