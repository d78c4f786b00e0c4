/**
 * The 4-level / 5-level page walk, straight-line as QEMU's mmu_translate(): one walk,
 * one caller-owned result, the fault's error code built in one place (pageFault). The levels
 * are written out one after the other (PML5E/PML4E, PDPTE, PDE, PTE) so each one's index bits
 * and reserved bits are constants; the next table comes from the entry's two halves without a
 * double, through a per-level memo of the last table (PhysMemory.walkMemo); the rights check is
 * one load from the current mode's table (rights.ts), whose entries are checkAccess()'s answers.
 *
 * Rules and their sources (Intel SDM Vol. 3A):
 *  - canonical check before paging: a non-canonical address raises #GP(0), not #PF (3.3.7.1);
 *  - an entry with P=0 ends the walk with a not-present #PF; its other bits are ignored (4.5);
 *  - reserved bits in a present entry raise #PF with P=1 and RSVD=1 (4.7): address bits at or
 *    above MAXPHYADDR, XD when IA32_EFER.NXE=0, PS in a PML5E/PML4E, PS in a PDPTE without
 *    1 GiB page support, and the reserved low address bits of 1 GiB / 2 MiB leaves;
 *  - access rights fold over all levels: user iff U/S=1 everywhere, writable iff R/W=1
 *    everywhere, execute-disabled iff XD=1 anywhere (4.6.1);
 *  - protection keys (4.6.2) never apply to fetches; the leaf's key indexes PKRU for a user-mode
 *    address (CR4.PKE, any access mode) and IA32_PKRS for a supervisor-mode address (CR4.PKS,
 *    supervisor-mode accesses only: a user-mode access there is refused by U/S alone, PK=0);
 *    PK is set whenever the key refuses the access, even if the paging rights refuse it too (4.7);
 *  - the processor sets A in each paging-structure entry it uses; a leaf's A (and D on a
 *    write) only when the access is allowed (4.8). Non-leaf entries are marked as the walk
 *    passes them, so a walk that faults lower down still leaves them accessed.
 */
import type { PhysMemory } from '../phys/memory.ts';
import type { CpuState } from './cpu.ts';
import { ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_WRITE, PFEC_ID, PFEC_U, PFEC_W, VECTOR_PF } from './bits.ts';

/** The rules of SDM 4.6 live in rights.ts; re-exported for the callers that import them from here. */
export { checkAccess } from './rights.ts';

/*
 * Translation.info packs everything but the physical address into one int32, so that a TLB hit
 * (mmu.ts) stores two words, not eight:
 *
 *   31       24 23       16 15       11 10    8 7      4   3   2   1   0
 *  +-----------+-----------+-----------+-------+--------+---+---+---+---+
 *  |  vector   | errorCode | pageShift | level |  PKEY  | 0 |XD | W | U |
 *  +-----------+-----------+-----------+-------+--------+---+---+---+---+
 *   bits 7:0 are the rights key of rights.ts without D.
 */
export const INFO_LEVEL_SHIFT = 8;
export const INFO_PAGE_SHIFT_SHIFT = 11;
export const INFO_ERROR_SHIFT = 16;
export const INFO_VECTOR_SHIFT = 24;

/** The info word of a translation that succeeded: rights key `rights`, leaf `level`, page `shift`. */
export function infoOk(rights: number, level: number, shift: number): number {
  return rights | (level << INFO_LEVEL_SHIFT) | (shift << INFO_PAGE_SHIFT_SHIFT);
}

/** What a translation produced. Caller-owned and reused: the walker never allocates. */
export class Translation {
  /** The packed result (above): read it through vector, errorCode, level, pageShift, rights. */
  info = 12 << INFO_PAGE_SHIFT_SHIFT;
  /** Physical address of the accessed byte (a Number < 2^52); 0 after a fault. */
  pa = 0;
  /** The leaf entry as it was read (before any A/D update). */
  leafLo = 0;
  leafHi = 0;
  /** Physical addresses of the entries used, indexed by level (1..5); -1 when not reached. */
  readonly entryAddr = new Float64Array(6).fill(-1);

  /** 0 when translated; else the exception vector (13 #GP, 14 #PF). */
  get vector(): number { return this.info >>> INFO_VECTOR_SHIFT; }
  /** The #PF error code (PFEC_* bits), or 0 for #GP. */
  get errorCode(): number { return (this.info >>> INFO_ERROR_SHIFT) & 0xff; }
  /** Level of the leaf (1 PTE, 2 PDE, 3 PDPTE) or of the entry where the walk stopped. */
  get level(): number { return (this.info >>> INFO_LEVEL_SHIFT) & 7; }
  get pageShift(): number { return (this.info >>> INFO_PAGE_SHIFT_SHIFT) & 31; }
  /** Physical address of the page frame (pa with the offset cleared; 0 after a fault). */
  get frame(): number {
    // pa >>> 0 is pa's bits 31:0 (exact below 2^53); the offset is below 2^30.
    const pa = this.pa;
    return pa - ((pa >>> 0) & ((1 << ((this.info >>> INFO_PAGE_SHIFT_SHIFT) & 31)) - 1));
  }
  /**
   * The folded rights over all levels (SDM 4.6.1) and the leaf's protection key, packed as the
   * rights key of rights.ts without D: bit 0 U/S, bit 1 R/W, bit 2 XD (with NXE), bits 7:4 the
   * key; read them through user, writable, executeDisable and pkey.
   */
  get rights(): number { return this.info & 0xff; }
  /** User-mode address: U/S=1 at every level (SDM 4.6.1). */
  get user(): boolean { return (this.info & 1) !== 0; }
  /** Writable: R/W=1 at every level (SDM 4.6.1). */
  get writable(): boolean { return (this.info & 2) !== 0; }
  /** Execute-disabled: XD=1 at some level and IA32_EFER.NXE=1 (SDM 4.6.1). */
  get executeDisable(): boolean { return (this.info & 4) !== 0; }
  /** Protection key of the leaf (meaningful when CR4.PKE or CR4.PKS, SDM 4.6.2). */
  get pkey(): number { return (this.info >>> 4) & 15; }

  get ok(): boolean {
    return this.info >>> INFO_VECTOR_SHIFT === 0;
  }
}

/**
 * Translate `va` (as u32 halves) for an access of kind `access` (ACCESS_* bits) under `cpu`.
 * Returns true on success. Updates A/D bits in `mem` as the hardware does.
 */
export function translate(mem: PhysMemory, cpu: CpuState, vaLo: number, vaHi: number, access: number, out: Translation): boolean {
  return walkPfn(mem, cpu, cpu.rootPfn, vaLo, vaHi, access, out);
}

/** As translate(), from an explicit root table (for walking a root CR3 does not hold). */
export function walkFrom(mem: PhysMemory, cpu: CpuState, root: number, vaLo: number, vaHi: number, access: number, out: Translation): boolean {
  return walkPfn(mem, cpu, Math.floor(root / 4096), vaLo, vaHi, access, out);
}

/**
 * The walk, from the root table's frame number. The hot path spells its bit masks as literals:
 * in V8 every use of an imported constant is a module-cell load and check (measured 1.7-2.4x on
 * a mask loop). The names, from bits.ts and rights.ts: P 0x1, R/W 0x2, U/S 0x4, A 0x20, D 0x40,
 * PS 0x80; address bits 0xfffff000 (4 KiB), 0xffe00000 (2 MiB), 0xc0000000 (1 GiB) of the low
 * half and 0xfffff of the high half; the 2 MiB leaf's reserved 0x1fe000; XD 0x80000000 and
 * PK (hi >>> 27) & 0xf of the high half; PFEC_P 0x1, PFEC_RSVD 0x8; RIGHTS_XD 4, RIGHTS_D 8.
 */
export function walkPfn(mem: PhysMemory, cpu: CpuState, rootPfn: number, vaLo: number, vaHi: number, access: number, out: Translation): boolean {
  // entryAddr: each level the walk reaches is written below; the others are set to -1 where
  // the walk ends (pageFault, a large leaf), and level 5 here.
  const e = out.entryAddr;
  e[5] = -1;
  out.pa = 0;

  // Canonical check (SDM 3.3.7.1): bits 63:47 (63:56 with LA57) all equal.
  const top = vaHi >> cpu.canonShift;
  if (top !== 0 && top !== -1) {
    e[1] = e[2] = e[3] = e[4] = -1;
    out.info = (13 << 24) | (cpu.levels << 8) | (12 << 11); // INFO_*: #GP(0), the top level
    return false;
  }
  // The rights table of the current mode (rights.ts): checkAccess()'s answers, one load.
  const rights = cpu.rights;
  if (rights.version !== cpu.modeVersion) rights.resolve(cpu);

  // Reserved bits of every entry's high half: address bits >= MAXPHYADDR, and XD without NXE (SDM 4.5).
  const rsvdHi = cpu.rsvdHiNx;
  // The table: its physical address as halves, tHi bits 51:32 and tLo bits 31:12 in place,
  // int32 arithmetic from one entry to the next. Its words: the level's memo in PhysMemory when
  // it is the table this level read last (the usual case: upper levels repeat), so the load's
  // address does not wait for the entry above; else PhysMemory.walkTable() looks it up.
  // (ToInt32 keeps the low 32 bits of any integer below 2^53, so & is exact on a double pfn.)
  let tLo = (rootPfn & 0xfffff) << 12;
  let tHi = (rootPfn - (rootPfn & 0xfffff)) / 1048576;
  const memo = mem.walkMemo;
  const memoWords = mem.walkWords;
  let fold = 0x4 | 0x2;
  let xd = 0;
  let words: Uint32Array;
  let w = 0;
  let lo = 0;
  let hi = 0;
  let idx = 0;

  // PML5E (LA57): index bits 56:48; never a leaf, PS is reserved (SDM 4.5).
  if (cpu.levels === 5) {
    idx = (vaHi >>> 16) & 511;
    e[5] = tHi * 4294967296 + ((tLo | (idx << 3)) >>> 0);
    if (memo[20] !== tLo || memo[21] !== tHi) {
      if (mem.walkTable(5, tLo, tHi) < 0) return pageFault(cpu, out, 5, access, 0); // unbacked memory reads as zero: P=0
    }
    words = memoWords[5];
    w = memo[22] + idx * 2;
    lo = words[w];
    hi = words[w + 1];
    if ((lo & 0x1) === 0) return pageFault(cpu, out, 5, access, 0);
    if ((hi & rsvdHi) !== 0 || (lo & 0x80) !== 0) return pageFault(cpu, out, 5, access, 0x1 | 0x8);
    fold &= lo;
    xd |= hi;
    if ((lo & 0x20) === 0) words[w] = (lo | 0x20) >>> 0;
    tHi = hi & 0xfffff;
    tLo = lo & 0xfffff000;
  }
  // PML4E: index bits 47:39; never a leaf, PS is reserved (SDM 4.5).
  {
    idx = (vaHi >>> 7) & 511;
    e[4] = tHi * 4294967296 + ((tLo | (idx << 3)) >>> 0);
    if (memo[16] !== tLo || memo[17] !== tHi) {
      if (mem.walkTable(4, tLo, tHi) < 0) return pageFault(cpu, out, 4, access, 0); // unbacked memory reads as zero: P=0
    }
    words = memoWords[4];
    w = memo[18] + idx * 2;
    lo = words[w];
    hi = words[w + 1];
    if ((lo & 0x1) === 0) return pageFault(cpu, out, 4, access, 0);
    if ((hi & rsvdHi) !== 0 || (lo & 0x80) !== 0) return pageFault(cpu, out, 4, access, 0x1 | 0x8);
    fold &= lo;
    xd |= hi;
    if ((lo & 0x20) === 0) words[w] = (lo | 0x20) >>> 0;
    tHi = hi & 0xfffff;
    tLo = lo & 0xfffff000;
  }

  let level = 3;
  leaf: {
    // PDPTE: index bits 38:30; PS=1 maps 1 GiB (reserved without 1 GiB pages), SDM 4.5.
    idx = ((vaLo >>> 30) | (vaHi << 2)) & 511;
    e[3] = tHi * 4294967296 + ((tLo | (idx << 3)) >>> 0);
    if (memo[12] !== tLo || memo[13] !== tHi) {
      if (mem.walkTable(3, tLo, tHi) < 0) return pageFault(cpu, out, 3, access, 0);
    }
    words = memoWords[3];
    w = memo[14] + idx * 2;
    lo = words[w];
    hi = words[w + 1];
    if ((lo & 0x1) === 0) return pageFault(cpu, out, 3, access, 0);
    if ((hi & rsvdHi) !== 0 || ((lo & 0x80) !== 0 && (lo & cpu.rsvdLoWithPs[3]) !== 0)) return pageFault(cpu, out, 3, access, 0x1 | 0x8);
    fold &= lo;
    xd |= hi;
    if ((lo & 0x80) !== 0) {
      e[2] = e[1] = -1;
      break leaf;
    }
    if ((lo & 0x20) === 0) words[w] = (lo | 0x20) >>> 0;
    tHi = hi & 0xfffff;
    tLo = lo & 0xfffff000;

    // PDE: index bits 29:21; PS=1 maps 2 MiB, bits 20:13 reserved (SDM 4.5).
    level = 2;
    idx = (vaLo >>> 21) & 511;
    e[2] = tHi * 4294967296 + ((tLo | (idx << 3)) >>> 0);
    if (memo[8] !== tLo || memo[9] !== tHi) {
      if (mem.walkTable(2, tLo, tHi) < 0) return pageFault(cpu, out, 2, access, 0);
    }
    words = memoWords[2];
    w = memo[10] + idx * 2;
    lo = words[w];
    hi = words[w + 1];
    if ((lo & 0x1) === 0) return pageFault(cpu, out, 2, access, 0);
    if ((hi & rsvdHi) !== 0 || ((lo & 0x80) !== 0 && (lo & 0x1fe000) !== 0)) return pageFault(cpu, out, 2, access, 0x1 | 0x8);
    fold &= lo;
    xd |= hi;
    if ((lo & 0x80) !== 0) {
      e[1] = -1;
      break leaf;
    }
    if ((lo & 0x20) === 0) words[w] = (lo | 0x20) >>> 0;
    tHi = hi & 0xfffff;
    tLo = lo & 0xfffff000;

    // PTE: index bits 20:12; always the leaf; bit 7 is PAT, not PS (SDM 4.5).
    level = 1;
    idx = (vaLo >>> 12) & 511;
    e[1] = tHi * 4294967296 + ((tLo | (idx << 3)) >>> 0);
    if (memo[4] !== tLo || memo[5] !== tHi) {
      if (mem.walkTable(1, tLo, tHi) < 0) return pageFault(cpu, out, 1, access, 0);
    }
    words = memoWords[1];
    w = memo[6] + idx * 2;
    lo = words[w];
    hi = words[w + 1];
    if ((lo & 0x1) === 0) return pageFault(cpu, out, 1, access, 0);
    if ((hi & rsvdHi) !== 0) return pageFault(cpu, out, 1, access, 0x1 | 0x8);
    fold &= lo;
    xd |= hi;
  }

  // Folded rights (SDM 4.6.1). XD of any level counts only with NXE, and without NXE an XD
  // bit was reserved above, so here XD=1 somewhere means execute-disabled.
  const executeDisable = (xd & 0x80000000) !== 0;
  const pkey = (hi >>> 27) & 0xf;
  out.leafLo = lo;
  out.leafHi = hi;
  // U | W | XD | PKEY as rights.ts keys them; with D=1 the table has no NEEDS_WALK verdict.
  const key = ((fold & 0x4) >>> 2) | (fold & 0x2) | (executeDisable ? 4 : 0) | (pkey << 4);

  // The rights rules (SDM 4.6) as one load (rights.ts).
  const fault = rights.table[rights.base | ((access & 7) << 8) | key | 8];
  if (fault !== 0) return pageFault(cpu, out, level, access, fault, key);

  // Accessed on the leaf; Dirty on a write (SDM 4.8). words[w] is the leaf's low half.
  const ad = (access & 1) !== 0 ? 0x20 | 0x40 : 0x20;
  if ((lo & ad) !== ad) words![w] = (lo | ad) >>> 0;

  // The frame and offset by leaf size; info as INFO_* packs it (key, level, page shift 12 + 9 * (level - 1)).
  const hiBits = (hi & 0xfffff) * 4294967296;
  if (level === 1) {
    out.pa = hiBits + ((lo & 0xfffff000) >>> 0) + (vaLo & 0xfff);
    out.info = key | (1 << 8) | (12 << 11);
  } else if (level === 2) {
    out.pa = hiBits + ((lo & 0xffe00000) >>> 0) + (vaLo & 0x1fffff);
    out.info = key | (2 << 8) | (21 << 11);
  } else {
    out.pa = hiBits + ((lo & 0xc0000000) >>> 0) + (vaLo & 0x3fffffff);
    out.info = key | (3 << 8) | (30 << 11);
  }
  return true;
}

/**
 * End a walk with #PF. `bits` are P and RSVD, or a whole error code from the rights table;
 * W, U and I/D come from the access (SDM 4.7): I/D needs SMEP or NXE (PAE is on).
 */
function pageFault(cpu: CpuState, out: Translation, level: number, access: number, bits: number, rights = 0): false {
  const e = out.entryAddr;
  for (let l = level - 1; l >= 1; l--) e[l] = -1; // levels the walk did not reach
  const userMode = cpu.cpl === 3 && (access & ACCESS_IMPLICIT) === 0;
  const errorCode = bits | ((access & ACCESS_WRITE) !== 0 ? PFEC_W : 0) | (userMode ? PFEC_U : 0) |
    ((access & ACCESS_FETCH) !== 0 && (cpu.smep || cpu.nxe) ? PFEC_ID : 0);
  out.info = (VECTOR_PF << INFO_VECTOR_SHIFT) | (errorCode << INFO_ERROR_SHIFT) | (level << INFO_LEVEL_SHIFT) | (12 << INFO_PAGE_SHIFT_SHIFT) | rights;
  return false;
}

/** Split a 64-bit virtual address given as BigInt (CLI/parsers) into halves. */
export function vaHalves(va: bigint): { lo: number; hi: number } {
  const v = BigInt.asUintN(64, va);
  return { lo: Number(v & 0xffffffffn), hi: Number(v >> 32n) };
}
