/**
 * One translation as `kasi translate` prints it (text or a JSON line), and the capture root a
 * name picks; shared by the CLI (cli/commands/translate.ts, mappings.ts, ptdump.ts) and the web
 * server's page-walk explorer (web/server/walk.ts), so both give the same answer for one VA.
 * `entryBits()` decodes one paging-structure entry bit by bit (SDM Vol. 3A 4.5, tables 4-14..4-19).
 */
import { InputError, type PtImage } from '../x86/ptimage.ts';
import { PFEC_ID, PFEC_P, PFEC_PK, PFEC_RSVD, PFEC_U, PFEC_W, VECTOR_GP } from '../x86/bits.ts';
import type { Translation } from '../x86/walk.ts';
import { formatSize } from './units.ts';

/** Names of the paging-structure entry at each level (SDM 4.5). */
export const ENTRY_NAMES = ['', 'PTE', 'PDE', 'PDPTE', 'PML4E', 'PML5E'];
/** #PF error-code bits in SDM 4.7 order. */
export const PFEC_BITS: [string, number][] = [['P', PFEC_P], ['W', PFEC_W], ['U', PFEC_U], ['RSVD', PFEC_RSVD], ['ID', PFEC_ID], ['PK', PFEC_PK]];

export const hex16 = (v: bigint | number): string => '0x' + BigInt(v).toString(16).padStart(16, '0');

/** A VA as typed: hex with or without 0x, at most 16 digits. */
export function parseVa(file: string, text: string): bigint {
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(text)) {
    throw new InputError(file, `bad virtual address "${text}": expected at most 16 hex digits, e.g. 0xffffffff81000000`);
  }
  return BigInt(text.startsWith('0x') ? text : '0x' + text);
}

/**
 * The root table named by `spec`: a root name of the capture (`kernel`, `user`), or the
 * physical address of a page the capture lists in `page_table_levels` as a top-level table.
 * Default: the active root (the one CR3 held).
 */
export function resolveRoot(img: PtImage, spec: string | undefined): { name: string; root: number } {
  if (spec === undefined) return { name: img.active_root, root: img.roots[img.active_root] };
  if (Object.hasOwn(img.roots, spec)) return { name: spec, root: img.roots[spec] };
  const names = Object.keys(img.roots).join(', ');
  if (!/^0x[0-9a-fA-F]{1,13}$/.test(spec)) {
    throw new InputError(img.file, `unknown root "${spec}": expected ${names} or the 0x address of a top-level table`);
  }
  const root = Number(BigInt(spec));
  const level = img.pageLevels.get(root);
  if (level !== img.paging_levels) {
    const what = level === undefined ? 'is not a paging-structure page of this capture' : `is a level-${level} table, not a top-level (level-${img.paging_levels}) table`;
    throw new InputError(img.file, `root ${spec} ${what} (roots: ${names})`);
  }
  const named = Object.entries(img.roots).find(([, r]) => r === root);
  return { name: named ? named[0] : spec, root };
}

function leafValue(t: Translation): bigint {
  return (BigInt(t.leafHi >>> 0) << 32n) | BigInt(t.leafLo >>> 0);
}

export function translationText(va: bigint, t: Translation): string {
  if (t.ok) {
    return `${hex16(va)} -> ${hex16(t.pa)}  ${formatSize(2 ** t.pageShift)} page, leaf ${ENTRY_NAMES[t.level]} (level ${t.level}) = ${hex16(leafValue(t))}`
      + `  U=${+t.user} W=${+t.writable} XD=${+t.executeDisable} pkey=${t.pkey}`;
  }
  const where = `at level ${t.level} (${ENTRY_NAMES[t.level]})`;
  if (t.vector === VECTOR_GP) return `${hex16(va)} -> #GP error 0x0 (non-canonical address) ${where}`;
  const bits = PFEC_BITS.map(([n, b]) => `${n}=${t.errorCode & b ? 1 : 0}`).join(' ');
  return `${hex16(va)} -> #PF error 0x${t.errorCode.toString(16)} (${bits}) ${where}`;
}

/** The JSON object of `kasi translate --json` for one VA. */
export function translationJson(va: bigint, root: string, t: Translation): Record<string, unknown> {
  if (t.ok) {
    return {
      va: hex16(va), root, ok: true, pa: hex16(t.pa), page_size: 2 ** t.pageShift, level: t.level,
      entry: ENTRY_NAMES[t.level], leaf: hex16(leafValue(t)), user: t.user, writable: t.writable,
      xd: t.executeDisable, pkey: t.pkey,
    };
  }
  const bits = Object.fromEntries(PFEC_BITS.map(([n, b]) => [n, t.errorCode & b ? 1 : 0]));
  return {
    va: hex16(va), root, ok: false, vector: t.vector === VECTOR_GP ? '#GP' : '#PF',
    error_code: '0x' + t.errorCode.toString(16), bits, level: t.level, entry: ENTRY_NAMES[t.level],
  };
}

/** One field of a paging-structure entry: its bit position(s) and value. */
export interface EntryField { readonly name: string; readonly bits: string; readonly value: string }

/**
 * The fields of a present or not-present entry at `level`, SDM Vol. 3A 4.5 tables 4-15..4-20
 * (4-level / 5-level paging): P, R/W, U/S, PWT, PCD, A, D and PS/PAT where they exist, G in a
 * leaf, the address bits, the protection key (bits 62:59 of a leaf) and XD (bit 63).
 */
export function entryBits(value: bigint, level: number): EntryField[] {
  const bit = (n: number): string => String((value >> BigInt(n)) & 1n);
  if ((value & 1n) === 0n) return [{ name: 'P', bits: '0', value: '0 (not present: the other bits are ignored)' }];
  const ps = level === 2 || level === 3 ? (value >> 7n) & 1n : 0n;
  const leaf = level === 1 || ps === 1n;
  const f: EntryField[] = [
    { name: 'P', bits: '0', value: bit(0) }, { name: 'R/W', bits: '1', value: bit(1) }, { name: 'U/S', bits: '2', value: bit(2) },
    { name: 'PWT', bits: '3', value: bit(3) }, { name: 'PCD', bits: '4', value: bit(4) }, { name: 'A', bits: '5', value: bit(5) },
  ];
  if (leaf) f.push({ name: 'D', bits: '6', value: bit(6) });
  if (level === 1) f.push({ name: 'PAT', bits: '7', value: bit(7) });
  else if (level === 2 || level === 3) f.push({ name: 'PS', bits: '7', value: bit(7) });
  if (leaf) f.push({ name: 'G', bits: '8', value: bit(8) });
  if (leaf && level > 1) f.push({ name: 'PAT', bits: '12', value: bit(12) });
  const low = leaf ? (level === 1 ? 12 : level === 2 ? 21 : 30) : 12;
  const addr = value & (((1n << 52n) - 1n) & ~((1n << BigInt(low)) - 1n));
  f.push({ name: leaf ? 'page frame' : 'next table', bits: `51:${low}`, value: hex16(addr) });
  if (leaf) f.push({ name: 'PK', bits: '62:59', value: String((value >> 59n) & 15n) });
  f.push({ name: 'XD', bits: '63', value: bit(63) });
  return f;
}
