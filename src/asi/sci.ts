/**
 * System Call Isolation (`sci-2019`): Mike Rapoport's RFC "x86: introduce system calls address
 * space isolation" (lore 1556228754-12996-1-git-send-email-rppt@linux.ibm.com, April 2019),
 * on the real page tables of the Linux model.
 *
 * What the RFC does (quotes from the patches):
 *  - 2/7 arch/x86/mm/sci.c sci_pagetable_init(): a zeroed PGD, then "copy the kernel part of user
 *    visible page table": sci_clone_range(u_pgd, CPU_ENTRY_AREA_BASE, +CPU_ENTRY_AREA_MAP_SIZE)
 *    and (u_pgd, __entry_text_start, __irqentry_text_end); the task stack from mm->pgd
 *    (stack, stack + THREAD_SIZE); per_cpu(cpu_sci) of every possible CPU and "plus
 *    do_syscall_64" with sci_clone_page(k_pgd, …). "Unlike PTI page tables, there is no sharing at
 *    higher levels and all the hierarchy for SCI page tables is cloned." The user half is
 *    sci_sync_user_pagetable(): memcpy of the user PGD's first PGD_KERNEL_START entries, at every
 *    sci_init().
 *  - 2/7 sci_verify_and_map(): "run out of room for metadata, can't grant access" when
 *    ptes_count >= SCI_MAX_PTES (256) or backtrace_size >= SCI_MAX_BACKTRACE (64); "only code
 *    access is checked" (X86_PF_INSTR); then sci_clone_page(mm->pgd) copies the kernel's PTE (a
 *    4 KiB slice of a large PMD, "The PTE will have the same pgprot bits as the origial PMD").
 *  - 2/7 sci_verify_code_access(): refuse a fetch outside kernel text, with no kallsyms symbol, or
 *    at an offset into a symbol unless "(addr >> PAGE_SHIFT) == ((rip >> PAGE_SHIFT) + 1)" for a
 *    rip in the backtrace ("allow jumps to the next page of already mapped one"); at offset 0
 *    sci_add_rip(regs->ip). The backtrace starts as { do_syscall_64 } (sci_reset_backtrace()).
 *  - 5/7 fault.c sci_fault(): in do_kern_addr_fault(), a refusal is
 *    no_context(regs, hw_error_code, address, SIGKILL, 0): the task is killed.
 *  - 4/7 entry/common.c: sci_syscall_enter() writes CR3 = SCI PGD | kernel ASID |
 *    1 << X86_CR3_SCI_PCID_BIT (PTI user bit 11 - 1 = 10, 3/7 processor-flags.h), without the
 *    no-flush bit; sci_syscall_exit() writes the saved kernel CR3 back, then sci_clear_data()
 *    pte_clear()s every PTE it added — no TLB flush there: the stale SCI-PCID entries die at the
 *    next sci_syscall_enter() CR3 write (SDM 4.10.4.1), and that exit write flushes the kernel
 *    PCID's non-global entries too.
 * Where the model departs from the RFC it says so at the line.
 */
import type { Kallsyms, SymbolHit } from '../formats/kallsyms.ts';
import type { PhysMemory } from '../phys/memory.ts';
import {
  ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, CR4_LA57, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_SMEP, EFER_LMA, EFER_LME,
  EFER_NXE, EFER_SCE, PFEC_ID, PTE_PS, VECTOR_PF,
} from '../x86/bits.ts';
import { CpuState } from '../x86/cpu.ts';
import { Mmu } from '../x86/mmu.ts';
import { PageTables, USER_TABLE, indexAt } from '../x86/pgtable.ts';

export const SCI_MAX_PTES = 256; // sci.c #define SCI_MAX_PTES 256
export const SCI_MAX_BACKTRACE = 64; // sci.c #define SCI_MAX_BACKTRACE 64
export const X86_CR3_SCI_PCID_BIT = 10; // processor-flags.h: X86_CR3_PTI_PCID_USER_BIT - 1
export const THREAD_SIZE = 16384n; // page_64_types.h THREAD_SIZE_ORDER 2 (KASAN off)
const P4D_SIZE = 1n << 39n; // asm/pgtable_areas.h (6.1.y): CPU_ENTRY_AREA_MAP_SIZE is P4D_SIZE on x86-64
const PAGE = 4096n;
const PFN_MASK = 0x000ffffffffff000n; // PTE_PFN_MASK
const PS = BigInt(PTE_PS);
const TWO32 = 4294967296;

/** What an access through the SCI tables came to. */
/** OTHER_FAULT: a fault SCI does not handle (a user address: do_user_addr_fault(); #GP). */
export const SCI = { HIT: 0, MAPPED: 1, KILLED: 2, OTHER_FAULT: 3 } as const;

export type SciRefusalCode = 'no-room-ptes' | 'no-room-backtrace' | 'not-text' | 'no-symbol' | 'mid-symbol' | 'unmapped' | 'persists';

export interface SciRefusal {
  va: bigint;
  access: 'fetch' | 'read' | 'write';
  code: SciRefusalCode;
  reason: string;
}

/** The task: the process's PGD pair and its kernel stack. */
export interface SciTask {
  /** mm->pgd, the kernel copy (physical). */
  pgd: number;
  /** kernel_to_user_pgdp(mm->pgd) (physical). */
  userPgd: number;
  /** tsk->stack: a THREAD_SIZE vmapped stack mapped in the kernel half. */
  stack: bigint;
}

/** The kernel the task runs on: a KernelModel fits. */
export interface SciKernel {
  mem: PhysMemory;
  levels: 4 | 5;
  layout: { addrs: { CPU_ENTRY_AREA_BASE: bigint; page_offset_base: bigint } };
  perCpuPa: bigint[];
  cpus: number;
}

export interface SciOptions {
  kernel: SciKernel;
  kallsyms: Kallsyms;
  task: SciTask;
  /** A zeroed 4 KiB frame for the SCI paging structures (its physical address). */
  alloc: () => number;
  /**
   * What of the KPTI user root to clone: 'rfc' (default) the two ranges sci_pagetable_init()
   * clones; 'kpti-user' every kernel-half leaf of the user root (on 6.1 that adds ESPFIX and the
   * cpu_tss_rw page pti_clone_user_shared() maps) — the reading "a clone of the KPTI user tables".
   */
  clone?: 'rfc' | 'kpti-user';
  /** Offset of cpu_sci in the per-CPU area. 6.1 has no cpu_sci: default 0, the area's first page. */
  cpuSciOffset?: bigint;
  /** 'enforce' kills on a refusal; 'audit' records it, maps the page anyway and goes on (for replays). */
  mode?: 'enforce' | 'audit';
  /** Enforce the 256-PTE and 64-entry caps (default true, as posted); false: a what-if without them. */
  caps?: boolean;
  /** The CPU's MMU (PCID on); default a private one. */
  mmu?: Mmu;
  /** The mm's ASID: kernel PCID = asid + 1 (tlbflush.h kern_pcid()). */
  asid?: number;
}

/** Entry of `root`'s tables for `va` at `level`, stopping early at a missing or large entry. */
function lookup(mem: PhysMemory, root: number, levels: number, va: bigint, level: number): { level: number; addr: number; value: bigint } {
  let table = BigInt(root);
  for (let l = levels; ; l--) {
    const addr = Number(table) + indexAt(va, l) * 8;
    const value = mem.read64Big(addr);
    const none = (value & ~0x60n) === 0n; // pXd_none(): A/D alone is none (_PAGE_KNL_ERRATUM_MASK)
    if (l === level || none || (l <= 3 && (value & PS) !== 0n)) return { level: l, addr, value: none ? 0n : value };
    table = value & PFN_MASK;
  }
}

export class SciTaskTables {
  readonly root: number;
  readonly pt: PageTables;
  /** The MMU of the CPU the task runs on (load balancing may move it: sim/sci-run.ts sets it per call). */
  mmu: Mmu;
  readonly mode: 'enforce' | 'audit';
  /** Leaves written at creation, as [va, level] (for the report and tests). */
  readonly premapped: Array<{ what: string; va: bigint; level: number }> = [];
  /** sci->ptes: the PTE addresses sci_verify_and_map() filled this syscall. */
  readonly ptes: number[] = [];
  /** sci->backtrace: entry addresses; [0] is do_syscall_64. */
  readonly backtrace: bigint[] = [];
  readonly syscallEntry: bigint;
  /** Frames of the SCI paging structures (root first); never freed before exit (sci_free_pagetable()). */
  readonly tableFrames: number[] = [];
  private readonly k: SciKernel;
  private readonly ks: Kallsyms;
  private readonly hit: SymbolHit = { name: '', offset: 0, type: '', module: undefined, index: -1 };
  private readonly stext: bigint;
  private readonly etext: bigint;
  private readonly kernelCr3: { lo: number; hi: number };
  private readonly sciCr3: { lo: number; hi: number };

  constructor(readonly opts: SciOptions) {
    this.k = opts.kernel;
    this.ks = opts.kallsyms;
    this.mode = opts.mode ?? 'enforce';
    const need = (n: string) => {
      const v = this.ks.addressOf(n);
      if (v === undefined) throw new RangeError(`${this.ks.file}: symbol ${n} not found (SCI needs it)`);
      return v;
    };
    this.syscallEntry = need('do_syscall_64'); // sci.c: syscall_entry_addr = (unsigned long)do_syscall_64
    this.stext = need('_stext');
    this.etext = need('_etext');
    const alloc = () => { const pa = opts.alloc(); this.tableFrames.push(pa / 4096); return pa; };
    this.root = alloc(); // sci->pgd = get_zeroed_page()
    this.pt = new PageTables(this.k.mem, this.k.levels, () => BigInt(alloc()), BigInt(this.root));
    this.build(need('__entry_text_start'), need('__irqentry_text_end'));
    this.backtrace.push(this.syscallEntry); // sci_reset_backtrace()
    const pcid = (opts.asid ?? 0) + 1; // kern_pcid(asid) = asid + 1
    this.kernelCr3 = cr3(opts.task.pgd, pcid);
    this.sciCr3 = cr3(this.root, pcid | (1 << X86_CR3_SCI_PCID_BIT)); // asid | (1 << X86_CR3_SCI_PCID_BIT)
    this.mmu = opts.mmu ?? defaultMmu(this.k.levels, this.k.mem);
  }

  /** sci_pagetable_init() (or the whole user root's kernel half with clone 'kpti-user'). */
  private build(entryStart: bigint, irqEntryEnd: bigint): void {
    const { task } = this.opts;
    if ((this.opts.clone ?? 'rfc') === 'rfc') {
      const cea = this.k.layout.addrs.CPU_ENTRY_AREA_BASE;
      this.cloneRange(task.userPgd, cea, cea + P4D_SIZE, 'cpu_entry_area');
      this.cloneRange(task.userPgd, entryStart, irqEntryEnd, 'entry text');
    } else {
      this.cloneUserRootKernelHalf(task.userPgd);
    }
    this.cloneRange(task.pgd, task.stack, task.stack + THREAD_SIZE, 'task stack');
    const off = this.opts.cpuSciOffset ?? 0n;
    for (let c = 0; c < this.k.cpus; c++) {
      const va = this.k.layout.addrs.page_offset_base + this.k.perCpuPa[c] + off; // &per_cpu(cpu_sci, cpu): embedded first chunk
      if (this.clonePage(task.pgd, va) < 0) throw new RangeError(`SCI: per-CPU page 0x${va.toString(16)} is not mapped`);
      this.premapped.push({ what: `per-CPU page of CPU ${c}`, va: va & ~(PAGE - 1n), level: 1 });
    }
    if (this.clonePage(task.pgd, this.syscallEntry) < 0) throw new RangeError('SCI: do_syscall_64 is not mapped');
    this.premapped.push({ what: 'do_syscall_64', va: this.syscallEntry & ~(PAGE - 1n), level: 1 });
    this.syncUser();
  }

  /** sci_sync_user_pagetable(): memcpy(sci_pgd, u_pgd, PGD_KERNEL_START * sizeof(pgd_t)). */
  syncUser(): void {
    const mem = this.k.mem;
    for (let i = 0; i < 256; i++) {
      const src = this.opts.task.userPgd + i * 8;
      mem.write64(this.root + i * 8, mem.read32(src), mem.read32(src + 4));
    }
  }

  /** sci_clone_range(): copy the leaves of [start, end) level by level; holes are skipped as the RFC skips them. */
  private cloneRange(src: number, start: bigint, end: bigint, what: string): void {
    const { mem, levels } = this.k;
    for (let addr = start; addr < end;) {
      const e = lookup(mem, src, levels, addr, 1);
      if (e.level > 3) return; // pgd_none / p4d_none: "return 0"
      if (e.value === 0n) { addr += e.level === 3 ? 1n << 30n : e.level === 2 ? 1n << 21n : PAGE; continue; } // addr += PUD/PMD/PAGE_SIZE
      // A large PMD is copied as it is ("*target_pmd = *pmd"); the RFC does not check pud_large(),
      // the model copies a 1 GiB leaf the same way.
      this.pt.write(this.pt.entryAddr(addr, e.level, USER_TABLE), e.value); // p?d_alloc(): _PAGE_TABLE entries
      this.premapped.push({ what, va: addr & ~((1n << BigInt(12 + 9 * (e.level - 1))) - 1n), level: e.level });
      addr += 1n << BigInt(12 + 9 * (e.level - 1));
    }
  }

  /** Every kernel-half leaf of the user root, at its own level (the 'kpti-user' reading). */
  private cloneUserRootKernelHalf(src: number): void {
    const { mem, levels } = this.k;
    const leaves: Array<[bigint, number, bigint]> = [];
    forEachKernelLeaf(mem, src, levels, (va, level, value) => leaves.push([va, level, value]));
    for (const [va, level, value] of leaves) {
      this.pt.write(this.pt.entryAddr(va, level, USER_TABLE), value);
      this.premapped.push({ what: 'KPTI user root', va, level });
    }
  }

  /** sci_clone_page(): a 4 KiB PTE for `va` from `src`; returns its address, or -1 when `va` is not mapped there. */
  clonePage(src: number, va: bigint): number {
    const e = lookup(this.k.mem, src, this.k.levels, va, 1);
    if (e.value === 0n || e.level > 3 || (e.value & 1n) === 0n) return -1; // pte_none / !_PAGE_PRESENT
    let pte = e.value;
    if (e.level > 1) {
      // pfn_pte(pmd_pfn(*pmd) + pte_index(addr), pte_pgprot(pte_clrhuge(*pmd))): PS and the large PAT bit go.
      const span = 1n << BigInt(12 + 9 * (e.level - 1));
      const base = e.value & PFN_MASK & ~(span - 1n);
      pte = (base + (va & (span - 1n) & ~(PAGE - 1n))) | (e.value & ~PFN_MASK & ~PS);
    }
    const at = this.pt.entryAddr(va, 1, USER_TABLE); // sci_pagetable_walk_pte()
    this.pt.write(at, pte);
    return Number(at);
  }

  /** Begin an isolated system call (sci_init() then sci_syscall_enter()). */
  syscall(): SciSession {
    this.syncUser();
    this.mmu.writeCr3(this.sciCr3.lo, this.sciCr3.hi); // write_cr3(sci_cr3): flushes the SCI PCID
    return new SciSession(this);
  }

  /** sci_syscall_exit(): back to the kernel CR3, then sci_clear_data(). */
  exit(): void {
    this.mmu.writeCr3(this.kernelCr3.lo, this.kernelCr3.hi); // write_cr3(cr3): flushes the kernel PCID's non-global entries
    this.clearData();
  }

  /** sci_clear_data(): clear the PTEs the syscall's faults added and reset the backtrace (no TLB flush). */
  clearData(): void {
    for (const p of this.ptes) this.k.mem.write64(p, 0, 0); // pte_clear(NULL, 0, sci->ptes[i])
    this.ptes.length = 0;
    this.backtrace.length = 0;
    this.backtrace.push(this.syscallEntry);
  }

  /**
   * sci_verify_and_map(): null when granted (the PTE is mapped), else why not. In 'audit' mode the
   * caps do not stop the code rule from being applied (so a replay past a cap still says what the
   * symbol rule would do), and a PTE mapped over a cap is still listed (so exit() clears it).
   */
  verifyAndMap(va: bigint, errorCode: number): { code: SciRefusalCode; reason: string } | null {
    let cap: { code: SciRefusalCode; reason: string } | null = null;
    if (this.ptes.length >= SCI_MAX_PTES) cap = { code: 'no-room-ptes', reason: `ptes_count ${this.ptes.length} >= SCI_MAX_PTES: "run out of room for metadata, can't grant access"` };
    else if (this.backtrace.length >= SCI_MAX_BACKTRACE) cap = { code: 'no-room-backtrace', reason: `backtrace_size ${this.backtrace.length} >= SCI_MAX_BACKTRACE: "run out of room for metadata, can't grant access"` };
    if (cap && this.opts.caps === false) cap = null; // what-if: no caps (the symbol rule still holds)
    if (cap && this.mode === 'enforce') return cap;
    if ((errorCode & PFEC_ID) !== 0) { // "only code access is checked"
      const r = this.verifyCode(va);
      if (r) return r;
    }
    if (this.mapAndList(va) < 0) return { code: 'unmapped', reason: 'not mapped in the kernel page tables (sci_clone_page() returns NULL)' };
    return cap;
  }

  /** sci_clone_page(mm->pgd) then sci_add_pte(), which skips a PTE already listed. */
  mapAndList(va: bigint): number {
    const pte = this.clonePage(this.opts.task.pgd, va);
    if (pte >= 0 && !this.ptes.includes(pte)) this.ptes.push(pte);
    return pte;
  }

  /** sci_verify_code_access(); a granted fetch at a symbol start is added to the backtrace (sci_add_rip(regs->ip)). */
  private verifyCode(va: bigint): { code: SciRefusalCode; reason: string } | null {
    // is_kernel_text(): _stext <= addr <= _etext (kernel/kallsyms.c); module text is not modelled.
    if (va < this.stext || va > this.etext) return { code: 'not-text', reason: 'instruction fetch outside kernel or module text' };
    const h = this.hit;
    const v = BigInt.asUintN(64, va);
    if (!this.ks.symbolAtHalves(Number(v & 0xffffffffn), Number(v >> 32n), h)) return { code: 'no-symbol', reason: 'no symbol matches the address' };
    if (h.offset !== 0) {
      const page = va >> 12n;
      for (let i = this.backtrace.length - 1; i >= 0; i--) if (page === (this.backtrace[i] >> 12n) + 1n) return null; // "next page of already mapped one"
      return { code: 'mid-symbol', reason: `${h.name}+0x${h.offset.toString(16)}: access in the middle of a function, not in the page after an entered one` };
    }
    if (!this.backtrace.includes(va)) this.backtrace.push(va); // the fetch is regs->ip here
    return null;
  }

  /** The CR3 values the model writes (for tests). */
  get cr3(): { kernel: number; sci: number } {
    return { kernel: this.kernelCr3.hi * TWO32 + this.kernelCr3.lo, sci: this.sciCr3.hi * TWO32 + this.sciCr3.lo };
  }
}

/** One isolated system call: accesses go through the SCI root; faults go to sci_fault(). */
export class SciSession {
  hits = 0;
  codeFaults = 0;
  dataFaults = 0;
  /** PTEs mapped by faults (code, data). */
  codeMapped = 0;
  dataMapped = 0;
  killed = false;
  killReason = '';
  readonly refusals: SciRefusal[] = [];
  private ended = false;

  constructor(readonly tables: SciTaskTables) {}

  fetch(va: bigint): number { return this.access(va, ACCESS_FETCH); }
  read(va: bigint): number { return this.access(va, ACCESS_READ); }
  write(va: bigint): number { return this.access(va, ACCESS_WRITE); }

  /** One access at `va` (ACCESS_*): an SCI.* outcome. A killed task makes no further access. */
  access(va: bigint, access: number): number {
    if (this.killed || this.ended) return SCI.KILLED;
    const v = BigInt.asUintN(64, va);
    const lo = Number(v & 0xffffffffn);
    const hi = Number(v >> 32n);
    const mmu = this.tables.mmu;
    if (mmu.translate(lo, hi, access)) { this.hits++; return SCI.HIT; }
    if (mmu.out.vector !== VECTOR_PF || hi < 0x80000000) return SCI.OTHER_FAULT; // not do_kern_addr_fault(): not SCI's
    const ec = mmu.out.errorCode;
    const code = (access & ACCESS_FETCH) !== 0;
    if (code) this.codeFaults++; else this.dataFaults++;
    const r = this.tables.verifyAndMap(va, ec);
    if (r) {
      const kind = code ? 'fetch' : access & ACCESS_WRITE ? 'write' : 'read';
      this.refusals.push({ va, access: kind, code: r.code, reason: r.reason });
      if (this.tables.mode === 'enforce') return this.kill(`${kind} at 0x${v.toString(16)}: ${r.reason}`);
      if (r.code !== 'unmapped') this.tables.mapAndList(va); // audit: map it anyway (and clear it at exit)
    }
    if (!mmu.translate(lo, hi, access)) {
      // The kernel's own tables deny it too: the RFC would map the same PTE and fault again forever.
      this.refusals.push({ va, access: code ? 'fetch' : access & ACCESS_WRITE ? 'write' : 'read', code: 'persists', reason: 'the fault persists after mapping' });
      return this.kill(`0x${v.toString(16)}: the fault persists after sci_clone_page() (the kernel's tables deny it)`);
    }
    if (!r) { if (code) this.codeMapped++; else this.dataMapped++; }
    return SCI.MAPPED;
  }

  private kill(reason: string): number {
    this.killed = true; // no_context(regs, hw_error_code, address, SIGKILL, 0)
    this.killReason = reason;
    return SCI.KILLED;
  }

  get ptesUsed(): number { return this.tables.ptes.length; }
  get backtraceSize(): number { return this.tables.backtrace.length; }

  /** End the syscall: sci_syscall_exit(). Returns the final counts. */
  end(): { ptes: number; backtrace: number } {
    const out = { ptes: this.ptesUsed, backtrace: this.backtraceSize };
    if (!this.ended) this.tables.exit();
    this.ended = true;
    return out;
  }
}

function cr3(root: number, pcid: number): { lo: number; hi: number } {
  return { lo: ((root % TWO32) | pcid) >>> 0, hi: Math.floor(root / TWO32) >>> 0 };
}

/** A CPU of the captures' kind with PCID on (SCI needs it: "System call isolation requires PCID"). SMAP off. */
export function defaultMmu(levels: 4 | 5, mem: PhysMemory): Mmu {
  const cpu = new CpuState(52);
  cpu.load({
    cr0: 0x80050033, cr4: CR4_PAE | CR4_PGE | CR4_PCIDE | CR4_SMEP | (levels === 5 ? CR4_LA57 : 0),
    efer: EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE, cpl: 0,
  });
  return new Mmu(cpu, mem);
}

/** Kernel-half leaves of `root` as (va, level, entry): the leaf enumerator's view, for cloning and tests. */
export function forEachKernelLeaf(mem: PhysMemory, root: number, levels: 4 | 5, f: (va: bigint, level: number, value: bigint) => void): void {
  const walk = (table: number, level: number, base: bigint) => {
    for (let i = level === levels ? 256 : 0; i < 512; i++) {
      const value = mem.read64Big(table + i * 8);
      if ((value & 1n) === 0n) continue;
      const va = base | (BigInt(i) << BigInt(12 + 9 * (level - 1)));
      if (level === 1 || (level <= 3 && (value & PS) !== 0n)) f(BigInt.asUintN(64, BigInt.asIntN(levels === 5 ? 57 : 48, va)), level, value);
      else walk(Number(value & PFN_MASK), level - 1, va);
    }
  };
  walk(root, levels, 0n);
}
