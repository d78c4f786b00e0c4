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
import { loadPtImage } from '../../x86/ptimage.ts';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE } from '../../x86/bits.ts';
import { Translation, vaHalves, walkFrom } from '../../x86/walk.ts';
import { parseVa, resolveRoot, translationJson, translationText } from '../../report/translation.ts';

export { ENTRY_NAMES, parseVa } from '../../report/translation.ts';

const ACCESS: Record<string, number> = { read: ACCESS_READ, write: ACCESS_WRITE, exec: ACCESS_FETCH };
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
    out.push(opts.json ? JSON.stringify(translationJson(va, name, t)) : translationText(va, t));
  }
  return out;
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
