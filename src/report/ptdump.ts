/**
 * The kernel's page-table dump, as Linux 6.1 prints /sys/kernel/debug/page_tables/*: the
 * generic walker of mm/ptdump.c over mm/pagewalk.c, with x86's note_page() state machine,
 * effective_prot() folding, printk_prot() columns and note_wx() check from
 * arch/x86/mm/dump_pagetables.c. Region headings come from the one marker table
 * (markers.ts).
 *
 * Levels are the kernel's ptdump levels: 0 pgd, 1 p4d, 2 pud, 3 pmd, 4 pte, -1 the final
 * flush. With 4-level paging p4d is folded into pgd: the PML4 entry is seen at levels 0 and 1
 * and a hole there is reported at depth 0 (pagewalk.c real_depth()), so "p4d" never prints.
 *
 * Addresses are page numbers (VA >> 12, canonical, a Number < 2^52) on the hot path: the
 * ESPfix area alone makes a million note_page() calls, none of which allocates.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { addressMarkers, type AddressMarker, type KernelLayout } from './markers.ts';

/*
 * A "prot" is the entry's PTE_FLAGS_MASK bits (~PTE_PFN_MASK: bits 11:0 and 63:52), packed
 * into 24 bits:  23      12 11  9  8   7   6 5  4   3   2  1 0
 *               +----------+-----+---+---+---+-+---+---+---+--+-+
 *               | 63:52    | sw  | G |PSE| D |A|PCD|PWT|USR|RW|P|
 *               +----------+-----+---+---+---+-+---+---+---+--+-+
 * so NX (bit 63) is bit 23. Bit 12 (_PAGE_PAT_LARGE) is an address bit to PTE_FLAGS_MASK, so
 * the kernel's note_page() never sees it and never prints PAT for a large page; nor do we.
 */
export const PROT_PRESENT = 1 << 0;
export const PROT_RW = 1 << 1;
export const PROT_USER = 1 << 2;
export const PROT_PWT = 1 << 3;
export const PROT_PCD = 1 << 4;
export const PROT_PSE = 1 << 7; // _PAGE_PAT in a PTE
export const PROT_GLOBAL = 1 << 8; // also _PAGE_PROTNONE in a non-present entry
export const PROT_NX = 1 << 23;
const PROT_A_D = 0x60; // _PAGE_KNL_ERRATUM_MASK (pgtable.h): ignored by pmd/pud/p4d_none()

/** Pack an entry's flag bits (halves lo = 31:0, hi = 63:32). */
export function packProt(lo: number, hi: number): number {
  return (lo & 0xfff) | ((hi >>> 20) << 12);
}

export const LEVEL_NAMES = ['pgd', 'p4d', 'pud', 'pmd', 'pte'] as const; // printk_prot() level_name[]

const TWO32 = 4294967296;
const VPN_SPACE = 2 ** 52; // page numbers wrap here (64-bit addresses)
const ZERO_TABLE = new Uint32Array(1024);

/** Called at every break with the finished run (ends exclusive, page numbers; end may wrap to 0). */
export type RunVisitor = (startVpn: number, endVpn: number, prot: number, eff: number, level: number, marker: number) => void;

export interface PtdumpOptions {
  /** Build the text (default true). */
  text?: boolean;
  /** Count W+X pages as the kernel's boot-time check does (default true). */
  checkWx?: boolean;
  onRun?: RunVisitor;
  /** Marker table (default: addressMarkers(layout)). */
  markers?: AddressMarker[];
}

export interface PtdumpResult {
  text: string;
  markers: AddressMarker[];
  /** Pages both writable and executable (effective RW, no effective NX) in the kernel half. */
  wxPages: number;
  /** The same in the user half (the kernel's check also walks it, but at boot it is empty). */
  wxUserPages: number;
  /** The kernel's messages: the WARN_ONCE text (if any W+X) and the "Checked W+X" line. */
  wxMessages: string[];
  /** note_page() breaks (printed lines + lines held back by max_lines). */
  runs: number;
}

/** One dump state (struct pg_state); fields are Numbers so note() stays monomorphic. */
class PgState {
  level = -1;
  cur = 0;
  eff = 0;
  startVpn = 0;
  marker = 0;
  nextMarkerVpn = 0;
  lines = 0;
  runs = 0;
  wxPages = 0;
  wxUserPages = 0;
  readonly protLevels = new Int32Array(5);
  readonly out: string[] = [];
  readonly wxMessages: string[] = [];
  private readonly markerVpn: number[];

  constructor(
    readonly markers: AddressMarker[], readonly text: boolean, readonly checkWx: boolean,
    readonly onRun: RunVisitor | undefined, private readonly kernelHalfVpn: number,
  ) {
    // A page address is >= start iff its page number is >= ceil(start / 4096).
    this.markerVpn = markers.map((m) => Number((m.start + 0xfffn) >> 12n));
  }

  /** dump_pagetables.c effective_prot(): USER and RW ANDed, NX ORed with the level above. */
  effective(level: number, lo: number, hi: number): void {
    const prot = packProt(lo, hi);
    if (level > 0) {
      const higher = this.protLevels[level - 1];
      this.protLevels[level] = (higher & prot & (PROT_USER | PROT_RW)) | ((higher | prot) & PROT_NX);
    } else {
      this.protLevels[level] = prot;
    }
  }

  /** dump_pagetables.c note_page(): print the finished run on a change of prot, level or region. */
  note(vpn: number, level: number, lo: number, hi: number): void {
    const prot = packProt(lo, hi);
    const newEff = (lo | hi) !== 0 ? this.protLevels[level] : 0; // "if (!val) new_eff = 0"
    if (this.level === -1) {
      // First entry: open the first region.
      this.cur = prot;
      this.eff = newEff;
      this.level = level;
      this.marker = 0;
      this.nextMarkerVpn = this.markerVpn[1];
      this.lines = 0;
      if (this.text) this.out.push(`---[ ${this.markers[0].name} ]---\n`);
      return;
    }
    if (prot === this.cur && newEff === this.eff && level === this.level && vpn < this.nextMarkerVpn) return;

    this.runs++;
    if (this.checkWx && (this.eff & PROT_RW) !== 0 && (this.eff & PROT_NX) === 0) this.noteWx(vpn);
    if (this.onRun) this.onRun(this.startVpn, vpn, this.cur, this.eff, this.level, this.marker);
    const m = this.markers[this.marker];
    if (this.text && (m.maxLines === 0 || this.lines < m.maxLines)) {
      this.out.push(formatRun(this.startVpn, vpn, this.cur, this.level));
    }
    this.lines++;
    // Markers for special areas: only the next one is ever looked at.
    if (vpn >= this.nextMarkerVpn) {
      if (this.text && m.maxLines !== 0 && this.lines > m.maxLines) {
        const nskip = this.lines - m.maxLines;
        this.out.push(`... ${nskip} entr${nskip === 1 ? 'y' : 'ies'} skipped ... \n`);
      }
      this.marker++;
      this.nextMarkerVpn = this.markerVpn[this.marker + 1] ?? Infinity;
      this.lines = 0;
      if (this.text) this.out.push(`---[ ${this.markers[this.marker].name} ]---\n`);
    }
    this.startVpn = vpn;
    this.cur = prot;
    this.eff = newEff;
    this.level = level;
  }

  /** dump_pagetables.c note_wx(): account the run's pages; WARN_ONCE on the first. */
  private noteWx(vpn: number): void {
    const npages = (vpn - this.startVpn + VPN_SPACE) % VPN_SPACE; // unsigned long arithmetic
    if (this.startVpn < this.kernelHalfVpn) {
      this.wxUserPages += npages;
      return;
    }
    if (this.wxPages === 0) this.wxMessages.push(`x86/mm: Found insecure W+X mapping at address 0x${vpnHex(this.startVpn)}`);
    this.wxPages += npages;
  }
}

function vpnHex(vpn: number): string {
  return vpn.toString(16).padStart(13, '0') + '000';
}

const UNITS = 'BKMGTPE';

/** One run as note_page() prints it: "0x%016lx-0x%016lx   %9lu%c " + printk_prot(). */
export function formatRun(startVpn: number, endVpn: number, prot: number, level: number): string {
  let delta = (BigInt((endVpn - startVpn + VPN_SPACE) % VPN_SPACE) << 12n) & ((1n << 64n) - 1n);
  let unit = 0;
  while ((delta & 1023n) === 0n && unit < UNITS.length - 1) {
    delta >>= 10n;
    unit++;
  }
  return `0x${vpnHex(startVpn)}-0x${vpnHex(endVpn)}   ${String(delta).padStart(9)}${UNITS[unit]} ${printkProt(prot, level)}`;
}

/** dump_pagetables.c printk_prot(): fixed-width flag columns, then the level name. */
export function printkProt(pr: number, level: number): string {
  let s: string;
  if ((pr & PROT_PRESENT) === 0) {
    s = '                              '; // not present: 30 blanks
  } else {
    s = (pr & PROT_USER ? 'USR ' : '    ')
      + (pr & PROT_RW ? 'RW ' : 'ro ')
      + (pr & PROT_PWT ? 'PWT ' : '    ')
      + (pr & PROT_PCD ? 'PCD ' : '    ')
      + (level <= 3 && pr & PROT_PSE ? 'PSE ' : '    ') // bit 7 is PSE above the PTE level
      + (level === 4 && pr & PROT_PSE ? 'PAT ' : '    ') // ... and PAT in a PTE
      + (pr & PROT_GLOBAL ? 'GLB ' : '    ')
      + (pr & PROT_NX ? 'NX ' : 'x  ');
  }
  return `${s}${LEVEL_NAMES[level]}\n`;
}

/** Dump the page table under `root` as the kernel would. */
export function ptdump(mem: PhysMemory, root: number, layout: KernelLayout, opts: PtdumpOptions = {}): PtdumpResult {
  const markers = opts.markers ?? addressMarkers(layout);
  const levels = layout.levels;
  const st = new PgState(markers, opts.text ?? true, opts.checkWx ?? true, opts.onRun, 2 ** 51);
  const topStride = levels === 5 ? 2 ** 36 : 2 ** 27; // pages per top-level entry
  const signExtend = VPN_SPACE - 512 * topStride; // bits 63:48 (63:57) set in the upper half
  // dump_pagetables.c ptdump_ranges[]: {0, PTRS_PER_PGD * PGD_LEVEL_MULT / 2} and
  // {GUARD_HOLE_END_ADDR, ~0UL}; the guard hole (pgd entries 256..271, pgtable_64_types.h
  // GUARD_HOLE_PGD_ENTRY -256, 16 entries) is never walked.
  const top = tableWords(mem, root);
  for (let i = 0; i < 512; i++) {
    if (i === 256) i = 272;
    const vpn = i * topStride + (i >= 256 ? signExtend : 0);
    const lo = top.words[top.base + i * 2];
    const hi = top.words[top.base + i * 2 + 1];
    if (levels === 5) {
      // pgd_none() is !val with 5 levels; pgd_bad() entries are cleared as holes.
      if ((lo | hi) === 0 || pgdBad(lo, hi)) {
        st.note(vpn, 0, 0, 0);
        continue;
      }
      st.effective(0, lo, hi);
      walkP4d(mem, st, nextTable(lo, hi), vpn);
    } else {
      // 4-level: pgd_none() is 0, p4d_offset() returns the pgd entry itself.
      st.effective(0, lo, hi);
      if ((lo & ~PROT_A_D) === 0 && hi === 0 || tableEntryBad(lo, hi)) {
        st.note(vpn, 0, 0, 0); // p4d hole at real_depth(1) = 0
        continue;
      }
      st.effective(1, lo, hi);
      walkPud(mem, st, nextTable(lo, hi), vpn);
    }
  }
  st.note(0, -1, 0, 0); // ptdump_walk_pgd(): "Flush out the last page"

  const wxMessages = st.wxMessages;
  if (st.checkWx) {
    wxMessages.push(st.wxPages
      ? `x86/mm: Checked W+X mappings: FAILED, ${st.wxPages} W+X pages found.`
      : 'x86/mm: Checked W+X mappings: passed, no W+X pages found.');
  }
  return { text: st.out.join(''), markers, wxPages: st.wxPages, wxUserPages: st.wxUserPages, wxMessages, runs: st.runs };
}

const KERNPG_TABLE = PROT_PRESENT | PROT_RW | PROT_A_D; // pgtable_types.h _KERNPG_TABLE

/**
 * p4d_bad() (pgtable.h): a table entry with flags beyond _KERNPG_TABLE | _PAGE_USER
 * (| _PAGE_NX with PTI). pagewalk.c clears such an entry and reports a hole.
 */
function tableEntryBad(lo: number, hi: number): boolean {
  return (packProt(lo, hi) & ~(KERNPG_TABLE | PROT_USER | PROT_NX)) !== 0;
}

/** pgd_bad() with 5 levels (pgtable.h): flags other than USER (and NX with PTI) must be exactly _KERNPG_TABLE. */
function pgdBad(lo: number, hi: number): boolean {
  return (packProt(lo, hi) & ~(PROT_USER | PROT_NX)) !== KERNPG_TABLE;
}

function nextTable(lo: number, hi: number): number {
  return (hi & 0x000fffff) * TWO32 + ((lo & 0xfffff000) >>> 0); // PTE_PFN_MASK: bits 51:12
}

interface Words {
  words: Uint32Array;
  base: number;
}

function tableWords(mem: PhysMemory, table: number): Words {
  const slot = mem.slot(Math.floor(table / 4096));
  return slot < 0 ? { words: ZERO_TABLE, base: 0 } : { words: mem.wordsOfSlot(slot), base: mem.wordBaseOfSlot(slot) };
}

function walkP4d(mem: PhysMemory, st: PgState, table: number, baseVpn: number): void {
  const t = tableWords(mem, table);
  for (let i = 0; i < 512; i++) {
    const lo = t.words[t.base + i * 2];
    const hi = t.words[t.base + i * 2 + 1];
    const vpn = baseVpn + i * 2 ** 27;
    if ((lo & ~PROT_A_D) === 0 && hi === 0 || tableEntryBad(lo, hi)) {
      st.note(vpn, 1, 0, 0);
      continue;
    }
    st.effective(1, lo, hi);
    walkPud(mem, st, nextTable(lo, hi), vpn); // p4d_leaf() is always false on x86
  }
}

function walkPud(mem: PhysMemory, st: PgState, table: number, baseVpn: number): void {
  const t = tableWords(mem, table);
  for (let i = 0; i < 512; i++) {
    const lo = t.words[t.base + i * 2];
    const hi = t.words[t.base + i * 2 + 1];
    const vpn = baseVpn + i * 2 ** 18;
    if ((lo & ~PROT_A_D) === 0 && hi === 0) { // pud_none()
      st.note(vpn, 2, 0, 0);
      continue;
    }
    st.effective(2, lo, hi);
    if ((lo & (PROT_PSE | PROT_PRESENT)) === (PROT_PSE | PROT_PRESENT)) { // pud_leaf(): PSE and P
      st.note(vpn, 2, lo, hi);
      continue;
    }
    if ((lo & PROT_PRESENT) === 0) continue; // !pud_present(): skipped, nothing noted
    walkPmd(mem, st, nextTable(lo, hi), vpn);
  }
}

function walkPmd(mem: PhysMemory, st: PgState, table: number, baseVpn: number): void {
  const t = tableWords(mem, table);
  for (let i = 0; i < 512; i++) {
    const lo = t.words[t.base + i * 2];
    const hi = t.words[t.base + i * 2 + 1];
    const vpn = baseVpn + i * 512;
    if ((lo & ~PROT_A_D) === 0 && hi === 0) { // pmd_none()
      st.note(vpn, 3, 0, 0);
      continue;
    }
    st.effective(3, lo, hi);
    if ((lo & PROT_PSE) !== 0) { // pmd_leaf() = pmd_large(): PSE alone
      st.note(vpn, 3, lo, hi);
      continue;
    }
    if ((lo & (PROT_PRESENT | PROT_GLOBAL)) === 0) continue; // !pmd_present(): P | PROTNONE | PSE
    walkPte(mem, st, nextTable(lo, hi), vpn);
  }
}

function walkPte(mem: PhysMemory, st: PgState, table: number, baseVpn: number): void {
  const t = tableWords(mem, table);
  for (let i = 0; i < 512; i++) {
    const lo = t.words[t.base + i * 2];
    const hi = t.words[t.base + i * 2 + 1];
    st.effective(4, lo, hi);
    st.note(baseVpn + i, 4, lo, hi); // every PTE is noted, present or not
  }
}
