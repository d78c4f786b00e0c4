/**
 * An event's base cost: what it costs before its touches and the mitigation's actions.
 *
 * By default that is the transition's fixed price (costs.ts syscallEntryExit, interruptEntryExit,
 * vmExitEntry, contextSwitch) + the footprint's instructions at a warm or cold price (sim/code-warmth.ts) — Linux's
 * measured path (sim/footprints.ts). A footprint override may instead carry `base: { ns, source }`:
 * the native latency the figure's own source measured for the event, without the mitigation
 * (e.g. FreeBSD review D13985's getppid, 339 ns: FreeBSD's syscall path is not Linux's, so
 * Linux's instruction count says nothing of it). The base then replaces transition + instructions
 * at the scenario's clock; the touches still run and every mechanism — CR3 writes, TLB walks,
 * flushes, VERW, L1D misses — is still charged on top, so what the mitigation adds stays the
 * model's and only the denominator is the source's. A native run in steady state has no misses
 * to add, so its cost is the measured base.
 */
import { nsToCycles, type CostModel } from './costs.ts';

/** An event's native latency as its source measured it. */
export interface NativeBase {
  readonly ns: number;
  readonly source: string;
}

/** `modelled` (transition + loop cycles; the engine prices the instructions apart), or the footprint's measured native base at the model's clock. */
export function withNativeBase(fp: { readonly base: NativeBase | null } | undefined, modelled: number, costs: CostModel): number {
  return fp !== undefined && fp.base !== null ? nsToCycles(fp.base.ns, costs) : modelled;
}
