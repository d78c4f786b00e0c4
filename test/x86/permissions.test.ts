/**
 * Access rights, table-driven, in the spirit of kvm-unit-tests x86/access.c: every combination
 * of U/S, R/W and XD at the leaf and at one upper level, CR0.WP, CR4.SMEP, CR4.SMAP, RFLAGS.AC,
 * IA32_EFER.NXE, CR4.PKE/PKS with the leaf key's AD/WD, CPL 0/3 and five access kinds (327,680
 * walks), checked for fault, exact error code, A/D bits of every entry and the physical address.
 *
 * The truth is ORACLE below: a list of rules, one per sentence of Intel SDM Vol. 3A 4.5, 4.6.1,
 * 4.6.2, 4.7 and 4.8, each a deliberately naive predicate over the case's named bits. It never
 * calls the walker's code (walk.ts / checkAccess) and shares none of its bit tricks.
 * Then the structural rules: non-canonical addresses, reserved bits, not-present entries and
 * 5-level walks.
 */
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Translation, translate } from '../../src/x86/walk.ts';
import { ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_READ, ACCESS_WRITE } from '../../src/x86/bits.ts';

// ---------------------------------------------------------------------------------------------
// The case: plain named booleans, no bit masks.
// ---------------------------------------------------------------------------------------------
type Kind = 'read' | 'write' | 'fetch' | 'implicit_read' | 'implicit_write';
interface Perm { us: boolean; rw: boolean; xd: boolean }
interface Case {
  cpl: 0 | 3;
  kind: Kind;
  leaf: Perm;
  upper: Perm;
  leafLevel: 1 | 2 | 3; // PTE (4 KiB), PDE (2 MiB), PDPTE (1 GiB)
  upperLevel: 2 | 3 | 4; // the one non-leaf entry whose U/S, R/W, XD vary; the others allow all
  wp: boolean; smep: boolean; smap: boolean; ac: boolean; nxe: boolean;
  pke: boolean; pks: boolean;
  /** AD/WD of the leaf's key in the register that governs the page (PKRU or IA32_PKRS). */
  keyAD: boolean; keyWD: boolean;
}

// Facts about a case, each as the SDM states it.
const isImplicit = (c: Case) => c.kind === 'implicit_read' || c.kind === 'implicit_write';
const isWrite = (c: Case) => c.kind === 'write' || c.kind === 'implicit_write';
const isFetch = (c: Case) => c.kind === 'fetch';
const isData = (c: Case) => !isFetch(c);
// SDM 4.6: CPL 3 accesses are user-mode, except implicit accesses to system structures, which are supervisor-mode.
const userMode = (c: Case) => c.cpl === 3 && !isImplicit(c);
// SDM 4.6: a user-mode address is one with U/S=1 in every paging-structure entry of its translation.
const userAddr = (c: Case) => c.leaf.us && c.upper.us;
// SDM 4.6.1: "R/W flag is 1 in every paging-structure entry controlling the translation".
const rwEverywhere = (c: Case) => c.leaf.rw && c.upper.rw;
// SDM 4.6.1: "XD flag is 1 in any paging-structure entry controlling the translation".
const xdAnywhere = (c: Case) => c.leaf.xd || c.upper.xd;

interface Rule { when: (c: Case) => boolean; why: string }

/** Reserved bits in a present entry (checked during the walk, top level first). */
const RESERVED_RULES: (Rule & { level: (c: Case) => number })[] = [
  { when: (c) => !c.nxe && c.upper.xd, level: (c) => c.upperLevel, why: 'SDM 4.5 (tables 4-15..4-20): XD (bit 63) is reserved when IA32_EFER.NXE=0' },
  { when: (c) => !c.nxe && c.leaf.xd, level: (c) => c.leafLevel, why: 'SDM 4.5 (tables 4-15..4-20): XD (bit 63) is reserved when IA32_EFER.NXE=0' },
];

/** Access rights, SDM 4.6.1: each rule denies. */
const ACCESS_RULES: Rule[] = [
  { when: (c) => userMode(c) && !userAddr(c), why: 'SDM 4.6.1: user-mode accesses to supervisor-mode addresses are not allowed' },
  { when: (c) => userMode(c) && isWrite(c) && !rwEverywhere(c), why: 'SDM 4.6.1: user-mode writes need R/W=1 in every entry' },
  { when: (c) => userMode(c) && isFetch(c) && c.nxe && xdAnywhere(c), why: 'SDM 4.6.1: with NXE=1, user-mode fetches need XD=0 in every entry' },
  { when: (c) => !userMode(c) && isData(c) && userAddr(c) && c.smap && (isImplicit(c) || !c.ac), why: 'SDM 4.6.1: with CR4.SMAP=1, supervisor data accesses to user-mode addresses are denied unless explicit with RFLAGS.AC=1' },
  { when: (c) => !userMode(c) && isWrite(c) && c.wp && !rwEverywhere(c), why: 'SDM 4.6.1: with CR0.WP=1, supervisor-mode writes need R/W=1 in every entry' },
  { when: (c) => !userMode(c) && isFetch(c) && userAddr(c) && c.smep, why: 'SDM 4.6.1: with CR4.SMEP=1, supervisor-mode fetches from user-mode addresses are denied' },
  { when: (c) => !userMode(c) && isFetch(c) && c.nxe && xdAnywhere(c), why: 'SDM 4.6.1: with NXE=1, supervisor-mode fetches need XD=0 in every entry' },
];

/** Protection keys, SDM 4.6.2: each rule denies and sets PK in the error code (SDM 4.7). */
const KEY_RULES: Rule[] = [
  { when: (c) => c.pke && userAddr(c) && isData(c) && c.keyAD, why: 'SDM 4.6.2: CR4.PKE=1 and PKRU.AD of the key: no data access to the user-mode address' },
  { when: (c) => c.pke && userAddr(c) && isWrite(c) && c.keyWD && (userMode(c) || c.wp), why: 'SDM 4.6.2: CR4.PKE=1 and PKRU.WD of the key: no user-mode write, no supervisor write if CR0.WP=1' },
  { when: (c) => c.pks && !userAddr(c) && isData(c) && c.keyAD, why: 'SDM 4.6.2: CR4.PKS=1 and IA32_PKRS.AD of the key: no data access to the supervisor-mode address' },
  { when: (c) => c.pks && !userAddr(c) && isWrite(c) && c.keyWD && (userMode(c) || c.wp), why: 'SDM 4.6.2 / 4.7: CR4.PKS=1 and IA32_PKRS.WD of the key: no write if CR0.WP=1 (or a user-mode access)' },
];

interface Expected { fault: boolean; errorCode: number; rsvdLevel: number; why: string[] }

const fired = new Map<string, number>();
const count = (key: string) => fired.set(key, (fired.get(key) ?? 0) + 1);

function oracle(c: Case): Expected {
  // SDM 4.7: W/R = the access was a write; U/S = user-mode access; I/D = a fetch with SMEP=1 or (PAE and) NXE=1.
  const accessBits = (isWrite(c) ? 0x2 : 0) | (userMode(c) ? 0x4 : 0) | (isFetch(c) && (c.smep || c.nxe) ? 0x10 : 0);
  const rsvd = RESERVED_RULES.find((r) => r.when(c));
  if (rsvd) {
    count(`rsvd:${rsvd.level(c) === c.leafLevel ? 'leaf' : 'upper'}`);
    // SDM 4.7: P=1 (a present entry), RSVD=1.
    return { fault: true, errorCode: 0x1 | 0x8 | accessBits, rsvdLevel: rsvd.level(c), why: [rsvd.why] };
  }
  const denied = ACCESS_RULES.filter((r) => r.when(c));
  const keyDenied = KEY_RULES.filter((r) => r.when(c));
  for (const r of [...denied, ...keyDenied]) count(r.why);
  if (denied.length === 0 && keyDenied.length === 0) return { fault: false, errorCode: 0, rsvdLevel: 0, why: [] };
  // SDM 4.7: P=1 (protection violation); PK=1 when a key denied the access, whatever else did.
  return { fault: true, errorCode: 0x1 | accessBits | (keyDenied.length ? 0x20 : 0), rsvdLevel: 0, why: [...denied, ...keyDenied].map((r) => r.why) };
}

/**
 * A/D after the access (SDM 4.8): A is set in every entry the walk used; D in the leaf on a
 * write. An entry with a reserved bit is not used, nor anything below it. On an access-rights
 * fault the leaf's A stays clear (SDM 6.15 footnote: only the upper entries' A is defined
 * then; kasi, like KVM and hardware tests, leaves the leaf alone — the fixture's sdm_expected).
 */
function expectedAD(c: Case, e: Expected, level: number, a: boolean, d: boolean): { a: boolean; d: boolean } {
  if (e.rsvdLevel !== 0 && level <= e.rsvdLevel) return { a, d };
  if (level > c.leafLevel) return { a: true, d }; // non-leaf: bit 6 is ignored, left as it was
  if (e.fault) return { a, d };
  return { a: true, d: d || isWrite(c) };
}

// ---------------------------------------------------------------------------------------------
// Building the tables: plain arithmetic on the VA, not the walker's.
// ---------------------------------------------------------------------------------------------
const VA = 0x00007f8123456abcn;
const TABLE_OF_LEVEL = (level: number) => 0x100000 + (5 - level) * 0x1000; // PML5 .. PT
const FRAME = 0x40000000; // 1 GiB aligned: good for every leaf size
const SENTINEL_TARGET = 0x7000000;
const indexAt = (va: bigint, level: number) => Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
const entryAddr = (va: bigint, level: number) => TABLE_OF_LEVEL(level) + indexAt(va, level) * 8;
const KIND_BITS: Record<Kind, number> = {
  read: ACCESS_READ, write: ACCESS_WRITE, fetch: ACCESS_FETCH,
  implicit_read: ACCESS_IMPLICIT | ACCESS_READ, implicit_write: ACCESS_IMPLICIT | ACCESS_WRITE,
};
const KINDS: Kind[] = ['read', 'write', 'fetch', 'implicit_read', 'implicit_write'];
const SHAPES: [1 | 2 | 3, 2 | 3 | 4][] = [[1, 2], [1, 3], [1, 4], [2, 3], [2, 4], [3, 4]];
const B = [false, true];

/** A register of 16 two-bit key fields: `bits` for `key`, the complement for every other key. */
function keyRegister(key: number, ad: boolean, wd: boolean): number {
  const mine = (ad ? 1 : 0) | (wd ? 2 : 0);
  let r = 0;
  for (let k = 0; k < 16; k++) r |= (k === key ? mine : 3 - mine) << (2 * k);
  return r >>> 0;
}

function describeCase(c: Case, key: number): string {
  const p = (x: Perm) => `${x.us ? 'US' : 'us'} ${x.rw ? 'RW' : 'rw'} ${x.xd ? 'XD' : 'xd'}`;
  const f = (name: string, on: boolean) => (on ? name.toUpperCase() : name.toLowerCase());
  const leafName = ['', 'pte', 'pde', 'pdpte'][c.leafLevel];
  const upperName = ['', '', 'pde', 'pdpte', 'pml4e'][c.upperLevel];
  return `cpl${c.cpl} ${c.kind} leaf ${leafName}{${p(c.leaf)}} ${upperName}{${p(c.upper)}} `
    + `${f('wp', c.wp)} ${f('smep', c.smep)} ${f('smap', c.smap)} ${f('ac', c.ac)} ${f('nxe', c.nxe)} `
    + `${f('pke', c.pke)} ${f('pks', c.pks)} key${key} ${f('ad', c.keyAD)} ${f('wd', c.keyWD)}`;
}

// A tiny deterministic generator for the initial A/D bits and the key (xorshift32).
let seed = 0x2545f491;
function rand(): number {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed;
}

const mem = new PhysMemory(40);
const cpu = new CpuState(40);
const t = new Translation();
const vaLo = Number(VA & 0xffffffffn);
const vaHi = Number(VA >> 32n);
let totalCases = 0;
let totalFaults = 0;

/** Run one case; returns a readable mismatch or null. */
function check(c: Case): string | null {
  const key = rand() & 15;
  const otherKey = (key + 7) & 15; // non-leaf entries carry another key: ignored (SDM 4.6.2)
  const init: { a: boolean; d: boolean }[] = [];
  for (let level = 4; level >= c.leafLevel; level--) {
    const r = rand();
    const a = (r & 1) !== 0;
    const d = (r & 2) !== 0;
    init[level] = { a, d };
    const isLeaf = level === c.leafLevel;
    const perm = isLeaf ? c.leaf : level === c.upperLevel ? c.upper : { us: true, rw: true, xd: false };
    let lo = (isLeaf ? FRAME : TABLE_OF_LEVEL(level - 1)) + 1; // P
    if (perm.rw) lo += 2;
    if (perm.us) lo += 4;
    if (a) lo += 0x20;
    if (d) lo += 0x40;
    if (isLeaf && level > 1) lo += 0x80; // PS
    const hi = (perm.xd ? 0x80000000 : 0) + (isLeaf ? key : otherKey) * 0x08000000; // XD = 63, key = 62:59
    mem.write64(entryAddr(VA, level), lo >>> 0, hi >>> 0);
  }
  // Below a large leaf, an entry the walk must not read: a present table entry in the data frame.
  const sentinelPa = c.leafLevel > 1 ? FRAME + indexAt(VA, c.leafLevel - 1) * 8 : -1;
  if (sentinelPa >= 0) mem.write64(sentinelPa, SENTINEL_TARGET | 0x7, 0);

  cpu.cr0 = 0x80000011 | (c.wp ? 1 << 16 : 0);
  cpu.cr4 = 0x20 | (c.smep ? 1 << 20 : 0) | (c.smap ? 1 << 21 : 0) | (c.pke ? 1 << 22 : 0) | (c.pks ? 1 << 24 : 0);
  cpu.efer = 0x500 | (c.nxe ? 0x800 : 0);
  cpu.rflags = 0x2 | (c.ac ? 1 << 18 : 0);
  cpu.cpl = c.cpl;
  cpu.cr3 = TABLE_OF_LEVEL(4);
  // The key's rights live in the register for the page's kind; the other register says the opposite.
  const ua = userAddr(c);
  cpu.pkru = keyRegister(key, ua ? c.keyAD : !c.keyAD, ua ? c.keyWD : !c.keyWD);
  cpu.pkrs = keyRegister(key, ua ? !c.keyAD : c.keyAD, ua ? !c.keyWD : c.keyWD);
  cpu.derive();

  const e = oracle(c);
  totalCases++;
  if (e.fault) totalFaults++;
  const ok = translate(mem, cpu, vaLo, vaHi, KIND_BITS[c.kind], t);
  const problems: string[] = [];
  if (ok === e.fault) problems.push(e.fault ? 'no fault' : `unexpected #PF(0x${t.errorCode.toString(16)})`);
  else if (e.fault && (t.vector !== 14 || t.errorCode !== e.errorCode)) problems.push(`vector ${t.vector} error 0x${t.errorCode.toString(16)}, expected #PF(0x${e.errorCode.toString(16)})`);
  if (ok && !e.fault) {
    const size = [0, 0x1000, 0x200000, 0x40000000][c.leafLevel];
    const pa = FRAME + (vaLo % size);
    if (t.pa !== pa) problems.push(`pa 0x${t.pa.toString(16)}, expected 0x${pa.toString(16)}`);
  }
  for (let level = 4; level >= c.leafLevel; level--) {
    const want = expectedAD(c, e, level, init[level].a, init[level].d);
    const lo = mem.read32(entryAddr(VA, level));
    const a = (lo & 0x20) !== 0;
    const d = (lo & 0x40) !== 0;
    if (a !== want.a || d !== want.d) problems.push(`L${level} A/D ${+a}${+d}, expected ${+want.a}${+want.d} (was ${+init[level].a}${+init[level].d})`);
  }
  if (sentinelPa >= 0 && mem.read32(sentinelPa) !== (SENTINEL_TARGET | 0x7)) problems.push('entry below the large leaf was touched');
  if (problems.length === 0) return null;
  return `${describeCase(c, key)}: ${problems.join('; ')}${e.why.length ? ` [${e.why.join(' | ')}]` : ''}`;
}

describe('access rights: full matrix against the SDM rule table', () => {
  const groups: [0 | 3, Kind][] = [];
  for (const cpl of [0, 3] as const) for (const kind of KINDS) groups.push([cpl, kind]);

  it.each(groups)('CPL %i, %s: every U/S R/W XD x WP SMEP SMAP AC NXE x PKE PKS AD WD', (cpl, kind) => {
    const mismatches: string[] = [];
    let n = 0;
    for (const lus of B) for (const lrw of B) for (const lxd of B)
    for (const uus of B) for (const urw of B) for (const uxd of B)
    for (const wp of B) for (const smep of B) for (const smap of B) for (const ac of B) for (const nxe of B)
    for (const pke of B) for (const pks of B) for (const keyAD of B) for (const keyWD of B) {
      const [leafLevel, upperLevel] = SHAPES[n++ % SHAPES.length];
      const c: Case = {
        cpl, kind, leafLevel, upperLevel, wp, smep, smap, ac, nxe, pke, pks, keyAD, keyWD,
        leaf: { us: lus, rw: lrw, xd: lxd }, upper: { us: uus, rw: urw, xd: uxd },
      };
      const m = check(c);
      if (m !== null) mismatches.push(m);
    }
    expect(n).toBe(32768);
    expect(mismatches.slice(0, 15), `${mismatches.length} of ${n} cases differ`).toEqual([]);
  });

  it('exercised every rule, and both faults and successes', () => {
    expect(totalCases).toBe(327680);
    expect(totalFaults).toBeGreaterThan(totalCases / 4);
    expect(totalCases - totalFaults).toBeGreaterThan(totalCases / 20);
    for (const r of [...ACCESS_RULES, ...KEY_RULES]) expect(fired.get(r.why) ?? 0, r.why).toBeGreaterThan(100);
    expect(fired.get('rsvd:leaf')).toBeGreaterThan(100);
    expect(fired.get('rsvd:upper')).toBeGreaterThan(100);
  });
});

// ---------------------------------------------------------------------------------------------
// Structure: canonical addresses, reserved bits, not-present entries, 5-level walks.
// ---------------------------------------------------------------------------------------------
const P = 1n, RW = 2n, US = 4n, A = 0x20n, D = 0x40n, PS = 0x80n, XD = 1n << 63n;
const ALL_KINDS: [Kind, 0 | 3][] = KINDS.flatMap((k) => [[k, 0], [k, 3]] as [Kind, 0 | 3][]);

interface Walk {
  mem: PhysMemory;
  cpu: CpuState;
  /** Physical address of the entry at each level of the path (index = level). */
  at: number[];
  initial: bigint[];
}

/**
 * Lay down one path for `va`: `levels` (4 or 5), leaf at `leafLevel`, every entry P|RW|US with
 * A=D=0, then `edit[level](entry)` applied. CPU: NXE, WP, no SMEP/SMAP/PK unless `cpuEdit`.
 */
function walk(va: bigint, levels: 4 | 5, leafLevel: number, edit: Record<number, (e: bigint) => bigint> = {}, maxPhys = 40, pdpe1gb = true): Walk {
  const mem = new PhysMemory(maxPhys);
  const cpu = new CpuState(maxPhys, { pdpe1gb });
  const at: number[] = [];
  const initial: bigint[] = [];
  for (let level = levels; level >= leafLevel; level--) {
    const isLeaf = level === leafLevel;
    let e = BigInt(isLeaf ? FRAME : TABLE_OF_LEVEL(level - 1)) | P | RW | US | (isLeaf && level > 1 ? PS : 0n);
    if (edit[level]) e = edit[level](e);
    at[level] = entryAddr(va, level);
    initial[level] = e;
    mem.write64Big(at[level], e);
  }
  cpu.load({ cr0: 0x80010011, cr4: 0x20 | (levels === 5 ? 1 << 12 : 0), efer: 0xd00, cr3: TABLE_OF_LEVEL(levels) });
  return { mem, cpu, at, initial };
}

function run(w: Walk, va: bigint, kind: Kind, cpl: 0 | 3): Translation {
  w.cpu.cpl = cpl;
  const out = new Translation();
  const v = BigInt.asUintN(64, va);
  translate(w.mem, w.cpu, Number(v & 0xffffffffn), Number(v >> 32n), KIND_BITS[kind], out);
  return out;
}

/** SDM 4.7 error-code bits of the access itself (CR4.PAE=1, NXE=1 in these walks). */
function accessBits(kind: Kind, cpl: 0 | 3, nxe = true, smep = false): bigint {
  const implicit = kind.startsWith('implicit');
  return (kind.endsWith('write') ? 2n : 0n) | (cpl === 3 && !implicit ? 4n : 0n) | (kind === 'fetch' && (nxe || smep) ? 0x10n : 0n);
}

/** SDM 4.8: A set in the entries above `faultLevel` on the path; `faultLevel` and below untouched. */
function expectAboveAccessed(w: Walk, faultLevel: number, what: string): void {
  for (const [level, pa] of w.at.entries()) {
    if (pa === undefined) continue;
    const want = level > faultLevel ? w.initial[level] | A : w.initial[level];
    expect(w.mem.read64Big(pa), `${what}: entry at level ${level}`).toBe(want);
  }
}

describe('non-canonical addresses raise #GP(0), not #PF (SDM 3.3.7.1, 4.1.1)', () => {
  const cases: [4 | 5, bigint, boolean][] = [
    [4, 0x0000800000000000n, false], [4, 0xffff7fffffffffffn, false], [4, 0x8000000000000000n, false],
    [4, 0x00007fffffffffffn, true], [4, 0xffff800000000000n, true],
    [5, 0x0100000000000000n, false], [5, 0xfeffffffffffffffn, false],
    [5, 0x0000800000000000n, true], [5, 0x00ffffffffffffffn, true], [5, 0xff00000000000000n, true],
  ];
  it.each(cases.map(([l, va, ok]) => [l, `0x${va.toString(16).padStart(16, '0')}`, ok] as const))('%i-level %s (canonical: %s)', (levels, vaText, canonical) => {
    const va = BigInt(vaText);
    for (const [kind, cpl] of ALL_KINDS) {
      const w = walk(va, levels, 1);
      const t = run(w, va, kind, cpl);
      if (canonical) {
        expect(t.vector, `${kind} cpl${cpl}`).toBe(0);
      } else {
        expect([t.vector, t.errorCode], `${kind} cpl${cpl}`).toEqual([13, 0]);
        expectAboveAccessed(w, 99, `${kind} cpl${cpl}`); // nothing walked, nothing marked
      }
    }
  });
});

describe('reserved bits in present entries: #PF with P|RSVD (SDM 4.5, 4.7)', () => {
  const va = VA;
  /** [description, levels, leafLevel, level of the bad entry, edit, maxPhys, pdpe1gb] */
  const rsvd: [string, 4 | 5, number, number, (e: bigint) => bigint, number, boolean][] = [];
  for (const leafLevel of [1, 2, 3]) {
    for (let level = 4; level >= leafLevel; level--) {
      for (const maxPhys of [36, 40, 46]) {
        for (let bit = maxPhys; bit <= 51; bit++) {
          rsvd.push([`bit ${bit} (>= MAXPHYADDR ${maxPhys})`, 4, leafLevel, level, (e) => e | (1n << BigInt(bit)), maxPhys, true]);
        }
      }
      rsvd.push([`XD with NXE=0`, 4, leafLevel, level, (e) => e | XD, 40, true]);
    }
  }
  rsvd.push(['PS in a PML4E', 4, 1, 4, (e) => e | PS, 40, true]);
  rsvd.push(['PS in a PML5E', 5, 1, 5, (e) => e | PS, 40, true]);
  rsvd.push(['PS in a PML4E (5-level)', 5, 1, 4, (e) => e | PS, 40, true]);
  for (let bit = 13; bit <= 20; bit++) rsvd.push([`bit ${bit} of a 2 MiB leaf`, 4, 2, 2, (e) => e | (1n << BigInt(bit)), 40, true]);
  for (let bit = 13; bit <= 29; bit++) rsvd.push([`bit ${bit} of a 1 GiB leaf`, 4, 3, 3, (e) => e | (1n << BigInt(bit)), 40, true]);
  rsvd.push(['PS in a PDPTE without 1 GiB pages', 4, 3, 3, (e) => e, 40, false]);

  it(`${rsvd.length} reserved-bit placements x 10 access kinds`, () => {
    const bad: string[] = [];
    for (const [what, levels, leafLevel, level, edit, maxPhys, pdpe1gb] of rsvd) {
      for (const [kind, cpl] of ALL_KINDS) {
        const w = walk(va, levels, leafLevel, { [level]: edit }, maxPhys, pdpe1gb);
        if (what.startsWith('XD')) w.cpu.load({ efer: 0x500 }); // NXE=0
        const nxe = !what.startsWith('XD');
        const t = run(w, va, kind, cpl);
        const want = 0x1n | 0x8n | accessBits(kind, cpl, nxe);
        if (t.vector !== 14 || BigInt(t.errorCode) !== want) bad.push(`${what} at L${level} (leaf L${leafLevel}) ${kind} cpl${cpl}: got ${t.vector}/0x${t.errorCode.toString(16)}, want #PF(0x${want.toString(16)})`);
        else expectAboveAccessed(w, level, `${what} ${kind}`);
      }
    }
    expect(bad.slice(0, 10), `${bad.length} wrong`).toEqual([]);
  });

  it('bits that are not reserved do not fault', () => {
    // SDM 4.5: address bits below MAXPHYADDR, PAT (bit 12) of a large leaf, XD with NXE=1,
    // bits 11:9 and 62:52 (ignored; protection keys are ignored in non-leaf entries).
    const fine: [string, number, number, (e: bigint) => bigint, number][] = [
      ['bit 51 with MAXPHYADDR 52 (leaf)', 1, 1, (e) => e | (1n << 51n), 52],
      ['bit 39 with MAXPHYADDR 40 (leaf)', 1, 1, (e) => e | (1n << 39n), 40],
      ['PAT of a 2 MiB leaf', 2, 2, (e) => e | (1n << 12n), 40],
      ['PAT of a 1 GiB leaf', 3, 3, (e) => e | (1n << 12n), 40],
      ['PAT (bit 7) of a PTE', 1, 1, (e) => e | PS, 40],
      ['ignored 11:9 in a PML4E', 1, 4, (e) => e | 0xe00n, 40],
      ['ignored 62:52 in a PML4E', 1, 4, (e) => e | (0x7ffn << 52n), 40],
      ['ignored 62:52 in a PDE', 1, 2, (e) => e | (0x7ffn << 52n), 40],
    ];
    for (const [what, leafLevel, level, edit, maxPhys] of fine) {
      const w = walk(VA, 4, leafLevel, { [level]: edit }, maxPhys);
      const t = run(w, VA, 'read', 0);
      expect(t.vector, what).toBe(0);
    }
    // XD with NXE=1 is a permission, not a reserved bit: a read passes, a fetch faults without RSVD.
    const w = walk(VA, 4, 1, { 2: (e) => e | XD });
    expect(run(w, VA, 'read', 0).vector).toBe(0);
    expect([run(w, VA, 'fetch', 0).errorCode]).toEqual([0x11]);
  });

  it('a not-present entry is not checked for reserved bits (SDM 4.7: RSVD only with P)', () => {
    for (let level = 4; level >= 1; level--) {
      const w = walk(VA, 4, 1, { [level]: () => 0xfffffffffffffffen });
      const t = run(w, VA, 'write', 3);
      expect([t.vector, t.errorCode], `L${level}`).toEqual([14, 0x6]);
      expectAboveAccessed(w, level, `L${level}`);
    }
  });
});

describe('not-present entries: #PF with P=0 at the level that is absent (SDM 4.5, 4.7)', () => {
  it.each([[4, 1], [4, 2], [4, 3], [5, 1]] as [4 | 5, number][])('%i-level walk, leaf at level %i', (levels, leafLevel) => {
    for (let level = levels; level >= leafLevel; level--) {
      for (const [kind, cpl] of ALL_KINDS) {
        for (const junk of [0n, 0x7ffffffffffff002n]) {
          const w = walk(VA, levels, leafLevel, { [level]: () => junk });
          const t = run(w, VA, kind, cpl);
          expect([t.vector, BigInt(t.errorCode)], `L${level} ${kind} cpl${cpl}`).toEqual([14, accessBits(kind, cpl)]);
          expectAboveAccessed(w, level, `L${level} ${kind} cpl${cpl}`);
        }
      }
    }
  });
});

describe('5-level paging walks through a PML5 (SDM 4.5)', () => {
  const USER_VA = 0x00f1234567abcdefn; // PML5 index 0x1f1: needs LA57 to be canonical
  const KERNEL_VA = 0xff11000012345678n; // the la57 capture's page_offset_base region

  it('translates user and kernel addresses, setting A on all five levels and D on a write', () => {
    for (const [va, leafLevel] of [[USER_VA, 1], [USER_VA, 2], [USER_VA, 3], [KERNEL_VA, 1], [KERNEL_VA, 3]] as [bigint, number][]) {
      const w = walk(va, 5, leafLevel);
      expect(indexAt(va, 5)).not.toBe(0);
      const t = run(w, va, 'write', 3);
      const size = 1n << BigInt(12 + 9 * (leafLevel - 1));
      expect(t.vector).toBe(0);
      expect(BigInt(t.pa)).toBe(BigInt(FRAME) + (va & (size - 1n)));
      for (let level = 5; level >= leafLevel; level--) {
        expect(w.mem.read64Big(w.at[level]), `L${level}`).toBe(w.initial[level] | A | (level === leafLevel ? D : 0n));
      }
      // The same address under 4-level paging is not canonical.
      if (va === USER_VA) expect(run(walk(va, 4, 1), va, 'read', 0).vector).toBe(13);
    }
  });

  it('folds U/S, R/W and XD through the PML5E (SDM 4.6.1)', () => {
    const noUser = walk(USER_VA, 5, 1, { 5: (e) => e & ~US });
    expect(run(noUser, USER_VA, 'read', 3).errorCode).toBe(0x5);
    expect(run(noUser, USER_VA, 'read', 0).vector).toBe(0);
    const readOnly = walk(USER_VA, 5, 1, { 5: (e) => e & ~RW });
    expect(run(readOnly, USER_VA, 'write', 3).errorCode).toBe(0x7);
    expect(run(readOnly, USER_VA, 'write', 0).errorCode).toBe(0x3); // CR0.WP=1
    const noExec = walk(USER_VA, 5, 1, { 5: (e) => e | XD });
    expect(run(noExec, USER_VA, 'fetch', 3).errorCode).toBe(0x15);
    // SDM 4.8: the faulting fetch marked the PML5E..PDE accessed, not the leaf.
    expectAboveAccessed(noExec, 1, 'fetch through an XD PML5E');
    expect(run(noExec, USER_VA, 'read', 3).vector).toBe(0);
  });
});
