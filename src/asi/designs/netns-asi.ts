/**
 * Namespace address spaces (Mike Rapoport, James Bottomley, IBM; LPC 2019 "Address Space
 * Isolation for Container Security", https://lpc.events/event/4/contributions/431/): "assign an
 * address space to the Linux namespaces, so that tasks running in namespace A have different
 * view of kernel memory mappings than the tasks running in namespace B … by keeping all the
 * objects in a network namespace private, we can achieve levels of isolation equivalent to
 * running a separated network stack."
 *
 * Model (the talk gives no code; these are assumptions): the kernel half of a task's tables in
 * namespace A is the full kernel half minus the direct-map pages holding other namespaces'
 * private objects (struct net, sockets, sk_buffs: linux/netns.ts netnsLocalModel(), which also
 * keeps each namespace's objects on pages of their own); the tables are the task's kernel
 * tables, loaded at context switch and never left; touching another namespace's object is
 * refused (it would be a bug or an attack). PCID: the kernel PCID of the task's mm.
 * Every alias of such a page is dropped, not only its direct-map address: a frame the high map
 * covers (the image tail past _end, handed out by the page allocator) loses its high-map page
 * too, as set_memory.c's cpa_process_alias() follows any change of a direct-map page there
 * ("__cpa_pfn_in_highmap()") — an assumption: the talk does not say how the pages are removed.
 */
import { CLASS_LOCAL_NONSENSITIVE } from '../../linux/sensitivity.ts';
import { netnsLocalModel } from '../../linux/netns.ts';
import type { DirectMapRuns } from '../restricted.ts';
import type { System } from '../../linux/system.ts';
import type { AsiContext, AsiDesign, VaRange } from '../types.ts';

function foreign(sys: System, ctx: AsiContext, cls: number, owner: number): boolean {
  return cls === CLASS_LOCAL_NONSENSITIVE && sys.owners.has(owner) && sys.owners.kindOf(owner) === 'netns' && !ctx.tenants.includes(owner);
}

/** [from, 2^64) minus the high-map pages of other namespaces' frames (highmap_start_pfn()..highmap_end_pfn(), set_memory.c). */
function withoutHighmapAliases(sys: System, ctx: AsiContext, from: bigint, why: string): VaRange[] {
  const k = sys.kernel;
  const map = sys.layout.addrs.__START_KERNEL_map;
  const first = Number((k.sections.text - map + k.physBase) >> 12n);
  const last = Number((k.imageTail.vaEnd - map + k.physBase) >> 12n); // exclusive: roundup(_brk_end, PMD_SIZE)
  const out: VaRange[] = [];
  let start = from;
  for (let pfn = first; pfn < last; pfn++) {
    if (!foreign(sys, ctx, sys.buddy.classOfPfn(pfn), sys.buddy.ownerOfPfn(pfn))) continue;
    const va = BigInt(pfn) * 4096n + map - k.physBase;
    if (va > start) out.push({ start, end: va, why });
    start = va + 4096n;
  }
  out.push({ start, end: 1n << 64n, why });
  return out;
}

export const netnsAsi: AsiDesign = {
  name: 'netns-asi',
  title: 'Namespace address spaces (Rapoport/Bottomley, LPC 2019)',
  sources: ['LPC 2019 "Address Space Isolation for Container Security" (Rapoport, Bottomley), lpc.events/event/4/contributions/431'],
  model: netnsLocalModel('none'),
  contextKinds: ['netns'],
  tenantKinds: ['netns'],
  transition: 'static',
  faultPolicy: 'refuse',
  pcid: { kind: 'kernel', noflush: 'tracked', source: 'assumption: the namespace tables use the mm\'s kernel PCID (kern_pcid(asid))' },
  taint: null,
  stun: false,
  conventional: {
    vmentryFlush: 'kept', pti: 'kept', globalKernel: 'cleared',
    source: 'no code was posted (LPC 2019 talk): the defaults are kept; kernel mappings non-global as under the Google RFCs',
    assumed: ['vmentryFlush', 'pti', 'globalKernel'],
  },
  holds: ['the whole kernel half except other namespaces\' private objects (direct map)'],
  spec(sys: System, ctx: AsiContext) {
    const a = sys.layout.addrs;
    const half = sys.levels === 5 ? 0xff00000000000000n : 0xffff800000000000n;
    const dmEnd = a.page_offset_base + (BigInt(sys.kernel.pfnMapped.at(-1)?.[1] ?? 0n) << 12n);
    return {
      ranges: [
        { start: half, end: a.page_offset_base, why: 'kernel half below the direct map' },
        ...withoutHighmapAliases(sys, ctx, dmEnd, 'kernel half above the direct map'),
      ],
      directMap: {
        allow: (pfn) => !foreign(sys, ctx, sys.buddy.classOfPfn(pfn), sys.buddy.ownerOfPfn(pfn)),
        why: 'all but other namespaces\' objects',
        runEnd: (pfn) => sys.buddy.sameStateEnd(pfn), // allow() reads only the frame's buddy state
      } satisfies DirectMapRuns,
      userPgd: ctx.process?.pgd,
    };
  },
  permits(sys, ctx, a) {
    return !foreign(sys, ctx, a.cls, a.owner);
  },
};
