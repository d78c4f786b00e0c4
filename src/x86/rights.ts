/**
 * The access-rights rules (Intel SDM Vol. 3A 4.6) and their answers as tables, one table per
 * mode, so a translation checks its rights with one typed-array load.
 *
 * checkAccess() is the one copy of the rules. A mode is everything they read besides the
 * folded rights of the page (SDM 4.6): user- or supervisor-mode access (CPL 3 or not, 4.6),
 * CR0.WP, CR4.SMEP / SMAP / PKE / PKS, IA32_EFER.NXE, RFLAGS.AC, and the key registers that
 * apply — PKRU only with CR4.PKE, IA32_PKRS only with CR4.PKS (4.6.2). LA57 is part of the mode too (not a rights input: it lets the Mmu's fast path
 * trust that a tag it filled is still canonical, 3.3.7.1).
 *
 * A table holds, for each access kind (ACCESS_* bits, 3 bits) and each rights key, the verdict
 * of checkAccess(): index = access << 8 | key, value = 0 (allowed), the #PF error code, or
 * NEEDS_WALK (a write allowed by the rights but through a cached entry whose D is not known
 * set, so the processor must walk to set D, 4.8). The rights key is an 8-bit word:
 *
 *    7      4   3   2   1   0
 *   +--------+---+---+---+---+
 *   |  PKEY  | D |XD | W | U |     (the same bits as tlb.ts meta bits 21:14)
 *   +--------+---+---+---+---+
 *
 * allowed[key] folds the table's row once more: bit `access` is 1 when that access kind is
 * allowed with no walk. That is the "rights folded for the current mode" of a fast-path slot.
 *
 * ModeRights keeps the tables of the last MODES modes a CPU was in, so a CPU that goes back and
 * forth between user and kernel mode rebuilds nothing. Each mode that is installed gets a fresh
 * `id` (never reused before `wraps` changes), which the Mmu's fast path puts in its tags.
 */
import type { CpuState } from './cpu.ts';
import { ACCESS_FETCH, ACCESS_IMPLICIT, ACCESS_WRITE, PFEC_ID, PFEC_P, PFEC_PK, PFEC_U, PFEC_W } from './bits.ts';

export const RIGHTS_U = 1;
export const RIGHTS_W = 2;
export const RIGHTS_XD = 4;
export const RIGHTS_D = 8;
export const RIGHTS_PKEY_SHIFT = 4;
/** A table verdict: allowed, but the walker must run to set D (never a valid error code: PFEC < 64). */
export const NEEDS_WALK = 0x80;
/** How many modes' tables a CPU keeps. */
export const MODES = 8;
/** Mode ids stay below 2^19, so `pcid | id << 12` is a non-negative int32. */
const ID_LIMIT = 1 << 19;

/**
 * The access-rights rules (SDM 4.6), on rights already folded over all levels: returns 0 when
 * the access is allowed, else the #PF error code (P=1, W/U/I-D from the access, PK when a
 * protection key denied it). `executeDisable` must already have IA32_EFER.NXE applied.
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

/** The rights tables of the last MODES modes of one CPU (see the header). */
export class ModeRights {
  /** MODES tables of 2048 verdicts; the current one starts at `base`. */
  readonly table = new Uint8Array(MODES * 2048);
  /** MODES rows of 256 allowed-access masks; the current one starts at `base >> 3`. */
  readonly allowed = new Uint8Array(MODES * 256);
  /** CpuState.modeVersion this was resolved for. */
  version = -1;
  /** Offset of the current mode's table in `table`. */
  base = 0;
  /** The current mode's id: unique among the modes installed since `wraps` last changed. */
  id = 0;
  /** Incremented when ids start over (after ID_LIMIT installs): ids seen before mean nothing. */
  wraps = 0;
  private nextId = 0;
  private clock = 0;
  private readonly keyFlags = new Int32Array(MODES).fill(-1);
  private readonly keyPkru = new Float64Array(MODES);
  private readonly keyPkrs = new Float64Array(MODES);
  private readonly ids = new Int32Array(MODES);
  private readonly used = new Float64Array(MODES);
  /** install(): for each U and key, the first key with the same rights in the governing register. */
  private readonly twin = new Int8Array(32);
  /** Tables built (modes installed), for tests and benchmarks. */
  builds = 0;

  /** Make the cpu's current mode the current table (building it if it is not cached). */
  resolve(cpu: CpuState): void {
    const userMode = cpu.cpl === 3;
    const flags = (cpu.wp ? 1 : 0) | (cpu.smep ? 2 : 0) | (cpu.smap ? 4 : 0) | (cpu.pke ? 8 : 0) |
      (cpu.pks ? 16 : 0) | (cpu.nxe ? 32 : 0) | (cpu.ac ? 64 : 0) | (userMode ? 128 : 0) | (cpu.levels === 5 ? 256 : 0);
    // Key registers that checkAccess() cannot read in this mode are not part of it (SDM 4.6.2;
    // PKRS counts at CPL 3 too: implicit accesses there are supervisor-mode, SDM 4.6).
    const pkru = cpu.pke ? cpu.pkru >>> 0 : 0;
    const pkrs = cpu.pks ? cpu.pkrs >>> 0 : 0;
    this.version = cpu.modeVersion;
    let m = 0;
    for (; m < MODES; m++) {
      if (this.keyFlags[m] === flags && this.keyPkru[m] === pkru && this.keyPkrs[m] === pkrs) break;
    }
    if (m === MODES) m = this.install(cpu, flags, pkru, pkrs);
    this.used[m] = ++this.clock;
    this.base = m << 11;
    this.id = this.ids[m];
  }

  private install(cpu: CpuState, flags: number, pkru: number, pkrs: number): number {
    let m = 0;
    for (let i = 1; i < MODES; i++) if (this.used[i] < this.used[m]) m = i;
    if (this.nextId === ID_LIMIT) {
      this.nextId = 0;
      this.wraps++;
      this.keyFlags.fill(-1); // the other cached modes' ids are stale too
    }
    this.keyFlags[m] = flags;
    this.keyPkru[m] = pkru;
    this.keyPkrs[m] = pkrs;
    this.ids[m] = this.nextId++;
    this.builds++;
    // Keys with the same AD/WD bits in the register that governs the address (PKRU for user-mode
    // addresses, IA32_PKRS for supervisor-mode ones; 0 when its CR4 bit is clear) get the same
    // verdicts (SDM 4.6.2: a key's rights are its two bits there), so checkAccess() runs for the
    // first key of each of at most four such classes and the others copy its rows.
    const twin = this.twin;
    for (let user = 0; user < 2; user++) {
      const reg = user === 1 ? pkru : pkrs;
      const first = [-1, -1, -1, -1];
      for (let pkey = 0; pkey < 16; pkey++) {
        const rights = (reg >>> (pkey * 2)) & 3;
        if (first[rights] < 0) first[rights] = pkey;
        twin[user * 16 + pkey] = first[rights];
      }
    }
    const t = this.table;
    const base = m << 11;
    for (let key = 0; key < 256; key++) {
      const pkey = key >>> RIGHTS_PKEY_SHIFT;
      const user = (key & RIGHTS_U) !== 0;
      const like = twin[(user ? 16 : 0) + pkey];
      // The row of the class's first key (a smaller key: pkey is the high bits), same U/W/XD/D.
      const from = like === pkey ? -1 : (key & 15) | (like << RIGHTS_PKEY_SHIFT);
      let allowed = 0;
      for (let access = 0; access < 8; access++) {
        let v: number;
        if (from >= 0) {
          v = t[base | (access << 8) | from];
        } else {
          const fault = checkAccess(cpu, user, (key & RIGHTS_W) !== 0, (key & RIGHTS_XD) !== 0, pkey, access);
          // SDM 4.8: a write through an entry whose D is not known set walks to set D.
          v = fault !== 0 ? fault : (access & ACCESS_WRITE) !== 0 && (key & RIGHTS_D) === 0 ? NEEDS_WALK : 0;
        }
        t[base | (access << 8) | key] = v;
        if (v === 0) allowed |= 1 << access;
      }
      this.allowed[(m << 8) | key] = allowed;
    }
    return m;
  }
}
