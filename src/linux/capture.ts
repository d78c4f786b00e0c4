/**
 * Build the kernel model from a capture directory (test/fixtures/captures/<name>/):
 * kallsyms.txt.gz (image symbols), iomem.txt (RAM, image placement, APICs), config.gz
 * (Kconfig), cmdline.txt (pti=, vsyscall=, nokaslr, ...), cpuinfo.txt (CPU features), and when
 * present kernel.json.gz for what a boot draws at random or allocates dynamically: the paging
 * depth, the KASLR bases, the ESPFIX window and stack page, the per-CPU areas and their
 * cpu_entry_area slots. Every value taken from the captured page tables is listed in `notes`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, loadPtImage, type PtImage } from '../x86/ptimage.ts';
import { loadKallsyms, readTextMaybeGz } from '../formats/kallsyms.ts';
import { loadIomem } from '../formats/iomem.ts';
import { loadKconfig } from '../formats/kconfig.ts';
import { layoutConfigFromKconfig } from './kconfig-layout.ts';
import { parseCmdline, hasParam } from '../formats/cmdline.ts';
import { CmdlineError, parseMitigationCmdline } from '../mitigations/cmdline.ts';
import { BootError, type BootInput } from './boot-error.ts';
import { forEachLeaf } from '../x86/leaves.ts';
import { CPU_ENTRY_AREA_BASE } from './kaslr.ts';
import { ESPFIX_BASE_ADDR } from './layout.ts';
import { imageSymbolsFromKallsyms, type ImageSymbols } from './image.ts';
import { CEA } from './fixed.ts';
import { bootKernel, kernelConfigFromKconfig, type CpuModel, type KernelModel, type KernelOptions } from './kernel.ts';
import type { KaslrOption } from './layout.ts';

export interface CaptureModel {
  model: KernelModel;
  /** The captured page tables, when the directory has kernel.json.gz. */
  image: PtImage | null;
  dir: string;
  /** Where each input came from. */
  notes: string[];
}

function firstExisting(dir: string, names: string[]): string | null {
  for (const n of names) if (existsSync(join(dir, n))) return join(dir, n);
  return null;
}

/** CPU features from /proc/cpuinfo (the first processor's flags, vendor, family and bugs lines). */
export function cpuFromCpuinfo(text: string): Partial<CpuModel> {
  const field = (k: string) => text.split('\n').find((l) => l.split(':')[0]?.trim() === k)?.split(':').slice(1).join(':').trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/).filter(Boolean));
  const bugs = new Set((field('bugs') ?? '').split(/\s+/).filter(Boolean));
  const vendorId = field('vendor_id');
  const out: Partial<CpuModel> = {};
  if (vendorId) out.vendor = vendorId === 'GenuineIntel' ? 'intel' : vendorId === 'AuthenticAMD' ? 'amd' : vendorId === 'HygonGenuine' ? 'hygon' : 'other';
  const fam = field('cpu family');
  if (fam && /^\d+$/.test(fam)) out.family = Number(fam);
  if (flags.size > 0) {
    out.pse = flags.has('pse');
    out.pge = flags.has('pge');
    out.gbpages = flags.has('pdpe1gb');
    out.nx = flags.has('nx');
    out.pcid = flags.has('pcid');
    out.la57 = flags.has('la57');
    out.x2apic = flags.has('x2apic');
    out.dtes64 = flags.has('dtes64');
  }
  if (field('bugs') !== undefined) out.meltdown = bugs.has('cpu_meltdown');
  return out;
}

/** What the captured kernel root says about ESPFIX: page_random and the stack page of each espfix page in use. */
export function espfixFromCapture(img: PtImage, root: number): { page: number; stackPa: bigint[] } | null {
  const base = ESPFIX_BASE_ADDR;
  const pages = new Map<number, bigint>();
  const lo = Number(base >> 12n);
  const hi = lo + 2 ** 27; // one P4D: 512 GiB
  forEachLeaf(img.mem, root, img.paging_levels, (vaLo, vaHi, shift, pa) => {
    const vpn = ((vaHi >>> 0) * 4294967296 + (vaLo >>> 0)) / 4096;
    if (vpn < lo || vpn >= hi || shift !== 12) return;
    const off = BigInt(vpn - lo) << 12n;
    // espfix_base_addr(): addr = (addr & 0xffff) | ((addr & ~0xffff) << 16), page = addr >> PAGE_SHIFT
    const page = Number(((off >> 32n) << 4n) | ((off >> 12n) & 15n));
    if (!pages.has(page)) pages.set(page, BigInt(pa));
  });
  if (pages.size === 0) return null;
  // page = (cpu / 64) ^ page_random: page_random is the value whose XOR maps the set onto 0..n-1.
  const set = [...pages.keys()];
  for (const cand of set) {
    const groups = set.map((p) => p ^ cand).sort((a, b) => a - b);
    if (groups.every((g, i) => g === i)) return { page: cand, stackPa: groups.map((g) => pages.get(g ^ cand)!) };
  }
  return { page: Math.min(...set), stackPa: [pages.get(Math.min(...set))!] };
}

/** The first TSS page of each cpu_entry_area slot the captured root maps: its slot and frame. */
function ceaTssPages(img: PtImage, root: number): Array<{ slot: number; pa: bigint }> {
  const perCpuBase = CPU_ENTRY_AREA_BASE + 4096n;
  const from = Number(perCpuBase >> 12n);
  const to = Number(CPU_ENTRY_AREA_BASE >> 12n) + 2 ** 27;
  const found: Array<{ slot: number; pa: bigint }> = [];
  forEachLeaf(img.mem, root, img.paging_levels, (vaLo, vaHi, shift, pa) => {
    const vpn = ((vaHi >>> 0) * 4294967296 + (vaLo >>> 0)) / 4096;
    if (vpn < from || vpn >= to || shift !== 12) return;
    const off = (BigInt(vpn) << 12n) - perCpuBase;
    if (off % CEA.size !== CEA.tss) return; // the first TSS page of a slot
    found.push({ slot: Number(off / CEA.size), pa: BigInt(pa) });
  });
  return found;
}

/** How many CPUs a capture folder's kernel booted with (its cpu_entry_area slots), or null without kernel.json.gz or slots. */
export function capturedCpuCount(dir: string): { cpus: number; file: string } | null {
  const kFile = firstExisting(dir, ['kernel.json.gz', 'kernel.json']);
  if (kFile === null) return null;
  const img = loadPtImage(kFile);
  const root = img.roots.kernel;
  if (root === undefined) throw new InputError(kFile, 'field roots.kernel: missing');
  const n = ceaTssPages(img, root).length;
  return n === 0 ? null : { cpus: n, file: kFile };
}

/** Per-CPU areas and cpu_entry_area slots, read from the captured cpu_entry_area's TSS pages. */
export function perCpuFromCapture(img: PtImage, root: number, sym: ImageSymbols): { perCpuPa: bigint[]; ceaSlots: number[] } | null {
  const found = ceaTssPages(img, root).map((f) => ({ slot: f.slot, pa: f.pa - sym.percpu.cpuTssRw }));
  if (found.length === 0) return null;
  found.sort((a, b) => (a.pa < b.pa ? -1 : 1)); // the first chunk's units are in CPU order
  return { perCpuPa: found.map((f) => f.pa), ceaSlots: found.map((f) => f.slot) };
}

/**
 * The capture's command line, read with the same strict parser as a scenario's (mitigations/
 * cmdline.ts: a value kasi does not know, `pti=maybe`, is an error naming the file, not a silent
 * default) and without NULs (/proc/cmdline has none).
 */
function strictCmdline(file: string): ReturnType<typeof parseCmdline> {
  const text = readTextMaybeGz(file, 'latin1');
  if (text.includes('\0')) throw new InputError(file, 'a NUL character: /proc/cmdline has none (the kernel\'s line is a C string)');
  try {
    parseMitigationCmdline(text);
  } catch (err) {
    if (err instanceof CmdlineError) throw new InputError(file, err.message);
    throw err;
  }
  return parseCmdline(text);
}

/** Build the model of the kernel a capture directory describes. `over` overrides any derived option. */
export function modelFromCapture(dir: string, over: KernelOptions = {}): CaptureModel {
  const notes: string[] = [];
  const ksFile = firstExisting(dir, ['kallsyms.txt.gz', 'kallsyms.txt', 'System.map']) ?? join(dir, 'kallsyms.txt.gz');
  const symbols = over.symbols ?? imageSymbolsFromKallsyms(loadKallsyms(ksFile));
  notes.push(`image symbols: ${ksFile}`);
  // --iomem instead of the folder's (a capture made without root has none: kasi capture does not write a zeroed one).
  const iomem = over.iomem ?? loadIomem(join(dir, 'iomem.txt'));
  if (over.iomem === undefined) notes.push(`RAM, image placement, APICs: ${join(dir, 'iomem.txt')}`);
  const opts: KernelOptions = { symbols, iomem };
  const cfgFile = firstExisting(dir, ['config.gz', 'config', '.config']);
  if (cfgFile) {
    const k = loadKconfig(cfgFile);
    opts.config = kernelConfigFromKconfig(k);
    opts.layoutConfig = layoutConfigFromKconfig(k);
    notes.push(`configuration: ${cfgFile}`);
  }
  const cmdFile = firstExisting(dir, ['cmdline.txt', 'cmdline']);
  const cmdline = cmdFile ? strictCmdline(cmdFile) : undefined;
  if (cmdline) { opts.cmdline = cmdline; notes.push(`command line: ${cmdFile}`); }
  const cpuFile = firstExisting(dir, ['cpuinfo.txt']);
  if (cpuFile) { opts.cpu = cpuFromCpuinfo(readTextMaybeGz(cpuFile)); notes.push(`CPU features: ${cpuFile}`); }

  let image: PtImage | null = null;
  const kFile = firstExisting(dir, ['kernel.json.gz', 'kernel.json']);
  if (kFile) {
    image = loadPtImage(kFile);
    const root = image.roots.kernel;
    if (root === undefined) throw new InputError(kFile, 'field roots.kernel: missing');
    opts.levels = image.paging_levels;
    opts.cpu = { ...opts.cpu, la57: image.paging_levels === 5 || opts.cpu?.la57 };
    if ((image.regs.cr4 & (1n << 17n)) !== 0n) opts.cpu = { ...opts.cpu, pcid: true }; // CR4.PCIDE: the kernel uses PCID
    const kv = image.kernel_values ?? {};
    if (kv.page_offset_base && kv.vmalloc_base && kv.vmemmap_base && !(cmdline && hasParam(cmdline, 'nokaslr'))) {
      opts.kaslr = { page_offset_base: kv.page_offset_base, vmalloc_base: kv.vmalloc_base, vmemmap_base: kv.vmemmap_base } as KaslrOption;
      notes.push(`KASLR bases: ${kFile} kernel_values`);
    }
    if (kv['_text.pa']) opts.textPa = BigInt(kv['_text.pa']);
    const esp = espfixFromCapture(image, root);
    if (esp) {
      opts.espfixPage = esp.page;
      opts.espfixStackPa = esp.stackPa;
      notes.push(`ESPFIX page_random ${esp.page} and stack page(s) ${esp.stackPa.map((p) => '0x' + p.toString(16)).join(', ')}: read from the captured ESPFIX area (init_espfix_random() draws them at boot)`);
    }
    const pc = perCpuFromCapture(image, root, symbols);
    if (pc && over.cpus !== undefined && over.cpus > pc.perCpuPa.length) {
      throw new InputError(kFile, `shows ${pc.perCpuPa.length} possible CPU(s) (the per-CPU areas of its cpu_entry_area), fewer than the ${over.cpus} the model was asked for: a captured kernel runs on at most the CPUs it booted with`);
    }
    if (pc) {
      opts.perCpuPa = pc.perCpuPa;
      opts.ceaSlots = pc.ceaSlots;
      opts.cpus = pc.perCpuPa.length;
      notes.push(`${pc.perCpuPa.length} possible CPU(s), per-CPU area(s) at ${pc.perCpuPa.map((p) => '0x' + p.toString(16)).join(', ')}, cpu_entry_area slot(s) ${pc.ceaSlots.join(', ')}: read from the captured cpu_entry_area TSS pages`);
    }
  } else {
    notes.push('no kernel.json.gz: paging depth from the CPU flags, per-CPU areas, ESPFIX and KASLR bases are the model\'s own choices');
  }
  // What each boot input came from, for a boot the model cannot make (linux/boot-error.ts).
  const from: Record<BootInput, string> = {
    ram: over.iomem?.file ?? join(dir, 'iomem.txt'), cpus: kFile ?? dir, cpu: cpuFile ?? kFile ?? dir,
    config: cfgFile ?? dir,
  };
  let model: KernelModel;
  try {
    model = bootKernel({ ...opts, ...over, cpu: { ...opts.cpu, ...over.cpu } });
  } catch (err) {
    if (err instanceof BootError) throw new InputError(from[err.input], `cannot boot the kernel the capture ${dir} describes: ${err.message}`);
    throw err;
  }
  return { model, image, dir, notes };
}
