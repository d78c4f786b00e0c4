/**
 * Per-CPU ASID (PCID) management as arch/x86/mm/tlb.c does it in Linux 6.1.
 *
 * The kernel does not give every mm its own PCID. Each CPU keeps a small array of
 * TLB_NR_DYN_ASIDS = 6 slots, `cpu_tlbstate.ctxs[]`, each remembering which mm (by its
 * never-reused `ctx_id`) last used the slot and up to which `tlb_gen` that mm's TLB entries
 * under the slot are known to be current. An mm's `context.tlb_gen` is bumped by every
 * flush_tlb_mm_range(); a CPU that did not take part in the flush catches up at its next switch
 * to that mm by flushing the slot. Three name spaces (tlb.c, comment above CR3_HW_ASID_BITS):
 *   ASID  0..5                       the slot index
 *   kPCID ASID + 1 (1..6)            written into CR3[11:0]; PCID 0 is left to PCID-unaware code
 *   uPCID kPCID | 1 << 11 (2049..)   the KPTI user half's PCID (X86_CR3_PTI_PCID_USER_BIT = 11)
 *
 * Storage, per CPU `c` and slot `s` at index c * 6 + s:
 *   ctxId     Float64Array  ctxs[s].ctx_id (0 = empty: "zero is not a valid ctx_id", asm/mmu.h)
 *   tlbGen    Float64Array  ctxs[s].tlb_gen
 * and per CPU: loadedAsid / nextAsid (Uint16Array), isLazy (Uint8Array), userFlushMask
 * (Uint32Array: bit kPCID set = the user PCID must be flushed at the next return to user,
 * cpu_tlbstate.user_pcid_flush_mask), loaded (the loaded mm, an MmContext reference).
 *
 * CR3 values are returned as u32 halves: lo = PGD bits 31:12 | PCID, hi = PGD bits 51:32, with
 * bit 63 (CR3_NOFLUSH, SDM 4.10.4.1) in hi when the write must not flush. `cr3ToBigInt()` turns
 * them into a BigInt for printing. switchMm() fills a reused SwitchResult: no allocation.
 */
import { CR3_NOFLUSH_HI } from '../x86/bits.ts';

/** arch/x86/include/asm/tlbflush.h */
export const TLB_NR_DYN_ASIDS = 6;
/** arch/x86/include/asm/processor-flags.h: X86_CR3_PTI_PCID_USER_BIT */
export const X86_CR3_PTI_PCID_USER_BIT = 11;
/** PTI_USER_PGTABLE_BIT = PAGE_SHIFT (arch/x86/entry/calling.h): the user PGD is the upper 4 KiB. */
export const PTI_USER_PGTABLE_MASK = 1 << 12;
const PTI_USER_PCID_MASK = 1 << X86_CR3_PTI_PCID_USER_BIT;
const TWO32 = 4294967296;

/** The x86 part of an mm (mm->context + mm->pgd). */
export class MmContext {
  /** atomic64_t tlb_gen: bumped by each flush of this mm. */
  tlbGen = 0;
  constructor(
    /** Never reused; init_mm has 1 (INIT_MM_CONTEXT), others atomic64_inc_return(&last_mm_ctx_id). */
    readonly ctxId: number,
    /** Physical address of the PGD (the kernel half of the pair under PTI). */
    readonly pgd: number,
    readonly name: string,
  ) {}
}

/** Why a switch did what it did. */
export const SWITCH_SAME_MM = 0; // real_prev == next, not lazy: no CR3 write
export const SWITCH_LAZY_UPTODATE = 1; // back from lazy mode, tlb_gen unchanged: no CR3 write
export const SWITCH_LAZY_STALE = 2; // back from lazy mode, tlb_gen moved: flush, same ASID
export const SWITCH_SLOT_HIT = 3; // the mm still owns a slot and it is current: NOFLUSH
export const SWITCH_SLOT_STALE = 4; // the mm owns a slot but tlb_gen moved: flush
export const SWITCH_NEW_SLOT = 5; // no slot: take next_asid round robin, flush
export const SWITCH_NO_PCID = 6; // !X86_FEATURE_PCID: ASID 0, always flush
export const SWITCH_REASONS = ['same-mm', 'lazy-uptodate', 'lazy-stale', 'slot-hit', 'slot-stale', 'new-slot', 'no-pcid'] as const;

/** What switchMm() did. Reused between calls: copy what you keep. */
export class SwitchResult {
  /** Whether CR3 was written (false for the same-mm fast paths). */
  cr3Written = false;
  /** The kernel CR3 value written, as halves; bit 63 of hi set iff noflush. */
  cr3Lo = 0;
  cr3Hi = 0;
  /** The CR3 the next SWITCH_TO_USER_CR3 writes under PTI (equal to the kernel CR3 without PTI). */
  userCr3Lo = 0;
  userCr3Hi = 0;
  noflush = false;
  asid = 0;
  reason = SWITCH_SAME_MM;
  /** ctx_id of the mm whose slot was taken, 0 if the slot was empty or none was taken. */
  evictedCtxId = 0;
}

export interface AsidOptions {
  cpus: number;
  /** X86_FEATURE_PCID (and CR4.PCIDE set by the kernel). */
  pcid: boolean;
  /** X86_FEATURE_PTI. */
  pti: boolean;
  /** PA of init_mm.pgd (swapper_pg_dir): every CPU starts with init_mm loaded. */
  initPgd: number;
}

/** One CPU's action in a flush_tlb_mm_range(). */
export interface FlushAction {
  cpu: number;
  action: 'flushed' | 'skipped-lazy' | 'to-init-mm';
}

export class AsidState {
  readonly cpus: number;
  readonly pcid: boolean;
  readonly pti: boolean;
  readonly initMm: MmContext;
  readonly ctxId: Float64Array;
  readonly tlbGen: Float64Array;
  readonly loadedAsid: Uint16Array;
  readonly nextAsid: Uint16Array;
  readonly isLazy: Uint8Array;
  readonly userFlushMask: Uint32Array;
  readonly loaded: MmContext[];
  readonly result = new SwitchResult();
  /** atomic64_t last_mm_ctx_id = ATOMIC64_INIT(1) (tlb.c). */
  private lastCtxId = 1;

  constructor(opts: AsidOptions) {
    if (!Number.isInteger(opts.cpus) || opts.cpus < 1) throw new RangeError(`cpus must be a positive integer, got ${opts.cpus}`);
    this.cpus = opts.cpus;
    this.pcid = opts.pcid;
    this.pti = opts.pti;
    this.initMm = new MmContext(1, opts.initPgd, 'init_mm'); // INIT_MM_CONTEXT: .ctx_id = 1
    const n = opts.cpus * TLB_NR_DYN_ASIDS;
    this.ctxId = new Float64Array(n);
    this.tlbGen = new Float64Array(n);
    this.loadedAsid = new Uint16Array(opts.cpus);
    this.nextAsid = new Uint16Array(opts.cpus);
    this.isLazy = new Uint8Array(opts.cpus);
    this.userFlushMask = new Uint32Array(opts.cpus);
    this.loaded = [];
    for (let c = 0; c < opts.cpus; c++) {
      // initialize_tlbstate_and_flush(): ASID 0 holds init_mm, next_asid = 1, other slots empty.
      this.loaded.push(this.initMm);
      this.nextAsid[c] = 1;
      this.ctxId[c * TLB_NR_DYN_ASIDS] = this.initMm.ctxId;
      this.tlbGen[c * TLB_NR_DYN_ASIDS] = this.initMm.tlbGen;
    }
  }

  /** init_new_context(): a new mm gets the next ctx_id and tlb_gen 0 (asm/mmu_context.h). */
  newMm(pgd: number, name = ''): MmContext {
    return new MmContext(++this.lastCtxId, pgd, name);
  }

  /** kern_pcid(asid) = asid + 1 (tlb.c). */
  static kernPcid(asid: number): number {
    return asid + 1;
  }

  /** user_pcid(asid) = kern_pcid(asid) | 1 << X86_CR3_PTI_PCID_USER_BIT (tlb.c). */
  static userPcid(asid: number): number {
    return (asid + 1) | PTI_USER_PCID_MASK;
  }

  /** enter_lazy_tlb(): a kernel thread keeps the previous mm loaded, lazily (tlb.c). */
  enterLazyTlb(cpu: number): void {
    if (this.loaded[cpu] === this.initMm) return;
    this.isLazy[cpu] = 1;
  }

  /** switch_mm_irqs_off(prev, next, tsk) on `cpu` (tlb.c, 6.1). The result is `this.result`. */
  switchMm(cpu: number, next: MmContext): SwitchResult {
    const r = this.result;
    const base = cpu * TLB_NR_DYN_ASIDS;
    const realPrev = this.loaded[cpu];
    const prevAsid = this.loadedAsid[cpu];
    const wasLazy = this.isLazy[cpu] !== 0;
    this.isLazy[cpu] = 0;
    r.evictedCtxId = 0;
    let newAsid: number;
    let needFlush: boolean;
    const nextTlbGen = next.tlbGen;
    if (realPrev === next) {
      // "If the CPU is not in lazy TLB mode, we are just switching from one thread in a
      // process to another thread in the same process. No TLB flush required."
      if (!wasLazy) return this.noWrite(r, cpu, prevAsid, SWITCH_SAME_MM);
      // "Read the tlb_gen to check whether a flush is needed. If the TLB is up to date, just use it."
      if (this.tlbGen[base + prevAsid] === nextTlbGen) return this.noWrite(r, cpu, prevAsid, SWITCH_LAZY_UPTODATE);
      // "TLB contents went out of date while we were in lazy mode. Fall through to the TLB switching code below."
      newAsid = prevAsid;
      needFlush = true;
      r.reason = SWITCH_LAZY_STALE;
    } else if (!this.pcid) {
      // choose_new_asid(): "if (!static_cpu_has(X86_FEATURE_PCID)) { *new_asid = 0; *need_flush = true; }"
      newAsid = 0;
      needFlush = true;
      r.reason = SWITCH_NO_PCID;
    } else {
      newAsid = -1;
      needFlush = true;
      for (let asid = 0; asid < TLB_NR_DYN_ASIDS; asid++) {
        if (this.ctxId[base + asid] !== next.ctxId) continue;
        newAsid = asid;
        // *need_flush = (ctxs[asid].tlb_gen < next_tlb_gen)
        needFlush = this.tlbGen[base + asid] < nextTlbGen;
        r.reason = needFlush ? SWITCH_SLOT_STALE : SWITCH_SLOT_HIT;
        break;
      }
      if (newAsid < 0) {
        // "We don't currently own an ASID slot on this CPU. Allocate a slot."
        newAsid = this.nextAsid[cpu]++;
        if (newAsid >= TLB_NR_DYN_ASIDS) {
          newAsid = 0;
          this.nextAsid[cpu] = 1;
        }
        r.evictedCtxId = this.ctxId[base + newAsid];
        r.reason = SWITCH_NEW_SLOT;
      }
    }
    if (needFlush) {
      this.ctxId[base + newAsid] = next.ctxId;
      this.tlbGen[base + newAsid] = nextTlbGen;
      this.invalidateUserAsid(cpu, newAsid); // load_new_mm_cr3(..., true)
    }
    this.loaded[cpu] = next;
    this.loadedAsid[cpu] = newAsid;
    r.cr3Written = true;
    r.asid = newAsid;
    r.noflush = !needFlush;
    this.buildCr3(next.pgd, newAsid, !needFlush, r);
    this.peekUserCr3(cpu, r);
    return r;
  }

  private noWrite(r: SwitchResult, cpu: number, asid: number, reason: number): SwitchResult {
    r.cr3Written = false;
    r.noflush = true;
    r.asid = asid;
    r.reason = reason;
    this.buildCr3(this.loaded[cpu].pgd, asid, false, r);
    this.peekUserCr3(cpu, r);
    return r;
  }

  /**
   * invalidate_user_asid(): "Given an ASID, flush the corresponding user ASID. We can delay this
   * until the next time we switch to it." No user ASID without PTI or without PCID (the CR3 write
   * itself flushed the single ASID then).
   */
  invalidateUserAsid(cpu: number, asid: number): void {
    if (!this.pti || !this.pcid) return;
    this.userFlushMask[cpu] |= 1 << AsidState.kernPcid(asid);
  }

  /**
   * build_cr3(pgd, asid) = __pa(pgd) | kern_pcid(asid) with PCID, else __pa(pgd);
   * build_cr3_noflush() adds CR3_NOFLUSH (bit 63). Writes r.cr3Lo / r.cr3Hi.
   */
  buildCr3(pgd: number, asid: number, noflush: boolean, r: SwitchResult): void {
    const pcid = this.pcid ? AsidState.kernPcid(asid) : 0;
    r.cr3Lo = ((pgd % TWO32) | pcid) >>> 0;
    r.cr3Hi = (Math.floor(pgd / TWO32) | (noflush && this.pcid ? CR3_NOFLUSH_HI : 0)) >>> 0;
  }

  /** The user CR3 SWITCH_TO_USER_CR3 would write now (without consuming the flush bit). */
  private peekUserCr3(cpu: number, r: SwitchResult): void {
    const kLo = r.cr3Lo;
    const kHi = (r.cr3Hi & ~CR3_NOFLUSH_HI) >>> 0;
    if (!this.pti) {
      r.userCr3Lo = kLo;
      r.userCr3Hi = kHi;
      return;
    }
    userCr3Of(kLo, kHi, this.pcid, this.pcid && (this.userFlushMask[cpu] & (1 << (kLo & 0x7ff))) === 0, r);
  }

  /**
   * SWITCH_TO_USER_CR3_NOSTACK (arch/x86/entry/calling.h) at a return to user mode under PTI:
   * test user_pcid_flush_mask bit (CR3 & 0x7FF); if set, clear it and write without NOFLUSH,
   * else SET_NOFLUSH_BIT; then OR in PTI_USER_PCID_MASK (with PCID) and PTI_USER_PGTABLE_MASK.
   * Fills r.userCr3Lo / r.userCr3Hi and r.noflush. Without PTI there is no switch: returns false.
   */
  returnToUser(cpu: number, r: SwitchResult = this.result): boolean {
    if (!this.pti) return false;
    const mm = this.loaded[cpu];
    this.buildCr3(mm.pgd, this.loadedAsid[cpu], false, r);
    let noflush = false;
    if (this.pcid) {
      const bit = 1 << (r.cr3Lo & 0x7ff);
      if (this.userFlushMask[cpu] & bit) this.userFlushMask[cpu] &= ~bit; // btr
      else noflush = true;
    }
    userCr3Of(r.cr3Lo, r.cr3Hi, this.pcid, noflush, r);
    r.noflush = noflush;
    return true;
  }

  /**
   * SWITCH_TO_KERNEL_CR3 at kernel entry under PTI: ADJUST_KERNEL_CR3 sets NOFLUSH (with PCID)
   * and clears the PCID user bit and the PGD user bit. Fills r.cr3Lo / r.cr3Hi.
   */
  enterKernel(cpu: number, r: SwitchResult = this.result): boolean {
    if (!this.pti) return false;
    this.buildCr3(this.loaded[cpu].pgd, this.loadedAsid[cpu], true, r);
    r.noflush = this.pcid;
    return true;
  }

  /**
   * flush_tlb_mm_range(mm, 0, TLB_FLUSH_ALL, …, freedTables): inc_mm_tlb_gen(mm), then every CPU
   * with the mm loaded runs flush_tlb_func() — except lazy ones when no page tables were freed
   * ("They will flush the CPU themselves at the next context switch"); a lazy CPU that is sent
   * the IPI switches to init_mm instead. A CPU where the mm is not loaded does nothing now; its
   * slot's tlb_gen is now behind and its next switch to the mm flushes.
   */
  flushTlbMm(mm: MmContext, freedTables = false): FlushAction[] {
    const gen = ++mm.tlbGen;
    const out: FlushAction[] = [];
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      if (this.loaded[cpu] !== mm || mm === this.initMm) continue;
      if (this.isLazy[cpu]) {
        if (!freedTables) {
          out.push({ cpu, action: 'skipped-lazy' });
          continue;
        }
        // flush_tlb_func(): "We're in lazy mode ... just switch to init_mm."
        this.switchMm(cpu, this.initMm);
        out.push({ cpu, action: 'to-init-mm' });
        continue;
      }
      // flush_tlb_func(): full flush (flush_tlb_local(): invalidate_user_asid(loaded_mm_asid) and a
      // CR3 rewrite without NOFLUSH), then ctxs[loaded_mm_asid].tlb_gen = mm_tlb_gen.
      const asid = this.loadedAsid[cpu];
      this.invalidateUserAsid(cpu, asid);
      this.tlbGen[cpu * TLB_NR_DYN_ASIDS + asid] = gen;
      out.push({ cpu, action: 'flushed' });
    }
    return out;
  }

  /** The slot (ASID) of `mm` on `cpu`, or -1. */
  slotOf(cpu: number, mm: MmContext): number {
    for (let s = 0; s < TLB_NR_DYN_ASIDS; s++) if (this.ctxId[cpu * TLB_NR_DYN_ASIDS + s] === mm.ctxId) return s;
    return -1;
  }
}

/** CR3 | PTI_USER_PGTABLE_MASK (| PTI_USER_PCID_MASK with PCID) (| NOFLUSH) into r.userCr3*. */
function userCr3Of(kLo: number, kHi: number, pcid: boolean, noflush: boolean, r: SwitchResult): void {
  r.userCr3Lo = (kLo | PTI_USER_PGTABLE_MASK | (pcid ? PTI_USER_PCID_MASK : 0)) >>> 0;
  r.userCr3Hi = (kHi | (noflush ? CR3_NOFLUSH_HI : 0)) >>> 0;
}

/** A CR3 value from halves, for printing and tests. */
export function cr3ToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
