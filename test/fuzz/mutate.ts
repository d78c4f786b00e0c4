/**
 * Mutations for the fuzz tests (test/fuzz/readers.fuzz.test.ts), as fast-check arbitraries of
 * text. Three kinds, mixed:
 * - structure-preserving leaf mutations: a valid YAML or JSON seed is parsed into a tree, one to
 *   four of its leaves (or subtrees) are replaced by hostile values — the edge numbers, huge and
 *   tiny sizes and times, inherited property names, NULs, deep nesting — or deleted or
 *   duplicated, and the tree is written back: the file stays valid YAML/JSON, so the reader's
 *   own checks (not the syntax parser) meet the mutation;
 * - line mutations for line formats (kallsyms, /proc/iomem, .config, JSON lines): a field of a
 *   line replaced, a line duplicated, deleted, moved, indented or cut;
 * - raw text: random characters, and seeds cut short or with bytes flipped.
 */
import fc from 'fast-check';
import { stringify as yamlStringify, parse as yamlParse } from 'yaml';

type Tree = unknown;
type Path = (string | number)[];

/** Numbers at the edges of what JavaScript, the engine's typed arrays and the hardware hold. */
const EDGE_NUMBERS = [0, -0, -1, 1, 0.5, 1e-300, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 52, 2 ** 53, 2 ** 53 + 2, 1e15, 1e300, 1e308, -1e308, 255, 256, 511, 512, 4096, 8192];
/** Strings that have broken or fooled readers: inherited names, NULs, hex and unit edge values. */
const EDGE_STRINGS = [
  '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '\0', 'a\0b', '"', '\\', '--', '=', '"\0', ' ',
  '0x0', '0x1', '0xfff', '0x1000', '0xffffffffffffffff', '0x8000000000000000', '0x0000800000000000', '0x10000000000000', '0x-1', '0x',
  '0B', '4KiB', '16TiB', '64TiB', '1PiB', '1e300', 'NaN', 'Infinity', '-1', '0.0001ns', '1ns', '1000s', '1e300ns', '0cycles', '9007199254740993cycles',
  'pti=maybe', 'asi=', 'nosmt=force', 'mitigations=off', 'asi=kvm-asi-2019\0', 'x'.repeat(5000),
];

const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...EDGE_STRINGS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.nat({ max: 64 }).map((n) => `0x${'f'.repeat(Math.max(1, n % 17))}`) },
);
const hostileNumber = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_NUMBERS) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
);
/** Nesting a few hundred levels deep (readers must bound depth, not recurse on it). */
const deep = fc.integer({ min: 50, max: 400 }).map((n) => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { a: v };
  return v;
});

/** A value to put where a leaf was. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: hostileNumber },
  { weight: 5, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.array(hostileNumber, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, hostileNumber, { maxKeys: 2 }) },
  { weight: 1, arbitrary: deep },
);

/** Every path in `t` to a leaf or a container, in a fixed order. */
function paths(t: Tree, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(t)) t.forEach((v, i) => paths(v, [...at, i], out));
  else if (t !== null && typeof t === 'object') for (const k of Object.keys(t)) paths((t as Record<string, unknown>)[k], [...at, k], out);
  return out;
}

/** set: any hostile value; tweak: one of the leaf's own type (a number for a number…), so more files get past the schema to the checks of meaning. */
type Op = { kind: 'set' | 'tweak' | 'delete' | 'dup' | 'rename'; pick: number; value: unknown; num: number; str: string };
const op: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom<Op['kind']>('set', 'set', 'tweak', 'tweak', 'tweak', 'delete', 'dup', 'rename'),
  pick: fc.nat(),
  value: hostileValue,
  num: hostileNumber,
  str: hostileString,
});

function apply(tree: Tree, o: Op): Tree {
  const all = paths(tree);
  const p = all[o.pick % all.length];
  if (p.length === 0) return o.kind === 'set' ? o.value : tree;
  const parent = p.slice(0, -1).reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], tree);
  const key = p[p.length - 1];
  if (o.kind === 'tweak') {
    const old = (parent as Record<string | number, unknown>)[key];
    const v = typeof old === 'number' ? o.num : typeof old === 'string' ? o.str : typeof old === 'boolean' ? !old : o.value;
    (parent as Record<string | number, unknown>)[key] = v;
    return tree;
  }
  if (Array.isArray(parent)) {
    const i = key as number;
    if (o.kind === 'set') parent[i] = o.value;
    else if (o.kind === 'delete') parent.splice(i, 1);
    else if (o.kind === 'dup') parent.splice(i, 0, structuredClone(parent[i]));
    return tree;
  }
  const obj = parent as Record<string, unknown>;
  const k = String(key);
  if (o.kind === 'set') obj[k] = o.value;
  else if (o.kind === 'delete') delete obj[k];
  else if (o.kind === 'dup') obj[`${k}_`] = obj[k];
  else if (typeof o.value === 'string') { obj[o.value] = obj[k]; delete obj[k]; }
  return tree;
}

/** Leaf mutations of one of `seeds` (JS trees), written back with `write`. */
export function treeMutations(seeds: readonly Tree[], write: (t: Tree) => string): fc.Arbitrary<string> {
  return fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(op, { minLength: 1, maxLength: 4 }))
    .map(([i, ops]) => write(ops.reduce((t, o) => apply(t, o), structuredClone(seeds[i]))));
}

export const writeJson = (t: Tree): string => JSON.stringify(t) ?? 'null';
export const writeYaml = (t: Tree): string => yamlStringify(t, { aliasDuplicateObjects: false });
export const readYaml = (text: string): Tree => yamlParse(text);

/** Line mutations of one of `seeds` (texts): fields replaced, lines duplicated, deleted, moved, indented, cut. */
export function lineMutations(seeds: readonly string[], token: fc.Arbitrary<string> = hostileString): fc.Arbitrary<string> {
  const lineOp = fc.record({ kind: fc.constantFrom('field', 'field', 'field', 'dup', 'delete', 'move', 'indent', 'cut'), line: fc.nat(), field: fc.nat(), to: fc.nat(), token });
  return fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(lineOp, { minLength: 1, maxLength: 4 })).map(([i, ops]) => {
    const lines = seeds[i].split('\n');
    for (const o of ops) {
      const n = o.line % lines.length;
      const l = lines[n];
      switch (o.kind) {
        case 'field': {
          const f = l.split(/(\s+)/);
          f[(o.field % Math.max(1, Math.ceil(f.length / 2))) * 2] = o.token;
          lines[n] = f.join('');
          break;
        }
        case 'dup': lines.splice(n, 0, l); break;
        case 'delete': lines.splice(n, 1); break;
        case 'move': lines.splice(n, 1); lines.splice(o.to % (lines.length + 1), 0, l); break;
        case 'indent': lines[n] = ' '.repeat(o.to % 40) + l; break;
        case 'cut': lines[n] = l.slice(0, o.to % (l.length + 1)); break;
      }
      if (lines.length === 0) lines.push('');
    }
    return lines.join('\n');
  });
}

/** Random text, and seeds cut short or with characters changed. */
export function rawMutations(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.tuple(fc.constantFrom(...seeds), fc.nat()).map(([s, n]) => s.slice(0, n % (s.length + 1))),
    fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 8 }))
      .map(([s, edits]) => edits.reduce((t, [at, c]) => { const k = at % (t.length + 1); return t.slice(0, k) + c + t.slice(k + 1); }, s)),
  );
}

/** All three kinds for a tree format (`weights`: tree, raw). */
export function treeFormat(seeds: readonly Tree[], texts: readonly string[], write: (t: Tree) => string): fc.Arbitrary<string> {
  return fc.oneof({ weight: 8, arbitrary: treeMutations(seeds, write) }, { weight: 1, arbitrary: rawMutations(texts) });
}

/** All kinds for a line format. */
export function lineFormat(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof({ weight: 8, arbitrary: lineMutations(seeds) }, { weight: 1, arbitrary: rawMutations(seeds) });
}
