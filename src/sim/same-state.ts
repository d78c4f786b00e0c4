/**
 * Two isolation entries that are one configuration (issue 10 item 5): different command lines
 * that the kernel resolves to the same mitigation state (mitigations/select.ts, as bugs.c
 * decides) with the same ASI design and the same variant (stun, what-if) run the same machine,
 * so their columns are one column twice. The key compares the resolved state, not the text.
 */
import type { MitigationState } from '../mitigations/select.ts';
import type { IsolationSpec } from './scenario-types.ts';

/** Fields of an isolation entry that only say how it was written, not what it runs. */
const AS_WRITTEN = new Set(['name', 'cmdline', 'mitigations']);

/** A value as canonical JSON: object keys sorted, Sets and Maps as sorted arrays. */
function canonical(v: unknown): unknown {
  if (v instanceof Set) return [...v].map(canonical).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  if (v instanceof Map) return canonical(Object.fromEntries(v));
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) o[k] = canonical((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

/**
 * The configuration an entry runs: the whole resolved MitigationState plus every field of the
 * entry except how it was written (name, command line text, its parse) — the design, stun and
 * any variant flag. Equal keys = the same machine state.
 */
export function stateKey(state: MitigationState, iso: IsolationSpec): string {
  const entry: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(iso)) if (!AS_WRITTEN.has(k)) entry[k] = v;
  return JSON.stringify(canonical({ state, entry }));
}

/** Per entry, the index of the first earlier entry with the same key, or -1. */
export function sameAs(keys: readonly string[]): number[] {
  const first = new Map<string, number>();
  return keys.map((k, i) => {
    const j = first.get(k);
    if (j !== undefined) return j;
    first.set(k, i);
    return -1;
  });
}
