/**
 * Google's ASI RFC 2022 (Junaid Shahid, Ofir Weisse; lore 20220223052223.1202152-1-
 * junaids@google.com), the KVM-ASI class, one restricted space per VM (struct asi per mm).
 *
 * Memory classes (cover letter): sensitive by default; globally non-sensitive memory "is
 * mapped in the restricted address spaces for all processes"; locally non-sensitive memory
 * "is mapped only in the restricted address space of a single process" (userspace and guest
 * memory, register context). asi_global_init() maps _stext.._etext, rodata, the exception
 * table, .data..asi_non_sensitive, the per-CPU ASI section and fixed_percpu_data, and clones
 * the cpu_entry_area and ESPFIX PGD entries ("mm: asi: Mapping global nonsensitive areas in
 * asi_global_init"); the VMM's user memory (guest RAM included) is mapped ("Add support for
 * mapping all userspace memory into ASI", "kvm: asi: Map guest memory into restricted ASI
 * address space"). Classes are separated per page by the allocators (linux/sensitivity.ts).
 * Simplifications: local memory is mapped at its direct-map address (the RFC uses an aliased
 * "ASI local map" region); of the static per-CPU data only each unit's first page
 * (fixed_percpu_data, PAGE_SIZE) is mapped; annotated static data in .data is not modelled.
 *
 * Transitions: asi_enter/asi_exit with curr/target; the #PF handler exits ("asi_exit() on PF,
 * skip handling if address is accessible"); interrupts run restricted until they fault; the
 * scheduler exits. PCID kern_pcid | index << 9 (PTI) with the KVM class at index 1. Hooks:
 * stun the sibling in pre_asi_exit, L1D flush + MDS clear and unstun in post_asi_enter.
 */
import { CLASS_GLOBAL_NONSENSITIVE, CLASS_LOCAL_NONSENSITIVE } from '../../linux/sensitivity.ts';
import { allocationRanges, pageRange, perCpuRanges, regionRange } from '../restricted.ts';
import { TAINT_MODEL_2022 } from '../taint.ts';
import type { DirectMapRuns } from '../restricted.ts';
import type { Allocation, System } from '../../linux/system.ts';
import type { AsiContext, AsiDesign } from '../types.ts';

/** Class rule for a frame or mapping of class `cls` owned by `owner`. */
function allowedClass(ctx: AsiContext, cls: number, owner: number): boolean {
  return cls === CLASS_GLOBAL_NONSENSITIVE || (cls === CLASS_LOCAL_NONSENSITIVE && ctx.tenants.includes(owner));
}

function isFirstPercpuPage(a: Allocation, pa: number): boolean {
  return a.kind === 'percpu' && pa - (pa % 4096) === a.ranges[0].pa;
}

export const googleAsi2022: AsiDesign = {
  name: 'google-asi-2022',
  title: 'Google ASI RFC 2022 (KVM-ASI class; global/local non-sensitive memory)',
  sources: [
    'lore 20220223052223.1202152-1-junaids@google.com ([RFC PATCH 00/47] Address Space Isolation for KVM)',
    'googleprodkernel/linux-kvm asi-rfc: arch/x86/include/asm/asi.h, arch/x86/mm/asi.c, arch/x86/mm/tlb.c asi_pcid()',
  ],
  model: 'asi-2022',
  contextKinds: ['vm'],
  tenantKinds: ['vm', 'process'],
  transition: 'google',
  faultPolicy: 'exit-retry',
  pcid: { kind: 'google-2022', value: 1, noflush: 'tracked', source: 'tlb.c asi_pcid(): kern_pcid(asid) | pcid_index << ASI_PCID_BITS_SHIFT; class index 0 reserved' },
  taint: TAINT_MODEL_2022,
  // Cover letter: "although we do have a sibling hyperthread stunning implementation internally … it is not
  // included in this RFC"; 15/47 posts stun_sibling() / unstun_sibling() as empty stubs.
  stun: false,
  conventional: {
    vmentryFlush: 'skipped', pti: 'kept', globalKernel: 'cleared',
    source: '39/47 (lore 20220223052223.1202152-40): "If ASI is enabled for an mm, then the L1D flushes and MDS mitigations will be taken care of ASI" (vmx_flush_sensitive_cpu_state skipped when mm_asi_enabled); 01/47: "Except when with PTI or ASI where the kernel is mostly non-Global"; cover letter: "these patches do not yet implement KPTI on top of ASI"',
    assumed: [],
  },
  holds: [
    'kernel text and rodata; cpu_entry_area and ESPFIX (PGD-cloned); fixed_percpu_data of each CPU',
    'globally non-sensitive memory (direct map and vmalloc)',
    'this VM\'s and its VMM\'s locally non-sensitive memory, and the VMM\'s user half (guest RAM)',
  ],
  spec(sys: System, ctx: AsiContext) {
    const s = sys.kernel.sections;
    const areas = sys.vmallocAllocations().filter((a) => allowedClass(ctx, a.mapCls, a.owner));
    return {
      ranges: [
        pageRange(s.text, s.etext, 'kernel text'),
        pageRange(s.startRodata, s.endRodata, 'rodata'),
        regionRange(sys, 'cpu_entry_area', 'cpu_entry_area'),
        regionRange(sys, 'espfix', 'ESPFIX'),
        ...perCpuRanges(sys, true, 'fixed_percpu_data'),
        ...allocationRanges(sys, areas, 'non-sensitive vmalloc'),
      ],
      directMap: {
        allow: (pfn) => sys.buddy.isAllocated(pfn) && allowedClass(ctx, sys.buddy.classOfPfn(pfn), sys.buddy.ownerOfPfn(pfn)),
        why: 'asi_map() of non-sensitive buddy allocations',
        runEnd: (pfn) => sys.buddy.sameStateEnd(pfn), // allow() reads only the frame's buddy state
        byState: (cls, owner) => allowedClass(ctx, cls, owner), // free frames: CLASS_FREE, never allowed
      } satisfies DirectMapRuns,
      userPgd: ctx.process?.pgd,
    };
  },
  permits(_sys, ctx, a, via, pa) {
    switch (via) {
      case 'image':
      case 'other': return a.boot;
      case 'user': return a.user !== undefined && a.user.pid === ctx.process?.pid;
      case 'vmalloc': return allowedClass(ctx, a.mapCls, a.owner);
      default: return isFirstPercpuPage(a, pa) || allowedClass(ctx, a.cls, a.owner);
    }
  },
};
