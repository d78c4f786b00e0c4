/**
 * What the fuzz tests feed (test/fuzz/readers.fuzz.test.ts): every reader of an outside file and
 * the scenario loader, each with its seeds (the shipped fixtures and examples), its mutations
 * (test/fuzz/mutate.ts) and what it does with a text — parse, then use the result the way the
 * commands do (walk a capture's tables, replay access cases, boot a capture folder), so a value a
 * reader lets through and a consumer chokes on is found too. The property: the text is accepted,
 * or refused with the project's InputError; anything else (a RangeError from the model, a hang
 * caught by the watchdog, a stack overflow) is a failure.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { InputError } from '../../src/formats/files.ts';
import { parseScenario } from '../../src/scenario/load.ts';
import { parsePtImage } from '../../src/x86/ptimage.ts';
import { parseAccessCases, runAccessCase } from '../../src/x86/access-cases.ts';
import { parseKallsyms } from '../../src/formats/kallsyms.ts';
import { parseIomem } from '../../src/formats/iomem.ts';
import { parseKconfig } from '../../src/formats/kconfig.ts';
import { layoutConfigFromKconfig } from '../../src/linux/kconfig-layout.ts';
import { paramSpans, parseCmdline } from '../../src/formats/cmdline.ts';
import { parseFootprints } from '../../src/formats/footprints.ts';
import { CmdlineError, parseMitigationCmdline } from '../../src/mitigations/cmdline.ts';
import { imageSymbolsFromKallsyms } from '../../src/linux/image.ts';
import { modelFromCapture } from '../../src/linux/capture.ts';
import { importWorkload } from '../../src/formats/index.ts';
import { parsePtdump } from '../../src/formats/ptdump.ts';
import { infoTlbChunks } from '../../src/report/infotlb.ts';
import { forEachLeaf } from '../../src/x86/leaves.ts';
import { lineFormat, lineMutations, readYaml, treeFormat, writeJson, writeYaml } from './mutate.ts';

const FIX = new URL('../fixtures/', import.meta.url).pathname;
const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;
const CAP = join(FIX, 'captures/la48-pti-nokaslr');
const gz = (f: string): string => gunzipSync(readFileSync(f)).toString('utf8');

export interface Target {
  readonly arbitrary: () => fc.Arbitrary<string>;
  /** Read `text` (as if from `file`, which anchors relative paths) and use it. */
  readonly run: (text: string, file?: string) => void;
  /** Errors that are an answer, not a bug (default: InputError only). */
  readonly allowed?: (err: unknown) => boolean;
}

/** A small capture in the x86-pt-oracle/1 format: a 4-level root, one table of each level, two leaves (one 2 MiB). */
function smallCapture(): Record<string, unknown> {
  const page = (entries: [number, bigint][]) => {
    const b = Buffer.alloc(4096);
    for (const [i, e] of entries) b.writeBigUInt64LE(e, i * 8);
    return b.toString('base64');
  };
  return {
    format: 'x86-pt-oracle/1', paging_levels: 4, pti: false, active_root: 'kernel', ram_bytes: 1 << 26,
    regs: { cr0: '0x80050033', cr3: '0x1000', cr4: '0x6f0', efer: '0xd01', cpl: 0 },
    roots: { kernel: '0x1000' },
    pages: {
      '0x1000': page([[0, 0x2067n], [511, 0x2063n]]),
      '0x2000': page([[0, 0x3067n], [1, 0x400000e3n]]),
      '0x3000': page([[0, 0x4067n], [1, 0x2000e3n]]),
      '0x4000': page([[0, 0x5067n], [7, 0x8000000000006063n]]),
    },
    page_table_levels: { '0x1000': 4, '0x2000': 3, '0x3000': 2, '0x4000': 1 },
    kernel_values: { page_offset_base: '0xffff888000000000' },
  };
}

function walkAll(img: ReturnType<typeof parsePtImage>): void {
  for (const root of Object.values(img.roots)) {
    let n = 0;
    forEachLeaf(img.mem, root, img.paging_levels, () => { n++; });
    if (n < 100_000) infoTlbChunks(img.mem, root, img.paging_levels);
  }
}

const scenarioSeeds = (): { trees: unknown[]; texts: string[] } => {
  const texts = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(join(EXAMPLES, f), 'utf8'));
  return { trees: texts.map(readYaml), texts };
};

const lines = (f: string, keep: (l: string, i: number) => boolean): string => f.split('\n').filter(keep).join('\n');

/** The kallsyms lines the image model needs, and some around them (the whole file is 94k lines). */
function kallsymsSeed(): string {
  const want = /\s(_text|_etext|_stext|__start_rodata|__end_rodata|__end_rodata_aligned|__end_rodata_hpage_align|_sdata|_edata|__init_begin|__init_end|__bss_start|__bss_stop|__brk_base|__brk_limit|_end|__entry_text_start|__entry_text_end|init_top_pgt|level[1-4]_(kernel|fixmap)_pgt|__per_cpu_start|__per_cpu_end|cpu_tss_rw|gdt_page|exception_stacks|entry_stack_storage|cpu_debug_store|commit_creds)$/;
  return lines(gz(join(CAP, 'kallsyms.txt.gz')), (l, i) => want.test(l) || i % 5000 === 0);
}

export const TARGETS: Record<string, Target> = {
  scenario: {
    arbitrary: () => { const s = scenarioSeeds(); return treeFormat(s.trees, s.texts, writeYaml); },
    run: (text, file) => { parseScenario(text, file ?? join(EXAMPLES, 'fuzz.yaml')); },
  },
  capture: {
    arbitrary: () => { const c = smallCapture(); return treeFormat([c], [writeJson(c)], writeJson); },
    run: (text) => walkAll(parsePtImage(text, 'fuzz.json', 40)),
  },
  'access-cases': {
    arbitrary: () => {
      const cases = gz(join(FIX, 'access/cases-sample.jsonl.gz')).split('\n').filter(Boolean).slice(0, 40);
      const trees = cases.map((l) => JSON.parse(l));
      return treeFormat(trees, cases, (t) => `${cases[0]}\n${writeJson(t)}\n`);
    },
    run: (text) => { for (const c of parseAccessCases(text, 'fuzz.jsonl')) runAccessCase(c); },
  },
  kallsyms: {
    arbitrary: () => lineFormat([kallsymsSeed()]),
    run: (text) => { imageSymbolsFromKallsyms(parseKallsyms(text, 'fuzz.kallsyms')); },
  },
  iomem: {
    arbitrary: () => lineFormat([readFileSync(join(CAP, 'iomem.txt'), 'utf8')]),
    run: (text) => { const io = parseIomem(text, 'fuzz.iomem'); io.systemRam(); io.kernelImage(); io.maxPhysAddr(); },
  },
  kconfig: {
    arbitrary: () => lineFormat([lines(gz(join(CAP, 'config.gz')), (l) => /PHYSICAL|RANDOMIZE|KASAN|VSYSCALL|X86_|APIC|PARAVIRT|ACPI|INTEL_TXT|OHCI/.test(l))]),
    run: (text) => { layoutConfigFromKconfig(parseKconfig(text, 'fuzz.config')); },
  },
  cmdline: {
    arbitrary: () => lineMutations(['console=ttyS0 pti=on panic=-1 nokaslr', 'mitigations=auto,nosmt l1tf=flush "quoted arg" a="b c" -- init args', 'asi=google-asi-2025 sched_core=1 kvm-intel.vmentry_l1d_flush=cond']),
    run: (text) => { paramSpans(text); parseCmdline(text); parseMitigationCmdline(text); },
    allowed: (e) => e instanceof CmdlineError,
  },
  footprints: {
    arbitrary: () => { const t = readFileSync(join(FIX, 'footprints/footprints.json'), 'utf8'); return treeFormat([JSON.parse(t)], [t.slice(0, 5000)], writeJson); },
    run: (text) => { parseFootprints(text, 'fuzz-footprints.json'); },
  },
  'tool-outputs': {
    arbitrary: () => {
      const dir = join(FIX, 'tool-samples');
      const seeds = readdirSync(dir).filter((d) => !d.endsWith('.md')).flatMap((d) => readdirSync(join(dir, d)).map((f) => readFileSync(join(dir, d, f), 'utf8')));
      return lineFormat(seeds);
    },
    run: (text) => { importWorkload(text, 'fuzz-tool.txt'); },
  },
  ptdump: {
    arbitrary: () => {
      const seed = '---[ User Space ]---\n0x0000000000000000-0x0000000000400000           4M                               pmd\n---[ Kernel Space ]---\n0xffff888000000000-0xffff888000200000           2M     RW         PSE     GLB NX pmd\n0xffffffff81000000-0xffffffff81e00000          14M     ro         PSE     GLB x  pmd\n';
      return lineFormat([seed]);
    },
    run: (text) => { parsePtdump(text, 'fuzz-ptdump.txt'); },
  },
};

/** The capture folder as a whole (iomem.txt, cmdline.txt mutated; boots the kernel: slow, few cases). */
export const CAPTURE_FOLDER: Target = {
  arbitrary: () => lineFormat([`${readFileSync(join(CAP, 'iomem.txt'), 'utf8')}\0${readFileSync(join(CAP, 'cmdline.txt'), 'utf8')}`]),
  run: (text) => {
    const dir = join(tmpdir(), `kasi-fuzz-cap-${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    for (const f of ['kallsyms.txt.gz', 'config.gz', 'cpuinfo.txt', 'kernel.json.gz']) copyFileSync(join(CAP, f), join(dir, f));
    const [iomem, cmdline = ''] = text.split('\0');
    writeFileSync(join(dir, 'iomem.txt'), iomem);
    writeFileSync(join(dir, 'cmdline.txt'), cmdline);
    try { modelFromCapture(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  },
};

/** A target that hangs on every input: the watchdog's own test. */
export const SELF_TEST_HANG: Target = {
  arbitrary: () => fc.constant('any input'),
  run: () => { for (;;); },
};

export const isAnswer = (t: Target, err: unknown): boolean => err instanceof InputError || (t.allowed?.(err) ?? false);

