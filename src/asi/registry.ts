/**
 * Designs by name, the system each design runs on, and the contexts (VM, process, network
 * namespace) restricted spaces are built for.
 *
 * Designs defined elsewhere (sci-2019, src/asi/sci.ts) join with registerDesign().
 */
import { bootSystem, populateTenants, type System, type SystemOptions, type TenantSetup } from '../linux/system.ts';
import { kpti } from './designs/kpti.ts';
import { kvmAsi2019 } from './designs/kvm-asi-2019.ts';
import { googleAsi2022 } from './designs/google-asi-2022.ts';
import { googleAsi2025 } from './designs/google-asi-2025.ts';
import { netnsAsi } from './designs/netns-asi.ts';
import type { AsiContext, AsiDesign, ContextKind } from './types.ts';

const DESIGNS = new Map<string, AsiDesign>();
for (const d of [kpti, kvmAsi2019, googleAsi2022, googleAsi2025, netnsAsi]) DESIGNS.set(d.name, d);

/** Add a design (or replace one of the same name). */
export function registerDesign(d: AsiDesign): void {
  DESIGNS.set(d.name, d);
}

export function designNames(): string[] {
  return [...DESIGNS.keys()];
}

/** The design called `name`; a RangeError naming the known ones otherwise. */
export function getDesign(name: string): AsiDesign {
  const d = DESIGNS.get(name);
  if (!d) throw new RangeError(`unknown ASI design '${name}' (expected ${designNames().join(', ')})`);
  return d;
}

/** Boot a system with the design's sensitivity model and populate it (default: 2 processes, 2 VMs, 2 namespaces). */
export function systemFor(design: AsiDesign, opts: SystemOptions & { tenants?: TenantSetup } = {}): System {
  return populateTenants(bootSystem({ ...opts, model: design.model }), opts.tenants);
}

export interface ContextSelection {
  vm?: number;
  process?: number;
  netns?: number;
}

/** The context a selection names (default: index 0 of the design's preferred kind). */
export function makeContext(sys: System, design: AsiDesign, sel: ContextSelection = {}): AsiContext {
  let kind: ContextKind = design.contextKinds[0];
  if (sel.vm !== undefined) kind = 'vm';
  else if (sel.process !== undefined) kind = 'process';
  else if (sel.netns !== undefined) kind = 'netns';
  if (!design.contextKinds.includes(kind)) {
    throw new RangeError(`design ${design.name} builds spaces for ${design.contextKinds.join(' or ')} contexts, not ${kind}`);
  }
  const pick = <T>(list: readonly T[], i: number, what: string): T => {
    if (!Number.isInteger(i) || i < 0 || i >= list.length) throw new RangeError(`${what} ${i}: the system has ${list.length} (0..${list.length - 1})`);
    return list[i];
  };
  if (kind === 'vm') {
    const vm = pick(sys.vms, sel.vm ?? 0, 'vm');
    return { kind, label: `vm ${vm.owner.name} (VMM ${vm.vmm.comm}[${vm.vmm.pid}])`, vm, process: vm.vmm, tenants: [vm.owner.id, vm.vmm.owner.id], fullRoot: vm.vmm.pgd };
  }
  if (kind === 'process') {
    const p = pick(sys.userProcesses, sel.process ?? 0, 'process');
    return { kind, label: `process ${p.comm}[${p.pid}]`, process: p, tenants: [p.owner.id], fullRoot: p.pgd };
  }
  const ns = pick(sys.namespaces, sel.netns ?? 0, 'netns');
  return { kind, label: `netns ${ns.name}`, netns: ns, tenants: [ns.owner.id], fullRoot: sys.kernel.kernelRoot };
}
