/**
 * The bounds a scenario's values must stay within (scenario/load.ts puts them in its schema, so a
 * value past one is a `FILE:LINE:COL: field PATH: expected …, found …` error). Each says why it is
 * where it is: what Linux or the hardware allows, or what the model can do (measured on the
 * 2-core CI machine). How much work a valid scenario asks for as a whole — events × touches,
 * attack samples — is sim/budget.ts's question, asked before a run starts.
 */
import { LIMITS, formatLimit } from '../formats/limits.ts';

export interface Bound { readonly max: number; readonly why: string }

const b = (max: number, why: string): Bound => ({ max, why });

export const SCENARIO_LIMITS = {
  /** The engine counts each task's events in an Int32Array (sim/engine.ts EngineOptions.targets). */
  events: b(2 ** 31 - 1, 'at most 2147483647 events per task (the engine counts them in 32-bit integers)'),
  /** The parse and the world build are per tenant; see sim/budget.ts for how many run in reasonable time. */
  tenants: b(1024, 'at most 1024 tenants'),
  objects: b(4096, 'at most 4096 objects per tenant'),
  /** Linux 6.1 arch/x86/include/asm/kvm_host.h: #define KVM_MAX_VCPUS 1024. */
  vcpus: b(1024, 'at most 1024 vCPUs (KVM_MAX_VCPUS, arch/x86/include/asm/kvm_host.h)'),
  /** Every entry is a whole run of every seed. */
  isolation: b(256, 'at most 256 isolation entries'),
  secrets: b(4096, 'at most 4096 secrets'),
  /** A cycles item longer than this is longer than any run (0.4 s at 2.5 GHz, 4000 scheduling quanta of 100 µs). */
  mixCycles: b(1e9, 'at most 1000000000 cycles (0.4 s at 2.5 GHz: longer than any run)'),
  /** Weights are relative; their sums must stay exact in a double. */
  weight: b(1e6, 'a weight of at most 1000000 (weights are relative)'),
  /** The dearest modelled price is 4000 cycles (sim/costs.ts); clocks must stay exact integers below 2^53. */
  priceCycles: b(1e7, 'at most 10000000 cycles (the dearest price in sim/costs.ts is 4000; clocks must stay exact below 2^53)'),
  /** x86 parts run at 0.8–6.2 GHz (ark.intel.com: Core i9-14900KS 6.2 GHz max turbo); 0.1–10 covers emulators and any real part. */
  clockGhzMin: b(0.1, 'a clock of at least 0.1 GHz'),
  clockGhzMax: b(10, 'a clock of at most 10 GHz (the fastest x86 part runs at 6.2 GHz)'),
  /** The largest measured footprint executes under 10^4 instructions (test/fixtures/footprints). */
  insns: b(1e7, 'at most 10000000 instructions (measured footprints execute under 10^4)'),
  /**
   * A tenant's hot code in an event: past a few MiB every L1I (32-64 KiB) and ITLB is long full, and
   * a process's user-compute fetches every page of it each event (sim/working-set.ts).
   */
  codeBytes: b(64 * 1024 * 1024, 'from 1 byte to 64 MiB of code (a user-compute event fetches every page of it)'),
  /** arch/x86/mm/tlb.c: tlb_single_page_flush_ceiling = 33; past it flush_tlb_mm_range() flushes everything. */
  tlbFlushPages: b(33, 'at most 33 single-page flushes (tlb_single_page_flush_ceiling, arch/x86/mm/tlb.c: past it Linux flushes the whole TLB)'),
  /** A touch covers at most its object; the largest object (a guest's memory) is limited by RAM. */
  dataLines: b(2 ** 20, 'at most 1048576 lines (64 MiB) per touch'),
  textPages: b(4096, 'at most 4096 text pages (16 MiB of kernel text; the whole Debian 6.1 text is 14 MiB)'),
  modulePages: b(4096, 'at most 4096 module text pages'),
  /** formats/limits.ts LIMITS.ramBytes. */
  ramBytes: b(LIMITS.ramBytes, `at most ${formatLimit(LIMITS.ramBytes)}: kasi models at most ${formatLimit(LIMITS.ramBytes)} of RAM (the 4-level direct map, mm.rst; more takes minutes and gigabytes to boot)`),
} as const;
