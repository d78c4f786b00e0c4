/**
 * asi_enter / asi_exit and the events around them (src/asi/session.ts). Expected CR3 values,
 * NOFLUSH decisions, flushes and stuns are written from the design sources, not recomputed:
 *  - Chartre v4 asi.h: "ASI PCID = (ASI Type PCID Prefix << 4) | Kernel PCID"; asi_update_flush()
 *    sets NOFLUSH when the per-CPU record {pgtable_id, gen} matches; ASI_INTERRUPT switches to
 *    original_cr3 | NOFLUSH at idepth 1, ASI_RESUME back at 0; fault_abort retries on the full tables;
 *  - 2022 tlb.c: asi_pcid() = kern_pcid | index << 9 (PTI), KVM class index 1; hooks stun on exit,
 *    flush L1D + clear buffers and unstun on enter; interrupts run restricted until a fault;
 *  - RFC v2 06/29: kern_pcid | (class_id + 1) << 9, never NOFLUSH; 21/29 and 27/29 taint policy;
 *  - calling.h SWITCH_TO_USER_CR3: PGD | 1 << 12, PCID | 1 << 11, NOFLUSH unless the user PCID
 *    is marked for flushing (a new ASID slot marks it).
 */
import { describe, expect, it } from 'vitest';
import { getDesign, makeContext, systemFor } from '../../src/asi/registry.ts';
import { buildSpace } from '../../src/asi/restricted.ts';
import { AsiSession, type AsiThread } from '../../src/asi/session.ts';
import {
  ACT_IBPB, ACT_IPI, ACT_KILL, ACT_L1D_FLUSH, ACT_RSB_FILL, ACT_STUN, ACT_UNSTUN, ACT_VERW, FAULT_GENUINE, FAULT_KILL,
  FAULT_NOT_ASI, FAULT_RETRY, INTR_IRQ, INTR_NMI,
} from '../../src/asi/types.ts';
import { ASI_TAINT_GUEST_CONTROL, ASI_TAINT_KERNEL_DATA, ASI_TAINT_OTHER_MM_CONTROL } from '../../src/asi/taint.ts';
import { AsidState } from '../../src/linux/asid.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { ACCESS_READ, CR0_PG, CR0_WP, CR4_PAE, CR4_PCIDE, CR4_PGE, EFER_LMA, EFER_NXE } from '../../src/x86/bits.ts';
import { vaHalves } from '../../src/x86/walk.ts';

const NOFLUSH = 1n << 63n;

function setup(name: string, o: { l1tf?: boolean; ctx?: 'vm' | 'process' | 'netns'; stun?: boolean } = {}) {
  const design = getDesign(name);
  const sys = systemFor(design);
  const asids = new AsidState({ cpus: 2, pcid: true, pti: true, initPgd: sys.kernel.kernelRoot });
  const threads: AsiThread[] = [0, 1].map((id) => {
    const cpu = new CpuState(52);
    cpu.load({ cr0: CR0_PG | CR0_WP | 0x33, cr4: CR4_PAE | CR4_PGE | CR4_PCIDE, efer: EFER_LMA | EFER_NXE, cr3: sys.kernel.kernelRoot });
    return { id, cpu: id, sibling: 1 - id, mmu: new Mmu(cpu, sys.mem) };
  });
  const actions: Array<[number, number, number]> = [];
  const s = new AsiSession({ design, system: sys, threads, asids, stun: o.stun, features: { l1tf: o.l1tf ?? true }, onAction: (t, a, arg) => actions.push([t, a, arg]) });
  const kind = o.ctx ?? design.contextKinds[0];
  const ctx0 = makeContext(sys, design, { [kind]: 0 });
  const ctx1 = makeContext(sys, design, { [kind]: 1 });
  const id0 = s.addSpace(buildSpace(sys, design, ctx0));
  const id1 = s.addSpace(buildSpace(sys, design, ctx1));
  for (const t of [0, 1]) s.bootThread(t);
  const cr3 = (t: number) => BigInt(threads[t].mmu.cpu.cr3);
  /** The last CR3 value written, bit 63 included (the Mmu drops it). */
  let last = 0n;
  for (const th of threads) {
    const w = th.mmu.writeCr3.bind(th.mmu);
    th.mmu.writeCr3 = (lo: number, hi: number) => { last = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0); return w(lo, hi); };
  }
  const translates = (t: number, va: bigint) => { const { lo, hi } = vaHalves(va); return threads[t].mmu.translate(lo, hi, ACCESS_READ); };
  return { design, sys, s, threads, actions, ctx0, ctx1, id0, id1, cr3, lastWrite: () => last, translates };
}

/** A VA the full tables map and the restricted space of ctx0 does not: the other VM's guest RAM in the direct map. */
function otherVmRam(w: ReturnType<typeof setup>): bigint {
  return w.sys.directMapVa(w.sys.vms[1].ram.pfns[0] * 4096);
}

describe('google-asi-2025 (RFC v2)', () => {
  it('enter: kern_pcid | 1 << 9, no NOFLUSH; exit: the mm\'s CR3, no NOFLUSH', () => {
    const w = setup('google-asi-2025');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    const kern = BigInt(w.ctx0.process!.pgd) | 2n; // init_mm holds slot 0; the first mm gets ASID 1 -> kPCID 2 (tlb.c)
    expect(w.cr3(0)).toBe(kern);
    w.s.enter(0, w.id0);
    expect(w.lastWrite()).toBe(BigInt(w.s.spaces[w.id0].root) | 2n | (1n << 9n));
    w.s.exit(0);
    expect(w.lastWrite()).toBe(kern);
    w.s.enter(0, w.id0);
    expect(w.lastWrite() & NOFLUSH).toBe(0n);
    expect(w.s.counters.cr3NoFlush).toBe(0);
  });

  it('taints decide the flushes as kvm_x86_init_asi_class() and asi.c say', () => {
    const w = setup('google-asi-2025');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.enter(0, w.id0); // KERNEL_DATA pending, protect_data has it -> L1D flush; no control taint yet
    expect(w.actions.map((a) => a[1])).toEqual([ACT_L1D_FLUSH]);
    expect(w.s.taints[0]).toBe(ASI_TAINT_GUEST_CONTROL); // .set = ASI_TAINT_GUEST_CONTROL (no IBPB-on-VMexit)
    w.actions.length = 0;
    w.s.exit(0); // maybe_flush_control(NULL): GUEST_CONTROL -> IBPB + RSB fill; then KERNEL_DATA
    expect(w.actions.map((a) => a[1])).toEqual([ACT_IBPB, ACT_RSB_FILL]);
    expect(w.s.taints[0]).toBe(ASI_TAINT_KERNEL_DATA);
    w.actions.length = 0;
    w.s.enter(0, w.id0);
    w.s.relax(0);
    w.s.contextSwitch(0, 2, w.ctx1.process!.ctx!); // exit (IBPB for the guest's control), then squash into OTHER_MM
    expect(w.s.taints[0] & ASI_TAINT_OTHER_MM_CONTROL).toBe(0); // the exit already flushed control taints
    w.actions.length = 0;
    w.s.enter(0, w.id1);
    expect(w.actions.map((a) => a[1])).toEqual([ACT_L1D_FLUSH]);
  });

  it('no L1D flush on a CPU without L1TF; no sibling stun (future work in the RFC)', () => {
    const w = setup('google-asi-2025', { l1tf: false });
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.contextSwitch(1, 2, w.ctx1.process!.ctx!);
    w.s.enter(1, w.id1);
    w.s.enter(0, w.id0);
    w.s.exit(0);
    expect(w.actions.map((a) => a[1])).not.toContain(ACT_L1D_FLUSH);
    expect(w.actions.map((a) => a[1])).not.toContain(ACT_STUN);
  });

  it('an NMI runs restricted until it touches sensitive memory, then returns to the restricted CR3', () => {
    const w = setup('google-asi-2025');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.enter(0, w.id0);
    const restricted = w.cr3(0);
    const writes = w.s.counters.cr3Writes;
    w.s.interruptBegin(0, INTR_IRQ);
    expect(w.s.counters.cr3Writes).toBe(writes); // no automatic exit
    w.s.interruptBegin(0, INTR_NMI);
    const va = otherVmRam(w);
    expect(w.translates(0, va)).toBe(false); // #PF in the restricted space
    expect(w.s.fault(0, vaHalves(va).lo, vaHalves(va).hi, ACCESS_READ)).toBe(FAULT_RETRY);
    expect(w.translates(0, va)).toBe(true); // retried on the full tables
    w.s.interruptEnd(0);
    expect(w.cr3(0)).not.toBe(restricted); // still inside the IRQ handler: full tables
    w.s.interruptEnd(0);
    expect(w.cr3(0)).toBe(restricted); // asi_intr_exit() at depth 0 -> __asi_enter()
    expect(w.translates(0, va)).toBe(false);
  });
});

describe('google-asi-2022', () => {
  it('PCID kern | 1 << 9; re-entry sets NOFLUSH when nothing changed; exit NOFLUSH', () => {
    const w = setup('google-asi-2022');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.enter(0, w.id0);
    const root = BigInt(w.s.spaces[w.id0].root);
    expect(w.lastWrite()).toBe(root | 2n | (1n << 9n));
    w.s.exit(0);
    expect(w.lastWrite()).toBe(BigInt(w.ctx0.process!.pgd) | 2n | NOFLUSH);
    w.s.enter(0, w.id0);
    expect(w.lastWrite()).toBe(root | 2n | (1n << 9n) | NOFLUSH);
    w.s.spaces[w.id0].gen++; // the tables changed: the next switch must flush
    w.s.exit(0);
    w.s.enter(0, w.id0);
    expect(w.lastWrite() & NOFLUSH).toBe(0n);
  });

  it('as posted it does not stun (15/47: empty stun_sibling() stubs)', () => {
    const w = setup('google-asi-2022');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.contextSwitch(1, 2, w.ctx1.process!.ctx!);
    w.s.enter(0, w.id0);
    w.s.enter(1, w.id1);
    w.actions.length = 0;
    w.s.exit(0);
    expect(w.actions.map((a) => a[1])).not.toContain(ACT_STUN);
    expect(w.s.stun.isStunned(1)).toBe(false);
  });

  it('with the stun what-if: exit stuns the sibling inside its space (IPI); re-entry releases it; enter flushes L1D and buffers', () => {
    const w = setup('google-asi-2022', { stun: true });
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.contextSwitch(1, 2, w.ctx1.process!.ctx!);
    w.s.enter(0, w.id0);
    w.s.enter(1, w.id1);
    w.actions.length = 0;
    w.s.exit(0);
    expect(w.actions).toEqual([[0, ACT_IPI, 1], [0, ACT_STUN, 1]]);
    expect(w.s.stun.isStunned(1)).toBe(true);
    w.actions.length = 0;
    w.s.enter(0, w.id0);
    expect(w.actions).toEqual([[0, ACT_L1D_FLUSH, -1], [0, ACT_VERW, -1], [0, ACT_UNSTUN, 1]]);
    expect(w.s.stun.isStunned(1)).toBe(false);
    // A sibling already on the full tables is not stunned.
    w.s.exit(1);
    w.actions.length = 0;
    w.s.exit(0);
    expect(w.actions.map((a) => a[1])).not.toContain(ACT_STUN);
  });

  it('context switch exits ASI', () => {
    const w = setup('google-asi-2022');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.enter(0, w.id0);
    w.s.contextSwitch(0, 2, w.ctx1.process!.ctx!);
    expect(w.s.curr[0]).toBe(-1);
    expect(w.cr3(0) & ~0xfffn).toBe(BigInt(w.ctx1.process!.pgd));
  });
});

describe('kvm-asi-2019 (Chartre)', () => {
  it('(prefix << 4) | kernel PCID; re-enter NOFLUSH; exit to original_cr3 | NOFLUSH', () => {
    const w = setup('kvm-asi-2019');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    const orig = w.cr3(0);
    w.s.enter(0, w.id0);
    const root = BigInt(w.s.spaces[w.id0].root);
    expect(w.lastWrite()).toBe(root | 0x12n); // prefix 0x01, kernel PCID 2
    w.s.exit(0);
    expect(w.lastWrite()).toBe(orig | NOFLUSH);
    w.s.enter(0, w.id0);
    expect(w.lastWrite()).toBe(root | 0x12n | NOFLUSH);
  });

  it('an interrupt switches to the full tables at once and ASI_RESUME restores the ASI CR3; an NMI nests', () => {
    const w = setup('kvm-asi-2019');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    const orig = w.cr3(0);
    w.s.enter(0, w.id0);
    const iso = w.cr3(0);
    w.s.interruptBegin(0, INTR_IRQ);
    expect(w.lastWrite()).toBe(orig | NOFLUSH);
    const writes = w.s.counters.cr3Writes;
    w.s.interruptBegin(0, INTR_NMI);
    w.s.interruptEnd(0);
    expect(w.s.counters.cr3Writes).toBe(writes); // idepth 2 -> 1: no switch
    expect(w.cr3(0)).toBe(orig);
    w.s.interruptEnd(0);
    expect(w.cr3(0)).toBe(iso);
    expect(w.lastWrite() & NOFLUSH).toBe(NOFLUSH);
  });

  it('fault_abort: a fault on a full-space address aborts isolation and is retried; exits flush L1D at re-entry', () => {
    const w = setup('kvm-asi-2019');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.enter(0, w.id0);
    w.actions.length = 0;
    const va = otherVmRam(w);
    expect(w.s.fault(0, vaHalves(va).lo, vaHalves(va).hi, ACCESS_READ)).toBe(FAULT_RETRY);
    expect(w.s.curr[0]).toBe(-1);
    expect(w.translates(0, va)).toBe(true);
    expect(w.s.fault(0, vaHalves(va).lo, vaHalves(va).hi, ACCESS_READ)).toBe(FAULT_NOT_ASI);
    w.s.enter(0, w.id0);
    expect(w.actions.map((a) => a[1])).toContain(ACT_L1D_FLUSH); // vcpu->arch.l1tf_flush_l1d
  });

  it('schedule out exits and saves the session; schedule in re-enters it', () => {
    const w = setup('kvm-asi-2019');
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    w.s.enter(0, w.id0);
    w.s.contextSwitch(0, 2, w.ctx1.process!.ctx!);
    expect(w.s.curr[0]).toBe(-1);
    w.s.contextSwitch(0, 1, w.ctx0.process!.ctx!);
    expect(w.s.curr[0]).toBe(w.id0);
    expect(w.cr3(0) & ~0xfffn).toBe(BigInt(w.s.spaces[w.id0].root));
  });
});

describe('kpti', () => {
  it('return to user: PGD | 1 << 12 with uPCID = kPCID | 1 << 11, flushing once after a new ASID, then NOFLUSH', () => {
    const w = setup('kpti', { ctx: 'process' });
    const p = w.ctx0.process!;
    w.s.contextSwitch(0, 1, p.ctx!);
    w.s.returnToUser(0, w.id0);
    expect(w.lastWrite()).toBe(BigInt(p.pgd) | 0x1000n | 0x800n | 2n);
    w.s.interruptBegin(0, INTR_IRQ); // kernel entry: SWITCH_TO_KERNEL_CR3 with NOFLUSH
    expect(w.lastWrite()).toBe(BigInt(p.pgd) | 2n | NOFLUSH);
    w.s.interruptEnd(0);
    expect(w.lastWrite()).toBe(BigInt(p.pgd) | 0x1000n | 0x800n | 2n | NOFLUSH);
  });
});

describe('netns-asi', () => {
  it('entered at context switch; touching another namespace\'s object is refused', () => {
    const w = setup('netns-asi');
    w.s.assignTask(7, w.id0);
    w.s.contextSwitch(0, 7, null);
    expect(w.cr3(0) & ~0xfffn).toBe(BigInt(w.s.spaces[w.id0].root));
    const other = w.sys.slab.objectInfo(w.ctx1.netns!.net)!;
    const { lo, hi } = vaHalves(other.va);
    expect(w.translates(0, other.va)).toBe(false);
    expect(w.s.fault(0, lo, hi, ACCESS_READ)).toBe(FAULT_KILL);
    expect(w.actions.map((a) => a[1])).toEqual([ACT_KILL]);
    const hole = vaHalves(w.sys.layout.addrs.vmalloc_base + (1n << 40n));
    expect(w.s.fault(0, hole.lo, hole.hi, ACCESS_READ)).toBe(FAULT_GENUINE);
    expect(w.s.exit(0)).toBe(false); // never left
  });
});
