/**
 * Scenario files (`kasi run scenario.yaml`): YAML read with the `yaml` Document API (every node
 * keeps its source range), checked by a strict zod schema (an unknown field is an error), then
 * checked for meaning (a machine that cannot exist, a name that names nothing, a duplicate, a
 * command line the kernel parser refuses). Every error is one line:
 *
 *   FILE:LINE:COLUMN: field PATH: expected …, found …
 *
 * thrown as a ScenarioError (an InputError: the CLI prints it and exits 2). The result is a
 * typed Scenario (sim/scenario-types.ts) with defaults applied. The format is documented in
 * examples/README.md; sim/default-scenario.ts is the built-in one. In short (defaults after =):
 *
 *   name (= file name)  seed (= 1)  duration: <time> | events: <n>  (= duration 1ms)
 *   machine: { cpu = skylake-sp, cores = 2, threads_per_core = 2 if SMT else 1, ram = 4GiB, paging_levels = 4,
 *              load_balance = false (true: tasks move to idle threads, within their tenant's pin) }
 *   kernel:  { kaslr = true, kaslr_seed = seed, pti = auto, capture = null }
 *   tenants: [{ name, kind: vm|process|netns, vcpus = 1 (vm), memory = 64MiB (vm) | 16MiB (process),
 *               pin = [], objects = [{ name, kind, cold = false }],
 *               working_set = { bytes = 64KiB, writes = 0.3, lines_per_kcycle = 10 } (vm, process),
 *               thp = true (process: its anonymous memory in 2 MiB pages when 2 MiB aligned) }]
 *   secrets: [{ name, in: tenant/object, bytes >= 8, offset = 0 }]
 *   workload: [{ thread, tenant, background = false, mix: [{ event, reason|name|cycles, weight = 1,
 *               bytes (sized syscalls), code_bytes = 64KiB (guest-run, user-compute: sim/code-warmth.ts) }] }]
 *   attackers: [{ thread, tenant, attacks: [...], every = 10us,
 *                 spectre_v1 = { gadget = unaudited | usercopy | swapgs, window = entry | after-exit } }]
 *   isolation: [{ name, cmdline = "", stun = (as the design posted: no), what_if = [] }]  (= one entry "default")
 *   footprints: { override: { <event key>: { text, insns, data, tlb_flush_pages, base: { ns, source }, source } } }
 *   costs: { clock_ghz, override: { <snake_case parameter>: cycles | { cycles, source } } }
 * Sizes: bytes or 4KiB/2MiB/1GiB/1TiB; times: ns, us, ms, s or cycles (a unit is required).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { ATTACK_NAMES } from '../attacks/sample.ts';
import { MIN_RUN } from '../attacks/secrets.ts';
import { ASI_DESIGNS, CmdlineError, parseMitigationCmdline, type MitigationCmdline } from '../mitigations/cmdline.ts';
import { DEFAULT_SCENARIO_FILE, DEFAULT_SCENARIO_YAML } from '../sim/default-scenario.ts';
import { costParamFromYaml, costParamYamlNames, type CostOverrides, type CostParam, type CostValue } from '../sim/costs.ts';
import { ACCESSES, DATA_KINDS, SCOPES, footprintKeys, loadFootprintTable, parseFootprintKey, type FootprintOverride } from '../sim/footprints.ts';
import {
  ASI_DESIGN_NAMES, OBJECT_KINDS, SPECTRE_V1_GADGETS, WHAT_IFS, EPHMAP_WHAT_IFS, SPECTRE_V1_WINDOWS, WORKING_SET_DEFAULT, OBJECT_KIND_NAMES, threadCount,
  type CalibrationSpec, type IsolationDesign, type IsolationSpec, type MachineSpec, type MixItem, type Scenario, type SimTime, type TenantKind, type TenantSpec,
} from '../sim/scenario-types.ts';
import { getProfile, profileNames } from '../uarch/profiles.ts';
import { getDesign } from '../asi/registry.ts';
import { SIZED_SYSCALLS } from '../sim/sized.ts';
import { predictWork } from '../sim/budget.ts';
import { capturedCpuCount } from '../linux/capture.ts';
import { textVmaBytes } from '../linux/process.ts';
import { loadImportedMix } from '../sim/import-mix.ts';
import { WORKLOAD_FORMATS } from '../formats/detect.ts';
import { getCostModel } from '../sim/costs.ts';
import type { DesignName } from '../asi/types.ts';
import { paramEq, paramSpans as tokens } from '../formats/cmdline.ts';
import { InputError, readTextMaybeGz } from '../formats/files.ts';
import { LIMITS, isCanonical, yamlDepth } from '../formats/limits.ts';
import { SCENARIO_LIMITS as SL, type Bound } from './limits.ts';
import { collectPositions, formatPath, locate, locateInString, type PathSeg, type Pos } from './yaml-locate.ts';

/** A scenario error: `FILE:LINE:COLUMN: message` (an InputError carrying the line, plus the column). */
export class ScenarioError extends InputError {
  constructor(file: string, readonly pos: Pos, detail: string) {
    super(file, detail, pos.line);
    this.message = `${file}:${pos.line}:${pos.column}: ${detail}`;
    this.name = 'ScenarioError';
  }
}

// --- value syntaxes ------------------------------------------------------------------------------

const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
const SIZE_HELP = 'a size such as 4096, 4KiB, 2MiB or 1GiB';

/** Bytes, or the expected-phrase of an error. */
export function parseSize(v: number | string): number | string {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : `${SIZE_HELP} (a whole number of bytes)`;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(v);
  if (m === null) return SIZE_HELP;
  const unit = m[2] === '' ? 'B' : m[2];
  const mult = SIZE_UNITS[unit];
  if (mult === undefined) return `${SIZE_HELP} (units B, KiB, MiB, GiB, TiB)`;
  const bytes = Number(m[1]) * mult;
  return Number.isSafeInteger(bytes) ? bytes : `${SIZE_HELP} (a whole number of bytes)`;
}

const TIME_HELP = 'a time such as 500ns, 10us, 2ms, 1s or 20000cycles';

/** A SimTime, or the expected-phrase of an error. Plain numbers are refused: the unit must be said. */
export function parseTime(v: number | string): SimTime | string {
  if (typeof v === 'number') return `${TIME_HELP} (with a unit)`;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|cycles?)\s*$/.exec(v);
  if (m === null) return TIME_HELP;
  const n = Number(m[1]);
  if (m[2].startsWith('cycle')) return Number.isSafeInteger(n) && n > 0 ? { unit: 'cycles', value: n } : `${TIME_HELP} (a whole, positive number of cycles)`;
  const ns = n * { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 }[m[2] as 'ns']!;
  return ns > 0 && Number.isFinite(ns) ? { unit: 'ns', value: ns } : `${TIME_HELP} (above zero)`;
}

// --- schema ------------------------------------------------------------------------------------

/** A strict object whose unknown-field error lists the fields it knows. */
function strict<S extends z.core.$ZodLooseShape>(shape: S) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, { error: (iss) => (iss.code === 'unrecognized_keys' ? `one of the fields ${known}` : undefined) });
}
const via = <T>(help: string, parse: (v: number | string) => T | string) =>
  z.union([z.number(), z.string()], { error: help }).transform((v, ctx) => {
    const r = parse(v);
    if (typeof r === 'string') { ctx.addIssue({ code: 'custom', message: r, input: v }); return z.NEVER; }
    return r;
  });
const size = via(SIZE_HELP, parseSize);
const time = via(TIME_HELP, parseTime);
const NAME_HELP = 'a name of letters, digits, ".", "_" or "-" (no "/"), starting with a letter or digit';
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: NAME_HELP });
const uint = z.number().int().min(0);
/** A number at most `bound.max`, whose error gives the bound's reason. */
const upTo = <T extends z.ZodNumber>(n: T, bound: Bound) => n.max(bound.max, { error: bound.why });
const weight = upTo(z.number().positive(), SL.weight).default(1);
const hexPage = z.string().regex(/^0x[0-9a-fA-F]{1,16}$/, { error: 'a page address as a quoted hex string ("0xffffffff81000000")' })
  .refine((v) => isCanonical(BigInt(v), 4), { error: 'a canonical address (bits 63:47 equal, SDM 3A 3.3.7.1): kernel text lies in the upper half' });

const objectSchema = strict({ name, kind: z.enum(OBJECT_KIND_NAMES as [string, ...string[]]), cold: z.boolean().default(false) });
const workingSetSchema = strict({
  bytes: size.default(WORKING_SET_DEFAULT.bytes),
  writes: z.number().min(0).max(1).default(WORKING_SET_DEFAULT.writes),
  lines_per_kcycle: z.number().min(0).max(1000).default(WORKING_SET_DEFAULT.linesPerKcycle),
}).prefault({});
const common = { name, pin: z.array(uint).default([]), objects: z.array(objectSchema).max(SL.objects.max, { error: SL.objects.why }).default([]) };
const tenantSchema = z.discriminatedUnion('kind', [
  strict({ ...common, kind: z.literal('vm'), vcpus: upTo(z.number().int().min(1), SL.vcpus).default(1), memory: size.default(64 * 1024 ** 2), working_set: workingSetSchema, lock_fraction: z.number().min(0).lt(1, { message: 'a number below 1 (at 1 every slice ends inside the lock, so it is never free when its holder is off its CPU)' }).default(0), lock_wait: z.enum(['spin', 'block']).default('spin') }),
  strict({ ...common, kind: z.literal('process'), memory: size.default(16 * 1024 ** 2), working_set: workingSetSchema, thp: z.boolean().default(true) }),
  strict({ ...common, kind: z.literal('netns') }),
]);
const withCycles = <E extends string>(event: E) => strict({ event: z.literal(event), cycles: upTo(z.number().int().min(1), SL.mixCycles), weight, code_bytes: size.refine((v) => v >= 1 && v <= SL.codeBytes.max, { error: SL.codeBytes.why }).optional() });
const mixSchema = z.discriminatedUnion('event', [
  strict({ event: z.literal('vm-exit'), reason: z.string(), weight }),
  strict({ event: z.literal('syscall'), name: z.string(), weight, bytes: z.number().int().min(1).max(1 << 24).optional() }),
  ...(['page-fault', 'timer-interrupt', 'nmi', 'context-switch'] as const).map((e) => strict({ event: z.literal(e), weight })),
  strict({ event: z.literal('idle'), cycles: upTo(z.number().int().min(1), SL.mixCycles), weight, wake: z.enum(['event', 'timer']).optional() }),
  withCycles('guest-run'), withCycles('user-compute'),
]);
const overrideSchema = strict({
  text: strict({
    measured: z.array(strict({ test: z.string(), part: uint.default(0) })).optional(), pages: z.array(hexPage).max(SL.textPages.max, { error: SL.textPages.why }).optional(),
    module_pages: upTo(uint, SL.modulePages).optional(),
  }).optional(),
  insns: upTo(z.number().min(0), SL.insns).optional(),
  data: z.array(strict({ kind: z.enum(DATA_KINDS), access: z.enum(ACCESSES), lines: upTo(z.number().int().min(1), SL.dataLines), scope: z.enum(SCOPES).default('current') })).optional(),
  tlb_flush_pages: upTo(uint, SL.tlbFlushPages).optional(),
  source: z.string().optional(),
  // The source's measured native latency of the event (sim/event-base.ts): it names where it comes from.
  base: strict({ ns: z.number().positive().max(1e9), source: z.string().min(1) }).optional(),
});
const price = upTo(z.number().min(0), SL.priceCycles);
const costValue = z.union([price, strict({ cycles: price, source: z.string().min(1) })], { error: 'a number of cycles, or { cycles, source }' });

const scenarioSchema = strict({
  name: z.string().min(1).optional(),
  seed: uint.max(0xffffffff).default(1),
  duration: time.optional(),
  events: upTo(z.number().int().min(1), SL.events).optional(),
  machine: strict({ cpu: z.string().default('skylake-sp'), cores: z.number().int().min(1).max(256).default(2), threads_per_core: z.number().int().optional(), ram: size.default(4 * 1024 ** 3), paging_levels: z.number().int().default(4), load_balance: z.boolean().default(false) }).prefault({}),
  kernel: strict({ kaslr: z.boolean().default(true), kaslr_seed: uint.max(0xffffffff).optional(), pti: z.enum(['auto', 'on', 'off']).default('auto'), capture: z.string().min(1).nullable().default(null) }).prefault({}),
  tenants: z.array(tenantSchema).max(SL.tenants.max, { error: SL.tenants.why }).default([]),
  secrets: z.array(strict({ name, in: z.string(), bytes: z.number().int().min(1), offset: uint.default(0) })).max(SL.secrets.max, { error: SL.secrets.why }).default([]),
  workload: z.array(strict({
    thread: uint, tenant: z.string(), background: z.boolean().default(false), mix: z.array(mixSchema).min(1).optional(),
    from: strict({ file: z.string().min(1), kind: z.enum(WORKLOAD_FORMATS).optional(), vcpu: uint.optional() }).optional(),
  })).default([]),
  attackers: z.array(strict({
    thread: uint, tenant: z.string(), attacks: z.array(z.enum(ATTACK_NAMES)).min(1), every: time.prefault('10us'),
    spectre_v1: strict({ gadget: z.enum(SPECTRE_V1_GADGETS).default('unaudited'), window: z.enum(SPECTRE_V1_WINDOWS).default('entry') }).optional(),
  })).default([]),
  isolation: z.array(strict({ name, cmdline: z.string().default(''), stun: z.boolean().optional(), what_if: z.array(z.enum(WHAT_IFS)).default([]) })).max(SL.isolation.max, { error: SL.isolation.why }).default([]),
  footprints: strict({ override: z.record(z.string(), overrideSchema).default({}) }).prefault({}),
  costs: strict({ clock_ghz: upTo(z.number().min(SL.clockGhzMin.max, { error: SL.clockGhzMin.why }), SL.clockGhzMax).optional(), override: z.record(z.string(), costValue).default({}) }).prefault({}),
  calibration: strict({
    figure: z.string().min(1), source: z.string().min(1), published: z.number(),
    metric: z.enum(['overhead_pct', 'throughput_ratio', 'ns_per_op']), between: z.tuple([name, name]),
    tolerance_pct: z.number().positive().default(25), band: z.tuple([z.number(), z.number()]).optional(), note: z.string().optional(),
    status: z.enum(['reproduced', 'missed']).default('reproduced'),
    seeds: uint.min(1).max(16).default(1),
  }).optional(),
});
type Raw = z.output<typeof scenarioSchema>;

// --- error text --------------------------------------------------------------------------------

/** "string \"abc\"", "number 3", "a list", "nothing (the field is missing)". */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const TYPE_WORDS: Record<string, string> = {
  int: 'an integer', number: 'a number', string: 'a string', boolean: 'true or false', array: 'a list', object: 'a mapping', record: 'a mapping', null: 'null',
};

function valueAt(data: unknown, path: readonly PathSeg[]): unknown {
  let v = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p as string];
  }
  return v;
}

function expectedOf(iss: z.core.$ZodIssue): string {
  switch (iss.code) {
    case 'invalid_type': return TYPE_WORDS[iss.expected] ?? iss.expected;
    case 'invalid_value': return `one of ${iss.values.map((x) => JSON.stringify(x)).join(', ')}`;
    case 'too_small': case 'too_big': {
      if (!/^Too (big|small)/.test(iss.message)) return iss.message; // a bound of scenario-limits.ts, with its reason
      const rel = iss.code === 'too_small' ? (iss.inclusive ? '>=' : '>') : (iss.inclusive ? '<=' : '<');
      const bound = iss.code === 'too_small' ? iss.minimum : iss.maximum;
      if (iss.origin === 'array') return `a list with ${iss.code === 'too_small' ? 'at least' : 'at most'} ${bound} item${bound === 1 ? '' : 's'}`;
      if (iss.origin === 'string') return iss.code === 'too_small' ? 'a non-empty string' : `a string of at most ${bound} characters`;
      return `a number ${rel} ${bound}`;
    }
    case 'invalid_union': {
      const options = (iss as { options?: unknown[] }).options;
      return options ? `one of ${options.map((x) => JSON.stringify(x)).join(', ')}` : iss.message;
    }
    default: return iss.message;
  }
}

// --- the parser --------------------------------------------------------------------------------

class Ctx {
  constructor(readonly file: string, readonly doc: Document, readonly lc: LineCounter) {}
  at(path: readonly PathSeg[], opts?: { key?: boolean }): Pos {
    return locate(this.doc, this.lc, path, opts);
  }
  /** Throw `field PATH: expected …, found …` at the value (or key) of `path`. */
  fail(path: readonly PathSeg[], expected: string, found: string, opts?: { key?: boolean; pos?: Pos }): never {
    throw new ScenarioError(this.file, opts?.pos ?? this.at(path, opts), `field ${formatPath(path)}: expected ${expected}, found ${found}`);
  }
  /** The position as "line L" for "first at" notes. */
  line(path: readonly PathSeg[]): string {
    const p = this.at(path);
    return `line ${p.line}`;
  }
}

/** Parse scenario text. `file` names it in errors and anchors relative capture paths. */
export function parseScenario(text: string, file: string): Scenario {
  const nest = yamlDepth(text, LIMITS.yamlDepth);
  if (nest.depth > LIMITS.yamlDepth) throw new ScenarioError(file, { line: nest.line, column: 1 }, `YAML nested more than ${LIMITS.yamlDepth} levels deep (a scenario nests a few levels)`);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: true, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const lp = e.linePos?.[0];
    const msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new ScenarioError(file, lp ? { line: lp.line, column: lp.col } : { line: 1, column: 1 }, `YAML syntax error: ${msg}`);
  }
  const ctx: Ctx = new Ctx(file, doc, lc);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ScenarioError(file, { line: 1, column: 1 }, `YAML: ${(err as Error).message}`);
  }
  if (data === null || data === undefined) ctx.fail([], 'a mapping of scenario fields (name, machine, tenants, …)', 'an empty document');
  const r = scenarioSchema.safeParse(data);
  if (!r.success) {
    const iss = r.error.issues[0];
    if (iss.code === 'unrecognized_keys') {
      const path = [...iss.path, iss.keys[0]] as PathSeg[];
      if (path.length === 1 && path[0] === 'sweep') ctx.fail(path, 'no sweep block in a scenario kasi run runs (a grid of scenarios: run it with kasi sweep)', 'a sweep block', { key: true });
      ctx.fail(path, iss.message, `unknown field ${JSON.stringify(iss.keys[0])}`, { key: true });
    }
    const path = iss.path as PathSeg[];
    ctx.fail(path, expectedOf(iss), describe(valueAt(data, path)));
  }
  const s = build(ctx, r.data);
  // A stop no run can reach (sim/budget.ts: shorter than any event, or past the engine's clocks) is refused here, where it was written.
  const impossible = predictWork(s).impossible;
  if (impossible !== null) ctx.fail([s.stop.kind], impossible, valueAt(data, [s.stop.kind]) === undefined ? 'the default duration 1ms' : describe(valueAt(data, [s.stop.kind])));
  return s;
}

/** Read and parse a scenario file. */
export function loadScenario(file: string): Scenario {
  return parseScenario(readTextMaybeGz(file, 'utf8', LIMITS.scenarioBytes), file);
}

function checkUnique(ctx: Ctx, what: string, items: readonly { name: string }[], path: (i: number) => PathSeg[]): void {
  const first = new Map<string, number>();
  items.forEach((it, i) => {
    const j = first.get(it.name);
    if (j !== undefined) ctx.fail(path(i), `a unique ${what} name`, `${JSON.stringify(it.name)} again (first at ${ctx.line(path(j))})`);
    first.set(it.name, i);
  });
}

function buildMachine(ctx: Ctx, m: Raw['machine']): MachineSpec {
  if (!profileNames().includes(m.cpu)) ctx.fail(['machine', 'cpu'], `a CPU profile (${profileNames().join(', ')})`, describe(m.cpu));
  const p = getProfile(m.cpu);
  const tpc = m.threads_per_core ?? (p.smt ? 2 : 1);
  const at = (f: string): PathSeg[] => ['machine', f];
  if (tpc !== 1 && tpc !== 2) ctx.fail(at('threads_per_core'), '1 or 2 hardware threads per core', `${tpc}`);
  if (tpc === 2 && !p.smt) ctx.fail(at('threads_per_core'), `1 (${m.cpu} has no SMT)`, '2');
  if (m.ram === 0) ctx.fail(at('ram'), 'some RAM (above 0)', '0');
  if (m.ram % 4096 !== 0) ctx.fail(at('ram'), 'a multiple of 4KiB (whole page frames)', `${m.ram} bytes`);
  if (m.ram > 2 ** p.maxPhysBits) ctx.fail(at('ram'), `at most 2^${p.maxPhysBits} bytes (MAXPHYADDR of ${m.cpu})`, `${m.ram} bytes`);
  if (m.ram > SL.ramBytes.max) ctx.fail(at('ram'), SL.ramBytes.why, `${m.ram} bytes`);
  if (m.paging_levels !== 4 && m.paging_levels !== 5) ctx.fail(at('paging_levels'), '4 or 5 paging levels', `${m.paging_levels}`);
  // SDM Vol. 3A 4.1.1: 5-level paging needs CR4.LA57, enumerated by CPUID.(EAX=07H,ECX=0):ECX.LA57[bit 16]
  if (m.paging_levels === 5 && !p.features.la57) ctx.fail(at('paging_levels'), `4 (${m.cpu} has no LA57, so no 5-level paging)`, '5');
  return { cpu: m.cpu, cores: m.cores, threadsPerCore: tpc as 1 | 2, ramBytes: m.ram, pagingLevels: m.paging_levels as 4 | 5, loadBalance: m.load_balance };
}

function buildTenants(ctx: Ctx, raw: Raw['tenants'], machine: MachineSpec): TenantSpec[] {
  checkUnique(ctx, 'tenant', raw, (i) => ['tenants', i, 'name']);
  const n = threadCount(machine);
  const p = getProfile(machine.cpu);
  let used = 0;
  return raw.map((t, i) => {
    const at = (...s: PathSeg[]): PathSeg[] => ['tenants', i, ...s];
    t.pin.forEach((th, j) => { if (th >= n) ctx.fail(at('pin', j), `a hardware thread 0..${n - 1}`, `${th}`); });
    if (t.kind === 'vm' && !(p.features.vmx && p.features.ept)) ctx.fail(at('kind'), `a host tenant (${machine.cpu} has no VT-x with EPT, which kasi's KVM model needs)`, '"vm"');
    const memory = 'memory' in t ? t.memory : 0;
    if ('memory' in t) {
      if (memory === 0 || memory % 4096 !== 0) ctx.fail(at('memory'), 'a non-zero multiple of 4KiB', `${memory} bytes`);
      if (used + memory > machine.ramBytes) ctx.fail(at('memory'), `at most ${machine.ramBytes - used} bytes (the machine's RAM left by earlier tenants)`, `${memory} bytes`);
      used += memory;
    }
    checkUnique(ctx, 'object', t.objects, (j) => at('objects', j, 'name'));
    t.objects.forEach((o, j) => {
      const info = OBJECT_KINDS[o.kind as keyof typeof OBJECT_KINDS];
      if (!(info.tenants as readonly TenantKind[]).includes(t.kind)) {
        const ok = OBJECT_KIND_NAMES.filter((k) => (OBJECT_KINDS[k].tenants as readonly TenantKind[]).includes(t.kind));
        ctx.fail(at('objects', j, 'kind'), `an object kind a ${t.kind} tenant owns (${ok.join(', ')})`, describe(o.kind));
      }
    });
    const ws = 'working_set' in t ? t.working_set : null;
    if (ws !== null && (ws.bytes % 64 !== 0 || ws.bytes > memory)) ctx.fail(at('working_set', 'bytes'), `a multiple of 64 bytes, at most the tenant's memory (${memory} bytes)`, `${ws.bytes} bytes`);
    return {
      name: t.name, kind: t.kind, vcpus: t.kind === 'vm' ? t.vcpus : 0, memoryBytes: memory, pin: t.pin, lockFraction: t.kind === 'vm' ? t.lock_fraction : 0, lockWait: t.kind === 'vm' ? t.lock_wait : 'spin', thp: t.kind === 'process' ? t.thp : false,
      objects: t.objects.map((o) => ({ name: o.name, kind: o.kind as keyof typeof OBJECT_KINDS, cold: o.cold })),
      workingSet: ws === null ? { bytes: 0, writes: 0, linesPerKcycle: 0 } : { bytes: ws.bytes, writes: ws.writes, linesPerKcycle: ws.lines_per_kcycle },
    };
  });
}

function tenantRef(ctx: Ctx, tenants: readonly TenantSpec[], name: string, path: PathSeg[]): TenantSpec {
  const t = tenants.find((x) => x.name === name);
  if (t === undefined) ctx.fail(path, `a tenant name (${tenants.map((x) => x.name).join(', ') || 'none are defined'})`, describe(name));
  return t;
}

/**
 * Workload tasks may share a hardware thread (the host time-shares them: more vCPUs than
 * threads); an attacker's thread is its own (its primitives run between the victim's events on
 * the sibling, not in a time slice of the same CPU).
 */
function checkThread(ctx: Ctx, machine: MachineSpec, tenant: TenantSpec, thread: number, path: PathSeg[], taken: Map<number, { at: PathSeg[]; attacker: boolean }>, vcpuThreads: Map<string, number>, attacker: boolean): void {
  const n = threadCount(machine);
  if (thread >= n) ctx.fail(path, `a hardware thread 0..${n - 1}`, `${thread}`);
  if (tenant.pin.length > 0 && !tenant.pin.includes(thread)) ctx.fail(path, `a thread tenant ${tenant.name} is pinned to (${tenant.pin.join(', ')})`, `${thread}`);
  const prev = taken.get(thread);
  if (prev !== undefined && (attacker || prev.attacker)) ctx.fail(path, attacker ? 'a thread no other workload or attacker uses' : 'a thread no attacker uses', `${thread} again (first at ${ctx.line(prev.at)})`);
  taken.set(thread, { at: path, attacker });
  if (tenant.kind === 'vm') {
    // each busy thread of a VM is one of its vCPUs
    const used = (vcpuThreads.get(tenant.name) ?? 0) + 1;
    if (used > tenant.vcpus) ctx.fail(path, `at most ${tenant.vcpus} thread${tenant.vcpus === 1 ? '' : 's'} for vm ${tenant.name} (vcpus: ${tenant.vcpus})`, `thread ${thread}, its vCPU number ${used}`);
    vcpuThreads.set(tenant.name, used);
  }
}

const MIX_TENANTS: Record<string, readonly TenantKind[]> = {
  'vm-exit': ['vm'], 'guest-run': ['vm'], syscall: ['process', 'netns'], 'user-compute': ['process', 'netns'], 'page-fault': ['process', 'netns'],
};

/** asi= values a scenario accepts: the design names, off, and cmdline.ts's short names as aliases. */
const ASI_ALIASES: Record<string, IsolationDesign> = { kvm: 'kvm-asi-2019', sci: 'sci-2019', netns: 'netns-asi', google: 'google-asi-2025' };
const COARSE: Record<IsolationDesign, string> = {
  off: 'off', kpti: 'off', 'kvm-asi-2019': 'kvm', 'sci-2019': 'sci', 'google-asi-2022': 'google', 'google-asi-2025': 'google', 'netns-asi': 'netns',
};
const STUN_DESIGNS: readonly IsolationDesign[] = ['kvm-asi-2019', 'google-asi-2022', 'google-asi-2025'];

function buildIsolation(ctx: Ctx, raw: Raw['isolation'], pti: 'auto' | 'on' | 'off'): IsolationSpec[] {
  checkUnique(ctx, 'isolation', raw, (i) => ['isolation', i, 'name']);
  const list = raw.length > 0 ? raw : [{ name: 'default', cmdline: '', stun: undefined, what_if: [] }];
  return list.map((iso, i) => {
    const at = (f: string): PathSeg[] => ['isolation', i, f];
    const text = iso.cmdline;
    // The kernel's command line is a C string (boot_command_line): a NUL would end it there, which no file means.
    const nul = text.indexOf('\0');
    if (nul >= 0) ctx.fail(at('cmdline'), 'a kernel command line without NUL characters (the kernel\'s line is a C string: it would end there)', describe(text), { pos: locateInString(ctx.doc, ctx.lc, at('cmdline'), nul) });
    let design: IsolationDesign = 'off';
    let parserText = '';
    let last = 0;
    for (const tk of tokens(text)) {
      if (!paramEq(tk.name, 'asi')) continue;
      const v = tk.value ?? '';
      const d = v === 'off' || (ASI_DESIGN_NAMES as readonly string[]).includes(v) ? (v as IsolationDesign) : ASI_ALIASES[v];
      if (d === undefined) {
        // The Google branches switch ASI with asi=on (RFC v2, the Aug 2025 posting's boot lines): say which design to name.
        const hint = v === 'on' ? ' (asi=on is the Google branches\' switch: asi=google-asi-2025 is RFC v2, with what_if: [ephmap-tmpfs] the Aug 2025 branch)' : '';
        ctx.fail(at('cmdline'), `asi= one of off, ${ASI_DESIGN_NAMES.join(', ')}${hint}`, `asi=${v}`, { pos: locateInString(ctx.doc, ctx.lc, at('cmdline'), tk.start) });
      }
      design = d;
      // Hand the kernel-line parser the name it knows (mitigations/cmdline.ts ASI_DESIGNS).
      const known = (ASI_DESIGNS as readonly string[]).includes(d) ? d : COARSE[d];
      // tk.end is past the whitespace that followed the token (next_arg()): keep one separator.
      parserText += `${text.slice(last, tk.start)}${tk.name}=${known} `;
      last = tk.end;
    }
    parserText += text.slice(last);
    let mitigations: MitigationCmdline;
    try {
      mitigations = { ...parseMitigationCmdline(parserText), text };
    } catch (err) {
      if (!(err instanceof CmdlineError)) throw err;
      const tk = tokens(text).find((x) => paramEq(x.name, err.param) && (() => { try { parseMitigationCmdline(text.slice(x.start, x.end)); return false; } catch { return true; } })());
      const pos = locateInString(ctx.doc, ctx.lc, at('cmdline'), tk?.start ?? 0);
      ctx.fail(at('cmdline'), 'a kernel command line kasi accepts', err.message.replace(/^kernel command line: /, ''), { pos });
    }
    const explicitPti = mitigations.pti !== null || mitigations.nopti;
    if (design === 'kpti') {
      if (mitigations.nopti || mitigations.pti === 'off') ctx.fail(at('cmdline'), 'asi=kpti without pti=off/nopti', `both in ${JSON.stringify(text)}`);
      mitigations = { ...mitigations, pti: 'on' };
    } else if (!explicitPti && pti !== 'auto') mitigations = { ...mitigations, pti };
    // Each design runs as posted (its `stun`); a stun it did not post is a named what-if variant.
    const posted = STUN_DESIGNS.includes(design) && getDesign(design as DesignName).stun;
    const stun = iso.stun ?? posted;
    if (stun && !STUN_DESIGNS.includes(design)) ctx.fail(at('stun'), `stun only with asi=${STUN_DESIGNS.join(', asi=')}`, `stun: true with asi=${design}`);
    iso.what_if.forEach((w, j) => {
      if (iso.what_if.indexOf(w) !== j) ctx.fail(['isolation', i, 'what_if', j], 'each what-if once', `${JSON.stringify(w)} again`);
      // The ephmap is the Aug 2025 branch's, on RFC v2's transitions (asi/ephmap.ts).
      const eph = EPHMAP_WHAT_IFS.includes(w);
      const ok = w === 'sci-no-caps' ? design === 'sci-2019' : eph ? design === 'google-asi-2025' : design !== 'off' && design !== 'kpti' && design !== 'sci-2019' && design !== 'netns-asi';
      const want = w === 'sci-no-caps' ? 'sci-no-caps only with asi=sci-2019' : eph ? `${w} only with asi=google-asi-2025 (the Aug 2025 branch is RFC v2 with the ephmap)` : `${w} with an asi= design that enters and exits restricted kernel tables (kvm-asi-2019, google-asi-*)`;
      if (!ok) ctx.fail(['isolation', i, 'what_if', j], want, `${JSON.stringify(w)} with asi=${design}`);
    });
    return { name: iso.name, cmdline: text, mitigations, design, stun, stunWhatIf: stun !== posted, whatIf: iso.what_if };
  });
}

function buildOverrides(ctx: Ctx, raw: Raw['footprints']['override']): Record<string, FootprintOverride> {
  const out: Record<string, FootprintOverride> = {};
  for (const [key, o] of Object.entries(raw)) {
    const path: PathSeg[] = ['footprints', 'override', key];
    try { parseFootprintKey(key); } catch (err) { ctx.fail(path, 'an event key such as syscall:read, vm-exit:HLT or page-fault', `${JSON.stringify(key)} (${(err as Error).message})`, { key: true }); }
    const pos = ctx.at(path, { key: true });
    out[key] = {
      text: o.text && { measured: o.text.measured, pages: o.text.pages?.map((p) => BigInt(p)), modulePages: o.text.module_pages },
      insns: o.insns, data: o.data, tlbFlushPages: o.tlb_flush_pages, base: o.base,
      source: o.source ?? `scenario ${ctx.file}:${pos.line}`,
    };
    for (const k of Object.keys(out[key]) as (keyof FootprintOverride)[]) if (out[key][k] === undefined) delete out[key][k];
  }
  if (Object.keys(out).length === 0) return out; // no need to read the measured pages
  try {
    loadFootprintTable({ overrides: out });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const key = Object.keys(out).find((k) => { try { loadFootprintTable({ overrides: { [k]: out[k] } }); return false; } catch { return true; } }) ?? '';
    ctx.fail(['footprints', 'override', key], 'an override the footprint table accepts', err.message);
  }
  return out;
}

function buildCosts(ctx: Ctx, raw: Raw['costs']): CostOverrides {
  const params: Partial<Record<CostParam, CostValue>> = {};
  for (const [k, v] of Object.entries(raw.override)) {
    const p = costParamFromYaml(k);
    const path: PathSeg[] = ['costs', 'override', k];
    if (p === undefined) ctx.fail(path, `a cost parameter (${costParamYamlNames().join(', ')})`, `unknown parameter ${JSON.stringify(k)}`, { key: true });
    params[p] = typeof v === 'number' ? { cycles: v, source: `scenario ${ctx.file}:${ctx.at(path, { key: true }).line}` } : v;
  }
  const out: CostOverrides = { params };
  if (raw.clock_ghz !== undefined) out.clock = { ghz: raw.clock_ghz, source: `scenario ${ctx.file}:${ctx.at(['costs', 'clock_ghz'], { key: true }).line}` };
  return out;
}

function build(ctx: Ctx, r: Raw): Scenario {
  const machine = buildMachine(ctx, r.machine);
  let capture: string | null = null;
  if (r.kernel.capture !== null) {
    capture = resolve(dirname(ctx.file), r.kernel.capture);
    const ok = existsSync(capture) && statSync(capture).isDirectory() && existsSync(join(capture, 'kernel.json.gz'));
    if (!ok) ctx.fail(['kernel', 'capture'], 'a capture folder holding kernel.json.gz (relative to the scenario file)', `${JSON.stringify(r.kernel.capture)} (${capture})`);
    // A captured kernel runs on the CPUs it booted with (its per-CPU areas): no more hardware threads.
    const cap = capturedCpuCount(capture);
    if (cap !== null && threadCount(machine) > cap.cpus) {
      ctx.fail(['kernel', 'capture'], `a capture whose kernel booted with the machine's ${threadCount(machine)} hardware threads (machine: ${machine.cores} core(s) × ${machine.threadsPerCore}) or more`,
        `one whose kernel booted with ${cap.cpus} CPU(s) (${cap.file}): give the machine fewer cores or threads`);
    }
  }
  const tenants = buildTenants(ctx, r.tenants, machine);

  checkUnique(ctx, 'secret', r.secrets, (i) => ['secrets', i, 'name']);
  const secrets = r.secrets.map((s, i) => {
    const at = (f: string): PathSeg[] => ['secrets', i, f];
    const slash = s.in.indexOf('/');
    if (slash < 0) ctx.fail(at('in'), '"tenant/object"', describe(s.in));
    const t = tenantRef(ctx, tenants, s.in.slice(0, slash), at('in'));
    const oname = s.in.slice(slash + 1);
    const o = t.objects.find((x) => x.name === oname);
    if (o === undefined) {
      ctx.fail(at('in'), `an object of tenant ${t.name} (${t.objects.map((x) => x.name).join(', ') || 'it has none'})`, `${JSON.stringify(oname)}`,
        { pos: locateInString(ctx.doc, ctx.lc, at('in'), slash + 1) });
    }
    const cap = OBJECT_KINDS[o.kind].capacity;
    if (s.bytes < MIN_RUN) ctx.fail(at('bytes'), `at least ${MIN_RUN} bytes (shorter secrets cannot be scored, attacks/secrets.ts MIN_RUN)`, `${s.bytes}`);
    if (s.offset + s.bytes > cap) ctx.fail(at('bytes'), `offset + bytes within the ${cap} bytes of a ${o.kind}`, `${s.offset} + ${s.bytes}`);
    return { name: s.name, tenant: t.name, object: o.name, bytes: s.bytes, offset: s.offset };
  });

  const footprintOverrides = buildOverrides(ctx, r.footprints.override);
  const known = new Set([...footprintKeys(), ...Object.keys(footprintOverrides)]);
  const taken = new Map<number, { at: PathSeg[]; attacker: boolean }>();
  const vcpuThreads = new Map<string, number>();
  const notes: string[] = [];
  // A process's text holds its largest code_bytes (sim/world.ts tenantCodeBytes, linux/process.ts textVmaBytes), in RAM beside the tenants' memory.
  let ramLeft = machine.ramBytes - tenants.reduce((a, t) => a + t.memoryBytes, 0);
  const textOf = new Map<string, number>();
  const workload = r.workload.map((w, i) => {
    const t = tenantRef(ctx, tenants, w.tenant, ['workload', i, 'tenant']);
    checkThread(ctx, machine, t, w.thread, ['workload', i, 'thread'], taken, vcpuThreads, false);
    const raw = importedOrWritten(ctx, w, i, r.costs.clock_ghz ?? getCostModel(machine.cpu).clock.ghz, notes);
    const mix = raw.map((m, j) => {
      const at = (f: string): PathSeg[] => ['workload', i, 'mix', j, f];
      const kinds = MIX_TENANTS[m.event];
      if (kinds !== undefined && !kinds.includes(t.kind)) ctx.fail(at('event'), `an event a ${t.kind} tenant makes`, `${JSON.stringify(m.event)} (only ${kinds.join('/')} tenants make it)`);
      if (m.event === 'syscall' && m.bytes !== undefined && !SIZED_SYSCALLS.includes(m.name)) ctx.fail(at('bytes'), `bytes only on a copying syscall (${SIZED_SYSCALLS.join(', ')})`, `bytes with ${m.name}`);
      if (m.event === 'syscall' && m.bytes !== undefined && footprintOverrides[`syscall:${m.name}`]?.base !== undefined) ctx.fail(at('bytes'), 'no bytes on a syscall whose footprint carries a measured native base (sim/event-base.ts: it says nothing of the cost per byte)', `bytes with footprints.override["syscall:${m.name}"].base`);
      if (m.event === 'vm-exit' || m.event === 'syscall') {
        const [field, detail] = m.event === 'vm-exit' ? ['reason', m.reason] : ['name', m.name];
        if (!known.has(`${m.event}:${detail}`)) {
          const opts = [...known].filter((k) => k.startsWith(`${m.event}:`)).map((k) => k.slice(m.event.length + 1));
          ctx.fail(at(field), `a ${m.event} ${field} in the footprint table (${opts.join(', ')}) or footprints.override`, describe(detail));
        }
      }
      if ((m.event === 'guest-run' || m.event === 'user-compute') && 'code_bytes' in m && m.code_bytes !== undefined) {
        const { code_bytes: codeBytes, ...rest } = m;
        if (t.kind === 'process' && m.event === 'user-compute') {
          const text = textVmaBytes(codeBytes);
          const had = textOf.get(t.name) ?? textVmaBytes(0);
          if (text > had) {
            if (text - had > ramLeft) ctx.fail(at('code_bytes'), `at most ${had + ramLeft} bytes (the process's text holds its hot code, in the machine's RAM left by the tenants' memory)`, `${codeBytes} bytes`);
            ramLeft -= text - had;
            textOf.set(t.name, text);
          }
        }
        return { ...rest, codeBytes } as MixItem;
      }
      return m as MixItem;
    });
    return { thread: w.thread, tenant: t.name, mix, background: w.background };
  });
  const attackers = r.attackers.map((a, i) => {
    const at = (...f: PathSeg[]): PathSeg[] => ['attackers', i, ...f];
    const t = tenantRef(ctx, tenants, a.tenant, at('tenant'));
    checkThread(ctx, machine, t, a.thread, at('thread'), taken, vcpuThreads, true);
    a.attacks.forEach((name, j) => {
      if (a.attacks.indexOf(name) !== j) ctx.fail(at('attacks', j), 'each attack once', `${JSON.stringify(name)} again`);
      if (name === 'l1tf-guest' && t.kind !== 'vm') ctx.fail(at('attacks', j), `an attack a ${t.kind} tenant can run (l1tf-guest needs a vm tenant)`, `"${name}"`);
      if ((name === 'l1tf-native' || name === 'meltdown' || name === 'rop') && t.kind === 'vm') ctx.fail(at('attacks', j), `an attack a vm tenant can run (${name} needs a host process)`, `"${name}"`);
    });
    if (a.spectre_v1 !== undefined && !a.attacks.includes('spectre-v1')) ctx.fail(at('spectre_v1'), 'spectre_v1 settings only with the spectre-v1 attack', 'no spectre-v1 in attacks', { key: true });
    return { thread: a.thread, tenant: t.name, attacks: a.attacks, every: a.every, spectreV1: { gadget: a.spectre_v1?.gadget ?? 'unaudited', window: a.spectre_v1?.window ?? 'entry' } };
  });

  // An attacker's loads (meltdown, spectre-v1, rop read the secrets through the shared L1D) change
  // what its fill-buffer samplers see: the victim's next touch of a line the attacker just loaded
  // hits in L1D and allocates no fill buffer (mds.rst: fill buffers manage L1 misses; uarch/core.ts
  // records one only on a miss). Load ports take every load, hit or miss, so mlpds is not named.
  attackers.forEach((a, i) => {
    const loads = a.attacks.filter((n) => n === 'meltdown' || n === 'spectre-v1' || n === 'rop');
    const samples = a.attacks.filter((n) => n === 'mfbds' || n === 'taa');
    if (loads.length > 0 && samples.length > 0) notes.push(`attackers[${i}] runs ${loads.join(', ')} beside ${samples.join(', ')}: where ${loads.join('/')} reads a secret its lines stay in the shared L1D, so the victim's next touches of them hit in L1D instead of missing and ${samples.join('/')} sample them less; their cells are what they get beside ${loads.join('/')}, not alone`);
  });

  if (r.duration !== undefined && r.events !== undefined) ctx.fail(['events'], 'either duration or events', 'both');
  const stop = r.events !== undefined ? { kind: 'events' as const, count: r.events } : { kind: 'duration' as const, time: r.duration ?? { unit: 'ns' as const, value: 1e6 } };

  return {
    file: ctx.file,
    name: r.name ?? basename(ctx.file, extname(ctx.file)),
    seed: r.seed,
    stop,
    machine,
    kernel: { kaslr: r.kernel.kaslr, kaslrSeed: r.kernel.kaslr_seed ?? r.seed, pti: r.kernel.pti, capture },
    tenants,
    secrets,
    workload,
    attackers,
    isolation: buildIsolation(ctx, r.isolation, r.kernel.pti),
    footprintOverrides,
    calibration: buildCalibration(ctx, r),
    notes,
    costOverrides: buildCosts(ctx, r.costs),
    positions: collectPositions(ctx.doc, ctx.lc),
  };
}

/**
 * A workload entry's mix: written out (`mix:`), or taken from a tool's output (`from: { file, kind,
 * vcpu }`, sim/import-mix.ts: counts become weights, the time between events a guest-run /
 * user-compute item when the file has a duration; what borrows a footprint goes into the notes),
 * or both (the written items join the imported ones).
 */
type RawMix = NonNullable<Raw['workload'][number]['mix']>[number];
function importedOrWritten(ctx: Ctx, w: Raw['workload'][number], i: number, ghz: number, notes: string[]): readonly RawMix[] {
  const at = (...f: PathSeg[]): PathSeg[] => ['workload', i, ...f];
  if (w.mix === undefined && w.from === undefined) ctx.fail(at(), 'a mix, or from (a tool output to import), or both', 'neither');
  if (w.from === undefined) return w.mix!;
  const f = w.from!;
  const file = resolve(dirname(ctx.file), f.file);
  if (!existsSync(file)) ctx.fail(at('from', 'file'), 'a tool output file (relative to this scenario)', `${JSON.stringify(f.file)} (${file} does not exist)`);
  const m = loadImportedMix(file, { kind: f.kind, vcpu: f.vcpu, cyclesPerNs: ghz, threads: 1 });
  if (m.items.length === 0) ctx.fail(at('from', 'file'), 'a tool output with at least one event', `${f.file}: nothing to replay`);
  notes.push(`workload[${i}] from ${f.file} (${m.format}): ${m.items.length} mix items${m.eventsPerSecond !== null ? `, ${Math.round(m.eventsPerSecond)} events/s` : ''}`, ...m.notes);
  // The importer's items are mix items of the table's keys (sim/import-mix.ts); a written mix adds to them
  // (the guest's or the process's own time, which a count of exits or calls does not give).
  return [...(m.items as RawMix[]), ...(w.mix ?? [])];
}

function buildCalibration(ctx: Ctx, r: Raw): CalibrationSpec | null {
  const c = r.calibration;
  if (c === undefined) return null;
  const names = r.isolation.map((x) => x.name);
  c.between.forEach((n, i) => { if (!names.includes(n)) ctx.fail(['calibration', 'between', i], `an isolation entry name (${names.join(', ') || 'none are defined'})`, JSON.stringify(n)); });
  if (c.band !== undefined && !(c.band[0] <= c.published && c.published <= c.band[1])) ctx.fail(['calibration', 'band'], `a band [low, high] that holds published (${c.published})`, JSON.stringify(c.band));
  if (r.events === undefined) ctx.fail(['calibration'], 'a calibration scenario with `events: N` (every configuration runs the same events)', 'a duration');
  if (c.status === 'missed' && (c.note ?? '').length < 20) ctx.fail(['calibration', 'note'], 'a note that says why the model misses this figure (status: missed)', describe(c.note));
  return { figure: c.figure, source: c.source, published: c.published, metric: c.metric, between: c.between, tolerancePct: c.tolerance_pct, band: c.band ?? null, note: c.note ?? '', status: c.status, seeds: c.seeds };
}

/** The built-in scenario (sim/default-scenario.ts), used when `kasi run` gets no file. */
export function defaultScenario(): Scenario {
  return parseScenario(DEFAULT_SCENARIO_YAML, DEFAULT_SCENARIO_FILE);
}
