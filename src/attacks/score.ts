/**
 * Scoring: which bytes of which planted secret did the attacker actually obtain?
 *
 * The rule, one for every attack: a secret byte counts only if the attacker holds its correct
 * value AS PART OF A RUN of at least MIN_RUN (8) consecutive correct bytes of that secret. A
 * random guess matches one byte with probability 1/256 but a run of 8 with 2^-64, so noise scores
 * nothing (tested), and so does enumerating the 256 values of a byte.
 *
 * How a run is found depends on what the attacker knows (sample.ts):
 *
 *  - address-known samples (L1TF, Meltdown, Spectre v1): every sample byte is an observation of
 *    one physical address. Observations of all samples are pooled into the attacker's image of
 *    each secret (so a Spectre gadget run byte by byte, or a secret split across two cache lines,
 *    still forms runs). An address observed with two different values is unknown: the attacker
 *    cannot tell which one was the secret. A byte counts when its image equals the secret and it
 *    lies in a run of >= MIN_RUN such bytes.
 *
 *  - address-less samples (MDS, TAA): the attacker holds a chunk (8 bytes from a store-buffer
 *    entry or a load port, 64 from a fill buffer) without knowing where it came from, so it is
 *    matched by content: every window of MIN_RUN bytes of the chunk is looked up among the
 *    MIN_RUN-byte windows of every secret, and a match marks those secret bytes. The marked
 *    bytes are exactly the secret bytes inside a common substring of length >= MIN_RUN between
 *    the chunk and the secret, at any alignment. The structure entry's true address (truePa)
 *    is never used.
 *
 * A secret byte recovered either way counts once. Bytes a run cannot reach (a chunk that ends
 * fewer than MIN_RUN bytes into a secret) are not counted: the score is a lower bound.
 */
import { MIN_RUN, type Secret, type SecretSet } from './secrets.ts';
import type { Samples } from './sample.ts';

export interface SecretScore {
  readonly secret: Secret;
  /** Secret bytes recovered, of `total`. */
  readonly recovered: number;
  readonly total: number;
  /** Earliest `at` of a sample that contributed a counted byte; -1 when nothing was recovered. */
  readonly firstAt: number;
  /** 1 for each recovered byte, by offset in the secret. */
  readonly bitmap: Uint8Array;
}

/** Sorted physical ranges of all secrets, for address lookups. */
class RangeIndex {
  readonly start: Float64Array;
  readonly end: Float64Array;
  readonly secret: Int32Array;
  readonly off: Float64Array;

  constructor(secrets: readonly Secret[]) {
    const rows = secrets.flatMap((s, si) => s.ranges.map((r) => ({ si, r }))).sort((a, b) => a.r.pa - b.r.pa);
    this.start = Float64Array.from(rows, (x) => x.r.pa);
    this.end = Float64Array.from(rows, (x) => x.r.pa + x.r.len);
    this.secret = Int32Array.from(rows, (x) => x.si);
    this.off = Float64Array.from(rows, (x) => x.r.off);
  }

  /** Row whose range holds `pa`, or -1. */
  find(pa: number): number {
    let lo = 0;
    let hi = this.start.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.start[mid] > pa) hi = mid - 1;
      else if (this.end[mid] <= pa) lo = mid + 1;
      else return mid;
    }
    return -1;
  }
}

/** A 32-bit hash (FNV-1a) of the MIN_RUN bytes at b[o..] (the window key; matches are verified). */
function windowKey(b: Uint8Array, o: number): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < MIN_RUN; k++) h = Math.imul(h ^ b[o + k], 0x01000193);
  return h >>> 0;
}

function sameWindow(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let k = 0; k < MIN_RUN; k++) if (a[ao + k] !== b[bo + k]) return false;
  return true;
}

/**
 * Score the samples (those `pick` accepts; all by default) against every secret. Returns one
 * score per secret, in secret id order.
 */
export function scoreLeak(secrets: SecretSet | readonly Secret[], samples: Samples, pick?: (i: number) => boolean): SecretScore[] {
  const list: readonly Secret[] = 'all' in secrets ? secrets.all() : secrets;
  const bitmaps = list.map((s) => new Uint8Array(s.bytes.length));
  const firstAt = new Float64Array(list.length).fill(Infinity);
  const data = samples.data;

  // Address-known: pool the observations into an image of each secret.
  const index = new RangeIndex(list);
  const image = list.map((s) => new Int16Array(s.bytes.length).fill(-1)); // -1 unseen, -2 conflicting
  const imageAt = list.map((s) => new Float64Array(s.bytes.length));
  let anyAddressed = false;
  for (let i = 0; i < samples.count; i++) {
    const addr = samples.addr[i];
    if (addr < 0 || (pick && !pick(i))) continue;
    anyAddressed = true;
    const base = samples.start[i];
    const at = samples.at[i];
    let row = -1;
    for (let k = 0; k < samples.len[i]; k++) {
      const pa = addr + k;
      if (row < 0 || pa < index.start[row] || pa >= index.end[row]) row = index.find(pa);
      if (row < 0) continue;
      const si = index.secret[row];
      const j = index.off[row] + (pa - index.start[row]);
      const v = data[base + k];
      const img = image[si];
      if (img[j] === -1) {
        img[j] = v;
        imageAt[si][j] = at;
      } else if (img[j] >= 0 && img[j] !== v) img[j] = -2;
      else if (img[j] === v && at < imageAt[si][j]) imageAt[si][j] = at;
    }
  }
  if (anyAddressed) {
    for (let si = 0; si < list.length; si++) {
      const bytes = list[si].bytes;
      const img = image[si];
      let runStart = -1;
      for (let j = 0; j <= bytes.length; j++) {
        const ok = j < bytes.length && img[j] === bytes[j];
        if (ok && runStart < 0) runStart = j;
        if (!ok && runStart >= 0) {
          if (j - runStart >= MIN_RUN) {
            for (let k = runStart; k < j; k++) {
              bitmaps[si][k] = 1;
              if (imageAt[si][k] < firstAt[si]) firstAt[si] = imageAt[si][k];
            }
          }
          runStart = -1;
        }
      }
    }
  }

  // Address-less: match MIN_RUN-byte windows by content.
  let windows: Map<number, number[]> | null = null;
  for (let i = 0; i < samples.count; i++) {
    if (samples.addr[i] >= 0 || samples.len[i] < MIN_RUN || (pick && !pick(i))) continue;
    if (windows === null) windows = windowIndex(list);
    const base = samples.start[i];
    const at = samples.at[i];
    for (let o = base; o + MIN_RUN <= base + samples.len[i]; o++) {
      const cands = windows.get(windowKey(data, o));
      if (cands === undefined) continue;
      for (let c = 0; c < cands.length; c += 2) {
        const si = cands[c];
        const j = cands[c + 1];
        if (!sameWindow(data, o, list[si].bytes, j)) continue;
        for (let k = j; k < j + MIN_RUN; k++) bitmaps[si][k] = 1;
        if (at < firstAt[si]) firstAt[si] = at;
      }
    }
  }

  return list.map((secret, si) => {
    let recovered = 0;
    for (const b of bitmaps[si]) recovered += b;
    return { secret, recovered, total: secret.bytes.length, firstAt: recovered > 0 ? firstAt[si] : -1, bitmap: bitmaps[si] };
  });
}

/** Every MIN_RUN-byte window of every secret: key → [secret index, offset, secret index, offset, …]. */
function windowIndex(list: readonly Secret[]): Map<number, number[]> {
  const m = new Map<number, number[]>();
  list.forEach((s, si) => {
    for (let j = 0; j + MIN_RUN <= s.bytes.length; j++) {
      const k = windowKey(s.bytes, j);
      let l = m.get(k);
      if (l === undefined) m.set(k, (l = []));
      l.push(si, j);
    }
  });
  return m;
}
