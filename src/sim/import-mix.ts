/**
 * A workload profile imported from a tool's output (formats/) as a thread's mix (issue 14,
 * "Scenarios from real workloads"): counts become event weights; syscalls and exit reasons with
 * no footprint entry borrow a documented one, and the result lists them as borrowed; where the
 * profile has a duration, the time between events becomes a guest-run (VM exits) or
 * user-compute (syscalls) item of the mean gap, weighted so one falls between two events.
 *
 * Borrowing goes by what the kernel does for the call or exit (the footprint sources are in
 * footprints.ts): a syscall of a family borrows its measured sibling; anything else borrows
 * getppid, the measured entry/exit path with a one-line handler (its own work is not modelled).
 * An exit KVM handles in the kernel without emulating borrows CPUID (the bare round trip plus
 * one handler); one that emulates an instruction borrows EPT_MISCONFIG (x86_emulate_instruction);
 * one that goes to the VMM borrows IO_INSTRUCTION (KVM_RUN returns); an unknown reason borrows CPUID.
 */
import { PARSERS, importWorkload, type WorkloadFormat } from '../formats/index.ts';
import type { WorkloadProfile } from '../formats/profile.ts';
import { readTextMaybeGz } from '../formats/files.ts';
import { footprintKeys } from './footprints.ts';
import type { MixItem } from './scenario-types.ts';

export interface BorrowedFootprint {
  /** The syscall or exit as the tool printed it. */
  name: string;
  /** The key it would have (`syscall:readv`, `vm-exit:PREEMPTION_TIMER`), or null for an unknown exit. */
  key: string | null;
  /** The footprint it borrows. */
  from: string;
  why: string;
}

export interface ImportedMix {
  items: MixItem[];
  borrowed: BorrowedFootprint[];
  /** Events left out (a count of 0). */
  dropped: { name: string; why: string }[];
  /** Events per second of the whole profile, when it has a duration. */
  eventsPerSecond: number | null;
  /** Mean time between two events on one thread (duration × threads − time in events) / events; null without a duration. */
  gapNs: number | null;
}

export interface MixOptions {
  /** The footprint keys that exist (default: the built-in table's). */
  keys?: readonly string[];
  /** CPU cycles per ns, to turn gapNs into a guest-run / user-compute item (none without it). */
  cyclesPerNs?: number;
  /** Threads (vCPUs) the profile's counts are spread over, for gapNs (default 1). */
  threads?: number;
}

const SYSCALL_FAMILY: Readonly<Record<string, readonly [string, string]>> = {
  readv: ['read', 'vfs_readv shares vfs_read\'s path'], preadv: ['pread64', 'vfs_readv of a file'], preadv2: ['pread64', 'vfs_readv of a file'],
  writev: ['write', 'vfs_writev shares vfs_write\'s path'], pwritev: ['pwrite64', 'vfs_writev of a file'], pwritev2: ['pwrite64', 'vfs_writev of a file'],
  open: ['openat', 'open is do_sys_open(AT_FDCWD)'], creat: ['openat', 'creat is open(O_CREAT|O_WRONLY|O_TRUNC)'], openat2: ['openat', 'do_sys_openat2'],
  close_range: ['close', 'closes descriptors like close'],
  stat: ['newfstatat', 'vfs_fstatat'], lstat: ['newfstatat', 'vfs_fstatat(AT_SYMLINK_NOFOLLOW)'], fstat: ['newfstatat', 'vfs_fstat'], statx: ['newfstatat', 'vfs_statx'],
  newstat: ['newfstatat', 'vfs_fstatat'], newlstat: ['newfstatat', 'vfs_fstatat'], newfstat: ['newfstatat', 'vfs_fstat'],
  access: ['newfstatat', 'a path lookup like stat (do_faccessat)'], faccessat: ['newfstatat', 'a path lookup like stat'], faccessat2: ['newfstatat', 'a path lookup like stat'],
  readlink: ['newfstatat', 'a path lookup like stat'], readlinkat: ['newfstatat', 'a path lookup like stat'],
  mmap2: ['mmap', 'the same do_mmap'], mremap: ['mmap', 'mm/mremap.c moves VMAs through the mmap paths'],
  madvise: ['mprotect', 'MADV_DONTNEED zaps PTEs and flushes like mprotect'],
  ppoll: ['poll', 'do_sys_poll'], select: ['poll', 'core_sys_select: a readiness check like poll'], pselect6: ['poll', 'core_sys_select'],
  epoll_pwait: ['epoll_wait', 'do_epoll_wait'], epoll_pwait2: ['epoll_wait', 'do_epoll_wait'],
  clock_nanosleep: ['nanosleep', 'hrtimer_nanosleep'], futex_waitv: ['futex', 'the futex paths'],
  send: ['sendto', 'send is sendto without an address'], recv: ['recvfrom', 'recv is recvfrom without an address'],
  sendmmsg: ['sendmsg', '____sys_sendmsg per message'], recvmmsg: ['recvmsg', '____sys_recvmsg per message'],
  gettimeofday: ['clock_gettime', 'do_gettimeofday reads the same clock'], time: ['clock_gettime', 'reads the same clock'],
  clock_getres: ['clock_gettime', 'the posix-clock paths'],
  getuid: ['getpid', 'a one-line handler'], geteuid: ['getpid', 'a one-line handler'], getgid: ['getpid', 'a one-line handler'],
  getegid: ['getpid', 'a one-line handler'], getpgrp: ['getpid', 'a one-line handler'], umask: ['getpid', 'a short handler'],
  _llseek: ['lseek', 'the same vfs_llseek'], llseek: ['lseek', 'the same vfs_llseek'], getdents: ['getdents64', 'iterate_dir like getdents64'],
};
const SYSCALL_DEFAULT = 'getppid';

const IN_KERNEL = 'handled in KVM without emulation: the bare exit round trip plus a handler';
const EXIT_BORROW: Readonly<Record<string, readonly [string, string]>> = {
  MSR_READ: ['MSR_WRITE', 'kvm_emulate_rdmsr runs the same kvm_get/set_msr_common paths'],
  APIC_ACCESS: ['EPT_MISCONFIG', 'handle_apic_access emulates the access (kvm_emulate_instruction)'],
  TASK_SWITCH: ['EPT_MISCONFIG', 'kvm_task_switch emulates the switch'],
  INVALID_STATE: ['EPT_MISCONFIG', 'handle_invalid_guest_state emulates'],
  EXCEPTION_NMI: ['EPT_MISCONFIG', 'an intercepted guest exception is usually emulated (#UD, #GP) or reflected'],
  TRIPLE_FAULT: ['IO_INSTRUCTION', 'KVM_EXIT_SHUTDOWN goes to the VMM'],
  INIT_SIGNAL: ['HLT', 'the vCPU waits for SIPI (kvm_vcpu_block)'],
  MWAIT_INSTRUCTION: ['HLT', 'handled as a halt when not passed through'],
  VMCALL: ['CPUID', 'kvm_emulate_hypercall: ' + IN_KERNEL],
};

export function profileToMix(profile: WorkloadProfile, opts: MixOptions = {}): ImportedMix {
  const keys = new Set(opts.keys ?? footprintKeys());
  const weights = new Map<string, { item: MixItem; weight: number }>();
  const borrowed: BorrowedFootprint[] = [];
  const dropped: { name: string; why: string }[] = [];
  let total = 0;
  let inEventsNs = 0;

  const add = (key: string, item: MixItem, n: number): void => {
    const w = weights.get(key);
    if (w === undefined) weights.set(key, { item, weight: n });
    else w.weight += n;
  };
  for (const e of profile.events) {
    if (e.count <= 0) { dropped.push({ name: e.name, why: 'a count of 0' }); continue; }
    total += e.count;
    inEventsNs += e.total_ns ?? 0;
    if (profile.kind === 'syscalls') {
      if (e.name === 'majfaults' || e.name === 'minfaults') { add('page-fault', { event: 'page-fault', weight: 1 }, e.count); continue; }
      let name = e.name;
      if (!keys.has(`syscall:${name}`)) {
        const fam = SYSCALL_FAMILY[name];
        const to = fam !== undefined && keys.has(`syscall:${fam[0]}`) ? fam : [SYSCALL_DEFAULT, 'no footprint of its own: the measured entry/exit path with a one-line handler (its own work is not modelled)'] as const;
        borrowed.push({ name, key: `syscall:${name}`, from: `syscall:${to[0]}`, why: to[1] });
        name = to[0];
      }
      add(`syscall:${name}`, { event: 'syscall', name, weight: 1 }, e.count);
      continue;
    }
    let reason = e.reason?.replace(/^vm-exit:/, '') ?? null;
    if (reason === null || !keys.has(`vm-exit:${reason}`)) {
      const b = reason !== null ? EXIT_BORROW[reason] : undefined;
      const to = b !== undefined && keys.has(`vm-exit:${b[0]}`) ? b : ['CPUID', reason === null ? 'an unknown exit reason: the bare exit round trip' : IN_KERNEL] as const;
      borrowed.push({ name: e.name, key: e.reason, from: `vm-exit:${to[0]}`, why: to[1] });
      reason = to[0];
    }
    add(`vm-exit:${reason}`, { event: 'vm-exit', reason, weight: 1 }, e.count);
  }
  const items: MixItem[] = [...weights.values()].map(({ item, weight }) => ({ ...item, weight }));
  const d = profile.duration_ns;
  const eventsPerSecond = d !== null && d > 0 && total > 0 ? total / (d / 1e9) : null;
  const gapNs = d !== null && d > 0 && total > 0 ? Math.max(0, d * (opts.threads ?? 1) - inEventsNs) / total : null;
  if (gapNs !== null && opts.cyclesPerNs !== undefined) {
    const cycles = Math.round(gapNs * opts.cyclesPerNs);
    if (cycles >= 1) items.push({ event: profile.kind === 'syscalls' ? 'user-compute' : 'guest-run', cycles, weight: total });
  }
  return { items, borrowed, dropped, eventsPerSecond, gapNs };
}

/**
 * The scenario hook `from: { file, kind, vcpu }`: read the file (gzip or text; errors are
 * InputError FILE:LINE), import it (kind detected when absent), keep one vCPU's events where the
 * file breaks them down by vCPU — else the whole file's, said in `notes` — and make the mix.
 */
export function loadImportedMix(file: string, opts: MixOptions & { kind?: WorkloadFormat; vcpu?: number } = {}): ImportedMix & { profile: WorkloadProfile; format: WorkloadFormat; notes: string[] } {
  const text = readTextMaybeGz(file);
  const notes: string[] = [];
  let vcpu = opts.vcpu;
  if (vcpu !== undefined) {
    const probe = importWorkload(text, file, { kind: opts.kind });
    if (!PARSERS[probe.format](text, file).perVcpu) {
      notes.push(`${file}: no per-vCPU breakdown; vCPU ${vcpu} replays the counts of the whole file`);
      vcpu = undefined;
    }
  }
  const { profile, format } = importWorkload(text, file, { kind: opts.kind, vcpu });
  const mix = profileToMix(profile, opts);
  for (const b of mix.borrowed) notes.push(`${b.name}: ${b.key ?? 'unknown reason'} has no footprint, borrows ${b.from} (${b.why})`);
  return { ...mix, profile, format, notes };
}
