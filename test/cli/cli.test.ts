/**
 * The CLI end to end, as a user runs it (tsx src/cli/main.ts …, the binary `npx tsx` runs):
 * golden output from QEMU for `mappings`, known translations for `translate`, and the
 * contract for bad input — exit code 2 and ONE line on stderr naming the file and the
 * problem, no stack trace.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { expectInputError, kasi } from '../helpers/kasi-cli.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CAP = join(ROOT, 'test/fixtures/captures/la48-pti-nokaslr');
const TMP = mkdtempSync(join(tmpdir(), 'kasi-cli-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));


describe('kasi mappings', () => {
  it("prints QEMU's info tlb byte for byte for the active root", async () => {
    const r = await kasi('mappings', join(CAP, 'kernel.json.gz'));
    expect(r.status).toBe(0);
    const want = gunzipSync(readFileSync(join(CAP, 'kernel.tlb.txt.gz'))).toString('latin1').replace(/\r\n/g, '\n');
    expect(r.stdout.length).toBe(want.length);
    expect(r.stdout === want).toBe(true);
  });

  it('prints JSON lines for another root', async () => {
    const r = await kasi('mappings', join(CAP, 'kernel.json.gz'), '--root', 'user', '--json');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const tlb = gunzipSync(readFileSync(join(CAP, 'user.tlb.txt.gz'))).toString('latin1').trimEnd().split('\r\n');
    expect(lines).toHaveLength(tlb.length);
    // The first leaf QEMU listed for the user root: the executable's first page, 4 KiB, user.
    const [va, pa] = tlb[0].split(/:? /);
    expect(JSON.parse(lines[0])).toMatchObject({ va: `0x${va}`, pa: `0x${pa}`, size: 4096 });
    expect(lines.some((l) => JSON.parse(l).size === 2 * 1024 * 1024)).toBe(true); // the THP
  });
});

describe('kasi translate', () => {
  it('translates a kernel VA and answers #GP for a non-canonical one', async () => {
    const r = await kasi('translate', join(CAP, 'kernel.json.gz'), '0xffffffff81c00080', '0x8000000000000000');
    expect(r.status).toBe(0);
    const [entry, gp] = r.stdout.trimEnd().split('\n');
    // entry_SYSCALL_64 (kallsyms) at __pa_symbol = va - __START_KERNEL_map (phys_base 0), in a 2 MiB page.
    expect(entry).toMatch(/^0xffffffff81c00080 -> 0x0000000001c00080 +2MiB page, leaf PDE \(level 2\)/);
    expect(gp).toMatch(/^0x8000000000000000 -> #GP/);
  });

  it('translates a user VA from user mode through the user root (guest pagemap: pfn 0x45e9)', async () => {
    const r = await kasi('translate', join(CAP, 'user.json.gz'), '--user', '--json', '0x401530', '0x7fc7fb93b000');
    expect(r.status).toBe(0);
    const [text, hole] = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(text).toMatchObject({ ok: true, pa: '0x00000000045e9530', page_size: 4096, level: 1, user: true, writable: false });
    // A PROT_NONE page: not present, user-mode read -> error code 0x4 (U=1), stopped at the PTE.
    expect(hole).toMatchObject({ ok: false, vector: '#PF', error_code: '0x4', level: 1, bits: { P: 0, W: 0, U: 1, RSVD: 0, ID: 0, PK: 0 } });
  });
});

describe('bad input', () => {
  it('a truncated .json.gz', async () => {
    const f = join(TMP, 'truncated.json.gz');
    const whole = readFileSync(join(CAP, 'user.json.gz'));
    writeFileSync(f, whole.subarray(0, whole.length >> 1));
    expectInputError(await kasi('mappings', f), f, /truncated|corrupt/);
  });

  it('a JSON capture with a missing field', async () => {
    const f = join(TMP, 'missing.json');
    writeFileSync(f, JSON.stringify({ format: 'x86-pt-oracle/1', paging_levels: 4 }));
    expectInputError(await kasi('ptdump', f), f, /regs/);
  });

  it('an unknown root', async () => {
    const f = join(CAP, 'user.json.gz');
    expectInputError(await kasi('mappings', f, '--root', 'guest'), f, /unknown root "guest"/);
  });

  it('a malformed VA', async () => {
    const f = join(CAP, 'user.json.gz');
    expectInputError(await kasi('translate', f, '0xffffffff81000000', '0xzz'), f, /bad virtual address "0xzz"/);
  });
});
