/**
 * The per-CPU taint model of Google's ASI RFC v2 (lore 20250110-asi-rfc-v2-v2-0-8419288bc805,
 * arch/x86/include/asm/asi.h and arch/x86/mm/asi.c; patch 27/29 "mm: asi: Add some mitigations
 * on address space transitions"), and the simpler flush rules of the earlier designs expressed
 * in the same terms.
 *
 * "Taints exist along two dimensions: who touched the CPU (guest, unprotected kernel,
 * userspace), and what kind of state might remain: 'data' … left behind in a sidechannel;
 * 'control' … state controlled by an attacker domain left behind in the branch predictor."
 *
 * __asi_enter(target): maybe_flush_control(target) — taints & prevent_control → IBPB (if the CPU
 * has it) and fill_return_buffer(), control taints cleared; CR3 write; maybe_flush_data(target)
 * — taints & protect_data → l1tf_flush() on CPUs with X86_BUG_L1TF, data taints cleared; then
 * taints |= policy.set. asi_exit(): maybe_flush_control(NULL) ("an implicit policy of flushing
 * all taints", i.e. taints & ASI_TAINTS_CONTROL_MASK), taints |= ASI_TAINT_KERNEL_DATA, CR3 write.
 * Context switch (asi_handle_switch_mm()): guest and user taints fold into OTHER_MM ones.
 *
 * Functions return the new taints and the actions packed in one Number (no allocation):
 * bits 0..7 taints, bits 8.. action codes (types.ts ACT_*): `packed & 0xff`, `packed >>> 8`.
 */
import { ACT_IBPB, ACT_L1D_FLUSH, ACT_RSB_FILL, ACT_VERW, type TaintModel, type TaintPolicy } from './types.ts';

export const ASI_TAINT_KERNEL_DATA = 1 << 0;
export const ASI_TAINT_USER_DATA = 1 << 1;
export const ASI_TAINT_GUEST_DATA = 1 << 2;
export const ASI_TAINT_OTHER_MM_DATA = 1 << 3;
export const ASI_TAINT_USER_CONTROL = 1 << 4;
export const ASI_TAINT_GUEST_CONTROL = 1 << 5;
export const ASI_TAINT_OTHER_MM_CONTROL = 1 << 6;
export const ASI_TAINTS_CONTROL_MASK = ASI_TAINT_USER_CONTROL | ASI_TAINT_GUEST_CONTROL | ASI_TAINT_OTHER_MM_CONTROL;
/** As in the RFC: GUEST_DATA is not in the data mask, so maybe_flush_data() never clears it. */
export const ASI_TAINTS_DATA_MASK = ASI_TAINT_KERNEL_DATA | ASI_TAINT_USER_DATA | ASI_TAINT_OTHER_MM_DATA;
export const ASI_TAINTS_GUEST_MASK = ASI_TAINT_GUEST_DATA | ASI_TAINT_GUEST_CONTROL;
export const ASI_TAINTS_USER_MASK = ASI_TAINT_USER_DATA | ASI_TAINT_USER_CONTROL;
export const TAINT_NAMES = ['kernel-data', 'user-data', 'guest-data', 'other-mm-data', 'user-control', 'guest-control', 'other-mm-control'] as const;

/** CPU properties the flushes depend on. */
export interface TaintFeatures {
  /** X86_BUG_L1TF: l1tf_flush_setup() succeeded, do_l1tf_flush. */
  l1tf: boolean;
  /** X86_FEATURE_IBPB. */
  ibpb: boolean;
}

export interface KvmClassOptions {
  /** X86_FEATURE_IBPB_ON_VMEXIT && CONFIG_MITIGATION_RETPOLINE && X86_FEATURE_RSB_VMEXIT. */
  blastsOnVmexit?: boolean;
  /** asi_maps_user_addr(ASI_CLASS_KVM) (false in RFC v2). */
  mapsUser?: boolean;
}

/**
 * kvm_x86_init_asi_class() (RFC v2 21/29, arch/x86/kvm/x86.c). `.set = ASI_TAINT_GUEST_DATA`,
 * then "policy.set = ASI_TAINT_GUEST_CONTROL" unless KVM blasts the predictors on every VM exit —
 * an assignment in the patch, so GUEST_DATA is dropped then (reproduced as written).
 */
export function kvmClassPolicy2025(o: KvmClassOptions = {}): TaintPolicy {
  let protectData = ASI_TAINT_KERNEL_DATA | ASI_TAINT_OTHER_MM_DATA;
  if (!(o.mapsUser ?? false)) protectData |= ASI_TAINT_USER_DATA; // "And the same for data left behind by code in the userspace domain"
  return {
    protectData,
    preventControl: ASI_TAINT_OTHER_MM_CONTROL,
    set: o.blastsOnVmexit ? ASI_TAINT_GUEST_DATA : ASI_TAINT_GUEST_CONTROL,
  };
}

/** asi_init_userspace_class() (bjackman/linux arch/x86/mm/asi.c, the branch after RFC v2). */
export const USERSPACE_CLASS_POLICY_2025: TaintPolicy = {
  protectData: ASI_TAINT_KERNEL_DATA | ASI_TAINT_OTHER_MM_DATA,
  preventControl: ASI_TAINT_GUEST_CONTROL | ASI_TAINT_OTHER_MM_CONTROL,
  set: ASI_TAINT_USER_CONTROL | ASI_TAINT_USER_DATA,
};

const R25 = 'ASI RFC v2 27/29 "mm: asi: Add some mitigations on address space transitions"';

export function taintModel2025(policy: TaintPolicy): TaintModel {
  return { policy, dataActions: ACT_L1D_FLUSH, controlActions: ACT_IBPB | ACT_RSB_FILL, controlOnExit: true, source: R25 };
}

/**
 * 2019 (Chartre/Alon): exits call kvm_may_access_sensitive_data(), which sets
 * vcpu->arch.l1tf_flush_l1d, so the next VM entry flushes the L1D (RFC KVM 07/27). The flag is
 * the KERNEL_DATA taint here; the enter "protects" against it with an L1D flush.
 */
export const TAINT_MODEL_2019: TaintModel = {
  policy: { protectData: ASI_TAINT_KERNEL_DATA, preventControl: 0, set: 0 },
  dataActions: ACT_L1D_FLUSH, controlActions: 0, controlOnExit: false,
  source: 'RFC KVM 07/27 kvm_may_access_sensitive_data(): vcpu->arch.l1tf_flush_l1d = true',
};

/**
 * 2022 (Shahid): "the KVM-ASI hooks would perform a sibling-hyperthread-stun operation in the
 * asi_exit hook, and L1-flush/MDS-clear and sibling-hyperthread-unstun operations in the
 * asi_enter hook" (cover letter); post_asi_enter runs only when __asi_enter really switches,
 * i.e. after an exit, which is what the KERNEL_DATA taint records.
 */
export const TAINT_MODEL_2022: TaintModel = {
  policy: { protectData: ASI_TAINT_KERNEL_DATA, preventControl: 0, set: 0 },
  dataActions: ACT_L1D_FLUSH | ACT_VERW, controlActions: 0, controlOnExit: false,
  source: 'ASI RFC 2022 cover letter: KVM-ASI post_asi_enter hook does L1-flush/MDS-clear',
};

/** Drop actions the CPU cannot or need not do (L1D flush without L1TF; IBPB without the feature). */
export function gate(actions: number, f: TaintFeatures): number {
  let a = actions;
  if (!f.l1tf) a &= ~ACT_L1D_FLUSH;
  if (!f.ibpb) a &= ~ACT_IBPB;
  return a;
}

/** maybe_flush_control(target) before the CR3 write. */
export function enterControl(taints: number, m: TaintModel, f: TaintFeatures): number {
  const t = taints & m.policy.preventControl;
  if (t === 0) return taints;
  return (taints & ~ASI_TAINTS_CONTROL_MASK) | (gate(m.controlActions, f) << 8);
}

/** maybe_flush_data(target) after the CR3 write, then taints |= set. */
export function enterData(taints: number, m: TaintModel, f: TaintFeatures): number {
  let t = taints;
  let actions = 0;
  if ((t & m.policy.protectData) !== 0) {
    actions = gate(m.dataActions, f);
    t &= ~ASI_TAINTS_DATA_MASK;
  }
  return (t | m.policy.set) | (actions << 8);
}

/** asi_exit(): maybe_flush_control(NULL) if the model does it, then taints |= KERNEL_DATA. */
export function exitTaints(taints: number, m: TaintModel | null, f: TaintFeatures): number {
  let t = taints;
  let actions = 0;
  if (m && m.controlOnExit && (t & ASI_TAINTS_CONTROL_MASK) !== 0) {
    actions = gate(m.controlActions, f);
    t &= ~ASI_TAINTS_CONTROL_MASK;
  }
  return (t | ASI_TAINT_KERNEL_DATA) | (actions << 8);
}

/** asi_handle_switch_mm(): "squash the per-domain (guest/userspace) taints into a general 'other MM' taint". */
export function switchMmTaints(taints: number): number {
  let add = 0;
  if (taints & ASI_TAINTS_CONTROL_MASK) add |= ASI_TAINT_OTHER_MM_CONTROL;
  if (taints & ASI_TAINTS_DATA_MASK) add |= ASI_TAINT_OTHER_MM_DATA;
  return (taints | add) & ~(ASI_TAINTS_GUEST_MASK | ASI_TAINTS_USER_MASK);
}

/** Taint names of a taint set, for reports. */
export function taintNames(t: number): string[] {
  return TAINT_NAMES.filter((_, i) => (t & (1 << i)) !== 0);
}
