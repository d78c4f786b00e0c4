/**
 * PCID layouts, taint rules and sibling stunning as tables written from the sources:
 *  - 2022 tlb.c: ASI_PCID_BITS_SHIFT = 12 - PTI_CONSUMED_PCID_BITS - ASI_MAX_NUM_ORDER(2);
 *  - RFC v2 processor-flags.h: 2 ASI bits ending at bit 10 with PTI, bit 11 without;
 *  - Chartre asi.h: (prefix << 4) | kernel PCID; the PTI user prefix 0x80;
 *  - RFC v2 asi.c / x86.c: maybe_flush_control(), maybe_flush_data(), asi_handle_switch_mm(),
 *    kvm_x86_init_asi_class(), asi_init_userspace_class().
 */
import { describe, expect, it } from 'vitest';
import { asiPcidShift2022, asiPcidShift2025, chartreAsiPcid, google2022AsiPcid, google2025AsiPcid, NoflushTracker, ASI_PCID_PREFIX_USER } from '../../src/asi/pcid.ts';
import {
  ASI_TAINT_GUEST_CONTROL, ASI_TAINT_GUEST_DATA, ASI_TAINT_KERNEL_DATA, ASI_TAINT_OTHER_MM_CONTROL, ASI_TAINT_OTHER_MM_DATA,
  ASI_TAINT_USER_CONTROL, ASI_TAINT_USER_DATA, USERSPACE_CLASS_POLICY_2025, enterControl, enterData, exitTaints,
  kvmClassPolicy2025, switchMmTaints, taintModel2025,
} from '../../src/asi/taint.ts';
import { StunState } from '../../src/asi/stun.ts';
import { ACT_IBPB, ACT_L1D_FLUSH, ACT_RSB_FILL } from '../../src/asi/types.ts';

const ON = { l1tf: true, ibpb: true };

describe('PCIDs', () => {
  it.each([
    // [kern pcid, pti, 2022 pcid (index 1), 2025 pcid (class 0)]
    [1, true, 0x201, 0x201],
    [6, true, 0x206, 0x206],
    [2, false, 0x402, 0x402],
  ])('kPCID %i, PTI %s', (k, pti, p22, p25) => {
    expect(google2022AsiPcid(k, 1, pti)).toBe(p22);
    expect(google2025AsiPcid(k, 0, pti)).toBe(p25);
  });

  it('shifts and prefixes', () => {
    expect([asiPcidShift2022(true), asiPcidShift2022(false), asiPcidShift2025(true), asiPcidShift2025(false)]).toEqual([9, 10, 9, 10]);
    expect(google2025AsiPcid(3, 1, true)).toBe(0x403); // ASI_CLASS_USERSPACE: (1 + 1) << 9
    expect(chartreAsiPcid(ASI_PCID_PREFIX_USER, 3)).toBe(0x803);
    expect(chartreAsiPcid(0xff, 6)).toBe(0xff6);
  });

  it('asi_update_flush(): NOFLUSH only when id and generation match the CPU\'s record for that kernel PCID', () => {
    const t = new NoflushTracker(2);
    expect(t.check(0, 2, 7, 1)).toBe(false);
    expect(t.check(0, 2, 7, 1)).toBe(true);
    expect(t.check(1, 2, 7, 1)).toBe(false); // another CPU
    expect(t.check(0, 3, 7, 1)).toBe(false); // another kernel PCID slot
    expect(t.check(0, 2, 7, 2)).toBe(false); // tables changed
    expect(t.check(0, 2, 8, 2)).toBe(false); // another ASI
    expect(t.check(0, 2, 7, 2)).toBe(false); // the slot was overwritten by ASI 8
  });
});

describe('taints (RFC v2)', () => {
  const kvm = taintModel2025(kvmClassPolicy2025());
  const user = taintModel2025(USERSPACE_CLASS_POLICY_2025);
  const split = (p: number) => [p & 0xff, p >>> 8];

  it('KVM class policy as kvm_x86_init_asi_class() writes it', () => {
    expect(kvmClassPolicy2025()).toEqual({
      protectData: ASI_TAINT_KERNEL_DATA | ASI_TAINT_OTHER_MM_DATA | ASI_TAINT_USER_DATA,
      preventControl: ASI_TAINT_OTHER_MM_CONTROL,
      set: ASI_TAINT_GUEST_CONTROL,
    });
    expect(kvmClassPolicy2025({ blastsOnVmexit: true, mapsUser: true }).set).toBe(ASI_TAINT_GUEST_DATA);
    expect(kvmClassPolicy2025({ mapsUser: true }).protectData & ASI_TAINT_USER_DATA).toBe(0);
  });

  it.each([
    // [taints before, model, expected control actions, expected data actions, taints after]
    ['kernel data into a guest', ASI_TAINT_KERNEL_DATA, 'kvm', 0, ACT_L1D_FLUSH, ASI_TAINT_GUEST_CONTROL],
    ['another mm\'s control state into a guest', ASI_TAINT_OTHER_MM_CONTROL, 'kvm', ACT_IBPB | ACT_RSB_FILL, 0, ASI_TAINT_GUEST_CONTROL],
    ['guest control state into userspace', ASI_TAINT_GUEST_CONTROL, 'user', ACT_IBPB | ACT_RSB_FILL, 0, ASI_TAINT_USER_CONTROL | ASI_TAINT_USER_DATA],
    ['user data into userspace: not protected', ASI_TAINT_USER_DATA, 'user', 0, 0, ASI_TAINT_USER_CONTROL | ASI_TAINT_USER_DATA],
    ['guest data is never cleared by a data flush', ASI_TAINT_GUEST_DATA | ASI_TAINT_KERNEL_DATA, 'kvm', 0, ACT_L1D_FLUSH, ASI_TAINT_GUEST_DATA | ASI_TAINT_GUEST_CONTROL],
  ] as const)('%s', (_n, before, which, ctl, data, after) => {
    const m = which === 'kvm' ? kvm : user;
    const [t1, a1] = split(enterControl(before, m, ON));
    const [t2, a2] = split(enterData(t1, m, ON));
    expect([a1, a2, t2]).toEqual([ctl, data, after]);
  });

  it('asi_exit(): control taints flushed ("implicit policy of flushing all taints"), kernel data tainted', () => {
    expect(split(exitTaints(ASI_TAINT_GUEST_CONTROL | ASI_TAINT_GUEST_DATA, kvm, ON))).toEqual([ASI_TAINT_GUEST_DATA | ASI_TAINT_KERNEL_DATA, ACT_IBPB | ACT_RSB_FILL]);
    expect(split(exitTaints(ASI_TAINT_GUEST_CONTROL, kvm, { l1tf: true, ibpb: false }))).toEqual([ASI_TAINT_KERNEL_DATA, ACT_RSB_FILL]);
    expect(split(exitTaints(0, null, ON))).toEqual([ASI_TAINT_KERNEL_DATA, 0]);
  });

  it('asi_handle_switch_mm(): guest and user taints fold into other-mm taints', () => {
    expect(switchMmTaints(ASI_TAINT_GUEST_CONTROL | ASI_TAINT_USER_DATA)).toBe(ASI_TAINT_OTHER_MM_CONTROL | ASI_TAINT_OTHER_MM_DATA);
    expect(switchMmTaints(ASI_TAINT_GUEST_DATA)).toBe(0); // GUEST_DATA is outside ASI_TAINTS_DATA_MASK
    expect(switchMmTaints(ASI_TAINT_KERNEL_DATA)).toBe(ASI_TAINT_KERNEL_DATA | ASI_TAINT_OTHER_MM_DATA);
  });
});

describe('sibling stun', () => {
  it('stuns a sibling running inside a restricted space until the stunner re-enters', () => {
    const s = new StunState(Int32Array.of(1, 0, -1));
    s.inside[1] = 1;
    expect(s.onExit(0)).toBe(1);
    expect(s.onExit(0)).toBe(-1); // already stunned
    expect(s.isStunned(1)).toBe(true);
    expect(s.onEnter(1)).toBe(-1); // only the stunner releases
    expect(s.onEnter(0)).toBe(1);
    expect([s.stuns, s.ipis, s.releases]).toEqual([1, 1, 1]);
    s.setIdle(1, true);
    expect(s.onExit(0)).toBe(-1); // idle siblings run nothing
    expect(s.onExit(2)).toBe(-1); // no SMT sibling
  });
});
