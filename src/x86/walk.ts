/**
 * The 4-level / 5-level page walk, straight-line as QEMU's mmu_translate(): one walk,
 * one caller-owned result, the fault's error code built in one place.
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
import {
  ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_WRITE, PDE_2M_ADDR_LO_MASK,
  PDPTE_1G_ADDR_LO_MASK, PFEC_ID, PFEC_P, PFEC_PK, PFEC_RSVD, PFEC_U, PFEC_W,
  PTE_A, PTE_ADDR_LO_MASK, PTE_D, PTE_HI_ADDR_MASK, PTE_HI_PK_MASK, PTE_HI_PK_SHIFT, PTE_HI_XD,
  PTE_P, PTE_PS, PTE_RW, PTE_US, VECTOR_GP, VECTOR_PF,
} from './bits.ts';

const TWO32 = 4294967296;

/** What a translation produced. Caller-owned and reused: the walker never allocates. */
export class Translation {
  /** 0 when translated; else the exception vector (13 #GP, 14 #PF). */
  vector = 0;
  /** The #PF error code (PFEC_* bits), or 0 for #GP. */
  errorCode = 0;
  /** Level of the leaf (1 PTE, 2 PDE, 3 PDPTE) or of the entry where the walk stopped. */
  level = 0;
  /** Physical address of the accessed byte (a Number < 2^52). */
  pa = 0;
  /** Physical address of the page frame (pa with the offset cleared). */
  frame = 0;
  pageShift = 12;
  /** The leaf entry as it was read (before any A/D update). */
  leafLo = 0;
  leafHi = 0;
  /** Folded rights over all levels (SDM 4.6.1). */
  user = false;
  writable = false;
  executeDisable = false;
  /** Protection key of the leaf (meaningful when CR4.PKE or CR4.PKS). */
  pkey = 0;
  /** Physical addresses of the entries used, indexed by level (1..5); -1 when not reached. */
  readonly entryAddr = new Float64Array(6).fill(-1);

  get ok(): boolean {
    return this.vector === 0;
  }
}

/**
 * Translate `va` (as u32 halves) for an access of kind `access` (ACCESS_* bits) under `cpu`.
 * Returns true on success. Updates A/D bits in `mem` as the hardware does.
 */
export function translate(mem: PhysMemory, cpu: CpuState, vaLo: number, vaHi: number, access: number, out: Translation): boolean {
  return walkFrom(mem, cpu, cpu.rootAddr, vaLo, vaHi, access, out);
}

/** As translate(), from an explicit root table (for walking a root CR3 does not hold). */
export function walkFrom(mem: PhysMemory, cpu: CpuState, root: number, vaLo: number, vaHi: number, access: number, out: Translation): boolean {
  const isWrite = (access & ACCESS_WRITE) !== 0;
  const isFetch = (access & ACCESS_FETCH) !== 0;
  const userMode = cpu.cpl === 3 && (access & ACCESS_IMPLICIT) === 0;
  // Error-code bits that depend only on the access (SDM 4.7): I/D needs SMEP or NXE (PAE is on).
  const accessBits = (isWrite ? PFEC_W : 0) | (userMode ? PFEC_U : 0) | (isFetch && (cpu.smep || cpu.nxe) ? PFEC_ID : 0);
  const e = out.entryAddr;
  e[1] = e[2] = e[3] = e[4] = e[5] = -1;
  out.pa = out.frame = 0;

  // Canonical check (SDM 3.3.7.1): bits 63:47 (63:56 with LA57) all equal.
  const top = vaHi >> cpu.canonShift;
  if (top !== 0 && top !== -1) {
    out.vector = VECTOR_GP;
    out.errorCode = 0;
    out.level = cpu.levels;
    return false;
  }

  const rsvdHi = cpu.rsvdHi | (cpu.nxe ? 0 : PTE_HI_XD);
  // The table as an address (for entryAddr) and as a frame number (for the memory lookup);
  // the frame number of the next table comes from the entry's halves without a division.
  let table = root;
  let tablePfn = Math.floor(root / 4096);
  // VA bits 39:12 as one integer: bits 8:0, 17:9 and 26:18 are the PT, PD and PDPT indexes.
  const vpn = (vaLo >>> 12) | ((vaHi & 0xff) << 20);
  let foldUser = PTE_US | PTE_RW;
  let xd = 0;
  let lo = 0;
  let hi = 0;
  let entryPa = 0;
  let level = cpu.levels;
  const rsvdLoWithPs = cpu.rsvdLoWithPs;
  for (;;) {
    // Index bits: 47:39 (PML4) and 56:48 (PML5) from the high half, the others from vpn.
    const idx = level <= 3 ? (vpn >>> (9 * level - 9)) & 511 : (vaHi >>> (9 * level - 29)) & 511;
    entryPa = table + idx * 8;
    e[level] = entryPa;
    const slot = mem.slot(tablePfn);
    if (slot < 0) return pageFault(out, level, accessBits); // unbacked memory reads as zero: P=0
    const words = mem.wordsOfSlot(slot);
    const w = mem.wordBaseOfSlot(slot) + idx * 2;
    lo = words[w];
    hi = words[w + 1];
    if ((lo & PTE_P) === 0) return pageFault(out, level, accessBits);
    // Reserved bits (SDM 4.5): address bits >= MAXPHYADDR and XD without NXE at every level;
    // with PS=1 the level's own (cpu.rsvdLoWithPs). PS in a PTE is PAT: level 1 skips it.
    const ps = level === 1 ? 0 : lo & PTE_PS;
    if ((hi & rsvdHi) !== 0 || (ps !== 0 && (lo & rsvdLoWithPs[level]) !== 0)) {
      return pageFault(out, level, accessBits | PFEC_P | PFEC_RSVD);
    }
    foldUser &= lo;
    xd |= hi;
    if (level === 1 || ps !== 0) break;
    if ((lo & PTE_A) === 0) words[w] = (lo | PTE_A) >>> 0;
    tablePfn = (hi & PTE_HI_ADDR_MASK) * 1048576 + (lo >>> 12);
    table = tablePfn * 4096;
    level--;
  }

  // Folded rights (SDM 4.6.1).
  const user = (foldUser & PTE_US) !== 0;
  const writable = (foldUser & PTE_RW) !== 0;
  const executeDisable = cpu.nxe && (xd & PTE_HI_XD) !== 0;
  const pkey = (hi >>> PTE_HI_PK_SHIFT) & PTE_HI_PK_MASK;
  out.level = level;
  out.leafLo = lo;
  out.leafHi = hi;
  out.user = user;
  out.writable = writable;
  out.executeDisable = executeDisable;
  out.pkey = pkey;

  const fault = checkAccess(cpu, user, writable, executeDisable, pkey, access);
  if (fault !== 0) return pageFault(out, level, fault);

  // Accessed on the leaf; Dirty on a write (SDM 4.8).
  const ad = isWrite ? PTE_A | PTE_D : PTE_A;
  if ((lo & ad) !== ad) mem.or32(entryPa, ad);

  let frame: number;
  let offset: number;
  if (level === 1) {
    frame = (hi & PTE_HI_ADDR_MASK) * TWO32 + ((lo & PTE_ADDR_LO_MASK) >>> 0);
    offset = vaLo & 0xfff;
    out.pageShift = 12;
  } else if (level === 2) {
    frame = (hi & PTE_HI_ADDR_MASK) * TWO32 + ((lo & PDE_2M_ADDR_LO_MASK) >>> 0);
    offset = vaLo & 0x1fffff;
    out.pageShift = 21;
  } else {
    frame = (hi & PTE_HI_ADDR_MASK) * TWO32 + ((lo & PDPTE_1G_ADDR_LO_MASK) >>> 0);
    offset = vaLo & 0x3fffffff;
    out.pageShift = 30;
  }
  out.frame = frame;
  out.pa = frame + offset;
  out.vector = 0;
  out.errorCode = 0;
  return true;
}

/**
 * The access-rights rules (SDM 4.6), on rights already folded over all levels: returns 0 when
 * the access is allowed, else the #PF error code (P=1, W/U/I-D from the access, PK when a
 * protection key denied it). Shared by the walker and the TLB-hit path of the Mmu (mmu.ts), so
 * there is one copy of the rules. `executeDisable` must already have IA32_EFER.NXE applied.
 */
export function checkAccess(cpu: CpuState, user: boolean, writable: boolean, executeDisable: boolean, pkey: number, access: number): number {
  const isWrite = (access & ACCESS_WRITE) !== 0;
  const isFetch = (access & ACCESS_FETCH) !== 0;
  const userMode = cpu.cpl === 3 && (access & ACCESS_IMPLICIT) === 0;
  let denied: boolean;
  if (userMode) {
    // User-mode access (SDM 4.6.1): user address only; writes need R/W=1; fetches need XD=0.
    denied = !user || (isWrite && !writable) || (isFetch && executeDisable);
  } else if (isFetch) {
    // Supervisor fetch (SDM 4.6.1): never from a user address with SMEP; never from an XD page.
    denied = (user && cpu.smep) || executeDisable;
  } else {
    // Supervisor data access (SDM 4.6.1): SMAP blocks user addresses unless an explicit access has
    // RFLAGS.AC=1 (implicit accesses ignore AC); with CR0.WP=1 writes need R/W=1.
    denied = (user && cpu.smap && ((access & ACCESS_IMPLICIT) !== 0 || !cpu.ac)) || (isWrite && !writable && cpu.wp);
  }

  // Protection keys (SDM 4.6.2): data accesses only, never fetches.
  let pkDenied = false;
  if (!isFetch) {
    // SDM 4.6.2: PKRU governs user-mode addresses (CR4.PKE=1), for user- and supervisor-mode accesses.
    // SDM 4.6.2, 4.7: IA32_PKRS governs supervisor-mode addresses (CR4.PKS=1) for supervisor-mode
    // accesses only (implicit ones included); a user-mode access there gets PK=0.
    const keyed = user ? cpu.pke : cpu.pks && !userMode;
    if (keyed) {
      const rights = (user ? cpu.pkru : cpu.pkrs) >>> (pkey * 2);
      // SDM 4.6.2: AD=1 denies every data access; WD=1 denies user-mode writes, and supervisor-mode
      // writes when CR0.WP=1 (with WP=0, WD does not affect supervisor-mode writes).
      pkDenied = (rights & 1) !== 0 || ((rights & 2) !== 0 && isWrite && (userMode || cpu.wp));
    }
  }
  // SDM 4.7: PK=1 when the key denied the access, even if the paging rights deny it too (QEMU's
  // pk/pks access cases and Xen's measurements on hardware agree).
  if (!denied && !pkDenied) return 0;
  // Error-code bits (SDM 4.7): I/D needs SMEP or NXE (PAE is on).
  return PFEC_P | (isWrite ? PFEC_W : 0) | (userMode ? PFEC_U : 0) | (isFetch && (cpu.smep || cpu.nxe) ? PFEC_ID : 0) | (pkDenied ? PFEC_PK : 0);
}

function pageFault(out: Translation, level: number, errorCode: number): false {
  out.vector = VECTOR_PF;
  out.errorCode = errorCode;
  out.level = level;
  return false;
}

/** Split a 64-bit virtual address given as BigInt (CLI/parsers) into halves. */
export function vaHalves(va: bigint): { lo: number; hi: number } {
  const v = BigInt.asUintN(64, va);
  return { lo: Number(v & 0xffffffffn), hi: Number(v >> 32n) };
}
