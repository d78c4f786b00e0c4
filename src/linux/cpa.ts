/**
 * The kernel's page-attribute changes, arch/x86/mm/pat/set_memory.c (Linux 6.1): set_memory_ro,
 * _rw, _nx, _x, _np, _global, _nonglobal on the kernel page table, with the same rules for when
 * a large page is preserved and when it is split, the same static protections, and the same
 * alias processing (a change to the kernel-image high mapping is repeated on its direct-map
 * alias, and the other way round). Running the kernel's own sequence of calls through this is
 * what reproduces the real boot's split pages (see linux/image.ts).
 *
 * Also the pgprot constants of arch/x86/include/asm/pgtable_types.h. Entries are BigInt: this
 * runs a few thousand times per boot, never per memory access.
 */
import type { PageTables } from '../x86/pgtable.ts';

// arch/x86/include/asm/pgtable_types.h
export const _PAGE_PRESENT = 1n;
export const _PAGE_RW = 2n;
export const _PAGE_USER = 4n;
export const _PAGE_PWT = 8n;
export const _PAGE_PCD = 0x10n;
export const _PAGE_ACCESSED = 0x20n;
export const _PAGE_DIRTY = 0x40n;
export const _PAGE_PSE = 0x80n;
export const _PAGE_PAT = 0x80n; // in a 4 KiB PTE
export const _PAGE_GLOBAL = 0x100n;
export const _PAGE_PAT_LARGE = 0x1000n;
export const _PAGE_NX = 1n << 63n;
export const PTE_PFN_MASK = 0x000ffffffffff000n; // PHYSICAL_PAGE_MASK with 52 address bits
const PMD_PFN_MASK = 0x000fffffffe00000n; // PHYSICAL_PMD_PAGE_MASK
const PUD_PFN_MASK = 0x000fffffc0000000n; // PHYSICAL_PUD_PAGE_MASK

const PP = _PAGE_PRESENT;
const A = _PAGE_ACCESSED;
const D = _PAGE_DIRTY;
const G = _PAGE_GLOBAL;
export const __PAGE_KERNEL_EXEC = PP | _PAGE_RW | A | D | G; // (__PP|__RW|0|___A|0|___D|0|___G)
export const __PAGE_KERNEL = __PAGE_KERNEL_EXEC | _PAGE_NX;
export const __PAGE_KERNEL_RO = PP | A | _PAGE_NX | D | G; // (__PP|0|0|___A|__NX|___D|0|___G)
export const __PAGE_KERNEL_RX = PP | A | D | G;
export const __PAGE_KERNEL_LARGE = __PAGE_KERNEL | _PAGE_PSE;
export const __PAGE_KERNEL_LARGE_EXEC = __PAGE_KERNEL_EXEC | _PAGE_PSE;
export const __PAGE_KERNEL_VVAR = PP | _PAGE_USER | A | _PAGE_NX | G; // (__PP|0|_USR|___A|__NX|0|___G)
/** __PAGE_KERNEL_NOCACHE = __PAGE_KERNEL | _PAGE_CACHE_MODE_UC; UC is PCD|PWT with the kernel's PAT layout (pat/memtype.c). */
export const __PAGE_KERNEL_NOCACHE = __PAGE_KERNEL | _PAGE_PCD | _PAGE_PWT;
export const _KERNPG_TABLE = PP | _PAGE_RW | A | D;
export const _PAGE_TABLE = _KERNPG_TABLE | _PAGE_USER;

/** Which bits the CPU and the mitigations let the kernel use (arch/x86/mm/init.c probe_page_size_mask()). */
export interface ProtMasks {
  /** __supported_pte_mask: NX only with X86_FEATURE_NX, GLOBAL only with X86_FEATURE_PGE. */
  supported: bigint;
  /** __default_kernel_pte_mask: __supported_pte_mask, minus GLOBAL when X86_FEATURE_PTI. */
  defaultKernel: bigint;
}

/**
 * `nonGlobal`: another feature that keeps kernel mappings out of the global TLB (the Google ASI
 * RFCs change the same line of arch/x86/mm/init.c: "Except when with PTI or ASI where the
 * kernel is mostly non-Global", RFC 2022 01/47, RFC v2 2025 04/29).
 */
export function protMasks(cpu: { nx: boolean; pge: boolean }, pti: boolean, nonGlobal = false): ProtMasks {
  let supported = ~0n & ((1n << 64n) - 1n);
  if (!cpu.nx) supported &= ~_PAGE_NX; // init.c: __supported_pte_mask &= ~_PAGE_NX without NX (x86_configure_nx)
  if (!cpu.pge) supported &= ~_PAGE_GLOBAL; // probe_page_size_mask(): |= _PAGE_GLOBAL only with PGE
  const defaultKernel = pti || nonGlobal ? supported & ~_PAGE_GLOBAL : supported; // "Except when with PTI where the kernel is mostly non-Global"
  return { supported, defaultKernel };
}

/** The entry's pfn mask for its level (pmd_pfn_mask()/pud_pfn_mask(): large leaves keep bit 12 as PAT). */
export function pfnMask(entry: bigint, level: number): bigint {
  if (level === 3 && (entry & _PAGE_PSE) !== 0n) return PUD_PFN_MASK;
  if (level === 2 && (entry & _PAGE_PSE) !== 0n) return PMD_PFN_MASK;
  return PTE_PFN_MASK;
}

/** pgprot_large_2_4k(): clear PSE (the 4 KiB PAT bit) and move PAT from bit 12 to bit 7. */
export function protLarge2_4k(p: bigint): bigint {
  return (p & ~(_PAGE_PAT | _PAGE_PAT_LARGE)) | ((p & _PAGE_PAT_LARGE) >> 5n);
}

/** pgprot_4k_2_large(): move PAT from bit 7 to bit 12. */
export function prot4k_2_large(p: bigint): bigint {
  return (p & ~(_PAGE_PAT | _PAGE_PAT_LARGE)) | ((p & _PAGE_PAT) << 5n);
}

/** pgprot_clear_protnone_bits(): a non-present entry must not keep GLOBAL (it would read as PROTNONE). */
function clearProtnone(p: bigint): bigint {
  return (p & _PAGE_PRESENT) === 0n ? p & ~_PAGE_GLOBAL : p;
}

const PAGE = 4096n;
const PMD_SIZE = 1n << 21n;
const START_KERNEL_MAP = 0xffffffff80000000n; // page_64_types.h __START_KERNEL_map

/** What set_memory.c needs to know about the running kernel. */
export interface CpaEnv {
  pt: PageTables;
  masks: ProtMasks;
  pageOffset: bigint;
  physBase: bigint;
  kernelImageSize: bigint;
  /** Image symbols (VAs): _text, _etext, __start_rodata, __end_rodata, _brk_end. */
  text: bigint;
  etext: bigint;
  startRodata: bigint;
  endRodata: bigint;
  brkEnd: bigint;
  /** PFN runs [start, end) mapped in the direct map (pfn_mapped[] of arch/x86/mm/init.c). */
  pfnMapped: Array<[bigint, bigint]>;
  /** kernel_set_to_readonly: set by mark_rodata_ro() after it write-protects the image. */
  kernelSetToReadonly: boolean;
  /** Large pages split, by the level of the split entry (2: PMD, 3: PUD). */
  splits: { pmd: number; pud: number };
  /** direct_pages_count[PG_LEVEL_4K/2M/1G] of set_memory.c, as /proc/meminfo DirectMap* prints it (in pages). */
  directPages: { k4: number; m2: number; g1: number };
  /** Log of calls (for reports): name, first VA, pages. */
  log?: Array<{ what: string; va: bigint; pages: number }>;
}

interface Cpa {
  vaddr: bigint;
  numpages: number;
  maskSet: bigint;
  maskClr: bigint;
  curpage: number;
  pfn: bigint;
  forceStaticProt: boolean;
  noCheckAlias: boolean;
}

export interface Lookup {
  ea: bigint; // physical address of the entry
  level: number; // 1 PTE, 2 PMD, 3 PUD, 4 P4D
  entry: bigint;
}

const TWO32 = 4294967296;
const LEVEL_DIV = [1, 1, 2 ** 9, 2 ** 18, 2 ** 27, 2 ** 36];

/** lookup_address(): the entry that maps `va` in the kernel tables (a large leaf, a PTE, or a non-present upper entry), or null when an upper level is none. */
export function lookupAddress(pt: PageTables, va: bigint): Lookup | null {
  // The walk reads 32-bit halves (no BigInt per level); only the entry it returns is a BigInt.
  const mem = pt.mem;
  const vpn = Number((va >> 12n) & 0x1fffffffffffn); // VA bits 12..56: the five 9-bit indexes (45 bits, exact)
  let table = Number(pt.root);
  for (let l = pt.levels; l >= 2; l--) {
    const ea = table + (Math.floor(vpn / LEVEL_DIV[l]) % 512) * 8;
    const lo = mem.read32(ea);
    const hi = mem.read32(ea + 4);
    // *_none(): no bits but A/D (pgtable.h _PAGE_KNL_ERRATUM_MASK); then a large or non-present entry ends the walk.
    if ((lo & ~0x60) === 0 && hi === 0) return null;
    if ((lo & 1) === 0 || (l <= 3 && (lo & 0x80) !== 0)) return { ea: BigInt(ea), level: l, entry: mem.read64Big(ea) };
    table = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0); // & PTE_PFN_MASK
  }
  const ea = table + (vpn % 512) * 8;
  return { ea: BigInt(ea), level: 1, entry: mem.read64Big(ea) };
}

const within = (a: bigint, lo: bigint, hi: bigint) => a >= lo && a < hi;
const overlaps = (s1: bigint, e1: bigint, s2: bigint, e2: bigint) => e1 >= s2 && e2 >= s1; // inclusive ends

function paOfDirect(env: CpaEnv, va: bigint): bigint {
  return va - env.pageOffset;
}

function pfnRangeIsMapped(env: CpaEnv, start: bigint, end: bigint): boolean {
  for (const [a, b] of env.pfnMapped) if (start >= a && end <= b) return true;
  return false;
}

function maxPfnMapped(env: CpaEnv): bigint {
  let m = 0n;
  for (const [, b] of env.pfnMapped) if (b > m) m = b;
  return m;
}

function inDirectMap(env: CpaEnv, va: bigint): boolean {
  return within(va, env.pageOffset, env.pageOffset + (maxPfnMapped(env) << 12n));
}

/** highmap_start_pfn() .. highmap_end_pfn(), inclusive: the image from _text to roundup(_brk_end, PMD_SIZE). */
function pfnInHighmap(env: CpaEnv, pfn: bigint): boolean {
  const start = (env.text - START_KERNEL_MAP + env.physBase) >> 12n;
  const end = (roundUp(env.brkEnd, PMD_SIZE) - 1n - START_KERNEL_MAP + env.physBase) >> 12n;
  return pfn >= start && pfn <= end;
}

export function roundUp(v: bigint, a: bigint): bigint {
  return ((v + a - 1n) / a) * a;
}

/** static_protections(): bits a mapping must not have, by virtual range and by pfn. */
function staticProtections(env: CpaEnv, prot: bigint, start: bigint, pfn: bigint, npg: bigint, lpsize: bigint): bigint {
  if ((prot & _PAGE_PRESENT) === 0n) return prot; // no point checking RW/NX when setting !PRESENT
  const end = start + npg * PAGE - 1n;
  // protect_kernel_text(): the kernel text needs to be executable.
  let forbidden = overlaps(start, end, env.text, env.etext - 1n) ? _PAGE_NX : 0n;
  // protect_kernel_text_ro(), skipped when the change spans a whole large page.
  if (lpsize !== npg * PAGE || (start & (lpsize - 1n)) !== 0n) {
    if (env.kernelSetToReadonly && overlaps(start, end, env.text, env.etext - 1n)) {
      const l = lookupAddress(env.pt, start);
      if (l && l.level !== 1) forbidden |= _PAGE_RW;
    }
  }
  // protect_pci_bios() is 32-bit only (pcibios_enabled). protect_rodata(): by pfn, every alias.
  if (env.kernelSetToReadonly) {
    const spfnRo = (env.startRodata - START_KERNEL_MAP + env.physBase) >> 12n;
    const epfnRo = ((env.endRodata - START_KERNEL_MAP + env.physBase) >> 12n) - 1n;
    if (overlaps(pfn, pfn + npg - 1n, spfnRo, epfnRo)) forbidden |= _PAGE_RW;
  }
  return prot & ~forbidden;
}

/** set_memory.c: is `va` a valid linear address with a mapped pfn (split_page_count() is only counted then)? */
function countsAsDirect(env: CpaEnv, va: bigint): boolean {
  let pa: bigint;
  if (va >= START_KERNEL_MAP) {
    if (va - START_KERNEL_MAP >= env.kernelImageSize) return false; // __virt_addr_valid()
    pa = va - START_KERNEL_MAP + env.physBase;
  } else {
    if (va < env.pageOffset) return false;
    pa = va - env.pageOffset;
  }
  const pfn = pa >> 12n;
  return pfnRangeIsMapped(env, pfn, pfn + 1n);
}

function splitPageCount(env: CpaEnv, level: number): void {
  const d = env.directPages;
  if (level === 2) {
    if (d.m2 === 0) return;
    d.m2--;
    d.k4 += 512;
  } else {
    if (d.g1 === 0) return;
    d.g1--;
    d.m2 += 512;
  }
}

/** __split_large_page(): replace the leaf at `l` by a table of 512 entries with the same protections. */
function splitLargePage(env: CpaEnv, cpa: Cpa, l: Lookup, address: bigint): void {
  const pt = env.pt;
  const base = pt.newTable();
  let refProt: bigint;
  let refPfn: bigint;
  let pfnInc = 1n;
  if (l.level === 2) {
    refProt = protLarge2_4k(l.entry & ~PMD_PFN_MASK); // "Clear PSE (aka _PAGE_PAT) and move PAT bit to correct position"
    refPfn = (l.entry & PMD_PFN_MASK) >> 12n;
    env.splits.pmd++;
  } else {
    refProt = l.entry & ~PUD_PFN_MASK;
    refPfn = (l.entry & PUD_PFN_MASK) >> 12n;
    pfnInc = 512n;
    if ((refProt & _PAGE_PRESENT) === 0n) refProt &= ~_PAGE_PSE;
    env.splits.pud++;
  }
  refProt = clearProtnone(refProt);
  const lpinc = l.level === 2 ? PAGE : PMD_SIZE;
  let lpaddr = address & ~(l.level === 2 ? PMD_SIZE - 1n : (1n << 30n) - 1n);
  let pfn = refPfn;
  for (let i = 0n; i < 512n; i++, pfn += pfnInc, lpaddr += lpinc) {
    let prot = refProt;
    // split_set_pte(): only when should_split_large_page() found an inconsistent mapping.
    if (cpa.forceStaticProt && l.level === 2) prot = staticProtections(env, refProt, lpaddr, pfn, 1n, 0n);
    pt.write(base + i * 8n, (pfn << 12n) | prot);
  }
  if (countsAsDirect(env, address)) splitPageCount(env, l.level);
  // "We use the standard kernel pagetable protections for the new pagetable protections"
  pt.write(l.ea, base | _KERNPG_TABLE);
}

/** __should_split_large_page(): 0 = handled in place (cpa.numpages updated), 1 = split it. */
function shouldSplitLargePage(env: CpaEnv, cpa: Cpa, l: Lookup, address: bigint): number {
  const psize = l.level === 2 ? PMD_SIZE : 1n << 30n;
  const mask = l.level === 2 ? PMD_PFN_MASK : PUD_PFN_MASK;
  const oldProt = l.entry & ~mask;
  const oldPfn = (l.entry & mask) >> 12n;
  // Pages of this large page from `address` on.
  const lpEnd = (address + psize) & ~(psize - 1n);
  const numpages = Number((lpEnd - address) >> 12n);
  if (numpages < cpa.numpages) cpa.numpages = numpages;

  let req = protLarge2_4k(oldProt);
  req &= ~cpa.maskClr;
  req |= cpa.maskSet;
  req = clearProtnone(prot4k_2_large(req));
  if ((req & _PAGE_PRESENT) !== 0n) req |= _PAGE_PSE;

  cpa.pfn = oldPfn + ((address & (psize - 1n)) >> 12n);
  const lpaddr = address & ~(psize - 1n);
  const lpPages = psize >> 12n;
  // The existing mapping must agree with the static protections, else split and enforce them.
  const chk = staticProtections(env, oldProt, lpaddr, oldPfn, lpPages, psize);
  if (chk !== oldProt) {
    cpa.forceStaticProt = true;
    return 1;
  }
  // "If the requested pgprot is the same as the current pgprot, then the large page can be preserved"
  if (req === oldProt) return 0;
  // "If the requested range does not cover the full page, split it up"
  if (address !== lpaddr || BigInt(cpa.numpages) !== lpPages) return 1;
  const np = clearProtnone(staticProtections(env, req, lpaddr, oldPfn, lpPages, psize));
  if (np !== req) return 1;
  env.pt.write(l.ea, (oldPfn << 12n) | np);
  return 0;
}

/** __change_page_attr(): one page, or one large page's worth. Returns false on a fault (-EFAULT). */
function changeOne(env: CpaEnv, cpa: Cpa, primary: boolean): boolean {
  const address = cpa.vaddr + BigInt(cpa.curpage) * PAGE;
  for (;;) {
    const l = lookupAddress(env.pt, address);
    if (!l || (l.entry & ~(_PAGE_ACCESSED | _PAGE_DIRTY)) === 0n || l.level > 3) {
      // __cpa_process_fault(): ignore non-primary paths and holes in the direct map.
      if (!primary) { cpa.numpages = 1; return true; }
      if (inDirectMap(env, address)) {
        cpa.numpages = 1;
        cpa.pfn = paOfDirect(env, address) >> 12n;
        return true;
      }
      return false;
    }
    if (l.level === 1) {
      const oldProt = l.entry & ~PTE_PFN_MASK;
      const pfn = (l.entry & PTE_PFN_MASK) >> 12n;
      let np = (oldProt & ~cpa.maskClr) | cpa.maskSet;
      np = clearProtnone(staticProtections(env, np, address, pfn, 1n, 0n)); // lpsize 0 enforces the protections
      const ne = (pfn << 12n) | np;
      if (ne !== l.entry) env.pt.write(l.ea, ne);
      cpa.pfn = pfn;
      cpa.numpages = 1;
      return true;
    }
    const split = shouldSplitLargePage(env, cpa, l, address);
    if (split === 0) return true;
    splitLargePage(env, cpa, l, address);
  }
}

/** cpa_process_alias(): repeat the change on the other mapping of the same physical page. */
function processAlias(env: CpaEnv, cpa: Cpa): void {
  if (!pfnRangeIsMapped(env, cpa.pfn, cpa.pfn + 1n)) return;
  const vaddr = cpa.vaddr + BigInt(cpa.curpage) * PAGE;
  // "Directmap always has NX set, do not modify" / "[_text, _brk_end) also covers data, do not modify NX"
  const set = env.masks.supported & _PAGE_NX ? cpa.maskSet & ~_PAGE_NX : cpa.maskSet;
  const clr = env.masks.supported & _PAGE_NX ? cpa.maskClr & ~_PAGE_NX : cpa.maskClr;
  if (!inDirectMap(env, vaddr)) {
    const alias: Cpa = { ...cpa, vaddr: env.pageOffset + (cpa.pfn << 12n), curpage: 0, maskSet: set, maskClr: clr };
    changeSetClr(env, alias, false);
  }
  if (!(vaddr >= env.text && vaddr < env.brkEnd) && pfnInHighmap(env, cpa.pfn)) {
    const alias: Cpa = { ...cpa, vaddr: (cpa.pfn << 12n) + START_KERNEL_MAP - env.physBase, curpage: 0, maskSet: set, maskClr: clr };
    changeSetClr(env, alias, false); // "The high mapping range is imprecise, so ignore the return value"
  }
}

/** __change_page_attr_set_clr(). */
function changeSetClr(env: CpaEnv, cpa: Cpa, primary: boolean): boolean {
  if ((cpa.maskSet | cpa.maskClr) === 0n) return true; // "No changes, easy!"
  const total = cpa.numpages;
  let rem = total;
  while (rem > 0) {
    cpa.numpages = rem;
    if (!changeOne(env, cpa, primary)) { cpa.numpages = total; return false; }
    if (primary && !cpa.noCheckAlias) processAlias(env, cpa);
    rem -= cpa.numpages;
    cpa.curpage += cpa.numpages;
  }
  cpa.numpages = total;
  return true;
}

/** change_page_attr_set_clr() for `numpages` pages from `va`. Returns false when a page of the primary range was not mapped. */
export function changePageAttr(env: CpaEnv, what: string, va: bigint, numpages: number, maskSet: bigint, maskClr: bigint, noAlias = false): boolean {
  if (numpages <= 0) return true;
  env.log?.push({ what, va, pages: numpages });
  // "No alias checking for _NX bit modifications"
  const checkAlias = (maskSet | maskClr) !== _PAGE_NX && !noAlias;
  const cpa: Cpa = {
    vaddr: va & ~(PAGE - 1n), numpages, maskSet, maskClr, curpage: 0, pfn: 0n, forceStaticProt: false, noCheckAlias: !checkAlias,
  };
  return changeSetClr(env, cpa, true);
}

const pages = (start: bigint, end: bigint) => Number((end - start) >> 12n);

// The set_memory_*() entry points (set_memory.c), by start and end VA (both page aligned).
export const setMemoryRo = (env: CpaEnv, s: bigint, e: bigint) => changePageAttr(env, 'set_memory_ro', s, pages(s, e), 0n, _PAGE_RW);
export const setMemoryRw = (env: CpaEnv, s: bigint, e: bigint) => changePageAttr(env, 'set_memory_rw', s, pages(s, e), _PAGE_RW, 0n);
/** set_memory_nx()/_x() do nothing without NX support. */
export const setMemoryNx = (env: CpaEnv, s: bigint, e: bigint) => (env.masks.supported & _PAGE_NX) === 0n || changePageAttr(env, 'set_memory_nx', s, pages(s, e), _PAGE_NX, 0n);
export const setMemoryX = (env: CpaEnv, s: bigint, e: bigint) => (env.masks.supported & _PAGE_NX) === 0n || changePageAttr(env, 'set_memory_x', s, pages(s, e), 0n, _PAGE_NX);
export const setMemoryNp = (env: CpaEnv, s: bigint, e: bigint) => changePageAttr(env, 'set_memory_np', s, pages(s, e), 0n, _PAGE_PRESENT);
/** set_memory_np_noalias(): CPA_NO_CHECK_ALIAS, the direct map keeps the page. */
export const setMemoryNpNoalias = (env: CpaEnv, s: bigint, e: bigint) => changePageAttr(env, 'set_memory_np_noalias', s, pages(s, e), 0n, _PAGE_PRESENT, true);
export const setMemoryGlobal = (env: CpaEnv, s: bigint, e: bigint) => changePageAttr(env, 'set_memory_global', s, pages(s, e), _PAGE_GLOBAL, 0n);
export const setMemoryNonglobal = (env: CpaEnv, s: bigint, e: bigint) => changePageAttr(env, 'set_memory_nonglobal', s, pages(s, e), 0n, _PAGE_GLOBAL);
