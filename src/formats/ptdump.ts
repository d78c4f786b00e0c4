/**
 * Reader of the kernel's page-table dump, /sys/kernel/debug/page_tables/{kernel,current_kernel,
 * current_user,efi} (arch/x86/mm/dump_pagetables.c; kasi prints the same, report/ptdump.ts):
 *  - "---[ NAME ]---" opens a region (the address_markers[] of dump_pagetables.c);
 *  - note_page() prints a run "0x%016lx-0x%016lx   %9lu%c " (start, end exclusive, size with a
 *    unit of B K M G T P E; 32-bit kernels "0x%08lx") then printk_prot(): the flag columns
 *    USR, RW|ro, PWT, PCD, PSE (above the PTE level) or PAT (in a PTE), GLB, NX|x — all blank
 *    when not present — and the level name pgd, p4d, pud, pmd or pte;
 *  - "... N entries skipped ... " where a marker caps its lines (the ESPfix area).
 * Plain data out: addresses as the hex text printed, sizes in bytes as decimal strings.
 */
import type { Skipped } from './profile.ts';
import { MAX_LINE, SkipList, elision, noTable, textLines } from './text.ts';

export interface PtdumpRange {
  start: string;
  end: string;
  /** Bytes, as a decimal string (the user half is 2^47 and more). */
  bytes: string;
  /** Flag columns as printed (USR, RW, ro, PWT, PCD, PSE, PAT, GLB, NX, x); empty when not present. */
  flags: string[];
  present: boolean;
  level: 'pgd' | 'p4d' | 'pud' | 'pmd' | 'pte';
  line: number;
}

export interface PtdumpRegion {
  /** The marker's name; null for runs before the first marker. */
  name: string | null;
  line: number;
  ranges: PtdumpRange[];
  /** "... N entries skipped ..." lines. */
  skippedEntries: number;
}

export interface Ptdump {
  regions: PtdumpRegion[];
  skipped: Skipped[];
}

const EXPECTED = 'the kernel\'s page-table dump ("---[ User Space ]---" markers, "0x...-0x...  4K  RW  NX pte" runs)';
const MARKER = /^---\[ (.*) \]---$/;
const RUN = /^0x([0-9a-fA-F]{8,16})-0x([0-9a-fA-F]{8,16})\s+(\d{1,20})([BKMGTPE])(?:\s+(.*?))?\s+(pgd|p4d|pud|pmd|pte)$/;
const SKIP = /^\.\.\. (\d+) entr(?:y|ies) skipped \.\.\.$/;
const FLAGS = new Set(['USR', 'RW', 'ro', 'PWT', 'PCD', 'PSE', 'PAT', 'GLB', 'NX', 'x']);
const UNIT_SHIFT: Readonly<Record<string, bigint>> = { B: 0n, K: 10n, M: 20n, G: 30n, T: 40n, P: 50n, E: 60n };

export function parsePtdump(text: string, file: string): Ptdump {
  const lines = textLines(text, file);
  const skipped = new SkipList();
  const regions: PtdumpRegion[] = [];
  let region: PtdumpRegion | null = null;
  let runs = 0;

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    if (t === '') continue;
    if (raw.length > MAX_LINE) { skipped.add(i + 1, 'line too long'); continue; }
    const m = MARKER.exec(t);
    if (m !== null) {
      region = { name: m[1], line: i + 1, ranges: [], skippedEntries: 0 };
      regions.push(region);
      continue;
    }
    const s = SKIP.exec(t);
    if (s !== null && region !== null) { region.skippedEntries += Number(s[1]); continue; }
    const r = RUN.exec(t);
    if (r === null) { skipped.add(i + 1, elision(t) ?? 'not a ptdump line'); continue; }
    const flags = r[5] === undefined ? [] : r[5].split(/\s+/).filter((f) => f !== '');
    if (!flags.every((f) => FLAGS.has(f))) { skipped.add(i + 1, `unknown flag ${JSON.stringify(flags.find((f) => !FLAGS.has(f)))}`); continue; }
    if (region === null) {
      region = { name: null, line: i + 1, ranges: [], skippedEntries: 0 };
      regions.push(region);
    }
    region.ranges.push({
      start: `0x${r[1].toLowerCase()}`,
      end: `0x${r[2].toLowerCase()}`,
      bytes: (BigInt(r[3]) << UNIT_SHIFT[r[4]]).toString(),
      flags,
      present: flags.length > 0,
      level: r[6] as PtdumpRange['level'],
      line: i + 1,
    });
    runs++;
  }
  if (runs === 0 && regions.length === 0) throw noTable(file, lines, EXPECTED);
  return { regions, skipped: skipped.done() };
}
