/**
 * `kasi ptdump IMAGE [--root …]`: a captured page table as Linux 6.1 prints it in
 * /sys/kernel/debug/page_tables/ (arch/x86/mm/dump_pagetables.c over mm/ptdump.c), with the
 * region markers filled from the capture's `kernel_values`. The kernel's W+X check runs over
 * the same walk; its messages go to stderr, as the kernel's go to the log and not to the dump.
 */
import type { Command } from 'commander';
import { loadPtImage } from '../../x86/ptimage.ts';
import { layoutFromKernelValues } from '../../report/markers.ts';
import { ptdump } from '../../report/ptdump.ts';
import { resolveRoot, writeOutput } from './mappings.ts';

export function registerPtdump(program: Command): void {
  program
    .command('ptdump')
    .description("dump a captured page table in the format of Linux's kernel_page_tables, with its W+X check")
    .argument('<image>', 'a capture .json.gz (format x86-pt-oracle/1)')
    .option('--root <root>', 'kernel, user, or the 0x physical address of a top-level table (default: the root CR3 held)')
    .action((image: string, opts: { root?: string }) => {
      const img = loadPtImage(image);
      const { root } = resolveRoot(img, opts.root);
      const result = ptdump(img.mem, root, layoutFromKernelValues(img.paging_levels, img.kernel_values));
      writeOutput(result.text);
      process.stderr.write(result.wxMessages.join('\n') + '\n');
    });
}
