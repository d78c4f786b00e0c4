/**
 * Every Markdown file a source comment points a reader at exists in the repository: a comment
 * that cites "docs/DESIGN.md" or "test/fixtures/access/README.md" is only worth its words if the
 * file is there on a fresh clone (paths are from the repository root; a bare name is looked for
 * next to the file that cites it).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) { if (e !== 'node_modules' && e !== 'fixtures') out.push(...sources(p)); } else if (/\.(ts|mjs|js)$/.test(e)) out.push(p);
  }
  return out;
}

describe('documentation references', () => {
  it('every *.md a source file names exists', () => {
    const missing: string[] = [];
    for (const f of ['src', 'test', 'bench', 'scripts'].flatMap((d) => sources(join(ROOT, d)))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?<![\w/.-])((?:\.\.\/)*[\w.-]+(?:\/[\w.-]+)*\.md)\b/g)) {
        const ref = m[1];
        if (ref.startsWith('../shared/')) { missing.push(`${f.slice(ROOT.length + 1)}: ${ref} (outside the repository)`); continue; }
        if (!existsSync(join(ROOT, ref)) && !existsSync(join(dirname(f), ref))) missing.push(`${f.slice(ROOT.length + 1)}: ${ref}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
