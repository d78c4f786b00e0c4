// The app's view of the server's JSON API (web/server/app.ts). Types come from the modules that
// make the JSON, so a change there is a type error here; the app computes no model result itself.
export type { SeedsReport, SetStats, CellStats } from '../../sim/seeds.ts';
export type { SpaceMap, RunWindow, MapDetail } from '../../report/space-map.ts';
export type { RunDiff } from '../../store/diff.ts';
export type { RunSummary } from '../../store/query.ts';
export type { JobEvent } from '../server/runs.ts';

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly body: Record<string, unknown>) { super(message); }
}

export async function api<T>(path: string, init?: { method?: string; body?: unknown; signal?: AbortSignal }): Promise<T> {
  const r = await fetch(path, {
    method: init?.method ?? (init?.body !== undefined ? 'POST' : 'GET'),
    headers: init?.body !== undefined ? { 'content-type': 'application/json' } : {},
    body: init?.body !== undefined ? JSON.stringify(init.body) : undefined,
    signal: init?.signal,
  });
  const text = await r.text();
  let body: unknown = null;
  try { body = JSON.parse(text); } catch { body = { error: text }; }
  if (!r.ok) throw new ApiError(r.status, String((body as { error?: string }).error ?? r.statusText), body as Record<string, unknown>);
  return body as T;
}

export const fmtNum = (n: number | null | undefined, digits = 0): string => (n === null || n === undefined || Number.isNaN(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits }));
export const fmtPct = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : `${n >= 0 ? '+' : ''}${n.toFixed(1)}%`);
