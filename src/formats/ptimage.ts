/**
 * Reader of page-table captures in the `x86-pt-oracle/1` format (test/fixtures/README.md):
 * every paging-structure page reachable from the kernel and KPTI user roots, the registers,
 * and QEMU's own listings. Loads the pages into a PhysMemory and keeps the registers as numbers
 * (formats/ knows nothing of the model: x86/ptimage.ts turns them into a CpuState).
 * Errors name the file and what is wrong; formats/ptimage-check.ts says what a capture must satisfy
 * (registers of 64-bit paging, tables without loops) before anything walks it.
 */
import { PhysMemory } from '../phys/memory.ts';
import { InputError, parseJson } from './files.ts';
import { checkRegs, checkTables } from './ptimage-check.ts';

export { InputError };

export interface PtImageData {
  file: string;
  paging_levels: 4 | 5;
  pti: boolean;
  regs: Record<string, bigint>;
  cpl: number;
  roots: Record<string, number>;
  active_root: string;
  ram_bytes: number;
  mem: PhysMemory;
  /** The control registers the capture's CPU ran with (x86/ptimage.ts loads them into a CpuState). */
  control: { cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint; cpl: number; maxPhysBits: number };
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
/** Root names: the format's `kernel` and `user`, or any such word (never "__proto__" and kin). */
const ROOT_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

const show = (v: unknown): string => (JSON.stringify(v) ?? String(v)).slice(0, 40);

function hexField(file: string, where: string, v: unknown): bigint {
  if (typeof v !== 'string' || !HEX.test(v)) throw new InputError(file, `field ${where}: expected a 0x-prefixed hex string, found ${show(v)}`);
  return BigInt(v);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A physical page address of the capture: 4 KiB aligned, below 2^maxPhysBits. */
function pageAddr(file: string, where: string, v: unknown, maxPhysBits: number): number {
  const pa = hexField(file, where, v);
  if (pa & 0xfffn) throw new InputError(file, `field ${where}: ${show(v)} is not 4 KiB aligned`);
  if (pa >= 1n << BigInt(maxPhysBits)) throw new InputError(file, `field ${where}: ${show(v)} is at or above 2^${maxPhysBits} (MAXPHYADDR ${maxPhysBits}: no such physical address)`);
  return Number(pa);
}

/** Optional fields kasi only passes on: check their shape so no consumer meets a surprise. */
function checkOptional(file: string, doc: Record<string, unknown>): void {
  const fail = (f: string, what: string): never => { throw new InputError(file, `field ${f}: expected ${what}, found ${show(doc[f])}`); };
  const strings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (doc.qemu_info_tlb !== undefined && !(Array.isArray(doc.qemu_info_tlb) && doc.qemu_info_tlb.every((r) => strings(r) && (r as string[]).length === 3))) fail('qemu_info_tlb', 'a list of [va, pa, flags] strings');
  if (doc.qemu_info_mem !== undefined && doc.qemu_info_mem !== null && !(Array.isArray(doc.qemu_info_mem) && doc.qemu_info_mem.every((r) => strings(r) && (r as string[]).length === 3))) fail('qemu_info_mem', 'null or a list of [range, size, rights] strings');
  if (doc.guest_pagemap !== undefined && !(Array.isArray(doc.guest_pagemap) && doc.guest_pagemap.every(isRecord))) fail('guest_pagemap', 'a list of objects');
  if (doc.guest_maps !== undefined && !strings(doc.guest_maps)) fail('guest_maps', 'a list of strings');
  for (const f of ['kernel_symbols', 'kernel_values']) {
    const v = doc[f];
    if (v === undefined) continue;
    if (!isRecord(v)) fail(f, 'an object of 0x hex strings');
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) hexField(file, `${f}.${k}`, x);
  }
  if (doc.kernel !== undefined) {
    const k = doc.kernel;
    if (!isRecord(k) || !['uname', 'package', 'cmdline'].every((f) => typeof k[f] === 'string' || k[f] === undefined)) fail('kernel', '{ uname, package, cmdline } strings');
  }
}

/** Parse capture text (`file` names it in errors). `maxPhysBits` defaults to 52 (the captures say 40; pass it when known). */
export function parsePtImageData(text: string, file: string, maxPhysBits = 52): PtImageData {
  const doc = parseJson(text, file);
  if (!isRecord(doc)) throw new InputError(file, 'expected a JSON object');
  if (doc.format !== 'x86-pt-oracle/1') throw new InputError(file, `field format: expected "x86-pt-oracle/1", found ${show(doc.format)}`);
  const levels = doc.paging_levels;
  if (levels !== 4 && levels !== 5) throw new InputError(file, `field paging_levels: expected 4 or 5, found ${show(levels)}`);
  const regsIn = doc.regs;
  if (!isRecord(regsIn)) throw new InputError(file, 'field regs: missing');
  const regs: Record<string, bigint> = {};
  for (const k of ['cr0', 'cr3', 'cr4', 'efer']) regs[k] = hexField(file, `regs.${k}`, regsIn[k]);
  const cpl = regsIn.cpl ?? 0;
  if (cpl !== 0 && cpl !== 1 && cpl !== 2 && cpl !== 3) throw new InputError(file, `field regs.cpl: expected 0, 1, 2 or 3 (SDM 3A 5.5), found ${show(regsIn.cpl)}`);
  const cr3Root = checkRegs(file, { cr0: regs.cr0, cr3: regs.cr3, cr4: regs.cr4, efer: regs.efer }, levels, maxPhysBits);
  const rootsIn = doc.roots;
  if (!isRecord(rootsIn)) throw new InputError(file, 'field roots: missing');
  const roots: Record<string, number> = {};
  for (const [k, v] of Object.entries(rootsIn)) {
    if (!ROOT_NAME.test(k)) throw new InputError(file, `field roots: expected root names such as "kernel" and "user", found ${show(k)}`);
    roots[k] = pageAddr(file, `roots.${k}`, v, maxPhysBits);
  }
  const active = doc.active_root;
  if (typeof active !== 'string' || !Object.hasOwn(roots, active)) throw new InputError(file, `field active_root: expected one of ${Object.keys(roots).join(', ') || '(no roots)'}, found ${show(active)}`);
  if (roots[active] !== cr3Root) throw new InputError(file, `field active_root: root ${active} is 0x${roots[active].toString(16)}, but CR3 points to 0x${cr3Root.toString(16)} (regs.cr3)`);
  const ram = doc.ram_bytes ?? 0;
  if (typeof ram !== 'number' || !Number.isSafeInteger(ram) || ram < 0) throw new InputError(file, `field ram_bytes: expected a whole number of bytes, found ${show(doc.ram_bytes)}`);
  checkOptional(file, doc);

  const mem = new PhysMemory(maxPhysBits);
  const pages = doc.pages;
  if (!isRecord(pages)) throw new InputError(file, 'field pages: missing');
  for (const [addr, b64] of Object.entries(pages)) {
    const pa = pageAddr(file, `pages["${addr.slice(0, 20)}"]`, addr, maxPhysBits);
    if (typeof b64 !== 'string') throw new InputError(file, `field pages["${addr}"]: expected base64 text`);
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length !== 4096) throw new InputError(file, `field pages["${addr}"]: expected 4096 bytes, found ${bytes.length} (truncated?)`);
    mem.writeBytes(pa, bytes);
  }
  for (const [k, r] of Object.entries(roots)) if (mem.slot(r / 4096) < 0) throw new InputError(file, `field roots.${k}: 0x${r.toString(16)} is not one of the capture's pages`);
  const walked = checkTables(file, mem, roots, levels);
  const levelsIn = doc.page_table_levels ?? {};
  if (!isRecord(levelsIn)) throw new InputError(file, `field page_table_levels: expected an object, found ${show(levelsIn)}`);
  const pageLevels = new Map<number, number>();
  for (const [addr, lv] of Object.entries(levelsIn)) {
    const pa = pageAddr(file, `page_table_levels["${addr.slice(0, 20)}"]`, addr, maxPhysBits);
    if (typeof lv !== 'number' || !Number.isInteger(lv) || lv < 1 || lv > levels) throw new InputError(file, `field page_table_levels["${addr}"]: expected a level 1..${levels}, found ${show(lv)}`);
    const w = walked.get(pa);
    if (w !== undefined && w !== lv) throw new InputError(file, `field page_table_levels["${addr}"]: says level ${lv}, but the walk from the roots reaches it as a level-${w} table`);
    pageLevels.set(pa, lv);
  }
  const control = { cr0: regs.cr0, cr3: regs.cr3, cr4: regs.cr4, efer: regs.efer, cpl, maxPhysBits };
  return {
    file, paging_levels: levels, pti: Boolean(doc.pti), regs, cpl, roots, active_root: active,
    ram_bytes: ram, mem, control, pageLevels,
    qemu_info_tlb: doc.qemu_info_tlb as PtImageData['qemu_info_tlb'],
    qemu_info_mem: doc.qemu_info_mem as PtImageData['qemu_info_mem'],
    guest_pagemap: doc.guest_pagemap as PtImageData['guest_pagemap'],
    guest_maps: doc.guest_maps as string[] | undefined,
    kernel_symbols: doc.kernel_symbols as Record<string, string> | undefined,
    kernel_values: doc.kernel_values as Record<string, string> | undefined,
    kernel: doc.kernel as PtImageData['kernel'],
  };
}

