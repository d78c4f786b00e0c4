/**
 * Reader of measured kernel code footprints, format `sci-code-footprints/1`
 * (test/fixtures/footprints/README.md): per test, the 4 KiB kernel text pages the kernel
 * executed, in first-touch order, the functions (kallsyms symbols holding executed code) and
 * the kernel entries ("parts") the test made — e.g. mmap + page fault + munmap.
 *
 * Only what the SCI replay needs is kept and checked; every error names the file and the field.
 * A test without `parts` (the timer interrupt) is read as one part made of the test's own pages
 * and functions.
 */
import { InputError, parseJson, readTextMaybeGz } from './files.ts';
import { isCanonical } from './limits.ts';

export const FOOTPRINTS_FORMAT = 'sci-code-footprints/1';

export type TestKind = 'syscall' | 'fault' | 'interrupt';

export interface FootprintFunction {
  name: string;
  /** TB executions over all measured calls. */
  count: number;
}

export interface FootprintPart {
  /** 'syscall', 'exc_page_fault', … as the fixture names the kernel entry; for a test without parts, the test's kind. */
  kind: string;
  /** The __x64_sys_* handler, or null (invalid syscall, exceptions, interrupts). */
  handler: string | null;
  /** Page VAs (4 KiB aligned), first-touch order. */
  textPages: bigint[];
  pagesOutsideEntryText: number;
  pagesOutsidePtiUserMap: number;
  functions: FootprintFunction[];
}

export interface FootprintTest {
  name: string;
  kind: TestKind;
  textPages: bigint[];
  pagesOutsideEntryText: number;
  pagesOutsidePtiUserMap: number;
  functions: FootprintFunction[];
  parts: FootprintPart[];
  /** False when the fixture had no `parts` and the test was read as one part. */
  hasParts: boolean;
}

export interface Footprints {
  file: string;
  /** `ranges`: [start, end) of the entry text, the KPTI user-mapped text, all kernel text. */
  ranges: { entry: [bigint, bigint]; pti: [bigint, bigint]; text: [bigint, bigint] };
  symbols: Map<string, bigint>;
  entryTextPages: bigint[];
  pagesCommonToAllSyscallTests: bigint[];
  kernelTextPagesTotal: number;
  tests: FootprintTest[];
}

const HEX = /^0x[0-9a-fA-F]{1,16}$/;
const KINDS: readonly string[] = ['syscall', 'fault', 'interrupt'];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Reader {
  constructor(readonly file: string) {}

  fail(field: string, what: string): never {
    throw new InputError(this.file, `field ${field}: ${what}`);
  }

  obj(v: unknown, field: string): Obj {
    if (!isObj(v)) this.fail(field, `expected an object, found ${show(v)}`);
    return v;
  }

  arr(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v)) this.fail(field, `expected an array, found ${show(v)}`);
    return v;
  }

  hex(v: unknown, field: string): bigint {
    if (typeof v !== 'string' || !HEX.test(v)) this.fail(field, `expected a 0x-prefixed hex string, found ${show(v)}`);
    return BigInt(v);
  }

  page(v: unknown, field: string): bigint {
    const p = this.hex(v, field);
    if (p % 4096n !== 0n) this.fail(field, `page address ${v as string} is not 4 KiB aligned`);
    // measured kernel text: canonical with 4-level paging, so with 5-level too
    if (!isCanonical(p, 4)) this.fail(field, `page address ${v as string} is not canonical (bits 63:47 must be equal, SDM 3A 3.3.7.1)`);
    return p;
  }

  count(v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(field, `expected a non-negative integer, found ${show(v)}`);
    return v;
  }

  str(v: unknown, field: string): string {
    if (typeof v !== 'string' || v === '') this.fail(field, `expected a non-empty string, found ${show(v)}`);
    return v;
  }

  pages(v: unknown, field: string): bigint[] {
    const out = this.arr(v, field).map((p, i) => this.page(p, `${field}[${i}]`));
    const seen = new Set<bigint>();
    out.forEach((p, i) => {
      if (seen.has(p)) this.fail(`${field}[${i}]`, `page 0x${p.toString(16)} listed twice (first-touch order lists a page once)`);
      seen.add(p);
    });
    return out;
  }

  range(v: unknown, field: string): [bigint, bigint] {
    const a = this.arr(v, field);
    if (a.length !== 2) this.fail(field, `expected [start, end], found ${a.length} values`);
    const s = this.hex(a[0], `${field}[0]`);
    const e = this.hex(a[1], `${field}[1]`);
    if (e <= s) this.fail(field, 'end is not above start');
    return [s, e];
  }

  /** `functions` of a test: [{name, count, …}]; of a part: [[name, count]]. */
  functions(v: unknown, field: string): FootprintFunction[] {
    return this.arr(v, field).map((f, i) => {
      const at = `${field}[${i}]`;
      if (Array.isArray(f)) {
        if (f.length < 2) this.fail(at, 'expected [name, count]');
        return { name: this.str(f[0], `${at}[0]`), count: this.count(f[1], `${at}[1]`) };
      }
      const o = this.obj(f, at);
      return { name: this.str(o.name, `${at}.name`), count: this.count(o.count, `${at}.count`) };
    });
  }

  /** n_text_pages must agree with the list, so a truncated list is caught. */
  checkedPages(o: Obj, at: string): bigint[] {
    const pages = this.pages(o.text_pages, `${at}.text_pages`);
    if (o.n_text_pages !== undefined && this.count(o.n_text_pages, `${at}.n_text_pages`) !== pages.length) {
      this.fail(`${at}.n_text_pages`, `says ${String(o.n_text_pages)} but text_pages lists ${pages.length}`);
    }
    return pages;
  }

  part(v: unknown, at: string): FootprintPart {
    const o = this.obj(v, at);
    const textPages = this.checkedPages(o, at);
    const outside = this.count(o.pages_outside_entry_text, `${at}.pages_outside_entry_text`);
    const outsidePti = this.count(o.pages_outside_pti_user_map, `${at}.pages_outside_pti_user_map`);
    if (outside > textPages.length) this.fail(`${at}.pages_outside_entry_text`, `${outside} exceeds the ${textPages.length} text pages`);
    const h = o.syscall_handler;
    if (h !== undefined && h !== null && typeof h !== 'string') this.fail(`${at}.syscall_handler`, `expected a string or null, found ${show(h)}`);
    return {
      kind: this.str(o.kind, `${at}.kind`), handler: (h as string | null | undefined) ?? null, textPages,
      pagesOutsideEntryText: outside, pagesOutsidePtiUserMap: outsidePti, functions: this.functions(o.functions, `${at}.functions`),
    };
  }

  test(name: string, v: unknown): FootprintTest {
    const at = `syscalls.${name}`;
    const o = this.obj(v, at);
    const kind = this.str(o.kind, `${at}.kind`);
    if (!KINDS.includes(kind)) this.fail(`${at}.kind`, `expected one of ${KINDS.join(', ')}, found ${show(kind)}`);
    const textPages = this.checkedPages(o, at);
    const outside = this.count(o.pages_outside_entry_text, `${at}.pages_outside_entry_text`);
    const outsidePti = this.count(o.pages_outside_pti_user_map, `${at}.pages_outside_pti_user_map`);
    if (outside > textPages.length) this.fail(`${at}.pages_outside_entry_text`, `${outside} exceeds the ${textPages.length} text pages`);
    const functions = this.functions(o.functions, `${at}.functions`);
    const hasParts = o.parts !== undefined;
    const parts = hasParts
      ? this.arr(o.parts, `${at}.parts`).map((p, i) => this.part(p, `${at}.parts[${i}]`))
      : [{ kind, handler: null, textPages, pagesOutsideEntryText: outside, pagesOutsidePtiUserMap: outsidePti, functions }];
    if (parts.length === 0) this.fail(`${at}.parts`, 'empty');
    const all = new Set(textPages);
    parts.forEach((p, i) => p.textPages.forEach((pg, j) => {
      if (!all.has(pg)) this.fail(`${at}.parts[${i}].text_pages[${j}]`, `page 0x${pg.toString(16)} is not in the test's text_pages`);
    }));
    return { name, kind: kind as TestKind, textPages, pagesOutsideEntryText: outside, pagesOutsidePtiUserMap: outsidePti, functions, parts, hasParts };
  }
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** Parse the text of a footprints file. */
export function parseFootprints(text: string, file = '<footprints>'): Footprints {
  const r = new Reader(file);
  const doc = parseJson(text, file);
  if (!isObj(doc)) throw new InputError(file, 'expected a JSON object');
  if (doc.format !== FOOTPRINTS_FORMAT) r.fail('format', `expected "${FOOTPRINTS_FORMAT}", found ${show(doc.format)}`);
  const ranges = r.obj(doc.ranges, 'ranges');
  const symbols = new Map<string, bigint>();
  for (const [k, v] of Object.entries(r.obj(doc.symbols ?? {}, 'symbols'))) symbols.set(k, r.hex(v, `symbols.${k}`));
  const sc = r.obj(doc.syscalls, 'syscalls');
  const tests = Object.entries(sc).map(([name, v]) => r.test(name, v));
  if (tests.length === 0) r.fail('syscalls', 'no tests');
  return {
    file,
    ranges: { entry: r.range(ranges.entry, 'ranges.entry'), pti: r.range(ranges.pti, 'ranges.pti'), text: r.range(ranges.text, 'ranges.text') },
    symbols,
    entryTextPages: r.pages(doc.entry_text_pages, 'entry_text_pages'),
    pagesCommonToAllSyscallTests: r.pages(doc.pages_common_to_all_syscall_tests ?? [], 'pages_common_to_all_syscall_tests'),
    kernelTextPagesTotal: doc.kernel_text_pages_total === undefined ? 0 : r.count(doc.kernel_text_pages_total, 'kernel_text_pages_total'),
    tests,
  };
}

/** Read a footprints file (plain or gzip). */
export function loadFootprints(file: string): Footprints {
  return parseFootprints(readTextMaybeGz(file), file);
}
