/**
 * Reader of page-table captures in the `x86-pt-oracle/1` format (test/fixtures/README.md):
 * every paging-structure page reachable from the kernel and KPTI user roots, the registers,
 * and QEMU's own listings. Loads the pages into a PhysMemory and the registers into a CpuState.
 * Errors name the file and what is wrong.
 */
import { PhysMemory } from '../phys/memory.ts';
import { CpuState } from '../x86/cpu.ts';
import { InputError, readTextMaybeGz } from './files.ts';

export { InputError };

export interface PtImage {
  file: string;
  paging_levels: 4 | 5;
  pti: boolean;
  regs: Record<string, bigint>;
  cpl: number;
  roots: Record<string, number>;
  active_root: string;
  ram_bytes: number;
  mem: PhysMemory;
  cpu: CpuState;
  pageLevels: Map<number, number>;
  qemu_info_tlb?: [string, string, string][];
  qemu_info_mem?: [string, string, string][] | null;
  guest_pagemap?: { name: string; va: string; present: boolean; pfn: string; leaf_shift: number }[];
  guest_maps?: string[];
  kernel_symbols?: Record<string, string>;
  kernel_values?: Record<string, string>;
  kernel?: { uname: string; package: string; cmdline: string };
}

const HEX = /^0x[0-9a-fA-F]{1,16}$/;

function hexField(file: string, where: string, v: unknown): bigint {
  if (typeof v !== 'string' || !HEX.test(v)) throw new InputError(file, `field ${where}: expected a 0x-prefixed hex string, found ${JSON.stringify(v)?.slice(0, 40)}`);
  return BigInt(v);
}

/** Read a `.json` or `.json.gz` capture. `maxPhysBits` defaults to 52 (the captures say 40; pass it when known). */
export function loadPtImage(file: string, maxPhysBits = 52): PtImage {
  const text = readTextMaybeGz(file);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InputError(file, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InputError(file, 'expected a JSON object');
  if (doc.format !== 'x86-pt-oracle/1') throw new InputError(file, `field format: expected "x86-pt-oracle/1", found ${JSON.stringify(doc.format)}`);
  const levels = doc.paging_levels;
  if (levels !== 4 && levels !== 5) throw new InputError(file, `field paging_levels: expected 4 or 5, found ${JSON.stringify(levels)}`);
  const regsIn = doc.regs as Record<string, unknown> | undefined;
  if (typeof regsIn !== 'object' || regsIn === null) throw new InputError(file, 'field regs: missing');
  const regs: Record<string, bigint> = {};
  for (const k of ['cr0', 'cr3', 'cr4', 'efer']) regs[k] = hexField(file, `regs.${k}`, regsIn[k]);
  const cpl = Number(regsIn.cpl ?? 0);
  const rootsIn = doc.roots as Record<string, unknown> | undefined;
  if (typeof rootsIn !== 'object' || rootsIn === null) throw new InputError(file, 'field roots: missing');
  const roots: Record<string, number> = {};
  for (const [k, v] of Object.entries(rootsIn)) roots[k] = Number(hexField(file, `roots.${k}`, v));
  const active = doc.active_root;
  if (typeof active !== 'string' || !(active in roots)) throw new InputError(file, `field active_root: expected one of ${Object.keys(roots).join(', ')}, found ${JSON.stringify(active)}`);

  const mem = new PhysMemory(maxPhysBits);
  const pages = doc.pages as Record<string, unknown> | undefined;
  if (typeof pages !== 'object' || pages === null) throw new InputError(file, 'field pages: missing');
  for (const [addr, b64] of Object.entries(pages)) {
    const pa = hexField(file, `pages key`, addr);
    if (pa & 0xfffn) throw new InputError(file, `field pages["${addr}"]: not 4 KiB aligned`);
    if (typeof b64 !== 'string') throw new InputError(file, `field pages["${addr}"]: expected base64 text`);
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length !== 4096) throw new InputError(file, `field pages["${addr}"]: expected 4096 bytes, found ${bytes.length} (truncated?)`);
    mem.writeBytes(Number(pa), bytes);
  }
  const pageLevels = new Map<number, number>();
  for (const [addr, lv] of Object.entries((doc.page_table_levels ?? {}) as Record<string, unknown>)) {
    pageLevels.set(Number(hexField(file, 'page_table_levels key', addr)), Number(lv));
  }
  const cpu = new CpuState(maxPhysBits);
  cpu.load({ cr0: regs.cr0, cr3: regs.cr3, cr4: regs.cr4, efer: regs.efer, cpl });
  return {
    file, paging_levels: levels, pti: Boolean(doc.pti), regs, cpl, roots, active_root: active,
    ram_bytes: Number(doc.ram_bytes ?? 0), mem, cpu, pageLevels,
    qemu_info_tlb: doc.qemu_info_tlb as PtImage['qemu_info_tlb'],
    qemu_info_mem: doc.qemu_info_mem as PtImage['qemu_info_mem'],
    guest_pagemap: doc.guest_pagemap as PtImage['guest_pagemap'],
    guest_maps: doc.guest_maps as string[] | undefined,
    kernel_symbols: doc.kernel_symbols as Record<string, string> | undefined,
    kernel_values: doc.kernel_values as Record<string, string> | undefined,
    kernel: doc.kernel as PtImage['kernel'],
  };
}
