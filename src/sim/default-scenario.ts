/**
 * The built-in scenario of `kasi run` (no file given), as YAML text so that it reads exactly
 * like a scenario file; examples/default.yaml is the same scenario (a test parses both and
 * compares). scenario/load.ts defaultScenario() parses it.
 *
 * A KVM host of 2 Skylake-SP cores × 2 threads. Core 0 runs the victim VM (thread 1) next to
 * a vCPU of the attacker VM (thread 0); core 1 runs a host database (thread 2) next to the
 * attacker VM's second vCPU (thread 3). Compared: no mitigations, the 6.1 default (on Skylake-SP:
 * PTI, L1D flush cond, VERW), the default with one change each (L1D flush always, SMT off, core
 * scheduling), the three ASI generations as posted, the 2025 design with a sibling stun it did
 * not post (a what-if), and the 2025 design with core scheduling. Each entry resolves to a
 * different mitigation state (kasi warns when two do not).
 */
export const DEFAULT_SCENARIO_FILE = '<built-in default>';

export const DEFAULT_SCENARIO_YAML = `# kasi's built-in scenario (src/sim/default-scenario.ts); format: examples/README.md
name: kvm-host-default
seed: 42
duration: 2ms
machine: { cpu: skylake-sp, cores: 2, threads_per_core: 2, ram: 4GiB, paging_levels: 4 }
kernel: { kaslr: true, kaslr_seed: 7, pti: auto, capture: null }

tenants:
  - name: victim-vm
    kind: vm
    vcpus: 1
    memory: 64MiB
    pin: [1]
    objects: [{ name: disk-key, kind: guest-page }]
  - name: attacker-vm
    kind: vm
    vcpus: 2
    memory: 64MiB
    pin: [0, 3]
  - name: host-db
    kind: process
    memory: 16MiB
    pin: [2]
    objects: [{ name: db-secret, kind: anon-page }, { name: creds, kind: cred }]

secrets:
  - { name: guest-key, in: victim-vm/disk-key, bytes: 32 }
  - { name: db-key, in: host-db/db-secret, bytes: 32, offset: 256 }
  - { name: db-cred, in: host-db/creds, bytes: 16, offset: 8 }

workload:
  - thread: 1
    tenant: victim-vm
    mix:
      - { event: vm-exit, reason: EPT_VIOLATION, weight: 3 }
      - { event: vm-exit, reason: HLT, weight: 1 }
      - { event: vm-exit, reason: MSR_WRITE, weight: 2 }
      - { event: vm-exit, reason: EXTERNAL_INTERRUPT, weight: 2 }
      - { event: guest-run, cycles: 20000, weight: 8 }
  - thread: 2
    tenant: host-db
    mix:
      - { event: syscall, name: read, weight: 5 }
      - { event: syscall, name: pread64, weight: 2 }
      - { event: syscall, name: futex, weight: 2 }
      - { event: page-fault, weight: 1 }
      - { event: user-compute, cycles: 5000, weight: 6 }

attackers:
  - { thread: 0, tenant: attacker-vm, attacks: [l1tf-guest, mfbds], every: 10us }
  - { thread: 3, tenant: attacker-vm, attacks: [l1tf-guest, mfbds], every: 10us }

isolation:
  - { name: none, cmdline: "mitigations=off" }
  - { name: default, cmdline: "" }
  - { name: l1d-always, cmdline: "kvm-intel.vmentry_l1d_flush=always" }
  - { name: nosmt, cmdline: "nosmt" }
  - { name: core-sched, cmdline: "sched_core=1" }
  - { name: asi-2019, cmdline: "asi=kvm-asi-2019" }
  - { name: asi-2022, cmdline: "asi=google-asi-2022" }
  - { name: asi-2025, cmdline: "asi=google-asi-2025" }
  - { name: asi-2025-stun, cmdline: "asi=google-asi-2025", stun: true }
  - { name: asi-2025-cs, cmdline: "asi=google-asi-2025 sched_core=1" }
`;
