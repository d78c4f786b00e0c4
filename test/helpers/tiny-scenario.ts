/**
 * The small scenario many tests share: one core, a victim VM with a key next to an attacker VM on
 * the sibling, EPT-violation exits between guest stretches; a run takes milliseconds. The
 * defaults are the sweep/store-merge tests' (no mitigation and google-asi-2025: its ASI exits,
 * stun-free re-entries and l1tf cell all happen); options give the others their variants.
 * `victimWorkingSet` small enough to stay in L1D makes the none set leak in every seed rather
 * than by the luck of one. `sweep` appends a sweep block.
 */
export interface TinyOptions {
  name?: string;
  seed?: number;
  duration?: string;
  /** The attacker's period. */
  every?: string;
  /** [name, cmdline] per isolation entry. */
  isolation?: readonly (readonly [string, string])[];
  /** e.g. '4KiB': the victim's working set (sim/working-set.ts; default 64 KiB). */
  victimWorkingSet?: string;
  sweep?: string;
}

export function tinyScenario(o: TinyOptions = {}): string {
  const iso = o.isolation ?? [['none', 'mitigations=off'], ['asi', 'asi=google-asi-2025']];
  const ws = o.victimWorkingSet === undefined ? '' : `, working_set: { bytes: ${o.victimWorkingSet} }`;
  return `name: ${o.name ?? 'tiny'}
seed: ${o.seed ?? 4}
duration: ${o.duration ?? '100us'}
machine: { cpu: skylake-sp, cores: 1, threads_per_core: 2, ram: 1GiB }
tenants:
  - { name: victim, kind: vm, vcpus: 1, memory: 16MiB, objects: [{ name: k, kind: guest-page }]${ws} }
  - { name: evil, kind: vm, vcpus: 1, memory: 16MiB }
secrets: [{ name: key, in: victim/k, bytes: 32 }]
workload:
  - { thread: 1, tenant: victim, mix: [{ event: vm-exit, reason: EPT_VIOLATION, weight: 1 }, { event: guest-run, cycles: 3000, weight: 2 }] }
attackers: [{ thread: 0, tenant: evil, attacks: [l1tf-guest], every: ${o.every ?? '2us'} }]
isolation:
${iso.map(([n, c]) => `  - { name: ${n}, cmdline: "${c}" }`).join('\n')}
${o.sweep === undefined ? '' : `sweep:\n${o.sweep}`}`;
}
