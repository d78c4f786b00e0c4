/**
 * The host of bench/scale.ts as scenario YAML: `ramGiB` of RAM on sapphire-rapids cores of 2
 * threads, `vms` VMs and `procs` host processes, each tenant running one workload task on
 * thread per tenant while threads last (the tenants spread evenly over threads 1..N-1: a thread
 * runs one workload), an attacker VM sampling from thread 0, and the isolation
 * entries that build KPTI and every ASI design's restricted spaces. A VM gets 4 GiB, or less
 * when that many VMs would not fit in three quarters of the RAM (2 MiB multiples, at least
 * 16 MiB); a process 16 MiB.
 *
 * Run directly it prints one: `npx tsx bench/scale-scenario.ts [RAM_GIB THREADS VMS PROCS DURATION]`
 * (default the 1 TiB host: 1024 128 200 50 10ms), e.g. `… > host.yaml && kasi run host.yaml --seeds 1`.
 */
import { pathToFileURL } from 'node:url';

export interface ScaleShape {
  readonly ramGiB: number;
  readonly threads: number;
  readonly vms: number;
  readonly procs: number;
  readonly duration: string;
}

const MiB = 1 << 20;
const GiB = 1024 * MiB;

export function vmBytes(s: ScaleShape): number {
  const fit = Math.floor((s.ramGiB * GiB * 0.75) / Math.max(1, s.vms + 1) / (2 * MiB)) * 2 * MiB;
  return Math.max(16 * MiB, Math.min(4 * GiB, fit));
}

export function scaleScenarioYaml(s: ScaleShape): string {
  const cores = Math.max(1, s.threads >> 1);
  const vm = vmBytes(s);
  const L: string[] = [
    `name: scale-${s.ramGiB}g-${s.threads}t-${s.vms}vm-${s.procs}p`,
    'seed: 5',
    `duration: ${s.duration}`,
    `machine: { cpu: sapphire-rapids, cores: ${cores}, threads_per_core: 2, ram: ${s.ramGiB}GiB, paging_levels: 4 }`,
    'kernel: { kaslr: true, kaslr_seed: 3, pti: auto, capture: null }',
    'tenants:',
  ];
  const names: { name: string; vm: boolean }[] = [];
  for (let i = 0; i < s.vms; i++) names.push({ name: `vm${i}`, vm: true });
  for (let i = 0; i < s.procs; i++) names.push({ name: `proc${i}`, vm: false });
  const runners = Math.min(names.length, s.threads - 1);
  const runnerOf = (r: number) => Math.floor((r * names.length) / runners);
  const pins = names.map((_, i) => 1 + (i % Math.max(1, s.threads - 1)));
  for (let r = 0; r < runners; r++) pins[runnerOf(r)] = 1 + r;
  names.forEach((t, i) => {
    const pin = pins[i];
    if (t.vm) L.push(`  - { name: ${t.name}, kind: vm, vcpus: 1, memory: ${vm / MiB}MiB, pin: [${pin}], objects: [{ name: key, kind: guest-page }] }`);
    else L.push(`  - { name: ${t.name}, kind: process, memory: 16MiB, pin: [${pin}], objects: [{ name: secret, kind: anon-page }, { name: creds, kind: cred }] }`);
  });
  L.push(`  - { name: attacker, kind: vm, vcpus: 1, memory: 64MiB, pin: [0] }`);
  L.push('secrets:');
  if (s.vms > 0) L.push('  - { name: guest-key, in: vm0/key, bytes: 32 }');
  if (s.procs > 0) L.push('  - { name: db-key, in: proc0/secret, bytes: 32, offset: 256 }');
  L.push('workload:');
  for (let r = 0; r < runners; r++) {
    const t = names[runnerOf(r)];
    const thread = 1 + r;
    L.push(`  - thread: ${thread}`, `    tenant: ${t.name}`, '    mix:');
    if (t.vm) {
      L.push('      - { event: vm-exit, reason: EPT_VIOLATION, weight: 3 }', '      - { event: vm-exit, reason: MSR_WRITE, weight: 2 }',
        '      - { event: vm-exit, reason: EXTERNAL_INTERRUPT, weight: 2 }', '      - { event: guest-run, cycles: 20000, weight: 8 }');
    } else {
      L.push('      - { event: syscall, name: read, weight: 5 }', '      - { event: syscall, name: futex, weight: 2 }',
        '      - { event: page-fault, weight: 1 }', '      - { event: user-compute, cycles: 5000, weight: 6 }');
    }
  }
  L.push('attackers:', '  - { thread: 0, tenant: attacker, attacks: [l1tf-guest, mfbds], every: 10us }');
  L.push('isolation:',
    '  - { name: none, cmdline: "mitigations=off" }',
    '  - { name: kpti, cmdline: "pti=on" }',
    '  - { name: asi-2019, cmdline: "asi=kvm-asi-2019" }',
    '  - { name: asi-2022, cmdline: "asi=google-asi-2022" }',
    '  - { name: asi-2025, cmdline: "asi=google-asi-2025" }',
    '  - { name: netns-asi, cmdline: "asi=netns-asi" }',
    '  - { name: sci-2019, cmdline: "pti=on asi=sci-2019" }');
  return L.join('\n') + '\n';
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [ram = '1024', threads = '128', vms = '200', procs = '50', duration = '10ms'] = process.argv.slice(2);
  process.stdout.write(scaleScenarioYaml({ ramGiB: Number(ram), threads: Number(threads), vms: Number(vms), procs: Number(procs), duration }));
}
