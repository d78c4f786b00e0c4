/**
 * `kasi translate IMAGE VA... [--root …] [--access read|write|exec] [--user] [--cr4 0x…] [--json]`:
 * walk each virtual address through a captured page table with the MMU model and print the
 * translation, or the exception it raises (#PF with its error code spelled out, or #GP for a
 * non-canonical address). A fault is an answer (exit 0); only unparseable input exits 2.
 *
 * The CPU state is the capture's CR0/CR3/CR4/EFER at CPL 0, or CPL 3 with --user (RFLAGS.AC=0,
 * so SMAP applies to supervisor data accesses to user pages). The walk sets A/D bits in the
 * loaded copy of memory, as the hardware would.
 */
import type { Command } from 'commander';
import { InputError, loadPtImage } from '../../x86/ptimage.ts';
import { UsageError } from '../usage.ts';
import { resolveRoot, writeOutput } from './mappings.ts';
import {
  ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, PFEC_ID, PFEC_P, PFEC_PK, PFEC_RSVD, PFEC_U, PFEC_W, VECTOR_GP,
} from '../../x86/bits.ts';
import { Translation, vaHalves, walkFrom } from '../../x86/walk.ts';
import { formatSize } from '../../report/units.ts';

const ACCESS: Record<string, number> = { read: ACCESS_READ, write: ACCESS_WRITE, exec: ACCESS_FETCH };
/** Names of the paging-structure entry at each level (SDM 4.5). */
export const ENTRY_NAMES = ['', 'PTE', 'PDE', 'PDPTE', 'PML4E', 'PML5E'];
/** #PF error-code bits in SDM 4.7 order. */
const PFEC_BITS: [string, number][] = [['P', PFEC_P], ['W', PFEC_W], ['U', PFEC_U], ['RSVD', PFEC_RSVD], ['ID', PFEC_ID], ['PK', PFEC_PK]];

const hex16 = (v: bigint | number): string => '0x' + BigInt(v).toString(16).padStart(16, '0');

/** A VA as typed: hex with or without 0x, at most 16 digits. */
export function parseVa(file: string, text: string): bigint {
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(text)) {
    throw new InputError(file, `bad virtual address "${text}": expected at most 16 hex digits, e.g. 0xffffffff81000000`);
  }
  return BigInt(text.startsWith('0x') ? text : '0x' + text);
}

export interface TranslateOpts {
  root?: string;
  access?: string;
  user?: boolean;
  cr4?: string;
  json?: boolean;
}

/** The report lines for each VA (text or JSON); exported for tests. */
export function translateImage(image: string, vas: string[], opts: TranslateOpts): string[] {
  const access = ACCESS[opts.access ?? 'read'];
  if (access === undefined) throw new UsageError(`--access: expected read, write or exec, found "${opts.access}"`);
  let cr4: bigint | undefined;
  if (opts.cr4 !== undefined) {
    if (!/^0x[0-9a-fA-F]{1,16}$/.test(opts.cr4)) throw new UsageError(`--cr4: expected a 0x hex value, found "${opts.cr4}"`);
    cr4 = BigInt(opts.cr4);
  }
  const img = loadPtImage(image);
  const parsed = vas.map((v) => parseVa(image, v)); // all input checked before any output
  const { name, root } = resolveRoot(img, opts.root);
  const cpu = img.cpu;
  cpu.load({ cpl: opts.user ? 3 : 0, ...(cr4 !== undefined ? { cr4 } : {}) });
  const t = new Translation();
  const out: string[] = [];
  for (const va of parsed) {
    const { lo, hi } = vaHalves(va);
    walkFrom(img.mem, cpu, root, lo, hi, access, t);
    out.push(opts.json ? jsonLine(va, name, t) : textLine(va, t));
  }
  return out;
}

function leafValue(t: Translation): bigint {
  return (BigInt(t.leafHi >>> 0) << 32n) | BigInt(t.leafLo >>> 0);
}

function textLine(va: bigint, t: Translation): string {
  if (t.ok) {
    return `${hex16(va)} -> ${hex16(t.pa)}  ${formatSize(2 ** t.pageShift)} page, leaf ${ENTRY_NAMES[t.level]} (level ${t.level}) = ${hex16(leafValue(t))}`
      + `  U=${+t.user} W=${+t.writable} XD=${+t.executeDisable} pkey=${t.pkey}`;
  }
  const where = `at level ${t.level} (${ENTRY_NAMES[t.level]})`;
  if (t.vector === VECTOR_GP) return `${hex16(va)} -> #GP error 0x0 (non-canonical address) ${where}`;
  const bits = PFEC_BITS.map(([n, b]) => `${n}=${t.errorCode & b ? 1 : 0}`).join(' ');
  return `${hex16(va)} -> #PF error 0x${t.errorCode.toString(16)} (${bits}) ${where}`;
}

function jsonLine(va: bigint, root: string, t: Translation): string {
  if (t.ok) {
    return JSON.stringify({
      va: hex16(va), root, ok: true, pa: hex16(t.pa), page_size: 2 ** t.pageShift, level: t.level,
      entry: ENTRY_NAMES[t.level], leaf: hex16(leafValue(t)), user: t.user, writable: t.writable,
      xd: t.executeDisable, pkey: t.pkey,
    });
  }
  const bits = Object.fromEntries(PFEC_BITS.map(([n, b]) => [n, t.errorCode & b ? 1 : 0]));
  return JSON.stringify({
    va: hex16(va), root, ok: false, vector: t.vector === VECTOR_GP ? '#GP' : '#PF',
    error_code: '0x' + t.errorCode.toString(16), bits, level: t.level, entry: ENTRY_NAMES[t.level],
  });
}

export function registerTranslate(program: Command): void {
  program
    .command('translate')
    .description('translate virtual addresses through a captured page table, or show the fault they raise')
    .argument('<image>', 'a capture .json.gz (format x86-pt-oracle/1)')
    .argument('<va...>', 'virtual addresses in hex (0xffffffff81000000)')
    .option('--root <root>', 'kernel, user, or the 0x physical address of a top-level table (default: the root CR3 held)')
    .option('--access <kind>', 'read, write or exec', 'read')
    .option('--user', 'access from user mode (CPL 3); default supervisor (CPL 0)')
    .option('--cr4 <value>', "override the capture's CR4 (hex)")
    .option('--json', 'one JSON object per address')
    .action((image: string, vas: string[], opts: TranslateOpts) => {
      writeOutput(translateImage(image, vas, opts).join('\n') + '\n');
    });
}
