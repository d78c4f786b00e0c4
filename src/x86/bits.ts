/**
 * Architectural bit definitions, Intel SDM Vol. 3A ch. 2 (control registers) and ch. 4 (paging).
 *
 * A 64-bit paging-structure entry is handled as two u32 halves:
 *
 *   lo (bits 31:0)                                hi (bits 63:32)
 *   31          12 11 9 8 7  6 5 4   3   2   1 0  31 30    27 26          20 19         0
 *  +--------------+----+-+--+-+-+---+---+---+--+-+ +--+--------+--------------+------------+
 *  | addr 31:12   |ign |G|PS|D|A|PCD|PWT|U/S|RW|P| |XD| PK 3:0 | ignored      | addr 51:32 |
 *  +--------------+----+-+--+-+-+---+---+---+--+-+ +--+--------+--------------+------------+
 *
 * PS is bit 7 in PDPTEs and PDEs; in a PTE bit 7 is PAT (SDM 4.5, tables 4-15..4-20).
 * Bits 51:MAXPHYADDR of the address field are reserved. Protection keys occupy 62:59
 * only when CR4.PKE or CR4.PKS is set (SDM 4.6.2); otherwise those bits are ignored.
 */

// Entry bits in the low half (SDM tables 4-15..4-20).
export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_PWT = 1 << 3;
export const PTE_PCD = 1 << 4;
export const PTE_A = 1 << 5;
export const PTE_D = 1 << 6;
export const PTE_PS = 1 << 7; // PAT in a 4 KiB PTE
export const PTE_G = 1 << 8;
export const PTE_ADDR_LO_MASK = 0xfffff000;

// Entry bits in the high half.
export const PTE_HI_XD = 0x80000000; // bit 63
export const PTE_HI_PK_SHIFT = 27; // bits 62:59
export const PTE_HI_PK_MASK = 0xf;
export const PTE_HI_ADDR_MASK = 0x000fffff; // bits 51:32

// Reserved address bits of large leaves (SDM tables 4-17, 4-19): 1 GiB: 29:13, 2 MiB: 20:13.
// Bit 12 is the PAT bit of a large leaf.
export const PDPTE_1G_RSVD_LO = 0x3fffe000;
export const PDE_2M_RSVD_LO = 0x001fe000;
export const PDPTE_1G_ADDR_LO_MASK = 0xc0000000;
export const PDE_2M_ADDR_LO_MASK = 0xffe00000;

// #PF error code (SDM 4.7, figure 4-12).
export const PFEC_P = 1 << 0;
export const PFEC_W = 1 << 1;
export const PFEC_U = 1 << 2;
export const PFEC_RSVD = 1 << 3;
export const PFEC_ID = 1 << 4;
export const PFEC_PK = 1 << 5;

export const VECTOR_GP = 13;
export const VECTOR_PF = 14;

// Control registers (SDM 2.5).
export const CR0_PE = 1 << 0;
export const CR0_WP = 1 << 16;
export const CR0_PG = 0x80000000;

export const CR4_PAE = 1 << 5;
export const CR4_PGE = 1 << 7;
export const CR4_LA57 = 1 << 12;
export const CR4_PCIDE = 1 << 17;
export const CR4_SMEP = 1 << 20;
export const CR4_SMAP = 1 << 21;
export const CR4_PKE = 1 << 22;
export const CR4_PKS = 1 << 24;

// IA32_EFER (SDM 2.2.1).
export const EFER_SCE = 1 << 0;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;
export const EFER_NXE = 1 << 11;

export const RFLAGS_AC = 1 << 18;

// CR3 with CR4.PCIDE=1 (SDM 4.10.4.1): bits 11:0 are the PCID; bit 63 on a write asks not to flush.
export const CR3_PCID_MASK = 0xfff;
export const CR3_NOFLUSH_HI = 0x80000000;

/**
 * Access kinds, as a small bit set so the walker can test them with one AND.
 * IMPLICIT marks supervisor-mode accesses made implicitly (descriptor tables, SDM 4.6),
 * which are supervisor accesses whatever the CPL.
 */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_FETCH = 2;
export const ACCESS_IMPLICIT = 4;

export const PAGE_SHIFT_4K = 12;
export const PAGE_SHIFT_2M = 21;
export const PAGE_SHIFT_1G = 30;
