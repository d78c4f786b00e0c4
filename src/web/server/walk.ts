/**
 * The page-walk explorer's answers (issue 13): one VA through a capture's tables, as
 * `kasi translate --json` prints it (report/translation.ts), plus each level's entry decoded bit
 * by bit. Captures are named from a fixed list built at startup (test/fixtures/captures/*), never
 * by a request path.
 *
 * A capture takes ~0.7 s to load, so each is loaded once and kept, twice: the walk runs on one
 * copy and sets A/D bits there, as the hardware does (SDM 4.8); the entries it used are then
 * restored from the pristine copy, and the CPU registers from the capture's, so every request
 * walks the tables exactly as captured — as `kasi translate`, which loads the file each time.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { entryBits, ENTRY_NAMES, hex16, resolveRoot, translationJson, type EntryField } from '../../report/translation.ts';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, CR0_WP } from '../../x86/bits.ts';
import { InputError, loadPtImage, type PtImage } from '../../x86/ptimage.ts';
import { Translation, vaHalves, walkFrom } from '../../x86/walk.ts';
import { RequestError } from './scenario-input.ts';

export const CAPTURES_DIR = fileURLToPath(new URL('../../../test/fixtures/captures/', import.meta.url));
const ACCESS: Record<string, number> = { read: ACCESS_READ, write: ACCESS_WRITE, exec: ACCESS_FETCH };
const REGS = ['cr0', 'cr3', 'cr4', 'efer', 'rflags', 'cpl', 'pkru', 'pkrs'] as const;

export interface WalkRequest { capture: string; va: string; root?: string; access?: string; user?: boolean; cr4?: string; wp?: boolean }
export interface WalkLevel { level: number; entry: string; addr: string; value: string; fields: EntryField[] }

interface Loaded { work: PtImage; pristine: PtImage; regs: Record<string, number> }

export class Captures {
  readonly names: string[];
  private readonly loaded = new Map<string, Loaded>();

  constructor(private readonly dir = CAPTURES_DIR) {
    this.names = existsSync(dir) ? readdirSync(dir).filter((d) => existsSync(join(dir, d, 'kernel.json.gz'))).sort() : [];
  }

  /** The capture file of `name`, or a 404 naming the list. */
  file(name: string): string {
    if (!this.names.includes(name)) throw new RequestError(404, `unknown capture ${JSON.stringify(name)}: expected one of ${this.names.join(', ')}`);
    return join(this.dir, name, 'kernel.json.gz');
  }

  private get(name: string): Loaded {
    let l = this.loaded.get(name);
    if (l === undefined) {
      const f = this.file(name);
      const work = loadPtImage(f);
      const cpu = work.cpu as unknown as Record<string, number>;
      l = { work, pristine: loadPtImage(f), regs: Object.fromEntries(REGS.map((k) => [k, cpu[k]])) };
      this.loaded.set(name, l);
    }
    return l;
  }

  /** The capture's roots, CR0/CR4 and paging depth, for the form. */
  info(name: string): { roots: Record<string, string>; active: string; cr0: string; cr4: string; levels: number } {
    const { pristine: img, regs } = this.get(name);
    return { roots: Object.fromEntries(Object.entries(img.roots).map(([k, v]) => [k, '0x' + v.toString(16)])), active: img.active_root, cr0: '0x' + regs.cr0.toString(16), cr4: '0x' + regs.cr4.toString(16), levels: img.paging_levels };
  }

  walk(q: WalkRequest): { translation: Record<string, unknown>; levels: WalkLevel[]; cr0: string; cr4: string; cpl: number } {
    const access = ACCESS[q.access ?? 'read'];
    if (access === undefined) throw new RequestError(400, `access: expected read, write or exec, found ${JSON.stringify(q.access)}`);
    if (q.cr4 !== undefined && !/^0x[0-9a-fA-F]{1,16}$/.test(q.cr4)) throw new RequestError(400, `cr4: expected a 0x hex value, found ${JSON.stringify(q.cr4)}`);
    if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(q.va)) throw new RequestError(400, `va: expected at most 16 hex digits, e.g. 0xffffffff81000000, found ${JSON.stringify(q.va)}`);
    const va = BigInt(q.va.startsWith('0x') ? q.va : '0x' + q.va);
    const l = this.get(q.capture);
    let name: string;
    let root: number;
    try {
      ({ name, root } = resolveRoot(l.pristine, q.root));
    } catch (err) {
      if (err instanceof InputError) throw new RequestError(400, `root: ${err.message.slice(err.file.length + 2)}`);
      throw err;
    }
    const cpu = l.work.cpu;
    // CR0 is a 32-bit register with PG (bit 31) set: keep it unsigned through JavaScript's bit operators.
    const cr0 = (q.wp === undefined ? l.regs.cr0 : q.wp ? l.regs.cr0 | CR0_WP : l.regs.cr0 & ~CR0_WP) >>> 0;
    cpu.load({ ...l.regs, cr0, cpl: q.user ? 3 : 0, ...(q.cr4 !== undefined ? { cr4: BigInt(q.cr4) } : {}) });
    const t = new Translation();
    const { lo, hi } = vaHalves(va);
    walkFrom(l.work.mem, cpu, root, lo, hi, access, t);
    const levels: WalkLevel[] = [];
    for (let level = l.work.paging_levels; level >= 1; level--) {
      const addr = t.entryAddr[level];
      if (addr < 0) continue;
      const value = readEntry(l.pristine, addr);
      levels.push({ level, entry: ENTRY_NAMES[level], addr: '0x' + addr.toString(16), value: hex16(value), fields: entryBits(value, level) });
      writeEntry(l.work, addr, value); // undo the walk's A/D updates
    }
    return { translation: translationJson(va, name, t), levels, cr0: '0x' + cr0.toString(16), cr4: '0x' + cpu.cr4.toString(16), cpl: cpu.cpl };
  }
}

function readEntry(img: PtImage, pa: number): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(img.mem.readByte(pa + i));
  return v;
}

function writeEntry(img: PtImage, pa: number, v: bigint): void {
  for (let i = 0; i < 8; i++) img.mem.writeByte(pa + i, Number((v >> BigInt(8 * i)) & 0xffn));
}
