/**
 * VM-exit reason names as the tools print them, mapped onto kasi's footprint keys
 * (`vm-exit:<VMX name>`, sim/footprints.ts). Plain tables; nothing here knows which keys have a
 * footprint entry (the importer's caller borrows for those that do not).
 *
 * Sources:
 *  - VMX: arch/x86/include/uapi/asm/vmx.h, EXIT_REASON_* and the VMX_EXIT_REASONS strings the
 *    kvm_exit tracepoint, perf kvm stat and bcc print (bcc tools/kvmexit.py adds EXIT_REASON_ in
 *    older versions; before Linux 5.x exit 7 was named PENDING_INTERRUPT, now INTERRUPT_WINDOW).
 *    VMX_EXIT_REASON_FLAGS appends " FAILED_VMENTRY" to the name (arch/x86/kvm/trace.h
 *    kvm_print_exit_reason()).
 *  - SVM: arch/x86/include/uapi/asm/svm.h, SVM_EXIT_* and the lower-case SVM_EXIT_REASONS strings
 *    ("npf", "msr", "hlt", "DE excp", ...). trace-cmd's kvm plugin (libtraceevent plugin_kvm.c)
 *    prints the macro names instead ("EXIT_NPF", "EXIT_IOIO"), and "UNKNOWN (N)" for others;
 *    bcc's kvmexit.py on AMD (since 2025-07, "Implement support for AMD") prints the macro
 *    suffixes bare ("NPF", "IOIO", "MSR", "INTR", "CR3_WRITE_TRAP", "EXCP_BASE", "LAST_EXCP").
 *  - The SVM → VMX equivalences are by what the exit is: SVM_EXIT_NPF is the nested page fault
 *    that VMX reports as EPT_VIOLATION (KVM's npf_interception and handle_ept_violation both call
 *    kvm_mmu_page_fault); SVM_EXIT_MSR covers RDMSR and WRMSR, told apart by EXITINFO1 (0 = read,
 *    1 = write; svm.c msr_interception) — tables that do not show it count it as MSR_WRITE, the
 *    common case (x2APIC ICR and TSC-deadline writes); SVM_EXIT_INTR is EXTERNAL_INTERRUPT,
 *    SVM_EXIT_VINTR is what KVM uses for the interrupt window (svm.c svm_set_vintr), the
 *    exception exits are VMX's EXCEPTION_NMI, SHUTDOWN is TRIPLE_FAULT.
 */

/** vmx.h EXIT_REASON_* by number (VMX_EXIT_REASONS names). */
export const VMX_EXIT_REASONS: ReadonlyMap<number, string> = new Map([
  [0, 'EXCEPTION_NMI'], [1, 'EXTERNAL_INTERRUPT'], [2, 'TRIPLE_FAULT'], [3, 'INIT_SIGNAL'], [4, 'SIPI_SIGNAL'],
  [7, 'INTERRUPT_WINDOW'], [8, 'NMI_WINDOW'], [9, 'TASK_SWITCH'], [10, 'CPUID'], [12, 'HLT'], [13, 'INVD'],
  [14, 'INVLPG'], [15, 'RDPMC'], [16, 'RDTSC'], [18, 'VMCALL'], [19, 'VMCLEAR'], [20, 'VMLAUNCH'], [21, 'VMPTRLD'],
  [22, 'VMPTRST'], [23, 'VMREAD'], [24, 'VMRESUME'], [25, 'VMWRITE'], [26, 'VMOFF'], [27, 'VMON'], [28, 'CR_ACCESS'],
  [29, 'DR_ACCESS'], [30, 'IO_INSTRUCTION'], [31, 'MSR_READ'], [32, 'MSR_WRITE'], [33, 'INVALID_STATE'],
  [6, 'OTHER_SMI'], [34, 'MSR_LOAD_FAIL'], [36, 'MWAIT_INSTRUCTION'], [37, 'MONITOR_TRAP_FLAG'], [39, 'MONITOR_INSTRUCTION'],
  [40, 'PAUSE_INSTRUCTION'], [41, 'MCE_DURING_VMENTRY'], [43, 'TPR_BELOW_THRESHOLD'], [44, 'APIC_ACCESS'],
  [45, 'EOI_INDUCED'], [46, 'GDTR_IDTR'], [47, 'LDTR_TR'], [48, 'EPT_VIOLATION'], [49, 'EPT_MISCONFIG'],
  [50, 'INVEPT'], [51, 'RDTSCP'], [52, 'PREEMPTION_TIMER'], [53, 'INVVPID'], [54, 'WBINVD'], [55, 'XSETBV'],
  [56, 'APIC_WRITE'], [57, 'RDRAND'], [58, 'INVPCID'], [59, 'VMFUNC'], [60, 'ENCLS'], [61, 'RDSEED'],
  [62, 'PML_FULL'], [63, 'XSAVES'], [64, 'XRSTORS'], [67, 'UMWAIT'], [68, 'TPAUSE'], [74, 'BUS_LOCK'],
  [75, 'NOTIFY'], [77, 'TDCALL'],
]);
const VMX_NAMES: ReadonlySet<string> = new Set(VMX_EXIT_REASONS.values());
/** Older names of the same exits. */
const VMX_ALIASES: ReadonlyMap<string, string> = new Map([
  ['PENDING_INTERRUPT', 'INTERRUPT_WINDOW'], // vmx.h before the 5.x rename
  ['TPAUSEN/A', 'TPAUSE'], // bcc kvmexit.py: a missing comma joins "TPAUSE" "N/A" in its table
]);

/** Exception vectors (arch/x86/include/asm/trapnr.h): the exception exits are SVM_EXIT_EXCP_BASE + vector. */
const EXC_VECTOR: Readonly<Record<string, number>> = {
  DE: 0, DB: 1, BP: 3, OF: 4, BR: 5, UD: 6, NM: 7, DF: 8, TS: 10, NP: 11, SS: 12, GP: 13, PF: 14, MF: 16, AC: 17, MC: 18, XF: 19,
};

/** svm.h: [SVM_EXIT_* number, macro suffix, SVM_EXIT_REASONS string, VMX equivalent or null]. */
type SvmEntry = readonly [number, string, string, string | null];
const SVM: readonly SvmEntry[] = [
  ...[0, 2, 3, 4, 8].map((n): SvmEntry => [n, `READ_CR${n}`, `read_cr${n}`, 'CR_ACCESS']),
  ...[0, 2, 3, 4, 8].map((n): SvmEntry => [0x10 + n, `WRITE_CR${n}`, `write_cr${n}`, 'CR_ACCESS']),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((n): SvmEntry => [0x20 + n, `READ_DR${n}`, `read_dr${n}`, 'DR_ACCESS']),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((n): SvmEntry => [0x30 + n, `WRITE_DR${n}`, `write_dr${n}`, 'DR_ACCESS']),
  ...(['DE', 'DB', 'BP', 'OF', 'BR', 'UD', 'NM', 'DF', 'TS', 'NP', 'SS', 'GP', 'PF', 'MF', 'AC', 'MC', 'XF'] as const)
    .map((x): SvmEntry => [0x40 + EXC_VECTOR[x], x === 'DE' ? 'EXCP_BASE' : `EXCP_${x}`, `${x} excp`, 'EXCEPTION_NMI']),
  [0x60, 'INTR', 'interrupt', 'EXTERNAL_INTERRUPT'], [0x61, 'NMI', 'nmi', 'EXCEPTION_NMI'], [0x62, 'SMI', 'smi', null],
  [0x63, 'INIT', 'init', 'INIT_SIGNAL'], [0x64, 'VINTR', 'vintr', 'INTERRUPT_WINDOW'], [0x65, 'CR0_SEL_WRITE', 'cr0_sel_write', 'CR_ACCESS'],
  [0x66, 'IDTR_READ', 'read_idtr', 'GDTR_IDTR'], [0x67, 'GDTR_READ', 'read_gdtr', 'GDTR_IDTR'], [0x68, 'LDTR_READ', 'read_ldtr', 'LDTR_TR'],
  [0x69, 'TR_READ', 'read_rt', 'LDTR_TR'], [0x6a, 'IDTR_WRITE', 'write_idtr', 'GDTR_IDTR'], [0x6b, 'GDTR_WRITE', 'write_gdtr', 'GDTR_IDTR'],
  [0x6c, 'LDTR_WRITE', 'write_ldtr', 'LDTR_TR'], [0x6d, 'TR_WRITE', 'write_rt', 'LDTR_TR'], [0x6e, 'RDTSC', 'rdtsc', 'RDTSC'],
  [0x6f, 'RDPMC', 'rdpmc', 'RDPMC'], [0x70, 'PUSHF', 'pushf', null], [0x71, 'POPF', 'popf', null], [0x72, 'CPUID', 'cpuid', 'CPUID'],
  [0x73, 'RSM', 'rsm', null], [0x74, 'IRET', 'iret', 'NMI_WINDOW'], [0x75, 'SWINT', 'swint', null], [0x76, 'INVD', 'invd', 'INVD'],
  [0x77, 'PAUSE', 'pause', 'PAUSE_INSTRUCTION'], [0x78, 'HLT', 'hlt', 'HLT'], [0x79, 'INVLPG', 'invlpg', 'INVLPG'],
  [0x7a, 'INVLPGA', 'invlpga', null], [0x7b, 'IOIO', 'io', 'IO_INSTRUCTION'], [0x7c, 'MSR', 'msr', 'MSR_WRITE'],
  [0x7d, 'TASK_SWITCH', 'task_switch', 'TASK_SWITCH'], [0x7e, 'FERR_FREEZE', 'ferr_freeze', null], [0x7f, 'SHUTDOWN', 'shutdown', 'TRIPLE_FAULT'],
  [0x80, 'VMRUN', 'vmrun', null], [0x81, 'VMMCALL', 'hypercall', 'VMCALL'], [0x82, 'VMLOAD', 'vmload', null], [0x83, 'VMSAVE', 'vmsave', null],
  [0x84, 'STGI', 'stgi', null], [0x85, 'CLGI', 'clgi', null], [0x86, 'SKINIT', 'skinit', null], [0x87, 'RDTSCP', 'rdtscp', 'RDTSCP'],
  [0x88, 'ICEBP', 'icebp', 'EXCEPTION_NMI'], [0x89, 'WBINVD', 'wbinvd', 'WBINVD'], [0x8a, 'MONITOR', 'monitor', 'MONITOR_INSTRUCTION'],
  [0x8b, 'MWAIT', 'mwait', 'MWAIT_INSTRUCTION'], [0x8c, 'MWAIT_COND', 'mwait_cond', 'MWAIT_INSTRUCTION'], [0x8d, 'XSETBV', 'xsetbv', 'XSETBV'],
  [0x8e, 'RDPRU', 'rdpru', null], [0x8f, 'EFER_WRITE_TRAP', 'write_efer_trap', 'MSR_WRITE'],
  ...Array.from({ length: 16 }, (_, n): SvmEntry => [0x90 + n, `CR${n}_WRITE_TRAP`, `write_cr${n}_trap`, 'CR_ACCESS']),
  [0xa2, 'INVPCID', 'invpcid', 'INVPCID'], [0xa5, 'BUS_LOCK', 'buslock', 'BUS_LOCK'], [0xa6, 'IDLE_HLT', 'idle-halt', 'HLT'],
  [0x400, 'NPF', 'npf', 'EPT_VIOLATION'], [0x401, 'AVIC_INCOMPLETE_IPI', 'avic_incomplete_ipi', 'APIC_WRITE'],
  [0x402, 'AVIC_UNACCELERATED_ACCESS', 'avic_unaccelerated_access', 'APIC_ACCESS'], [0x403, 'VMGEXIT', 'vmgexit', null],
  [-1, 'ERR', 'invalid_guest_state', 'INVALID_STATE'],
];

const SVM_BY_NAME = new Map<string, SvmEntry>();
const SVM_BY_NUMBER = new Map<number, SvmEntry>();
function svmIndex(): void {
  if (SVM_BY_NAME.size > 0) return;
  for (const e of SVM) {
    SVM_BY_NAME.set(e[2], e);
    SVM_BY_NAME.set(`EXIT_${e[1]}`, e); // trace-cmd plugin_kvm.c names
    if (!SVM_BY_NAME.has(e[1])) SVM_BY_NAME.set(e[1], e); // bcc kvmexit.py on AMD: the bare macro suffix (VMX names were matched before)
    SVM_BY_NUMBER.set(e[0], e);
  }
}

/** The canonical name of an SVM entry for a footprint key: its VMX equivalent, else the upper-cased svm.h macro suffix. */
function svmCanonical(e: SvmEntry): string {
  return e[3] ?? `SVM_${e[1]}`;
}

/**
 * The footprint key of an exit reason as a tool printed it, or null when the name is unknown
 * ("N/A", "UNKNOWN (77)", a bare number). `info1` is the trace's EXITINFO1, where known, which
 * tells an SVM msr exit's direction.
 */
export function exitReasonKey(printed: string, info1?: bigint): string | null {
  let name = printed.trim().replace(/^EXIT_REASON_/, '');
  name = name.replace(/\s+(FAILED_VMENTRY|SGX_ENCLAVE_MODE)\b.*$/, '');
  if (VMX_NAMES.has(name)) return `vm-exit:${name}`;
  const alias = VMX_ALIASES.get(name);
  if (alias !== undefined) return `vm-exit:${alias}`;
  svmIndex();
  const e = SVM_BY_NAME.get(name);
  if (e === undefined) return name === 'LAST_EXCP' ? 'vm-exit:EXCEPTION_NMI' : null; // SVM_EXIT_LAST_EXCP (0x5f, exception 31): bcc names it, svm.h's strings do not
  if (e[1] === 'MSR' && info1 !== undefined) return `vm-exit:${info1 === 0n ? 'MSR_READ' : 'MSR_WRITE'}`;
  return `vm-exit:${svmCanonical(e)}`;
}

/** A raw exit code (the tracepoint's exit_reason field) as the kernel prints it: isa 1 = VMX, 2 = SVM (kvm_host.h KVM_ISA_*). */
export function exitReasonName(code: number, isa: number): string | null {
  if (isa === 2) {
    svmIndex();
    return SVM_BY_NUMBER.get(code)?.[2] ?? null;
  }
  return VMX_EXIT_REASONS.get(code & 0xffff) ?? null;
}

/** The prefix dropped from names (bcc kvmexit.py before 2022 printed EXIT_REASON_HLT). */
export function dropExitPrefix(name: string): string {
  return name.startsWith('EXIT_REASON_') && name.length > 'EXIT_REASON_'.length ? name.slice('EXIT_REASON_'.length) : name;
}
