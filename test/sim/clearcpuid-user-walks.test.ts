/**
 * Two mechanisms the Aug 2025 ASI kernel-build pair depends on (examples/calibration/asi-2025-
 * kernel-build*.yaml):
 *  - clearcpuid=ibpb clears X86_FEATURE_IBPB (arch/x86/kernel/cpu/common.c: cmdline_find_option(),
 *    the last instance), so the mitigations that ask for the feature issue no IBPB: not ASI's
 *    control-taint flush, not the entry barrier retbleed=ibpb asks for (retbleed_select_mitigation():
 *    "CPU does not support IBPB"); spec_rstack_overflow=ibpb does not ask and keeps its barrier;
 *  - user code pays for the TLB refills a flushing CR3 write leaves (sim/working-set.ts), one walk
 *    per page it touches again, and a process with `thp: false` has one page per 4 KiB.
 */
import { describe, expect, it } from 'vitest';
import { CmdlineError, parseMitigationCmdline } from '../../src/mitigations/cmdline.ts';
import { selectMitigations } from '../../src/mitigations/select.ts';
import { parseScenario } from '../../src/scenario/load.ts';
import { getCostModel } from '../../src/sim/costs.ts';
import { runScenario } from '../../src/sim/run.ts';
import { getProfile } from '../../src/uarch/profiles.ts';

describe('clearcpuid=', () => {
  const state = (cpu: string, cmd: string) => selectMitigations(getProfile(cpu), parseMitigationCmdline(cmd));

  it('reads like cmdline_find_option(): exact name, the last instance, names kasi models only', () => {
    expect(parseMitigationCmdline('clearcpuid=ibpb').clearCpuid).toEqual(['ibpb']);
    expect(parseMitigationCmdline('quiet -- clearcpuid=ibpb').clearCpuid).toEqual(['ibpb']); // a raw scan sees past "--"
    expect(parseMitigationCmdline('clearcpuid=ibpb clearcpuid=').clearCpuid).toEqual([]); // the last instance, empty: nothing cleared
    expect(parseMitigationCmdline('clearcpuid').clearCpuid).toEqual([]); // without '=' it is not the option
    expect(parseMitigationCmdline('').clearCpuid).toEqual([]);
    expect(() => parseMitigationCmdline('clearcpuid=avx512f')).toThrow(CmdlineError);
    expect(() => parseMitigationCmdline('clearcpuid=ibpb,pku')).toThrow(/clearcpuid=pku: unknown value/);
  });

  it('takes the barrier away from the mitigations that ask for the feature', () => {
    expect(state('skylake-sp', '').ibpb).toBe(true);
    expect(state('skylake-sp', 'clearcpuid=ibpb').ibpb).toBe(false);
    expect(state('skylake-sp', 'retbleed=ibpb').entryIbpb).toBe(true);
    expect(state('skylake-sp', 'retbleed=ibpb clearcpuid=ibpb').entryIbpb).toBe(false);
    // srso_select_mitigation() forces ENTRY_IBPB on the microcode alone; entry_ibpb writes the MSR itself
    expect(state('zen3', 'spec_rstack_overflow=ibpb clearcpuid=ibpb').entryIbpb).toBe(true);
  });

  it('leaves ASI exits in place but issues no IBPB at them (RFC v2 flushes the control taints with an RSB fill only)', () => {
    const runs = runScenario(parseScenario(`
events: 400
machine: { cpu: sapphire-rapids, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process }]
workload: [{ thread: 0, tenant: p, mix: [{ event: page-fault }, { event: user-compute, cycles: 5000 }] }]
isolation:
  - { name: with, cmdline: "asi=google-asi-2025" }
  - { name: without, cmdline: "asi=google-asi-2025 clearcpuid=ibpb" }
`, 'clearcpuid.yaml')).mitigations;
    const [withIbpb, without] = runs;
    expect(withIbpb.costs.counts.asi_exits).toBeGreaterThan(100);
    expect(withIbpb.costs.counts.ibpbs).toBe(withIbpb.costs.counts.asi_exits);
    expect(without.costs.counts.asi_exits).toBe(withIbpb.costs.counts.asi_exits);
    expect(without.costs.counts.ibpbs).toBe(0);
    // The run's state says so (kasi diff shows it): the feature, and no entry barrier either way.
    expect([withIbpb.state.ibpb, without.state.ibpb, withIbpb.state.entry_ibpb, without.state.entry_ibpb]).toEqual([true, false, false, false]);
    // The saving is the barriers' price and the untrained code after them, nothing else.
    const ibpb = getCostModel('sapphire-rapids').params.ibpb.cycles;
    expect(withIbpb.costs.cycles - without.costs.cycles).toBeGreaterThanOrEqual(withIbpb.costs.counts.ibpbs * ibpb);
  });
});

describe('user code and the TLB', () => {
  // A process whose own code touches a 256 KiB working set between page faults; under KPTI
  // without PCID every return to user space writes CR3 with a flush (nopcid), so the working set's
  // pages are walked again after each one. Its hot code is one line (one text page to fetch), so
  // the data pages are what the 4 KiB and 2 MiB runs differ in.
  const run = (thp: boolean) => runScenario(parseScenario(`
events: 600
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process, thp: ${thp}, working_set: { bytes: 256KiB, lines_per_kcycle: 20 } }]
workload: [{ thread: 0, tenant: p, mix: [{ event: syscall, name: getppid }, { event: user-compute, cycles: 20000, code_bytes: 64 }] }]
isolation:
  - { name: pcid, cmdline: "pti=on" }
  - { name: nopcid, cmdline: "pti=on nopcid" }
`, 'user-walks.yaml')).mitigations;

  it('pays a walk per page touched again after a flushing CR3 write, at the kernel\'s walk price; 2 MiB pages need one', () => {
    const [pcid4k, nopcid4k] = run(false);
    const [pcid2m, nopcid2m] = run(true);
    const { tlbMissWalk, stlbHit } = getCostModel('skylake-sp').params;
    const walk = tlbMissWalk.cycles;
    const extra4k = nopcid4k.costs.counts.tlb_walks - pcid4k.costs.counts.tlb_walks;
    const extra2m = nopcid2m.costs.counts.tlb_walks - pcid2m.costs.counts.tlb_walks;
    // The kernel's touches are the same in both pairs; the user side re-walks 64 data pages or one
    // (and its one code page in both).
    expect(extra4k).toBeGreaterThan(4 * extra2m);
    // With PCID the working set's first-level misses are served by the STLB (stlbHit each);
    // without, they are walks. The user side's share of that change, as of the walks.
    const lostStlb = (pcid4k.costs.counts.stlb_hits - nopcid4k.costs.counts.stlb_hits) - (pcid2m.costs.counts.stlb_hits - nopcid2m.costs.counts.stlb_hits);
    expect(lostStlb).toBeGreaterThan(0);
    const userWalks4k = (nopcid4k.costs.by_kind['user-compute'] - pcid4k.costs.by_kind['user-compute'] + lostStlb * stlbHit.cycles) / walk;
    // Every extra user-side walk is charged to the tenant's own time at the walk price (nopcid
    // flushes no L1D line, so nothing else changes there), and none of the kernel's is.
    expect(userWalks4k).toBeGreaterThanOrEqual(extra4k - extra2m);
    expect(userWalks4k).toBeLessThanOrEqual(extra4k);
    const userWalks2m = (nopcid2m.costs.by_kind['user-compute'] - pcid2m.costs.by_kind['user-compute']) / walk;
    // Two pages re-walked an event (the 2 MiB data page and the code page) against 65.
    expect(userWalks2m).toBeLessThan(userWalks4k / 8);
  });

  it('refuses thp on a tenant that is not a process', () => {
    expect(() => parseScenario('tenants: [{ name: v, kind: vm, thp: false }]\nworkload: [{ thread: 0, tenant: v, mix: [{ event: guest-run, cycles: 1000 }] }]', 'thp-vm.yaml')).toThrow(/thp/);
  });
});
