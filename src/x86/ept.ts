/**
 * Extended page tables (EPT): the entry format, a builder, and the guest-physical → host-physical
 * walk with EPT violations and misconfigurations. Intel SDM Vol. 3C, numbered as in the edition
 * at hand (the one whose chapter 28 is "VMX Support for Address Translation", 2016-era): 28.2.2 "EPT Translation Mechanism" (tables 28-1..28-6 give the
 * entry formats), 28.2.3.1 "EPT Misconfigurations", 28.2.3.2 "EPT Violations", 28.2.4 "Accessed and
 * Dirty Flags for EPT", table 27-7 "Exit Qualification for EPT Violations" and 24.6.11 (EPTP).
 * In 2023+ editions the same text is 29.3.2, 29.3.3.1, 29.3.3.2, 29.3.5 and table 28-7.
 *
 * An EPT entry as two u32 halves (R/W/X are bits 0..2; `M` is MAXPHYADDR):
 *
 *   lo  31        12 11  10   9  8  7   6   5:3   2 1 0      hi  31       20..19        0
 *      +------------+---+---+--+--+---+----+-----+-+-+-+         +--+----------+----------+
 *      | addr 31:12 |ign|UX |D |A |PS |IPAT| MT  |X|W|R|         |SV| ignored  |addr 51:32|
 *      +------------+---+---+--+--+---+----+-----+-+-+-+         +--+----------+----------+
 *   MT (memory type) and IPAT exist in leaves only; bits 6:3 (7:3 in a PML4E/PML5E) are reserved in
 *   non-leaf entries. PS: bit 7 of a PDPTE (1 GiB) or PDE (2 MiB). D exists in leaves only. UX is
 *   execute for user-mode linear addresses with "mode-based execute control for EPT" (MBEC), else
 *   ignored. SV (bit 63) is "suppress #VE" in leaves. Bits 51:M are reserved everywhere.
 *
 * The walk is straight-line like walk.ts: one caller-owned EptTranslation, no allocation.
 * Accesses are ACCESS_READ / ACCESS_WRITE / ACCESS_FETCH (bits.ts), plus EPT_ACCESS_USER for a fetch
 * from a user-mode linear address (matters with MBEC only). Accesses the processor makes to guest
 * paging structures are reads, or writes when EPTP[6] enables A/D (28.2.3.2): the caller passes them.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { ACCESS_FETCH, ACCESS_WRITE } from './bits.ts';

export const EPT_R = 1 << 0;
export const EPT_W = 1 << 1;
export const EPT_X = 1 << 2;
export const EPT_RWX = EPT_R | EPT_W | EPT_X;
export const EPT_MT_SHIFT = 3;
export const EPT_MT_MASK = 7 << EPT_MT_SHIFT;
export const EPT_IPAT = 1 << 6;
export const EPT_PS = 1 << 7;
export const EPT_A = 1 << 8;
export const EPT_D = 1 << 9;
export const EPT_UX = 1 << 10;
export const EPT_HI_SUPPRESS_VE = 0x80000000;
const ADDR_LO = 0xfffff000;
const ADDR_HI = 0x000fffff;
const ADDR_LO_2M = 0xffe00000;
const ADDR_LO_1G = 0xc0000000;
const RSVD_LO_2M = 0x001ff000; // bits 20:12 of a 2 MiB leaf (table 28-4; no PAT bit 12 as in IA-32e paging)
const RSVD_LO_1G = 0x3ffff000; // bits 29:12 of a 1 GiB leaf (table 28-2)

/** EPT memory types (SDM 28.2.6, "EPT memory type" bits 5:3); 2, 3 and 7 are reserved. */
export const MT_UC = 0;
export const MT_WC = 1;
export const MT_WT = 4;
export const MT_WP = 5;
export const MT_WB = 6;

/** EPTP fields (SDM 24.6.11, table 24-8): 2:0 memory type, 5:3 page-walk length - 1, 6 A/D enable. */
export const EPTP_PWL_SHIFT = 3;
export const EPTP_AD = 1 << 6;

/** Exit qualification for EPT violations (SDM table 27-7). */
export const EQ_READ = 1 << 0; // the access was a data read
export const EQ_WRITE = 1 << 1; // a data write
export const EQ_FETCH = 1 << 2; // an instruction fetch
export const EQ_READABLE = 1 << 3; // AND of bit 0 over the entries used
export const EQ_WRITABLE = 1 << 4; // AND of bit 1
export const EQ_EXECUTABLE = 1 << 5; // AND of bit 2 (supervisor-executable with MBEC)
export const EQ_USER_EXECUTABLE = 1 << 6; // AND of bit 10, with MBEC only
export const EQ_GLA_VALID = 1 << 7; // set by the caller: a guest linear address was being translated
export const EQ_GLA_TRANSLATION = 1 << 8; // set by the caller: the final GPA, not a guest paging entry

/** A fetch from a user-mode linear address (for MBEC). */
export const EPT_ACCESS_USER = 8;

export const EPT_OK = 0;
export const EPT_VIOLATION = 1;
export const EPT_MISCONFIG = 2;

export interface EptConfig {
  /** Page-walk length: 4, or 5 where supported. */
  levels: 4 | 5;
  /** MAXPHYADDR: bits 51:M of every entry are reserved. */
  maxPhysBits: number;
  /** EPTP[6]: the processor sets A (every entry used) and D (leaf, on writes) (28.2.4). */
  accessDirty: boolean;
  /** Secondary control "mode-based execute control for EPT". */
  mbec: boolean;
  /** IA32_VMX_EPT_VPID_CAP[0]: execute-only translations supported. */
  executeOnly: boolean;
  /** IA32_VMX_EPT_VPID_CAP[17]: 1 GiB pages supported. */
  pages1G: boolean;
}

export const DEFAULT_EPT_CONFIG: Readonly<EptConfig> = {
  levels: 4, maxPhysBits: 46, accessDirty: true, mbec: false, executeOnly: true, pages1G: true,
};

/** What a GPA translation produced. Caller-owned and reused. */
export class EptTranslation {
  /** EPT_OK, EPT_VIOLATION or EPT_MISCONFIG. */
  result = EPT_OK;
  /** For a violation: the exit qualification bits 6:0 (table 27-7). */
  qualification = 0;
  /** Level of the leaf, or of the entry where the walk stopped. */
  level = 0;
  /** Host physical address of the byte, and of its page frame. */
  hpa = 0;
  frame = 0;
  pageShift = 12;
  memType = 0;
  ipat = false;
  leafLo = 0;
  leafHi = 0;
  /** Physical addresses of the entries used, by level (1..5); -1 when not reached. */
  readonly entryAddr = new Float64Array(6).fill(-1);

  get ok(): boolean {
    return this.result === EPT_OK;
  }
}

const TWO32 = 4294967296;

/**
 * Translate the guest-physical address `gpa` (a Number < 2^52) through the EPT rooted at `root`.
 * Returns true when the access is allowed; `out` holds the result or the fault.
 */
export function eptTranslate(mem: PhysMemory, cfg: EptConfig, root: number, gpa: number, access: number, out: EptTranslation): boolean {
  const isWrite = (access & ACCESS_WRITE) !== 0;
  const isFetch = (access & ACCESS_FETCH) !== 0;
  const accessBits = isFetch ? EQ_FETCH : isWrite ? EQ_WRITE : EQ_READ;
  const e = out.entryAddr;
  e[1] = e[2] = e[3] = e[4] = e[5] = -1;
  out.hpa = out.frame = 0;
  // 4-level EPT "uses only bits 47:0 of each guest-physical address" (28.2.2).
  const gLo = gpa >>> 0;
  const gHi = Math.floor(gpa / TWO32) & (cfg.levels === 5 ? 0x1ffffff : 0xffff);
  const rsvdHi = cfg.maxPhysBits >= 52 ? 0 : (ADDR_HI & ~((1 << (cfg.maxPhysBits - 32)) - 1)) >>> 0;
  const uxPresent = cfg.mbec ? EPT_UX : 0;
  let fold = EPT_RWX | EPT_UX;
  let table = root;
  let level: number = cfg.levels;
  let lo = 0;
  let hi = 0;
  let entryPa = 0;
  let leaf = false;
  for (;;) {
    let idx: number;
    switch (level) {
      case 5: idx = (gHi >>> 16) & 511; break;
      case 4: idx = (gHi >>> 7) & 511; break;
      case 3: idx = ((gHi & 0x7f) << 2) | (gLo >>> 30); break;
      case 2: idx = (gLo >>> 21) & 511; break;
      default: idx = (gLo >>> 12) & 511; break;
    }
    entryPa = table + idx * 8;
    e[level] = entryPa;
    const slot = mem.slot(Math.floor(table / 4096));
    if (slot < 0) {
      lo = hi = 0;
    } else {
      const words = mem.wordsOfSlot(slot);
      const w = mem.wordBaseOfSlot(slot) + idx * 2;
      lo = words[w];
      hi = words[w + 1];
    }
    out.level = level;
    // Not present: bits 2:0 all 0 (and bit 10 with MBEC) (28.2.2). Its bits 2:0 enter the AND as 0.
    if ((lo & (EPT_RWX | uxPresent)) === 0) return violation(out, accessBits);
    // Misconfigurations (28.2.3.1).
    const perm = lo & EPT_RWX;
    let bad = (perm & (EPT_R | EPT_W)) === EPT_W; // bits 2:0 = 010b (write-only) or 110b (write/execute)
    // Execute-only (100b; with MBEC also a user-execute-only entry) without processor support.
    bad ||= !cfg.executeOnly && (perm & (EPT_R | EPT_W)) === 0;
    bad ||= (hi & rsvdHi) !== 0; // address bits 51:M
    leaf = level === 1;
    if (level >= 4) {
      bad ||= (lo & 0xf8) !== 0; // bits 7:3 reserved in PML4Es (and PML5Es) (table 28-1)
    } else if ((lo & EPT_PS) !== 0) {
      leaf = true;
      // A PDPTE with bit 7 maps 1 GiB (reserved without support); reserved address bits of large leaves.
      bad ||= level === 3 ? !cfg.pages1G || (lo & RSVD_LO_1G) !== 0 : (lo & RSVD_LO_2M) !== 0;
    } else if (level > 1) {
      bad ||= (lo & 0x78) !== 0; // bits 6:3 reserved in entries that reference a table (tables 28-3, 28-5)
    }
    if (leaf) {
      const mt = (lo & EPT_MT_MASK) >>> EPT_MT_SHIFT;
      bad ||= mt === 2 || mt === 3 || mt === 7; // reserved memory types in the entry that maps the page
    }
    if (bad) {
      out.result = EPT_MISCONFIG;
      out.qualification = 0;
      return false;
    }
    fold &= lo;
    if (leaf) break;
    // A on every entry used (28.2.4.1); here as the walk passes, like walk.ts.
    if (cfg.accessDirty && (lo & EPT_A) === 0) mem.or32(entryPa, EPT_A);
    table = (hi & ADDR_HI) * TWO32 + ((lo & ADDR_LO) >>> 0);
    level--;
  }

  const readable = (fold & EPT_R) !== 0;
  const writable = (fold & EPT_W) !== 0;
  const supExec = (fold & EPT_X) !== 0;
  const userExec = cfg.mbec && (fold & EPT_UX) !== 0;
  out.leafLo = lo;
  out.leafHi = hi;
  out.memType = (lo & EPT_MT_MASK) >>> EPT_MT_SHIFT;
  out.ipat = (lo & EPT_IPAT) !== 0;
  // Violations (28.2.3.2): a read needs bit 0, a write bit 1, a fetch bit 2 in every entry used;
  // with MBEC a fetch from a user-mode linear address needs bit 10 instead.
  const execOk = cfg.mbec && (access & EPT_ACCESS_USER) !== 0 ? userExec : supExec;
  const denied = isFetch ? !execOk : isWrite ? !writable : !readable;
  const rights = (readable ? EQ_READABLE : 0) | (writable ? EQ_WRITABLE : 0) | (supExec ? EQ_EXECUTABLE : 0) | (userExec ? EQ_USER_EXECUTABLE : 0);
  if (denied) return violation(out, accessBits | rights);

  // A on the leaf, D on a write (28.2.4.1), when the access goes ahead.
  if (cfg.accessDirty) {
    const ad = isWrite ? EPT_A | EPT_D : EPT_A;
    if ((lo & ad) !== ad) mem.or32(entryPa, ad);
  }
  let frame: number;
  let offset: number;
  if (level === 1) {
    frame = (hi & ADDR_HI) * TWO32 + ((lo & ADDR_LO) >>> 0);
    offset = gLo & 0xfff;
    out.pageShift = 12;
  } else if (level === 2) {
    frame = (hi & ADDR_HI) * TWO32 + ((lo & ADDR_LO_2M) >>> 0);
    offset = gLo & 0x1fffff;
    out.pageShift = 21;
  } else {
    frame = (hi & ADDR_HI) * TWO32 + ((lo & ADDR_LO_1G) >>> 0);
    offset = gLo & 0x3fffffff;
    out.pageShift = 30;
  }
  out.frame = frame;
  out.hpa = frame + offset;
  out.result = EPT_OK;
  out.qualification = 0;
  return true;
}

function violation(out: EptTranslation, qualification: number): false {
  out.result = EPT_VIOLATION;
  out.qualification = qualification;
  return false;
}

/** The EPTP value (table 24-8) as halves: root | (levels - 1) << 3 | A/D | memory type. */
export function eptpValue(root: number, levels: 4 | 5, accessDirty: boolean, memType = MT_WB): { lo: number; hi: number } {
  return {
    lo: ((root % TWO32) | ((levels - 1) << EPTP_PWL_SHIFT) | (accessDirty ? EPTP_AD : 0) | memType) >>> 0,
    hi: Math.floor(root / TWO32) >>> 0,
  };
}

/** Builds EPT paging structures in simulated memory. Set-up code: Numbers, not per access. */
export class EptTables {
  readonly root: number;
  tables = 0;

  constructor(
    readonly mem: PhysMemory,
    readonly levels: 4 | 5,
    /** Returns the PA of a zeroed 4 KiB frame for a paging structure. */
    private readonly alloc: () => number,
    root?: number,
  ) {
    this.root = root ?? this.newTable();
  }

  private newTable(): number {
    this.tables++;
    return this.alloc();
  }

  static index(gpa: number, level: number): number {
    return Math.floor(gpa / 2 ** (12 + 9 * (level - 1))) % 512;
  }

  /** PA of the entry for `gpa` at `level`, creating the tables above it with `nonLeaf` rights. */
  entryAddr(gpa: number, level: number, nonLeafLo = EPT_RWX): number {
    let table = this.root;
    for (let l: number = this.levels; l > level; l--) {
      const ea = table + EptTables.index(gpa, l) * 8;
      let lo = this.mem.read32(ea);
      let hi = this.mem.read32(ea + 4);
      if ((lo & (EPT_RWX | EPT_UX)) === 0) {
        const t = this.newTable();
        lo = ((t % TWO32) | nonLeafLo) >>> 0;
        hi = Math.floor(t / TWO32);
        this.mem.write64(ea, lo, hi);
      } else if (l <= 3 && (lo & EPT_PS) !== 0) {
        throw new RangeError(`GPA 0x${gpa.toString(16)} is inside a ${l === 3 ? '1 GiB' : '2 MiB'} EPT leaf`);
      }
      table = (hi & ADDR_HI) * TWO32 + ((lo & ADDR_LO) >>> 0);
    }
    return table + EptTables.index(gpa, level) * 8;
  }

  /** Map one page of 2^pageShift bytes. `lo`/`hi` hold every bit but the address (PS is added). */
  map(gpa: number, hpa: number, pageShift: 12 | 21 | 30, lo: number, hi = 0, nonLeafLo = EPT_RWX): void {
    const size = 2 ** pageShift;
    if (gpa % size !== 0 || hpa % size !== 0) throw new RangeError(`unaligned ${size}-byte EPT mapping 0x${gpa.toString(16)} -> 0x${hpa.toString(16)}`);
    const level = (pageShift - 3) / 9;
    const ea = this.entryAddr(gpa, level, nonLeafLo);
    this.mem.write64(ea, ((hpa % TWO32) | lo | (level > 1 ? EPT_PS : 0)) >>> 0, (Math.floor(hpa / TWO32) | hi) >>> 0);
  }

  /** Map [gpa, gpa+len) to [hpa, …) with the largest page sizes alignment allows; returns the leaf count per shift. */
  mapRange(gpa: number, hpa: number, len: number, lo: number, hi = 0, shifts: (12 | 21 | 30)[] = [30, 21, 12]): Map<number, number> {
    const count = new Map<number, number>();
    const end = gpa + len;
    const desc = [...shifts].sort((a, b) => b - a);
    while (gpa < end) {
      const s = desc.find((x) => gpa % 2 ** x === 0 && hpa % 2 ** x === 0 && gpa + 2 ** x <= end);
      if (s === undefined) throw new RangeError(`cannot map GPA 0x${gpa.toString(16)} with page shifts ${shifts.join(',')}`);
      this.map(gpa, hpa, s, lo, hi);
      count.set(s, (count.get(s) ?? 0) + 1);
      gpa += 2 ** s;
      hpa += 2 ** s;
    }
    return count;
  }

  /** Write a raw entry (tests, fault injection). */
  setEntry(gpa: number, level: number, lo: number, hi: number): number {
    const ea = this.entryAddr(gpa, level);
    this.mem.write64(ea, lo >>> 0, hi >>> 0);
    return ea;
  }
}
