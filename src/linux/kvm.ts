/**
 * KVM virtual machines with EPT (arch/x86/kvm, Linux 6.1, VMX with the TDP MMU), each an owner.
 *
 * What a VM allocates, and from where (all owned by the VM):
 *  - struct kvm: kvm_arch_alloc_vm() = __vmalloc(kvm_x86_ops.vm_size, GFP_KERNEL_ACCOUNT | __GFP_ZERO)
 *    (arch/x86/include/asm/kvm_host.h); vmalloc'd when a VmallocAllocator is given, else buddy pages;
 *  - per vCPU (virt/kvm/kvm_main.c kvm_vm_ioctl_create_vcpu(), arch/x86/kvm/x86.c
 *    kvm_arch_vcpu_create(), vmx.c vmx_vcpu_create(), lapic.c kvm_create_lapic()): the kvm_vcpu
 *    slab object (sizeof(struct vcpu_vmx)), the kvm_run page, the pio_data page, an x86_emulator
 *    object (alloc_emulate_ctxt()), the VMCS page (alloc_vmcs_cpu()), the MSR bitmap page and the
 *    APIC register page (get_zeroed_page() in kvm_create_lapic());
 *  - per EPT table: a page from mmu_shadow_page_cache and a kvm_mmu_page header from
 *    mmu_page_header_cache (mmu/tdp_mmu.c tdp_mmu_alloc_sp());
 *  - guest RAM is the VMM process's anonymous memory (KVM_SET_USER_MEMORY_REGION points a memslot
 *    at it): a VMA of the VMM with the VM as owner and kind 'guest-memory'.
 * EPT entries as KVM writes them (mmu/spte.c with kvm_mmu_set_ept_masks()): non-leaf
 * make_nonleaf_spte() = SPTE_MMU_PRESENT_MASK (bit 11) | R | W | X | A; leaf make_spte() = bit 11 |
 * R | W | X | memtype WB << 3 | IPAT (vmx_get_mt_mask() for RAM) | A | D (a write fault) |
 * EPT_SPTE_HOST_WRITABLE (57) | EPT_SPTE_MMU_WRITABLE (58). The EPTP is construct_eptp(): WB |
 * PWL 4 | A/D enable | root. Leaves are as large as the host mapping (host_pfn_mapping_level()):
 * 2 MiB over THPs. Guest RAM is prefaulted (KVM would map it on EPT violations).
 *
 * A guest can have its own page tables in its RAM (guestPageTables()), e.g. to plant a guest PTE
 * with P=0 whose address bits name a host physical address (the L1TF guest attack).
 */
import { BuddyAllocator, PAGE_SIZE, USE_OTHER, USE_PAGE_TABLE, getOrder } from './buddy.ts';
import type { Owner, Owners } from './owners.ts';
import { classify } from './sensitivity.ts';
import type { SlabAllocator } from './slab.ts';
import type { VmallocAllocator } from './vmalloc.ts';
import type { Process, ProcessTable, Vma } from './process.ts';
import { PhysMemory } from '../phys/memory.ts';
import { ACCESS_READ } from '../x86/bits.ts';
import {
  DEFAULT_EPT_CONFIG, EPT_A, EPT_D, EPT_IPAT, EPT_RWX, EptTables, EptTranslation, MT_WB, eptTranslate,
  eptpValue, type EptConfig,
} from '../x86/ept.ts';
import { PageTables } from '../x86/pgtable.ts';

const SPTE_MMU_PRESENT = 1 << 11; // mmu/spte.h SPTE_MMU_PRESENT_MASK
const EPT_SPTE_HOST_WRITABLE_HI = 1 << (57 - 32);
const EPT_SPTE_MMU_WRITABLE_HI = 1 << (58 - 32);
export const KVM_NONLEAF_LO = SPTE_MMU_PRESENT | EPT_RWX | EPT_A;
export const KVM_LEAF_LO = SPTE_MMU_PRESENT | EPT_RWX | (MT_WB << 3) | EPT_IPAT | EPT_A | EPT_D;
export const KVM_LEAF_HI = EPT_SPTE_HOST_WRITABLE_HI | EPT_SPTE_MMU_WRITABLE_HI;
/** Size given to __vmalloc for struct kvm_vmx. Assumption: tens of KiB (memslot arrays, hash tables). */
export const KVM_VM_SIZE = 40 * 1024;

export interface Vcpu {
  id: number;
  /** Slab object ids. */
  vcpu: number;
  emulator: number;
  /** Page-sized allocations: physical addresses. */
  run: number;
  pioData: number;
  vmcs: number;
  msrBitmap: number;
  lapicRegs: number;
}

/** One allocation of a VM, for queries. */
export interface VmObject {
  what: string;
  pa: number;
  size: number;
  owner: number;
  cls: number;
}

export interface KvmOptions {
  processes: ProcessTable;
  slab: SlabAllocator;
  buddy: BuddyAllocator;
  owners: Owners;
  vmalloc?: VmallocAllocator;
  ept?: Partial<EptConfig>;
}

export class Vm {
  readonly vcpus: Vcpu[] = [];
  /** The EPT table pages with their kvm_mmu_page header objects. */
  readonly mmuPages: { pa: number; header: number }[] = [];
  /** Pages and objects of the VM beyond guest RAM and EPT (struct kvm, per-vCPU pages). */
  readonly pages: VmObject[] = [];
  ept!: EptTables;
  private readonly t = new EptTranslation();
  /** The EPT configuration for software walks: KVM's own lookups set no A/D flags. */
  private readonly swCfg: EptConfig;

  constructor(
    readonly kvm: Kvm,
    readonly owner: Owner,
    readonly vmm: Process,
    /** The guest RAM VMA in the VMM; GPA 0 is its first byte (memslot 0). */
    readonly ram: Vma,
    readonly eptCfg: EptConfig,
  ) {
    this.swCfg = { ...eptCfg, accessDirty: false };
  }

  get ramBytes(): number {
    return Number(this.ram.end - this.ram.start);
  }

  /** The EPTP KVM loads (construct_eptp()). */
  eptp(): { lo: number; hi: number } {
    return eptpValue(this.ept.root, this.eptCfg.levels, this.eptCfg.accessDirty, MT_WB);
  }

  /** HPA of a GPA through the EPT (a software walk: no A/D updates), or -1. */
  gpaToHpa(gpa: number): number {
    return eptTranslate(this.kvm.mem, this.swCfg, this.ept.root, gpa, ACCESS_READ, this.t) ? this.t.hpa : -1;
  }

  /** Host VA (in the VMM) of a GPA: userspace_addr + (gpa - base_gfn << PAGE_SHIFT). */
  hvaOf(gpa: number): bigint {
    return this.ram.start + BigInt(gpa);
  }

  /**
   * Page tables of the guest, in guest RAM. Table pages are taken downwards from `tableTop`
   * (a GPA, default the end of guest RAM) as a guest kernel's allocator would hand them out.
   */
  guestPageTables(levels: 4 | 5 = 4, tableTop = this.ramBytes): GuestPageTables {
    const view = new GuestPhysView(this);
    let top = tableTop;
    const alloc = () => {
      top -= PAGE_SIZE;
      if (top < 0) throw new RangeError('guest RAM exhausted by guest page tables');
      view.writeBytes(top, new Uint8Array(PAGE_SIZE));
      return BigInt(top);
    };
    const pt = new PageTables(view, levels, alloc);
    return { view, pt, cr3: Number(pt.root) };
  }

  /**
   * Write a guest PTE for `gva` with P=0 and address bits `hostPa` (bits 51:12) — what an L1TF
   * guest does: the CPU may use the address bits as a host physical address, bypassing EPT.
   * Returns where the PTE lives (GPA and HPA) and its value.
   */
  plantNotPresentPte(g: GuestPageTables, gva: bigint, hostPa: number, flags = 0n): { pteGpa: number; pteHpa: number; value: bigint } {
    const ea = g.pt.entryAddr(gva, 1);
    const value = (BigInt(hostPa) & 0x000ffffffffff000n) | (flags & ~1n);
    g.view.write64Big(Number(ea), value);
    return { pteGpa: Number(ea), pteHpa: this.gpaToHpa(Number(ea)), value };
  }

  /** Every allocation of the VM: guest RAM pages, EPT pages and headers, struct kvm, vCPU state. */
  objects(): VmObject[] {
    const { buddy, slab } = this.kvm.opts;
    const out: VmObject[] = [];
    const page = (what: string, pa: number, size = PAGE_SIZE) => ({ what, pa, size, owner: buddy.ownerOfPfn(pa / PAGE_SIZE), cls: buddy.classOfPfn(pa / PAGE_SIZE) });
    const obj = (what: string, id: number) => {
      const o = slab.objectInfo(id)!;
      return { what, pa: o.pa, size: o.size, owner: o.owner, cls: o.cls };
    };
    const pageBytes = 2 ** this.ram.pageShift;
    for (const pfn of this.ram.pfns) out.push(page('guest-ram', pfn * PAGE_SIZE, pageBytes));
    for (const m of this.mmuPages) out.push(page('ept-table', m.pa), obj('kvm_mmu_page_header', m.header));
    out.push(...this.pages);
    for (const v of this.vcpus) out.push(obj('kvm_vcpu', v.vcpu), obj('x86_emulator', v.emulator));
    return out;
  }
}

export interface GuestPageTables {
  view: PhysMemory;
  pt: PageTables;
  /** GPA of the root table (the guest's CR3). */
  cr3: number;
}

/**
 * Guest-physical memory seen through the VM's EPT: reads and writes at GPAs land in host frames.
 * Only the byte/word accessors used by PageTables and for content are redirected; the walker's
 * slot-level access (walk.ts) does not see guest memory through this view.
 */
export class GuestPhysView extends PhysMemory {
  constructor(private readonly vm: Vm) {
    super(vm.kvm.mem.maxPhysBits);
  }

  private hpa(gpa: number, write: boolean): number {
    const h = this.vm.gpaToHpa(gpa);
    if (h < 0 && write) throw new RangeError(`GPA 0x${gpa.toString(16)} is not backed by guest RAM`);
    return h;
  }

  override read32(pa: number): number {
    const h = this.hpa(pa, false);
    return h < 0 ? 0 : this.vm.kvm.mem.read32(h);
  }

  override write32(pa: number, value: number): void {
    this.vm.kvm.mem.write32(this.hpa(pa, true), value);
  }

  override readByte(pa: number): number {
    const h = this.hpa(pa, false);
    return h < 0 ? 0 : this.vm.kvm.mem.readByte(h);
  }

  override writeByte(pa: number, value: number): void {
    this.vm.kvm.mem.writeByte(this.hpa(pa, true), value);
  }

  override readBytes(pa: number, dst: Uint8Array, dstOff: number, len: number): void {
    for (let i = 0; i < len; i++) dst[dstOff + i] = this.readByte(pa + i);
  }

  override writeBytes(pa: number, src: Uint8Array): void {
    let done = 0;
    while (done < src.length) {
      const n = Math.min(src.length - done, PAGE_SIZE - ((pa + done) % PAGE_SIZE));
      this.vm.kvm.mem.writeBytes(this.hpa(pa + done, true), src.subarray(done, done + n));
      done += n;
    }
  }
}

export class Kvm {
  readonly vms: Vm[] = [];
  readonly mem: PhysMemory;
  readonly eptCfg: EptConfig;

  constructor(readonly opts: KvmOptions) {
    this.mem = opts.processes.mem;
    this.eptCfg = { ...DEFAULT_EPT_CONFIG, maxPhysBits: this.mem.maxPhysBits, ...opts.ept };
  }

  /**
   * KVM_CREATE_VM + KVM_SET_USER_MEMORY_REGION + KVM_CREATE_VCPU × vcpus. Guest RAM is an anonymous
   * VMA of `vmm` (a new VMM process by default) at `ramVa`, backed by THPs unless hugePages=false.
   */
  createVm(name: string, o: { ramBytes: number; vcpus?: number; vmm?: Process; ramVa?: bigint; hugePages?: boolean }): Vm {
    const { processes, slab, buddy, owners, vmalloc } = this.opts;
    const model = processes.model;
    const owner = owners.vm(name);
    const vmm = o.vmm ?? processes.create(`qemu-${name}`, { vmas: [] });
    const huge = o.hugePages ?? true;
    const ram = vmm.mmap({
      name: `guest-ram:${name}`, start: o.ramVa ?? 0x7f0000000000n, size: o.ramBytes, prot: 'rw-',
      kind: 'guest-memory', owner, pageShift: huge ? 21 : 12,
    });
    const vm = new Vm(this, owner, vmm, ram, this.eptCfg);
    const pageCls = (kind: string) => classify(model, kind, owner);
    const page = (what: string, kind: string, order = 0, use = USE_OTHER): number => {
      const pfn = buddy.alloc(order, owner.id, pageCls(kind), 'normal', use);
      for (let i = 0; i < 1 << order; i++) this.mem.frameWords(pfn + i).fill(0); // __GFP_ZERO
      vm.pages.push({ what, pa: pfn * PAGE_SIZE, size: PAGE_SIZE << order, owner: owner.id, cls: pageCls(kind) });
      return pfn * PAGE_SIZE;
    };
    // struct kvm.
    if (vmalloc) {
      const area = vmalloc.vmalloc(KVM_VM_SIZE, owner.id, { kind: 'kvm' });
      for (const pfn of area.pfns) vm.pages.push({ what: 'struct kvm', pa: pfn * PAGE_SIZE, size: PAGE_SIZE, owner: owner.id, cls: area.frameCls });
    } else {
      page('struct kvm', 'kvm', getOrder(KVM_VM_SIZE));
    }
    // The EPT: tables from the shadow-page cache, one kvm_mmu_page header each.
    const ptCls = pageCls('page-table');
    const allocTable = (): number => {
      const pfn = buddy.alloc(0, owner.id, ptCls, 'normal', USE_PAGE_TABLE);
      this.mem.frameWords(pfn).fill(0);
      vm.mmuPages.push({ pa: pfn * PAGE_SIZE, header: slab.allocId('kvm_mmu_page_header', owner.id) });
      return pfn * PAGE_SIZE;
    };
    vm.ept = new EptTables(this.mem, this.eptCfg.levels, allocTable);
    const shift = ram.pageShift;
    for (let i = 0; i < ram.pfns.length; i++) {
      vm.ept.map(i * 2 ** shift, ram.pfns[i] * PAGE_SIZE, shift, KVM_LEAF_LO, KVM_LEAF_HI, KVM_NONLEAF_LO);
    }
    for (let id = 0; id < (o.vcpus ?? 1); id++) {
      vm.vcpus.push({
        id,
        vcpu: slab.allocId('kvm_vcpu', owner.id),
        run: page('kvm_run', 'kvm-run'),
        pioData: page('pio_data', 'kvm-vcpu-page'),
        emulator: slab.allocId('x86_emulator', owner.id),
        vmcs: page('vmcs', 'kvm-vcpu-page'),
        msrBitmap: page('msr_bitmap', 'kvm-vcpu-page'),
        lapicRegs: page('lapic regs', 'kvm-lapic'),
      });
    }
    this.vms.push(vm);
    return vm;
  }

  /** The VM owning the byte at `pa` (the slab object there, else the page), if any. */
  vmOfPa(pa: number): Vm | null {
    const obj = this.opts.slab.objectAtPa(pa);
    const id = obj ? obj.owner : this.opts.buddy.ownerOfPfn(Math.floor(pa / PAGE_SIZE));
    return this.vms.find((v) => v.owner.id === id) ?? null;
  }
}
