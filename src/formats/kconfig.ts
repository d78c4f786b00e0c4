/**
 * Reader of a kernel `.config` (or /proc/config.gz): `CONFIG_X=y|m|n`, `CONFIG_X="string"`,
 * `CONFIG_X=123` / `=-1` / `=0x1000000`, and `# CONFIG_X is not set`. Strings escape `"` and `\`
 * with a backslash (scripts/kconfig/confdata.c conf_set_sym_val(): a backslash escapes the next
 * character, the first unescaped `"` ends the string; kconfig ignores text after it, this reader
 * reports it). Other `#` lines are comments. A symbol given twice keeps the last value, as
 * kconfig does.
 */
import { InputError } from './files.ts';
import { readTextMaybeGz } from './kallsyms.ts';

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
