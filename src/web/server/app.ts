/**
 * The `kasi serve` server (issue 13): a fastify app serving the built single-page app and a JSON
 * API over the model and the results store. The API sends what the CLI prints as JSON:
 *   GET  /api/examples, /api/examples/:name       the fixed list built at startup from examples/
 *   POST /api/scenario/check {yaml}               an upload validated in memory (line:column errors)
 *   POST /api/runs {example | yaml, seeds, seed, duration}   start a run (kasi run --json)
 *   GET  /api/runs, /api/runs/:id, /api/runs/:id/report, /api/runs/:id/events (SSE); DELETE /api/runs/:id
 *   GET  /api/runs/:id/trace                      kasi run --trace's JSON (first seed, --trace-limit 20000)
 *   GET  /api/history, /api/history/:id, /api/diff/:a/:b     kasi history / show / diff --json
 *   GET  /api/captures, /api/captures/:name; POST /api/walk   kasi translate --json, decoded per level
 *   GET  /api/map, /api/map/runs, /api/map/detail            report/space-map.ts
 * Hardening: a body limit, a JSON schema on every body, query and params (errors are JSON), no
 * request value ever becomes a path (examples and captures by name from fixed lists), and any
 * thrown error answers that request only.
 */
import { existsSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';
import { parseTime, parseScenario } from '../../scenario/load.ts';
import { InputError } from '../../formats/files.ts';
import { SpaceMapModel } from '../../report/space-map.ts';
import { diffRuns } from '../../store/diff.ts';
import { openStore, StoreError, type Db } from '../../store/db.ts';
import { getRun, listRuns } from '../../store/query.ts';
import { historyJson, showJson } from '../../store/show.ts';
import { RunJobs, type Job } from './runs.ts';
import { loadExamples, parseUpload, RequestError } from './scenario-input.ts';
import { Captures } from './walk.ts';
import { TraceJobs, WEB_TRACE_LIMIT } from './trace-jobs.ts';
import { S } from './schemas.ts';

export interface ServerOptions {
  /** The results store, or null for none. */
  db: string | null;
  /** The built app (index.html and assets), or null to serve the API only. */
  appDir: string | null;
  workers?: number;
  /** Replaces the run engine (tests: a run that throws). */
  runSeeds?: ConstructorParameters<typeof RunJobs>[2];
  logger?: boolean;
}

/** 2 MiB: a scenario is at most 1 MiB (formats/limits.ts), plus its JSON quoting. */
export const BODY_LIMIT = 2 * 1024 * 1024;

export function buildServer(o: ServerOptions): FastifyInstance & { jobs: RunJobs } {
  const app = Fastify({ logger: o.logger ?? false, bodyLimit: BODY_LIMIT, ajv: { customOptions: { removeAdditional: false, coerceTypes: true } } });
  const examples = loadExamples();
  const captures = new Captures();
  const jobs = new RunJobs(o.db, o.workers, o.runSeeds);
  const traces = new TraceJobs();
  let spaceMap: SpaceMapModel | null = null;
  const map = (): SpaceMapModel => (spaceMap ??= new SpaceMapModel());

  app.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number }, _req, reply) => {
    if (err instanceof RequestError) return reply.code(err.status).send(err.body());
    if (err.validation) return reply.code(400).send({ error: err.message });
    if (err instanceof StoreError) return reply.code(err.kind === 'missing' ? 404 : 500).send({ error: err.message });
    if (err instanceof InputError) return reply.code(400).send({ error: err.message });
    if (err.statusCode !== undefined && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    app.log.error(err);
    return reply.code(500).send({ error: `internal error: ${err.message}` });
  });

  const store = <T>(f: (db: Db, path: string) => T): T => {
    if (o.db === null) throw new RequestError(404, 'no results store (kasi serve --db PATH)');
    if (!existsSync(o.db)) throw new RequestError(404, `no results store at ${o.db} yet: run a scenario first`);
    const db = openStore(o.db);
    try { return f(db, o.db); } finally { db.close(); }
  };
  const json = (reply: FastifyReply, text: string) => reply.type('application/json; charset=utf-8').send(text);

  app.get('/api/examples', async () => [...examples.values()].map((e) => ({ name: e.name })));
  app.get<{ Params: { name: string } }>('/api/examples/:name', { schema: { params: S.name } }, async (req) => {
    const e = examples.get(req.params.name);
    if (e === undefined) throw new RequestError(404, `unknown example ${JSON.stringify(req.params.name)}: expected one of ${[...examples.keys()].join(', ')}`);
    return { name: e.name, text: e.text };
  });
  app.post<{ Body: { yaml: string } }>('/api/scenario/check', { schema: { body: S.check } }, async (req) => {
    const s = parseUpload(req.body.yaml);
    return { ok: true, name: s.name, sets: s.isolation.map((x) => x.name) };
  });

  app.post<{ Body: { example?: string; yaml?: string; seeds?: number; seed?: number; duration?: string } }>('/api/runs', { schema: { body: S.run } }, async (req, reply) => {
    const b = req.body;
    if ((b.example === undefined) === (b.yaml === undefined)) throw new RequestError(400, 'expected one of example (a name) or yaml (a scenario text)');
    let duration;
    if (b.duration !== undefined) {
      const t = parseTime(b.duration);
      if (typeof t === 'string') throw new RequestError(400, `duration: expected ${t}, found ${JSON.stringify(b.duration)}`);
      duration = t;
    }
    let job: Job;
    if (b.example !== undefined) {
      const e = examples.get(b.example);
      if (e === undefined) throw new RequestError(404, `unknown example ${JSON.stringify(b.example)}: expected one of ${[...examples.keys()].join(', ')}`);
      job = jobs.start({ scenario: parseScenario(e.text, e.file), file: e.file, text: e.text, source: `example ${e.name}`, seeds: b.seeds ?? 8, seed: b.seed, duration, durationText: b.duration ?? null });
    } else {
      const text = b.yaml!;
      job = jobs.start({ scenario: parseUpload(text), file: undefined, text, source: 'upload', seeds: b.seeds ?? 8, seed: b.seed, duration, durationText: b.duration ?? null });
    }
    return reply.code(202).send(job.state);
  });
  const job = (id: number): Job => {
    const j = jobs.jobs.get(id);
    if (j === undefined) throw new RequestError(404, `no run ${id} on this server`);
    return j;
  };
  app.get('/api/runs', async () => ({ active: jobs.active?.state ?? null, jobs: [...jobs.jobs.values()].map((j) => ({ ...j.state, source: j.source, scenario: j.scenario })).reverse() }));
  app.get<{ Params: { id: number } }>('/api/runs/:id', { schema: { params: S.id } }, async (req, reply) => {
    const j = job(req.params.id);
    return json(reply, `{"state":${JSON.stringify({ ...j.state, source: j.source, scenario: j.scenario })},"report":${j.report ?? 'null'}}`);
  });
  app.get<{ Params: { id: number } }>('/api/runs/:id/report', { schema: { params: S.id } }, async (req, reply) => {
    const j = job(req.params.id);
    if (j.report === null) throw new RequestError(409, `run ${j.id} has no report (${j.state.status})`);
    return json(reply, j.report);
  });
  app.delete<{ Params: { id: number } }>('/api/runs/:id', { schema: { params: S.id } }, async (req) => {
    const j = jobs.cancel(req.params.id);
    if (j === null) throw new RequestError(404, `no run ${req.params.id} on this server`);
    return j.state;
  });
  app.get<{ Params: { id: number } }>('/api/runs/:id/events', { schema: { params: S.id } }, (req, reply) => {
    const j = job(req.params.id);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (e: object) => res.write(`data: ${JSON.stringify(e)}\n\n`);
    send(j.state);
    if (j.state.status !== 'running') { res.end(); return; }
    const l = (e: typeof j.state) => { send(e); if (e.status !== 'running') { j.listeners.delete(l); res.end(); } };
    j.listeners.add(l);
    req.raw.on('close', () => j.listeners.delete(l));
  });

  app.get<{ Querystring: { limit: number } }>('/api/history', { schema: { querystring: S.limit } }, async (req, reply) => {
    if (o.db === null || !existsSync(o.db)) return json(reply, '[]\n');
    return json(reply, store((db) => historyJson(listRuns(db, req.query.limit ?? 50))));
  });
  app.get<{ Params: { id: number } }>('/api/history/:id', { schema: { params: S.id } }, async (req, reply) => json(reply, store((db, p) => showJson(getRun(db, req.params.id, p)))));
  app.get<{ Params: { a: number; b: number } }>('/api/diff/:a/:b', { schema: { params: S.ab } }, async (req, reply) =>
    json(reply, store((db, p) => JSON.stringify(diffRuns(getRun(db, req.params.a, p), getRun(db, req.params.b, p)), null, 2) + '\n')));

  app.get('/api/captures', async () => captures.names);
  app.get<{ Params: { name: string } }>('/api/captures/:name', { schema: { params: S.name } }, async (req) => { captures.file(req.params.name); return captures.info(req.params.name); });
  app.post<{ Body: { capture: string; va: string; root?: string; access?: string; user?: boolean; cr4?: string; wp?: boolean } }>('/api/walk', { schema: { body: S.walk } }, async (req) => {
    captures.file(req.body.capture);
    return captures.walk(req.body);
  });

  app.get('/api/map', async () => map().spaceMap());
  app.get<{ Querystring: { lane: string; from: number; to: number; max?: number } }>('/api/map/runs', { schema: { querystring: S.window } }, async (req) => {
    const q = req.query;
    if (!(q.to > q.from)) throw new RequestError(400, 'to: expected a page number above from');
    const w = map().runsIn(q.lane, q.from, q.to, q.max ?? 4000);
    if (w === null) throw new RequestError(404, `unknown lane ${JSON.stringify(q.lane)}: expected one of ${map().laneIds().join(', ')}`);
    return w;
  });
  app.get<{ Querystring: { lane: string; from: number; to: number } }>('/api/map/detail', { schema: { querystring: S.window } }, async (req) => {
    const q = req.query;
    if (!(q.to > q.from)) throw new RequestError(400, 'to: expected a page number above from');
    const d = map().detail(q.lane, q.from, q.to);
    if (d === null) throw new RequestError(404, `unknown lane ${JSON.stringify(q.lane)}: expected one of ${map().laneIds().join(', ')}`);
    return d;
  });
  app.get<{ Params: { id: number } }>('/api/runs/:id/trace', { schema: { params: S.id } }, async (req, reply) => {
    const j = job(req.params.id);
    if (j.report === null) throw new RequestError(409, `run ${j.id} has no report (${j.state.status})`);
    const r = j.request;
    const seed = (JSON.parse(j.report) as { seed: number }).seed;
    return json(reply, await traces.trace(j.id, r.scenario, { seed, limit: WEB_TRACE_LIMIT, ...(r.duration !== undefined ? { duration: r.duration } : {}) }));
  });

  if (o.appDir !== null) {
    app.register(fastifyStatic, { root: o.appDir, wildcard: false });
    app.setNotFoundHandler((req, reply) => {
      if (req.method === 'GET' && !req.url.startsWith('/api/')) return reply.sendFile('index.html');
      return reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` });
    });
  } else {
    app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));
  }
  app.addHook('onClose', async () => { await jobs.close(); await traces.close(); });
  return Object.assign(app, { jobs });
}
