/**
 * Attackers are tasks on hardware threads (docs/DESIGN.md "Attackers are threads"): at every `every`
 * of their thread's clock they run their primitives (attacks/*) against the modelled state at
 * that instant — the core's L1D, fill buffers, load ports and store-buffer partition, and the
 * mappings of the attacker's current CR3 — and only the bytes read that way are scored.
 *
 * What the attacker knows and prepares (assumptions, stated once here):
 *  - the physical (and direct-map) addresses of the planted secrets: the model's attacker aims
 *    at them directly instead of scanning, so a leak is found as soon as the state allows one;
 *  - l1tf-guest: the attacker guest writes, in its own page tables, one not-present PTE per
 *    secret page whose address bits name the secret's HOST frame (Foreshadow-NG, l1tf.rst
 *    "Malicious guest in a virtual machine"; linux/kvm.ts plantNotPresentPte);
 *  - l1tf-native: the attacker process has, per secret page, a not-present PTE the kernel wrote
 *    with that frame in its address bits (l1tf.rst: "Operating Systems store arbitrary
 *    information in the address bits of a PTE which is marked non present", e.g. a swap entry);
 *    with PTE inversion the kernel stores the bits inverted (pgtable-invert.h
 *    flip_protnone_guard(): "PTE inversion"), pointing above the cacheable address space;
 *  - meltdown: user-mode loads of each secret's direct-map address through the thread's CURRENT
 *    CR3 at CPL 3 (the PTI user copy when PTI is on);
 *  - spectre-v1: a bounds-check-bypass gadget in the attacker's own kernel context (its
 *    syscalls / VM exits, scenario-types.ts SpectreV1Spec), run at each attack instant through the
 *    tables that context has at that point of the kernel path: on the entry path, the ASI
 *    restricted space if the design builds one for the attacker's context, else its full kernel
 *    tables; after an exit the design takes on an unmapped touch ('exit-retry', 'abort'), the full
 *    tables until re-entry; a design that refuses instead of exiting (netns) never leaves its space.
 *    A 'usercopy' or 'swapgs' gadget only works while the spectre_v1 mitigation is off;
 *  - mfbds/mlpds/msbds/taa: sampling, no address (taa only while TSX is on).
 */
import { l1tfGuest, l1tfNative, type VcpuThread } from '../attacks/l1tf.ts';
import { mfbds, mlpds, msbds } from '../attacks/mds.ts';
import { meltdown } from '../attacks/meltdown.ts';
import { spectreV1 } from '../attacks/spectre-v1.ts';
import { ropRead } from '../attacks/rop.ts';
import { halves } from './working-set.ts';
import { ATTACK_NAMES } from '../attacks/sample.ts';
import type { SciTaskTables } from '../asi/sci.ts';
import { taa } from '../attacks/taa.ts';
import type { AttackName, AttackThread, Samples, SamplingThread } from '../attacks/sample.ts';
import type { SecretSet } from '../attacks/secrets.ts';
import type { System } from '../linux/system.ts';
import type { MitigationState } from '../mitigations/select.ts';
import type { CpuProfile } from '../uarch/profiles.ts';
import type { Machine } from '../uarch/machine.ts';
import { CpuState } from '../x86/cpu.ts';
import { Mmu } from '../x86/mmu.ts';
import type { ThreadState } from './thread.ts';
import type { Spaces } from './mitigate.ts';
import type { Task, TenantRt } from './world.ts';

const PAGE = 4096;
const GVA_BASE = 0x40000000n;
const UVA_BASE = 0x500000000000n;
const PTE_PFN_MASK = 0x000ffffffffff000n;

/** One page-sized piece of a secret, with the addresses each primitive uses. */
interface Target {
  readonly pa: number;
  readonly len: number;
  readonly dmLo: number;
  readonly dmHi: number;
  gLo: number;
  gHi: number;
  uLo: number;
  uHi: number;
}

export interface AttackerRt {
  readonly task: Task;
  readonly names: readonly AttackName[];
  /** `names` with the samplers first. */
  readonly order: readonly AttackName[];
  readonly every: number;
  readonly targets: Target[];
  vcpu: VcpuThread | null;
  /** The thread at CPL 3 (its own Mmu): meltdown, l1tf-native. */
  user: AttackThread | null;
  sampler: SamplingThread | null;
  /** The attacker's kernel-mode views (spectre-v1): on its restricted space (null: none) and on its full tables. */
  gadget: AttackThread | null;
  gadgetFull: AttackThread | null;
  /** Which view the gadget runs on, and whether the v1 software mitigations close it (bindAttackers). */
  gadgetRestricted: boolean;
  gadgetBlocked: boolean;
  /** rop under SCI: the attacker's own SCI tables, the chain's entry and first gadget; attempts refused. */
  ropSci: { tables: SciTaskTables; view: AttackThread; entry: bigint; gadget: bigint } | null;
  ropRefused: number;
  /** Per (attack, source, entry): the index of the last sample kept (compact()). */
  readonly lastKept: Int32Array;
}

/** Split every secret into page pieces. */
function targetsOf(sys: System, secrets: SecretSet): Target[] {
  const out: Target[] = [];
  for (const s of secrets.all()) {
    for (const r of s.ranges) {
      let pa = r.pa;
      const end = r.pa + r.len;
      while (pa < end) {
        const n = Math.min(end, pa - (pa % PAGE) + PAGE) - pa;
        const dm = halves(sys.directMapVa(pa));
        out.push({ pa, len: n, dmLo: dm.lo, dmHi: dm.hi, gLo: 0, gHi: 0, uLo: 0, uHi: 0 });
        pa += n;
      }
    }
  }
  return out;
}

/**
 * Prepare the attackers' own state (guest PTEs, user PTEs). Runs before the address spaces are
 * built, since it changes page tables they snapshot.
 */
export function prepareAttackers(sys: System, tasks: readonly Task[], secrets: SecretSet, state: MitigationState, everyCycles: (t: Task) => number): AttackerRt[] {
  const guestTables = new Map<TenantRt, ReturnType<NonNullable<TenantRt['vm']>['guestPageTables']>>();
  const out: AttackerRt[] = [];
  for (const task of tasks) {
    const a = task.attacker;
    if (a === null) continue;
    const targets = targetsOf(sys, secrets);
    const sampler = (n: AttackName) => n === 'mfbds' || n === 'mlpds' || n === 'msbds' || n === 'taa';
    const order = [...a.attacks.filter(sampler), ...a.attacks.filter((n) => !sampler(n))];
    const rt: AttackerRt = {
      task, names: a.attacks, order, every: everyCycles(task), targets, vcpu: null, user: null, sampler: null,
      gadget: null, gadgetFull: null, gadgetRestricted: false, gadgetBlocked: false, ropSci: null, ropRefused: 0,
      lastKept: new Int32Array(ATTACK_NAMES.length * 8 * KEY_ENTRIES).fill(-1),
    };
    const vm = task.tenant.vm;
    if (a.attacks.includes('l1tf-guest') && vm) {
      let g = guestTables.get(task.tenant);
      if (g === undefined) {
        g = vm.guestPageTables();
        targets.forEach((x, i) => vm.plantNotPresentPte(g!, GVA_BASE + BigInt(i * PAGE), x.pa - (x.pa % PAGE)));
        guestTables.set(task.tenant, g);
      }
      targets.forEach((x, i) => { const h = halves(GVA_BASE + BigInt(i * PAGE + (x.pa % PAGE))); x.gLo = h.lo; x.gHi = h.hi; });
      rt.vcpu = { cpu: null as unknown as VcpuThread['cpu'], hw: null as unknown as VcpuThread['hw'], vm, guestCr3: g.cr3, guestLevels: 4, ept: state.ept };
    }
    if (a.attacks.includes('l1tf-native') && !vm && targets.length > 0) {
      const p = task.tenant.process;
      const base = UVA_BASE + BigInt(task.id) * 0x100000000n;
      p.mmap({ name: 'l1tf-bait', start: base, size: targets.length * PAGE, prot: 'rw-' });
      targets.forEach((x, i) => {
        const va = base + BigInt(i * PAGE);
        const frame = BigInt(x.pa - (x.pa % PAGE));
        // A not-present PTE holding the frame; inverted when the kernel applies PTE inversion.
        const value = state.l1tfPteInversion ? ~frame & PTE_PFN_MASK : frame;
        sys.mem.write64Big(Number(p.pt.entryAddr(va, 1)), value);
        const h = halves(va + BigInt(x.pa % PAGE));
        x.uLo = h.lo;
        x.uHi = h.hi;
      });
    }
    out.push(rt);
  }
  return out;
}

/** Bind the attackers to the machine and the built spaces. */
export function bindAttackers(list: AttackerRt[], machine: Machine, profile: CpuProfile, threads: ThreadState, spaces: Spaces, sys: System, state: MitigationState): void {
  for (const rt of list) {
    const t = rt.task.thread;
    const hw = machine.threads[t];
    if (rt.vcpu) rt.vcpu = { ...rt.vcpu, cpu: profile, hw };
    rt.user = { cpu: profile, hw, mmu: threads.mmus[t] };
    rt.sampler = { cpu: profile, hw };
    const view = (root: number): AttackThread => {
      const cpu = new CpuState(profile.maxPhysBits, { pdpe1gb: profile.features.gbpages });
      cpu.load({ cr4: threads.cpus[t].cr4, efer: threads.cpus[t].efer, cr3: root, cpl: 0 });
      return { cpu: profile, hw, mmu: new Mmu(cpu, sys.mem) };
    };
    const sciTables = spaces.sci?.tables[rt.task.id] ?? null;
    if (rt.names.includes('rop') || rt.names.includes('spectre-v1')) rt.gadgetFull = view(rt.task.tenant.process.pgd);
    if (rt.names.includes('rop') && sciTables !== null) {
      const ks = spaces.sci!.kallsyms;
      const cc = ks.addressOf('commit_creds');
      if (cc === undefined) throw new Error('rop: commit_creds is not in the kallsyms');
      // The RFC's example chain: a return into the middle of a function (commit_creds+0x1a).
      rt.ropSci = { tables: sciTables, view: { cpu: profile, hw, mmu: sciTables.mmu }, entry: sciTables.syscallEntry, gadget: cc + 0x1an };
    }
    if (rt.names.includes('spectre-v1')) {
      const spec = rt.task.attacker!.spectreV1;
      const s = spaces.asi !== null ? spaces.asiSpace[rt.task.tenant.index] : -1;
      // Under SCI the syscall runs on the task's SCI tables from its start: the gadget sees what they map then.
      rt.gadget = s >= 0 ? view(spaces.asi!.spaces[s].root) : sciTables !== null ? view(sciTables.root) : null;
      const policy = spaces.design?.faultPolicy;
      const leaves = policy === 'exit-retry' || policy === 'abort';
      rt.gadgetRestricted = rt.gadget !== null && (spec.window === 'entry' || !leaves || sciTables !== null);
      // bugs.c: "Mitigation: usercopy/swapgs barriers and __user pointer sanitization" unless nospectre_v1.
      rt.gadgetBlocked = spec.gadget !== 'unaudited' && state.spectreV1 !== 'none';
    }
  }
}

const KEY_ENTRIES = 1024;

/**
 * Drop the samples from index `from` on that repeat, byte for byte, the last kept sample of the
 * same attack, source and structure entry (a buffer entry nobody refilled since the last tick).
 * Scoring pools bytes per secret and keeps the earliest time, so the dropped ones add nothing;
 * keeping them only grows the buffer the scorer scans.
 */
function compact(out: Samples, from: number, last: Int32Array): void {
  let k = from;
  let used = from < out.count ? out.start[from] : out.used;
  const d = out.data;
  for (let i = from; i < out.count; i++) {
    const key = (out.attack[i] * 8 + out.source[i]) * KEY_ENTRIES + (out.entry[i] & (KEY_ENTRIES - 1));
    const j = last[key];
    const len = out.len[i];
    let same = j >= 0 && out.len[j] === len && out.addr[j] === out.addr[i];
    for (let b = 0; same && b < len; b++) same = d[out.start[j] + b] === d[out.start[i] + b];
    if (same) continue;
    if (k !== i) {
      d.copyWithin(used, out.start[i], out.start[i] + len);
      out.start[k] = used; out.len[k] = len; out.addr[k] = out.addr[i]; out.truePa[k] = out.truePa[i];
      out.attack[k] = out.attack[i]; out.source[k] = out.source[i]; out.entry[k] = out.entry[i];
      out.attacker[k] = out.attacker[i]; out.from[k] = out.from[i]; out.at[k] = out.at[i];
    }
    used = out.start[k] + len;
    last[key] = k;
    k++;
  }
  out.count = k;
  out.used = used;
}

/** Run every primitive of `rt` at instant `at`, appending to `out`; returns the bytes obtained. */
export function runAttacks(rt: AttackerRt, state: MitigationState, out: Samples, at: number): number {
  const from = out.count;
  let got = 0;
  const tg = rt.targets;
  // Samplers first: the loads of meltdown / spectre-v1 pass the attacker's own buffers.
  for (const name of rt.order) {
    switch (name) {
      case 'l1tf-guest':
        if (rt.vcpu) for (const x of tg) got += l1tfGuest(rt.vcpu, x.gLo, x.gHi, x.len, out, at);
        break;
      case 'l1tf-native': case 'meltdown': {
        const u = rt.user!;
        const cpu = u.mmu.cpu;
        const cpl = cpu.cpl;
        cpu.cpl = 3; // the attack runs in user mode, on whatever CR3 user mode has now
        for (const x of tg) got += name === 'meltdown' ? meltdown(u, x.dmLo, x.dmHi, x.len, out, at) : x.uLo === 0 && x.uHi === 0 ? 0 : l1tfNative(u, x.uLo, x.uHi, x.len, out, at);
        cpu.cpl = cpl;
        break;
      }
      case 'rop': {
        const r = rt.ropSci;
        if (r === null) { for (const x of tg) got += ropRead(rt.gadgetFull!, x.dmLo, x.dmHi, x.len, out, at, rt.task.thread); break; }
        // Under SCI the hijacked syscall's fetches go through sci_verify_code_access().
        const mmu = r.view.mmu;
        const userLo = mmu.cpu.cr3 % 4294967296;
        const userHi = Math.floor(mmu.cpu.cr3 / 4294967296);
        const s = r.tables.syscall();
        s.fetch(r.entry);
        s.fetch(r.gadget);
        if (s.killed) rt.ropRefused++;
        else for (const x of tg) { s.read((BigInt(x.dmHi >>> 0) << 32n) | BigInt(x.dmLo >>> 0)); got += ropRead(r.view, x.dmLo, x.dmHi, x.len, out, at, rt.task.thread); }
        s.end();
        mmu.writeCr3(userLo, userHi); // back to user mode on the CR3 it had (a killed attacker is respawned: assumption)
        break;
      }
      case 'spectre-v1': {
        if (rt.gadgetBlocked) break;
        const g = rt.gadgetRestricted ? rt.gadget! : rt.gadgetFull!;
        for (const x of tg) got += spectreV1(g, x.dmLo, x.dmHi, x.len, out, at, rt.task.thread);
        break;
      }
      case 'mfbds': got += mfbds(rt.sampler!, out, at); break;
      case 'mlpds': got += mlpds(rt.sampler!, out, at); break;
      case 'msbds': got += msbds(rt.sampler!, out, at); break;
      case 'taa': got += taa(rt.sampler!, state.tsxEnabled, out, at); break;
    }
  }
  compact(out, from, rt.lastKept);
  return got;
}
