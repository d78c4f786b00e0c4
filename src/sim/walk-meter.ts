/**
 * What a run of touches' address translation cost: the page walks, the upper-level entries they
 * loaded that no paging-structure cache held, and the first-level misses the second-level TLB
 * served, read from the thread's Mmu counters (both sides of a split first level) before and after (x86/mmu.ts), counted into the
 * run's Counts and priced (sim/costs.ts tlbMissWalk, walkUpperLoad, stlbHit). One per caller:
 * begin() and end() must pair, not nest.
 */
import type { Mmu } from '../x86/mmu.ts';
import type { Counts } from './thread.ts';

export interface WalkPrices {
  /** A walk that loads only its leaf entry. */
  readonly walk: number;
  /** Each upper-level entry a walk loads because no paging-structure cache held it. */
  readonly upperLoad: number;
  /** A first-level TLB miss the second level serves. */
  readonly stlbHit: number;
}

export class WalkMeter {
  private walks0 = 0;
  private upper0 = 0;
  private stlb0 = 0;

  constructor(private readonly prices: WalkPrices, private readonly counts: Counts) {}

  begin(mmu: Mmu): void {
    this.walks0 = mmu.allWalks;
    this.upper0 = mmu.allUpperLoads;
    this.stlb0 = mmu.allStlbHits;
  }

  /** Counts what `mmu` did since begin(); returns its cycles. */
  end(mmu: Mmu): number {
    const walks = mmu.allWalks - this.walks0;
    const upper = mmu.allUpperLoads - this.upper0;
    const stlb = mmu.allStlbHits - this.stlb0;
    const c = this.counts;
    c.walks += walks;
    c.walkUpperLoads += upper;
    c.stlbHits += stlb;
    const p = this.prices;
    return walks * p.walk + upper * p.upperLoad + stlb * p.stlbHit;
  }
}
