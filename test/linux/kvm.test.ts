/**
 * KVM VMs with EPT (src/linux/kvm.ts). Truth used:
 *  - KVM's memslot invariant: GPA g of memslot 0 is the VMM's host VA userspace_addr + g, so the
 *    EPT walk of g must end on the frame the VMM's own user page tables give for that HVA (checked
 *    with the x86 walker at CPL 3 on the VMM's user root — a separate structure);
 *  - a writable 2 MiB EPT leaf read out of a running KVM in an LKML report ("the SPTE change is:
 *    860000025e000bf7"): low 12 bits 0xbf7, bits 57 and 58 set (EPT_SPTE_HOST/MMU_WRITABLE);
 *    its bit 63 is the suppress-#VE bit later kernels add, not 6.1's;
 *  - KVM constants: EPTP WB|PWL4|A/D = 0x5e (asm/vmx.h); make_nonleaf_spte() = bit 11|A|RWX = 0x907;
 *  - counts of EPT tables and leaves computed by hand; violation qualification per SDM table 27-7;
 *  - the sensitivity rules as literal tables (2022 RFC: guest memory, kvm_vcpu, kvm_run, lapic
 *    locally non-sensitive; struct kvm globally; 2025 RFC: guest memory sensitive, the rest not).
 */
import { describe, expect, it } from 'vitest';
import { BuddyAllocator } from '../../src/linux/buddy.ts';
import { KVM_LEAF_HI, KVM_LEAF_LO, KVM_NONLEAF_LO, Kvm, type Vm } from '../../src/linux/kvm.ts';
import { Owners } from '../../src/linux/owners.ts';
import { ProcessTable } from '../../src/linux/process.ts';
import {
  CLASS_GLOBAL_NONSENSITIVE as G, CLASS_LOCAL_NONSENSITIVE as L, CLASS_SENSITIVE as S, type ModelName,
} from '../../src/linux/sensitivity.ts';
import { SlabAllocator } from '../../src/linux/slab.ts';
import { VmallocAllocator } from '../../src/linux/vmalloc.ts';
import { PhysMemory } from '../../src/phys/memory.ts';
import { ACCESS_FETCH, ACCESS_READ, CR4_PAE, PTE_P, PTE_RW } from '../../src/x86/bits.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { EPT_VIOLATION, EptTranslation, eptTranslate } from '../../src/x86/ept.ts';
import { PageTables, SIZE_4K } from '../../src/x86/pgtable.ts';
import { Translation, vaHalves, walkFrom } from '../../src/x86/walk.ts';

const PAGE_OFFSET = 0xffff888000000000n;
const MiB = 1 << 20;

function host(model: ModelName = 'asi-2022', withVmalloc = false) {
  const mem = new PhysMemory(46);
  const buddy = new BuddyAllocator({ ram: [[0x100000000n, 0x180000000n]] }); // 2 GiB at 4 GiB
  const owners = new Owners();
  const slab = new SlabAllocator({ buddy, owners, model, pageOffsetBase: PAGE_OFFSET, mem, cpus: 8 });
  const swapper = buddy.alloc(1) * 4096; // stands in for swapper_pg_dir (kernel half unused here)
  const processes = new ProcessTable({ mem, buddy, owners, model, levels: 4, pti: true, kernelPgd: swapper, pageOffset: PAGE_OFFSET });
  let vmalloc: VmallocAllocator | undefined;
  if (withVmalloc) {
    const kpt = new PageTables(mem, 4, () => BigInt(buddy.alloc(0) * 4096), BigInt(swapper));
    vmalloc = new VmallocAllocator({ buddy, owners, model, pt: kpt, start: 0xffffc90000000000n, end: 0xffffe8ffffffffffn });
  }
  const kvm = new Kvm({ processes, slab, buddy, owners, vmalloc });
  return { mem, buddy, owners, slab, processes, kvm };
}

function hvaToHpa(mem: PhysMemory, vm: Vm, gpa: number): number {
  const cpu = new CpuState(46);
  cpu.load({ cr4: CR4_PAE, cpl: 3 });
  const t = new Translation();
  const { lo, hi } = vaHalves(vm.hvaOf(gpa));
  return walkFrom(mem, cpu, vm.vmm.userPgd, lo, hi, ACCESS_READ, t) ? t.pa : -1;
}

describe('EPT over the VMM\'s anonymous memory', () => {
  const h = host();
  const vm = h.kvm.createVm('vm0', { ramBytes: 64 * MiB, vcpus: 2 });
  const small = h.kvm.createVm('vm4k', { ramBytes: 4 * MiB, hugePages: false });

  it('GPA -> HPA through the EPT equals HVA -> HPA through the VMM\'s page tables', () => {
    for (const gpa of [0, 0x1234, 0x1fffff, 0x200000, 0x2345678, 64 * MiB - 1]) expect(vm.gpaToHpa(gpa)).toBe(hvaToHpa(h.mem, vm, gpa));
    for (const gpa of [0, 0x1234, 0x3fffff]) expect(small.gpaToHpa(gpa)).toBe(hvaToHpa(h.mem, small, gpa));
  });

  it('table and leaf counts: 3 tables and 32 2 MiB leaves; 4 KiB backing needs 2 PTs more', () => {
    expect([vm.ept.tables, vm.mmuPages.length, vm.ram.pfns.length, vm.ram.pageShift]).toEqual([3, 3, 32, 21]);
    expect([small.ept.tables, small.ram.pfns.length]).toEqual([5, 1024]);
  });

  it('entries as KVM writes them (spte.c), matching a real KVM SPTE', () => {
    const real = 0x860000025e000bf7n;
    const t = new EptTranslation();
    eptTranslate(h.mem, h.kvm.eptCfg, vm.ept.root, 0x200000, ACCESS_READ, t);
    expect(t.leafLo & 0xfff).toBe(Number(real & 0xfffn)); // 0xbf7: bit 11, D, A, PS, IPAT, WB, RWX
    expect(t.leafHi & 0x06000000).toBe(Number((real >> 32n) & 0x06000000n));
    expect([KVM_LEAF_LO | 0x80, KVM_LEAF_HI]).toEqual([0xbf7, 0x06000000]);
    expect(h.mem.read32(t.entryAddr[3]) & 0xfff).toBe(0x907); // make_nonleaf_spte(): bit 11 | A | RWX
    expect(KVM_NONLEAF_LO).toBe(0x907);
    eptTranslate(h.mem, h.kvm.eptCfg, small.ept.root, 0x3000, ACCESS_READ, t);
    expect([t.leafLo & 0xfff, t.pageShift]).toEqual([0xb77, 12]);
  });

  it('EPTP = root | WB | PWL 4 | A/D (0x5e)', () => {
    expect(vm.eptp()).toEqual({ lo: (vm.ept.root | 0x5e) >>> 0, hi: Math.floor(vm.ept.root / 2 ** 32) });
  });

  it('outside guest RAM: an EPT violation for a read (qualification 0x1); inside, fetches are fine', () => {
    const t = new EptTranslation();
    expect(eptTranslate(h.mem, h.kvm.eptCfg, vm.ept.root, 64 * MiB, ACCESS_READ, t)).toBe(false);
    expect([t.result, t.qualification]).toEqual([EPT_VIOLATION, 0x1]);
    expect(eptTranslate(h.mem, h.kvm.eptCfg, vm.ept.root, 0x1000, ACCESS_FETCH, t)).toBe(true);
  });
});

describe('owners and classes of everything a VM allocates', () => {
  const want: Record<ModelName, Record<string, number>> = {
    none: {},
    'asi-2022': {
      'guest-ram': L, 'ept-table': S, kvm_mmu_page_header: S, kvm_vcpu: L, x86_emulator: L, kvm_run: L,
      'lapic regs': L, 'struct kvm': G, pio_data: S, vmcs: S, msr_bitmap: S,
    },
    'asi-2025': {
      'guest-ram': S, 'ept-table': G, kvm_mmu_page_header: G, kvm_vcpu: G, x86_emulator: G, kvm_run: G,
      'lapic regs': G, 'struct kvm': S, pio_data: G, vmcs: G, msr_bitmap: G,
    },
  };
  for (const model of ['asi-2022', 'asi-2025'] as const) {
    it(`${model}: every object is the VM's, with the model's class, queryable by PA`, () => {
      const h = host(model);
      const vm = h.kvm.createVm('vm0', { ramBytes: 16 * MiB, vcpus: 3 });
      const objs = vm.objects();
      const seen = new Set<string>();
      for (const o of objs) {
        seen.add(o.what);
        expect([o.what, o.owner, o.cls]).toEqual([o.what, vm.owner.id, want[model][o.what]]);
        expect(h.kvm.vmOfPa(o.pa)).toBe(vm);
        const so = h.slab.objectAtPa(o.pa);
        if (so) {
          // A slab object: its slab page is the VM's only when the class is local (per-owner slabs).
          expect(so.owner).toBe(vm.owner.id);
          expect(h.buddy.ownerOfPfn(Math.floor(o.pa / 4096))).toBe(o.cls === L ? vm.owner.id : 0);
        } else {
          expect(h.buddy.ownerOfPfn(Math.floor(o.pa / 4096))).toBe(vm.owner.id);
        }
      }
      expect([...seen].sort()).toEqual(Object.keys(want[model]).sort());
      expect(objs.filter((o) => o.what === 'kvm_vcpu').length).toBe(3);
      // The VMM's own page tables belong to the VMM process, not to the VM.
      expect(h.processes.pageAt(vm.vmm.pgd).owner).toBe(vm.vmm.owner.id);
      expect(h.kvm.vmOfPa(vm.vmm.pgd)).toBeNull();
      expect(h.owners.get(vm.owner.id).kind).toBe('vm');
    });
  }

  it('struct kvm through vmalloc: frames of the VM with the rule\'s frame class', () => {
    const h = host('asi-2025', true);
    const vm = h.kvm.createVm('vm0', { ramBytes: 4 * MiB });
    const k = vm.pages.filter((p) => p.what === 'struct kvm');
    expect(k.length).toBe(10);
    for (const p of k) expect([p.owner, p.cls]).toEqual([vm.owner.id, S]);
  });

  it('two VMs share no page of their own (asi-2022: vCPU objects included); sensitive headers may share', () => {
    const h = host('asi-2022');
    const a = h.kvm.createVm('a', { ramBytes: 8 * MiB, vcpus: 2 });
    const b = h.kvm.createVm('b', { ramBytes: 8 * MiB, vcpus: 2 });
    const pages = (vm: Vm, shared: boolean) => new Set(vm.objects()
      .filter((o) => (o.what === 'kvm_mmu_page_header') === shared).map((o) => Math.floor(o.pa / 4096)));
    const pb = pages(b, false);
    expect([...pages(a, false)].filter((p) => pb.has(p))).toEqual([]);
    // kvm_mmu_page_header is sensitive (one kernel slab for everyone): both VMs' headers share a page.
    const hb = pages(b, true);
    expect([...pages(a, true)].filter((p) => hb.has(p)).length).toBeGreaterThan(0);
  });
});

describe('guest page tables in guest RAM', () => {
  const h = host();
  const vm = h.kvm.createVm('attacker', { ramBytes: 16 * MiB });
  const g = vm.guestPageTables();

  it('the guest CR3 and its tables live in the VM\'s guest RAM', () => {
    expect(g.cr3).toBe(16 * MiB - 4096);
    const hpa = vm.gpaToHpa(g.cr3);
    expect(h.buddy.ownerOfPfn(hpa / 4096)).toBe(vm.owner.id);
    expect(hpa).toBe(hvaToHpa(h.mem, vm, g.cr3));
  });

  it('a guest mapping leads GVA -> GPA -> HPA, and guest writes land in the VMM\'s memory', () => {
    const gva = 0xffff888000005000n;
    g.pt.mapPage(gva, 0x5000n, SIZE_4K, BigInt(PTE_P | PTE_RW));
    const pte = g.pt.findEntry(gva, 1)!;
    const gpa = Number(pte.value & 0xffffffffff000n);
    expect(gpa).toBe(0x5000);
    g.view.writeBytes(gpa + 8, new TextEncoder().encode('guest secret'));
    expect(new TextDecoder().decode(vm.vmm.read(vm.hvaOf(0x5008), 12))).toBe('guest secret');
  });

  it('plants a not-present guest PTE whose address bits name a host frame (L1TF)', () => {
    const victim = h.processes.create('victim');
    const target = victim.paOf(0x1000000n); // the victim's heap
    const r = vm.plantNotPresentPte(g, 0x7000_0000_0000n, target);
    const raw = h.mem.read64Big(r.pteHpa);
    expect(raw).toBe(r.value);
    expect(raw & 1n).toBe(0n);
    expect(Number(raw & 0xffffffffff000n)).toBe(target);
    // The PTE is in the attacker's RAM; the frame it names is the victim's.
    expect(h.kvm.vmOfPa(r.pteHpa)).toBe(vm);
    expect(h.processes.pageAt(target).owner).toBe(victim.owner.id);
  });
});
