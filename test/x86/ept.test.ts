/**
 * EPT walk (src/x86/ept.ts). Truth used:
 *  - GPA -> HPA results computed by hand for 1 GiB, 2 MiB and 4 KiB leaves (literals below);
 *  - the SDM rules as a table: 28.2.3.1 (misconfigurations: bits 2:0 = 010b/110b, execute-only
 *    without support, reserved bits, memory type 2/3/7), 28.2.3.2 (violations: the access needs the
 *    right in *every* entry used), table 27-7 (exit qualification: bits 2:0 the access, bits 5:3 the
 *    AND of bits 2:0 over the entries used, bit 6 the AND of bit 10 with MBEC) — the same AND KVM
 *    uses when it emulates EPT for a nested guest (paging_tmpl.h: "exit_qualification |=
 *    (pte_access & VMX_EPT_RWX_MASK) << EPT_VIOLATION_RWX_SHIFT"), 28.2.4 (A/D);
 *  - KVM's EPTP constants (asm/vmx.h): VMX_EPTP_MT_WB 0x6, VMX_EPTP_PWL_4 0x18, VMX_EPTP_AD_ENABLE_BIT 1 << 6;
 *  - a property: random 4 KiB mappings read back through the walker equal the map they came from.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PhysMemory } from '../../src/phys/memory.ts';
import {
  DEFAULT_EPT_CONFIG, EPT_A, EPT_ACCESS_USER, EPT_D, EPT_IPAT, EPT_MISCONFIG, EPT_OK, EPT_R, EPT_RWX,
  EPT_UX, EPT_VIOLATION, EPT_W, EPT_X, EptTables, EptTranslation, MT_WB, eptTranslate, eptpValue,
  type EptConfig,
} from '../../src/x86/ept.ts';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE } from '../../src/x86/bits.ts';

const WB = MT_WB << 3;
const LEAF = EPT_RWX | WB | EPT_IPAT; // what KVM's TDP MMU writes for RAM (spte.c / vmx_get_mt_mask)

function build(cfg: Partial<EptConfig> = {}) {
  const mem = new PhysMemory(46);
  let next = 0x100000;
  const ept = new EptTables(mem, cfg.levels ?? 4, () => (next += 0x1000) - 0x1000);
  const c: EptConfig = { ...DEFAULT_EPT_CONFIG, maxPhysBits: 40, ...cfg };
  const out = new EptTranslation();
  const tr = (gpa: number, access = ACCESS_READ) => {
    eptTranslate(mem, c, ept.root, gpa, access, out);
    return out;
  };
  return { mem, ept, cfg: c, tr, out };
}

describe('GPA -> HPA, hand-computed', () => {
  const { ept, tr } = build();
  ept.map(0, 0x40000000, 30, LEAF); // GPA [0, 1G) -> HPA [1G, 2G)
  ept.map(0x40000000, 0xfe45600000, 21, EPT_R | EPT_W | WB); // 2 MiB, not executable
  ept.map(0x40203000, 0x7000, 12, EPT_R | EPT_X | WB); // 4 KiB, read+execute

  it('1 GiB leaf', () => {
    const t = tr(0x12345678);
    expect([t.result, t.hpa, t.pageShift, t.level, t.memType, t.ipat]).toEqual([EPT_OK, 0x52345678, 30, 3, 6, true]);
  });
  it('2 MiB leaf with a 40-bit HPA', () => {
    const t = tr(0x40012345, ACCESS_WRITE);
    expect([t.result, t.hpa, t.pageShift, t.level]).toEqual([EPT_OK, 0xfe45612345, 21, 2]);
  });
  it('4 KiB leaf', () => {
    const t = tr(0x40203abc, ACCESS_FETCH);
    expect([t.result, t.hpa, t.pageShift, t.level]).toEqual([EPT_OK, 0x7abc, 12, 1]);
  });
  it('4-level EPT uses only GPA bits 47:0 (28.2.2)', () => {
    expect(tr(2 ** 48 + 0x12345678).hpa).toBe(0x52345678);
  });
  it('5-level EPT translates above 2^48', () => {
    const b = build({ levels: 5 });
    b.ept.map(2 ** 48 + 0x200000, 0x800000, 21, LEAF);
    expect(b.tr(2 ** 48 + 0x234567).hpa).toBe(0x834567);
    expect(b.tr(0x234567).result).toBe(EPT_VIOLATION);
  });
  it('EPTP as KVM builds it for WB, 4-level, A/D: root | 0x5e', () => {
    expect(eptpValue(0x123456000, 4, true)).toEqual({ lo: 0x2345605e, hi: 0x1 });
    expect(eptpValue(0x5000, 5, false).lo).toBe(0x5000 | 0x20 | 6);
  });
});

describe('EPT violations: exact exit qualification (table 27-7)', () => {
  const { ept, tr } = build();
  ept.map(0x40000000, 0xfe45600000, 21, EPT_R | EPT_W | WB);
  ept.map(0x40203000, 0x7000, 12, EPT_R | EPT_X | WB);
  // A subtree whose PDPTE allows only reads and fetches: rights fold over levels.
  ept.entryAddr(0x80000000, 2, EPT_R | EPT_X);
  ept.map(0x80000000, 0x9000000, 21, LEAF);

  const cases: [string, number, number, number][] = [
    // name, gpa, access, expected qualification: access bit | R/W/X of the AND
    ['fetch from RW- 2M page', 0x40012345, ACCESS_FETCH, 0x4 | 0x8 | 0x10],
    ['write to R-X 4K page', 0x40203000, ACCESS_WRITE, 0x2 | 0x8 | 0x20],
    ['read of an absent PTE (bits 5:3 zero)', 0x40204000, ACCESS_READ, 0x1],
    ['write to an absent PML4E', 0x8000000000, ACCESS_WRITE, 0x2],
    ['fetch from an absent PDE', 0x7fe00000, ACCESS_FETCH, 0x4],
    ['write below an R-X PDPTE to an RWX leaf', 0x80001000, ACCESS_WRITE, 0x2 | 0x8 | 0x20],
  ];
  it.each(cases)('%s', (_name, gpa, access, q) => {
    const t = tr(gpa, access);
    expect([t.result, t.qualification]).toEqual([EPT_VIOLATION, q]);
  });
  it('stops at the level of the missing entry', () => {
    expect(tr(0x8000000000).level).toBe(4);
    expect(tr(0x7fe00000).level).toBe(2);
    expect(tr(0x40204000).level).toBe(1);
  });
  it('reads below the R-X PDPTE are fine', () => {
    expect(tr(0x80001000).hpa).toBe(0x9001000);
  });
});

describe('EPT misconfigurations (28.2.3.1) take precedence over violations', () => {
  const cases: [string, (b: ReturnType<typeof build>) => void, number, Partial<EptConfig>?][] = [
    ['leaf W without R (010b)', (b) => b.ept.map(0, 0x1000, 12, EPT_W | WB), ACCESS_READ],
    ['leaf WX without R (110b), even for a fetch', (b) => b.ept.map(0, 0x1000, 12, EPT_W | EPT_X | WB), ACCESS_FETCH],
    ['PML4E W without R', (b) => { b.ept.map(0, 0x1000, 12, LEAF); b.mem.write32(b.ept.root, (b.mem.read32(b.ept.root) & ~7) | EPT_W); }, ACCESS_READ],
    ['memory type 2 in a leaf', (b) => b.ept.map(0, 0x1000, 12, EPT_RWX | (2 << 3)), ACCESS_READ],
    ['memory type 7 in a 2 MiB leaf', (b) => b.ept.map(0, 0x200000, 21, EPT_RWX | (7 << 3)), ACCESS_READ],
    ['bit 3 set in a PDE that references a table', (b) => { b.ept.map(0, 0x1000, 12, LEAF); const ea = b.ept.entryAddr(0, 2); b.mem.or32(ea, 1 << 3); }, ACCESS_READ],
    ['bit 7 set in a PML4E', (b) => { b.ept.map(0, 0x1000, 12, LEAF); b.mem.or32(b.ept.root, 1 << 7); }, ACCESS_READ],
    ['address bit 45 (>= MAXPHYADDR 40) in a leaf', (b) => b.ept.map(0, 2 ** 45, 12, LEAF), ACCESS_READ],
    ['2 MiB leaf with address bit 12 set (20:12 reserved)', (b) => b.ept.setEntry(0, 2, 0x1000 | LEAF | (1 << 7), 0), ACCESS_READ],
    ['1 GiB leaf with address bit 12 set (29:12 reserved)', (b) => b.ept.setEntry(0, 3, 0x1000 | LEAF | (1 << 7), 0), ACCESS_READ],
    ['execute-only leaf without execute-only support', (b) => b.ept.map(0, 0x1000, 12, EPT_X | WB), ACCESS_FETCH, { executeOnly: false }],
    ['1 GiB leaf without 1 GiB support', (b) => b.ept.map(0, 0x40000000, 30, LEAF), ACCESS_READ, { pages1G: false }],
    ['misconfigured leaf under a PML4E without W, for a write', (b) => { b.ept.entryAddr(0, 1, EPT_R | EPT_X); b.ept.map(0, 0x1000, 12, EPT_W | WB); }, ACCESS_WRITE],
  ];
  it.each(cases)('%s', (_n, setup, access, cfg) => {
    const b = build(cfg);
    setup(b);
    const t = b.tr(0x123, access);
    expect(t.result).toBe(EPT_MISCONFIG);
  });
  it('execute-only with support: fetch works, a read is a violation with only bit 5 of 5:3', () => {
    const b = build({ executeOnly: true });
    b.ept.map(0, 0x1000, 12, EPT_X | WB);
    expect(b.tr(0x10, ACCESS_FETCH).hpa).toBe(0x1010);
    expect([b.tr(0x10).result, b.out.qualification]).toEqual([EPT_VIOLATION, 0x1 | 0x20]);
  });
  it('the same entries without the defect translate', () => {
    const b = build();
    b.ept.map(0, 0x1000, 12, EPT_R | EPT_W | WB);
    expect(b.tr(0x123, ACCESS_WRITE).result).toBe(EPT_OK);
  });
});

describe('mode-based execute control and A/D flags', () => {
  it('MBEC: bit 10 gates user-mode fetches; qualification bit 6 reports it', () => {
    const b = build({ mbec: true });
    b.ept.map(0, 0x1000, 12, EPT_R | EPT_UX | WB, 0, EPT_RWX | EPT_UX); // user-executable only
    expect(b.tr(0x20, ACCESS_FETCH | EPT_ACCESS_USER).hpa).toBe(0x1020);
    expect(b.tr(0x20, ACCESS_FETCH).qualification).toBe(0x4 | 0x8 | 0x40);
    // Bit 10 folds over the levels like bits 2:0: without it in the tables above, no user fetch.
    const c = build({ mbec: true });
    c.ept.map(0, 0x1000, 12, EPT_R | EPT_UX | WB);
    expect([c.tr(0x20, ACCESS_FETCH | EPT_ACCESS_USER).result, c.out.qualification]).toEqual([EPT_VIOLATION, 0x4 | 0x8]);
    expect([b.tr(0x20, ACCESS_FETCH).result, b.out.qualification]).toEqual([EPT_VIOLATION, 0x4 | 0x8 | 0x40]);
  });
  it('without MBEC bit 10 is ignored', () => {
    const b = build();
    b.ept.map(0, 0x1000, 12, EPT_R | EPT_UX | WB);
    expect([b.tr(0x20, ACCESS_FETCH | EPT_ACCESS_USER).result, b.out.qualification]).toEqual([EPT_VIOLATION, 0x4 | 0x8]);
  });
  it('EPTP[6]: A on every entry used, D on the leaf after a write; nothing without it', () => {
    for (const ad of [true, false]) {
      const b = build({ accessDirty: ad });
      b.ept.map(0x200000, 0x400000, 21, LEAF);
      b.tr(0x200010);
      const pdpte = b.out.entryAddr[3];
      const pde = b.out.entryAddr[2];
      expect((b.mem.read32(b.out.entryAddr[4]) & EPT_A) !== 0).toBe(ad);
      expect((b.mem.read32(pdpte) & EPT_A) !== 0).toBe(ad);
      expect(b.mem.read32(pde) & (EPT_A | EPT_D)).toBe(ad ? EPT_A : 0);
      b.tr(0x200010, ACCESS_WRITE);
      expect(b.mem.read32(pde) & (EPT_A | EPT_D)).toBe(ad ? EPT_A | EPT_D : 0);
    }
  });
  it('a violation sets no D', () => {
    const b = build();
    b.ept.map(0, 0x1000, 12, EPT_R | WB);
    b.tr(0, ACCESS_WRITE);
    expect(b.mem.read32(b.out.entryAddr[1]) & EPT_D).toBe(0);
  });
});

describe('property: the walker returns what was mapped', () => {
  it('random 4 KiB mappings', () => {
    fc.assert(fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 24 - 1 }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.integer({ min: 0, max: 2 ** 28 - 1 }), { minLength: 40, maxLength: 40 }),
      fc.integer({ min: 0, max: 4095 }),
      (gfns, hfns, off) => {
        const b = build();
        const map = new Map<number, number>();
        gfns.forEach((g, i) => { b.ept.map(g * 4096, hfns[i] * 4096, 12, LEAF); map.set(g, hfns[i]); });
        for (const [g, h] of map) expect(b.tr(g * 4096 + off).hpa).toBe(h * 4096 + off);
        const absent = (gfns[0] + 1) % 2 ** 24;
        if (!map.has(absent)) expect(b.tr(absent * 4096).result).toBe(EPT_VIOLATION);
      },
    ), { numRuns: 100 });
  });
});
