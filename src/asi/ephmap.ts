/**
 * The ephmap of the Aug 2025 ASI branch ("[Discuss] First steps for ASI (ASI is fast again)",
 * lore 20250812173109.295750-1-jackmanb@google.com; bjackman/linux asi/6.16 mm/ephmap.c,
 * mm/shmem.c): "a special region of the kernel address space that is local to the mm … These
 * subregions are CPU-local. This means that it's cheap to tear these mappings down". A read of
 * a tmpfs file in the restricted space (shmem_file_read_iter() when asi_is_restricted()) copies
 * the page-cache page through it instead of through the direct map, so the read takes no ASI
 * exit — the change that took FIO on tmpfs from RFC v2's -70% to -13.1%.
 *
 * As the branch does it:
 *  - the region: the mm-local PGD slot (MM_LOCAL_PGD_ENTRY -240, the PTI LDT remap's, generalised;
 *    asm/pgtable_64_types.h), from EPHEMERAL_FILEMAP_BASE_ADDR = ALIGN(LDT_END_ADDR, PUD_SIZE),
 *    one slot of PAGE_SIZE << MAX_PAGECACHE_ORDER (2 MiB) per CPU at base + cpu × slot
 *    (ephmap_get(): "addr = EPHEMERAL_FILEMAP_BASE_ADDR + (smp_processor_id() * …)");
 *  - ephmap_setup(mm) preallocates the tables ("So we can use this from the page allocator"):
 *    here each mm's path to every CPU's slot, in the process's own tables;
 *  - "We don't need to asi_map() this region as it's already cloned into the restricted address
 *    space": the mm's PGD entry for the slot is the same entry in its full root and in each of
 *    its restricted roots (the code that copies it was not found; a shared top-level entry is
 *    what preallocating makes work, assumption);
 *  - ephmap_get(): one 4 KiB PTE a page, set_pte_at(), __PAGE_KERNEL_RO & ~_PAGE_GLOBAL
 *    (present, accessed, NX, read-only, not global: the shmem version's protections);
 *  - ephmap_put(): the PTE cleared, then "invlpg" for each page when under 33, on this CPU only
 *    ("ASI address transitions never set CR3.noflush so we don't need to account for the "other"
 *    address space").
 * One mapping per mm and CPU at a time (mml_cpu->in_use): a read maps its one page, copies and
 * unmaps before the next, so the model never holds two.
 */
import type { System } from '../linux/system.ts';
import type { Process } from '../linux/process.ts';
import type { RestrictedSpace } from './types.ts';

/** MM_LOCAL_PGD_ENTRY (-240): PGD index 272 with 4 levels, PML5 index 272 with 5 (mm.rst: ff10000000000000). */
const MM_LOCAL_PGD_INDEX = 512 - 240;
/**
 * The branch's asm/pgtable_64_types.h: LDT_REMAP_SIZE = PMD_SIZE, LDT_END_ADDR = LDT_BASE_ADDR +
 * LDT_REMAP_SIZE (upstream ends it a whole PGD entry later), EPHEMERAL_FILEMAP_BASE_ADDR =
 * ALIGN(LDT_END_ADDR, PUD_SIZE).
 */
const PUD_SIZE = 1n << 30n;
/** EPHMAP_CPU_REGION_SIZE = PAGE_SIZE << MAX_PAGECACHE_ORDER (9 with THP, the benchmark's config). */
export const EPHMAP_CPU_SLOT = 2n * 1024n * 1024n;
const TWO32 = 4294967296;

/** The slot region's first address with `levels`-level paging. */
export function ephmapBase(levels: 4 | 5): bigint {
  const mmLocal = levels === 5 ? 0xff10000000000000n : 0xffff880000000000n; // (MM_LOCAL_PGD_ENTRY << PGDIR_SHIFT)
  const ldtEnd = mmLocal + 2n * 1024n * 1024n;
  return ((ldtEnd + PUD_SIZE - 1n) / PUD_SIZE) * PUD_SIZE;
}

export class Ephmap {
  readonly cpus: number;
  /** Whether PTEs may carry NX (the kernel's __supported_pte_mask). */
  readonly nx: boolean;
  /** Per task × CPU: the physical address of the slot's PTE in the task's mm (-1: no mm of its own). */
  readonly ptePa: Float64Array;
  /** Per CPU: the slot's VA as u32 halves (the high one signed), as the Mmu takes it. */
  readonly vaLo: Int32Array;
  readonly vaHi: Int32Array;
  private readonly mms = new Map<Process, number[]>();

  /**
   * Preallocate every mm's path to each CPU's slot (ephmap_setup()), and make the mm's top-level
   * entry for the region the same in each of its restricted roots.
   */
  constructor(sys: System, taskProcess: readonly (Process | null)[], cpus: number, spaces: readonly RestrictedSpace[]) {
    this.cpus = cpus;
    this.nx = sys.kernel.cpu.nx;
    const base = ephmapBase(sys.levels);
    this.vaLo = new Int32Array(cpus);
    this.vaHi = new Int32Array(cpus);
    for (let c = 0; c < cpus; c++) {
      const va = BigInt.asUintN(64, base + BigInt(c) * EPHMAP_CPU_SLOT);
      this.vaLo[c] = Number(va & 0xffffffffn) | 0;
      this.vaHi[c] = Number(BigInt.asIntN(32, va >> 32n));
    }
    this.ptePa = new Float64Array(taskProcess.length * cpus).fill(-1);
    taskProcess.forEach((p, task) => {
      if (p === null) return;
      let ptes = this.mms.get(p);
      if (ptes === undefined) {
        ptes = [];
        for (let c = 0; c < cpus; c++) ptes.push(Number(p.pt.entryAddr(base + BigInt(c) * EPHMAP_CPU_SLOT, 1)));
        this.mms.set(p, ptes);
        const top = p.pgd + MM_LOCAL_PGD_INDEX * 8;
        const lo = sys.mem.read32(top);
        const hi = sys.mem.read32(top + 4);
        for (const s of spaces) {
          if (s.context.process !== p) continue;
          sys.mem.write64(s.root + MM_LOCAL_PGD_INDEX * 8, lo, hi);
          s.gen++;
        }
      }
      for (let c = 0; c < cpus; c++) this.ptePa[task * cpus + c] = ptes[c];
    });
  }

  /**
   * The PTE ephmap_get() writes for the 4 KiB page at `pa`, low half: present (bit 0), accessed
   * (bit 5), not global; read-only for a tmpfs read (__PAGE_KERNEL_RO), RW and dirty (bits 1, 6)
   * for a page written through it (__PAGE_KERNEL, as the branch's kmap_local_page() hook maps).
   */
  static pteLo(pa: number, writable = false): number {
    return ((pa % TWO32) | 0x21 | (writable ? 0x42 : 0)) | 0;
  }

  /**
   * Its high half: the address's bits 51:32 and NX (bit 63) where the CPU has it (pgprot_val()
   * &= __supported_pte_mask: without EFER.NXE bit 63 is reserved).
   */
  static pteHi(pa: number, nx: boolean): number {
    return (Math.floor(pa / TWO32) | (nx ? 0x80000000 : 0)) | 0;
  }
}
