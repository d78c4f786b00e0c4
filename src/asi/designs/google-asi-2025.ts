/**
 * Google's ASI RFC 2024/2025 (Brendan Jackman; lore 20240712-asi-rfc-24-v1-0-144b319a40d8 and
 * 20250110-asi-rfc-v2-v2-0-8419288bc805): a denylist — "a new __GFP_SENSITIVE flag … and
 * everything else is considered non-sensitive"; GFP_USER carries it.
 *
 * What the restricted space holds (RFC v2 arch/x86/mm/asi.c asi_global_init()): "Share the
 * whole kernel address space, except the direct map, directly with the restricted address
 * space" — asi_clone_range(LDT_BASE_ADDR, LDT_END_ADDR - 1) and asi_clone_range(VMALLOC_START,
 * ULONG_MAX): vmalloc, vmemmap, cpu_entry_area, ESPFIX, the image, modules, fixmap. The direct
 * map has only buddy allocations without __GFP_SENSITIVE ("we map the direct map into the
 * restricted address space, except pages allocated with GFP_USER", 14/29; pages are
 * asi_unmap()'d before they are freed, so free pages are absent) and the per-CPU first chunk
 * (18/29: "other than pages that are allocated for pcpu_{first,reserved}_chunk during early
 * boot … taken care by the following patch"). The KVM class maps no user addresses
 * (asi_maps_user_addr() is true only for ASI_CLASS_USERSPACE, the class of a process context).
 * That kernel half is one set of tables (asi_global_nonsensitive_pgd) whose top-level entries
 * every context's root copies (asi_init()): globalSpec() below, built once (restricted.ts).
 * asi_init() copies from KERNEL_PGD_BOUNDARY (pgd_index(PAGE_OFFSET)) up, and the LDT remap's
 * PGD slot (LDT_PGD_ENTRY, -240 with 4 levels) lies below it, so the LDT range cloned into the
 * global PGD never reaches a context's root. That leaves no hole: ASI turns PTI off (RFC v2
 * 28/29), and without PTI map_ldt_struct() maps nothing there (arch/x86/kernel/ldt.c returns
 * early without X86_FEATURE_PTI); a modify_ldt() LDT is then used through ldt->entries, memory
 * from get_zeroed_page()/__vmalloc(GFP_KERNEL_ACCOUNT), not __GFP_SENSITIVE, so it is mapped in
 * the restricted space like other non-sensitive kernel memory (14/29, 17/29). The clone copies
 * from init_mm, which has no LDT mapping, so it copies nothing. The model has no per-mm LDT.
 *
 * Transitions as the 2022 RFC (curr/target, exit on #PF, lazy interrupts, exit on context
 * switch). PCID kern_pcid | (class_id + 1) << 9 under PTI (06/29), never NOFLUSH. Taints
 * decide the flushes (taint.ts). No sibling stunning: "Preventing cross-SMT attacks by halting
 * sibling hyperthreads" is listed as future work.
 */
import { CLASS_GLOBAL_NONSENSITIVE } from '../../linux/sensitivity.ts';
import { regionRange } from '../restricted.ts';
import type { DirectMapRuns } from '../restricted.ts';
import { USERSPACE_CLASS_POLICY_2025, kvmClassPolicy2025, taintModel2025 } from '../taint.ts';
import type { System } from '../../linux/system.ts';
import type { AsiContext, AsiDesign } from '../types.ts';

/** enum asi_class_id: ASI_CLASS_KVM, ASI_CLASS_USERSPACE. */
export const ASI_CLASS_KVM = 0;
export const ASI_CLASS_USERSPACE = 1;

const KVM_TAINT = taintModel2025(kvmClassPolicy2025());
const USER_TAINT = taintModel2025(USERSPACE_CLASS_POLICY_2025);

export const googleAsi2025: AsiDesign = {
  name: 'google-asi-2025',
  title: 'Google ASI RFC v2 2025 (denylist; taint-driven mitigations)',
  sources: [
    'lore 20240712-asi-rfc-24-v1-0-144b319a40d8@google.com (ASI RFC 2024)',
    'lore 20250110-asi-rfc-v2-v2-0-8419288bc805@google.com (ASI RFC v2)',
    'bjackman/linux arch/x86/mm/asi.c (asi_init_userspace_class, after RFC v2)',
  ],
  model: 'asi-2025',
  contextKinds: ['vm', 'process'],
  tenantKinds: ['vm', 'process'],
  transition: 'google',
  faultPolicy: 'exit-retry',
  pcid: { kind: 'google-2025', value: ASI_CLASS_KVM, noflush: 'never', source: 'RFC v2 06/29 asi_pcid(): kern_pcid(asid) | (class_id + 1) << X86_CR3_ASI_PCID_BITS_SHIFT; NOFLUSH unused' },
  taint: KVM_TAINT,
  stun: false,
  conventional: {
    vmentryFlush: 'kept', pti: 'disabled', globalKernel: 'cleared',
    source: 'RFC v2 21/29 keeps vmx_l1d_flush() ("RFC: This also needs to be integrated with ASI\'s tainting model"); 28/29 "x86/pti: Disable PTI when ASI is on"; 04/29 _PAGE_GLOBAL cleared when X86_FEATURE_ASI',
    assumed: [],
  },
  holds: [
    'everything from VMALLOC_START up (vmalloc, vmemmap, cpu_entry_area, ESPFIX, image, modules, fixmap), shared (the LDT remap is cloned into the global PGD, below the boundary asi_init() copies from)',
    'in the direct map: buddy allocations without __GFP_SENSITIVE, and the per-CPU first chunk',
    'process contexts (ASI_CLASS_USERSPACE): the user half',
  ],
  taintOf(ctx: AsiContext) {
    return ctx.kind === 'process' ? USER_TAINT : KVM_TAINT;
  },
  pcidValueOf(ctx: AsiContext) {
    return ctx.kind === 'process' ? ASI_CLASS_USERSPACE : ASI_CLASS_KVM;
  },
  spec(_sys: System, ctx: AsiContext) {
    // The kernel half is globalSpec()'s, shared; a context adds only its user half.
    return { ranges: [], userPgd: ctx.kind === 'process' ? ctx.process?.pgd : undefined }; // asi_maps_user_addr(ASI_CLASS_USERSPACE)
  },
  globalSpec(sys: System) {
    const a = sys.layout.addrs;
    const percpu = new Set<number>();
    const edges: number[] = []; // the per-CPU units' first and end PFNs: where a run of equal answers may end
    for (const r of sys.bootAllocations()) {
      if (r.kind !== 'percpu') continue;
      for (let p = r.ranges[0].pa; p < r.ranges[0].pa + r.ranges[0].bytes; p += 4096) percpu.add(p / 4096);
      edges.push(Math.floor(r.ranges[0].pa / 4096), Math.ceil((r.ranges[0].pa + r.ranges[0].bytes) / 4096));
    }
    edges.sort((x, y) => x - y);
    const buddy = sys.buddy;
    const directMap: DirectMapRuns = {
      allow: (pfn) => percpu.has(pfn) || (buddy.isAllocated(pfn) && buddy.classOfPfn(pfn) === CLASS_GLOBAL_NONSENSITIVE),
      why: 'non-__GFP_SENSITIVE buddy allocations; the per-CPU first chunk',
      runEnd: (pfn) => {
        if (percpu.has(pfn)) return pfn + 1;
        let end = buddy.sameStateEnd(pfn);
        for (const x of edges) if (x > pfn) { if (x < end) end = x; break; }
        return end;
      },
    };
    return {
      ranges: [
        regionRange(sys, 'ldt_remap', 'asi_clone_range(LDT_BASE_ADDR, LDT_END_ADDR - 1)'),
        { start: a.vmalloc_base, end: 1n << 64n, why: 'asi_clone_range(VMALLOC_START, ULONG_MAX)' },
      ],
      directMap,
    };
  },
  permits(_sys, ctx, a, via) {
    switch (via) {
      case 'user': return ctx.kind === 'process' && a.user !== undefined && a.user.pid === ctx.process?.pid;
      case 'direct': return a.cls === CLASS_GLOBAL_NONSENSITIVE || (a.boot && a.kind === 'percpu');
      case 'image': return a.boot; // the image range is cloned for the kernel image; frames past _end are not (verify.ts: image-tail-alias)
      default: return true; // the shared regions: declared non-sensitive as a whole
    }
  },
};
