/**
 * Sibling stunning: while one hardware thread runs on the full kernel tables, its SMT sibling
 * must not run untrusted code next to it (L1TF, MDS read the shared L1D and fill buffers).
 *
 * Sources: the 2022 ASI cover letter ("the KVM-ASI hooks would perform a
 * sibling-hyperthread-stun operation in the asi_exit hook, and … sibling-hyperthread-unstun
 * operations in the asi_enter hook"; "we do have a sibling hyperthread stunning implementation
 * internally … not included in this RFC"; the earlier proposal it points to, lore
 * 20200815031908.1015049-1-joel@joelfernandes.org, kicks the sibling with an IPI and makes it
 * wait); Liran Alon on the 2019 RFC ("kick sibling hyperthreads before switching to that address
 * space"); RFC v2 (2025) lists "Preventing cross-SMT attacks by halting sibling hyperthreads" as
 * future work. Model: on exit, a sibling that is running inside a restricted space (where
 * untrusted code may run) is sent an IPI and spins until the exiting thread re-enters, switches to
 * another task (session.ts contextSwitch()) or goes idle; a sibling already on the full tables,
 * idle, or stunned is left alone. Counting the cycles spent spinning
 * is the engine's job (`isStunned`).
 */

export class StunState {
  /** Thread that stunned thread i, or -1. */
  readonly stunnedBy: Int32Array;
  /** Thread i is inside a restricted space (set by the session). */
  readonly inside: Uint8Array;
  readonly idle: Uint8Array;
  stuns = 0;
  ipis = 0;
  releases = 0;

  /** `siblings[i]` is thread i's SMT sibling, or -1. */
  constructor(readonly siblings: Int32Array) {
    const n = siblings.length;
    this.stunnedBy = new Int32Array(n).fill(-1);
    this.inside = new Uint8Array(n);
    this.idle = new Uint8Array(n);
  }

  /** Thread t leaves its restricted space: returns the sibling it stuns (an IPI was sent), or -1. */
  onExit(t: number): number {
    const s = this.siblings[t];
    if (s < 0 || this.idle[s] || !this.inside[s] || this.stunnedBy[s] >= 0) return -1;
    this.stunnedBy[s] = t;
    this.stuns++;
    this.ipis++;
    return s;
  }

  /** Thread t is back in a restricted space: returns the sibling it releases, or -1. */
  onEnter(t: number): number {
    const s = this.siblings[t];
    if (s < 0 || this.stunnedBy[s] !== t) return -1;
    this.stunnedBy[s] = -1;
    this.releases++;
    return s;
  }

  isStunned(t: number): boolean {
    return this.stunnedBy[t] >= 0;
  }

  setIdle(t: number, idle: boolean): void {
    this.idle[t] = idle ? 1 : 0;
    // A stunner that goes idle runs no more kernel work on the full tables, and would otherwise
    // never re-enter to release its sibling (with core scheduling it can sit in forced idle):
    // idling releases the sibling. Assumption: no RFC describes this case.
    const s = this.siblings[t];
    if (idle && s >= 0 && this.stunnedBy[s] === t) {
      this.stunnedBy[s] = -1;
      this.releases++;
    }
  }
}
