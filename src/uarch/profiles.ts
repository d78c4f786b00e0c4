/**
 * Named CPU profiles. Every value is written next to where it comes from (`[value, source]`);
 * a source starting with "assumption:" marks a value no public document pins down. The bug
 * set is never written by hand: buildProfile() derives it with the kernel's own rules
 * (vulnerability.ts, a port of cpu_set_bug_bits()) from the identity, features and
 * IA32_ARCH_CAPABILITIES bits.
 */
import type { CacheGeometry } from './cache.ts';
import { ARCH_CAP, deriveBugs, type ArchCapName, type BugName, type Vendor } from './vulnerability.ts';

export const FEATURE_NAMES = [
  'pcid', 'invpcid', 'la57', 'rtm', 'flushL1d', 'mdClear', 'pku', 'smep', 'smap', 'gbpages', 'archCapabilities',
  'fsgsbase', 'rdrand', 'rdseed', 'avx', 'hypervisor', 'vmx', 'ept', 'svm', 'autoIbrs', 'amdSsbNo', 'btcNo', 'srsoNo',
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

type Src<T> = readonly [T, string];
type VendorId = 'GenuineIntel' | 'AuthenticAMD';

export interface ProfileSpec {
  name: string;
  description: string;
  vendor: Src<VendorId>;
  family: Src<number>;
  model: Src<number>;
  stepping: Src<number>;
  l1dSizeBytes: Src<number>;
  l1dWays: Src<number>;
  /** L1 instruction cache, shared by a core's hardware threads (sim/code-warmth.ts). */
  l1iSizeBytes: Src<number>;
  lfbEntries: Src<number>;
  loadPorts: Src<number>;
  storeBufferEntries: Src<number>;
  /** Second-level TLB (Intel STLB, AMD L2 DTLB) for 4 KiB and 2 MiB pages: entries (0 = none) and ways. */
  stlbEntries: Src<number>;
  stlbWays: Src<number>;
  /**
   * First-level instruction TLB per core (x86/mmu.ts splitFetch): 4 KiB entries (0 = none: fetches
   * share the data TLB) and ways, 2 MiB entries (fully associative); a second-level ITLB of its own
   * (AMD's L2 ITLB; 0 = fetches that miss go to the STLB, Intel's, which serves both).
   */
  itlb4KEntries: Src<number>;
  itlb4KWays: Src<number>;
  itlb2MEntries: Src<number>;
  l2ItlbEntries: Src<number>;
  l2ItlbWays: Src<number>;
  /** Whether walks start below the top level from paging-structure caches (x86/pwc.ts; sizes PWC_GEOMETRY there). */
  pagingStructureCaches: Src<boolean>;
  smt: Src<boolean>;
  /** A core's throughput with both hardware threads busy over one thread alone (sim/smt.ts). */
  smtSpeedup: Src<number>;
  maxPhysBits: Src<number>;
  features: Record<FeatureName, Src<boolean>>;
  archCapabilities: Src<ArchCapName[]>;
}

export interface CpuProfile {
  name: string;
  description: string;
  vendor: VendorId;
  family: number;
  model: number;
  stepping: number;
  l1d: CacheGeometry;
  /** L1 instruction cache size (bytes), shared by the core's threads. */
  l1iSizeBytes: number;
  lfbEntries: number;
  loadPorts: number;
  storeBufferEntries: number;
  /** Second-level TLB entries for 4 KiB and 2 MiB pages (0: none) and its ways (x86/mmu.ts `stlb`). */
  stlbEntries: number;
  stlbWays: number;
  /** First-level ITLB per core (0 entries: none) and a second-level ITLB of its own (0: the STLB serves fetches). */
  itlb4KEntries: number;
  itlb4KWays: number;
  itlb2MEntries: number;
  l2ItlbEntries: number;
  l2ItlbWays: number;
  /** Paging-structure caches (x86/pwc.ts): false = every walk loads every level (QEMU). */
  pagingStructureCaches: boolean;
  /** Two hardware threads per core. */
  smt: boolean;
  /** A core's throughput with both threads busy over one thread alone (1 = no gain). */
  smtSpeedup: number;
  maxPhysBits: number;
  features: Readonly<Record<FeatureName, boolean>>;
  /** IA32_ARCH_CAPABILITIES as a Number (all modelled bits are below 2^29); 0 without the MSR. */
  archCapabilities: number;
  archCapabilityNames: readonly ArchCapName[];
  /** The X86_BUG_* set Linux derives for this CPU, by /proc/cpuinfo name. */
  bugs: ReadonlySet<BugName>;
  /** X86_FEATURE_IBRS_ENHANCED as cpu_set_bug_bits() forces it. */
  ibrsEnhanced: boolean;
  /** Where each value comes from, by field path ("l1d.ways", "features.pcid", ...). */
  sources: Readonly<Record<string, string>>;
}

const VENDOR_CODE: Record<VendorId, Vendor> = { GenuineIntel: 'intel', AuthenticAMD: 'amd' };

/** Flatten a spec, check it, and derive its bugs. */
export function buildProfile(spec: ProfileSpec): CpuProfile {
  const sources: Record<string, string> = {};
  const take = <T>(path: string, [v, src]: Src<T>): T => {
    if (!src) throw new RangeError(`profile ${spec.name}: ${path} has no source`);
    sources[path] = src;
    return v;
  };
  const features = {} as Record<FeatureName, boolean>;
  for (const f of FEATURE_NAMES) features[f] = take(`features.${f}`, spec.features[f]);
  const names = take('archCapabilities', spec.archCapabilities);
  if (names.length > 0 && !features.archCapabilities) {
    throw new RangeError(`profile ${spec.name}: IA32_ARCH_CAPABILITIES bits given but the CPU does not enumerate the MSR`);
  }
  let archCapabilities = 0;
  for (const n of names) archCapabilities |= ARCH_CAP[n];
  const p = {
    name: spec.name,
    description: spec.description,
    vendor: take('vendor', spec.vendor),
    family: take('family', spec.family),
    model: take('model', spec.model),
    stepping: take('stepping', spec.stepping),
    l1d: { sizeBytes: take('l1d.sizeBytes', spec.l1dSizeBytes), ways: take('l1d.ways', spec.l1dWays) },
    l1iSizeBytes: take('l1iSizeBytes', spec.l1iSizeBytes),
    lfbEntries: take('lfbEntries', spec.lfbEntries),
    loadPorts: take('loadPorts', spec.loadPorts),
    stlbEntries: take('stlbEntries', spec.stlbEntries),
    stlbWays: take('stlbWays', spec.stlbWays),
    itlb4KEntries: take('itlb4KEntries', spec.itlb4KEntries),
    itlb4KWays: take('itlb4KWays', spec.itlb4KWays),
    itlb2MEntries: take('itlb2MEntries', spec.itlb2MEntries),
    l2ItlbEntries: take('l2ItlbEntries', spec.l2ItlbEntries),
    l2ItlbWays: take('l2ItlbWays', spec.l2ItlbWays),
    pagingStructureCaches: take('pagingStructureCaches', spec.pagingStructureCaches),
    storeBufferEntries: take('storeBufferEntries', spec.storeBufferEntries),
    smt: take('smt', spec.smt),
    smtSpeedup: take('smtSpeedup', spec.smtSpeedup),
    maxPhysBits: take('maxPhysBits', spec.maxPhysBits),
    features,
    archCapabilities,
    archCapabilityNames: [...names],
    sources,
  };
  const { bugs, ibrsEnhanced } = deriveBugs({
    vendor: VENDOR_CODE[p.vendor], family: p.family, model: p.model, stepping: p.stepping, archCapabilities,
    rtm: features.rtm, rdrand: features.rdrand, rdseed: features.rdseed, avx: features.avx,
    hypervisor: features.hypervisor, autoIbrs: features.autoIbrs, amdSsbNo: features.amdSsbNo,
    btcNo: features.btcNo, srsoNo: features.srsoNo,
  });
  return { ...p, bugs, ibrsEnhanced };
}

// Sources used more than once.
const SDM_CPUID = 'Intel SDM Vol. 2A, CPUID';
const INTEL_OPT = 'Intel 64 and IA-32 Architectures Optimization Reference Manual (248966)';
const AMD_SOG19 = 'AMD Software Optimization Guide for AMD Family 19h Processors (56665)';
const HT_ITJ = 'Marr et al., "Hyper-Threading Technology Architecture and Microarchitecture", Intel Technology Journal 6(1), 2002: performance gains of up to 30% on common server application benchmarks';
const SMT_INTEL: Src<number> = [1.25, `assumption: 1.25, inside Intel's "up to 30%" (${HT_ITJ}) for a syscall- and cache-heavy server mix (OLTP); the same core width since Skylake`];
const SMT_AMD: Src<number> = [1.25, `assumption: no AMD figure for a server mix at hand; Intel's (${HT_ITJ}) used for Zen's two threads per core`];
/** Intel's and AMD's cores cache upper-level paging-structure entries; the sizes are x86/pwc.ts's assumption. */
const PWC_SPEC: Src<boolean> = [true, 'Intel SDM Vol. 3A 4.10.3 (PML4E, PDPTE and PDE caches on Intel 64 processors); AMD\'s cores are taken to cache upper-level entries likewise (assumption: AMD documents a page walk cache, no sizes). Sizes: x86/pwc.ts PWC_GEOMETRY, an assumption'];
const ASSUME_LFB_INTEL = 'assumption: Intel does not publish the fill-buffer count; 12 as measured on Skylake-family cores (Haswell had 10)';

/** The Intel server features common to the four Xeon generations, overridden where they differ. */
function intelServerFeatures(over: Partial<Record<FeatureName, Src<boolean>>>): Record<FeatureName, Src<boolean>> {
  return {
    pcid: [true, `${SDM_CPUID} leaf 01H ECX[17]; present on all Xeon Scalable`],
    invpcid: [true, `${SDM_CPUID} leaf 07H EBX[10]; present since Haswell`],
    la57: [false, 'Intel 5-level paging white paper (335252): first supported by Ice Lake server'],
    rtm: [true, 'ark.intel.com: Intel TSX-NI supported'],
    flushL1d: [true, 'Intel L1TF guidance: microcode enumerates IA32_FLUSH_CMD (CPUID.07H:EDX[28])'],
    mdClear: [true, 'Intel MDS guidance: microcode enumerates MD_CLEAR (CPUID.07H:EDX[10])'],
    pku: [true, 'SDM Vol. 3A 4.6.2: protection keys, introduced with Skylake server'],
    smep: [true, `${SDM_CPUID} leaf 07H EBX[7]; since Ivy Bridge`],
    smap: [true, `${SDM_CPUID} leaf 07H EBX[20]; since Broadwell`],
    gbpages: [true, `${SDM_CPUID} leaf 80000001H EDX[26]`],
    archCapabilities: [true, `${SDM_CPUID} leaf 07H EDX[29]: IA32_ARCH_CAPABILITIES enumerated (microcode)`],
    fsgsbase: [true, `${SDM_CPUID} leaf 07H EBX[0]; since Ivy Bridge`],
    rdrand: [true, `${SDM_CPUID} leaf 01H ECX[30]`],
    rdseed: [true, `${SDM_CPUID} leaf 07H EBX[18]; since Broadwell`],
    avx: [true, `${SDM_CPUID} leaf 01H ECX[28]`],
    hypervisor: [false, 'bare metal'],
    vmx: [true, 'ark.intel.com: Intel VT-x'],
    ept: [true, 'ark.intel.com: VT-x with Extended Page Tables'],
    svm: [false, 'AMD-V only'],
    autoIbrs: [false, 'AMD-only feature'],
    amdSsbNo: [false, 'AMD-only CPUID bit'],
    btcNo: [false, 'AMD-only CPUID bit'],
    srsoNo: [false, 'AMD-only CPUID bit'],
    ...over,
  };
}

function amdFeatures(over: Partial<Record<FeatureName, Src<boolean>>>): Record<FeatureName, Src<boolean>> {
  return {
    pcid: [true, 'assumption: EPYC 7003/9004 /proc/cpuinfo lists pcid (Zen 3 is the first AMD core with PCID and INVPCID)'],
    invpcid: [true, 'assumption: EPYC 7003/9004 /proc/cpuinfo lists invpcid'],
    la57: [false, 'AMD APM Vol. 2 5.3: 5-level paging first on Zen 4'],
    rtm: [false, 'AMD implements no TSX'],
    flushL1d: [false, 'IA32_FLUSH_CMD is not enumerated by AMD CPUs (cpufeatures flush_l1d absent)'],
    mdClear: [false, 'AMD is not affected by MDS and does not enumerate MD_CLEAR (mds.rst)'],
    pku: [true, 'AMD APM Vol. 2 5.6.7: memory protection keys, since Zen 3'],
    smep: [true, 'AMD APM CPUID Fn0000_0007 EBX[7]'],
    smap: [true, 'AMD APM CPUID Fn0000_0007 EBX[20]'],
    gbpages: [true, 'AMD APM CPUID Fn8000_0001 EDX[26]'],
    archCapabilities: [false, 'IA32_ARCH_CAPABILITIES is Intel-only (CPUID.07H:EDX[29])'],
    fsgsbase: [true, 'AMD APM CPUID Fn0000_0007 EBX[0]'],
    rdrand: [true, 'AMD APM CPUID Fn0000_0001 ECX[30]'],
    rdseed: [true, 'AMD APM CPUID Fn0000_0007 EBX[18]'],
    avx: [true, 'AMD APM CPUID Fn0000_0001 ECX[28]'],
    hypervisor: [false, 'bare metal'],
    vmx: [false, 'Intel VT-x only'],
    ept: [false, 'Intel VT-x only (AMD has NPT)'],
    svm: [true, 'AMD APM CPUID Fn8000_0001 ECX[2]'],
    autoIbrs: [false, 'AMD APM CPUID Fn8000_0021 EAX[8]: Automatic IBRS, first on Zen 4'],
    amdSsbNo: [false, 'AMD: Zen 3/4 are affected by Speculative Store Bypass and enumerate SSBD instead'],
    btcNo: [false, 'assumption: not modelled; family 19h is not on the kernel RETBLEED list, so it changes nothing'],
    srsoNo: [false, 'AMD-SB-7005: Zen 3 and Zen 4 are affected by SRSO'],
    ...over,
  };
}

export const PROFILE_SPECS: readonly ProfileSpec[] = [
  {
    name: 'skylake-sp',
    description: 'Intel Xeon Scalable 1st gen (Skylake-SP, e.g. Platinum 8180)',
    vendor: ['GenuineIntel', 'ark.intel.com'],
    family: [6, 'intel-family.h INTEL_FAM6_SKYLAKE_X = 06_55H'],
    model: [0x55, 'intel-family.h INTEL_FAM6_SKYLAKE_X'],
    stepping: [4, 'Intel Xeon Scalable specification update: stepping 4 (H0/M0/U0)'],
    l1dSizeBytes: [32 * 1024, `${INTEL_OPT}, Skylake server: 32 KiB L1D`],
    l1dWays: [8, `${INTEL_OPT}, Skylake server: 8-way L1D`],
    l1iSizeBytes: [32 * 1024, `${INTEL_OPT}, Skylake server: 32 KiB L1I`],
    lfbEntries: [12, ASSUME_LFB_INTEL],
    loadPorts: [2, `${INTEL_OPT}, Skylake: two load ports (2 and 3)`],
    storeBufferEntries: [56, `${INTEL_OPT}, Skylake: 56-entry store buffer`],
    stlbEntries: [1536, `${INTEL_OPT}, Table 2-15 (Skylake server has the client's TLBs): STLB of 1536 entries shared by 4 KiB and 2 MiB pages`],
    stlbWays: [12, `${INTEL_OPT}, Table 2-15: 12-way STLB`],
    itlb4KEntries: [128, `${INTEL_OPT}, Table 2-15: ITLB of 128 entries for 4 KiB pages, fixed partition between the threads`],
    itlb4KWays: [8, `${INTEL_OPT}, Table 2-15: 8-way ITLB`],
    itlb2MEntries: [16, `${INTEL_OPT}, Table 2-15: 8 ITLB entries for 2/4 MiB pages per thread, fully associative`],
    l2ItlbEntries: [0, `${INTEL_OPT}, Table 2-15: the STLB serves instruction and data misses`],
    l2ItlbWays: [1, 'no second-level ITLB of its own'],
    pagingStructureCaches: PWC_SPEC,
    smt: [true, 'ark.intel.com: Hyper-Threading'],
    smtSpeedup: SMT_INTEL,
    maxPhysBits: [46, 'assumption: /proc/cpuinfo "46 bits physical" as Xeon Scalable report'],
    features: intelServerFeatures({
      rtm: [true, 'ark.intel.com: TSX-NI; MDS_NO=0 parts get no TSX_CTRL, so tsx= cannot turn it off (tsx_async_abort.rst)'],
    }),
    archCapabilities: [[], 'assumption: no *_NO bit (Intel lists Skylake-SP as affected by Meltdown, L1TF, MDS, TAA, iTLB multihit); informational bits not modelled'],
  },
  {
    name: 'cascade-lake',
    description: 'Intel Xeon Scalable 2nd gen (Cascade Lake, e.g. Platinum 8280)',
    vendor: ['GenuineIntel', 'ark.intel.com'],
    family: [6, 'intel-family.h: Cascade Lake shares INTEL_FAM6_SKYLAKE_X = 06_55H'],
    model: [0x55, 'intel-family.h INTEL_FAM6_SKYLAKE_X'],
    stepping: [7, 'Intel Xeon Scalable 2nd gen specification update: stepping 7 (B1)'],
    l1dSizeBytes: [32 * 1024, `${INTEL_OPT}, Skylake server core (Cascade Lake is the same core): 32 KiB`],
    l1dWays: [8, `${INTEL_OPT}, Skylake server core: 8-way`],
    l1iSizeBytes: [32 * 1024, `${INTEL_OPT}, Skylake server core (Cascade Lake is the same core): 32 KiB L1I`],
    lfbEntries: [12, ASSUME_LFB_INTEL],
    loadPorts: [2, `${INTEL_OPT}, Skylake core: two load ports`],
    storeBufferEntries: [56, `${INTEL_OPT}, Skylake core: 56-entry store buffer`],
    stlbEntries: [1536, `${INTEL_OPT}, Table 2-15 (the Skylake server core): STLB of 1536 entries for 4 KiB and 2 MiB pages`],
    stlbWays: [12, `${INTEL_OPT}, Table 2-15: 12-way STLB`],
    itlb4KEntries: [128, `${INTEL_OPT}, Table 2-15: ITLB of 128 entries for 4 KiB pages, fixed partition between the threads`],
    itlb4KWays: [8, `${INTEL_OPT}, Table 2-15: 8-way ITLB`],
    itlb2MEntries: [16, `${INTEL_OPT}, Table 2-15: 8 ITLB entries for 2/4 MiB pages per thread, fully associative`],
    l2ItlbEntries: [0, `${INTEL_OPT}, Table 2-15: the STLB serves instruction and data misses`],
    l2ItlbWays: [1, 'no second-level ITLB of its own'],
    pagingStructureCaches: PWC_SPEC,
    smt: [true, 'ark.intel.com: Hyper-Threading'],
    smtSpeedup: SMT_INTEL,
    maxPhysBits: [46, 'assumption: /proc/cpuinfo "46 bits physical" as Xeon Scalable report'],
    features: intelServerFeatures({
      mdClear: [true, 'tsx_async_abort.rst table: MDS_NO=1 MD_CLEAR=1 TSX_CTRL_MSR=1 "TAA can be mitigated by VERW"'],
    }),
    archCapabilities: [['RDCL_NO', 'IBRS_ALL', 'SKIP_VMENTRY_L1DFLUSH', 'MDS_NO', 'TSX_CTRL_MSR', 'FB_CLEAR'],
      'Intel affected-processor list: Cascade Lake has hardware fixes for Meltdown/L1TF/MDS (RDCL_NO, MDS_NO) and eIBRS (IBRS_ALL), is affected by TAA (TAA_NO=0), iTLB multihit (PSCHANGE_MC_NO=0) and MMIO stale data; TSX_CTRL from the 2019 microcode (tsx_async_abort.rst), FB_CLEAR from the 2022 MMIO microcode (msr-index.h "VERW clears CPU fill buffer even on MDS_NO CPUs"); SKIP_VMENTRY_L1DFLUSH is an assumption'],
  },
  {
    name: 'ice-lake-sp',
    description: 'Intel Xeon Scalable 3rd gen (Ice Lake-SP, e.g. Platinum 8380)',
    vendor: ['GenuineIntel', 'ark.intel.com'],
    family: [6, 'intel-family.h INTEL_FAM6_ICELAKE_X = 06_6AH'],
    model: [0x6a, 'intel-family.h INTEL_FAM6_ICELAKE_X'],
    stepping: [6, 'Intel Xeon Scalable 3rd gen specification update: stepping 6 (D2)'],
    l1dSizeBytes: [48 * 1024, `${INTEL_OPT}, Sunny Cove: 48 KiB L1D`],
    l1dWays: [12, `${INTEL_OPT}, Sunny Cove: 12-way L1D`],
    l1iSizeBytes: [32 * 1024, `${INTEL_OPT}, Sunny Cove: 32 KiB L1I`],
    lfbEntries: [12, 'assumption: fill-buffer count not published for Sunny Cove; kept at 12'],
    loadPorts: [2, `${INTEL_OPT}, Sunny Cove: two loads per cycle`],
    storeBufferEntries: [72, `${INTEL_OPT}, Sunny Cove: 72-entry store buffer`],
    stlbEntries: [2048, `${INTEL_OPT}, Sunny Cove: STLB of 2048 entries for 4 KiB and 2 MiB pages`],
    stlbWays: [16, 'assumption: 16-way, Skylake\'s 128 sets with the larger capacity'],
    itlb4KEntries: [128, `${INTEL_OPT}, Sunny Cove: ITLB of 128 entries for 4 KiB pages`],
    itlb4KWays: [8, `${INTEL_OPT}, Sunny Cove: 8-way ITLB`],
    itlb2MEntries: [16, `${INTEL_OPT}, Sunny Cove: 16 ITLB entries for 2/4 MiB pages`],
    l2ItlbEntries: [0, `${INTEL_OPT}: the STLB serves instruction and data misses`],
    l2ItlbWays: [1, 'no second-level ITLB of its own'],
    pagingStructureCaches: PWC_SPEC,
    smt: [true, 'ark.intel.com: Hyper-Threading'],
    smtSpeedup: SMT_INTEL,
    maxPhysBits: [46, 'assumption: /proc/cpuinfo "46 bits physical, 57 bits virtual" on Ice Lake-SP'],
    features: intelServerFeatures({
      la57: [true, 'Intel 5-level paging white paper (335252): Ice Lake server supports LA57'],
      rtm: [true, 'assumption: TSX left enabled by firmware'],
    }),
    archCapabilities: [['RDCL_NO', 'IBRS_ALL', 'SKIP_VMENTRY_L1DFLUSH', 'MDS_NO', 'PSCHANGE_MC_NO', 'TSX_CTRL_MSR', 'TAA_NO', 'FB_CLEAR'],
      'Intel affected-processor list: Ice Lake-SP not affected by Meltdown, L1TF, MDS, TAA, iTLB multihit; affected by MMIO stale data (FB_CLEAR from the 2022 microcode); SKIP_VMENTRY_L1DFLUSH is an assumption'],
  },
  {
    name: 'sapphire-rapids',
    description: 'Intel Xeon Scalable 4th gen (Sapphire Rapids, e.g. Platinum 8480+)',
    vendor: ['GenuineIntel', 'ark.intel.com'],
    family: [6, 'intel-family.h INTEL_FAM6_SAPPHIRERAPIDS_X = 06_8FH'],
    model: [0x8f, 'intel-family.h INTEL_FAM6_SAPPHIRERAPIDS_X'],
    stepping: [8, 'Intel Xeon Scalable 4th gen specification update: stepping 8 (E5)'],
    l1dSizeBytes: [48 * 1024, `${INTEL_OPT}, Golden Cove: 48 KiB L1D`],
    l1dWays: [12, `${INTEL_OPT}, Golden Cove: 12-way L1D`],
    l1iSizeBytes: [32 * 1024, `${INTEL_OPT}, Golden Cove: 32 KiB L1I`],
    lfbEntries: [16, 'assumption: 16 fill buffers for Golden Cove as presented at Intel Architecture Day 2021'],
    loadPorts: [3, `${INTEL_OPT}, Golden Cove: three load ports`],
    storeBufferEntries: [114, 'Intel Architecture Day 2021, Golden Cove: 114-entry store buffer'],
    stlbEntries: [2048, `${INTEL_OPT}, Golden Cove: STLB of 2048 entries for 4 KiB and 2 MiB pages`],
    stlbWays: [16, 'assumption: 16-way, Skylake\'s 128 sets with the larger capacity'],
    itlb4KEntries: [256, `${INTEL_OPT}, Golden Cove: ITLB of 256 entries for 4 KiB pages`],
    itlb4KWays: [8, `${INTEL_OPT}, Golden Cove: 8-way ITLB`],
    itlb2MEntries: [32, `${INTEL_OPT}, Golden Cove: 32 ITLB entries for 2/4 MiB pages`],
    l2ItlbEntries: [0, `${INTEL_OPT}: the STLB serves instruction and data misses`],
    l2ItlbWays: [1, 'no second-level ITLB of its own'],
    pagingStructureCaches: PWC_SPEC,
    smt: [true, 'ark.intel.com: Hyper-Threading'],
    smtSpeedup: SMT_INTEL,
    maxPhysBits: [46, 'assumption: /proc/cpuinfo "46 bits physical, 57 bits virtual" on Sapphire Rapids'],
    features: intelServerFeatures({
      la57: [true, 'Intel 5-level paging white paper (335252): supported since Ice Lake server'],
    }),
    archCapabilities: [['RDCL_NO', 'IBRS_ALL', 'SKIP_VMENTRY_L1DFLUSH', 'MDS_NO', 'PSCHANGE_MC_NO', 'TSX_CTRL_MSR', 'TAA_NO', 'SBDR_SSDP_NO', 'FBSDP_NO', 'PSDP_NO', 'GDS_NO', 'RFDS_NO'],
      'Intel affected-processor list: Sapphire Rapids not affected by Meltdown, L1TF, MDS, TAA, iTLB multihit, MMIO stale data, GDS, RFDS; SKIP_VMENTRY_L1DFLUSH is an assumption'],
  },
  {
    name: 'zen3',
    description: 'AMD EPYC 7003 (Zen 3, Milan, e.g. EPYC 7763)',
    vendor: ['AuthenticAMD', 'AMD'],
    family: [0x19, 'AMD Revision Guide for Family 19h Models 00h-0Fh (56683)'],
    model: [0x01, 'AMD Revision Guide 56683: Milan is model 01h'],
    stepping: [1, 'AMD Revision Guide 56683: B1 = stepping 1'],
    l1dSizeBytes: [32 * 1024, `${AMD_SOG19}: 32 KiB L1D`],
    l1dWays: [8, `${AMD_SOG19}: 8-way L1D`],
    l1iSizeBytes: [32 * 1024, `${AMD_SOG19}: 32 KiB L1I`],
    lfbEntries: [24, 'assumption: 24 outstanding L1D misses per core (AMD miss-address buffers)'],
    loadPorts: [3, `${AMD_SOG19}: up to three loads per cycle`],
    storeBufferEntries: [64, `${AMD_SOG19}: 64-entry store queue`],
    stlbEntries: [2048, `${AMD_SOG19}: L2 DTLB of 2048 entries`],
    stlbWays: [16, 'assumption: 16-way (associativity not given); 128 sets as the Intel STLBs'],
    itlb4KEntries: [64, `${AMD_SOG19}: L1 ITLB of 64 entries, fully associative, all page sizes`],
    itlb4KWays: [64, `${AMD_SOG19}: fully associative`],
    itlb2MEntries: [64, `${AMD_SOG19}: the same 64 entries hold 2 MiB pages (each size gets them all here: an over-estimate only when both sizes fill it at once)`],
    l2ItlbEntries: [512, `${AMD_SOG19}: L2 ITLB of 512 entries for 4 KiB and 2 MiB pages (1 GiB pages smashed to 2 MiB)`],
    l2ItlbWays: [8, '7-cpu.com Zen 2 (the Zen 3/4 L2 ITLB has the same size): 8-way'],
    pagingStructureCaches: PWC_SPEC,
    smt: [true, 'AMD: two threads per core (SMT)'],
    smtSpeedup: SMT_AMD,
    maxPhysBits: [48, 'assumption: /proc/cpuinfo "48 bits physical" on EPYC 7003 without SME'],
    features: amdFeatures({}),
    archCapabilities: [[], 'no IA32_ARCH_CAPABILITIES on AMD'],
  },
  {
    name: 'zen4',
    description: 'AMD EPYC 9004 (Zen 4, Genoa, e.g. EPYC 9654)',
    vendor: ['AuthenticAMD', 'AMD'],
    family: [0x19, 'AMD Revision Guide for Family 19h Models 10h-1Fh (57095)'],
    model: [0x11, 'AMD Revision Guide 57095: Genoa is model 11h'],
    stepping: [1, 'AMD Revision Guide 57095: B1 = stepping 1'],
    l1dSizeBytes: [32 * 1024, `${AMD_SOG19} (Zen 4): 32 KiB L1D`],
    l1dWays: [8, `${AMD_SOG19} (Zen 4): 8-way L1D`],
    l1iSizeBytes: [32 * 1024, `${AMD_SOG19} (Zen 4): 32 KiB L1I`],
    lfbEntries: [24, 'assumption: 24 outstanding L1D misses per core (AMD miss-address buffers)'],
    loadPorts: [3, `${AMD_SOG19} (Zen 4): up to three loads per cycle`],
    storeBufferEntries: [64, `${AMD_SOG19} (Zen 4): 64-entry store queue`],
    stlbEntries: [3072, `${AMD_SOG19} (Zen 4): L2 DTLB of 3072 entries`],
    stlbWays: [24, 'assumption: 24-way (associativity not given); 128 sets as the Intel STLBs'],
    itlb4KEntries: [64, `${AMD_SOG19}: L1 ITLB of 64 entries, fully associative, all page sizes`],
    itlb4KWays: [64, `${AMD_SOG19}: fully associative`],
    itlb2MEntries: [64, `${AMD_SOG19}: the same 64 entries hold 2 MiB pages (each size gets them all here: an over-estimate only when both sizes fill it at once)`],
    l2ItlbEntries: [512, `${AMD_SOG19}: L2 ITLB of 512 entries for 4 KiB and 2 MiB pages (1 GiB pages smashed to 2 MiB)`],
    l2ItlbWays: [8, '7-cpu.com Zen 2 (the Zen 3/4 L2 ITLB has the same size): 8-way'],
    pagingStructureCaches: PWC_SPEC,
    smt: [true, 'AMD: two threads per core (SMT)'],
    smtSpeedup: SMT_AMD,
    maxPhysBits: [52, 'assumption: /proc/cpuinfo "52 bits physical, 57 bits virtual" on EPYC 9004 without SME'],
    features: amdFeatures({
      la57: [true, 'AMD APM Vol. 2 5.3: 5-level paging supported by Zen 4'],
      autoIbrs: [true, 'AMD APM CPUID Fn8000_0021 EAX[8]: Automatic IBRS, Zen 4'],
    }),
    archCapabilities: [[], 'no IA32_ARCH_CAPABILITIES on AMD'],
  },
  {
    name: 'qemu-max',
    description: 'QEMU 7.2 TCG "-cpu max" as in the captures (test/fixtures/captures/*/cpuinfo.txt)',
    vendor: ['AuthenticAMD', 'captures cpuinfo.txt vendor_id'],
    family: [15, 'captures cpuinfo.txt cpu family'],
    model: [107, 'captures cpuinfo.txt model'],
    stepping: [1, 'captures cpuinfo.txt stepping'],
    l1dSizeBytes: [64 * 1024, 'assumption: QEMU target/i386/cpu.c legacy AMD L1D descriptor (64 KiB)'],
    l1dWays: [2, 'assumption: QEMU target/i386/cpu.c legacy AMD L1D descriptor (2-way)'],
    l1iSizeBytes: [64 * 1024, 'assumption: QEMU target/i386/cpu.c legacy AMD L1I descriptor (64 KiB); TCG models no instruction cache'],
    lfbEntries: [10, 'assumption: TCG models no fill buffers; 10 chosen'],
    loadPorts: [2, 'assumption: TCG models no load ports; 2 chosen'],
    storeBufferEntries: [56, 'assumption: TCG models no store buffer; 56 chosen'],
    stlbEntries: [0, 'QEMU TCG softmmu has one TLB level (accel/tcg/cputlb.c): no second level'],
    stlbWays: [1, 'no second level'],
    itlb4KEntries: [0, 'QEMU TCG softmmu has one TLB for fetches and data (accel/tcg/cputlb.c, per MMU index): no split'],
    itlb4KWays: [1, 'no ITLB'],
    itlb2MEntries: [0, 'no ITLB'],
    l2ItlbEntries: [0, 'no ITLB'],
    l2ItlbWays: [1, 'no ITLB'],
    pagingStructureCaches: [false, 'QEMU TCG\'s walker (target/i386/tcg/sysemu/excp_helper.c mmu_translate) loads every level of every walk: no paging-structure caches'],
    smt: [false, 'captures cpuinfo.txt: siblings 1, cpu cores 1'],
    smtSpeedup: [1, 'definition: no SMT, nothing shared'],
    maxPhysBits: [40, 'captures cpuinfo.txt: 40 bits physical'],
    features: {
      pcid: [false, 'captures cpuinfo.txt flags: no pcid'],
      invpcid: [false, 'captures cpuinfo.txt flags: no invpcid'],
      la57: [true, 'la57 capture cpuinfo.txt flags: la57'],
      rtm: [false, 'captures cpuinfo.txt flags: no rtm'],
      flushL1d: [false, 'captures cpuinfo.txt flags: no flush_l1d'],
      mdClear: [false, 'captures cpuinfo.txt flags: no md_clear'],
      pku: [true, 'captures cpuinfo.txt flags: pku'],
      smep: [true, 'captures cpuinfo.txt flags: smep'],
      smap: [true, 'captures cpuinfo.txt flags: smap'],
      gbpages: [true, 'captures cpuinfo.txt flags: pdpe1gb'],
      archCapabilities: [false, 'captures cpuinfo.txt flags: no arch_capabilities'],
      fsgsbase: [true, 'captures cpuinfo.txt flags: fsgsbase'],
      rdrand: [true, 'captures cpuinfo.txt flags: rdrand'],
      rdseed: [false, 'captures cpuinfo.txt flags: no rdseed'],
      avx: [true, 'captures cpuinfo.txt flags: avx'],
      hypervisor: [true, 'captures cpuinfo.txt flags: hypervisor'],
      vmx: [false, 'captures cpuinfo.txt flags: no vmx'],
      ept: [false, 'captures cpuinfo.txt flags: no ept'],
      svm: [true, 'captures cpuinfo.txt flags: svm'],
      autoIbrs: [false, 'captures cpuinfo.txt flags: no auto_ibrs'],
      amdSsbNo: [false, 'captures cpuinfo.txt flags: no amd_ssb_no'],
      btcNo: [false, 'captures cpuinfo.txt flags: no btc_no'],
      srsoNo: [false, 'captures cpuinfo.txt flags: no srso_no'],
    },
    archCapabilities: [[], 'captures cpuinfo.txt flags: no arch_capabilities'],
  },
];

export const PROFILES: ReadonlyMap<string, CpuProfile> = new Map(PROFILE_SPECS.map((s) => [s.name, buildProfile(s)]));

export function profileNames(): string[] {
  return [...PROFILES.keys()];
}

/** The profile called `name`, or a RangeError listing the known names. */
export function getProfile(name: string): CpuProfile {
  const p = PROFILES.get(name);
  if (p === undefined) throw new RangeError(`unknown CPU profile "${name}" (known: ${profileNames().join(', ')})`);
  return p;
}
