/**
 * Reader of /proc/kallsyms and System.map: `ADDR TYPE NAME [module]`, one symbol a line.
 *
 * Kernel-half symbols go into an address-sorted table held in typed arrays (address halves,
 * type letters) so that `lookupHalves()` is a binary search with no allocation. Per-CPU
 * symbols — offsets into the per-CPU area, small addresses between __per_cpu_start and
 * __per_cpu_end (type A in /proc/kallsyms with CONFIG_KALLSYMS_ABSOLUTE_PERCPU, D/d/b in
 * System.map) — are kept apart, as are other absolute symbols outside the kernel half.
 *
 * Aliases (several names at one address) keep the file's order, so a lookup returns the first
 * one listed, as the kernel's get_symbol_pos() does ("search for the first aliased symbol").
 */
import { InputError, readTextMaybeGz } from './files.ts';

export { readTextMaybeGz };

/** Symbol type letters nm(1) and kallsyms print. */
const TYPE_LETTERS = 'AaBbCcDdGgIiNnpRrSsTtUuVvWw?';
const TWO32 = 4294967296;

export interface SymbolHit {
  name: string;
  /** va - symbol address (bytes). */
  offset: number;
  type: string;
  module: string | undefined;
  index: number;
}

export interface Range { start: bigint; end: bigint } // end exclusive

/** The image's section boundaries (include/asm-generic/sections.h, arch/x86/kernel/vmlinux.lds.S). */
export interface KernelSections {
  image?: Range; // _text .. _end
  text?: Range; // _stext .. _etext
  entryText?: Range; // __entry_text_start .. __entry_text_end
  irqentryText?: Range; // __irqentry_text_start .. __irqentry_text_end
  rodata?: Range; // __start_rodata .. __end_rodata
  data?: Range; // _sdata .. _edata
  init?: Range; // __init_begin .. __init_end
  bss?: Range; // __bss_start .. __bss_stop
  perCpu?: Range; // __per_cpu_start .. __per_cpu_end (offsets)
}

const SECTION_SYMBOLS: [keyof KernelSections, string, string][] = [
  ['image', '_text', '_end'],
  ['text', '_stext', '_etext'],
  ['entryText', '__entry_text_start', '__entry_text_end'],
  ['irqentryText', '__irqentry_text_start', '__irqentry_text_end'],
  ['rodata', '__start_rodata', '__end_rodata'],
  ['data', '_sdata', '_edata'],
  ['init', '__init_begin', '__init_end'],
  ['bss', '__bss_start', '__bss_stop'],
  ['perCpu', '__per_cpu_start', '__per_cpu_end'],
];

interface Raw { hi: number; lo: number; type: number; name: string; module: string | undefined; line: number }

export class Kallsyms {
  readonly count: number;
  /** Sorted by address, then file order. */
  readonly addrHi: Uint32Array;
  readonly addrLo: Uint32Array;
  readonly types: Uint8Array;
  /** The file line of each symbol (for errors). */
  readonly lines: Uint32Array;
  readonly names: string[];
  readonly modules: (string | undefined)[];
  /** Per-CPU symbols: name -> offset into the per-CPU area. */
  readonly perCpu: Map<string, number>;
  /** Other symbols outside the kernel half (absolute values). */
  readonly absolute: Map<string, bigint>;
  private readonly byName = new Map<string, number>();
  private readonly imageEnd: { hi: number; lo: number } | undefined;

  constructor(readonly file: string, kernel: Raw[], perCpu: Map<string, number>, absolute: Map<string, bigint>) {
    const order = kernel.map((_, i) => i);
    order.sort((a, b) => kernel[a].hi - kernel[b].hi || kernel[a].lo - kernel[b].lo || a - b);
    const n = order.length;
    this.count = n;
    this.addrHi = new Uint32Array(n);
    this.addrLo = new Uint32Array(n);
    this.types = new Uint8Array(n);
    this.lines = new Uint32Array(n);
    this.names = new Array<string>(n);
    this.modules = new Array<string | undefined>(n);
    for (let i = 0; i < n; i++) {
      const r = kernel[order[i]];
      this.addrHi[i] = r.hi;
      this.addrLo[i] = r.lo;
      this.types[i] = r.type;
      this.lines[i] = r.line;
      this.names[i] = r.name;
      this.modules[i] = r.module;
      if (!this.byName.has(r.name)) this.byName.set(r.name, i);
    }
    this.perCpu = perCpu;
    this.absolute = absolute;
    const end = this.byName.get('_end');
    this.imageEnd = end === undefined ? undefined : { hi: this.addrHi[end], lo: this.addrLo[end] };
  }

  /** The address of a kernel-half symbol (first of that name), or a per-CPU offset, or an absolute value. */
  addressOf(name: string): bigint | undefined {
    const i = this.byName.get(name);
    if (i !== undefined) return (BigInt(this.addrHi[i]) << 32n) | BigInt(this.addrLo[i]);
    const p = this.perCpu.get(name);
    if (p !== undefined) return BigInt(p);
    return this.absolute.get(name);
  }

  /** The file line of a kernel-half symbol (first of that name), or undefined. */
  lineOf(name: string): number | undefined {
    const i = this.byName.get(name);
    return i === undefined ? undefined : this.lines[i];
  }

  isPerCpu(name: string): boolean {
    return this.perCpu.has(name);
  }

  /** Index of a kernel-half symbol by name (first occurrence in address order), or -1. */
  indexOf(name: string): number {
    return this.byName.get(name) ?? -1;
  }

  /**
   * The symbol covering hi:lo: the last one at or below it (the first listed among aliases).
   * Returns the index, or -1 below the first symbol or past `_end` when the nearest symbol
   * belongs to the core image (module symbols lie above it). No allocation.
   */
  lookupHalves(lo: number, hi: number): number {
    const h = hi >>> 0;
    const l = lo >>> 0;
    const ah = this.addrHi;
    const al = this.addrLo;
    let a = 0;
    let b = this.count; // first index with addr > va
    while (a < b) {
      const m = (a + b) >>> 1;
      if (ah[m] < h || (ah[m] === h && al[m] <= l)) a = m + 1; else b = m;
    }
    let i = a - 1;
    if (i < 0) return -1;
    // Step back to the first alias at the same address.
    while (i > 0 && ah[i - 1] === ah[i] && al[i - 1] === al[i]) i--;
    const e = this.imageEnd;
    if (e !== undefined && this.modules[i] === undefined && (h > e.hi || (h === e.hi && l >= e.lo))) {
      if (ah[i] < e.hi || (ah[i] === e.hi && al[i] <= e.lo)) return -1;
    }
    return i;
  }

  /** Offset of hi:lo from symbol i (a Number: symbols are never 2^53 apart). */
  offsetFrom(i: number, lo: number, hi: number): number {
    return ((hi >>> 0) - this.addrHi[i]) * TWO32 + ((lo >>> 0) - this.addrLo[i]);
  }

  /** Fill `out` for hi:lo; false when no symbol covers it. */
  symbolAtHalves(lo: number, hi: number, out: SymbolHit): boolean {
    const i = this.lookupHalves(lo, hi);
    if (i < 0) return false;
    out.name = this.names[i];
    out.offset = this.offsetFrom(i, lo, hi);
    out.type = String.fromCharCode(this.types[i]);
    out.module = this.modules[i];
    out.index = i;
    return true;
  }

  symbolAt(va: bigint): SymbolHit | null {
    const v = BigInt.asUintN(64, va);
    const out: SymbolHit = { name: '', offset: 0, type: '', module: undefined, index: -1 };
    return this.symbolAtHalves(Number(v & 0xffffffffn), Number(v >> 32n), out) ? out : null;
  }

  addressAt(i: number): bigint {
    return (BigInt(this.addrHi[i]) << 32n) | BigInt(this.addrLo[i]);
  }

  sections(): KernelSections {
    const out: KernelSections = {};
    for (const [key, s, e] of SECTION_SYMBOLS) {
      const start = this.addressOf(s);
      const end = this.addressOf(e);
      if (start !== undefined && end !== undefined) out[key] = { start, end };
    }
    return out;
  }
}

/** Parse the text of /proc/kallsyms or a System.map. */
export function parseKallsyms(text: string, file = '<kallsyms>'): Kallsyms {
  const raws: Raw[] = [];
  let lineNo = 0;
  let pos = 0;
  let allZero = true;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const line = text.slice(pos, nl);
    pos = nl + 1;
    lineNo++;
    const t = line.trim();
    if (t === '') continue;
    const f = t.split(/\s+/);
    if (f.length < 3) throw new InputError(file, `expected "ADDRESS TYPE NAME", found ${f.length} column${f.length === 1 ? '' : 's'}: ${JSON.stringify(t.slice(0, 60))}`, lineNo);
    const addr = f[0];
    if (!/^[0-9a-fA-F]{1,16}$/.test(addr)) throw new InputError(file, `bad address ${JSON.stringify(addr.slice(0, 40))} (expected up to 16 hex digits)`, lineNo);
    const type = f[1];
    if (type.length !== 1 || !TYPE_LETTERS.includes(type)) throw new InputError(file, `unknown symbol type ${JSON.stringify(type.slice(0, 10))} (expected one of ${TYPE_LETTERS})`, lineNo);
    let module: string | undefined;
    if (f.length >= 4) {
      const m = /^\[([^\]\s]+)\]$/.exec(f[3]);
      if (!m || f.length > 4) throw new InputError(file, `unexpected text after the name: ${JSON.stringify(f.slice(3).join(' ').slice(0, 40))} (expected "[module]")`, lineNo);
      module = m[1];
    }
    const padded = addr.padStart(16, '0');
    const hi = parseInt(padded.slice(0, 8), 16);
    const lo = parseInt(padded.slice(8), 16);
    if (hi !== 0 || lo !== 0) allZero = false;
    raws.push({ hi, lo, type: type.charCodeAt(0), name: f[2], module, line: lineNo });
  }
  if (raws.length === 0) throw new InputError(file, 'no symbols found');
  if (allZero && raws.length > 1) throw new InputError(file, 'every address is zero (read without CAP_SYSLOG, or kptr_restrict is set): read it as root');

  // Per-CPU symbols: x86-64 links .data..percpu at 0 (vmlinux.lds.S), so its symbols are small
  // offsets in [__per_cpu_start, __per_cpu_end].
  let pcStart = -1;
  let pcEnd = -1;
  for (const r of raws) {
    if (r.hi !== 0 || r.module !== undefined) continue;
    if (r.name === '__per_cpu_start') pcStart = r.lo;
    else if (r.name === '__per_cpu_end') pcEnd = r.lo;
  }
  const kernel: Raw[] = [];
  const perCpu = new Map<string, number>();
  const absolute = new Map<string, bigint>();
  for (const r of raws) {
    if (r.hi >= 0x80000000) { kernel.push(r); continue; } // kernel half (sign bit set)
    if (pcStart >= 0 && pcEnd >= pcStart && r.hi === 0 && r.lo >= pcStart && r.lo <= pcEnd) {
      if (!perCpu.has(r.name)) perCpu.set(r.name, r.lo);
    } else if (!absolute.has(r.name)) {
      absolute.set(r.name, (BigInt(r.hi) << 32n) | BigInt(r.lo));
    }
  }
  return new Kallsyms(file, kernel, perCpu, absolute);
}

/** Read a kallsyms / System.map file, plain or gzip-compressed. */
export function loadKallsyms(file: string): Kallsyms {
  return parseKallsyms(readTextMaybeGz(file), file);
}

