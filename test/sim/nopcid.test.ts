/**
 * nopcid (arch/x86/kernel/cpu/common.c x86_nopcid_setup(): X86_FEATURE_PCID cleared, so
 * setup_pcid() leaves CR4.PCIDE off) under PTI: SWITCH_TO_KERNEL_CR3 / SWITCH_TO_USER_CR3 set no
 * NOFLUSH bit (arch/x86/entry/calling.h: SET_NOFLUSH_BIT only under X86_FEATURE_PCID), and with
 * CR4.PCIDE = 0 every MOV to CR3 invalidates the non-global TLB entries (SDM Vol. 3A 4.10.4.1),
 * so the kernel re-walks what it touches after each entry. pti_kernel_image_global_ok() keeps
 * the kernel image global without PCID under pti=auto, not under pti=on (arch/x86/mm/pti.c).
 */
import { describe, expect, it } from 'vitest';
import { parseMitigationCmdline, CmdlineError } from '../../src/mitigations/cmdline.ts';
import { parseScenario } from '../../src/scenario/load.ts';
import { runScenario } from '../../src/sim/run.ts';
import { buildWorld } from '../../src/sim/world.ts';
import { bootKernel } from '../../src/linux/kernel.ts';

describe('nopcid on the command line', () => {
  it('is an early param without a value', () => {
    expect(parseMitigationCmdline('').nopcid).toBe(false);
    expect(parseMitigationCmdline('quiet nopcid').nopcid).toBe(true);
    expect(() => parseMitigationCmdline('nopcid=1')).toThrow(CmdlineError);
    expect(() => parseMitigationCmdline('nopcid=1')).toThrow(/nopcid/);
  });
});

const EVENTS = 400;
const yaml = (iso: string) => `
events: ${EVENTS}
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process }]
workload: [{ thread: 0, tenant: p, mix: [{ event: syscall, name: lseek }] }]
isolation:
${iso}
`;

describe('PTI without PCID', () => {
  const s = parseScenario(yaml(`  - { name: off, cmdline: "mitigations=off" }
  - { name: offnopcid, cmdline: "mitigations=off nopcid" }
  - { name: pti, cmdline: "mitigations=off pti=on" }
  - { name: nopcid, cmdline: "mitigations=off pti=on nopcid" }
  - { name: auto, cmdline: "nopti=0 pti=auto nopcid mds=off l1tf=off tsx_async_abort=off mmio_stale_data=off nospectre_v1" }`), 'nopcid.yaml');
  const r = runScenario(s);
  const by = (n: string) => r.mitigations.find((m) => m.name === n)!.costs;

  it('boots with CR4.PCIDE off', () => {
    const on = buildWorld(s, 2);
    const off = buildWorld(s, 3);
    expect(on.threads.cpus[0].pcide).toBe(true);
    expect(off.threads.cpus[0].pcide).toBe(false);
    expect(off.sys.asids.pcid).toBe(false);
  });

  it('every PTI CR3 write flushes, and the kernel walks again after each', () => {
    const pcid = by('pti').counts;
    const nopcid = by('nopcid').counts;
    // Two CR3 writes a syscall either way; with PCID they keep the TLB (NOFLUSH), without they flush it.
    expect(nopcid.cr3_writes).toBe(pcid.cr3_writes);
    expect(pcid.cr3_noflush).toBeGreaterThanOrEqual(2 * EVENTS);
    expect(nopcid.cr3_noflush ?? 0).toBe(0);
    expect(nopcid.tlb_flushes).toBeGreaterThanOrEqual(2 * EVENTS);
    // The kernel stack (vmalloc, 4 KiB, non-global) is touched after every entry: at least one walk a syscall.
    expect(nopcid.tlb_walks).toBeGreaterThan(EVENTS);
    expect(pcid.tlb_walks).toBeLessThan(EVENTS / 4);
    expect(by('nopcid').cycles).toBeGreaterThan(by('pti').cycles);
  });

  it('without PTI a syscall loop writes no CR3, so nopcid changes nothing', () => {
    expect(by('offnopcid').cycles).toBe(by('off').cycles);
    expect(by('offnopcid').counts.tlb_walks).toBe(by('off').counts.tlb_walks);
  });

  it('pti=auto keeps the kernel image global without PCID, pti=on does not: fewer walks', () => {
    const auto = buildWorld(s, 4);
    expect(auto.state.pti).toBe(true);
    expect(auto.sys.kernel.pti.kernelImageGlobal).toBe(true);
    expect(buildWorld(s, 3).sys.kernel.pti.kernelImageGlobal).toBe(false);
    expect(by('auto').counts.tlb_walks).toBeLessThan(by('nopcid').counts.tlb_walks);
  });
});

describe('nopcid in a booted kernel\'s own command line (a capture\'s cmdline.txt)', () => {
  it('clears PCID, so pti=auto keeps the kernel image global; nopcid=1 is ignored as the kernel does', () => {
    const boot = (cmdline: string) => bootKernel({ cmdline, cpu: { pcid: true, meltdown: true } });
    expect(boot('pti=auto').pti.kernelImageGlobal).toBe(false);
    expect(boot('pti=auto nopcid').pti.kernelImageGlobal).toBe(true);
    expect(boot('pti=on nopcid').pti.kernelImageGlobal).toBe(false);
    expect(boot('pti=auto nopcid=1').pti.kernelImageGlobal).toBe(false);
  });
});

describe('the user half loses its TLB entries too', () => {
  // getppid and user-compute drawn at random; the user code touches one 4 KiB data page (100 line
  // touches an event) and fetches `code` bytes of its text. Without PCID the return to user
  // flushed both, so a user-compute right after a syscall walks them again: about half the user
  // events (those drawn after a syscall).
  const run = (mix: string, code: string) => runScenario(parseScenario(`
events: ${EVENTS}
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process, working_set: { bytes: 4KiB, writes: 0, lines_per_kcycle: 1000 } }]
workload: [{ thread: 0, tenant: p, mix: [${mix.replace('CODE', code)}] }]
isolation:
  - { name: pti, cmdline: "mitigations=off pti=on" }
  - { name: nopcid, cmdline: "mitigations=off pti=on nopcid" }
`, 'user.yaml')).mitigations.map((m) => m.costs.counts);
  const userWalks = (code: string) => {
    const [, kernel] = run('{ event: syscall, name: getppid }', code);
    const [pcid, nopcid] = run('{ event: syscall, name: getppid }, { event: user-compute, cycles: 100, code_bytes: CODE }', code);
    const perSyscall = kernel.tlb_walks / (kernel.cr3_writes / 2);
    const syscalls = nopcid.cr3_writes / 2;
    return { userEvents: EVENTS - syscalls, walks: nopcid.tlb_walks - perSyscall * syscalls, pcid: pcid.tlb_walks };
  };

  it('user code re-walks its data and code page after a return to user without PCID, not with', () => {
    const { userEvents, walks, pcid } = userWalks('64');
    // Two pages (the data page and the one text page its code fits in) an event drawn after a syscall.
    expect(walks).toBeGreaterThan(userEvents / 2);
    expect(walks).toBeLessThan(2 * userEvents + 2);
    expect(pcid).toBeLessThan(EVENTS / 8);
  });

  it('fetches every page of its hot code through the TLB: 16 KiB of code re-walks 3 more pages than one line', () => {
    const one = userWalks('64');
    const four = userWalks('16KiB');
    const perEvent = (four.walks / four.userEvents) - (one.walks / one.userEvents);
    // About half the user events follow a syscall, each 3 more walks: 1.5 an event (a quarter to three quarters of them).
    expect(perEvent).toBeGreaterThan(3 / 4);
    expect(perEvent).toBeLessThan(9 / 4);
  });

  it('code larger than the default 64 KiB text gets a text that holds it: 1 MiB of code re-walks 255 more pages than one line', () => {
    const one = userWalks('64');
    const big = userWalks('1MiB');
    const perEvent = (big.walks / big.userEvents) - (one.walks / one.userEvents);
    expect(perEvent).toBeGreaterThan(255 / 4);
    expect(perEvent).toBeLessThan(255 * 3 / 4);
    // With PCID the 256 pages outgrow the 128-entry ITLB but stay in the STLB: each is walked once.
    expect(big.pcid).toBeLessThan(256 + EVENTS / 8);
  });
});

describe('a process\'s text in RAM', () => {
  const scenario = (code: string) => `
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process, memory: 1000MiB }]
workload: [{ thread: 0, tenant: p, mix: [{ event: user-compute, cycles: 1000, code_bytes: ${code} }] }]
`;
  it('counts against the machine\'s RAM: code that does not fit beside the tenants\' memory is refused at its field', () => {
    expect(() => parseScenario(scenario('60MiB'), 'text.yaml')).toThrow(/text\.yaml.*workload\[0\]\.mix\[0\]\.code_bytes/s);
    expect(() => parseScenario(scenario('64KiB'), 'text.yaml')).not.toThrow();
  });

  it('is fetched by a process whose data is not modelled (no working set)', () => {
    const counts = (code: string) => runScenario(parseScenario(`
events: 200
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 1, ram: 1GiB }
tenants: [{ name: p, kind: process }]
workload: [{ thread: 0, tenant: p, mix: [{ event: user-compute, cycles: 1000, code_bytes: ${code} }] }]
isolation: [{ name: nopcid, cmdline: "mitigations=off pti=on nopcid" }]
`, 'nows.yaml')).mitigations[0].costs.counts;
    // 200 events of 16 pages against one: 15 more fetches an event, each a touch.
    expect(counts('64KiB').touches - counts('64').touches).toBe(200 * 15);
  });
});
