/**
 * The booted system (src/linux/system.ts). Truth used:
 *  - the x86 page walker (x86/walk.ts, itself checked against QEMU's captures) translating
 *    every page of every allocation through the kernel's tables: the direct map is
 *    page_offset_base + pa (Documentation/arch/x86/x86_64/mm.rst), a vmalloc area's pages walk
 *    to the frames the vmalloc allocator handed out, user pages walk through the process's PGD;
 *  - the classes the sensitivity rules state for each kind (linux/sensitivity.ts, from the
 *    2022 RFC text), written here as constants;
 *  - the buddy allocator's own list of allocated blocks: no frame may be unaccounted for.
 */
import { describe, expect, it } from 'vitest';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootSystem, populateTenants, type System } from '../../src/linux/system.ts';
import { CLASS_GLOBAL_NONSENSITIVE, CLASS_LOCAL_NONSENSITIVE, CLASS_SENSITIVE } from '../../src/linux/sensitivity.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Translation, walkFrom, vaHalves } from '../../src/x86/walk.ts';
import { ACCESS_READ, CR4_LA57, CR4_PAE } from '../../src/x86/bits.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CAP = join(ROOT, 'test/fixtures/captures/la48-pti-nokaslr');

function walker(sys: System) {
  const cpu = new CpuState(52);
  cpu.load({ cr4: CR4_PAE | (sys.levels === 5 ? CR4_LA57 : 0) });
  const out = new Translation();
  return (root: number, va: bigint): number => {
    const { lo, hi } = vaHalves(va);
    return walkFrom(sys.mem, cpu, root, lo, hi, ACCESS_READ, out) ? out.pa : -1;
  };
}

describe('a booted system with tenants', () => {
  const sys = populateTenants(bootSystem({ model: 'asi-2022' }));
  const pa = walker(sys);
  const base = sys.layout.addrs.page_offset_base;

  it('maps every page of every allocation where the layout says', () => {
    let pages = 0;
    for (const a of sys.allocations()) {
      for (const r of a.ranges) {
        for (let off = 0; off < r.bytes; off += 4096) {
          // The direct map: page_offset_base + pa, for every frame of RAM.
          expect(pa(sys.kernel.kernelRoot, base + BigInt(r.pa + off))).toBe(r.pa + off);
          pages++;
        }
      }
      if (a.via === 'vmalloc') {
        const area = sys.vmalloc.areaAt(a.va)!;
        expect(area.va).toBe(a.va);
        area.pfns.forEach((pfn, i) => expect(pa(sys.kernel.kernelRoot, a.va + BigInt(i * 4096))).toBe(pfn * 4096));
      }
      if (a.user) {
        const p = sys.processes.byPid(a.user.pid)!;
        expect(pa(p.pgd, a.user.va)).toBe(a.ranges[0].pa);
      }
    }
    expect(pages).toBeGreaterThan(10000);
  });

  it('records each user page as an allocation of its own (one alloc_pages() each: a fault, or a huge page)', () => {
    // verify.ts counts reached allocations and exposures per record: merging pages would undercount.
    const seen = new Map<string, { n: number; want: number }>();
    for (const a of sys.allocations()) {
      if (!a.user) continue;
      const p = sys.processes.byPid(a.user.pid)!;
      const vma = p.vmas.find((v) => v.start <= a.user!.va && a.user!.va < v.end)!;
      expect(a.ranges).toHaveLength(1);
      expect(a.ranges[0].bytes).toBe(2 ** vma.pageShift);
      const k = `${p.pid} ${vma.name}`;
      const e = seen.get(k) ?? { n: 0, want: vma.pfns.filter((x) => x !== 0).length };
      e.n++;
      seen.set(k, e);
    }
    expect(seen.size).toBeGreaterThan(2);
    for (const [k, e] of seen) expect(e.n, k).toBe(e.want);
  });

  it('accounts for every allocated buddy frame', () => {
    expect(sys.census()).toEqual([]);
  });

  it('answers owner and class by PA and by VA, as the 2022 rules state', () => {
    const vm = sys.vms[1];
    const vcpu = sys.slab.objectInfo(vm.vcpus[0].vcpu)!;
    const byPa = sys.allocationAtPa(vcpu.pa + 100)!;
    expect([byPa.owner, byPa.kind, byPa.cls]).toEqual([vm.owner.id, 'kvm_vcpu', CLASS_LOCAL_NONSENSITIVE]);
    expect(sys.allocationAtVa(base + BigInt(vcpu.pa + 100))).toBe(byPa);
    // Guest RAM: the VM's, locally non-sensitive ("guest memory in the case of VMs").
    const ram = sys.allocationAtPa(vm.ram.pfns[0] * 4096)!;
    expect([ram.owner, ram.kind, ram.cls, ram.user?.pid]).toEqual([vm.owner.id, 'guest-memory', CLASS_LOCAL_NONSENSITIVE, vm.vmm.pid]);
    // A kernel stack: frames sensitive, its vmalloc mapping local (fork.c comment in the RFC).
    const p = sys.userProcesses[0];
    const stack = sys.stacks.get(p.pid)!;
    const st = sys.allocationAtVa(stack.va + 5000n)!;
    expect([st.owner, st.kind, st.cls, st.mapCls, st.via]).toEqual([p.owner.id, 'kernel-stack', CLASS_SENSITIVE, CLASS_LOCAL_NONSENSITIVE, 'vmalloc']);
    expect(sys.allocationAtPa(stack.pfns[1] * 4096)).toBe(st);
    // task_struct is globally non-sensitive in the 2022 RFC.
    const task = sys.allocationAtPa(sys.slab.objectInfo(p.slabObjects[0])!.pa)!;
    expect([task.kind, task.cls, task.owner]).toEqual(['task_struct', CLASS_GLOBAL_NONSENSITIVE, p.owner.id]);
    // Network namespace objects belong to their namespace.
    const ns = sys.namespaces[0];
    const net = sys.allocationAtPa(sys.slab.objectInfo(ns.net)!.pa)!;
    expect([net.owner, net.kind]).toEqual([ns.owner.id, 'net_namespace']);
  });

  it('records boot memory: the image at its physical address, per-CPU areas, the first MiB', () => {
    const img = sys.allocations().find((a) => a.kind === 'kernel-image')!;
    expect(img.ranges[0].pa).toBe(0x1000000); // CONFIG_PHYSICAL_START without iomem
    expect(sys.allocationAtVa(sys.kernel.sections.text + 4096n)).toBe(img);
    const first = sys.allocationAtPa(0x500)!;
    expect([first.boot, first.what, first.owner]).toEqual([true, 'first MiB', 0]);
    const percpu = sys.allocations().filter((a) => a.kind === 'percpu');
    expect(percpu.map((a) => a.ranges[0].pa)).toEqual(sys.kernel.perCpuPa.map(Number));
    expect(sys.allocationAtPa(-1)).toBeNull();
    expect(sys.allocationAtVa(0x1000n)).toBeNull();
  });

  it('boots from a capture directory too', () => {
    const c = populateTenants(bootSystem({ capture: CAP, model: 'asi-2025' }), { processes: 1, vms: 1, netns: 1 });
    expect(c.kernel.levels).toBe(4);
    expect(c.census()).toEqual([]);
    const w = walker(c);
    const a = c.allocations().find((x) => x.kind === 'guest-memory')!;
    expect(w(c.kernel.kernelRoot, c.directMapVa(a.ranges[0].pa))).toBe(a.ranges[0].pa);
  });
});
