/**
 * Scenario files: the examples parse, the built-in default equals examples/default.yaml, and
 * every kind of bad input gives one line `FILE:LINE:COLUMN: field PATH: expected …, found …`
 * pointing where the mistake is written. Expected positions are counted by hand from the YAML
 * text of each case (1-based line and column), not taken from the parser.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/formats/files.ts';
import { defaultScenario, loadScenario, parseScenario, parseSize, parseTime, ScenarioError } from '../../src/scenario/load.ts';
import { DEFAULT_SCENARIO_YAML } from '../../src/sim/default-scenario.ts';
import type { Scenario } from '../../src/sim/scenario-types.ts';

const EX = (name: string) => new URL(`../../examples/${name}`, import.meta.url).pathname;
const strip = (s: Scenario) => ({ ...s, file: '', positions: undefined });

function err(text: string): string {
  try {
    parseScenario(text, 'f.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    expect(e).toBeInstanceOf(InputError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${JSON.stringify(text)}`);
}

describe('examples', () => {
  it('the built-in default parses equal to examples/default.yaml', () => {
    const builtIn = defaultScenario();
    const shipped = loadScenario(EX('default.yaml'));
    expect(strip(shipped)).toEqual(strip(builtIn));
    // and the two texts differ only in their comment lines
    const body = (t: string) => t.split('\n').filter((l) => !l.startsWith('#')).join('\n');
    expect(body(readFileSync(EX('default.yaml'), 'utf8'))).toBe(body(DEFAULT_SCENARIO_YAML));
  });

  it('the default is the KVM host the brief asks for', () => {
    const s = defaultScenario();
    expect(s.machine).toEqual({ cpu: 'skylake-sp', cores: 2, threadsPerCore: 2, ramBytes: 4 * 2 ** 30, pagingLevels: 4, loadBalance: false });
    expect(s.tenants.map((t) => `${t.name}:${t.kind}`)).toEqual(['victim-vm:vm', 'attacker-vm:vm', 'host-db:process']);
    expect(s.isolation.map((i) => i.name)).toEqual(['none', 'default', 'l1d-always', 'nosmt', 'core-sched', 'asi-2019', 'asi-2022', 'asi-2025', 'asi-2025-stun', 'asi-2025-cs']);
    const iso = Object.fromEntries(s.isolation.map((i) => [i.name, i]));
    expect(iso.none.mitigations.cpuMitigations).toBe('off');
    expect(iso.default.cmdline).toBe('');
    expect(iso['l1d-always'].mitigations.kvmIntel.vmentryL1dFlush).toBe('always');
    expect(iso.nosmt.mitigations.nosmt).toBe('yes');
    expect(iso['core-sched'].mitigations.schedCore).toBe(true);
    expect([iso['asi-2019'].design, iso['asi-2022'].design, iso['asi-2025'].design]).toEqual(['kvm-asi-2019', 'google-asi-2022', 'google-asi-2025']);
    // As posted: no stun; the one stun is the named what-if.
    expect(s.isolation.filter((i) => i.stun).map((i) => [i.name, i.stunWhatIf])).toEqual([['asi-2025-stun', true]]);
    expect(iso.none.stun).toBe(false);
    // victim (thread 1) and an attacker vCPU (thread 0) are SMT siblings of core 0
    expect(s.workload.find((w) => w.tenant === 'victim-vm')!.thread).toBe(1);
    expect(s.attackers.map((a) => a.thread)).toEqual([0, 3]);
  });

  it('the field reference in examples/README.md is itself a valid scenario', () => {
    const md = readFileSync(EX('README.md'), 'utf8');
    const s = parseScenario(md.split('```yaml\n')[1].split('```')[0], EX('README.yaml'));
    expect(s.footprintOverrides['syscall:read'].source).toBe('my measurement');
    expect(s.costOverrides.params!.cr3Write!.cycles).toBe(120);
  });

  it('the other examples parse and say what they are about', () => {
    const sci = loadScenario(EX('sci-syscalls.yaml'));
    expect(sci.isolation.map((i) => i.name)).toEqual(['none', 'kpti', 'sci', 'sci-no-caps']);
    expect(sci.stop).toEqual({ kind: 'events', count: 30000 });
    const netns = loadScenario(EX('netns-containers.yaml'));
    expect(netns.tenants.every((t) => t.kind === 'netns')).toBe(true);
    expect(netns.isolation.find((i) => i.name === 'netns-asi')!.mitigations.asi).toBe('netns');
    const la57 = loadScenario(EX('la57-icelake.yaml'));
    expect(la57.machine).toMatchObject({ cpu: 'ice-lake-sp', pagingLevels: 5 });
    const g = loadScenario(EX('asi-2022-global-image.yaml'));
    expect(g.isolation.map((i) => [i.design, i.mitigations.pti, i.whatIf])).toEqual([
      ['off', null, []], ['google-asi-2022', null, []], ['google-asi-2022', 'on', []], ['google-asi-2022', null, ['image-nonglobal']],
    ]);
  });
});

describe('defaults and values', () => {
  it('an almost empty file gets the documented defaults', () => {
    const s = parseScenario('seed: 9\n', 'dir/mini.yaml');
    expect(s.name).toBe('mini');
    expect(s.machine).toEqual({ cpu: 'skylake-sp', cores: 2, threadsPerCore: 2, ramBytes: 4 * 2 ** 30, pagingLevels: 4, loadBalance: false });
    expect(s.kernel).toEqual({ kaslr: true, kaslrSeed: 9, pti: 'auto', capture: null });
    expect(s.stop).toEqual({ kind: 'duration', time: { unit: 'ns', value: 1e6 } });
    expect(s.isolation).toHaveLength(1);
    expect(s.isolation[0]).toMatchObject({ name: 'default', cmdline: '', design: 'off', stun: false });
  });

  it('threads per core default to 1 on a CPU without SMT', () => {
    expect(parseScenario('machine: { cpu: qemu-max, paging_levels: 5 }\n', 'f.yaml').machine.threadsPerCore).toBe(1);
  });

  it.each([
    [4096, 4096], ['4KiB', 4096], ['2MiB', 2 * 2 ** 20], ['1GiB', 2 ** 30], ['1 TiB', 2 ** 40], ['1.5KiB', 1536], ['512', 512], ['512B', 512],
  ])('size %j = %d bytes', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each([['4KB'], ['4k'], ['lots'], [-1], [1.5], ['0.1B']])('size %j is refused', (text) => expect(typeof parseSize(text)).toBe('string'));

  it.each([
    ['10us', { unit: 'ns', value: 10000 }], ['2ms', { unit: 'ns', value: 2e6 }], ['1s', { unit: 'ns', value: 1e9 }], ['500ns', { unit: 'ns', value: 500 }],
    ['20000cycles', { unit: 'cycles', value: 20000 }], ['1 cycle', { unit: 'cycles', value: 1 }], ['1.5us', { unit: 'ns', value: 1500 }],
  ])('time %j', (text, t) => expect(parseTime(text)).toEqual(t));

  it.each([[10], ['10'], ['10 minutes'], ['0ns'], ['1.5cycles']])('time %j is refused', (text) => expect(typeof parseTime(text)).toBe('string'));

  it('kernel.pti fills in for configurations whose command line says nothing about PTI', () => {
    const s = parseScenario('kernel: { pti: off }\nisolation:\n  - { name: a, cmdline: "" }\n  - { name: b, cmdline: "pti=on" }\n  - { name: c, cmdline: "nopti" }\n', 'f.yaml');
    expect(s.isolation.map((i) => [i.mitigations.pti, i.mitigations.nopti])).toEqual([['off', false], ['on', false], [null, true]]);
    expect(s.isolation[0].mitigations.text).toBe('');
  });

  it('cmdline.ts\'s short asi names are aliases; asi=kpti turns PTI on', () => {
    const s = parseScenario('isolation:\n  - { name: a, cmdline: "asi=kvm" }\n  - { name: b, cmdline: "asi=kpti" }\n', 'f.yaml');
    // Designs run as posted: no posted design stuns its sibling, so stun is off unless asked, and asking is a what-if.
    expect(s.isolation[0]).toMatchObject({ design: 'kvm-asi-2019', stun: false, stunWhatIf: false });
    const w = parseScenario('isolation:\n  - { name: a, cmdline: "asi=google-asi-2022", stun: true }\n', 'f.yaml');
    expect(w.isolation[0]).toMatchObject({ stun: true, stunWhatIf: true });
    expect(s.isolation[0].mitigations.asi).toBe('kvm');
    expect(s.isolation[1].design).toBe('kpti');
    expect(s.isolation[1].mitigations.pti).toBe('on');
  });

  it('cost and footprint overrides are carried with their source line', () => {
    const s = parseScenario([
      'costs:',
      '  clock_ghz: 3',
      '  override:',
      '    cr3_write: 150',
      '    verw: { cycles: 600, source: "my lab" }',
      'footprints:',
      '  override:',
      '    syscall:read: { insns: 700, data: [{ kind: cred, access: read, lines: 2 }] }',
      '',
    ].join('\n'), 'lab.yaml');
    expect(s.costOverrides.clock).toEqual({ ghz: 3, source: 'scenario lab.yaml:2' });
    expect(s.costOverrides.params!.cr3Write).toEqual({ cycles: 150, source: 'scenario lab.yaml:4' });
    expect(s.costOverrides.params!.verw).toEqual({ cycles: 600, source: 'my lab' });
    expect(s.footprintOverrides['syscall:read']).toEqual({ insns: 700, data: [{ kind: 'cred', access: 'read', lines: 2, scope: 'current' }], source: 'scenario lab.yaml:8' });
  });

  it('keeps where each field was written', () => {
    const s = defaultScenario();
    // line 19 of DEFAULT_SCENARIO_YAML is "    pin: [0, 3]"; the 0 is at column 11
    expect(DEFAULT_SCENARIO_YAML.split('\n')[18]).toBe('    pin: [0, 3]');
    expect(s.positions.get('tenants[1].pin[0]')).toEqual({ line: 19, column: 11 });
  });
});

describe('errors: one line, FILE:LINE:COLUMN: field PATH: expected …, found …', () => {
  it.each([
    // malformed YAML: the flow map opened on line 2 is still open when line 3 starts
    ['name: x\nmachine: { cpu: skylake-sp, cores: 2\nseed: 1\n', 'f.yaml:3:1: YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }'],
    ['seed: 1\nseed: 2\n', 'f.yaml:2:1: YAML syntax error: Map keys must be unique'],
    ['name: x\n---\nname: y\n', 'f.yaml:2:1: YAML syntax error: Source contains multiple documents'],
    ['', 'f.yaml:1:1: field (top level): expected a mapping of scenario fields'],
    // wrong types
    ['machine:\n  cores: two\n', 'f.yaml:2:10: field machine.cores: expected a number, found string "two"'],
    ['kernel:\n  kaslr: yes\n', 'f.yaml:2:10: field kernel.kaslr: expected true or false, found string "yes"'],
    ['tenants: {}\n', 'f.yaml:1:10: field tenants: expected a list, found a mapping'],
    ['attackers:\n  - thread: 0\n    tenant: a\n    attacks: [l1tf-guest]\n    every: 10\n', 'f.yaml:5:12: field attackers[0].every: expected a time such as 500ns, 10us, 2ms, 1s or 20000cycles (with a unit), found number 10'],
    ['machine:\n  ram: 4GB\n', 'f.yaml:2:8: field machine.ram: expected a size such as 4096, 4KiB, 2MiB or 1GiB (units B, KiB, MiB, GiB, TiB), found string "4GB"'],
    // unknown fields (the position is the key's)
    ['machine:\n  cpu: skylake-sp\n  colour: red\n', 'f.yaml:3:3: field machine.colour: expected one of the fields cpu, cores, threads_per_core, ram, paging_levels, load_balance, found unknown field "colour"'],
    ['tenants:\n  - { name: a, kind: vm, disk: 3 }\n', 'f.yaml:2:26: field tenants[0].disk: expected one of the fields name, pin, objects, kind, vcpus, memory, working_set, lock_fraction, lock_wait, found unknown field "disk"'],
    ['nmae: x\n', 'f.yaml:1:1: field nmae: expected one of the fields name, seed, duration, events, machine'],
    ['workload:\n  - thread: 0\n    tenant: a\n    mix:\n      - { event: syscal }\n', 'f.yaml:5:18: field workload[0].mix[0].event: expected one of "vm-exit", "syscall"'],
    // impossible machines
    ['machine:\n  threads_per_core: 3\n', 'f.yaml:2:21: field machine.threads_per_core: expected 1 or 2 hardware threads per core, found 3'],
    ['machine:\n  cores: 0\n', 'f.yaml:2:10: field machine.cores: expected a number >= 1, found number 0'],
    ['machine:\n  ram: 0\n', 'f.yaml:2:8: field machine.ram: expected some RAM (above 0), found 0'],
    ['machine:\n  ram: 6000\n', 'f.yaml:2:8: field machine.ram: expected a multiple of 4KiB (whole page frames), found 6000 bytes'],
    ['machine:\n  cpu: skylake-sp\n  paging_levels: 5\n', 'f.yaml:3:18: field machine.paging_levels: expected 4 (skylake-sp has no LA57, so no 5-level paging), found 5'],
    ['machine:\n  cpu: qemu-max\n  threads_per_core: 2\n', 'f.yaml:3:21: field machine.threads_per_core: expected 1 (qemu-max has no SMT), found 2'],
    ['machine: { cpu: zen3 }\ntenants:\n  - { name: v, kind: vm }\n', 'f.yaml:3:22: field tenants[0].kind: expected a host tenant (zen3 has no VT-x with EPT'],
    ['machine:\n  ram: 64MiB\ntenants:\n  - name: a\n    kind: vm\n    memory: 48MiB\n  - name: b\n    kind: vm\n    memory: 32MiB\n', 'f.yaml:9:13: field tenants[1].memory: expected at most 16777216 bytes (the machine\'s RAM left by earlier tenants), found 33554432 bytes'],
    // unknown CPU profile
    ['machine:\n  cpu: skylake\n', 'f.yaml:2:8: field machine.cpu: expected a CPU profile (skylake-sp, cascade-lake, ice-lake-sp, sapphire-rapids, zen3, zen4, qemu-max), found string "skylake"'],
    // unknown ASI design: the column is that of "asi" inside the quoted string (col 14 is the quote, "asi" is character 17 of the value)
    ['isolation:\n  - name: x\n    cmdline: "mitigations=auto asi=magic"\n', 'f.yaml:3:32: field isolation[0].cmdline: expected asi= one of off, kpti, kvm-asi-2019, sci-2019, google-asi-2022, google-asi-2025, netns-asi, found asi=magic'],
    ['isolation:\n  - name: x\n    cmdline: "mitigations=off asi=on"\n', 'f.yaml:3:31: field isolation[0].cmdline: expected asi= one of off, kpti, kvm-asi-2019, sci-2019, google-asi-2022, google-asi-2025, netns-asi (asi=on is the Google branches\' switch: asi=google-asi-2025 is RFC v2, with what_if: [ephmap-tmpfs] the Aug 2025 branch), found asi=on'],
    // a bad mitigation command line, located at the offending parameter (plain scalar from column 14)
    ['isolation:\n  - name: x\n    cmdline: nosmt mds=fuller\n', 'f.yaml:3:20: field isolation[0].cmdline: expected a kernel command line kasi accepts, found mds=fuller: unknown value "fuller" (expected one of off, full, full,nosmt)'],
    ['isolation:\n  - name: x\n    cmdline: "l1tf=maybe"\n', 'f.yaml:3:15: field isolation[0].cmdline: expected a kernel command line kasi accepts, found l1tf=maybe: unknown value "maybe"'],
    ['isolation:\n  - { name: x, cmdline: "pti=off asi=kpti" }\n', 'f.yaml:2:25: field isolation[0].cmdline: expected asi=kpti without pti=off/nopti'],
    ['isolation:\n  - { name: x, cmdline: "asi=sci-2019", stun: true }\n', 'f.yaml:2:47: field isolation[0].stun: expected stun only with asi=kvm-asi-2019, asi=google-asi-2022, asi=google-asi-2025, found stun: true with asi=sci-2019'],
    // secrets referencing an unknown tenant / object, too short, too long for the object
    ['tenants:\n  - name: a\n    kind: process\nsecrets:\n  - name: s\n    in: ghost/key\n    bytes: 32\n', 'f.yaml:6:9: field secrets[0].in: expected a tenant name (a), found string "ghost"'],
    ['tenants:\n  - name: a\n    kind: process\n    objects: [{ name: k, kind: cred }]\nsecrets:\n  - { name: s, in: a/key, bytes: 32 }\n', 'f.yaml:6:22: field secrets[0].in: expected an object of tenant a (k), found "key"'],
    ['tenants:\n  - name: a\n    kind: process\n    objects: [{ name: k, kind: cred }]\nsecrets:\n  - { name: s, in: a/k, bytes: 4 }\n', 'f.yaml:6:32: field secrets[0].bytes: expected at least 8 bytes'],
    ['tenants:\n  - name: a\n    kind: process\n    objects: [{ name: k, kind: cred }]\nsecrets:\n  - { name: s, in: a/k, bytes: 32, offset: 160 }\n', 'f.yaml:6:32: field secrets[0].bytes: expected offset + bytes within the 184 bytes of a cred, found 160 + 32'],
    ['tenants:\n  - name: a\n    kind: process\n    objects: [{ name: g, kind: guest-page }]\n', 'f.yaml:4:32: field tenants[0].objects[0].kind: expected an object kind a process tenant owns (anon-page, page-cache, pipe-page, cred, task_struct, kernel-stack, sock, sk_buff, skb-data), found string "guest-page"'],
    // duplicate names
    ['tenants:\n  - name: a\n    kind: process\n  - name: a\n    kind: vm\n', 'f.yaml:4:11: field tenants[1].name: expected a unique tenant name, found "a" again (first at line 2)'],
    ['isolation:\n  - { name: x }\n  - { name: x, cmdline: nosmt }\n', 'f.yaml:3:13: field isolation[1].name: expected a unique isolation name, found "x" again (first at line 2)'],
    ['tenants:\n  - { name: a, kind: netns, objects: [{ name: o, kind: sock }, { name: o, kind: sk_buff }] }\n', 'f.yaml:2:72: field tenants[0].objects[1].name: expected a unique object name, found "o" again (first at line 2)'],
    // workload and attackers
    ['tenants:\n  - { name: a, kind: process }\nworkload:\n  - { thread: 4, tenant: a, mix: [{ event: page-fault }] }\n', 'f.yaml:4:15: field workload[0].thread: expected a hardware thread 0..3, found 4'],
    ['tenants:\n  - { name: a, kind: process, pin: [1] }\nworkload:\n  - { thread: 0, tenant: a, mix: [{ event: page-fault }] }\n', 'f.yaml:4:15: field workload[0].thread: expected a thread tenant a is pinned to (1), found 0'],
    ['tenants:\n  - { name: a, kind: process }\nworkload:\n  - { thread: 0, tenant: a, mix: [{ event: page-fault }] }\nattackers:\n  - { thread: 0, tenant: a, attacks: [mfbds] }\n', 'f.yaml:6:15: field attackers[0].thread: expected a thread no other workload or attacker uses, found 0 again (first at line 4)'],
    ['tenants:\n  - { name: a, kind: process }\nworkload:\n  - { thread: 0, tenant: a, mix: [{ event: syscall, name: frobnicate }] }\n', 'f.yaml:4:59: field workload[0].mix[0].name: expected a syscall name in the footprint table ('],
    ['tenants:\n  - { name: a, kind: process }\nworkload:\n  - { thread: 0, tenant: a, mix: [{ event: vm-exit, reason: HLT }] }\n', 'f.yaml:4:44: field workload[0].mix[0].event: expected an event a process tenant makes, found "vm-exit" (only vm tenants make it)'],
    ['tenants:\n  - { name: a, kind: process }\nattackers:\n  - { thread: 0, tenant: a, attacks: [l1tf-guest] }\n', 'f.yaml:4:39: field attackers[0].attacks[0]: expected an attack a process tenant can run (l1tf-guest needs a vm tenant), found "l1tf-guest"'],
    ['tenants:\n  - { name: v, kind: vm }\nworkload:\n  - { thread: 0, tenant: v, mix: [{ event: vm-exit, reason: HLT }] }\n  - { thread: 1, tenant: v, mix: [{ event: vm-exit, reason: HLT }] }\n', 'f.yaml:5:15: field workload[1].thread: expected at most 1 thread for vm v (vcpus: 1), found thread 1, its vCPU number 2'],
    ['attackers:\n  - { thread: 0, tenant: nobody, attacks: [mfbds] }\n', 'f.yaml:2:26: field attackers[0].tenant: expected a tenant name (none are defined), found string "nobody"'],
    // the rest
    ['duration: 1ms\nevents: 5\n', 'f.yaml:2:9: field events: expected either duration or events, found both'],
    ['costs:\n  override:\n    cr3_wrte: 5\n', 'f.yaml:3:5: field costs.override.cr3_wrte: expected a cost parameter (cr3_write, cr3_write_noflush,'],
    ['footprints:\n  override:\n    syscall:Read: { insns: 3 }\n', 'f.yaml:3:5: field footprints.override.syscall:Read: expected an event key such as syscall:read'],
    ['footprints:\n  override:\n    syscall:frob: { insns: 3 }\n', 'f.yaml:3:19: field footprints.override.syscall:frob: expected an override the footprint table accepts, found footprint syscall:frob is not in the table: a new entry needs text, insns and data'],
    ['footprints:\n  override:\n    nmi: { text: { measured: [{ test: nope }] } }\n', 'f.yaml:3:10: field footprints.override.nmi: expected an override the footprint table accepts, found footprint nmi: test "nope" is not in'],
    ['kernel:\n  capture: nowhere\n', 'f.yaml:2:12: field kernel.capture: expected a capture folder holding kernel.json.gz (relative to the scenario file), found "nowhere"'],
  ])('%j', (text, message) => {
    const m = err(text);
    expect(m.startsWith(message), `got: ${m}`).toBe(true);
    expect(m).not.toContain('\n');
  });

  it('a capture folder is found relative to the scenario file', () => {
    const file = new URL('../fixtures/scenario.yaml', import.meta.url).pathname;
    // one hardware thread: the captured kernel booted with one CPU (test/formats/hostile.test.ts refuses more)
    const s = parseScenario('machine: { cores: 1, threads_per_core: 1 }\nkernel: { capture: captures/la48-pti-nokaslr }\n', file);
    expect(s.kernel.capture).toBe(new URL('../fixtures/captures/la48-pti-nokaslr', import.meta.url).pathname);
  });

  it('a missing file is an InputError naming it', () => {
    expect(() => loadScenario('/nonexistent/x.yaml')).toThrow(/^\/nonexistent\/x\.yaml: cannot read: ENOENT/);
  });
});

describe('asi= next to other parameters', () => {
  it('keeps the parameters after asi= (a separator is not lost when the design name is rewritten)', () => {
    const s = parseScenario('isolation:\n  - { name: a, cmdline: "asi=google-asi-2025 sched_core=1 nosmt" }\n', 'f.yaml');
    expect(s.isolation[0].design).toBe('google-asi-2025');
    expect(s.isolation[0].mitigations.schedCore).toBe(true);
    expect(s.isolation[0].mitigations.nosmt).toBe('yes');
  });
});
