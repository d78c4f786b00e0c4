/**
 * MDS (MFBDS, MLPDS, MSBDS) and TAA on hand-built states: a kernel secret in a slab object is
 * read (loads) or written (stores) by one thread, another samples. Every expected cell cites the
 * sentence of Documentation/arch/x86/mds.rst, admin-guide/hw-vuln/mds.rst or
 * tsx_async_abort.rst it comes from. Samples carry no address; the scorer matches by content.
 */
import { describe, expect, it } from 'vitest';
import { mfbds, mlpds, msbds } from '../../src/attacks/mds.ts';
import { Samples, SRC_LFB, SRC_LOAD_PORT, SRC_STORE_BUFFER } from '../../src/attacks/sample.ts';
import { scoreLeak } from '../../src/attacks/score.ts';
import { taa } from '../../src/attacks/taa.ts';
import { PROFILE_SPECS, buildProfile } from '../../src/uarch/profiles.ts';
import { world } from './world.ts';

function setup(profile: Parameters<typeof world>[0]) {
  const w = world(profile);
  const p = w.processes.create('victim');
  const obj = w.slab.alloc('cred_jar', p.owner.id);
  const secret = w.secrets.plantSlab(w.slab, obj.id, 'cred');
  const kernel0 = w.thread(0, p.pgd, 0);
  const t1 = { cpu: w.profile, hw: w.machine.thread(1) };
  const got = (out: Samples) => scoreLeak(w.secrets, out)[secret.id].recovered;
  return { w, obj, secret, kernel0, t1, got };
}

/** A Xeon Phi (Knights Landing): X86_BUG_MSBDS_ONLY by the kernel's own table. */
const knl = buildProfile({ ...PROFILE_SPECS[0], name: 'xeon-phi-knl', model: [0x57, 'intel-family.h INTEL_FAM6_XEON_PHI_KNL'] });

describe('MFBDS (fill buffers)', () => {
  it('skylake-sp: the sibling samples the lines the other thread\'s misses brought in', () => {
    // mds.rst: "Fill buffers are shared between Hyper-Threads so cross thread leakage is possible."
    const s = setup('skylake-sp');
    const out = new Samples();
    expect(mfbds(s.t1, out, 0)).toBe(0); // nothing filled yet
    s.w.loadVa(s.kernel0, s.obj.va, 184);
    expect(mfbds(s.t1, out, 1)).toBe(3 * 64); // three lines missed
    expect(s.got(out)).toBe(184);
    expect([out.addr[0], out.source[0], out.from[0]]).toEqual([-1, SRC_LFB, 0]); // no address; left by thread 0
  });

  it('VERW clears them', () => {
    // mds.rst: "The microcode clears the affected CPU buffers when the VERW instruction is executed."
    const s = setup('skylake-sp');
    s.w.loadVa(s.kernel0, s.obj.va, 184);
    expect(s.w.machine.verw(0)).toBe(true);
    const out = new Samples();
    expect([mfbds(s.t1, out, 0), s.w.machine.cores[0].lfb.data.every((b) => b === 0)]).toEqual([0, true]);
  });

  it('not on CPUs with MDS_NO, AMD, or MSBDS-only parts', () => {
    // hw-vuln/mds.rst: not present on "Processors from AMD" and "Intel processors which have the
    // ARCH_CAP_MDS_NO bit set"; arch/x86/mds.rst: "XEON PHI is not affected by the other MDS variants".
    for (const p of ['cascade-lake', 'ice-lake-sp', 'zen3', knl] as const) {
      const s = setup(p);
      s.w.loadVa(s.kernel0, s.obj.va, 184);
      expect(s.w.machine.cores[0].lfb.occupancy()).toBe(3);
      const out = new Samples();
      expect([typeof p === 'string' ? p : p.name, mfbds(s.t1, out, 0)]).toEqual([typeof p === 'string' ? p : p.name, 0]);
    }
  });
});

describe('MLPDS (load ports)', () => {
  it('skylake-sp: the two ports hold the last two 8-byte loads', () => {
    // mds.rst: "Load ports are shared between Hyper-Threads so cross thread leakage is possible."
    const s = setup('skylake-sp');
    s.w.loadVa(s.kernel0, s.obj.va, 184);
    const out = new Samples();
    expect(mlpds(s.t1, out, 0)).toBe(16);
    expect(out.source[0]).toBe(SRC_LOAD_PORT);
    const [sc] = scoreLeak(s.w.secrets, out);
    expect(sc.recovered).toBe(16);
    expect([sc.bitmap.indexOf(1), sc.bitmap.lastIndexOf(1)]).toEqual([168, 183]); // words 21 and 22
    s.w.machine.verw(1);
    expect(mlpds(s.t1, new Samples(), 0)).toBe(0);
  });
});

describe('MSBDS (store buffer, Fallout)', () => {
  it('partitioned: the sibling\'s stores are out of reach until it goes idle', () => {
    // mds.rst: "Store buffers are partitioned between Hyper-Threads so cross thread forwarding is
    // not possible. But if a thread enters or exits a sleep state the store buffer is
    // repartitioned which can expose data from one thread to the other."
    const s = setup('skylake-sp');
    s.w.storePa(0, s.obj.pa, 184); // the kernel on thread 0 writes the secret into place
    expect(msbds(s.t1, new Samples(), 0)).toBe(0);
    s.w.machine.setIdle(0, true);
    const out = new Samples();
    expect(msbds(s.t1, out, 1)).toBe(184);
    expect([out.source[0], out.from[0]]).toEqual([SRC_STORE_BUFFER, 0]);
    expect(s.got(out)).toBe(184);
    // mds.rst: "When coming out of idle the store buffer is partitioned again so each sibling has
    // half of it available."
    s.w.machine.setIdle(0, false);
    expect(msbds(s.t1, new Samples(), 2)).toBe(0);
  });

  it('VERW before idle leaves nothing to spill', () => {
    // mds.rst: "The buffer clear is only invoked before entering the C-State to prevent that stale
    // data from the idling CPU from spilling to the Hyper-Thread sibling".
    const s = setup('skylake-sp');
    s.w.storePa(0, s.obj.pa, 184);
    s.w.machine.verw(0);
    s.w.machine.setIdle(0, true);
    expect(msbds(s.t1, new Samples(), 0)).toBe(0);
  });

  it('the same thread after a return to user space without VERW', () => {
    // mds.rst: "When transitioning from kernel to user space the CPU buffers are flushed" — the
    // case the flush exists for: the kernel's stores are still in the thread's own entries.
    const s = setup('skylake-sp');
    s.w.storePa(1, s.obj.pa, 184);
    const out = new Samples();
    msbds(s.t1, out, 0);
    expect(s.got(out)).toBe(184);
  });

  it('Xeon Phi (MSBDS only) leaks through the store buffer only', () => {
    // mds.rst: "The XEON PHI processor family is affected by MSBDS which can be exploited cross
    // Hyper-Threads when entering idle states."
    expect([knl.bugs.has('mds'), knl.bugs.has('msbds_only')]).toEqual([true, true]);
    const s = setup(knl);
    s.w.loadVa(s.kernel0, s.obj.va, 184);
    s.w.storePa(0, s.obj.pa, 184);
    s.w.machine.setIdle(0, true);
    const out = new Samples();
    expect([mfbds(s.t1, out, 0), mlpds(s.t1, out, 0), msbds(s.t1, out, 0)]).toEqual([0, 0, 184]);
  });
});

describe('TAA', () => {
  it('cascade-lake (MDS_NO, TAA_NO=0): leaks from the buffers while TSX is on, not with TSX off', () => {
    // tsx_async_abort.rst: "This vulnerability only affects Intel processors that support Intel
    // Transactional Synchronization Extensions (TSX) when the TAA_NO bit (bit 8) is 0"; "Because
    // the buffers are potentially shared between Hyper-Threads cross Hyper-Thread attacks are
    // possible"; "tsx=off ... system is not vulnerable".
    const s = setup('cascade-lake');
    s.w.loadVa(s.kernel0, s.obj.va, 184);
    const on = new Samples();
    expect(taa(s.t1, true, on, 0)).toBe(3 * 64 + 16);
    expect(s.got(on)).toBe(184);
    expect(taa(s.t1, false, new Samples(), 0)).toBe(0);
    s.w.machine.verw(0); // "TAA can be mitigated by VERW" (cascade-lake has MD_CLEAR and TSX_CTRL)
    expect(taa(s.t1, true, new Samples(), 0)).toBe(0);
  });

  it('not on ice-lake-sp (TAA_NO) or zen3', () => {
    for (const p of ['ice-lake-sp', 'zen3']) {
      const s = setup(p);
      s.w.loadVa(s.kernel0, s.obj.va, 184);
      expect([p, taa(s.t1, true, new Samples(), 0)]).toEqual([p, 0]);
    }
  });
});
