/**
 * KVM address space isolation, Oracle 2019–20 (Alexandre Chartre, Liran Alon): "most of KVM
 * #VMExit handlers code will run in a special KVM isolated address space which maps only KVM
 * required code and per-VM information" (lore 1557758315-12667-1-git-send-email-
 * alexandre.chartre@oracle.com, cover letter).
 *
 * What it maps (RFC KVM 19–27/27): "the kernel text, the per-cpu memory, the kvm module, the
 * cpu_entry_area, %esp fixup stacks, IRQ stacks" — kvm_copy_mapping(__START_KERNEL_map,
 * KERNEL_IMAGE_SIZE, PGT_LEVEL_PMD), the whole per-CPU first chunk, the cpu_entry_area and
 * ESPFIX P4Ds — then per VM "vmx VM data" (kvm_copy_ptes(kvm_vmx, sizeof(struct kvm_vmx))),
 * "vmx cpu data" and "the vcpu tasks" (the VMM thread's task_struct and stack). Copies are made
 * per page (kvm_copy_ptes()), so whatever else shares those pages is mapped too.
 * Assumptions: per VM, the vCPU (vcpu_vmx) objects, their VMCS and MSR-bitmap pages stand for
 * the vmx data; the v1 RFC had one kvm_mm for all VMs — docs/DESIGN.md's "this VM's data" is
 * followed here (one space per VM); the kvm module and IRQ stacks are not in the model.
 *
 * Transitions are the generic ASI of v2–v4 (asi_enter/asi_exit, per-CPU asi_session, idepth;
 * rppt/linux arch/x86/mm/asi.c): a fault aborts isolation (fault_abort) and is retried on the
 * full tables; interrupts switch to the full tables and back (ASI_INTERRUPT/ASI_RESUME). PCID:
 * "(ASI Type PCID Prefix << 4) | Kernel PCID"; the KVM type's prefix is not in the public
 * series (only user 0x80 and test 0xff are): 0x01 is an assumption. Exits set
 * vcpu->arch.l1tf_flush_l1d (L1D flush at the next VM entry, RFC 07/27) and the sibling is
 * kicked (Alon: "kick sibling hyperthreads before switching to that address space"; not
 * implemented in the series).
 */
import { regionRange, perCpuRanges, allocationRanges } from '../restricted.ts';
import { TAINT_MODEL_2019 } from '../taint.ts';
import type { Allocation, System } from '../../linux/system.ts';
import type { AsiContext, AsiDesign } from '../types.ts';

/** This VM's data the KVM page table maps (see the header). */
function vmData(sys: System, ctx: AsiContext, a: Allocation): boolean {
  const vm = ctx.vm;
  if (!vm) return false;
  if (a.owner === vm.owner.id) {
    return a.kind === 'kvm' || a.kind === 'kvm_vcpu' || a.what.startsWith('vmcs:') || a.what.startsWith('msr_bitmap:');
  }
  return a.owner === vm.vmm.owner.id && (a.kind === 'task_struct' || a.kind === 'kernel-stack');
}

export const kvmAsi2019: AsiDesign = {
  name: 'kvm-asi-2019',
  title: 'KVM address space isolation (Chartre/Alon 2019, generic ASI v2–v4)',
  sources: [
    'lore 1557758315-12667-1-git-send-email-alexandre.chartre@oracle.com ([RFC KVM 00/27] KVM Address Space Isolation)',
    'lore 1562855138-19507-1-git-send-email-alexandre.chartre@oracle.com ([RFC v2 00/26] Kernel Address Space Isolation)',
    'ASI v4 arch/x86/mm/asi.c, arch/x86/include/asm/asi.h (as kept in rppt/linux)',
  ],
  model: 'none',
  contextKinds: ['vm'],
  tenantKinds: ['vm', 'process'],
  transition: 'chartre',
  faultPolicy: 'abort',
  pcid: { kind: 'chartre-prefix', value: 0x01, noflush: 'tracked', source: 'asi.h: ASI PCID = (prefix << 4) | kernel PCID; asi_update_flush(); KVM prefix 0x01 assumed' },
  taint: TAINT_MODEL_2019,
  // v1 cover letter (lore 1557758315-12667-1): "kicking all sibling hyperthreads is not implemented in this serie".
  stun: false,
  conventional: {
    vmentryFlush: 'merged', pti: 'kept', globalKernel: 'cleared',
    source: 'v1 07/27 (lore 1557758315-12667-8) kvm_may_access_sensitive_data(): "vcpu->arch.l1tf_flush_l1d = true; kvm_isolation_exit();" — the ASI exit arms KVM\'s own conditional flush; v4 implements PTI as a user ASI on the PTI tables',
    assumed: ['globalKernel'], // nothing posted: without PTI the direct map would stay _PAGE_GLOBAL and survive asi_enter
  },
  holds: [
    'the whole kernel image mapping (KERNEL_IMAGE_SIZE, PMD-cloned)',
    'the per-CPU first chunk, cpu_entry_area, ESPFIX',
    'this VM: struct kvm (vmalloc), vCPU objects, VMCS and MSR-bitmap pages, the VMM task_struct and stack (whole pages)',
  ],
  spec(sys, ctx) {
    const a = sys.layout.addrs;
    // vmData() holds only records of the VM's or its VMM's owner: those, in record order.
    const vm = ctx.vm;
    const owners = !vm ? [] : vm.owner.id === vm.vmm.owner.id ? sys.allocationsOf(vm.owner.id) : [...sys.allocationsOf(vm.owner.id), ...sys.allocationsOf(vm.vmm.owner.id)].sort((x, y) => x.id - y.id);
    const mine = owners.filter((x) => vmData(sys, ctx, x));
    return {
      ranges: [
        { start: a.__START_KERNEL_map, end: a.__START_KERNEL_map + a.KERNEL_IMAGE_SIZE, why: 'kernel image' },
        ...perCpuRanges(sys, false, 'per-CPU memory'),
        regionRange(sys, 'cpu_entry_area', 'cpu_entry_area'),
        regionRange(sys, 'espfix', '%esp fixup stacks'),
        ...allocationRanges(sys, mine, 'VM data'),
      ],
      rootOffset: 4096, // ASI_PGTABLE_BIT: "an ASI pagetable is always located on the second half of an 8K buffer"
    };
  },
  permits(sys, ctx, a, via) {
    if (via === 'image' || via === 'other') return a.boot;
    if (via === 'user') return false;
    return (via === 'direct' && a.kind === 'percpu') || vmData(sys, ctx, a);
  },
};
