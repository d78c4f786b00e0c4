/**
 * `kasi mappings IMAGE [--root kernel|user|0xADDR] [--json]`: every present leaf of one root
 * of a capture, in exactly QEMU's `info tlb` text (or as JSON lines). For the capture's active
 * root the text equals the `<snap>.tlb.txt.gz` QEMU printed (without its CRs).
 */
import type { Command } from 'commander';
import { InputError, loadPtImage, type PtImage } from '../../x86/ptimage.ts';
import { infoTlbChunks, mappingsJsonChunks } from '../../report/infotlb.ts';

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

/**
 * Write a command's whole output. A reader that stops early (`| head`) closes the pipe:
 * that ends the command quietly (exit 0), as it does for cat, not with an EPIPE trace.
 */
export function writeOutput(text: string): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  process.stdout.write(text);
}

export function registerMappings(program: Command): void {
  program
    .command('mappings')
    .description("list every present leaf of a captured page table, exactly as QEMU's `info tlb` prints it")
    .argument('<image>', 'a capture .json.gz (format x86-pt-oracle/1)')
    .option('--root <root>', 'kernel, user, or the 0x physical address of a top-level table (default: the root CR3 held)')
    .option('--json', 'JSON lines {"va","pa","size","flags"} instead of text')
    .action((image: string, opts: { root?: string; json?: boolean }) => {
      const img = loadPtImage(image);
      const { root } = resolveRoot(img, opts.root);
      const chunks = opts.json
        ? mappingsJsonChunks(img.mem, root, img.paging_levels)
        : infoTlbChunks(img.mem, root, img.paging_levels);
      writeOutput(chunks.join(''));
    });
}
