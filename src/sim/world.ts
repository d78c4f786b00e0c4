/**
 * A scenario and one of its isolation entries → a booted world: the kernel model with the
 * entry's resolved mitigations (mitigations/select.ts), the tenants and their objects, the
 * planted secrets, the machine (uarch), the tasks on the hardware threads, and the address
 * spaces (KPTI user copies, the ASI design's restricted spaces and sessions).
 *
 * Every entry is built from scratch from the same seed, in the same order, so runs differ only
 * by the mitigation set. What the mitigation set itself changes in the build is reported, not
 * hidden: PTI allocates order-1 PGD pairs (pgd_alloc(), PGD_ALLOCATION_ORDER) and an ASI
 * design boots the allocators with its sensitivity model, so physical placement (and so the
 * secrets' physical addresses) can differ between entries; the secret bytes never do.
 *
 * SMT off (nosmt, /sys/devices/system/cpu/smt/control = off): the second thread of each core is
 * offline; a task pinned to it has its affinity broken and moves to the core's first thread
 * (kernel/sched/core.c select_fallback_rq(): "process %d (%s) no longer affine to cpu%d"), where
 * it time-shares with what runs there. Nothing is dropped.
 */
import { Xoshiro128 } from '../linux/kaslr.ts';
import { bootSystem, type System } from '../linux/system.ts';
import type { KernelOptions } from '../linux/kernel.ts';
import { bootKernelCached } from './boot-cache.ts';
import { defaultLayout, type Process } from '../linux/process.ts';
import type { Vm } from '../linux/kvm.ts';
import type { NetNs } from '../linux/netns.ts';
import type { MmContext } from '../linux/asid.ts';
import { SecretSet, type Secret } from '../attacks/secrets.ts';
import { selectMitigations, type MitigationState } from '../mitigations/select.ts';
import { getDesign } from '../asi/registry.ts';
import { InputError } from '../formats/files.ts';
import { getProfile, type CpuProfile } from '../uarch/profiles.ts';
import { Machine } from '../uarch/machine.ts';
import { getCostModel, nsToCycles, withCostOverrides, type CostModel } from './costs.ts';
import type { DataKind } from './footprints.ts';
import { OBJECT_KINDS, threadCount, type AttackerSpec, type IsolationSpec, type MixItem, type Scenario, type TenantSpec } from './scenario-types.ts';
import { buildSpaces, sensitivityModel, type Spaces } from './mitigate.ts';
import { bindAttackers, prepareAttackers, type AttackerRt } from './attackers.ts';
import { ThreadState } from './thread.ts';
import { buildWorkingSet, type WorkingSet } from './working-set.ts';

/** An object the footprints can touch: where the kernel reaches it, and whose it is. */
export interface ObjRef {
  readonly what: string;
  readonly kind: DataKind;
  /** Kernel VA (direct map, vmalloc, image) or, for user pages, the user VA. */
  readonly va: bigint;
  readonly size: number;
  readonly owner: number;
  /** A declared scenario object (its name), or '' for the ones the world adds. */
  readonly declared: string;
  /** Declared `cold`: not in the tenant's own working set. */
  readonly cold: boolean;
  /** Host-physical address of a guest page (-1 otherwise). */
  readonly hpa: number;
  /** The user VA the tenant's own code reaches it at (0n: none). */
  readonly userVa: bigint;
}

export interface TenantRt {
  readonly index: number;
  readonly spec: TenantSpec;
  /** The tenant's owner id (the VM, the process, the namespace). */
  readonly owner: number;
  /** The process whose mm the tenant's tasks run in (a VM's VMM). */
  readonly process: Process;
  readonly vm: Vm | null;
  readonly netns: NetNs | null;
  /**
   * Candidate objects per data kind for scope 'current'/'previous': what the kernel touches on
   * the tenant's behalf. A declared object joins the candidates of its kind (the file's pages,
   * the socket's buffers) or, for what a task has one of (cred, task_struct, kernel stack), is it.
   */
  readonly objs: Map<DataKind, ObjRef[]>;
  /** Declared objects the tenant's own code can reach (guest pages, anonymous and mapped file pages). */
  readonly own: ObjRef[];
  /** What guest-run / user-compute touch (null: nothing of its own). */
  ws: WorkingSet | null;
  /** The pages sized copies go through, by kind: the I/O buffer (user-pages) and the file (page-cache). */
  readonly sized: Map<DataKind, ObjRef[]>;
}

export interface Task {
  readonly id: number;
  readonly attacker: AttackerSpec | null;
  readonly mix: readonly MixItem[];
  readonly tenant: TenantRt;
  readonly mm: MmContext;
  /** The thread the scenario put it on, and the one it runs on (load balancing moves it: sim/balance.ts). */
  readonly home: number;
  thread: number;
  /** The vCPU index for VM tenants (0 otherwise). */
  readonly vcpu: number;
  /** Runs while a measured task has work, outside the run's cycles (scenario `background: true`). */
  readonly background: boolean;
  readonly rng: Xoshiro128;
}

export interface World {
  readonly scenario: Scenario;
  readonly iso: IsolationSpec;
  readonly profile: CpuProfile;
  readonly costs: CostModel;
  readonly state: MitigationState;
  readonly sys: System;
  readonly machine: Machine;
  readonly secrets: SecretSet;
  readonly tenants: readonly TenantRt[];
  readonly tasks: readonly Task[];
  /** Task ids per hardware thread, in scenario order. */
  readonly threadTasks: readonly (readonly number[])[];
  readonly online: Uint8Array;
  /** Kernel-global and per-CPU objects, by kind; per-CPU areas by CPU. */
  readonly globals: Map<DataKind, ObjRef[]>;
  readonly percpu: readonly ObjRef[];
  readonly threads: ThreadState;
  readonly spaces: Spaces;
  readonly attackers: readonly AttackerRt[];
  /** KASLR slide of the kernel text (footprint pages are nokaslr link addresses). */
  readonly textSlide: bigint;
  /** What the build did that a reader should know (moved tasks, placement). */
  readonly notes: string[];
  /** The run's PRNG (one per run, passed down). */
  readonly rng: Xoshiro128;
  /** Each planted secret and the object it lives in. */
  readonly secretObjects: readonly { readonly secret: Secret; readonly object: ObjRef }[];
}

const PAGE = 4096;
const MiB = 1 << 20;
const USER_OBJ_BASE = 0x600000000000n;
const FAULT_POOL_BASE = 0x6f0000000000n;
const IO_BUFFER_BASE = 0x6e0000000000n;
const FILE_BASE = 0x6d0000000000n;
const SIZED_PAGES = 32;

/** Milliseconds buildWorld() spent booting, creating the tenants (and their objects) and building the address spaces (bench/scale.ts). */
export interface BuildTimes { boot: number; tenants: number; spaces: number }

/** Build the world of isolation entry `isoIndex` of `scenario`; `times`, when given, receives the phases' durations. */
export function buildWorld(scenario: Scenario, isoIndex: number, times?: BuildTimes): World {
  const t0 = times ? performance.now() : 0;
  const iso = scenario.isolation[isoIndex];
  if (iso === undefined) throw new RangeError(`no isolation entry ${isoIndex}`);
  const m = scenario.machine;
  const profile = getProfile(m.cpu);
  const costs = withCostOverrides(getCostModel(m.cpu), scenario.costOverrides);
  const n = threadCount(m);
  const hasVm = scenario.tenants.some((t) => t.kind === 'vm');
  const notes: string[] = [...scenario.notes];
  const design = iso.design === 'off' || iso.design === 'kpti' || iso.design === 'sci-2019' ? null : getDesign(iso.design);
  let state = selectMitigations(profile, iso.mitigations, { kvm: hasVm, threadsPerCore: m.threadsPerCore, ramEnd: m.ramBytes });
  if (design !== null && design.conventional.pti === 'disabled' && state.pti) {
    state = { ...state, pti: false };
    notes.push(`${design.name} turns PTI off (as posted: ${design.conventional.source.split(';').find((x) => /PTI/.test(x))?.trim() ?? design.conventional.source}); user mode runs on its restricted tables`);
  }
  if (iso.whatIf.includes('ibpb-on-exit')) notes.push(`what-if: an IBPB on every asi_exit() of ${iso.design} (as the Aug 2025 ASI posting hard-codes it)`);
  if (iso.whatIf.includes('ephmap-tmpfs')) notes.push(`what-if: the Aug 2025 ASI branch's ephmap, the scenario's files on tmpfs: a pread64() (or a read whose footprint reads the page cache) in the restricted space copies the page-cache page through the mm's per-CPU ephmap slot (one PTE, then INVLPG) instead of faulting on the direct map`);
  if (iso.whatIf.includes('ephmap-zeroing')) notes.push(`what-if, not posted: fresh pages zeroed through the ephmap (a writable PTE in the mm's per-CPU slot, then INVLPG) instead of faulting on the direct map; the Aug 2025 posting: zeroing sensitive pages "could potentially be solved with the ephmap but requires a bit of care to avoid opening CPU attack windows"`);
  if (iso.whatIf.includes('sci-no-caps')) notes.push('what-if: sci-2019 without its 256-PTE and 64-entry backtrace caps (the symbol rule still decides every fetch)');
  if (iso.whatIf.includes('image-nonglobal')) notes.push(`what-if: the kernel image's high mapping is made non-global at boot (pti_set_kernel_image_nonglobal() without PTI), which ${iso.design} did not post`);
  if (iso.design === 'sci-2019' && !state.pti) throw new InputError(scenario.file, `isolation ${iso.name}: asi=sci-2019 needs PTI (the RFC's tables clone the KPTI user tables), and PTI is off here (${iso.cmdline || 'pti=auto on a CPU without Meltdown'}): add pti=on`);
  if (iso.stunWhatIf) notes.push(`what-if: ${iso.stun ? 'sibling stunning added to' : 'sibling stunning removed from'} ${iso.design}, which ${iso.stun ? 'did not post it' : 'posted it'}`);
  const rng = new Xoshiro128(scenario.seed);
  // no5lvl: configure_5level_paging() leaves 5-level paging off (mitigations/cmdline.ts).
  const levels = iso.mitigations.no5lvl ? 4 : m.pagingLevels;
  if (levels !== m.pagingLevels) notes.push(`no5lvl: the kernel boots 4-level paging on a machine given paging_levels: 5 (configure_5level_paging())`);
  const kernelOptions: KernelOptions = {
    cpus: n, levels, seed: scenario.kernel.kaslrSeed,
    ram: [{ start: 0x1000n, end: 0x9fc00n }, { start: BigInt(MiB), end: BigInt(m.ramBytes) }],
    kaslr: scenario.kernel.kaslr ? { seed: scenario.kernel.kaslrSeed } : false,
    pti: state.pti ? (iso.mitigations.pti === 'on' ? 'on' : 'auto') : 'off', // pti_mode: PTI_FORCE_ON only for pti=on (pti.c pti_check_boottime_disable)
    nonGlobalKernel: design !== null && design.conventional.globalKernel === 'cleared',
    nonGlobalImage: iso.whatIf.includes('image-nonglobal'),
    highmapTail: state.highmapTail, // asi_highmap_tail=unmap: the image tail leaves the high map (linux/image-tail.ts)
    cpu: {
      vendor: profile.vendor === 'GenuineIntel' ? 'intel' : 'amd', family: profile.family, pcid: state.pcid, // X86_FEATURE_PCID after nopcid (mitigations/select.ts)
      la57: profile.features.la57, gbpages: profile.features.gbpages, nx: true, meltdown: profile.bugs.has('cpu_meltdown'),
    },
  };
  // One boot per distinct kernel, copied for each entry that boots it (boot-cache.ts); a capture is read, not booted.
  const capture = scenario.kernel.capture ?? undefined;
  const sys = bootSystem({ capture, model: sensitivityModel(iso), kernelOptions, kernel: capture === undefined ? bootKernelCached(kernelOptions) : undefined });
  const t1 = times ? performance.now() : 0;
  const machine = new Machine(sys.mem, {
    cores: m.cores, threadsPerCore: m.threadsPerCore, smt: profile.smt, l1d: profile.l1d, lfbEntries: profile.lfbEntries,
    loadPorts: profile.loadPorts, storeBufferEntries: profile.storeBufferEntries, mdClear: profile.features.mdClear, flushL1d: profile.features.flushL1d,
  });
  const tenants = scenario.tenants.map((t, i) => createTenant(sys, t, i, tenantCodeBytes(scenario, t.name)));
  const secretRng = new Xoshiro128(rng.nextU32());
  const secrets = new SecretSet(sys.mem, secretRng, sys.owners);
  const declared = new Map<string, ObjRef>();
  for (const t of tenants) for (const o of t.spec.objects) declared.set(`${t.spec.name}/${o.name}`, declareObject(sys, t, o.name, o.kind, o.cold));
  const secretObjects = scenario.secrets.map((s) => {
    const object = declared.get(`${s.tenant}/${s.object}`)!;
    return { secret: plantSecret(sys, secrets, tenants.find((t) => t.spec.name === s.tenant)!, object, s), object };
  });
  for (const t of tenants) addDefaults(sys, t);
  for (const t of tenants) t.ws = buildWorkingSet(sys, t);

  // SMT off: the second thread of each core is offline (cpu_smt_disable, kernel/cpu.c).
  const online = new Uint8Array(n).fill(1);
  if (!state.smtActive && m.threadsPerCore === 2) for (let th = 1; th < n; th += 2) online[th] = 0;
  const threadTasks: number[][] = Array.from({ length: n }, () => []);
  const tasks: Task[] = [];
  const vcpuNext = new Map<number, number>();
  const addTask = (home: number, tenantName: string, mix: readonly MixItem[], attacker: AttackerSpec | null, background: boolean): void => {
    const tenant = tenants.find((t) => t.spec.name === tenantName)!;
    const thread = online[home] ? home : home - (home % m.threadsPerCore);
    if (thread !== home) notes.push(`${attacker ? 'attacker' : 'workload'} of ${tenantName} on thread ${home} (offline: SMT off) moved to thread ${thread}, time-shared`);
    const vcpu = vcpuNext.get(tenant.index) ?? 0;
    vcpuNext.set(tenant.index, vcpu + 1);
    const mm = tenant.process.ctx;
    if (mm === null) throw new Error(`tenant ${tenantName}: its process has no mm context`);
    const task: Task = { id: tasks.length, attacker, mix, tenant, mm, home, thread, vcpu: tenant.vm ? Math.min(vcpu, tenant.vm.vcpus.length - 1) : 0, background, rng: new Xoshiro128(rng.nextU32()) };
    tasks.push(task);
    threadTasks[thread].push(task.id);
  };
  for (const w of scenario.workload) addTask(w.thread, w.tenant, w.mix, null, w.background);
  for (const a of scenario.attackers) addTask(a.thread, a.tenant, [], a, false);

  const globals = globalObjects(sys);
  const percpu = sys.kernel.perCpuPa.map((pa, c) => ref(`per-CPU area ${c}`, 'percpu', sys.directMapVa(Number(pa)), Number(percpuUnit(sys)), 0, ''));
  const every = (t: Task) => { const e = t.attacker!.every; return Math.max(1, e.unit === 'cycles' ? e.value : nsToCycles(e.value, costs)); };
  const attackers = prepareAttackers(sys, tasks, secrets, state, every);
  const threads = new ThreadState(n, m.threadsPerCore, profile, sys, online);
  const textSlide = sys.kernel.sections.text - 0xffffffff81000000n;
  const t2 = times ? performance.now() : 0;
  const spaces = buildSpaces(sys, iso, state, tenants, tasks, threads, textSlide);
  bindAttackers(attackers, machine, profile, threads, spaces, sys, state);
  notes.push(...spaces.notes);
  if (times) { const t3 = performance.now(); times.boot = t1 - t0; times.tenants = t2 - t1; times.spaces = t3 - t2; }
  return { scenario, iso, profile, costs, state, sys, machine, secrets, tenants, tasks, threadTasks, online, globals, percpu, threads, spaces, attackers, textSlide, notes, rng, secretObjects };
}

function ref(what: string, kind: DataKind, va: bigint, size: number, owner: number, declared: string, extra?: { cold?: boolean; hpa?: number; userVa?: bigint }): ObjRef {
  return { what, kind, va, size, owner, declared, cold: extra?.cold ?? false, hpa: extra?.hpa ?? -1, userVa: extra?.userVa ?? 0n };
}

function percpuUnit(sys: System): bigint {
  const p = sys.kernel.perCpuPa;
  return p.length > 1 ? p[1] - p[0] : 0x40000n;
}

/** The largest hot code a process tenant's mix items run (code_bytes), which its text must hold (0: none given). */
function tenantCodeBytes(scenario: Scenario, tenant: string): number {
  let bytes = 0;
  for (const w of scenario.workload) {
    if (w.tenant !== tenant) continue;
    for (const m of w.mix) if (m.event === 'user-compute' && m.codeBytes !== undefined && m.codeBytes > bytes) bytes = m.codeBytes;
  }
  return bytes;
}

function createTenant(sys: System, t: TenantSpec, index: number, codeBytes: number): TenantRt {
  const objs = new Map<DataKind, ObjRef[]>();
  const own: ObjRef[] = [];
  if (t.kind === 'vm') {
    const vm = sys.createVm(t.name, { ramBytes: t.memoryBytes, vcpus: t.vcpus });
    return { index, spec: t, owner: vm.owner.id, process: vm.vmm, vm, netns: null, objs, own, ws: null, sized: new Map() };
  }
  if (t.kind === 'netns') {
    const netns = sys.createNetns(t.name);
    const p = sys.createProcess(`${t.name}-task`);
    return { index, spec: t, owner: netns.owner.id, process: p, vm: null, netns, objs, own, ws: null, sized: new Map() };
  }
  const p = sys.createProcess(t.name, { vmas: defaultLayout(codeBytes) });
  // The tenant's anonymous memory (assumption: one private mapping of `memory` bytes), THP-backed
  // when 2 MiB aligned unless the scenario says `thp: false` (TenantSpec.thp).
  const thp = t.thp && t.memoryBytes % (2 * MiB) === 0;
  p.mmap({ name: '[anon]', start: 0x7e0000000000n, size: t.memoryBytes, prot: 'rw-', pageShift: thp ? 21 : 12 });
  return { index, spec: t, owner: p.owner.id, process: p, vm: null, netns: null, objs, own, ws: null, sized: new Map() };
}

function push(t: TenantRt, o: ObjRef): void {
  const l = t.objs.get(o.kind);
  if (l === undefined) t.objs.set(o.kind, [o]);
  else l.push(o);
}

/** Allocate (or find) a declared object, as the kernel would hold it. */
function declareObject(sys: System, t: TenantRt, name: string, kind: keyof typeof OBJECT_KINDS, cold: boolean): ObjRef {
  const info = OBJECT_KINDS[kind];
  const dk = info.dataKind;
  const owner = t.owner;
  const p = t.process;
  const i = t.spec.objects.findIndex((x) => x.name === name);
  let o: ObjRef;
  switch (kind) {
    case 'guest-page': {
      const vm = t.vm!;
      const gpa = (0x100 + i) * PAGE; // assumption: declared guest pages from GPA 1 MiB up
      const hpa = vm.gpaToHpa(gpa);
      o = ref(`guest page GPA 0x${gpa.toString(16)} of ${t.spec.name}`, dk, sys.directMapVa(hpa), PAGE, vm.owner.id, name, { cold, hpa });
      t.own.push(o); // guest memory: the guest's own code touches it, KVM only where the exit handler does
      return o;
    }
    case 'anon-page': case 'page-cache': {
      const va = USER_OBJ_BASE + BigInt(i) * 0x2000n;
      p.mmap({ name: `obj:${name}`, start: va, size: PAGE, prot: kind === 'anon-page' ? 'rw-' : 'r--', backing: kind === 'anon-page' ? 'anon' : 'file' });
      // The kernel reaches page-cache pages through the direct map (filemap_read); the tenant's code through its mapping.
      o = ref(`${kind} ${name} of ${t.spec.name}`, dk, kind === 'anon-page' ? va : sys.directMapVa(p.paOf(va)), PAGE, owner, name, { cold, userVa: va });
      t.own.push(o);
      // An anonymous page is the tenant's private data, not one of its I/O buffers: only its own code touches it.
      if (kind === 'anon-page') return o;
      break;
    }
    case 'pipe-page': {
      const pfn = sys.buddy.alloc(0, owner);
      sys.mem.frameWords(pfn).fill(0);
      sys.recordPages(owner, pfn, 0, 'pipe-page', `pipe buffer:${t.spec.name}`);
      o = ref(`pipe page ${name} of ${t.spec.name}`, dk, sys.directMapVa(pfn * PAGE), PAGE, owner, name);
      break;
    }
    case 'task_struct': {
      const s = sys.slab.objectInfo(p.slabObjects[0])!;
      o = ref(`task_struct of ${p.comm}`, dk, s.va, s.size, s.owner, name);
      break;
    }
    case 'kernel-stack': {
      const a = sys.stacks.get(p.pid)!;
      o = ref(`kernel stack of ${p.comm}`, dk, a.va, a.size, a.owner, name);
      break;
    }
    default: {
      const cache = kind === 'cred' ? 'cred_jar' : kind === 'sock' ? 'TCP' : kind === 'sk_buff' ? 'skbuff_head_cache' : '';
      const s = cache ? sys.slab.alloc(cache, owner) : sys.slab.kmalloc(info.capacity, owner, { kind: 'skb-data' });
      o = ref(`${s.cache} object ${s.id} (${name} of ${t.spec.name})`, dk, s.va, s.size, owner, name, { cold });
    }
  }
  push(t, o);
  return o;
}

/** Kinds a task has exactly one of: a declared one is the task's own, not an extra candidate. */
const SINGLE_KINDS: ReadonlySet<DataKind> = new Set<DataKind>(['task_struct', 'kernel-stack', 'cred', 'mm_struct', 'files']);
/** Pages handed out fresh for faults (do_anonymous_page, KVM's fault-in of a guest page): a small pool reused round robin. */
const FRESH_PAGES = 8;

function plantSecret(sys: System, secrets: SecretSet, t: TenantRt, o: ObjRef, s: { name: string; bytes: number; offset: number }): Secret {
  if (o.kind === 'user-pages') return secrets.plantProcess(t.process, o.va + BigInt(s.offset), s.bytes, s.name);
  if (o.kind === 'kernel-stack') return secrets.plantVmalloc(sys.stacks.get(t.process.pid)!, s.bytes, s.name, s.offset);
  const u = BigInt.asUintN(64, o.va);
  const so = o.kind === 'guest-memory' || o.kind === 'page-cache' || o.kind === 'pipe-page' ? null : sys.slab.objectAtVa(u);
  if (so !== null) return secrets.plantSlab(sys.slab, so.id, s.name, s.bytes, s.offset);
  const pa = Number(u - sys.layout.addrs.page_offset_base);
  return secrets.plantRanges(s.name, o.owner, o.kind === 'guest-memory' ? 'guest' : o.kind === 'page-cache' ? 'page-cache' : 'phys', o.what, [[pa + s.offset, s.bytes]]);
}

/** The objects footprints reach that the scenario does not declare (the kernel's own for the tenant). */
function addDefaults(sys: System, t: TenantRt): void {
  const p = t.process;
  const has = (k: DataKind) => (t.objs.get(k)?.length ?? 0) > 0;
  const slabRef = (id: number, kind: DataKind, what: string) => {
    const s = sys.slab.objectInfo(id)!;
    return ref(`${what} (${s.cache} ${s.id})`, kind, s.va, s.size, s.owner, '');
  };
  const add = (kind: DataKind, make: () => ObjRef | ObjRef[]) => {
    if (SINGLE_KINDS.has(kind) && has(kind)) return;
    const r = make();
    for (const o of Array.isArray(r) ? r : [r]) push(t, o);
  };
  const owner = t.owner;
  add('task_struct', () => slabRef(p.slabObjects[0], 'task_struct', `task_struct of ${p.comm}`));
  add('mm_struct', () => slabRef(p.slabObjects[1], 'mm_struct', `mm_struct of ${p.comm}`));
  add('vma', () => p.slabObjects.slice(2, 6).map((id) => slabRef(id, 'vma', `vm_area_struct of ${p.comm}`)));
  add('kernel-stack', () => { const a = sys.stacks.get(p.pid)!; return ref(`kernel stack of ${p.comm}`, 'kernel-stack', a.va, a.size, a.owner, ''); });
  add('cred', () => slabRef(sys.slab.allocId('cred_jar', p.owner.id), 'cred', `cred of ${p.comm}`));
  add('files', () => slabRef(sys.slab.allocId('files_cache', p.owner.id), 'files', `files_struct of ${p.comm}`));
  // assumption: struct file (filp cache) and pipe_inode_info are not named caches of the slab model: kmalloc-256 / kmalloc-192
  add('file', () => ref(`struct file of ${p.comm}`, 'file', sys.slab.kmalloc(232, p.owner.id).va, 232, p.owner.id, ''));
  add('pipe', () => ref(`pipe_inode_info of ${p.comm}`, 'pipe', sys.slab.kmalloc(168, p.owner.id).va, 168, p.owner.id, ''));
  add('sock', () => slabRef(t.netns ? sys.netnsSocket(t.netns).sk : sys.slab.allocId('TCP', owner), 'sock', `sock of ${t.spec.name}`));
  add('sk_buff', () => slabRef(sys.slab.allocId('skbuff_head_cache', owner), 'sk_buff', `sk_buff of ${t.spec.name}`));
  add('skb-data', () => ref(`skb data of ${t.spec.name}`, 'skb-data', sys.slab.kmalloc(1500, owner, { kind: 'skb-data' }).va, 1500, owner, ''));
  add('page-table', () => ref(`PGD of ${p.comm}`, 'page-table', sys.directMapVa(p.pgd), PAGE, p.owner.id, ''));
  const pages = (name: string, n: number) => {
    const vma = p.vmas.find((v) => v.name === name);
    if (!vma) return [];
    return Array.from(vma.pfns.slice(0, n)).map((pfn, i) => ({ pfn, va: vma.start + BigInt(i * 2 ** vma.pageShift) }));
  };
  add('user-pages', () => pages('[heap]', 4).map((x) => ref(`heap page of ${p.comm}`, 'user-pages', x.va, PAGE, p.owner.id, '')));
  add('page-cache', () => pages('text', 4).map((x) => ref(`page-cache page of ${p.comm}`, 'page-cache', sys.directMapVa(x.pfn * PAGE), PAGE, p.owner.id, '')));
  add('pipe-page', () => {
    const pfn = sys.buddy.alloc(0, p.owner.id);
    sys.mem.frameWords(pfn).fill(0);
    sys.recordPages(p.owner.id, pfn, 0, 'pipe-page', `pipe buffer:${p.comm}`);
    return ref(`pipe page of ${p.comm}`, 'pipe-page', sys.directMapVa(pfn * PAGE), PAGE, p.owner.id, '');
  });
  // A fault's page (assumption: a pool of FRESH_PAGES the allocator hands out again and again).
  if (t.vm) {
    const vm = t.vm;
    const base = vm.ramBytes - MiB; // assumption: guest RAM the guest has not touched yet, below the tables the l1tf guest writes at the top
    add('fresh-page', () => Array.from({ length: FRESH_PAGES }, (_, i) => {
      const gpa = base + i * PAGE;
      return ref(`fresh guest page GPA 0x${gpa.toString(16)} of ${t.spec.name}`, 'fresh-page', sys.directMapVa(vm.gpaToHpa(gpa)), PAGE, vm.owner.id, '');
    }));
  } else {
    // Sized copies (sim/sized.ts): an I/O buffer and a cached file of SIZED_PAGES pages each (assumption: 128 KiB).
    const buf = p.mmap({ name: '[io-buffer]', start: IO_BUFFER_BASE, size: SIZED_PAGES * PAGE, prot: 'rw-' });
    const file = p.mmap({ name: '[file]', start: FILE_BASE, size: SIZED_PAGES * PAGE, prot: 'r--', backing: 'file' });
    t.sized.set('user-pages', Array.from(buf.pfns, (_, i) => ref(`I/O buffer page ${i} of ${p.comm}`, 'user-pages', IO_BUFFER_BASE + BigInt(i * PAGE), PAGE, p.owner.id, '')));
    t.sized.set('page-cache', Array.from(file.pfns, (pfn, i) => ref(`file page ${i} of ${p.comm}`, 'page-cache', sys.directMapVa(pfn * PAGE), PAGE, p.owner.id, '')));
    const pool = p.mmap({ name: '[fault-pool]', start: FAULT_POOL_BASE, size: FRESH_PAGES * PAGE, prot: 'rw-' });
    add('fresh-page', () => Array.from(pool.pfns, (pfn) => ref(`fresh page of ${p.comm}`, 'fresh-page', sys.directMapVa(pfn * PAGE), PAGE, p.owner.id, '')));
  }
  const vm = t.vm;
  if (vm) {
    add('kvm_vcpu', () => vm.vcpus.map((v) => slabRef(v.vcpu, 'kvm_vcpu', `vcpu_vmx ${v.id} of ${t.spec.name}`)));
    add('kvm-run', () => vm.vcpus.map((v) => ref(`kvm_run ${v.id} of ${t.spec.name}`, 'kvm-run', sys.directMapVa(v.run), PAGE, vm.owner.id, '')));
    add('ept', () => vm.mmuPages.slice(0, 4).map((x) => ref(`EPT table of ${t.spec.name}`, 'ept', sys.directMapVa(x.pa), PAGE, vm.owner.id, '')));
    add('kvm', () => {
      // The VM's area records (owner = the VM's owner, or, if not there, anyone's): not a scan of every record per VM.
      const what = `struct kvm:${t.spec.name}`;
      const a = (sys.allocationsOf(vm.owner.id).find((x) => x.what === what) ?? sys.allocations().find((x) => x.what === what))!;
      return ref(`struct kvm of ${t.spec.name}`, 'kvm', a.va, a.ranges.reduce((s, r) => s + r.bytes, 0), vm.owner.id, '');
    });
    // assumption: without declared guest pages, KVM touches the first guest pages (GPA 0..)
    add('guest-memory', () => [0, 1, 2, 3].map((i) => ref(`guest page GPA 0x${(i * PAGE).toString(16)} of ${t.spec.name}`, 'guest-memory', sys.directMapVa(vm.gpaToHpa(i * PAGE)), PAGE, vm.owner.id, '')));
  }
}

/** Kernel-wide objects: dentries and inodes of a path walk, and .data of the image. */
function globalObjects(sys: System): Map<DataKind, ObjRef[]> {
  const g = new Map<DataKind, ObjRef[]>();
  const slab = (cache: string, kind: DataKind, count: number) => Array.from({ length: count }, () => {
    const s = sys.slab.alloc(cache, 0);
    return ref(`${cache} ${s.id} (kernel)`, kind, s.va, s.size, 0, '');
  });
  g.set('dentry', slab('dentry', 'dentry', 8));
  g.set('inode', slab('inode_cache', 'inode', 4));
  const k = sys.kernel.sections;
  // assumption: kernel-global data (sys_call_table reads, jiffies, tk_core, futex_hash, struct page) is taken from .data
  g.set('kernel-global', [ref('kernel .data', 'kernel-global', k.sdata, Number((k.initBegin < k.bssStart ? k.initBegin : k.bssStart) - k.sdata), 0, '')]);
  return g;
}
