/**
 * `kasi mappings IMAGE [--root kernel|user|0xADDR] [--json]`: every present leaf of one root
 * of a capture, in exactly QEMU's `info tlb` text (or as JSON lines). For the capture's active
 * root the text equals the `<snap>.tlb.txt.gz` QEMU printed (without its CRs).
 */
import type { Command } from 'commander';
import { loadPtImage } from '../../x86/ptimage.ts';
import { resolveRoot } from '../../report/translation.ts';
import { infoTlbChunks, mappingsJsonChunks } from '../../report/infotlb.ts';

export { resolveRoot } from '../../report/translation.ts';

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
