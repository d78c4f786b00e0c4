/**
 * The store's schema as numbered migrations (store/db.ts applies those above PRAGMA user_version,
 * in order, in one transaction). Never edit a migration that has shipped: add the next one.
 *
 * 1. runs (scenario text and hash, seeds, kasi version, git commit, the full JSON report) and, per
 *    mitigation set, sets (cycles, overhead), cells (every attack × secret cell: seeds_leaked,
 *    verdict, median bytes and time) and counts (each cost counter's median).
 * 2. runs.scenario_json (the scenario as run, for `kasi diff`), runs.cpu, runs.duration (the
 *    --duration override); sets' overhead spread (min, q1, q3, max); kind_cycles (cycles by event
 *    kind); the view leaks (cells that leaked in at least one seed). Rows stored by schema 1 are
 *    filled in from their JSON report.
 * 3. Sweeps (kasi sweep, sweep/): runs.sweep_id (the sweep file's text hash), sweep_point (the
 *    point's index in grid order), sweep_params (its path → value assignment, canonical JSON) and
 *    sweep_shard ("I/N" of the process that ran it); NULL for kasi run. An index finds a sweep's
 *    points and the stored point a resumed sweep skips; another finds a run by when and what it
 *    was (kasi merge: the same run in two stores is one run).
 */
import type Database from 'better-sqlite3';

export interface Migration {
  readonly version: number;
  readonly up: (db: Database.Database) => void;
}

const V1 = `
CREATE TABLE runs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at    TEXT NOT NULL,            -- ISO 8601, UTC, when the run was stored
  scenario_name TEXT NOT NULL,
  scenario_file TEXT NOT NULL,            -- the path given, or "<built-in default>"
  scenario_text TEXT NOT NULL,            -- the file's text (the built-in scenario: its JSON)
  scenario_hash TEXT NOT NULL,            -- sha256 of scenario_text, hex
  seed          INTEGER NOT NULL,         -- the first seed
  seeds         INTEGER NOT NULL,         -- how many seeds
  kasi_version  TEXT NOT NULL,
  git_commit    TEXT,                     -- of kasi's own checkout, when known
  report_json   TEXT NOT NULL             -- exactly what kasi run --json prints
);
CREATE INDEX runs_scenario_hash ON runs (scenario_hash);
CREATE TABLE sets (
  run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  idx          INTEGER NOT NULL,          -- position in the scenario's isolation list
  name         TEXT NOT NULL,
  cmdline      TEXT NOT NULL,
  design       TEXT NOT NULL,
  stun         INTEGER NOT NULL,
  same_as      TEXT,
  cycles       REAL NOT NULL,             -- median over the seeds
  overhead_pct REAL NOT NULL,             -- median over the seeds
  PRIMARY KEY (run_id, idx)
);
CREATE TABLE cells (
  run_id               INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  set_idx              INTEGER NOT NULL,
  attack               TEXT NOT NULL,
  secret               TEXT NOT NULL,
  owner                TEXT NOT NULL,
  of_bytes             INTEGER NOT NULL,  -- bytes planted
  seeds                INTEGER NOT NULL,
  seeds_leaked         INTEGER NOT NULL,
  verdict              TEXT NOT NULL,     -- 'leaks' | 'unstable' | 'no leak' (sim/seeds.ts)
  bytes_median         REAL,
  first_leak_ns_median REAL,
  PRIMARY KEY (run_id, set_idx, attack, secret)
);
CREATE TABLE counts (
  run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  set_idx INTEGER NOT NULL,
  name    TEXT NOT NULL,
  value   REAL NOT NULL,                  -- median over the seeds
  PRIMARY KEY (run_id, set_idx, name)
);
`;

const V2 = `
ALTER TABLE runs ADD COLUMN scenario_json TEXT;   -- the scenario as run (canonical JSON); NULL for runs stored by schema 1
ALTER TABLE runs ADD COLUMN cpu TEXT;
ALTER TABLE runs ADD COLUMN duration TEXT;        -- the --duration override, or NULL
UPDATE runs SET cpu = json_extract(report_json, '$.cpu');
ALTER TABLE sets ADD COLUMN overhead_min REAL;
ALTER TABLE sets ADD COLUMN overhead_q1 REAL;
ALTER TABLE sets ADD COLUMN overhead_q3 REAL;
ALTER TABLE sets ADD COLUMN overhead_max REAL;
UPDATE sets SET
  overhead_min = json_extract(r.report_json, '$.mitigations[' || sets.idx || '].costs.spread.overhead_pct.min'),
  overhead_q1  = json_extract(r.report_json, '$.mitigations[' || sets.idx || '].costs.spread.overhead_pct.q1'),
  overhead_q3  = json_extract(r.report_json, '$.mitigations[' || sets.idx || '].costs.spread.overhead_pct.q3'),
  overhead_max = json_extract(r.report_json, '$.mitigations[' || sets.idx || '].costs.spread.overhead_pct.max')
  FROM runs AS r WHERE r.id = sets.run_id;
CREATE TABLE kind_cycles (
  run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  set_idx INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  cycles  REAL NOT NULL,                  -- median over the seeds
  PRIMARY KEY (run_id, set_idx, kind)
);
INSERT INTO kind_cycles (run_id, set_idx, kind, cycles)
  SELECT s.run_id, s.idx, k.key, k.value
  FROM sets AS s JOIN runs AS r ON r.id = s.run_id,
       json_each(r.report_json, '$.mitigations[' || s.idx || '].costs.by_kind') AS k;
CREATE VIEW leaks AS SELECT * FROM cells WHERE seeds_leaked > 0;
`;

const V3 = `
ALTER TABLE runs ADD COLUMN sweep_id TEXT;
ALTER TABLE runs ADD COLUMN sweep_point INTEGER;
ALTER TABLE runs ADD COLUMN sweep_params TEXT;
ALTER TABLE runs ADD COLUMN sweep_shard TEXT;
CREATE INDEX runs_sweep ON runs (sweep_id, sweep_point);
CREATE INDEX runs_point ON runs (scenario_hash, sweep_params);
CREATE INDEX runs_identity ON runs (created_at, scenario_hash);
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, up: (db) => db.exec(V1) },
  { version: 2, up: (db) => db.exec(V2) },
  { version: 3, up: (db) => db.exec(V3) },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
