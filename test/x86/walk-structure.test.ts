/**
 * The structure of a walk, example-driven: non-canonical addresses, reserved bits, not-present
 * entries and 5-level walks, each case stating the SDM rule it checks (Vol. 3A 3.3.7.1, 4.5,
 * 4.6.1, 4.7, 4.8). The expected values are written out here, never computed by the walker's
 * code. The access-rights matrix is in permissions.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Translation, translate } from '../../src/x86/walk.ts';
import { ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_READ, ACCESS_WRITE } from '../../src/x86/bits.ts';

type Kind = 'read' | 'write' | 'fetch' | 'implicit_read' | 'implicit_write';
const KINDS: Kind[] = ['read', 'write', 'fetch', 'implicit_read', 'implicit_write'];
const KIND_BITS: Record<Kind, number> = {
  read: ACCESS_READ, write: ACCESS_WRITE, fetch: ACCESS_FETCH,
  implicit_read: ACCESS_IMPLICIT | ACCESS_READ, implicit_write: ACCESS_IMPLICIT | ACCESS_WRITE,
};

// Building the tables: plain arithmetic on the VA, not the walker's.
const VA = 0x00007f8123456abcn;
const TABLE_OF_LEVEL = (level: number) => 0x100000 + (5 - level) * 0x1000; // PML5 .. PT
const FRAME = 0x40000000; // 1 GiB aligned: good for every leaf size
const indexAt = (va: bigint, level: number) => Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
const entryAddr = (va: bigint, level: number) => TABLE_OF_LEVEL(level) + indexAt(va, level) * 8;

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
