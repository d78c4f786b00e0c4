/**
 * The limits kasi puts on what it reads, in one table, each with the reason it is where it is.
 * They are checked where a value is parsed (the readers in io/, the scenario schema), so a
 * hostile or absurd file stops with one line naming the file, the field and the limit, before
 * anything runs — never by a hang, a heap that dies or a stack trace deep in the model.
 *
 * The numbers are what the model can really do (measured on the 2-core CI machine) or what
 * Linux itself allows; the messages quote the reason.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const TiB = 1024 * 1024 * MiB;

export const LIMITS = {
  /**
   * Text read from one file, after gunzip: 256 MiB. V8 cannot hold a string above 2^29 - 24
   * characters (Node 20's buffer.constants.MAX_STRING_LENGTH), and a JSON document becomes
   * several times its size in objects; the largest shipped input (a capture) is 8 MiB.
   */
  textBytes: 256 * MiB,
  /** A scenario is written by hand: 1 MiB holds thousands of tenants (the examples are under 10 KiB). */
  scenarioBytes: 1 * MiB,
  /**
   * Nesting of JSON arrays and objects: 64. The formats nest at most 5 deep; V8's JSON.parse and
   * every walk over the result recurse once per level, so an unbounded depth is a stack overflow.
   */
  jsonDepth: 64,
  /** Nesting of a scenario's YAML: 64 (the format nests 6 deep; the yaml package's parser recurses once a level). */
  yamlDepth: 64,
  /** Nesting of /proc/iomem: 16 levels (kernel/resource.c nests bus > device > region; real files stay under 6). */
  iomemDepth: 16,
  /**
   * RAM: 64 TiB. It is the 4-level direct map (Documentation/arch/x86/x86_64/mm.rst: "64 TB |
   * direct mapping of all physical memory") and MAXPHYADDR 46 of the Intel profiles; booting
   * more (5-level) was measured at 11 s and 1.3 GiB per boot for 256 TiB and 98 s and 3 GiB for
   * 1 PiB, and every isolation entry of every seed boots again.
   */
  ramBytes: 64 * TiB,
  /** Leaves one root of a capture may reach through shared tables: 2^26, above what 2^17 table pages (the text limit) reach without sharing. */
  leavesPerRoot: 2 ** 26,
} as const;

/** 64TiB, 256MiB: the limits as the messages print them. */
export function formatLimit(bytes: number): string {
  for (const [u, n] of [['TiB', TiB], ['MiB', MiB], ['KiB', KiB]] as const) if (bytes >= n && bytes % n === 0) return `${bytes / n}${u}`;
  return `${bytes} bytes`;
}

/**
 * The deepest nesting of `[` and `{` in JSON text, outside strings; stops counting past `max`
 * (so the scan is linear and allocation-free whatever the input). A scan rather than a parse:
 * it must run before JSON.parse, which is what overflows.
 */
export function jsonDepth(text: string, max: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) deepest = depth;
      if (deepest > max) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/**
 * A canonical linear address: bits 63:N-1 all equal, N = 48 with 4-level paging and 57 with
 * 5-level (SDM Vol. 3A 3.3.7.1 "Canonical Addressing", 4.5). A non-canonical address faults
 * (#GP) before any walk, so no page of a footprint or capture can have one.
 */
export function isCanonical(va: bigint, levels: 4 | 5): boolean {
  const top = BigInt.asUintN(64, va) >> BigInt(levels === 5 ? 56 : 47);
  return top === 0n || top === (1n << BigInt(levels === 5 ? 8 : 17)) - 1n;
}

/**
 * How deep YAML text nests, from a scan before any parser sees it (the `yaml` package recurses
 * once per level, and overflows its stack near 1000): flow collections (`[` `{` outside quotes and
 * comments) plus block nesting (each indentation deeper than the enclosing line's, and each
 * compact `- ` of a line). Returns the depth and its line; stops counting past `max`.
 */
export function yamlDepth(text: string, max: number): { depth: number; line: number } {
  const indents: number[] = [];
  let flow = 0;
  let deepest = 0;
  let at = 1;
  let line = 1;
  let quote = 0;
  for (let i = 0; i < text.length;) {
    // start of a line: its indentation and compact sequence dashes (outside flow and quotes)
    let col = 0;
    while (text.charCodeAt(i + col) === 0x20) col++;
    const c0 = text.charCodeAt(i + col);
    let block = indents.length;
    if (flow === 0 && quote === 0 && c0 !== 0x0a && c0 !== 0x23 && !Number.isNaN(c0)) {
      while (indents.length > 0 && indents[indents.length - 1] >= col) indents.pop();
      indents.push(col);
      block = indents.length;
      for (let k = i + col; text.charCodeAt(k) === 0x2d && text.charCodeAt(k + 1) === 0x20; k += 2) block++;
    }
    for (; i < text.length && text.charCodeAt(i) !== 0x0a; i++) {
      const c = text.charCodeAt(i);
      if (quote !== 0) {
        if (c === 0x5c && quote === 0x22) i++;
        else if (c === quote) quote = 0;
      } else if (c === 0x22 || c === 0x27) quote = c;
      else if (c === 0x23 && (i === 0 || text.charCodeAt(i - 1) === 0x20)) { while (i < text.length && text.charCodeAt(i) !== 0x0a) i++; break; }
      else if (c === 0x5b || c === 0x7b) flow++;
      else if ((c === 0x5d || c === 0x7d) && flow > 0) flow--;
      if (block + flow > deepest) { deepest = block + flow; at = line; }
      if (deepest > max) return { depth: deepest, line: at };
    }
    if (block + flow > deepest) { deepest = block + flow; at = line; }
    if (deepest > max) return { depth: deepest, line: at };
    if (quote === 0x27) quote = 0; // a single-quoted scalar does not escape newlines; keep it simple: end it
    i++;
    line++;
  }
  return { depth: deepest, line: at };
}
