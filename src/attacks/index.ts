/**
 * The attack primitives by name, with what each needs and the bug that gates it, and one entry
 * point (`runAttack`) for callers that pick attacks from a scenario by name.
 *
 * Kinds of context:
 *   - 'thread':   an AttackThread (hardware thread + MMU) and a target virtual address;
 *   - 'victim':   the victim's AttackThread (Spectre v1 runs the gadget in the victim's context),
 *                 a target, and the attacker's thread id;
 *   - 'vcpu':     a VcpuThread (guest paging state) and a guest-virtual target;
 *   - 'sampler':  a thread only (MDS, TAA sample buffers; no address).
 */
import type { BugName } from '../uarch/vulnerability.ts';
import { l1tfGuest, l1tfNative, type VcpuThread } from './l1tf.ts';
import { mfbds, mlpds, msbds } from './mds.ts';
import { meltdown } from './meltdown.ts';
import { ATTACK_NAMES, type AttackName, type AttackThread, type Samples, type SamplingThread } from './sample.ts';
import { spectreV1 } from './spectre-v1.ts';
import { ropRead } from './rop.ts';
import { taa } from './taa.ts';

export * from './sample.ts';
export * from './secrets.ts';
export * from './score.ts';
export * from './report.ts';
export { l1tfGuest, l1tfNative, terminalAddress, type VcpuThread } from './l1tf.ts';
export { mfbds, mlpds, msbds, sampleFillBuffers, sampleLoadPorts, sampleStoreBuffer } from './mds.ts';
export { meltdown, meltdownTarget } from './meltdown.ts';
export { spectreV1 } from './spectre-v1.ts';
export { ropRead } from './rop.ts';
export { taa } from './taa.ts';

export type AttackKind = 'thread' | 'victim' | 'vcpu' | 'sampler';

export interface AttackSpec {
  readonly name: AttackName;
  readonly kind: AttackKind;
  /** The X86_BUG_* bit without which the mechanism does not exist (null: not a CPU bug, a software one). */
  readonly bug: BugName | null;
  readonly description: string;
  /** Where the mechanism is described. */
  readonly source: string;
}

const SPECS: AttackSpec[] = [
  { name: 'l1tf-native', kind: 'thread', bug: 'l1tf', description: 'terminal fault on the attacker\'s own non-present PTE reads the core L1D', source: 'Documentation/admin-guide/hw-vuln/l1tf.rst, "Malicious user space"' },
  { name: 'l1tf-guest', kind: 'vcpu', bug: 'l1tf', description: 'a guest PTE with P=0 names a host physical address; the core L1D is read (Foreshadow-NG)', source: 'Documentation/admin-guide/hw-vuln/l1tf.rst, "Malicious guest in a virtual machine"' },
  { name: 'mfbds', kind: 'sampler', bug: 'mds', description: 'sample the core\'s line fill buffers (RIDL, ZombieLoad)', source: 'Documentation/arch/x86/mds.rst, MFBDS' },
  { name: 'mlpds', kind: 'sampler', bug: 'mds', description: 'sample the core\'s load ports', source: 'Documentation/arch/x86/mds.rst, MLPDS' },
  { name: 'msbds', kind: 'sampler', bug: 'mds', description: 'sample the store-buffer entries the thread owns (Fallout)', source: 'Documentation/arch/x86/mds.rst, MSBDS' },
  { name: 'taa', kind: 'sampler', bug: 'taa', description: 'sample the MDS buffers from an aborting TSX transaction', source: 'Documentation/admin-guide/hw-vuln/tsx_async_abort.rst' },
  { name: 'meltdown', kind: 'thread', bug: 'cpu_meltdown', description: 'user-mode load of a supervisor address mapped in the current CR3', source: 'Lipp et al., Meltdown (2018); Documentation/arch/x86/pti.rst' },
  { name: 'spectre-v1', kind: 'victim', bug: 'spectre_v1', description: 'bounds-check-bypass gadget dereferences an attacker-chosen address in the victim\'s address space', source: 'Documentation/admin-guide/hw-vuln/spectre.rst, "Spectre variant 1"' },
  { name: 'rop', kind: 'victim', bug: null, description: 'a return-oriented chain hijacks a system call (first gadget in the middle of a function) and loads attacker-chosen kernel addresses', source: 'System Call Isolation RFC, lore 1556228754-12996-1 (the ROP example); attacks/rop.ts' },
];

export const ATTACKS: ReadonlyMap<AttackName, AttackSpec> = new Map(SPECS.map((s) => [s.name, s]));

export function attackNames(): AttackName[] {
  return [...ATTACK_NAMES];
}

/** The attack called `name`, or a RangeError listing the known names. */
export function getAttack(name: string): AttackSpec {
  const a = ATTACKS.get(name as AttackName);
  if (a === undefined) throw new RangeError(`unknown attack "${name}" (known: ${ATTACK_NAMES.join(', ')})`);
  return a;
}

/** A target address (halves) and length within one 4 KiB page. */
export interface AttackTarget {
  vaLo: number;
  vaHi: number;
  len: number;
}

export interface AttackContext {
  /** The attacker ('thread', 'sampler') or the victim ('victim'). */
  thread?: AttackThread | SamplingThread;
  vcpu?: VcpuThread;
  target?: AttackTarget;
  /** 'victim' attacks: who obtains the bytes (default the victim thread). */
  attackerId?: number;
  /** TAA: whether TSX is enabled on the machine. */
  tsxEnabled?: boolean;
}

/** Run attack `name` with `ctx`, appending to `out`; returns the bytes obtained. */
export function runAttack(name: string, ctx: AttackContext, out: Samples, at: number): number {
  const spec = getAttack(name);
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new RangeError(`attack ${name}: the context has no ${what}`);
    return v;
  };
  const withMmu = (): AttackThread => {
    const t = need(ctx.thread, 'thread');
    if (!('mmu' in t)) throw new RangeError(`attack ${name}: the thread has no MMU`);
    return t;
  };
  switch (spec.name) {
    case 'l1tf-native': {
      const g = need(ctx.target, 'target');
      return l1tfNative(withMmu(), g.vaLo, g.vaHi, g.len, out, at);
    }
    case 'l1tf-guest': {
      const g = need(ctx.target, 'target');
      return l1tfGuest(need(ctx.vcpu, 'vCPU'), g.vaLo, g.vaHi, g.len, out, at);
    }
    case 'mfbds': return mfbds(need(ctx.thread, 'thread'), out, at);
    case 'mlpds': return mlpds(need(ctx.thread, 'thread'), out, at);
    case 'msbds': return msbds(need(ctx.thread, 'thread'), out, at);
    case 'taa': return taa(need(ctx.thread, 'thread'), ctx.tsxEnabled ?? false, out, at);
    case 'meltdown': {
      const g = need(ctx.target, 'target');
      return meltdown(withMmu(), g.vaLo, g.vaHi, g.len, out, at);
    }
    case 'spectre-v1': {
      const g = need(ctx.target, 'target');
      const v = withMmu();
      return spectreV1(v, g.vaLo, g.vaHi, g.len, out, at, ctx.attackerId ?? v.hw.id);
    }
    case 'rop': {
      const g = need(ctx.target, 'target');
      const v = withMmu();
      return ropRead(v, g.vaLo, g.vaHi, g.len, out, at, ctx.attackerId ?? v.hw.id);
    }
  }
}
