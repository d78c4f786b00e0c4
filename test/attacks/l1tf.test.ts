/**
 * L1TF on hand-built states. Each expected cell cites the sentence of
 * Documentation/admin-guide/hw-vuln/l1tf.rst (or the kernel source) it comes from; the bytes are
 * checked against the planted secret by the scorer, and the physical address the terminal fault
 * used is checked against the PTE value written by hand.
 */
import { describe, expect, it } from 'vitest';
import { l1tfGuest, l1tfNative, terminalAddress, type VcpuThread } from '../../src/attacks/l1tf.ts';
import { Samples } from '../../src/attacks/sample.ts';
import { scoreLeak } from '../../src/attacks/score.ts';
import { va, world } from './world.ts';

const GVA = 0x400000n;
/** pgtable-invert.h flip_protnone_guard(): a PTE going not-present gets its PFN bits (51:12) inverted. */
const PTE_PFN_MASK = 0x000ffffffffff000n;
const invert = (pte: bigint): bigint => pte ^ PTE_PFN_MASK;

/** A host with a kernel secret in a slab object, a VM, and a vCPU on thread 1 (the sibling of thread 0). */
function guestSetup(profile: string, ept = true) {
  const w = world(profile);
  const victim = w.processes.create('victim');
  const obj = w.slab.alloc('cred_jar', victim.owner.id);
  const secret = w.secrets.plantSlab(w.slab, obj.id, 'cred');
  const vm = w.kvm.createVm('evil', { ramBytes: 8 << 20 });
  const g = vm.guestPageTables();
  // The guest writes a PTE with P=0 whose address bits name the secret's HOST frame.
  const planted = vm.plantNotPresentPte(g, GVA, obj.pa - (obj.pa % 4096));
  const vcpu: VcpuThread = { cpu: w.profile, hw: w.machine.thread(1), vm, guestCr3: g.cr3, guestLevels: 4, ept };
  const host = w.thread(0, victim.pgd, 0); // the host kernel on the sibling thread
  const gva = va(GVA + BigInt(obj.pa % 4096));
  const attack = (out = new Samples()) => {
    l1tfGuest(vcpu, gva.lo, gva.hi, 184, out, 0);
    return { out, got: scoreLeak(w.secrets, out)[secret.id].recovered };
  };
  return { w, obj, secret, vm, planted, vcpu, host, attack };
}

describe('L1TF from a guest (Foreshadow-NG)', () => {
  it('skylake-sp: the guest reads what the sibling hyperthread brought into the L1D', () => {
    // l1tf.rst: "a malicious guest running on one Hyperthread can attack the data which is
    // brought into the L1D by the context which runs on the sibling Hyperthread of the same
    // physical core. This context can be host OS, host user space or a different guest."
    const s = guestSetup('skylake-sp');
    expect(s.attack().got).toBe(0); // not in the L1D yet: nothing
    s.w.loadVa(s.host, s.obj.va, 184);
    const { out, got } = s.attack();
    expect(got).toBe(184);
    expect(out.addr[0]).toBe(s.obj.pa); // the host PA, not a guest-physical one
    expect(s.planted.pteHpa).toBeGreaterThan(0);
  });

  it('an L1D flush empties it; the sibling brings the data back', () => {
    // l1tf.rst: "the hypervisor flushes the L1D before entering the guest" — and "L1D flush does
    // not prevent the SMT problem because the sibling thread will also bring back its data into
    // the L1D which makes it attackable again."
    const s = guestSetup('skylake-sp');
    s.w.loadVa(s.host, s.obj.va, 184);
    s.w.machine.l1dFlush(1);
    expect(s.attack().got).toBe(0);
    s.w.loadVa(s.host, s.obj.va, 184);
    expect(s.attack().got).toBe(184);
  });

  it('data in another core\'s L1D is out of reach', () => {
    // l1tf.rst: "As the flaw allows only to attack data which is present in L1D" (per core).
    const s = guestSetup('skylake-sp');
    const other = s.w.thread(2, s.w.processes.processes[0].pgd, 0); // core 1
    s.w.loadVa(other, s.obj.va, 184);
    expect(s.attack().got).toBe(0);
  });

  it('ice-lake-sp and zen3: no terminal-fault forwarding', () => {
    // l1tf.rst: not affected are "Processors from AMD" and "Intel processors which have the
    // ARCH_CAP_RDCL_NO bit set" (Ice Lake-SP does).
    for (const p of ['ice-lake-sp', 'zen3']) {
      const s = guestSetup(p);
      s.w.loadVa(s.host, s.obj.va, 184);
      expect(s.w.machine.cores[0].l1d.lookup(s.obj.pa)).toBeGreaterThanOrEqual(0);
      const { out, got } = s.attack();
      expect([p, got, out.count]).toEqual([p, 0, 0]);
    }
  });

  it('EPT off: the shadow entry KVM wrote is used, never the guest\'s address bits', () => {
    // l1tf.rst: "Disabling EPT for virtual machines provides full mitigation for L1TF even with
    // SMT enabled, because the effective page tables for guests are managed and sanitized by the
    // hypervisor." A not-present SPTE is 0 in 6.1, so the access names host page 0.
    const s = guestSetup('skylake-sp', false);
    s.w.loadVa(s.host, s.obj.va, 184);
    expect(s.attack().got).toBe(0);
    const off = s.obj.pa % 4096;
    for (let p = off; p < off + 184; p += 8) s.w.machine.load(1, p); // host page 0 cached: that is what the guest reads
    const { out, got } = s.attack();
    expect([got, out.totalBytes(), out.addr[0]]).toEqual([0, 184, off]);
  });
});

describe('native L1TF (a user process)', () => {
  function nativeSetup(profile: string) {
    const w = world(profile);
    const victim = w.processes.create('victim');
    const evil = w.processes.create('evil');
    const obj = w.slab.alloc('cred_jar', victim.owner.id);
    const secret = w.secrets.plantSlab(w.slab, obj.id, 'cred');
    const host = w.thread(0, victim.pgd, 0);
    w.loadVa(host, obj.va, 184);
    // The attacker's own heap page; its PTE will be rewritten as the kernel would leave it.
    const page = 0x1002000n;
    const pte = evil.pt.findEntry(page, 1)!;
    const frame = BigInt(obj.pa - (obj.pa % 4096));
    const attacker = w.thread(1, evil.userPgd, 3);
    const target = va(page + BigInt(obj.pa % 4096));
    const attack = (value: bigint) => {
      w.mem.write64Big(Number(pte.addr), value);
      const out = new Samples();
      l1tfNative(attacker, target.lo, target.hi, 184, out, 0);
      return { out, got: scoreLeak(w.secrets, out)[secret.id].recovered };
    };
    return { w, obj, frame, attack, profile: w.profile };
  }
  const PROTNONE = 1n << 8n; // _PAGE_PROTNONE (= _PAGE_GLOBAL, P=0), arch/x86/include/asm/pgtable_types.h
  const A = 1n << 5n;

  it('a not-present PTE still holding a PFN leaks that frame\'s cached lines (no PTE inversion)', () => {
    // l1tf.rst: "Operating Systems store arbitrary information in the address bits of a PTE which
    // is marked non present. This allows a malicious user space application to attack the
    // physical memory to which these PTEs resolve."
    const s = nativeSetup('skylake-sp');
    expect(s.attack(s.frame | PROTNONE | A).got).toBe(184);
  });

  it('PTE inversion points the PFN at the top half of the address space: nothing', () => {
    // l1tf.rst: "The kernel ensures that the address bits of PTEs, which are not marked present,
    // never point to cacheable physical memory space."
    const s = nativeSetup('skylake-sp');
    const inverted = invert(s.frame | PROTNONE | A);
    const { out, got } = s.attack(inverted);
    expect([got, out.count]).toEqual([0, 0]);
    const used = terminalAddress(Number(inverted & 0xffffffffn), Number(inverted >> 32n), 1, 0, 46);
    expect(used).toBeGreaterThanOrEqual(2 ** 45); // bit MAXPHYADDR-1 set: above all RAM
  });

  it('a present PTE with a reserved address bit set also terminates and leaks', () => {
    // l1tf.rst: "the page table entry ... has the Present bit cleared or other reserved bits set".
    const s = nativeSetup('skylake-sp');
    const bit51 = 1n << 51n; // reserved with MAXPHYADDR 46; dropped by the 46-bit L1D tag
    expect(s.attack(s.frame | bit51 | 0x67n).got).toBe(184);
  });

  it('zen3 (AMD): not affected', () => {
    // l1tf.rst: "The vulnerability is not present on: Processors from AMD".
    const s = nativeSetup('zen3');
    expect(s.attack(s.frame | PROTNONE | A).got).toBe(0);
  });

  it('an ordinary present user mapping is not a terminal fault', () => {
    const s = nativeSetup('skylake-sp');
    expect(s.attack(s.frame | 0x67n).got).toBe(0); // P|RW|US|A|D: a plain load of its own (now aliased) page
  });
});
