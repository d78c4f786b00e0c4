/**
 * The `kasi serve` API without a browser (fastify.inject, and a real socket for the event
 * stream). Truth: what the CLI path computes for the same input — `kasi translate --json`
 * (translateImage, which loads the capture afresh), `kasi run --json` (runSeeds + summarize +
 * formatRunJson with the same text and seeds), `kasi show --json` of the stored run (a child
 * process), `kasi run --trace`'s JSON — and the scenario
 * loader's own messages and positions for bad uploads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/web/server/app.ts';
import { CAPTURES_DIR } from '../../src/web/server/walk.ts';
import { translateImage } from '../../src/cli/commands/translate.ts';
import { kasiRun } from '../helpers/kasi-cli.ts';
import { openStore } from '../../src/store/db.ts';
import { getRun, listRuns } from '../../src/store/query.ts';
import { diffRuns } from '../../src/store/diff.ts';
import { historyJson } from '../../src/store/show.ts';
import { loadPtImage } from '../../src/x86/ptimage.ts';
import { parseScenario, parseTime } from '../../src/scenario/load.ts';
import { runSeeds } from '../../src/sim/pool.ts';
import { summarize } from '../../src/sim/seeds.ts';
import { formatRunJson } from '../../src/report/run-json.ts';
import type { SimTime } from '../../src/sim/scenario-types.ts';
import { traceScenario } from '../../src/report/trace-run.ts';
import { checkTrace } from '../../src/report/trace.ts';
import { WEB_TRACE_LIMIT } from '../../src/web/server/trace-jobs.ts';

const dir = mkdtempSync(join(tmpdir(), 'kasi-web-'));
const db = join(dir, 'kasi.db');
const app = buildServer({ db, appDir: null, workers: 2 });
const CAP = join(CAPTURES_DIR, 'la48-pti-nokaslr');
afterAll(async () => { await app.close(); rmSync(dir, { recursive: true, force: true }); });

const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });
const waitDone = async (id: number): Promise<Record<string, unknown>> => {
  for (;;) {
    const s = JSON.parse((await app.inject({ url: `/api/runs/${id}` })).body).state;
    if (s.status !== 'running') return s;
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe('page walks: the same JSON as kasi translate', () => {
  // One capture (the folder names it, as the API does); kernel.json.gz holds both the kernel and the user root.
  const cases: Array<{ va: string; root?: string; user?: boolean; access?: string }> = [
    { va: '0xffffffff81c00080' }, // kernel text through a 2 MiB PDE
    { va: '0x8000000000000000' }, // non-canonical: #GP
    { va: '0xffff888000000000', access: 'exec' }, // the direct map is NX: #PF
    { va: '0xffffffff81c00080', root: 'user', user: true }, // kernel text from CPL 3 on the KPTI user root
    { va: '0x401530', root: 'user', user: true, access: 'write' },
  ];
  it.each(cases)('$va (root $root, user $user, $access)', async (c) => {
    const r = await post('/api/walk', { capture: 'la48-pti-nokaslr', ...c });
    expect(r.statusCode).toBe(200);
    const cli = JSON.parse(translateImage(join(CAP, 'kernel.json.gz'), [c.va], { json: true, root: c.root, user: c.user, access: c.access })[0]);
    expect(r.json().translation).toEqual(cli);
  });

  it('shows each level\'s entry as the capture holds it, request after request', async () => {
    // Every leaf of these captures already has A=1 (and D=1 when writable), so the walk's A/D
    // updates (undone by walk.ts) cannot change an answer here; the values must still be the file's.
    const va = '0xffff888001000000';
    const fresh = loadPtImage(join(CAP, 'kernel.json.gz'));
    const at = (pa: bigint) => { let v = 0n; for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(fresh.mem.readByte(Number(pa) + i)); return v; };
    const cli = JSON.parse(translateImage(join(CAP, 'kernel.json.gz'), [va], { json: true, access: 'write' })[0]);
    for (let i = 0; i < 3; i++) {
      const r = (await post('/api/walk', { capture: 'la48-pti-nokaslr', va, access: 'write' })).json();
      expect(r.translation).toEqual(cli);
      for (const l of r.levels) expect(BigInt(l.value)).toBe(at(BigInt(l.addr)));
    }
  });

  it('decodes each level: each entry points at the next one, the last is the leaf the translation names', async () => {
    const r = JSON.parse((await post('/api/walk', { capture: 'la48-pti-nokaslr', va: '0xffffffff81c00080' })).body);
    expect(r.levels.map((l: { entry: string }) => l.entry)).toEqual(['PML4E', 'PDPTE', 'PDE']);
    for (let i = 0; i + 1 < r.levels.length; i++) {
      const next = r.levels[i].fields.find((f: { name: string }) => f.name === 'next table').value;
      expect(BigInt(r.levels[i + 1].addr) & ~0xfffn).toBe(BigInt(next));
      // SDM 4.5: the entry's index is VA bits 47:39, 38:30, 29:21 for PML4E, PDPTE, PDE
      const shift = [39n, 30n, 21n][i + 1];
      expect((BigInt(r.levels[i + 1].addr) & 0xfffn) / 8n).toBe((0xffffffff81c00080n >> shift) & 511n);
    }
    expect(r.levels.at(-1).value).toBe(r.translation.leaf);
    expect(r.cr0).toMatch(/^0x8[0-9a-f]{7}$/); // PG (bit 31) and WP set, as captured
    expect(BigInt(r.cr0) & (1n << 16n)).toBe(1n << 16n);
    expect(r.levels.at(-1).fields.find((f: { name: string }) => f.name === 'PS').value).toBe('1');
  });

  it('applies CR0.WP as the SDM says: a supervisor write to read-only kernel text faults with WP=1 and goes through with WP=0 (4.6.1)', async () => {
    const w = async (wp: boolean) => (await post('/api/walk', { capture: 'la48-pti-nokaslr', va: '0xffffffff81c00080', access: 'write', wp })).json();
    const on = await w(true);
    expect(on.translation).toMatchObject({ ok: false, vector: '#PF', bits: { P: 1, W: 1, U: 0 } });
    const off = await w(false);
    expect(off.translation).toMatchObject({ ok: true, writable: false });
    expect(BigInt(off.cr0) & (1n << 16n)).toBe(0n);
  });

  it('refuses a capture outside the list, an unknown root, extra fields and a bad VA with JSON errors', async () => {
    for (const [body, status, re] of [
      [{ capture: '../../etc', va: '0x0' }, 400, /capture must match pattern/],
      [{ capture: 'nope', va: '0x0' }, 404, /unknown capture "nope": expected one of la48-pti-nokaslr, la57-pti-nokaslr/],
      [{ capture: 'la48-pti-nokaslr', va: '0x0', root: 'bogus' }, 400, /root: unknown root "bogus"/],
      [{ capture: 'la48-pti-nokaslr', va: '0x0', file: '/etc/passwd' }, 400, /must NOT have additional properties/],
      [{ capture: 'la48-pti-nokaslr', va: 'zz' }, 400, /va: expected at most 16 hex digits/],
    ] as const) {
      const r = await post('/api/walk', body);
      expect(r.statusCode).toBe(status);
      expect(JSON.parse(r.body).error).toMatch(re);
    }
  });
});

describe('scenarios from requests', () => {
  it('lists exactly the examples/ files and refuses names outside the list', async () => {
    const names = JSON.parse((await app.inject({ url: '/api/examples' })).body).map((e: { name: string }) => e.name);
    expect(names).toContain('default');
    expect(names).toContain('sci-syscalls');
    for (const [url, status] of [['/api/examples/..%2F..%2Fpackage.json', 400], ['/api/examples/nope', 404], ['/api/examples/README', 404]] as const) {
      const r = await app.inject({ url });
      expect(r.statusCode).toBe(status);
      expect(JSON.parse(r.body).error).toBeTypeOf('string');
    }
    expect((await post('/api/runs', { example: '../examples/default', seeds: 1 })).statusCode).toBe(400);
  });

  it('answers a bad upload with the loader\'s line:column message, without a file name', async () => {
    const text = (await app.inject({ url: '/api/examples/default' })).json().text as string;
    const bad = text.replace('cpu: skylake-sp', 'cpu: skylake-xx');
    const lines = bad.split('\n');
    const line = lines.findIndex((l) => l.includes('skylake-xx')) + 1;
    const column = lines[line - 1].indexOf('skylake-xx') + 1;
    const r = await post('/api/scenario/check', { yaml: bad });
    expect(r.statusCode).toBe(400);
    const body = r.json();
    expect([body.line, body.column]).toEqual([line, column]);
    let loader = '';
    try { parseScenario(bad, 'some.yaml'); } catch (e) { loader = (e as Error).message; }
    expect(body.error).toBe(loader.slice('some.yaml:'.length));
    expect(body.error).toMatch(new RegExp(`^${line}:${column}: field machine\\.cpu: `));
    expect((await post('/api/runs', { yaml: bad, seeds: 1 })).json()).toEqual(body);
  });

  it('refuses uploads that name files on the server, where they name them', async () => {
    const cap = 'name: x\nkernel:\n  capture: ../../etc\n';
    const r1 = (await post('/api/scenario/check', { yaml: cap })).json();
    expect([r1.line, r1.column]).toEqual([3, 12]);
    expect(r1.error).toMatch(/^3:12: kernel\.capture: expected null in an upload/);
    const from = (await app.inject({ url: '/api/examples/imported-strace' })).json().text as string;
    const r2 = (await post('/api/scenario/check', { yaml: from })).json();
    const line = from.split('\n').findIndex((l) => /^\s*from:/.test(l)) + 1;
    expect(r2.line).toBe(line);
    expect(r2.error).toMatch(/workload\[\d+\]\.from: expected a mix in an upload/);
    // A YAML syntax error keeps the loader's position.
    const r3 = (await post('/api/scenario/check', { yaml: 'name: [x\nseed: 1\n' })).json();
    expect(r3.error).toMatch(/^\d+:\d+: YAML syntax error/);
  });

  it('limits the body size and validates bodies with JSON errors', async () => {
    const big = await post('/api/scenario/check', { yaml: 'x'.repeat(2.5 * 1024 * 1024) });
    expect(big.statusCode).toBe(413);
    expect(big.json().error).toMatch(/body|large/i);
    const r = await post('/api/runs', { example: 'default', seeds: 0 });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatch(/seeds must be >= 1/);
    expect((await post('/api/runs', { example: 'default', yaml: 'x' })).json().error).toMatch(/one of example .* or yaml/);
    expect((await app.inject({ url: '/api/nope' })).json().error).toMatch(/no route GET \/api\/nope/);
  });
});

describe('runs', () => {
  const DURATION = '50us';
  it('runs an upload: the report is kasi run --json\'s for the same text and seeds, progress streams to two clients, and the store has it', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    // The default example with three of its mitigation sets (a third of the work).
    const full = (await app.inject({ url: '/api/examples/default' })).json().text as string;
    const text = full.replace(/\nisolation:\n[\s\S]*$/, '\nisolation:\n  - { name: none, cmdline: "mitigations=off" }\n  - { name: default, cmdline: "" }\n  - { name: asi-2025, cmdline: "asi=google-asi-2025" }\n');
    const start = await post('/api/runs', { yaml: text, seeds: 1, duration: DURATION });
    expect(start.statusCode).toBe(202);
    const id = start.json().job as number;
    expect((await post('/api/runs', { example: 'default', seeds: 1 })).statusCode).toBe(409); // one at a time
    const listen = async () => {
      const res = await fetch(`${base}/api/runs/${id}/events`);
      const body = await res.text(); // the stream ends with the run
      return body.split('\n\n').filter(Boolean).map((m) => JSON.parse(m.replace(/^data: /, '')));
    };
    const [a, b] = await Promise.all([listen(), listen()]);
    for (const events of [a, b]) {
      expect(events.at(-1), JSON.stringify(events.at(-1))).toMatchObject({ status: 'done', done: 3, total: 3 });
    }
    expect(a.length).toBeGreaterThan(2); // progress, not only the end
    const report = (await app.inject({ url: `/api/runs/${id}/report` })).body;
    // in this thread (workers 1): the report must not depend on the server's worker threads
    const cli = formatRunJson(summarize(await runSeeds(parseScenario(text, 'upload'), { seeds: 1, duration: parseTime(DURATION) as SimTime, workers: 1 })));
    expect(report).toBe(cli);
    expect(JSON.parse(report).mitigations.map((m: { name: string }) => m.name)).toEqual(['none', 'default', 'asi-2025']);
    const runId = a.at(-1).runId as number;
    const shown = (await app.inject({ url: `/api/history/${runId}` })).json();
    expect(shown.report).toEqual(JSON.parse(cli));
    expect(shown.scenario.text).toBe(text); // the text sent, not a file's
    expect(shown.duration).toBe(DURATION);
    expect((await app.inject({ url: '/api/history' })).json()[0].id).toBe(runId);
    // The stored run is `kasi show --json`'s output byte for byte (one child process); diff and history as the store formats them.
    const show = await kasiRun(['show', String(runId), '--json', '--db', db]);
    expect(show.status).toBe(0);
    expect((await app.inject({ url: `/api/history/${runId}` })).body).toBe(show.stdout);
    const store = openStore(db);
    try {
      const run = getRun(store, runId, db);
      expect((await app.inject({ url: `/api/diff/${runId}/${runId}` })).json()).toEqual(JSON.parse(JSON.stringify(diffRuns(run, run))));
      expect((await app.inject({ url: '/api/history' })).body).toBe(historyJson(listRuns(store, 50)));
    } finally { store.close(); }
    // Its timeline: kasi run --trace's JSON for the report's first seed (--trace-limit 20000), from a worker thread.
    const trace = (await app.inject({ url: `/api/runs/${id}/trace` })).body;
    const want = traceScenario(parseScenario(text, 'upload'), { seed: JSON.parse(cli).seed, limit: WEB_TRACE_LIMIT, duration: parseTime(DURATION) as SimTime }).json;
    expect(trace).toBe(want);
    expect(checkTrace(JSON.parse(trace))).toEqual([]);
  });

  it('cancels a run in progress and starts the next one', async () => {
    const id = (await post('/api/runs', { example: 'default', seeds: 4, duration: DURATION })).json().job;
    for (;;) { // wait for the first finished task, so the cancel hits a busy pool
      const s = (await app.inject({ url: `/api/runs/${id}` })).json().state;
      if (s.done > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await app.inject({ method: 'DELETE', url: `/api/runs/${id}` })).statusCode).toBe(200);
    const s = await waitDone(id);
    expect(s.status).toBe('cancelled');
    expect(s.done).toBeLessThan(s.total as number);
    expect((await app.inject({ url: `/api/runs/${id}/report` })).statusCode).toBe(409);
    expect((await app.inject({ method: 'DELETE', url: '/api/runs/999' })).statusCode).toBe(404);
  });

  it('stays up when a run throws', async () => {
    const boom = buildServer({ db: null, appDir: null, runSeeds: async () => { throw new Error('boom in the engine'); } });
    const id = (await boom.inject({ method: 'POST', url: '/api/runs', payload: { example: 'default', seeds: 1 } })).json().job;
    let s;
    do s = (await boom.inject({ url: `/api/runs/${id}` })).json().state; while (s.status === 'running');
    expect(s).toMatchObject({ status: 'failed', error: 'boom in the engine' });
    expect((await boom.inject({ url: '/api/examples' })).statusCode).toBe(200);
    expect((await boom.inject({ method: 'POST', url: '/api/runs', payload: { example: 'default', seeds: 1 } })).statusCode).toBe(202);
    await boom.close();
  });
});
