/**
 * no5lvl (arch/x86/boot/compressed/pgtable_64.c configure_5level_paging(): 5-level paging only
 * `!cmdline_find_option_bool("no5lvl")`): a set whose command line has it boots 4-level paging on
 * a machine given 5, as the ASI postings' boot lines do on Sapphire Rapids.
 */
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { buildWorld } from '../../src/sim/world.ts';
import { parseMitigationCmdline as parseCmdline } from '../../src/mitigations/cmdline.ts';

const s = parseScenario(`
events: 50
machine: { cpu: ice-lake-sp, cores: 1, threads_per_core: 1, ram: 1GiB, paging_levels: 5 }
tenants: [{ name: p, kind: process }]
workload: [{ thread: 0, tenant: p, mix: [{ event: syscall, name: getppid }] }]
isolation:
  - { name: five, cmdline: "mitigations=off" }
  - { name: four, cmdline: "mitigations=off no5lvl" }
  - { name: valued, cmdline: "mitigations=off no5lvl=1" }
`, 'la57.yaml');

describe('no5lvl', () => {
  it('boots the set 4-level, with CR4.LA57 off on every thread, and says so', () => {
    const five = buildWorld(s, 0);
    const four = buildWorld(s, 1);
    expect(five.sys.levels).toBe(5);
    expect(four.sys.levels).toBe(4);
    expect(four.threads.mmus.every((m) => m.cpu.levels === 4)).toBe(true); // CR4.LA57 off (SDM 2.5: bit 12)
    expect(five.threads.mmus.every((m) => m.cpu.levels === 5)).toBe(true);
    expect(four.notes.some((n) => /no5lvl/.test(n))).toBe(true);
  });

  it('is the bare word only, anywhere on the line (cmdline_find_option_bool())', () => {
    expect(buildWorld(s, 2).sys.levels).toBe(5);
    expect(parseCmdline('quiet -- no5lvl').no5lvl).toBe(true);
    expect(parseCmdline('no5lvl=1').no5lvl).toBe(false);
  });
});
