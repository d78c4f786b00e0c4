/**
 * The machine, its cores and the shared/partitioned buffers, against the sharing rules of
 * Documentation/arch/x86/mds.rst (quoted at each test) and against PhysMemory's bytes.
 */
import { describe, expect, it } from 'vitest';
import { PhysMemory } from '../../src/phys/memory.ts';
import { Machine, type MachineConfig } from '../../src/uarch/machine.ts';
import { getProfile } from '../../src/uarch/profiles.ts';
import { StoreBuffer } from '../../src/uarch/storebuffer.ts';

const SKX: Omit<MachineConfig, 'cores' | 'threadsPerCore'> = {
  l1d: { sizeBytes: 32 * 1024, ways: 8 }, lfbEntries: 12, loadPorts: 2, storeBufferEntries: 56,
  mdClear: true, flushL1d: true, smt: true,
};

function machine(cores = 2, threadsPerCore = 2, over: Partial<MachineConfig> = {}): Machine {
  return new Machine(new PhysMemory(46), { ...SKX, cores, threadsPerCore, ...over });
}

describe('machine shape and validation', () => {
  it('numbers threads core-major and links siblings', () => {
    const m = machine(3, 2);
    expect(m.threads.map((t) => [t.id, t.core.id, t.index, t.sibling?.id])).toEqual([
      [0, 0, 0, 1], [1, 0, 1, 0], [2, 1, 0, 3], [3, 1, 1, 2], [4, 2, 0, 5], [5, 2, 1, 4],
    ]);
    const single = machine(2, 1);
    expect(single.threads.map((t) => t.sibling)).toEqual([null, null]);
  });

  it('refuses 3 threads per core, 0 cores, and SMT on a CPU without it, with a clear message', () => {
    expect(() => machine(2, 3)).toThrow(/1 or 2 hardware threads.*got 3 threads per core/);
    expect(() => machine(0, 2)).toThrow(/number of cores must be a whole number of at least 1, got 0/);
    expect(() => machine(1.5, 2)).toThrow(/got 1.5/);
    expect(() => machine(1, 2, { smt: false })).toThrow(/has no SMT/);
    expect(() => Machine.fromProfile(new PhysMemory(40), getProfile('qemu-max'), { cores: 1, threadsPerCore: 2 })).toThrow(/has no SMT/);
    expect(() => Machine.fromProfile(new PhysMemory(46), getProfile('qemu-max'), { cores: 1 })).toThrow(/MAXPHYADDR 46 but qemu-max has 40/);
  });

  it('takes its geometry from the profile (Ice Lake-SP: 48 KiB 12-way, 72-entry store buffer)', () => {
    const m = Machine.fromProfile(new PhysMemory(46), getProfile('ice-lake-sp'), { cores: 2 });
    expect(m.threadsPerCore).toBe(2);
    const core = m.cores[0];
    expect([core.l1d.sets, core.l1d.ways, core.storeBuffer.entries, core.lfb.entries]).toEqual([64, 12, 72, 12]);
  });
});

describe('what siblings share', () => {
  it('L1D and fill buffers are per core: a sibling\'s miss is visible to the other thread, not to another core', () => {
    // mds.rst: "Fill buffers are shared between Hyper-Threads so cross thread leakage is possible."
    const m = machine();
    m.memory.writeByte(0x7000, 0x42);
    expect(m.load(0, 0x7000)).toBe(false); // miss: fills L1D and a fill buffer of core 0
    const core0 = m.cores[0];
    const e = core0.lfb.find(0x7000);
    expect(e).toBeGreaterThanOrEqual(0);
    expect(core0.lfb.byteAt(e, 0)).toBe(0x42);
    expect(core0.lfb.owner[e]).toBe(0);
    expect(m.load(1, 0x7000)).toBe(true); // the sibling hits the shared L1D
    expect(m.cores[1].lfb.find(0x7000)).toBe(-1);
    expect(m.cores[1].l1d.lookup(0x7000)).toBe(-1);
  });

  it('fill buffers keep the stale data of their last fill until reused, round-robin', () => {
    const m = machine(1, 2, { lfbEntries: 10 });
    for (let k = 0; k < 10; k++) m.memory.writeByte(k * 4096, k + 1);
    for (let k = 0; k < 10; k++) m.load(k & 1, k * 4096);
    const lfb = m.cores[0].lfb;
    expect(lfb.occupancy()).toBe(10);
    m.memory.writeByte(0, 0xee); // memory changes; the buffer keeps what it carried
    expect(lfb.byteAt(lfb.find(0), 0)).toBe(1);
    m.memory.writeByte(10 * 4096, 0x99);
    m.load(0, 10 * 4096); // 11th fill reuses the oldest entry (line 0)
    expect(lfb.find(0)).toBe(-1);
    expect(lfb.byteAt(lfb.find(10 * 4096), 0)).toBe(0x99);
  });

  it('load ports hold the last values loaded by either thread', () => {
    // mds.rst: "Load ports are shared between Hyper-Threads so cross thread leakage is possible."
    const m = machine(1, 2);
    m.memory.write64Big(0x3008, 0x1122334455667788n);
    m.load(1, 0x300c);
    const lp = m.cores[0].loadPorts;
    expect([lp.pa[0], lp.lo[0], lp.hi[0], lp.owner[0]]).toEqual([0x3008, 0x55667788, 0x11223344, 1]);
    expect([m.cores[0].lastLo, m.cores[0].lastHi]).toEqual([0x55667788, 0x11223344]);
  });

  it('the store buffer is partitioned while both threads run and repartitioned when one idles', () => {
    // mds.rst: "Store buffers are partitioned between Hyper-Threads so cross thread forwarding is
    // not possible. But if a thread enters or exits a sleep state the store buffer is
    // repartitioned which can expose data from one thread to the other."
    const m = machine(1, 2);
    const sb = m.cores[0].storeBuffer;
    expect([sb.start(0), sb.end(0), sb.start(1), sb.end(1)]).toEqual([0, 28, 28, 56]);
    for (let i = 0; i < 5; i++) m.store(1, 0x8000 + i * 8, 0xdead0000 + i, 0);
    expect(sb.foreignEntries(0)).toEqual([]); // thread 0 cannot see thread 1's half
    m.setIdle(1, true); // thread 1 enters a C-state: thread 0 owns all 56 entries
    expect([sb.start(0), sb.end(0), sb.end(1) - sb.start(1)]).toEqual([0, 56, 0]);
    expect(sb.foreignEntries(0)).toEqual([28, 29, 30, 31, 32]); // the sibling's stale stores
    expect(sb.lo[28]).toBe(0xdead0000);
    m.setIdle(1, false);
    expect(sb.foreignEntries(0)).toEqual([]);
    expect(sb.repartitions).toBe(2);
  });

  it('a 1-thread core owns its whole store buffer; a 56-entry buffer wraps per partition', () => {
    const sb = new StoreBuffer(56, 1);
    expect([sb.start(0), sb.end(0)]).toEqual([0, 56]);
    const two = new StoreBuffer(56, 2);
    for (let i = 0; i < 30; i++) two.record(0, i * 8, i, 0);
    expect(two.lo[0]).toBe(28); // the 29th store wrapped to entry 0 of thread 0's half
    expect(two.pa[28]).toBe(-1); // thread 1's half untouched
  });
});

describe('VERW and L1D flush', () => {
  it('VERW with MD_CLEAR overwrites store buffer, fill buffers and load ports of its core only', () => {
    // mds.rst: "the microcode clears the affected CPU buffers when the VERW instruction is executed"
    const m = machine(2, 2);
    for (const id of [0, 1, 2]) {
      m.store(id, 0x1000 * (id + 1), 7, 7);
      m.load(id, 0x40000 * (id + 1));
    }
    const [c0, c1] = m.cores;
    expect(m.verw(1)).toBe(true);
    expect([c0.storeBuffer.occupancy(), c0.lfb.occupancy(), c0.loadPorts.occupancy()]).toEqual([0, 0, 0]);
    expect(c0.l1d.occupancy()).toBeGreaterThan(0); // VERW does not touch the L1D
    expect(c1.storeBuffer.occupancy()).toBe(1);
    expect(c1.lfb.occupancy()).toBe(2);
  });

  it('VERW without the MD_CLEAR microcode clears nothing', () => {
    // mds.rst: "executed on a CPU without the microcode update there is no side effect"
    const m = machine(1, 2, { mdClear: false });
    m.load(0, 0x5000);
    expect(m.verw(0)).toBe(false);
    expect(m.cores[0].lfb.occupancy()).toBe(1);
  });

  it('an L1D flush empties the L1D and, with MD_CLEAR, the buffers too', () => {
    // vmx.c vmx_vcpu_enter_exit(): "L1D Flush includes CPU buffer clear to mitigate MDS"
    const m = machine(1, 2);
    m.load(0, 0x5000);
    m.store(1, 0x6000, 1, 2);
    m.l1dFlush(0);
    const c = m.cores[0];
    expect([c.l1d.occupancy(), c.lfb.occupancy(), c.storeBuffer.occupancy()]).toEqual([0, 0, 0]);
  });
});

describe('stores and coherence', () => {
  it('a store writes memory, updates the local line, and invalidates other cores\' copies', () => {
    const m = machine(2, 1);
    m.memory.write64Big(0x9000, 1n);
    m.load(0, 0x9000);
    m.load(1, 0x9000);
    m.store(1, 0x9000, 0xabcd, 0);
    expect(m.memory.read32(0x9000)).toBe(0xabcd);
    expect(m.cores[1].l1d.cachedByte(0x9000)).toBe(0xcd);
    expect(m.cores[0].l1d.lookup(0x9000)).toBe(-1);
    expect(m.load(0, 0x9000)).toBe(false);
    expect(m.cores[0].lastLo).toBe(0xabcd);
    expect(() => m.store(0, 0x9004, 1, 1)).toThrow(/not 8-byte aligned/);
  });
});
