/**
 * A booted Linux "system": the kernel's page tables (kernel.ts, or a capture through
 * capture.ts) plus the allocators that run after boot — the buddy allocator over RAM minus
 * what boot reserved, SLUB caches, vmalloc mapped into the kernel's own tables — owners, a
 * sensitivity model, and factories that create processes, KVM VMs and network namespaces with
 * their objects.
 *
 * Every allocation is recorded: owner, kind (the sensitivity model's key), class of its frames,
 * physical ranges, and the kernel VA it is used through: the direct map (page_offset_base + pa,
 * Documentation/arch/x86/x86_64/mm.rst), a vmalloc address, or the kernel image mapping. Boot
 * memory (the first MiB, the image, per-CPU areas, page tables, ESPFIX stacks, memblock
 * allocations) is recorded as kernel-owned `boot` allocations. Records can be queried by PA and
 * by VA; `census()` lists buddy frames no record covers (a test must find none).
 *
 * Each process also gets a kernel stack (THREAD_SIZE, vmalloc'd: kernel/fork.c
 * alloc_thread_stack_node() with CONFIG_VMAP_STACK), and a VM's VMM is a process created here.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { BuddyAllocator, PAGE_SIZE, USE_PAGE_TABLE, USE_SLAB, type Range } from './buddy.ts';
import { KERNEL_OWNER, Owners } from './owners.ts';
import { classify, getModel, type ModelName, type SensitivityModel } from './sensitivity.ts';
import { SlabAllocator } from './slab.ts';
import { VmallocAllocator, type VmArea } from './vmalloc.ts';
import { ProcessTable, type Process, type VmaSpec } from './process.ts';
import { Kvm, type Vm } from './kvm.ts';
import { NetNamespaces, type NetNs } from './netns.ts';
import { AsidState } from './asid.ts';
import { bootKernel, percpuUnitSize, QEMU_512M_RAM, type KernelModel, type KernelOptions, type PhysRange } from './kernel.ts';
import { modelFromCapture } from './capture.ts';
import { loadIomem } from '../formats/iomem.ts';
import { PageTables } from '../x86/pgtable.ts';
import type { PhysMemory } from '../phys/memory.ts';
import type { LinuxLayout } from './layout.ts';

/** A physical range of an allocation record, as allocationAtPa() and allocationsIn() index them. */
type PaRange = { start: number; end: number; rec: Allocation };

/** Of `best` and the ranges of `list` holding `pa`, the lowest start, then the earliest record (allocationAtPa's order). */
function betterOf(best: PaRange | null, list: readonly PaRange[] | undefined, pa: number): PaRange | null {
  if (list === undefined) return best;
  for (let i = 0; i < list.length; i++) {
    const x = list[i];
    if (x.start <= pa && pa < x.end && (best === null || x.start < best.start || (x.start === best.start && x.rec.id < best.rec.id))) best = x;
  }
  return best;
}

/** allocationAtPa()'s buckets: 2 MiB of physical address each; a longer range is kept apart. */
const BUCKET = 2 * 1024 * 1024;
const BIG_RANGE = 64 * BUCKET;

export interface AllocationRange {
  pa: number;
  bytes: number;
}

export interface Allocation {
  readonly id: number;
  readonly owner: number;
  /** The sensitivity model's key ('task_struct', 'guest-memory', 'page-table', …). */
  readonly kind: string;
  /** A label for reports ('guest-ram:vm0', 'kvm_vcpu', 'ept-table', …). */
  readonly what: string;
  /** Class of the frames (their direct-map alias). */
  readonly cls: number;
  /** Class of the mapping at `va` (differs from `cls` for vmalloc'd memory). */
  readonly mapCls: number;
  readonly ranges: readonly AllocationRange[];
  /** The kernel VA the allocation is used through. */
  readonly va: bigint;
  readonly via: 'direct' | 'vmalloc' | 'image';
  /** Memory reserved while booting (never from the buddy allocator). */
  readonly boot: boolean;
  /** User pages: the process and user VA that map them. */
  readonly user?: { readonly pid: number; readonly va: bigint };
  readonly slabId?: number;
  readonly areaId?: number;
}

export interface SystemOptions {
  /** A booted kernel model (default: bootKernel(kernelOptions), or the capture's). */
  kernel?: KernelModel;
  /** A capture directory (test/fixtures/captures/…): the kernel model comes from it. */
  capture?: string;
  kernelOptions?: KernelOptions;
  /** e820 RAM for the buddy allocator (default: kernelOptions.ram, the capture's iomem, or QEMU -m 512M). */
  ram?: PhysRange[];
  model?: ModelName | SensitivityModel;
}

type NewAllocation = Omit<Allocation, 'id' | 'boot'> & { boot?: boolean };

export class System {
  readonly mem: PhysMemory;
  readonly layout: LinuxLayout;
  readonly levels: 4 | 5;
  readonly model: SensitivityModel;
  readonly owners = new Owners();
  readonly buddy: BuddyAllocator;
  /** PageTables over swapper_pg_dir; new tables come from the buddy allocator. */
  readonly kpt: PageTables;
  readonly slab: SlabAllocator;
  readonly vmalloc: VmallocAllocator;
  readonly asids: AsidState;
  readonly processes: ProcessTable;
  readonly kvm: Kvm;
  readonly netns: NetNamespaces;
  /** Tenants created through the factories (VMMs are in vms[i].vmm, not here). */
  readonly userProcesses: Process[] = [];
  readonly vms: Vm[] = [];
  readonly namespaces: NetNs[] = [];
  /** Kernel stack of each process, by pid. */
  readonly stacks = new Map<number, VmArea>();
  private readonly recs: Allocation[] = [];
  private sorted: PaRange[] | null = null;
  /**
   * allocationAtPa()'s index, kept up to date by add(): the ranges by 2 MiB bucket of physical
   * address (a range of more than BIG_RANGE bytes in `big` instead). Rebuilding the sorted index
   * after every add made recordUser() quadratic in the pages of all tenants (bench/scale.ts).
   */
  private readonly buckets = new Map<number, PaRange[]>();
  /**
   * Ranges inside one 4 KiB frame (most records: a user page, a slab page, a table), by frame:
   * allocationAtPa() then scans a frame's few ranges, not a 2 MiB bucket's hundreds (recordUser()
   * asks once per user page). The buckets keep the longer ranges.
   */
  private readonly frameRanges = new Map<number, PaRange[]>();
  private readonly big: PaRange[] = [];
  // The records by what the ASI designs select them on, each in record order (a design's spec()
  // per context scanning every record was quadratic in tenants: bench/scale.ts).
  private readonly bootRecs: Allocation[] = [];
  private readonly vmallocRecs: Allocation[] = [];
  private readonly ownerRecs = new Map<number, Allocation[]>();
  private readonly byArea = new Map<number, Allocation>();
  private readonly tablePfns = new Set<number>();

  constructor(readonly kernel: KernelModel, ram: readonly PhysRange[], model: ModelName | SensitivityModel = 'none') {
    this.mem = kernel.mem;
    this.layout = kernel.layout;
    this.levels = kernel.levels;
    this.model = getModel(model);
    const r: Range[] = ram.map((x) => [x.start, x.end]);
    this.buddy = new BuddyAllocator({ ram: r, reserved: kernel.reserved.map((x) => [x.start, x.end] as Range) });
    this.recordBoot();
    const ptCls = classify(this.model, 'page-table', this.owners.kernel);
    this.kpt = new PageTables(this.mem, this.levels, () => BigInt(this.allocTablePage(KERNEL_OWNER, ptCls, 'kernel page table')), BigInt(kernel.kernelRoot));
    const a = this.layout.addrs;
    this.slab = new SlabAllocator({ buddy: this.buddy, owners: this.owners, model: this.model, pageOffsetBase: a.page_offset_base, cpus: kernel.cpus, mem: this.mem });
    this.vmalloc = new VmallocAllocator({ buddy: this.buddy, owners: this.owners, model: this.model, pt: this.kpt, start: a.vmalloc_base, end: a.VMALLOC_END, pti: kernel.pti.enabled });
    this.asids = new AsidState({ cpus: kernel.cpus, pcid: kernel.cpu.pcid, pti: kernel.pti.enabled, initPgd: kernel.kernelRoot });
    this.processes = new ProcessTable({
      mem: this.mem, buddy: this.buddy, owners: this.owners, model: this.model, levels: this.levels, pti: kernel.pti.enabled,
      kernelPgd: kernel.kernelRoot, kernelUserPgd: kernel.userRoot ?? undefined, pageOffset: a.page_offset_base, nx: kernel.cpu.nx,
      asids: this.asids, slab: this.slab,
    });
    this.kvm = new Kvm({ processes: this.processes, slab: this.slab, buddy: this.buddy, owners: this.owners, vmalloc: this.vmalloc });
    this.netns = new NetNamespaces({ slab: this.slab, owners: this.owners });
  }

  // -- factories ------------------------------------------------------------------------------

  /** fork()+execve(): the process, its page tables and pages, task/mm/VMA objects and a kernel stack. */
  createProcess(comm: string, o: { vmas?: VmaSpec[]; vmm?: boolean } = {}): Process {
    const p = this.processes.create(comm, o.vmas ? { vmas: o.vmas } : {});
    const order = this.kernel.pti.enabled ? 1 : 0;
    this.recordTable(p.owner.id, p.pgd / PAGE_SIZE, order, `pgd:${comm}`);
    for (const id of p.slabObjects) this.recordSlab(id);
    this.recordUser(p);
    const stack = this.vmalloc.allocStack(p.owner.id);
    this.stacks.set(p.pid, stack);
    this.recordArea(stack, `stack:${comm}`);
    if (!o.vmm) this.userProcesses.push(p);
    return p;
  }

  /** KVM_CREATE_VM + memory + vCPUs, with a new VMM process. */
  createVm(name: string, o: { ramBytes: number; vcpus?: number; hugePages?: boolean }): Vm {
    const vmm = this.createProcess(`qemu-${name}`, { vmas: [], vmm: true });
    const areas = new Set(this.vmalloc.areas().map((x) => x.id));
    const vm = this.kvm.createVm(name, { ramBytes: o.ramBytes, vcpus: o.vcpus ?? 1, vmm, hugePages: o.hugePages ?? true });
    this.recordUser(vmm);
    for (const area of this.vmalloc.areas()) if (!areas.has(area.id)) this.recordArea(area, `struct kvm:${name}`);
    for (const pg of vm.pages) {
      if (pg.what === 'struct kvm') continue; // recorded with its vmalloc area
      this.add({ owner: pg.owner, kind: this.kindOfVmPage(pg.what), what: `${pg.what}:${name}`, cls: pg.cls, mapCls: pg.cls, ranges: [{ pa: pg.pa, bytes: pg.size }], va: this.directMapVa(pg.pa), via: 'direct' });
    }
    for (const m of vm.mmuPages) {
      this.recordTable(vm.owner.id, m.pa / PAGE_SIZE, 0, `ept-table:${name}`);
      this.recordSlab(m.header);
    }
    for (const v of vm.vcpus) { this.recordSlab(v.vcpu); this.recordSlab(v.emulator); }
    this.vms.push(vm);
    return vm;
  }

  /** unshare(CLONE_NEWNET): a namespace and its struct net. */
  createNetns(name: string): NetNs {
    const ns = this.netns.create(name);
    this.recordSlab(ns.net);
    this.namespaces.push(ns);
    return ns;
  }

  /** A TCP socket in `ns`: its inode and sock objects. */
  netnsSocket(ns: NetNs): { inode: number; sk: number } {
    const s = this.netns.socket(ns);
    this.recordSlab(s.inode);
    this.recordSlab(s.sk);
    return s;
  }

  /** An sk_buff of `size` data bytes for `ns`. */
  netnsSkb(ns: NetNs, size: number): { head: number; data: number } {
    const s = this.netns.allocSkb(ns, size);
    this.recordSlab(s.head);
    this.recordSlab(s.data);
    return s;
  }

  // -- records --------------------------------------------------------------------------------

  allocations(): readonly Allocation[] {
    return this.recs;
  }

  /** The records made while booting (`boot`), in record order. */
  bootAllocations(): readonly Allocation[] {
    return this.bootRecs;
  }

  /** The records used through vmalloc (`via` 'vmalloc'), in record order. */
  vmallocAllocations(): readonly Allocation[] {
    return this.vmallocRecs;
  }

  /** The records of `owner`, in record order. */
  allocationsOf(owner: number): readonly Allocation[] {
    return this.ownerRecs.get(owner) ?? [];
  }

  /** Record frames allocated outside the factories (e.g. the ASI framework's own page tables). */
  recordPages(owner: number, pfn: number, order: number, kind: string, what: string): Allocation {
    const pa = pfn * PAGE_SIZE;
    if (kind === 'page-table') this.tablePfns.add(pfn);
    return this.add({ owner, kind, what, cls: this.buddy.classOfPfn(pfn), mapCls: this.buddy.classOfPfn(pfn), ranges: [{ pa, bytes: PAGE_SIZE << order }], va: this.directMapVa(pa), via: 'direct' });
  }

  /** The allocations overlapping [pa, pa + bytes). */
  allocationsIn(pa: number, bytes: number): Allocation[] {
    const s = this.index();
    let lo = 0;
    let hi = s.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (s[m].end <= pa) lo = m + 1; else hi = m; }
    const out: Allocation[] = [];
    for (let i = lo; i < s.length && s[i].start < pa + bytes; i++) if (out[out.length - 1] !== s[i].rec) out.push(s[i].rec);
    return out;
  }

  /**
   * The allocation holding the byte at `pa`, or null: of the ranges holding it, the first of
   * allocationsIn()'s order (lowest start, then the earliest record).
   */
  allocationAtPa(pa: number): Allocation | null {
    const best = betterOf(betterOf(betterOf(null, this.frameRanges.get(Math.floor(pa / PAGE_SIZE)), pa), this.buckets.get(Math.floor(pa / BUCKET)), pa), this.big, pa);
    return best === null ? null : best.rec;
  }

  /** The allocation a kernel VA reaches: direct map, vmalloc area or kernel image; null elsewhere. */
  allocationAtVa(va: bigint): Allocation | null {
    const v = BigInt.asUintN(64, va);
    const a = this.layout.addrs;
    const dmEnd = a.page_offset_base + (1n << 46n);
    if (v >= a.page_offset_base && v < dmEnd) return this.allocationAtPa(Number(v - a.page_offset_base));
    if (v >= a.vmalloc_base && v <= a.VMALLOC_END) {
      const area = this.vmalloc.areaAt(v);
      return area ? this.byArea.get(area.id) ?? null : null;
    }
    if (v >= a.__START_KERNEL_map && v < a.__START_KERNEL_map + a.KERNEL_IMAGE_SIZE) {
      return this.allocationAtPa(Number(v - a.__START_KERNEL_map + this.kernel.physBase));
    }
    return null;
  }

  directMapVa(pa: number): bigint {
    return this.layout.addrs.page_offset_base + BigInt(pa);
  }

  /** Allocated buddy frames (slab pages excepted) that no record covers: must be empty. */
  census(): number[] {
    const out: number[] = [];
    for (const [pfn, order] of this.buddy.allocatedBlockList()) {
      if (this.buddy.useOfPfn(pfn) === USE_SLAB) continue;
      for (let i = 0; i < 1 << order; i++) if (this.allocationsIn((pfn + i) * PAGE_SIZE, PAGE_SIZE).length === 0) out.push(pfn + i);
    }
    return out;
  }

  // -- internals --------------------------------------------------------------------------------

  private add(a: NewAllocation): Allocation {
    // Every field in one order, absent ones undefined: one object shape for all records (a spread
    // of the caller's literal gave each call site's shape, and cost a copy loop per record).
    const rec: Allocation = {
      id: this.recs.length, owner: a.owner, kind: a.kind, what: a.what, cls: a.cls, mapCls: a.mapCls, ranges: a.ranges, va: a.va, via: a.via,
      boot: a.boot ?? false, user: a.user, slabId: a.slabId, areaId: a.areaId,
    };
    this.recs.push(rec);
    this.sorted = null;
    if (rec.boot) this.bootRecs.push(rec);
    if (rec.via === 'vmalloc') this.vmallocRecs.push(rec);
    const mine = this.ownerRecs.get(rec.owner);
    if (mine === undefined) this.ownerRecs.set(rec.owner, [rec]);
    else mine.push(rec);
    for (const r of rec.ranges) {
      const x = { start: r.pa, end: r.pa + r.bytes, rec };
      if (r.bytes > BIG_RANGE) { this.big.push(x); continue; }
      const frame = Math.floor(x.start / PAGE_SIZE);
      if (x.end > x.start && Math.floor((x.end - 1) / PAGE_SIZE) === frame) {
        const l = this.frameRanges.get(frame);
        if (l === undefined) this.frameRanges.set(frame, [x]);
        else l.push(x);
        continue;
      }
      for (let k = Math.floor(x.start / BUCKET), last = Math.floor((x.end - 1) / BUCKET); k <= last; k++) {
        const l = this.buckets.get(k);
        if (l === undefined) this.buckets.set(k, [x]);
        else l.push(x);
      }
    }
    if (rec.areaId !== undefined) this.byArea.set(rec.areaId, rec);
    return rec;
  }

  private index(): PaRange[] {
    if (this.sorted) return this.sorted;
    const s: PaRange[] = [];
    for (const rec of this.recs) for (const r of rec.ranges) s.push({ start: r.pa, end: r.pa + r.bytes, rec });
    s.sort((x, y) => x.start - y.start);
    this.sorted = s;
    return s;
  }

  private allocTablePage(owner: number, cls: number, what: string): number {
    const pfn = this.buddy.alloc(0, owner, cls, 'normal', USE_PAGE_TABLE);
    this.mem.frameWords(pfn).fill(0);
    this.recordTable(owner, pfn, 0, what);
    return pfn * PAGE_SIZE;
  }

  private recordTable(owner: number, pfn: number, order: number, what: string): void {
    if (this.tablePfns.has(pfn)) return;
    this.recordPages(owner, pfn, order, 'page-table', what);
  }

  private recordSlab(id: number): void {
    const o = this.slab.objectInfo(id);
    if (!o) throw new Error(`slab object ${id} is not allocated`);
    const kind = this.slab.cacheInfo(o.cache).kind;
    this.add({ owner: o.owner, kind, what: o.cache, cls: o.cls, mapCls: o.cls, ranges: [{ pa: o.pa, bytes: o.size }], va: o.va, via: 'direct', slabId: id });
  }

  private recordArea(area: VmArea, what: string): void {
    const ranges: AllocationRange[] = [];
    for (const pfn of area.pfns) {
      const last = ranges[ranges.length - 1];
      if (last && last.pa + last.bytes === pfn * PAGE_SIZE) last.bytes += PAGE_SIZE;
      else ranges.push({ pa: pfn * PAGE_SIZE, bytes: PAGE_SIZE });
    }
    this.add({ owner: area.owner, kind: area.kind, what, cls: area.frameCls, mapCls: area.cls, ranges, va: area.va, via: 'vmalloc', areaId: area.id });
  }

  /** User pages of `p` not yet recorded, and its user page tables. */
  private recordUser(p: Process): void {
    for (const vma of p.vmas) {
      const bytes = 2 ** vma.pageShift;
      for (let i = 0; i < vma.pfns.length; i++) {
        const pfn = vma.pfns[i];
        if (pfn === 0 || this.allocationAtPa(pfn * PAGE_SIZE)) continue;
        const va = vma.start + BigInt(i * bytes);
        this.add({ owner: vma.owner, kind: vma.kind, what: vma.name, cls: vma.cls, mapCls: vma.cls, ranges: [{ pa: pfn * PAGE_SIZE, bytes }], va: this.directMapVa(pfn * PAGE_SIZE), via: 'direct', user: { pid: p.pid, va } });
      }
    }
    // User page tables: every table reachable from the user half of the kernel copy of the PGD.
    const walk = (table: number, level: number): void => {
      const w = this.mem.frameWords(table / PAGE_SIZE);
      const n = level === this.levels ? 256 : 512;
      for (let i = 0; i < n; i++) {
        const lo = w[i * 2];
        if ((lo & 1) === 0 || (level <= 3 && (lo & 0x80) !== 0) || level === 1) continue;
        const t = (w[i * 2 + 1] & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0);
        this.recordTable(p.owner.id, t / PAGE_SIZE, 0, `user page table:${p.comm}`);
        if (level > 2) walk(t, level - 1);
      }
    };
    walk(p.pgd, this.levels);
  }

  private kindOfVmPage(what: string): string {
    if (what === 'kvm_run') return 'kvm-run';
    if (what === 'lapic regs') return 'kvm-lapic';
    if (what === 'struct kvm') return 'kvm';
    return 'kvm-vcpu-page';
  }

  /** Boot memory as kernel-owned records: image, per-CPU units, page tables, ESPFIX stacks, the rest. */
  private recordBoot(): void {
    const k = this.kernel;
    const a = this.layout.addrs;
    const cls = (kind: string) => classify(this.model, kind, this.owners.kernel);
    const specific: Array<{ start: number; end: number; kind: string; what: string; va: bigint; via: Allocation['via'] }> = [];
    const imgStart = Number(k.sections.text - a.__START_KERNEL_map + k.physBase);
    const imgEnd = Number(k.sections.end - a.__START_KERNEL_map + k.physBase);
    specific.push({ start: imgStart, end: imgEnd, kind: 'kernel-image', what: 'kernel image', va: k.sections.text, via: 'image' });
    const unit = Number(percpuUnitSize(k.sections.percpu.size, k.cpus));
    k.perCpuPa.forEach((p, c) => specific.push({ start: Number(p), end: Number(p) + unit, kind: 'percpu', what: `per-CPU area ${c}`, va: this.directMapVa(Number(p)), via: 'direct' }));
    for (const pfn of k.tableFrames) {
      const pa = pfn * PAGE_SIZE;
      if (pa >= imgStart && pa < imgEnd) continue;
      specific.push({ start: pa, end: pa + PAGE_SIZE, kind: 'page-table', what: 'boot page table', va: this.directMapVa(pa), via: 'direct' });
      this.tablePfns.add(pfn);
    }
    for (const p of k.espfix?.stackPa ?? []) specific.push({ start: Number(p), end: Number(p) + PAGE_SIZE, kind: 'espfix-stack', what: 'ESPFIX stack', va: this.directMapVa(Number(p)), via: 'direct' });
    for (const t of k.tailText ?? []) specific.push({ start: Number(t.pa), end: Number(t.pa) + t.pages * PAGE_SIZE, kind: 'module-text', what: `module text ${t.name}`, va: t.va, via: 'vmalloc' });
    specific.sort((x, y) => x.start - y.start);
    for (const s of specific) this.add({ owner: KERNEL_OWNER, kind: s.kind, what: s.what, cls: cls(s.kind), mapCls: cls(s.kind), ranges: [{ pa: s.start, bytes: s.end - s.start }], va: s.va, via: s.via, boot: true });
    // What else boot reserved (the first MiB, memmap, trampoline, …) minus the above: 'memblock'.
    const res = k.reserved.map((r) => [Number(r.start), Number(r.end)] as [number, number]).sort((x, y) => x[0] - y[0]);
    const merged: Array<[number, number]> = [];
    for (const [s, e] of res) { const l = merged[merged.length - 1]; if (l && s <= l[1]) l[1] = Math.max(l[1], e); else merged.push([s, e]); }
    for (const [s0, e] of merged) {
      let s = s0;
      for (const sp of specific) {
        if (sp.end <= s || sp.start >= e) continue;
        if (sp.start > s) this.addMemblock(s, sp.start, cls('memblock'));
        s = Math.max(s, sp.end);
      }
      if (s < e) this.addMemblock(s, e, cls('memblock'));
    }
  }

  private addMemblock(start: number, end: number, cls: number): void {
    this.add({ owner: KERNEL_OWNER, kind: 'memblock', what: start < 0x100000 ? 'first MiB' : 'memblock', cls, mapCls: cls, ranges: [{ pa: start, bytes: end - start }], va: this.directMapVa(start), via: 'direct', boot: true });
  }
}

/** Boot a system: the kernel (booted, or from a capture), then the post-boot allocators. */
export function bootSystem(opts: SystemOptions = {}): System {
  let kernel = opts.kernel;
  let ram = opts.ram ?? opts.kernelOptions?.ram;
  if (!kernel && opts.capture) {
    kernel = modelFromCapture(opts.capture, opts.kernelOptions ?? {}).model;
    const iomem = join(opts.capture, 'iomem.txt');
    if (!ram && existsSync(iomem)) ram = loadIomem(iomem).systemRam();
  }
  kernel ??= bootKernel(opts.kernelOptions ?? {});
  return new System(kernel, ram ?? opts.kernelOptions?.iomem?.systemRam() ?? QEMU_512M_RAM, opts.model ?? 'none');
}

export interface TenantSetup {
  processes?: number;
  vms?: number;
  netns?: number;
  /** Guest RAM per VM (default 4 MiB, two 2 MiB THPs). */
  vmRamBytes?: number;
  vcpus?: number;
}

/**
 * The standard population the ASI tests and `kasi asi` use: N processes with the default
 * layout, N VMs (each with its VMM), N namespaces each with one TCP socket and one 1500-byte skb.
 */
export function populateTenants(sys: System, t: TenantSetup = {}): System {
  for (let i = 0; i < (t.processes ?? 2); i++) sys.createProcess(`proc${i}`);
  for (let i = 0; i < (t.vms ?? 2); i++) sys.createVm(`vm${i}`, { ramBytes: t.vmRamBytes ?? 4 << 20, vcpus: t.vcpus ?? 1 });
  for (let i = 0; i < (t.netns ?? 2); i++) {
    const ns = sys.createNetns(`ns${i}`);
    sys.netnsSocket(ns);
    sys.netnsSkb(ns, 1500);
  }
  return sys;
}
