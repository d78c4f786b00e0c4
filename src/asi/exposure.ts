/**
 * Why a page is in a restricted space, by the design's own construction rule, and what that
 * exposes. verify.ts asks this for every allocation a restricted leaf reaches that the design
 * does not mean to map there (AsiDesign.permits() is false), and for every allocation of
 * another tenant it does mean to map; the answer is either a *design exposure* with a cause
 * from a short fixed vocabulary, or null — then nothing in the design puts the page there and
 * it is a model error.
 *
 * The causes, in the order they are tried:
 *  - 'slab-neighbour' / 'page-neighbour': the page holds an allocation the design maps, and the
 *    design maps whole pages (x86 maps nothing smaller than 4 KiB, SDM Vol. 3A 4.5; Chartre's
 *    kvm_copy_ptes() copies the PTEs of a buffer's pages, RFC KVM 19/27), so whatever else
 *    shares the page is mapped too: another object of the same slab page, or any other record;
 *  - 'image-tail-alias': a high-map address of a frame past _end (linux/image-tail.ts): the
 *    design maps the kernel image range whole (kvm_copy_mapping(__START_KERNEL_map, ...) in
 *    Chartre's RFC; asi_clone_range(VMALLOC_START, ULONG_MAX) in the 2025 RFC), cleanup_highmap()
 *    keeps the last PMD (arch/x86/mm/init_64.c), and the page allocator hands its frames out,
 *    while ASI's map/unmap work on the direct-map address only ("Only need to do this for the
 *    real unrestricted direct map", lore 20250924-b4-asi-page-alloc-v1-5, mirror_asi_direct_map());
 *  - 'class-mapped': the page is in a region the design maps whole (a VaRange that is not one
 *    allocation's pages, or the context's user half), or the design maps the allocation's class
 *    as such, and the region or class holds it;
 *  - 'fault-mapped' (System Call Isolation only, sci-verify.ts): another tenant's data a system
 *    call touched, which sci_verify_and_map() maps without a check ("only code access is
 *    checked", RFC 2/7 arch/x86/mm/sci.c, lore 1556228754-12996-1-git-send-email-rppt@linux.ibm.com).
 * An exposure counts when the data is another tenant's and not globally non-sensitive (the
 * designs declare that class harmless "even if it were to get leaked", 2022 cover letter), or
 * when it is sensitive data of no tenant of this context (the kernel's, or an owner the design
 * does not isolate).
 */
import { AllowList, contextSpec } from './restricted.ts';
import { CLASS_GLOBAL_NONSENSITIVE, CLASS_SENSITIVE, className } from '../linux/sensitivity.ts';
import type { Allocation, System } from '../linux/system.ts';
import type { AsiContext, AsiDesign, MapVia, RestrictedSpec } from './types.ts';

export const EXPOSURE_CAUSES = ['slab-neighbour', 'page-neighbour', 'image-tail-alias', 'class-mapped', 'fault-mapped'] as const;
export type ExposureCause = (typeof EXPOSURE_CAUSES)[number];

export const CAUSE_TEXT: Readonly<Record<ExposureCause, string>> = {
  'slab-neighbour': 'shares a slab page with an object the design maps (whole pages are mapped)',
  'page-neighbour': 'shares a page with an allocation the design maps (whole pages are mapped)',
  'image-tail-alias': 'a frame past _end handed out by the page allocator, still mapped by the high map\'s last PMD, which the design maps with the image',
  'class-mapped': 'in a region or class the design maps whole',
  'fault-mapped': 'mapped because an isolated system call touched it: SCI maps any data a fault asks for ("only code access is checked", sci_verify_and_map())',
};

/** One allocation exposed in a restricted space, for one cause. */
export interface Exposure {
  readonly cause: ExposureCause;
  /** First restricted VA found, and its frame. */
  readonly va: bigint;
  readonly pa: number;
  readonly owner: string;
  readonly ownerKind: string;
  /** The allocation's label and the sensitivity model's kind. */
  readonly object: string;
  readonly kind: string;
  readonly cls: string;
  readonly allocation: number;
  /** Bytes of the allocation reachable this way (over distinct frames). */
  bytes: number;
  readonly why: string;
  readonly alloc: Allocation;
}

const PAGE = 4096;

/** The construction rule of one space, as verify.ts consults it page by page. */
export class Placement {
  private readonly whole: AllowList | null;
  private readonly userHalf: boolean;
  private readonly tail: { paStart: number; paEnd: number };

  constructor(private readonly sys: System, private readonly design: AsiDesign, private readonly ctx: AsiContext) {
    // A design that builds its space itself (KPTI's user copy) states no spec: only neighbours explain its pages.
    const spec: RestrictedSpec | null = design.build ? null : contextSpec(sys, design, ctx);
    this.whole = spec ? new AllowList(spec.ranges.filter((r) => !r.perAllocation).map((r) => [r.start, r.end] as const)) : null;
    this.userHalf = spec?.userPgd !== undefined;
    const t = sys.kernel.imageTail;
    this.tail = { paStart: Number(t.paStart), paEnd: Number(t.paEnd) };
  }

  /** Is a frame at a high-map address one of the image tail's? */
  inTail(via: MapVia, pa: number): boolean {
    return via === 'image' && pa >= this.tail.paStart && pa < this.tail.paEnd;
  }

  /**
   * Why the design puts the page (`va`, frame `pa`, mapping kind `via`) there for allocation `a`,
   * which it does not itself mean to map: `intended` are the allocations on the page it does mean
   * to map. null: nothing in the design puts it there.
   */
  explain(a: Allocation, va: bigint, pa: number, via: MapVia, intended: readonly Allocation[]): ExposureCause | null {
    const n = intended.find((b) => b !== a);
    if (n) return a.slabId !== undefined || n.slabId !== undefined ? 'slab-neighbour' : 'page-neighbour';
    const covered = via === 'user' ? this.userHalf : this.whole !== null && this.whole.cover(va, va + BigInt(PAGE)) === 1;
    if (!covered) return null;
    return this.inTail(via, pa) ? 'image-tail-alias' : 'class-mapped';
  }

  /** The cause for an allocation the design does mean to map (its rule maps the class or region as such). */
  intendedCause(via: MapVia, pa: number): ExposureCause {
    return this.inTail(via, pa) ? 'image-tail-alias' : 'class-mapped';
  }

  /** Does reaching `a` through `via` expose anything (see the header)? */
  harmful(a: Allocation, via: MapVia): boolean {
    const cls = via === 'vmalloc' ? a.mapCls : a.cls;
    if (this.ctx.tenants.includes(a.owner)) return false;
    if (this.isOtherTenant(a)) return cls !== CLASS_GLOBAL_NONSENSITIVE;
    return cls === CLASS_SENSITIVE;
  }

  isOtherTenant(a: Allocation): boolean {
    return this.design.tenantKinds.includes(this.sys.owners.kindOf(a.owner)) && !this.ctx.tenants.includes(a.owner);
  }

  /** A new exposure record (bytes are added by the caller). */
  exposure(a: Allocation, cause: ExposureCause, va: bigint, pa: number, via: MapVia): Exposure {
    const o = this.sys.owners.get(a.owner);
    const cls = className(via === 'vmalloc' ? a.mapCls : a.cls);
    return {
      cause, va, pa, owner: o.name, ownerKind: o.kind, object: a.what, kind: a.kind, cls, allocation: a.id, bytes: 0, alloc: a,
      why: `${a.what} of ${o.kind} ${o.name} (${cls}) is reachable from ${this.ctx.label}: ${CAUSE_TEXT[cause]}`,
    };
  }
}

/** Bytes of `a` on the 4 KiB frame at `pa`. */
export function bytesOnPage(a: Allocation, pa: number): number {
  let n = 0;
  for (const r of a.ranges) n += Math.max(0, Math.min(r.pa + r.bytes, pa + PAGE) - Math.max(r.pa, pa));
  return n;
}
