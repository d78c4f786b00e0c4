/**
 * Meltdown and Spectre v1 through real page tables: a process's KPTI PGD pair (the kernel copy
 * maps the direct map with PAGE_KERNEL, the user copy does not — pgd_ctor() cloned the kernel
 * halves of swapper_pg_dir and of its empty user copy) and a hand-built restricted root standing
 * in for an ASI address space. Expected cells cite Documentation/arch/x86/pti.rst,
 * admin-guide/hw-vuln/spectre.rst and the kernel's cpu_vuln_whitelist (zen3 is NO_MELTDOWN).
 */
import { describe, expect, it } from 'vitest';
import { meltdown } from '../../src/attacks/meltdown.ts';
import { Samples, SRC_L1D, SRC_MEMORY } from '../../src/attacks/sample.ts';
import { scoreLeak } from '../../src/attacks/score.ts';
import { spectreV1 } from '../../src/attacks/spectre-v1.ts';
import { __PAGE_KERNEL } from '../../src/linux/cpa.ts';
import { PageTables, SIZE_4K } from '../../src/x86/pgtable.ts';
import { PAGE_OFFSET, va, world } from './world.ts';

function setup(profile: string) {
  const w = world(profile);
  const p = w.processes.create('victim');
  const obj = w.slab.alloc('cred_jar', p.owner.id);
  const secret = w.secrets.plantSlab(w.slab, obj.id, 'cred');
  const target = va(obj.va);
  const got = (out: Samples) => scoreLeak(w.secrets, out)[secret.id].recovered;
  return { w, p, obj, secret, target, got };
}

describe('Meltdown', () => {
  it('skylake-sp, user mode on the kernel PGD (no KPTI): the supervisor data leaks, from memory too', () => {
    // pti.rst: PTI "is a countermeasure against attacks on the shared user/kernel address space
    // such as the "Meltdown" approach"; without it the user runs on tables mapping the kernel.
    const s = setup('skylake-sp');
    const user = s.w.thread(1, s.p.pgd, 3);
    const out = new Samples();
    expect(meltdown(user, s.target.lo, s.target.hi, 184, out, 0)).toBe(184);
    expect(s.got(out)).toBe(184);
    expect(out.source[0]).toBe(SRC_MEMORY); // the line was not cached: the load fetched it
    expect(s.w.machine.cores[0].l1d.lookup(s.obj.pa)).toBeGreaterThanOrEqual(0);
    const again = new Samples();
    meltdown(user, s.target.lo, s.target.hi, 184, again, 1);
    expect(again.source[0]).toBe(SRC_L1D);
  });

  it('skylake-sp, user mode on the KPTI user PGD: kernel data is not mapped, nothing', () => {
    // pti.rst: "The userspace page tables contain only a minimal amount of kernel data: only what
    // is needed to enter/exit the kernel".
    const s = setup('skylake-sp');
    const user = s.w.thread(1, s.p.userPgd, 3);
    const out = new Samples();
    expect([meltdown(user, s.target.lo, s.target.hi, 184, out, 0), out.count]).toEqual([0, 0]);
  });

  it('zen3: no rogue data cache load even when mapped', () => {
    // cpu_vuln_whitelist: AMD family 19h is NO_MELTDOWN (arch/x86/kernel/cpu/common.c).
    const s = setup('zen3');
    const user = s.w.thread(1, s.p.pgd, 3);
    expect(meltdown(user, s.target.lo, s.target.hi, 184, new Samples(), 0)).toBe(0);
  });

  it('a supervisor translation already in the TLB is used, then dropped by the #PF', () => {
    // SDM 4.10.4.1: a page fault invalidates the TLB entries for the faulting page.
    const s = setup('skylake-sp');
    const t = s.w.thread(1, s.p.pgd, 0);
    expect(t.mmu.translate(s.target.lo, s.target.hi, 0)).toBe(true); // the kernel touched it
    t.mmu.cpu.cpl = 3; // back in user mode, same CR3, no flush
    expect(t.mmu.tlb.countValid()).toBe(1);
    const out = new Samples();
    expect(meltdown(t, s.target.lo, s.target.hi, 184, out, 0)).toBe(184);
    expect(s.got(out)).toBe(184);
    expect(t.mmu.tlb.countValid()).toBe(0);
  });

  it('a user page is an ordinary load, not a leak', () => {
    const s = setup('skylake-sp');
    const user = s.w.thread(1, s.p.pgd, 3);
    const heap = va(0x1000000n);
    expect(meltdown(user, heap.lo, heap.hi, 64, new Samples(), 0)).toBe(0);
  });
});

describe('Spectre v1', () => {
  it('the gadget reads the secret when the victim\'s CR3 maps it, and not when it does not (ASI)', () => {
    // spectre.rst: "The index or pointer is invalid, but bound checks are bypassed in the code
    // branch taken for speculative execution. This could cause privileged memory to be accessed
    // and leaked." The access goes through the victim's current address space: a restricted
    // space that does not map the secret gives the speculative load no physical address.
    for (const profile of ['skylake-sp', 'ice-lake-sp', 'zen3']) {
      const s = setup(profile);
      const full = s.w.thread(0, s.p.pgd, 0); // the kernel, full tables
      const out = new Samples();
      expect(spectreV1(full, s.target.lo, s.target.hi, 184, out, 0, 1)).toBe(184);
      expect([profile, s.got(out), out.attacker[0]]).toEqual([profile, 184, 1]);

      // A restricted root: one non-sensitive page of the direct map, not the secret's.
      const pub = s.w.slab.kmalloc(64, 0);
      const pubSecret = s.w.secrets.plantSlab(s.w.slab, pub.id, 'public');
      expect(Math.floor(pub.pa / 4096)).not.toBe(Math.floor(s.obj.pa / 4096));
      const rpt = new PageTables(s.w.mem, 4, () => {
        const f = s.w.buddy.alloc(0);
        s.w.mem.frameWords(f).fill(0);
        return BigInt(f * 4096);
      });
      const pubPage = BigInt(pub.pa - (pub.pa % 4096));
      rpt.mapPage(PAGE_OFFSET + pubPage, pubPage, SIZE_4K, __PAGE_KERNEL);
      const restricted = s.w.thread(2, Number(rpt.root), 0);
      const r = new Samples();
      expect(spectreV1(restricted, s.target.lo, s.target.hi, 184, r, 0)).toBe(0);
      const pv = va(pub.va);
      expect(spectreV1(restricted, pv.lo, pv.hi, 64, r, 1)).toBe(64);
      const scores = scoreLeak(s.w.secrets, r);
      expect([scores[s.secret.id].recovered, scores[pubSecret.id].recovered]).toEqual([0, 64]);
    }
  });
});
