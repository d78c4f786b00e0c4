/**
 * `kasi serve [--port 8080] [--host 127.0.0.1] [--db PATH]`: the local web UI (issue 13) — a
 * fastify server (web/server/app.ts) on loopback unless --host says otherwise, serving the built
 * app (built on first use, web/server/build.ts) and a JSON API over the model and the results
 * store (--db as `kasi run` takes it: default $KASI_DB, else ./kasi.db). Runs started from the
 * page are stored there. Ctrl-C stops it (a run in progress is cancelled).
 */
import type { Command } from 'commander';
import { UsageError } from '../usage.ts';
import { dbPath, StoreError } from '../../store/db.ts';
import { checkRunStore } from '../../store/run-store.ts';

interface ServeOptions { port: string; host: string; db?: string }

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('a local web UI: address-space map, page walks, leak heatmap, costs, history and runs')
    .option('--port <n>', 'TCP port (0: any free one)', '8080')
    .option('--host <addr>', 'address to listen on (default loopback only)', '127.0.0.1')
    .option('--db <path>', 'the results store (default: $KASI_DB, else ./kasi.db)')
    .action(async (opts: ServeOptions) => {
      if (!/^\d{1,5}$/.test(opts.port) || Number(opts.port) > 65535) throw new UsageError(`--port: expected 0..65535, found ${JSON.stringify(opts.port)}`);
      const db = dbPath(opts.db);
      try { checkRunStore(db); } catch (err) { throw err instanceof StoreError ? new UsageError(err.message) : err; }
      // Loaded here, not at the top: fastify and the server cost every other kasi command ~0.2 s of start-up.
      const [{ buildServer }, { ensureBuilt }] = await Promise.all([import('../../web/server/app.ts'), import('../../web/server/build.ts')]);
      const appDir = await ensureBuilt((l) => process.stderr.write(`kasi serve: ${l}\n`));
      const app = buildServer({ db, appDir });
      let address: string;
      try {
        address = await app.listen({ port: Number(opts.port), host: opts.host });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES' || code === 'ENOTFOUND') {
          throw new UsageError(`--host ${opts.host} --port ${opts.port}: cannot listen (${code}): ${code === 'EADDRINUSE' ? 'the port is in use, pick another' : 'not an address of this machine, or not allowed'}`);
        }
        throw err;
      }
      process.stderr.write(`kasi serve: ${address}/ (results store ${db}); Ctrl-C stops\n`);
      const stop = () => { void app.close().then(() => process.exit(0)); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
