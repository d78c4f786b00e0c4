// Differential: the Mmu (TLB in front of the walker) must give what the bare walker gives, on
// the real la48 kernel capture, whether an access hits the TLB or not — same translation or
// same fault, and in the end the same A/D bits in memory. Truth: walk.ts, which the capture
// tests check against QEMU's own listing. Two copies of the capture are loaded so the A/D
// updates of one side cannot hide those of the other.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadPtImage, type PtImage } from '../../src/x86/ptimage.ts';
import { PhysMemory } from '../../src/phys/memory.ts';
import { ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_READ, ACCESS_WRITE } from '../../src/x86/bits.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { forEachLeaf } from '../../src/x86/leaves.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { Translation, translate, vaHalves } from '../../src/x86/walk.ts';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const CAPTURE = join(FIX, 'captures', 'la48-pti-nokaslr', 'kernel.json.gz');

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

const ACCESSES = [ACCESS_READ, ACCESS_WRITE, ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_IMPLICIT | ACCESS_WRITE];

/** The fields a caller may rely on, as a string (leafLo/leafHi/entryAddr are walk-only). */
function summary(ok: boolean, t: Translation): string {
  if (!ok) return `fault v${t.vector} ec${t.errorCode} L${t.level}`;
  return `ok pa=${t.pa.toString(16)} frame=${t.frame.toString(16)} shift=${t.pageShift} L${t.level} u=${t.user} w=${t.writable} xd=${t.executeDisable} pk=${t.pkey}`;
}

function memDigest(img: PtImage): string[] {
  return img.mem.frames().map((f) => Buffer.from(img.mem.frameWords(f).slice().buffer).toString('base64'));
}

describe('Mmu equals the walker', () => {
  const geometries = [
    { name: 'Skylake L1 DTLB', g: {}, minHits: 4000 },
    { name: 'tiny TLB (constant eviction)', g: { sets4K: 2, ways4K: 2, sets2M: 1, ways2M: 1, sets1G: 1, ways1G: 1 }, minHits: 300 },
  ];
  for (const { name, g, minHits } of geometries) {
    it(`on random accesses to the la48 kernel capture, cached or not (${name})`, () => {
      const a = loadPtImage(CAPTURE, 40); // through the Mmu
      const b = loadPtImage(CAPTURE, 40); // through the bare walker
      const leaves: [number, number, number][] = [];
      forEachLeaf(a.mem, a.cpu.rootAddr, 4, (lo, hi, shift) => { leaves.push([lo, hi, shift]); });
      const r = rng(0xc0ffee);
      // A working set small enough to be reused: 40 4 KiB pages (most leaves are ESPFIX
      // aliases) and 20 2 MiB pages, plus random canonical and non-canonical addresses.
      const small = leaves.filter((l) => l[2] === 12);
      const large = leaves.filter((l) => l[2] === 21);
      const pages = [
        ...Array.from({ length: 40 }, () => small[r() % small.length]),
        ...Array.from({ length: 20 }, () => large[r() % large.length]),
      ];
      const mmu = new Mmu(a.cpu, a.mem, g);
      const ref = new Translation();
      let hits = 0, oks = 0;
      for (let i = 0; i < 60000; i++) {
        let lo: number, hi: number;
        const pick = r() % 16;
        if (pick === 0) { lo = r(); hi = r(); } // mostly non-canonical
        else if (pick === 1) { lo = r(); hi = r() & 1 ? 0xffff8000 | (r() & 0x7fff) : r() & 0x7fff; }
        else {
          const [plo, phi, shift] = pages[r() % pages.length];
          lo = (plo + (r() & ((1 << shift) - 1))) >>> 0;
          hi = phi;
        }
        const access = ACCESSES[r() % ACCESSES.length];
        const cpl = r() % 4 === 0 ? 3 : 0;
        a.cpu.cpl = b.cpu.cpl = cpl;
        const h0 = mmu.tlb.hits;
        const got = summary(mmu.translate(lo, hi, access), mmu.out);
        const want = summary(translate(b.mem, b.cpu, lo, hi, access, ref), ref);
        if (got !== want) {
          throw new Error(`access ${i}: va ${hi.toString(16)}:${lo.toString(16)} access ${access} cpl ${cpl} (${mmu.tlb.hits > h0 ? 'TLB hit' : 'walk'}): mmu ${got}, walker ${want}`);
        }
        if (mmu.tlb.hits > h0) hits++;
        if (got.startsWith('ok')) oks++;
      }
      expect(hits).toBeGreaterThan(minHits); // the comparison did exercise the TLB
      expect(oks).toBeGreaterThan(10000);
      expect(memDigest(a)).toEqual(memDigest(b)); // the same A/D bits were set
    });
  }
});

describe('Mmu equals the walker on the QEMU access cases, twice each', () => {
  it('every family (fold, smep_smap, pk, pks, notpresent, rsvd, leafsize, ad, ...)', () => {
    const lines = gunzipSync(readFileSync(join(FIX, 'access', 'cases-sample.jsonl.gz'))).toString().trim().split('\n');
    const kinds: Record<string, number> = { read: ACCESS_READ, write: ACCESS_WRITE, fetch: ACCESS_FETCH, implicit_read: ACCESS_IMPLICIT, implicit_write: ACCESS_IMPLICIT | ACCESS_WRITE };
    let hits = 0;
    for (const line of lines) {
      const c = JSON.parse(line);
      const setup = () => {
        const mem = new PhysMemory(40);
        for (const k of ['pml4e', 'pdpte', 'pde', 'pte']) mem.write64Big(Number(BigInt(c.entry_paddr[k])), BigInt(c.entries[k]));
        const cpu = new CpuState(40);
        cpu.load({ cr0: BigInt(c.cr0), cr3: BigInt(c.cr3), cr4: BigInt(c.cr4), efer: BigInt(c.efer), rflags: BigInt(c.rflags), cpl: c.cpl, pkru: BigInt(c.pkru), pkrs: BigInt(c.pkrs) });
        return { mem, cpu };
      };
      const x = setup();
      const y = setup();
      const mmu = new Mmu(x.cpu, x.mem);
      const ref = new Translation();
      const { lo, hi } = vaHalves(BigInt(c.addr));
      const access = kinds[c.access];
      // The same access twice: the second one hits the TLB when the first one succeeded.
      for (let k = 0; k < 2; k++) {
        const h0 = mmu.tlb.hits;
        const got = summary(mmu.translate(lo, hi, access), mmu.out);
        const want = summary(translate(y.mem, y.cpu, lo, hi, access, ref), ref);
        expect(got, `case ${c.id} (${c.family}: ${c.desc}, ${c.access}) try ${k}`).toBe(want);
        hits += mmu.tlb.hits - h0;
      }
      // And once more with the other kinds of access, now that the entry may be cached.
      for (const other of Object.values(kinds)) {
        const got = summary(mmu.translate(lo, hi, other), mmu.out);
        const want = summary(translate(y.mem, y.cpu, lo, hi, other, ref), ref);
        expect(got, `case ${c.id} (${c.family}: ${c.desc}) then access ${other}`).toBe(want);
      }
      for (const k of ['pml4e', 'pdpte', 'pde', 'pte']) {
        const pa = Number(BigInt(c.entry_paddr[k]));
        expect(x.mem.read64Big(pa), `case ${c.id} ${k} A/D`).toBe(y.mem.read64Big(pa));
      }
    }
    expect(hits).toBeGreaterThan(500);
  });
});

describe('Mmu rights on TLB hits follow the mode, however it is changed', () => {
  it('CPL, PKRU and CR0.WP changes between hits give the walker\'s answers (SDM 4.6.1, 4.6.2)', () => {
    const a = loadPtImage(CAPTURE);
    const b = loadPtImage(CAPTURE);
    const mmu = new Mmu(a.cpu, a.mem);
    const out = new Translation();
    // A user page and a kernel page of the capture, through the kernel root.
    const vas: Array<{ lo: number; hi: number }> = [];
    forEachLeaf(a.mem, a.roots.kernel, 4, (lo, hi, shift, _pa, _elo, _ehi, _lv, user) => {
      if (vas.length < 4 && (user || hi >= 0xffff8880) && shift === 12) vas.push({ lo, hi });
    });
    const modes: Array<(c: CpuState) => void> = [
      (c) => { c.cpl = 3; },                          // set directly, no derive()
      (c) => { c.cpl = 0; },
      (c) => { c.pkru = 0x55555555; },                // AD for every key
      (c) => { c.pkru = 0; c.cr0 &= ~(1 << 16); c.derive(); }, // CR0.WP off
      (c) => { c.cr0 |= 1 << 16; c.cpl = 3; c.derive(); },
    ];
    for (const mode of modes) {
      mode(a.cpu);
      mode(b.cpu);
      for (const va of vas) {
        for (const acc of ACCESSES) {
          const got = mmu.translate(va.lo, va.hi, acc);
          const want = translate(b.mem, b.cpu, va.lo, va.hi, acc, out);
          expect(summary(got, mmu.out)).toBe(summary(want, out));
        }
      }
    }
  });
});

/**
 * Sixteen 4 KiB pages at VA i * 4 KiB (i = 1..16): user or supervisor (bit 0 of i), writable or
 * not (bit 1), protection key 0, 5, 10 or 15 (bits 3:2); the upper entries allow everything.
 */
function keyedPages(): { mem: PhysMemory; cpu: CpuState } {
  const mem = new PhysMemory(40);
  const PML4 = 0x100000, PDPT = 0x101000, PD = 0x102000, PT = 0x103000;
  mem.write64(PML4, PDPT | 0x7, 0);
  mem.write64(PDPT, PD | 0x7, 0);
  mem.write64(PD, PT | 0x7, 0);
  for (let i = 1; i <= 16; i++) {
    const k = i - 1;
    const lo = (0x200000 + k * 0x1000) | 0x1 | (k & 2 ? 0x2 : 0) | (k & 1 ? 0x4 : 0);
    mem.write64(PT + i * 8, lo, ((k >> 2) * 5) * 0x08000000); // key in bits 62:59
  }
  const cpu = new CpuState(40);
  cpu.load({ cr0: 0x80010033, cr4: 0x20, efer: 0xd01, cr3: PML4 });
  return { mem, cpu };
}

describe('Mmu rights on TLB hits with protection keys (CR4.PKE, CR4.PKS)', () => {
  it('random mode changes between hits (CPL, PKE, PKS, WP, SMAP, AC, PKRU, PKRS) give the walker\'s answers', () => {
    const a = keyedPages(); // through the Mmu
    const b = keyedPages(); // through the bare walker
    const mmu = new Mmu(a.cpu, a.mem);
    const ref = new Translation();
    const r = rng(0x5eed);
    const keyRegs = [0, 0x55555555, 0xaaaaaaaa, 0xffffffff];
    let hits = 0, pkFaults = 0, oks = 0;
    for (let step = 0; step < 1500; step++) {
      const cpl = r() & 1 ? 3 : 0;
      const cr4 = 0x20 | (r() & 1 ? 1 << 21 : 0) | (r() & 1 ? 1 << 22 : 0) | (r() & 1 ? 1 << 24 : 0);
      const wp = r() & 1 ? 1 << 16 : 0;
      const ac = r() & 1 ? 1 << 18 : 0;
      const pkru = r() & 1 ? keyRegs[r() & 3] : r();
      const pkrs = r() & 1 ? keyRegs[r() & 3] : r();
      // The Mmu's CPU changes as software would: MOV CR4 (no flush for PKE/PKS/SMAP, SDM
      // 4.10.4.1), and CPL, PKRU, IA32_PKRS written without derive().
      expect(mmu.writeCr4(cr4)).toBe(0);
      a.cpu.cr0 = (a.cpu.cr0 & ~(1 << 16)) | wp;
      a.cpu.rflags = 0x2 | ac;
      a.cpu.derive();
      a.cpu.cpl = cpl;
      a.cpu.pkru = pkru >>> 0;
      a.cpu.pkrs = pkrs >>> 0;
      b.cpu.load({ cr4, cr0: (b.cpu.cr0 & ~(1 << 16)) | wp, rflags: 0x2 | ac, cpl, pkru: pkru >>> 0, pkrs: pkrs >>> 0 });
      for (let n = 0; n < 24; n++) {
        const va = ((r() & 15) + 1) * 0x1000 + (r() & 0xfff);
        const access = ACCESSES[r() % ACCESSES.length];
        const h0 = mmu.tlb.hits;
        const got = summary(mmu.translate(va, 0, access), mmu.out);
        const want = summary(translate(b.mem, b.cpu, va, 0, access, ref), ref);
        const hit = mmu.tlb.hits > h0;
        if (got !== want) {
          throw new Error(`step ${step}: va ${va.toString(16)} access ${access} cpl ${cpl} cr4 ${cr4.toString(16)} wp ${wp >> 16} ac ${ac >> 18} pkru ${(pkru >>> 0).toString(16)} pkrs ${(pkrs >>> 0).toString(16)} (${hit ? 'TLB hit' : 'walk'}): mmu ${got}, walker ${want}`);
        }
        if (hit) hits++;
        if (got.startsWith('ok')) oks++;
        if (!ref.ok && (ref.errorCode & 0x20) !== 0 && hit) pkFaults++;
      }
    }
    expect(hits).toBeGreaterThan(5000); // the rights table was exercised
    expect(pkFaults).toBeGreaterThan(500); // and denied by keys on a hit
    expect(oks).toBeGreaterThan(5000);
    expect(memDigest({ mem: a.mem } as PtImage)).toEqual(memDigest({ mem: b.mem } as PtImage));
  });

  it('a supervisor page cached at CPL 0, then read at CPL 3 under CR4.PKS with PKRS.AD: U/S fault, PK=0 (SDM 4.7)', () => {
    const { mem, cpu } = keyedPages();
    const mmu = new Mmu(cpu, mem);
    const va = 1 * 0x1000; // k = 0: supervisor, read-only, key 0
    expect(mmu.translate(va, 0, ACCESS_READ)).toBe(true);
    expect(mmu.writeCr4(cpu.cr4 | (1 << 24))).toBe(0);
    cpu.pkrs = 0x55555555; // AD for every key
    const h0 = mmu.tlb.hits;
    cpu.cpl = 3;
    expect(mmu.translate(va, 0, ACCESS_READ)).toBe(false);
    expect(mmu.tlb.hits).toBe(h0 + 1);
    expect(mmu.out.errorCode).toBe(0x5); // P | U, no PK
    // The same page at CPL 0 after a fresh fill is denied by the key itself: P | PK.
    cpu.cpl = 0;
    cpu.pkrs = 0;
    expect(mmu.translate(va, 0, ACCESS_READ)).toBe(true);
    cpu.pkrs = 0x55555555;
    expect(mmu.translate(va, 0, ACCESS_READ)).toBe(false);
    expect(mmu.out.errorCode).toBe(0x21);
    // An implicit access at CPL 3 is supervisor-mode (SDM 4.6): the key applies again.
    cpu.pkrs = 0;
    expect(mmu.translate(va, 0, ACCESS_READ)).toBe(true);
    cpu.cpl = 3;
    cpu.pkrs = 0x55555555;
    expect(mmu.translate(va, 0, ACCESS_IMPLICIT)).toBe(false);
    expect(mmu.out.errorCode).toBe(0x21);
  });
});
