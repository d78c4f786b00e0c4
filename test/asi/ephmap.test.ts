/**
 * what_if ephmap-tmpfs (asi/ephmap.ts, the Aug 2025 ASI branch's mm/ephmap.c and mm/shmem.c): a
 * tmpfs read in the restricted space maps the page-cache page at the mm's per-CPU slot, copies
 * through it and unmaps it with an INVLPG, so it takes no ASI exit. Checked against what the
 * mechanism must do, not against the figure it reproduces (examples/calibration/asi-2025-aug-fio-tmpfs.yaml).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { buildWorld } from '../../src/sim/world.ts';
import { runScenario } from '../../src/sim/run.ts';
import { usePerTouchPath } from '../../src/sim/touch.ts';
import { Probe, probe } from '../../src/asi/restricted.ts';
import { Ephmap, ephmapBase } from '../../src/asi/ephmap.ts';
import { getCostModel } from '../../src/sim/costs.ts';

afterEach(() => usePerTouchPath(false));

const fio = (iso: string, events = 600, extra = '') => parseScenario(`
name: fio
seed: 3
events: ${events}
machine: { cpu: sapphire-rapids, cores: 1, threads_per_core: 2, ram: 2GiB${extra} }
tenants: [{ name: fio, kind: process, working_set: { bytes: 16KiB } }]
workload:
  - { thread: 0, tenant: fio, mix: [{ event: syscall, name: pread64, bytes: 4096, weight: 1 }, { event: user-compute, cycles: 500, weight: 1 }] }
isolation:
${iso}
`, 'fio.yaml');

const SETS = `  - { name: off, cmdline: "mitigations=off" }
  - { name: rfc-v2, cmdline: "mitigations=off asi=google-asi-2025" }
  - { name: ephmap, cmdline: "mitigations=off asi=google-asi-2025", what_if: [ephmap-tmpfs] }`;

describe('the ephmap slot', () => {
  it('is one PTE the mm\'s full root and its restricted root both reach: mapped in one, mapped in both; cleared, gone from both', () => {
    const w = buildWorld(fio(SETS), 2);
    const e = w.spaces.ephmap!;
    const space = w.spaces.asi!.spaces[w.spaces.asiSpace[0]];
    const mem = w.sys.mem;
    const levels = w.sys.levels;
    expect(space.root).not.toBe(space.fullRoot);
    const pte = e.ptePa[0 * e.cpus + 1]; // task 0 on CPU 1
    const pa = w.sys.buddy.alloc(0, 0) * 4096;
    const out = new Probe();
    const slot = (root: number) => probe(mem, root, levels, e.vaLo[1], e.vaHi[1], out) ? out.frame : -1;
    expect(slot(space.fullRoot)).toBe(-1);
    expect(slot(space.root)).toBe(-1);
    mem.write64(pte, Ephmap.pteLo(pa), Ephmap.pteHi(pa, e.nx));
    expect(slot(space.fullRoot)).toBe(pa);
    expect(slot(space.root)).toBe(pa);
    // Read-only, NX, kernel-only: the shmem read's __PAGE_KERNEL_RO & ~_PAGE_GLOBAL.
    expect([out.writable, out.user, out.xd]).toEqual([false, false, true]);
    mem.write64(pte, 0, 0);
    expect(slot(space.root)).toBe(-1);
    // Each CPU has its own slot, 2 MiB apart, from the 1 GiB boundary after the LDT remap in the mm-local PGD entry.
    const va = (c: number) => (BigInt(e.vaHi[c] >>> 0) << 32n) | BigInt(e.vaLo[c] >>> 0);
    expect(va(1) - va(0)).toBe(2n * 1024n * 1024n);
    expect(va(0)).toBe(ephmapBase(4));
    expect(Number((va(0) >> 39n) & 511n)).toBe(512 - 240);
  });

  it('is the mm\'s own: a page mapped in one process\'s slot is in neither root of another process', () => {
    const two = parseScenario(`
events: 50
machine: { cpu: sapphire-rapids, cores: 1, threads_per_core: 2, ram: 2GiB }
tenants: [{ name: a, kind: process }, { name: b, kind: process }]
workload: [{ thread: 0, tenant: a, mix: [{ event: syscall, name: pread64, bytes: 4096 }] }, { thread: 1, tenant: b, mix: [{ event: syscall, name: getppid }] }]
isolation: [{ name: e, cmdline: "mitigations=off asi=google-asi-2025", what_if: [ephmap-tmpfs] }]
`, 'two.yaml');
    const w = buildWorld(two, 0);
    const e = w.spaces.ephmap!;
    const [sa, sb] = [0, 1].map((i) => w.spaces.asi!.spaces[w.spaces.asiSpace[i]]);
    const pa = w.sys.buddy.alloc(0, 0) * 4096;
    w.sys.mem.write64(e.ptePa[0 * e.cpus + 0], Ephmap.pteLo(pa), Ephmap.pteHi(pa, e.nx)); // task 0 (a) on CPU 0
    const out = new Probe();
    const at = (root: number) => (probe(w.sys.mem, root, w.sys.levels, e.vaLo[0], e.vaHi[0], out) ? out.frame : -1);
    expect([at(sa.fullRoot), at(sa.root)]).toEqual([pa, pa]);
    expect([at(sb.fullRoot), at(sb.root)]).toEqual([-1, -1]);
    // And b's own slot on CPU 0 is another PTE.
    expect(e.ptePa[1 * e.cpus + 0]).not.toBe(e.ptePa[0]);
  });

  it('is not made without the what-if, and the what-if is refused on a design without the branch', () => {
    expect(buildWorld(fio(SETS), 1).spaces.ephmap).toBeNull();
    expect(() => fio('  - { name: x, cmdline: "asi=kvm-asi-2019", what_if: [ephmap-tmpfs] }')).toThrow(/isolation\[0\]\.what_if\[0\].*google-asi-2025/s);
  });
});

describe('a tmpfs read with the ephmap', () => {
  const r = runScenario(fio(SETS));
  const [off, rfc, eph] = r.mitigations.map((m) => m.costs);

  it('takes no ASI exit where RFC v2 takes one a read, and maps one page a read instead', () => {
    expect(rfc.counts.asi_exits).toBeGreaterThan(200);
    expect(eph.counts.asi_exits).toBe(0);
    // The same reads (the same draws): one mapping for each exit RFC v2 took.
    expect(eph.counts.ephmap_maps).toBe(rfc.counts.asi_exits);
    expect(off.counts.ephmap_maps).toBe(0);
  });

  it('walks the slot address again after every read (the INVLPG removed it) and pays the INVLPG', () => {
    const reads = eph.counts.ephmap_maps;
    expect(eph.counts.tlb_walks - off.counts.tlb_walks).toBeGreaterThanOrEqual(reads);
    const invlpg = getCostModel('sapphire-rapids').params.invlpg.cycles;
    const perRead = (eph.by_kind.syscall - off.by_kind.syscall) / reads;
    expect(perRead).toBeGreaterThan(invlpg);
    expect(perRead).toBeLessThan(invlpg + 200);
    expect(eph.cycles).toBeLessThan(rfc.cycles / 2);
  });

  it('still copies the page: its lines pass the L1D as they do through the direct map', () => {
    expect(Math.abs(eph.counts.l1d_misses - off.counts.l1d_misses)).toBeLessThan(off.counts.l1d_misses * 0.05);
    expect(eph.counts.touches).toBe(off.counts.touches);
  });

  it('runs the same on the batched and the per-touch paths', () => {
    usePerTouchPath(true);
    const perTouch = runScenario(fio(SETS, 300));
    usePerTouchPath(false);
    expect(runScenario(fio(SETS, 300))).toEqual(perTouch);
  });
});

describe('what_if ephmap-zeroing (not posted: the posting says zeroing "could potentially be solved with the ephmap")', () => {
  const faults = (whatIf: string) => runScenario(parseScenario(`
name: faults
seed: 5
events: 400
machine: { cpu: sapphire-rapids, cores: 1, threads_per_core: 2, ram: 2GiB }
tenants: [{ name: cc1, kind: process, thp: false, working_set: { bytes: 64KiB } }]
workload: [{ thread: 0, tenant: cc1, mix: [{ event: page-fault, weight: 1 }, { event: user-compute, cycles: 5000, weight: 1 }] }]
isolation:
  - { name: off, cmdline: "mitigations=off" }
  - { name: on, cmdline: "mitigations=off asi=google-asi-2025"${whatIf} }
`, 'faults.yaml')).mitigations.map((m) => m.costs);

  it('zeroes each fresh page through a writable slot PTE: no fault exits ASI, and the page\'s lines are still written', () => {
    const [off, rfc] = faults('');
    const [, zero] = faults(', what_if: [ephmap-zeroing]');
    expect(rfc.counts.asi_faults).toBeGreaterThan(100);
    // A read-only slot PTE would fault on the clear and exit as before: none does.
    expect(zero.counts.asi_faults).toBe(0);
    expect(zero.counts.ephmap_maps).toBe(rfc.counts.asi_faults);
    expect(zero.counts.touches).toBe(off.counts.touches);
    expect(Math.abs(zero.counts.l1d_misses - off.counts.l1d_misses)).toBeLessThan(off.counts.l1d_misses * 0.05);
    expect(zero.cycles).toBeLessThan(rfc.cycles);
  });
});
