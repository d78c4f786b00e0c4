/**
 * Reader of /proc/iomem: the kernel's resource tree (kernel/resource.c r_show()), one
 * `start-end : name` a line, nested by two spaces per level; start and end are inclusive.
 *
 * `systemRam()` gives the usable RAM ranges; `kernelImage()` the "Kernel code/rodata/data/bss"
 * resources that arch/x86/kernel/setup.c inserts (code = [__pa(_text), __pa(_etext) - 1], etc.).
 * Read without CAP_SYS_ADMIN every address prints as zero: that is reported, not guessed around.
 */
import { InputError } from './files.ts';
import { readTextMaybeGz } from './kallsyms.ts';
import { LIMITS, formatLimit } from './limits.ts';

export interface IomemNode {
  start: bigint;
  /** Inclusive, as printed. */
  end: bigint;
  name: string;
  depth: number;
  line: number;
  children: IomemNode[];
}

export interface PhysRange { start: bigint; end: bigint } // end exclusive

export interface KernelImageResources {
  code?: PhysRange;
  rodata?: PhysRange;
  data?: PhysRange;
  bss?: PhysRange;
}

export class Iomem {
  constructor(readonly file: string, readonly roots: IomemNode[]) {}

  /** Every node, depth first, in file order. */
  *nodes(): Generator<IomemNode> {
    const stack: IomemNode[] = [...this.roots].reverse();
    while (stack.length) {
      const n = stack.pop()!;
      yield n;
      for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
    }
  }

  find(name: string): IomemNode[] {
    return [...this.nodes()].filter((n) => n.name === name);
  }

  /** "System RAM" resources (outermost ones; a System RAM inside another is not counted twice). */
  systemRam(): PhysRange[] {
    const out: PhysRange[] = [];
    const stack: IomemNode[] = this.roots.slice(); // a stack, not recursion: the depth comes from the file
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.name === 'System RAM') out.push({ start: n.start, end: n.end + 1n });
      else for (const c of n.children) stack.push(c);
    }
    return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** Bytes of System RAM. */
  systemRamBytes(): bigint {
    return this.systemRam().reduce((s, r) => s + r.end - r.start, 0n);
  }

  /**
   * Whole 4 KiB pages of System RAM: each range trimmed to [PFN_UP(start), PFN_DOWN(end + 1)),
   * as memblock counts them (what the boot line "Memory: .../NNNK available" calls physpages).
   */
  systemRamPages(): bigint {
    let pages = 0n;
    for (const r of this.systemRam()) {
      const first = (r.start + 0xfffn) >> 12n;
      const last = r.end >> 12n;
      if (last > first) pages += last - first;
    }
    return pages;
  }

  /** max_pfn << PAGE_SHIFT: the end of the highest System RAM range, page-trimmed. */
  maxPhysAddr(): bigint {
    let m = 0n;
    for (const r of this.systemRam()) if ((r.end >> 12n) << 12n > m) m = (r.end >> 12n) << 12n;
    return m;
  }

  /** The kernel image resources (arch/x86/kernel/setup.c: code_resource, rodata_, data_, bss_resource). */
  kernelImage(): KernelImageResources {
    const pick = (name: string): PhysRange | undefined => {
      const n = this.find(name)[0];
      return n ? { start: n.start, end: n.end + 1n } : undefined;
    };
    return { code: pick('Kernel code'), rodata: pick('Kernel rodata'), data: pick('Kernel data'), bss: pick('Kernel bss') };
  }
}

const LINE = /^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$/;

export function parseIomem(text: string, file = '<iomem>'): Iomem {
  const roots: IomemNode[] = [];
  const stack: IomemNode[] = []; // stack[d] = last node at depth d
  let lineNo = 0;
  let nonZero = false;
  let count = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const m = LINE.exec(line);
    if (!m) throw new InputError(file, `expected "START-END : NAME", found ${JSON.stringify(line.slice(0, 60))}`, lineNo);
    const indent = m[1].length;
    if (indent % 2 !== 0) throw new InputError(file, `indentation of ${indent} spaces (nesting is two spaces a level)`, lineNo);
    const depth = indent / 2;
    if (depth > stack.length) throw new InputError(file, `nested ${depth} levels deep under a line ${stack.length === 0 ? 'that does not exist' : `at depth ${stack.length - 1}`}`, lineNo);
    if (depth >= LIMITS.iomemDepth) throw new InputError(file, `nested ${depth} levels deep, more than the ${LIMITS.iomemDepth} kasi reads (/proc/iomem nests a few levels)`, lineNo);
    if (m[2].length > 16 || m[3].length > 16) throw new InputError(file, 'address wider than 64 bits', lineNo);
    const start = BigInt('0x' + m[2]);
    const end = BigInt('0x' + m[3]);
    if (end < start) throw new InputError(file, `range ends (0x${m[3]}) before it starts (0x${m[2]})`, lineNo);
    if (start !== 0n || end !== 0n) nonZero = true;
    if (m[4] === 'System RAM' && end >= BigInt(LIMITS.ramBytes)) {
      throw new InputError(file, `System RAM up to 0x${m[3]}: kasi models at most ${formatLimit(LIMITS.ramBytes)} of RAM (the 4-level direct map, mm.rst)`, lineNo);
    }
    const node: IomemNode = { start, end, name: m[4], depth, line: lineNo, children: [] };
    if (depth > 0) {
      const parent = stack[depth - 1];
      if (nonZero && (start < parent.start || end > parent.end)) {
        throw new InputError(file, `0x${m[2]}-0x${m[3]} lies outside its parent ${parent.name} (line ${parent.line})`, lineNo);
      }
      parent.children.push(node);
    } else {
      roots.push(node);
    }
    stack.length = depth;
    stack.push(node);
    count++;
  }
  if (count === 0) throw new InputError(file, 'no resources found');
  if (!nonZero && count > 1) throw new InputError(file, 'every address is zero (read without CAP_SYS_ADMIN): read it as root');
  return new Iomem(file, roots);
}

export function loadIomem(file: string): Iomem {
  return parseIomem(readTextMaybeGz(file), file);
}
