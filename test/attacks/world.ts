/**
 * A small hand-built host for the attack tests, from the real structures: a Machine shaped by a
 * CPU profile, PhysMemory, the buddy and slab allocators, a kernel PGD pair (swapper_pg_dir and
 * its KPTI user copy) whose kernel copy maps 1 GiB of RAM in the direct map with PAGE_KERNEL
 * (supervisor, NX), processes whose PGDs clone that kernel half (pgd_ctor), and KVM.
 * Not a test file (no .test.ts): a helper the tests share.
 */
import { Kvm } from '../../src/linux/kvm.ts';
import { BuddyAllocator } from '../../src/linux/buddy.ts';
import { __PAGE_KERNEL } from '../../src/linux/cpa.ts';
import { Xoshiro128 } from '../../src/linux/kaslr.ts';
import { Owners } from '../../src/linux/owners.ts';
import { ProcessTable } from '../../src/linux/process.ts';
import { SlabAllocator } from '../../src/linux/slab.ts';
import { PhysMemory } from '../../src/phys/memory.ts';
import { Machine } from '../../src/uarch/machine.ts';
import { getProfile, type CpuProfile } from '../../src/uarch/profiles.ts';
import { ACCESS_READ, CR4_PAE } from '../../src/x86/bits.ts';
import { CpuState } from '../../src/x86/cpu.ts';
import { Mmu } from '../../src/x86/mmu.ts';
import { PageTables, SIZE_1G } from '../../src/x86/pgtable.ts';
import { vaHalves } from '../../src/x86/walk.ts';
import { SecretSet } from '../../src/attacks/secrets.ts';
import type { AttackThread } from '../../src/attacks/sample.ts';

export const PAGE_OFFSET = 0xffff888000000000n;
export const RAM_START = 0x100000000n; // 4 GiB
export const RAM_SIZE = 1n << 30n;

export function world(profileName: string | CpuProfile, o: { cores?: number; seed?: number } = {}) {
  const profile = typeof profileName === 'string' ? getProfile(profileName) : profileName;
  const mem = new PhysMemory(profile.maxPhysBits);
  const machine = Machine.fromProfile(mem, profile, { cores: o.cores ?? 2 });
  const buddy = new BuddyAllocator({ ram: [[RAM_START, RAM_START + RAM_SIZE]] });
  const owners = new Owners();
  const slab = new SlabAllocator({ buddy, owners, model: 'none', pageOffsetBase: PAGE_OFFSET, mem, cpus: 2 });
  const zeroed = (order: number): number => {
    const pfn = buddy.alloc(order);
    for (let i = 0; i < 1 << order; i++) mem.frameWords(pfn + i).fill(0);
    return pfn * 4096;
  };
  const swapper = zeroed(1); // swapper_pg_dir and its KPTI user copy (+4 KiB), order 1
  const kpt = new PageTables(mem, 4, () => BigInt(zeroed(0)), BigInt(swapper));
  // The direct map: page_offset_base + pa -> pa, PAGE_KERNEL (arch/x86/mm/init_64.c), before any
  // process exists so pgd_ctor() copies its PGD entry.
  kpt.mapRange(PAGE_OFFSET + RAM_START, RAM_START, RAM_SIZE, __PAGE_KERNEL, [SIZE_1G]);
  const processes = new ProcessTable({ mem, buddy, owners, model: 'none', levels: 4, pti: true, kernelPgd: swapper, pageOffset: PAGE_OFFSET, slab });
  const kvm = new Kvm({ processes, slab, buddy, owners });
  const secrets = new SecretSet(mem, new Xoshiro128(o.seed ?? 1), owners);

  /** Hardware thread `id` with its own MMU at `cr3` and `cpl` (no PCID, no SMEP/SMAP). */
  const thread = (id: number, cr3: number, cpl: 0 | 3): AttackThread => {
    const cpu = new CpuState(profile.maxPhysBits);
    cpu.load({ cr3, cpl, cr4: CR4_PAE });
    return { cpu: profile, hw: machine.thread(id), mmu: new Mmu(cpu, mem) };
  };
  /** `t` loads [va, va+len) through its MMU, 8 bytes at a time (a kernel memcpy reading a secret). */
  const loadVa = (t: AttackThread, va: bigint, len: number): void => {
    for (let v = va - (va % 8n); v < va + BigInt(len); v += 8n) {
      const { lo, hi } = vaHalves(v);
      if (!t.mmu.translate(lo, hi, ACCESS_READ)) throw new Error(`loadVa: 0x${v.toString(16)} faults (ec ${t.mmu.out.errorCode})`);
      machine.load(t.hw.id, t.mmu.out.pa);
    }
  };
  /** Thread `id` stores the 8-byte words memory holds at [pa, pa+len) (8-aligned): a copy into place. */
  const storePa = (id: number, pa: number, len: number): void => {
    for (let p = pa; p < pa + len; p += 8) machine.store(id, p, mem.read32(p), mem.read32(p + 4));
  };
  return { profile, mem, machine, buddy, owners, slab, kpt, swapper, processes, kvm, secrets, thread, loadVa, storePa };
}

export type World = ReturnType<typeof world>;

/** Halves of a BigInt address. */
export function va(v: bigint): { lo: number; hi: number } {
  return vaHalves(v);
}
