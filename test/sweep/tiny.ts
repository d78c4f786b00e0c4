/**
 * The small scenario the sweep, store-merge and batch-docs tests share: one core, a victim VM
 * with a key next to an attacker VM on the sibling, EPT-violation exits between guest stretches,
 * no mitigation and google-asi-2025 — a run of it takes milliseconds and its ASI exits, stuns-free
 * re-entries and l1tf cell all happen. `sweep` appends a sweep block.
 */
export function tinyScenario(o: { name?: string; duration?: string; sweep?: string } = {}): string {
  return `name: ${o.name ?? 'tiny'}
seed: 4
duration: ${o.duration ?? '100us'}
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: victim, kind: vm, vcpus: 1, memory: 16MiB, objects: [{ name: k, kind: guest-page }] }
  - { name: evil, kind: vm, vcpus: 1, memory: 16MiB }
secrets: [{ name: key, in: victim/k, bytes: 32 }]
workload:
  - { thread: 1, tenant: victim, mix: [{ event: vm-exit, reason: EPT_VIOLATION, weight: 1 }, { event: guest-run, cycles: 3000, weight: 2 }] }
attackers: [{ thread: 0, tenant: evil, attacks: [l1tf-guest], every: 2us }]
isolation:
  - { name: none, cmdline: "mitigations=off" }
  - { name: asi, cmdline: "asi=google-asi-2025" }
${o.sweep === undefined ? '' : `sweep:\n${o.sweep}`}`;
}
