/**
 * Reader of a kernel `.config` (or /proc/config.gz): `CONFIG_X=y|m|n`, `CONFIG_X="string"`,
 * `CONFIG_X=123` / `=-1` / `=0x1000000`, and `# CONFIG_X is not set`. Strings escape `"` and `\`
 * with a backslash (scripts/kconfig/confdata.c conf_set_sym_val(): a backslash escapes the next
 * character, the first unescaped `"` ends the string; kconfig ignores text after it, this reader
 * reports it). Other `#` lines are comments. A symbol given twice keeps the last value, as
 * kconfig does.
 */
import { InputError } from './ptimage.ts';
import { readTextMaybeGz } from './kallsyms.ts';
import type { LayoutConfig } from '../linux/layout.ts';

export type KconfigValue =
  | { kind: 'tristate'; value: 'y' | 'm' | 'n'; line: number }
  | { kind: 'string'; value: string; line: number }
  | { kind: 'int'; value: bigint; raw: string; line: number }
  | { kind: 'hex'; value: bigint; raw: string; line: number };

export class Kconfig {
  constructor(readonly file: string, readonly values: Map<string, KconfigValue>) {}

  private key(name: string): string {
    return name.startsWith('CONFIG_') ? name : 'CONFIG_' + name;
  }

  get(name: string): KconfigValue | undefined {
    return this.values.get(this.key(name));
  }

  /** y or m. */
  enabled(name: string): boolean {
    const v = this.get(name);
    return v?.kind === 'tristate' && v.value !== 'n';
  }

  builtin(name: string): boolean {
    const v = this.get(name);
    return v?.kind === 'tristate' && v.value === 'y';
  }

  module(name: string): boolean {
    const v = this.get(name);
    return v?.kind === 'tristate' && v.value === 'm';
  }

  /** A numeric (int or hex) value, or `dflt` when unset; a non-number is an error naming the line. */
  number(name: string, dflt?: bigint): bigint | undefined {
    const v = this.get(name);
    if (v === undefined || (v.kind === 'tristate' && v.value === 'n')) return dflt;
    if (v.kind === 'int' || v.kind === 'hex') return v.value;
    throw new InputError(this.file, `${this.key(name)} is not a number`, v.line);
  }

  string(name: string): string | undefined {
    const v = this.get(name);
    return v?.kind === 'string' ? v.value : undefined;
  }
}

const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const NOT_SET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

export function parseKconfig(text: string, file = '<.config>'): Kconfig {
  const values = new Map<string, KconfigValue>();
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const ns = NOT_SET.exec(line);
    if (ns) { values.set(ns[1], { kind: 'tristate', value: 'n', line: lineNo }); continue; }
    if (line.startsWith('#')) continue;
    const m = SET.exec(line);
    if (!m) throw new InputError(file, `expected CONFIG_NAME=VALUE or "# CONFIG_NAME is not set", found ${JSON.stringify(line.slice(0, 60))}`, lineNo);
    values.set(m[1], parseValue(m[2], file, lineNo, m[1]));
  }
  return new Kconfig(file, values);
}

function parseValue(v: string, file: string, line: number, name: string): KconfigValue {
  if (v === 'y' || v === 'm' || v === 'n') return { kind: 'tristate', value: v, line };
  if (v.startsWith('"')) {
    let out = '';
    let i = 1;
    for (; i < v.length; i++) {
      const c = v[i];
      if (c === '\\') {
        if (i + 1 >= v.length) break;
        out += v[++i];
      } else if (c === '"') {
        break;
      } else {
        out += c;
      }
    }
    if (i >= v.length) throw new InputError(file, `${name}: unterminated string`, line);
    if (i !== v.length - 1) throw new InputError(file, `${name}: text after the closing quote: ${JSON.stringify(v.slice(i + 1, i + 30))}`, line);
    return { kind: 'string', value: out, line };
  }
  if (/^0[xX][0-9a-fA-F]+$/.test(v)) return { kind: 'hex', value: BigInt(v), raw: v, line };
  if (/^-?[0-9]+$/.test(v)) return { kind: 'int', value: BigInt(v), raw: v, line };
  throw new InputError(file, `${name}: value ${JSON.stringify(v.slice(0, 40))} is not y, m, n, a quoted string or a number`, line);
}

export function loadKconfig(file: string): Kconfig {
  return parseKconfig(readTextMaybeGz(file), file);
}

/** A numeric option within what the kernel's Kconfig allows (`rule` says where that is written); undefined when unset. */
function ranged(k: Kconfig, name: string, ok: (v: bigint) => boolean, rule: string): bigint | undefined {
  const v = k.number(name);
  if (v !== undefined && !ok(v)) {
    const at = k.get(name)!;
    throw new InputError(k.file, `CONFIG_${name}=${'raw' in at ? at.raw : String(v)}: expected ${rule}`, at.line);
  }
  return v;
}

/**
 * The Kconfig choices that move the x86-64 layout (src/linux/layout.ts), read from a .config.
 * The numbers are checked against arch/x86/Kconfig (6.1) and the link-time assertion of
 * arch/x86/kernel/vmlinux.lds.S (_end - LOAD_OFFSET <= KERNEL_IMAGE_SIZE).
 */
export function layoutConfigFromKconfig(k: Kconfig): LayoutConfig {
  if (k.values.size === 0) throw new InputError(k.file, 'no CONFIG_ settings: not a kernel .config');
  const randomizeBase = k.enabled('RANDOMIZE_BASE');
  const imageSize = randomizeBase ? 1n << 30n : 512n << 20n; // page_64_types.h KERNEL_IMAGE_SIZE
  const align = ranged(k, 'PHYSICAL_ALIGN', (v) => v >= 0x200000n && v <= 0x1000000n && v % 0x200000n === 0n,
    'a multiple of 0x200000 in 0x200000..0x1000000 (arch/x86/Kconfig PHYSICAL_ALIGN: "range 0x200000 0x1000000 if X86_64", "must be a multiple of 0x200000")');
  const start = ranged(k, 'PHYSICAL_START', (v) => v >= 0n && v < imageSize,
    `an address below KERNEL_IMAGE_SIZE 0x${imageSize.toString(16)} (vmlinux.lds.S asserts the image ends below it)`);
  const padding = ranged(k, 'RANDOMIZE_MEMORY_PHYSICAL_PADDING', (v) => v >= 0n && v <= 0x40n, '0x0..0x40 TiB (arch/x86/Kconfig: "range 0x0 0x40")');
  return {
    kasan: k.enabled('KASAN'),
    randomizeBase,
    physicalPaddingTb: k.enabled('RANDOMIZE_MEMORY') ? Number(padding ?? 0n) : undefined,
    physicalStart: start,
    physicalAlign: align,
    fixmap: {
      vsyscallEmulation: k.enabled('X86_VSYSCALL_EMULATION'),
      ohci1394DmaInit: k.enabled('PROVIDE_OHCI1394_DMA_INIT'),
      localApic: k.enabled('X86_LOCAL_APIC'),
      ioApic: k.enabled('X86_IO_APIC'),
      paravirtXxl: k.enabled('PARAVIRT_XXL'),
      intelMid: k.enabled('X86_INTEL_MID'),
      apeiGhes: k.enabled('ACPI_APEI_GHES'),
      intelTxt: k.enabled('INTEL_TXT'),
    },
  };
}
