/**
 * Leak records: what each attack, run by each attacker thread, recovered of each planted
 * secret, scored by score.ts. Deterministic: records are ordered by attack (ATTACK_NAMES
 * order), then secret id, then attacker thread; the same samples give the same records.
 */
import { ATTACK_NAMES, SOURCE_NAMES, type Samples } from './sample.ts';
import { scoreLeak } from './score.ts';
import type { SecretSet } from './secrets.ts';

export interface LeakRecord {
  attack: string;
  secret: number;
  name: string;
  owner: string;
  ownerId: number;
  /** The object holding the secret. */
  object: string;
  /** Secret bytes recovered, of `of`. */
  bytes: number;
  of: number;
  /** Earliest time (cycle or event index, as passed to the primitives) of a contributing sample. */
  at: number;
  /** Machine-wide id of the attacker thread. */
  thread: number;
  /** Structures the attack's samples came from (all its samples, not only the matching ones). */
  sources: string[];
}

/** One record per (attack, attacker thread, secret) with at least one byte recovered. */
export function leakRecords(secrets: SecretSet, samples: Samples): LeakRecord[] {
  const groups = new Map<number, { attack: number; thread: number; sources: Set<number> }>();
  for (let i = 0; i < samples.count; i++) {
    const key = samples.attack[i] * 2 ** 32 + samples.attacker[i];
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { attack: samples.attack[i], thread: samples.attacker[i], sources: new Set() }));
    g.sources.add(samples.source[i]);
  }
  const records: LeakRecord[] = [];
  for (const g of groups.values()) {
    const scores = scoreLeak(secrets, samples, (i) => samples.attack[i] === g.attack && samples.attacker[i] === g.thread);
    for (const s of scores) {
      if (s.recovered === 0) continue;
      records.push({
        attack: ATTACK_NAMES[g.attack], secret: s.secret.id, name: s.secret.name, owner: s.secret.ownerName,
        ownerId: s.secret.owner, object: s.secret.object, bytes: s.recovered, of: s.total, at: s.firstAt, thread: g.thread,
        sources: [...g.sources].sort((a, b) => a - b).map((c) => SOURCE_NAMES[c]),
      });
    }
  }
  const order = (a: string) => ATTACK_NAMES.indexOf(a as (typeof ATTACK_NAMES)[number]);
  return records.sort((a, b) => order(a.attack) - order(b.attack) || a.secret - b.secret || a.thread - b.thread);
}

/** Plain-text lines, one per record. */
export function formatLeakRecords(records: readonly LeakRecord[]): string {
  if (records.length === 0) return 'no secret bytes leaked\n';
  const rows = records.map((r) => [r.attack, `#${r.secret} ${r.name}`, r.owner, r.object, `${r.bytes}/${r.of}`, `t${r.thread}`, `@${r.at}`, r.sources.join(',')]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd()).join('\n') + '\n';
}
