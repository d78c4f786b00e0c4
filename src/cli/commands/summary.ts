/**
 * `kasi summary` (what `npm start` runs until the scenario engine lands): loads the
 * built-in capture of a real Linux 6.1 kernel and prints, per root, how much is mapped
 * and how, walked leaf by leaf with the MMU's enumerator.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPtImage } from '../../x86/ptimage.ts';
import { forEachLeaf } from '../../x86/leaves.ts';
import { formatSize } from '../../report/units.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** The capture shipped with the tests, else the shared fixtures beside the checkout. */
export function defaultCaptureDir(name = 'la48-pti-nokaslr'): string {
  const candidates = [
    resolve(here, '../../../test/fixtures/captures', name),
    resolve(here, '../../../../shared/fixtures/captures', name),
  ];
  for (const c of candidates) if (existsSync(join(c, 'kernel.json.gz'))) return c;
  throw new Error(`no built-in capture ${name} found (looked in ${candidates.join(', ')})`);
}

export function registerSummary(program: Command): void {
  program
    .command('summary')
    .description("summarise the address spaces of a captured kernel (default: the built-in Linux 6.1 capture)")
    .argument('[image]', 'a capture .json.gz (default: the built-in kernel.json.gz)')
    .action((image?: string) => {
      const file = image ?? join(defaultCaptureDir(), 'kernel.json.gz');
      const img = loadPtImage(file);
      console.log(`capture: ${file}`);
      if (img.kernel) console.log(`kernel:  ${img.kernel.uname}\ncmdline: ${img.kernel.cmdline}`);
      console.log(`paging:  ${img.paging_levels}-level, KPTI ${img.pti ? 'on' : 'off'}, CR3 on the ${img.active_root} root`);
      for (const [name, root] of Object.entries(img.roots)) {
        let userBytes = 0, kernBytes = 0, leaves = 0;
        const bySize = new Map<number, number>();
        forEachLeaf(img.mem, root, img.paging_levels, (_lo, vaHi, shift, _pa, _elo, _ehi) => {
          leaves++;
          const size = 2 ** shift;
          if (vaHi >= 0x80000000) kernBytes += size; else userBytes += size;
          bySize.set(shift, (bySize.get(shift) ?? 0) + 1);
        });
        const sizes = [...bySize].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${n} x ${formatSize(2 ** s)}`).join(', ');
        console.log(`  ${name.padEnd(6)} root 0x${root.toString(16)}: ${leaves} leaves (${sizes}); user half ${formatSize(userBytes)}, kernel half ${formatSize(kernBytes)} mapped`);
      }
    });
}
