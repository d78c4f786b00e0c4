/**
 * `kasi kernel`: boot the Linux 6.1 page-table model (src/linux/kernel.ts) and show it, dump
 * it as the kernel's ptdump would, or compare it with a captured kernel region by region.
 *
 *   kasi kernel --capture DIR [--compare [IMAGE]]    model of a captured boot, and the comparison
 *   kasi kernel [--system-map F] [--iomem F] [--la57] [--kaslr-seed N] [--pti on|off|auto]
 *   ... [--ptdump] [--json]
 *
 * With --compare the exit code is 0 only when every required item matches (1 otherwise).
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { loadPtImage } from '../../x86/ptimage.ts';
import { loadKallsyms } from '../../formats/kallsyms.ts';
import { loadIomem } from '../../formats/iomem.ts';
import { ptdump } from '../../report/ptdump.ts';
import { comparePtdumps, formatPtdumpCompare, type PtdumpCompare } from '../../report/ptdump-compare.ts';
import { parsePtdump } from '../../formats/ptdump.ts';
import { readTextMaybeGz } from '../../formats/files.ts';
import { formatSize } from '../../report/units.ts';
import { bootKernel, type KernelModel, type KernelOptions } from '../../linux/kernel.ts';
import { BootError } from '../../linux/boot-error.ts';
import { InputError } from '../../formats/files.ts';
import { imageSymbolsFromKallsyms } from '../../linux/image.ts';
import { modelFromCapture } from '../../linux/capture.ts';
import { compareKernels, formatCompare, markerLayout, type CompareResult } from '../../linux/compare.ts';
import type { PtiMode } from '../../linux/pti.ts';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';

interface Opts {
  capture?: string;
  systemMap?: string;
  iomem?: string;
  la57?: boolean;
  kaslrSeed?: string;
  pti?: string;
  cpus?: string;
  ptdump?: boolean;
  compare?: string | boolean;
  comparePtdump?: string;
  json?: boolean;
}

const hex = (v: bigint | number) => '0x' + (typeof v === 'bigint' ? BigInt.asUintN(64, v) : v).toString(16);

function overrides(o: Opts): KernelOptions {
  const k: KernelOptions = {};
  if (o.pti !== undefined) {
    if (o.pti !== 'on' && o.pti !== 'off' && o.pti !== 'auto') throw new UsageError(`--pti: expected on, off or auto, found ${JSON.stringify(o.pti)}`);
    k.pti = o.pti as PtiMode;
  }
  if (o.la57) { k.levels = 5; k.cpu = { la57: true }; }
  if (o.kaslrSeed !== undefined) {
    if (!/^\d{1,15}$/.test(o.kaslrSeed)) throw new UsageError(`--kaslr-seed: expected a non-negative integer, found ${JSON.stringify(o.kaslrSeed)}`);
    k.kaslr = { seed: Number(o.kaslrSeed) };
    k.seed = Number(o.kaslrSeed);
  }
  if (o.cpus !== undefined) {
    if (!/^\d{1,4}$/.test(o.cpus) || Number(o.cpus) < 1 || Number(o.cpus) > 8192) throw new UsageError(`--cpus: expected 1..8192, found ${JSON.stringify(o.cpus)}`);
    k.cpus = Number(o.cpus);
  }
  return k;
}

/** Boot without a capture; a boot the model cannot make names the option that caused it (linux/boot-error.ts). */
function bootOrExplain(opts: KernelOptions, o: Opts): KernelModel {
  try {
    return bootKernel(opts);
  } catch (err) {
    if (!(err instanceof BootError)) throw err;
    const ram = o.iomem ? `the RAM of ${o.iomem}` : 'the built-in 512 MiB of RAM (QEMU -m 512M; give --iomem with more)';
    if (o.iomem && err.input === 'ram') throw new InputError(o.iomem, `cannot boot the kernel in its RAM: ${err.message}`);
    throw new UsageError(`cannot boot the kernel${o.cpus ? ` with --cpus ${o.cpus}` : ''} in ${ram}: ${err.message}`);
  }
}

/** The text report of a model and its input notes (exported for tests). */
export function summary(m: KernelModel, notes: string[]): string {
  const a = m.layout.addrs;
  const lines = [
    `Linux 6.1 x86-64 page tables (model): ${m.levels}-level paging, KASLR ${m.layout.kaslr ? 'on' : 'off'}, ${m.cpus} CPU(s)`,
    `  page_offset_base ${hex(a.page_offset_base)}  vmalloc_base ${hex(a.vmalloc_base)}  vmemmap_base ${hex(a.vmemmap_base)}`,
    `  _text ${hex(m.sections.text)} at ${hex(m.sections.text - a.__START_KERNEL_map + m.physBase)} (phys_base ${hex(m.physBase)})`,
    `  KPTI ${m.pti.enabled ? 'on' : 'off'} (pti=${m.pti.mode}${m.pti.enabled ? `, kernel text ${m.pti.kernelImageGlobal ? 'global and mapped in the user copy' : 'non-global, entry text only in the user copy'}` : ''}); vsyscall=${m.vsyscall}`,
    `  kernel root (init_top_pgt) ${hex(m.kernelRoot)}${m.userRoot !== null ? `, user root ${hex(m.userRoot)}` : ''}`,
    `  DirectMap4k ${m.stats.directMap.k4 / 1024} kB, DirectMap2M ${m.stats.directMap.m2 / 1024} kB, DirectMap1G ${m.stats.directMap.g1 / 1024} kB`,
    `  large pages split by set_memory_*(): ${m.stats.splits.pmd} PMD, ${m.stats.splits.pud} PUD (${m.stats.cpaCalls} calls)`,
    `  paging-structure pages: ${m.stats.tablePages} (${formatSize(m.stats.tableBytes)})`,
  ];
  for (const [name, t] of Object.entries(m.stats.tables)) {
    const parts = Object.entries(t).map(([r, n]) => `${r} ${n}`).join(', ');
    if (parts) lines.push(`    ${name} root: ${parts}`);
  }
  if (m.espfix) lines.push(`  ESPFIX page_random ${m.espfix.page}, stack page(s) ${m.espfix.stackPa.map(hex).join(', ')}`);
  lines.push(`  per-CPU area(s) ${m.perCpuPa.map(hex).join(', ')}; cpu_entry_area slot(s) ${m.ceaSlots.join(', ')}`);
  for (const n of notes) lines.push(`  input: ${n}`);
  return lines.join('\n') + '\n';
}

function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? hex(v) : v;
}

export function registerKernel(program: Command): void {
  program
    .command('kernel')
    .description("build the Linux kernel's page tables as the 6.1 kernel does at boot, and compare them with a captured kernel")
    .option('--capture <dir>', 'a capture directory (kallsyms.txt.gz, iomem.txt, config.gz, cmdline.txt, kernel.json.gz)')
    .option('--system-map <file>', 'System.map or /proc/kallsyms for the image layout (default: the built-in Debian 6.1 profile)')
    .option('--iomem <file>', '/proc/iomem for RAM, the image placement and the APICs (default: QEMU -m 512M)')
    .option('--la57', '5-level paging')
    .option('--kaslr-seed <n>', 'randomize the layout (memory KASLR, ESPFIX, cpu_entry_area) with this seed')
    .option('--pti <mode>', 'on, off or auto (default: from the command line; auto)')
    .option('--cpus <n>', 'possible CPUs (default 1, or what the capture shows)')
    .option('--ptdump', "print the model's tables in the kernel's ptdump format")
    .option('--compare [image]', 'compare with a captured kernel .json.gz (default: the capture directory\'s kernel.json.gz)')
    .option('--compare-ptdump <file>', "compare, region by region, with a real kernel's /sys/kernel/debug/page_tables/ file (current_user: the user tables)")
    .option('--json', 'JSON instead of text')
    .action((o: Opts) => {
      const over = overrides(o);
      let model: KernelModel;
      let notes: string[] = [];
      // --system-map and --iomem are read (a missing file is an error) and override the capture's own.
      if (o.systemMap) over.symbols = imageSymbolsFromKallsyms(loadKallsyms(o.systemMap));
      if (o.iomem) over.iomem = loadIomem(o.iomem);
      if (o.capture) {
        const cm = modelFromCapture(o.capture, over);
        model = cm.model;
        notes = cm.notes;
        if (o.systemMap) notes.push(`image symbols: ${o.systemMap} (--system-map, instead of the capture's)`);
        if (o.iomem) notes.push(`RAM, image placement, APICs: ${o.iomem} (--iomem, instead of the capture's)`);
      } else {
        model = bootOrExplain(over, o);
      }
      let result: CompareResult | null = null;
      if (o.compare !== undefined) {
        const file = typeof o.compare === 'string' ? o.compare : o.capture ? join(o.capture, 'kernel.json.gz') : undefined;
        if (!file) throw new UsageError('--compare: give the capture .json.gz, or use --capture DIR');
        const img = loadPtImage(file);
        if (img.paging_levels !== model.levels) throw new UsageError(`--compare: the capture uses ${img.paging_levels}-level paging, the model ${model.levels}-level (use --la57 or --capture)`);
        const ur = img.roots.user;
        result = compareKernels(model.layout,
          { kernel: { mem: model.mem, root: model.kernelRoot, levels: model.levels }, user: model.userRoot === null ? null : { mem: model.mem, root: model.userRoot, levels: model.levels }, imageEnd: model.sections.end },
          { kernel: { mem: img.mem, root: img.roots.kernel, levels: img.paging_levels }, user: ur === undefined ? null : { mem: img.mem, root: ur, levels: img.paging_levels } });
      }
      const ptc = o.comparePtdump === undefined ? null : compareWithPtdump(model, o.comparePtdump);
      if (o.json) {
        const out = {
          levels: model.levels, kaslr: model.layout.kaslr, pti: model.pti, vsyscall: model.vsyscall, cpus: model.cpus,
          addrs: model.layout.addrs, kernelRoot: model.kernelRoot, userRoot: model.userRoot, stats: model.stats,
          espfix: model.espfix, perCpuPa: model.perCpuPa, ceaSlots: model.ceaSlots, notes, compare: result,
          ...(ptc === null ? {} : { comparePtdump: ptc }),
        };
        writeOutput(JSON.stringify(out, jsonReplacer, 2) + '\n');
      } else {
        let text = summary(model, notes);
        if (o.ptdump) {
          const roots: Array<[string, number]> = [['kernel', model.kernelRoot]];
          if (model.userRoot !== null) roots.push(['user', model.userRoot]);
          for (const [name, root] of roots) {
            const d = ptdump(model.mem, root, markerLayout(model.layout));
            text += `\n# ${name} root ${hex(root)}\n${d.text}${d.wxMessages.join('\n')}\n`;
          }
        }
        if (result) text += '\n' + formatCompare(result) + '\n';
        if (ptc !== null) text += '\n' + formatPtdumpCompare(ptc, o.comparePtdump!) + '\n';
        writeOutput(text);
      }
      if ((result && !result.ok) || (ptc !== null && !ptc.ok)) process.exitCode = 1;
    });
}

/** The model's tables (the user copy for a current_user file) against a real kernel's ptdump file. */
function compareWithPtdump(model: KernelModel, file: string): PtdumpCompare {
  const real = parsePtdump(readTextMaybeGz(file), file);
  const user = /current_user/.test(file);
  if (user && model.userRoot === null) throw new UsageError('--compare-ptdump: a current_user dump, but the model has no KPTI user tables (use --pti on)');
  const root = user ? model.userRoot! : model.kernelRoot;
  return comparePtdumps(parsePtdump(ptdump(model.mem, root, markerLayout(model.layout)).text, 'model'), real);
}
