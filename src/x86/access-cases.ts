/**
 * Access-rights cases measured on QEMU's x86-64 emulation (test/fixtures/access/README.md):
 * one JSON object a line (`.jsonl`, or `.jsonl.gz`), each a single memory access with its
 * four paging-structure entries, control state, access kind, and what happened.
 *
 * `loadAccessCases` parses and validates (errors: `FILE:LINE: field X: expected …, found …`);
 * `runAccessCase` replays one case through the walker on a fresh PhysMemory and compares the
 * outcome — vector, error code, and every entry's A/D bits afterwards — with `sdm_expected`
 * where the file has it (QEMU departs from the SDM there) and with QEMU's `result` elsewhere.
 */
import { PhysMemory } from '../phys/memory.ts';
import { CpuState } from './cpu.ts';
import { Translation, translate } from './walk.ts';
import {
  ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_READ, ACCESS_WRITE, PFEC_ID, PFEC_P, PFEC_PK, PFEC_RSVD,
  PFEC_U, PFEC_W,
} from './bits.ts';
import { InputError, parseJson, readTextMaybeGz } from '../formats/files.ts';

/** The cases were measured on `-cpu max`: 40 physical address bits (README). */
export const CASES_MAXPHYADDR = 40;

export const LEVEL_NAMES = ['pml4e', 'pdpte', 'pde', 'pte'] as const;
export type LevelName = (typeof LEVEL_NAMES)[number];
export const ACCESS_KINDS = ['read', 'write', 'fetch', 'implicit_read', 'implicit_write'] as const;
export type AccessKind = (typeof ACCESS_KINDS)[number];
const PAGE_SIZES = ['4K', '2M', '1G'] as const;
const CTL_FLAGS = ['wp', 'smep', 'smap', 'pke', 'pks', 'nxe', 'ac'] as const;

export interface AD { A: 0 | 1; D: 0 | 1 }
export type ADByLevel = Record<LevelName, AD>;

/** What an access ended in: vector 0 = no fault (the file's `null`). */
export interface Outcome {
  vector: 0 | 13 | 14;
  errorCode: number;
  ad: ADByLevel;
}

export interface AccessCase {
  line: number;
  id: number;
  family: string;
  desc: string;
  access: AccessKind;
  cpl: number;
  va: bigint;
  addr: bigint;
  size: number;
  pageSize: (typeof PAGE_SIZES)[number];
  cr3: bigint;
  entries: Record<LevelName, bigint>;
  entryPaddr: Record<LevelName, number>;
  regs: { cr0: bigint; cr4: bigint; efer: bigint; rflags: bigint; pkru: bigint; pkrs: bigint };
  ctl: Record<(typeof CTL_FLAGS)[number], 0 | 1>;
  /** What QEMU 7.2 did. */
  result: Outcome;
  /** The SDM's answer where QEMU departs from it (README "Which answer is right"). */
  sdmExpected?: Outcome;
  notes: string[];
}

const HEX64 = /^0x[0-9a-fA-F]{1,16}$/;

/** Validates one parsed line; every complaint names the line and the field. */
class Fields {
  constructor(readonly file: string, readonly line: number) {}

  fail(field: string, expected: string, v: unknown): never {
    const found = v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v));
    throw new InputError(this.file, `field ${field}: expected ${expected}, found ${found.length > 48 ? `${found.slice(0, 45)}...` : found}`, this.line);
  }

  obj(v: unknown, field: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'an object', v);
    return v as Record<string, unknown>;
  }

  hex(v: unknown, field: string): bigint {
    if (typeof v !== 'string' || !HEX64.test(v)) this.fail(field, 'a 0x-prefixed 64-bit hex string', v);
    return BigInt(v);
  }

  int(v: unknown, field: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(field, `an integer in ${min}..${max}`, v);
    return v;
  }

  str(v: unknown, field: string): string {
    if (typeof v !== 'string') this.fail(field, 'a string', v);
    return v;
  }

  oneOf<T extends string | number>(v: unknown, field: string, allowed: readonly T[]): T {
    if (!allowed.includes(v as T)) this.fail(field, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, v);
    return v as T;
  }

  bit(v: unknown, field: string): 0 | 1 {
    if (v !== 0 && v !== 1) this.fail(field, '0 or 1', v);
    return v;
  }

  outcome(v: unknown, field: string): Outcome {
    const o = this.obj(v, field);
    const vector = o.vector === null ? 0 : this.oneOf(o.vector, `${field}.vector`, [13, 14] as const);
    if (vector === 0 && o.vector !== null) this.fail(`${field}.vector`, 'null, 13 or 14', o.vector);
    let errorCode = 0;
    if (vector === 0) {
      if (o.error_code !== null && o.error_code !== undefined) this.fail(`${field}.error_code`, 'null when vector is null', o.error_code);
    } else {
      errorCode = this.int(o.error_code, `${field}.error_code`, 0, 0xffff);
    }
    const adIn = this.obj(o.ad_after, `${field}.ad_after`);
    const ad = {} as ADByLevel;
    for (const l of LEVEL_NAMES) {
      const e = this.obj(adIn[l], `${field}.ad_after.${l}`);
      ad[l] = { A: this.bit(e.A, `${field}.ad_after.${l}.A`), D: this.bit(e.D, `${field}.ad_after.${l}.D`) };
    }
    return { vector, errorCode, ad };
  }
}

function parseCase(doc: unknown, f: Fields): AccessCase {
  const d = f.obj(doc, '(line)');
  const access = f.oneOf(d.access, 'access', ACCESS_KINDS);
  const implicit = d.implicit;
  if (implicit !== access.startsWith('implicit_')) f.fail('implicit', `${access.startsWith('implicit_')} for access "${access}"`, implicit);
  const entriesIn = f.obj(d.entries, 'entries');
  const paddrIn = f.obj(d.entry_paddr, 'entry_paddr');
  const entries = {} as Record<LevelName, bigint>;
  const entryPaddr = {} as Record<LevelName, number>;
  for (const l of LEVEL_NAMES) {
    entries[l] = f.hex(entriesIn[l], `entries.${l}`);
    const pa = f.hex(paddrIn[l], `entry_paddr.${l}`);
    if (pa & 7n || pa >= 1n << BigInt(CASES_MAXPHYADDR)) f.fail(`entry_paddr.${l}`, `an 8-byte aligned address below 2^${CASES_MAXPHYADDR}`, paddrIn[l]);
    entryPaddr[l] = Number(pa);
  }
  const regs = {
    cr0: f.hex(d.cr0, 'cr0'), cr4: f.hex(d.cr4, 'cr4'), efer: f.hex(d.efer, 'efer'),
    rflags: f.hex(d.rflags, 'rflags'), pkru: f.hex(d.pkru, 'pkru'), pkrs: f.hex(d.pkrs, 'pkrs'),
  };
  // The format holds four entries (PML4E..PTE): 4-level paging only.
  if (regs.cr4 & (1n << 12n)) f.fail('cr4', 'CR4.LA57 clear (the format describes 4-level walks)', d.cr4);
  const ctlIn = f.obj(d.ctl, 'ctl');
  const ctl = {} as AccessCase['ctl'];
  for (const k of CTL_FLAGS) ctl[k] = f.bit(ctlIn[k], `ctl.${k}`);
  const notes = d.notes === undefined ? [] : d.notes;
  if (!Array.isArray(notes) || notes.some((n) => typeof n !== 'string')) f.fail('notes', 'an array of strings', notes);
  return {
    line: f.line,
    id: f.int(d.id, 'id', 0, Number.MAX_SAFE_INTEGER),
    family: f.str(d.family, 'family'),
    desc: f.str(d.desc, 'desc'),
    access,
    cpl: f.int(d.cpl, 'cpl', 0, 3),
    va: f.hex(d.va, 'va'),
    addr: f.hex(d.addr, 'addr'),
    size: f.int(d.size, 'size', 1, 64),
    pageSize: f.oneOf(d.page_size, 'page_size', PAGE_SIZES),
    cr3: f.hex(d.cr3, 'cr3'),
    entries, entryPaddr, regs, ctl,
    result: f.outcome(d.result, 'result'),
    sdmExpected: d.sdm_expected === undefined ? undefined : f.outcome(d.sdm_expected, 'sdm_expected'),
    notes: notes as string[],
  };
}

/** Parse JSON-lines text (blank lines skipped); `file` names the source in errors. */
export function parseAccessCases(text: string, file: string): AccessCase[] {
  const cases: AccessCase[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i].trim();
    if (s === '') continue;
    const doc = parseJson(s, file, i + 1);
    cases.push(parseCase(doc, new Fields(file, i + 1)));
  }
  if (cases.length === 0) throw new InputError(file, 'no cases found (expected one JSON object a line)');
  return cases;
}

/** Read a `.jsonl` or `.jsonl.gz` file (gzip recognised by its magic bytes). */
export function loadAccessCases(file: string): AccessCase[] {
  return parseAccessCases(readTextMaybeGz(file), file);
}

/** One replayed case. */
export interface CaseOutcome {
  case: AccessCase;
  /** Which answer the case was checked against. */
  source: 'sdm_expected' | 'result';
  expected: Outcome;
  got: Outcome;
  /** Entry bits other than A/D that changed (must be none). */
  clobbered: LevelName[];
  pass: boolean;
}

const ACCESS_BITS: Record<AccessKind, number> = {
  read: ACCESS_READ,
  write: ACCESS_WRITE,
  fetch: ACCESS_FETCH,
  implicit_read: ACCESS_IMPLICIT | ACCESS_READ,
  implicit_write: ACCESS_IMPLICIT | ACCESS_WRITE,
};

const AD_MASK = 0x60n; // A = bit 5, D = bit 6 (SDM 4.8)

/** A fresh machine holding the case's four entries and control state. */
export function setupCase(c: AccessCase): { mem: PhysMemory; cpu: CpuState } {
  const mem = new PhysMemory(CASES_MAXPHYADDR);
  for (const l of LEVEL_NAMES) mem.write64Big(c.entryPaddr[l], c.entries[l]);
  const cpu = new CpuState(CASES_MAXPHYADDR);
  cpu.load({ ...c.regs, cr3: c.cr3, cpl: c.cpl });
  return { mem, cpu };
}

/** The A/D bits of the case's four entries as they lie in `mem`. */
export function readAD(c: AccessCase, mem: PhysMemory): ADByLevel {
  const ad = {} as ADByLevel;
  for (const l of LEVEL_NAMES) {
    const after = mem.read64Big(c.entryPaddr[l]);
    ad[l] = { A: Number((after >> 5n) & 1n) as 0 | 1, D: Number((after >> 6n) & 1n) as 0 | 1 };
  }
  return ad;
}

/** Replay one case on a fresh machine and compare with its expected outcome. */
export function runAccessCase(c: AccessCase): CaseOutcome {
  const { mem, cpu } = setupCase(c);
  const t = new Translation();

  // An implicit write here is the processor setting a descriptor's accessed bit, which it
  // does when it loads the descriptor, i.e. after reading it (SDM Vol. 3A 3.4.5.1): model it
  // as an implicit read, then an implicit write of the same address. The read alone may
  // fault (W=0) or may set the leaf's A before the write faults (W=1); both occur in the cases.
  const steps = c.access === 'implicit_write' ? [ACCESS_BITS.implicit_read, ACCESS_BITS.implicit_write] : [ACCESS_BITS[c.access]];
  // Every page the access touches, in order (a split access translates both pages).
  const first = BigInt.asUintN(64, c.addr);
  const last = BigInt.asUintN(64, c.addr + BigInt(c.size - 1));
  const pages = (first >> 12n) === (last >> 12n) ? [first] : [first, last & ~0xfffn];
  let vector = 0;
  let errorCode = 0;
  outer: for (const access of steps) {
    for (const va of pages) {
      if (!translate(mem, cpu, Number(va & 0xffffffffn), Number(va >> 32n), access, t)) {
        vector = t.vector;
        errorCode = t.errorCode;
        break outer;
      }
    }
  }

  const clobbered = LEVEL_NAMES.filter((l) => (mem.read64Big(c.entryPaddr[l]) & ~AD_MASK) !== (c.entries[l] & ~AD_MASK));
  const got: Outcome = { vector: vector as Outcome['vector'], errorCode, ad: readAD(c, mem) };
  const expected = c.sdmExpected ?? c.result;
  const pass = clobbered.length === 0 && sameOutcome(expected, got);
  return { case: c, source: c.sdmExpected ? 'sdm_expected' : 'result', expected, got, clobbered, pass };
}

export function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (a.vector !== b.vector || a.errorCode !== b.errorCode) return false;
  return LEVEL_NAMES.every((l) => a.ad[l].A === b.ad[l].A && a.ad[l].D === b.ad[l].D);
}

/** `#PF(0x7 P|W|U)`, `#GP(0)` or `ok`. */
export function formatFault(o: { vector: number; errorCode: number }): string {
  if (o.vector === 0) return 'ok';
  if (o.vector === 13) return `#GP(${o.errorCode})`;
  return `#PF(0x${o.errorCode.toString(16)} ${formatErrorCode(o.errorCode)})`;
}

/** Error-code bits spelled out (SDM 4.7): `P|W|U|RSVD|ID|PK`, `-` for none. */
export function formatErrorCode(ec: number): string {
  const names: [number, string][] = [[PFEC_P, 'P'], [PFEC_W, 'W'], [PFEC_U, 'U'], [PFEC_RSVD, 'RSVD'], [PFEC_ID, 'ID'], [PFEC_PK, 'PK']];
  const s = names.filter(([b]) => ec & b).map(([, n]) => n).join('|');
  return s === '' ? '-' : s;
}

/** `pml4e:A- pdpte:A- pde:AD pte:--`. */
export function formatAD(ad: ADByLevel): string {
  return LEVEL_NAMES.map((l) => `${l}:${ad[l].A ? 'A' : '-'}${ad[l].D ? 'D' : '-'}`).join(' ');
}
