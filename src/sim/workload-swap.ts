/**
 * `kasi run --workload FILE`: a scenario (the built-in default unless a file is given) with the
 * kernel events of one workload entry replaced by a tool's output (sim/import-mix.ts). The entry
 * is the first whose tenant makes those events (VM exits: a vm tenant; system calls: a process or
 * netns tenant). Its own-time items (guest-run, user-compute, idle) stay, and the imported counts
 * are scaled to the weight its kernel events had, so the share of time in the kernel is the
 * scenario's and the mix among kernel events is the file's. The notes say what was swapped and
 * which footprints were borrowed.
 */
import { loadImportedMix } from './import-mix.ts';
import { getCostModel } from './costs.ts';
import type { WorkloadFormat } from '../formats/detect.ts';
import type { MixItem, Scenario } from './scenario-types.ts';

const OWN_TIME = new Set(['guest-run', 'user-compute', 'idle']);

export function withImportedWorkload(s: Scenario, file: string, kind?: WorkloadFormat): Scenario {
  const m = loadImportedMix(file, { kind, cyclesPerNs: getCostModel(s.machine.cpu).clock.ghz, threads: 1 });
  const kernel = m.items.filter((x) => !OWN_TIME.has(x.event));
  if (kernel.length === 0) throw new RangeError(`${file}: no kernel events to replay`);
  const vmExits = kernel.some((x) => x.event === 'vm-exit');
  const idx = s.workload.findIndex((w) => {
    const t = s.tenants.find((x) => x.name === w.tenant)!;
    return vmExits ? t.kind === 'vm' : t.kind !== 'vm';
  });
  if (idx < 0) throw new RangeError(`${file}: the scenario has no workload of a ${vmExits ? 'vm' : 'process'} tenant to replay ${m.format} in`);
  const w = s.workload[idx];
  const own = w.mix.filter((x) => OWN_TIME.has(x.event));
  const kernelWeight = w.mix.filter((x) => !OWN_TIME.has(x.event)).reduce((a, x) => a + x.weight, 0) || 1;
  const sum = kernel.reduce((a, x) => a + x.weight, 0);
  const scaled = kernel.map((x) => ({ ...x, weight: (x.weight / sum) * kernelWeight }) as MixItem);
  const mix = [...scaled, ...(own.length > 0 ? own : m.items.filter((x) => OWN_TIME.has(x.event)))];
  const workload = s.workload.map((x, i) => (i === idx ? { ...x, mix } : x));
  const notes = [...s.notes, `workload of ${w.tenant} (thread ${w.thread}): its kernel events replaced by ${file} (${m.format}), ${kernel.length} kinds, scaled to the entry's kernel-event weight ${kernelWeight}`, ...m.notes];
  return { ...s, workload, notes };
}
