/**
 * The footprint table (versioned data): what one event does in the kernel, as the engine
 * expands it into touches (docs/DESIGN.md "An event expands into touches").
 *
 * Per event key (`syscall:<name>`, `vm-exit:<REASON>`, `page-fault`, `timer-interrupt`, `ipi`,
 * `nmi`, `context-switch`, `idle`):
 *   - text:  the 4 KiB kernel text pages executed (link addresses of the Debian 6.1 kernel of
 *            test/fixtures, nokaslr: rebase by the image's KASLR slide) + a count of module
 *            text pages (kvm.ko, kvm-intel.ko; not in the core image);
 *   - insns: kernel instructions executed on top of the transition's fixed cost (costs.ts);
 *   - data:  the data objects touched, by kind, with access type, 64-byte lines and whose
 *            object it is (scope: the running tenant's, the previous task's, this CPU's, or
 *            kernel-global);
 *   - tlbFlushPages: single-page TLB invalidations the event itself makes (munmap);
 *   - base:  (overrides only) the source's own measured native latency of the event, which then
 *            replaces transition + instructions (sim/event-base.ts);
 *   - loopCycles: (sized syscalls) the copy's or clear's loop, priced by its throughput (sim/sized.ts).
 * The instructions cost kernelCyclesPerInsnWarm, kernelCyclesPerInsnUntrained or kernelCyclesPerInsn
 * by the state of the path's code on the core when it runs (sim/code-warmth.ts).
 * Every part says where it comes from: "measured: footprints.json <test> parts[i]",
 * "modelled: <kernel path / what it borrows>", or "assumption: …".
 *
 * Measured text pages are read at load time from test/fixtures/footprints/footprints.json
 * through formats/footprints.ts; the rest is written here. Data footprints are never measured (the
 * fixture is code only): they are modelled from the 6.1 code paths, with line counts estimated.
 */
import { fileURLToPath } from 'node:url';
import { loadFootprints, type Footprints } from '../formats/footprints.ts';
import type { NativeBase } from './event-base.ts';

/** Bump when an entry changes, so stored results say which table priced them. */
export const FOOTPRINT_TABLE_VERSION = 2; // 2: faults zero a fresh page ('fresh-page'), not the tenant's own

export const DEFAULT_FOOTPRINTS_FILE = fileURLToPath(new URL('../../test/fixtures/footprints/footprints.json', import.meta.url));

export const EVENT_KINDS = ['syscall', 'vm-exit', 'page-fault', 'timer-interrupt', 'ipi', 'nmi', 'context-switch', 'idle'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
export type Transition = 'syscall' | 'interrupt' | 'vm-exit' | 'none';
/** Which fixed cost (costs.ts) an event pays: a page fault and an NMI enter like interrupts. */
export const TRANSITION_OF: Readonly<Record<EventKind, Transition>> = {
  syscall: 'syscall', 'vm-exit': 'vm-exit', 'page-fault': 'interrupt', 'timer-interrupt': 'interrupt',
  ipi: 'interrupt', nmi: 'interrupt', 'context-switch': 'none', idle: 'none',
};

export const DATA_KINDS = [
  'task_struct', 'cred', 'mm_struct', 'vma', 'files', 'file', 'dentry', 'inode', 'pipe', 'pipe-page',
  'sock', 'sk_buff', 'skb-data', 'page-cache', 'kvm_vcpu', 'kvm', 'kvm-run', 'ept', 'page-table',
  'percpu', 'kernel-stack', 'guest-memory', 'user-pages', 'kernel-global', 'fresh-page',
] as const;
export type DataKind = (typeof DATA_KINDS)[number];
export const ACCESSES = ['read', 'write', 'rw'] as const;
export type Access = (typeof ACCESSES)[number];
/** current: the running tenant's object; previous: the task switched away from; cpu: this CPU's; global: kernel-wide. */
export const SCOPES = ['current', 'previous', 'cpu', 'global'] as const;
export type Scope = (typeof SCOPES)[number];

export interface DataTouch {
  readonly kind: DataKind;
  readonly access: Access;
  /** Distinct 64-byte lines of the object touched per event. */
  readonly lines: number;
  readonly scope: Scope;
  readonly source: string;
  /** A sized copy's page index (sim/sized.ts): the touch goes to that page of the tenant's I/O buffer or file. */
  readonly seq?: number;
}

export interface MeasuredRef {
  readonly test: string;
  readonly part: number;
}

interface TextSpec {
  readonly measured: readonly MeasuredRef[];
  /** Extra core-image pages, with the kallsyms symbols they hold (captures/la48-pti-nokaslr). */
  readonly symbols?: { readonly names: readonly string[]; readonly pages: readonly string[] };
  readonly modulePages: number;
  readonly source: string;
}

interface FootprintSpec {
  readonly key: string;
  readonly text: TextSpec;
  readonly insns: { readonly count: number; readonly source: string };
  readonly data: readonly DataTouch[];
  readonly tlbFlushPages?: number;
}

export interface Footprint {
  readonly key: string;
  readonly event: EventKind;
  /** Syscall name or VM-exit reason; null for the other events. */
  readonly detail: string | null;
  readonly transition: Transition;
  readonly text: { readonly pages: readonly bigint[]; readonly modulePages: number; readonly source: string };
  readonly insns: { readonly count: number; readonly source: string };
  readonly data: readonly DataTouch[];
  readonly tlbFlushPages: number;
  /** Cycles of a copy or clear loop (sim/sized.ts), priced by its throughput, not per instruction; 0 for most. */
  readonly loopCycles: number;
  /** A measured native latency replacing transition + insns (FootprintOverride.base); null: priced from insns. */
  readonly base: NativeBase | null;
  /** One line: where the entry as a whole comes from (and what overrode it). */
  readonly source: string;
}

export interface FootprintTable {
  readonly version: number;
  readonly file: string;
  readonly entries: ReadonlyMap<string, Footprint>;
}

/** Split and check an event key. Throws RangeError naming what is wrong. */
export function parseFootprintKey(key: string): { event: EventKind; detail: string | null } {
  const i = key.indexOf(':');
  const event = (i < 0 ? key : key.slice(0, i)) as EventKind;
  const detail = i < 0 ? null : key.slice(i + 1);
  if (!EVENT_KINDS.includes(event)) throw new RangeError(`unknown event "${event}" (expected one of ${EVENT_KINDS.join(', ')})`);
  if (event === 'syscall' || event === 'vm-exit') {
    const re = event === 'syscall' ? /^[a-z0-9_]+$/ : /^[A-Z0-9_]+$/;
    if (detail === null || !re.test(detail)) throw new RangeError(`${event} key needs a ${event === 'syscall' ? 'lower-case syscall name' : 'VMX exit reason in capitals'} after "${event}:", found "${key}"`);
  } else if (detail !== null) throw new RangeError(`event ${event} takes no ":${detail}"`);
  return { event, detail };
}

// --- the data ------------------------------------------------------------------------------

const t = (kind: DataKind, access: Access, lines: number, scope: Scope, source: string): DataTouch => ({ kind, access, lines, scope, source });
const m = (test: string, part = 0): MeasuredRef => ({ test, part });
const FJ = 'footprints.json';
const measuredText = (test: string, part = 0): TextSpec => ({ measured: [m(test, part)], modulePages: 0, source: `measured: ${FJ} ${test} parts[${part}].text_pages` });
const measuredInsns = (count: number, test: string, part = 0) => ({ count, source: `measured: ${FJ} ${test} parts[${part}].insns_per_call_est` });
const borrowedText = (test: string, part: number, why: string): TextSpec => ({ measured: [m(test, part)], modulePages: 0, source: `modelled: borrows measured ${test} parts[${part}] (${why})` });

const EST = 'line counts estimated';
/** Every syscall: entry_SYSCALL_64 pushes pt_regs, do_syscall_64 indexes sys_call_table, the exit path reads thread flags. */
const SYSCALL_COMMON: DataTouch[] = [
  t('kernel-stack', 'rw', 4, 'current', `modelled: entry_SYSCALL_64 pushes pt_regs (21 words, 3 lines) + call frames (arch/x86/entry/entry_64.S); ${EST}`),
  t('percpu', 'rw', 3, 'cpu', `modelled: cpu_current_top_of_stack, pcpu_hot.current_task, TSS sp (entry) and user_pcid_flush_mask (PTI exit); ${EST}`),
  t('task_struct', 'read', 2, 'current', `modelled: syscall_exit_to_user_mode() reads thread_info flags and syscall_work (kernel/entry/common.c); ${EST}`),
  t('kernel-global', 'read', 1, 'global', 'modelled: do_syscall_64 reads one sys_call_table entry (arch/x86/entry/common.c)'),
];
const IRQ_COMMON: DataTouch[] = [
  t('kernel-stack', 'rw', 4, 'current', `modelled: the entry code pushes pt_regs on the task stack (idtentry, arch/x86/entry/entry_64.S); ${EST}`),
  t('percpu', 'rw', 3, 'cpu', `modelled: hardirq stack (run_sysvec_on_irqstack_cond), irq_stat, pcpu_hot; ${EST}`),
];
const VMX_COMMON: DataTouch[] = [
  t('kvm_vcpu', 'rw', 6, 'current', `modelled: __vmx_vcpu_run saves 16 guest GPRs (2 lines) into vcpu_vmx, vmx_handle_exit reads exit reason/qualification and loaded_vmcs (arch/x86/kvm/vmx/vmx.c); ${EST}`),
  t('percpu', 'rw', 2, 'cpu', `modelled: current_vmcs, kvm's per-CPU l1tf_flush_l1d flag (arch/x86/kvm/vmx/vmx.c); ${EST}`),
  t('kernel-stack', 'rw', 3, 'current', `modelled: the vCPU thread's stack frames of vcpu_enter_guest → vmx_vcpu_run; ${EST}`),
  t('kvm', 'read', 1, 'current', `modelled: kvm->arch fields read on the exit path; ${EST}`),
];
const FILE_FD: DataTouch[] = [
  t('files', 'read', 1, 'current', 'modelled: fdget() reads the fdtable (fs/file.c)'),
  t('file', 'rw', 2, 'current', `modelled: struct file f_op/f_mode read, f_pos under f_pos_lock (fs/read_write.c); ${EST}`),
];
const syscall = (...d: DataTouch[]): DataTouch[] => [...SYSCALL_COMMON, ...d];
const irq = (...d: DataTouch[]): DataTouch[] => [...IRQ_COMMON, ...d];
const vmx = (...d: DataTouch[]): DataTouch[] => [...VMX_COMMON, ...d];

const KVM_TEXT = 'assumption: kvm.ko/kvm-intel.ko were not loaded in the measured kernel; module pages counted as vmx_vcpu_run/vmx_handle_exit/vcpu_enter_guest (4 pages) + the handler';
const CTXSW_SYMS = {
  names: ['__schedule', 'switch_mm_irqs_off', '__switch_to_asm', '__switch_to', 'finish_task_switch.isra.0', 'switch_fpu_return'],
  pages: ['0xffffffff81a52000', '0xffffffff8108a000', '0xffffffff81003000', '0xffffffff81031000', '0xffffffff810dc000', '0xffffffff810dd000', '0xffffffff81040000'],
};

const SPECS: readonly FootprintSpec[] = [
  // --- measured system calls (the 15 tests of footprints.json, split by kernel entry) ---
  { key: 'syscall:invalid', text: measuredText('invalid_syscall'), insns: measuredInsns(216, 'invalid_syscall'), data: syscall() },
  { key: 'syscall:getppid', text: measuredText('getppid'), insns: measuredInsns(329, 'getppid'),
    data: syscall(t('task_struct', 'read', 1, 'current', 'modelled: current->real_parent (kernel/sys.c getppid)'), t('kernel-global', 'read', 2, 'global', 'modelled: the parent task\'s tgid pid and pid namespace (task_tgid_vnr)')) },
  { key: 'syscall:read', text: measuredText('read_devzero_1B'), insns: measuredInsns(661, 'read_devzero_1B'),
    data: syscall(...FILE_FD, t('user-pages', 'write', 1, 'current', 'modelled: read_iter_zero → iov_iter_zero clears the 1-byte user buffer (drivers/char/mem.c)')) },
  { key: 'syscall:write', text: measuredText('pipe_write_read_1B', 0), insns: measuredInsns(1359, 'pipe_write_read_1B', 0),
    data: syscall(...FILE_FD, t('user-pages', 'read', 1, 'current', 'modelled: copy_page_from_iter of the 1-byte buffer (fs/pipe.c pipe_write)'),
      t('pipe', 'rw', 3, 'current', `modelled: pipe_inode_info mutex, head, bufs[] slot (fs/pipe.c); ${EST}`), t('pipe-page', 'write', 1, 'current', 'modelled: the byte lands in the pipe buffer page')) },
  { key: 'syscall:openat', text: measuredText('open_close_tmpfs', 0), insns: measuredInsns(4223, 'open_close_tmpfs', 0),
    data: syscall(t('user-pages', 'read', 1, 'current', 'modelled: getname() copies the path (fs/namei.c)'), t('files', 'rw', 2, 'current', 'modelled: alloc_fd + fd_install (fs/file.c)'),
      t('file', 'write', 4, 'current', `modelled: alloc_empty_file initialises a struct file (fs/file_table.c); ${EST}`), t('dentry', 'read', 4, 'global', `modelled: path walk over the components (fs/namei.c link_path_walk); ${EST}`),
      t('inode', 'read', 2, 'global', 'modelled: may_open/inode_permission'), t('cred', 'read', 2, 'current', 'modelled: current_cred() fsuid/fsgid/caps in permission checks')) },
  { key: 'syscall:close', text: measuredText('open_close_tmpfs', 1), insns: measuredInsns(1210, 'open_close_tmpfs', 1),
    data: syscall(t('files', 'rw', 1, 'current', 'modelled: close_fd (fs/file.c)'), t('file', 'rw', 2, 'current', 'modelled: fput → task_work_add (fs/file_table.c)'), t('task_struct', 'rw', 1, 'current', 'modelled: current->task_works')) },
  { key: 'syscall:newfstatat', text: measuredText('stat_tmpfs'), insns: measuredInsns(3250, 'stat_tmpfs'),
    data: syscall(t('user-pages', 'rw', 4, 'current', 'modelled: getname() reads the path, cp_new_stat writes 144 bytes (3 lines) (fs/stat.c)'), t('dentry', 'read', 4, 'global', `modelled: path walk; ${EST}`),
      t('inode', 'read', 2, 'global', 'modelled: generic_fillattr reads the inode'), t('cred', 'read', 1, 'current', 'modelled: permission checks')) },
  { key: 'syscall:mmap', text: measuredText('mmap_touch_munmap_4K', 0), insns: measuredInsns(4960.3, 'mmap_touch_munmap_4K', 0),
    data: syscall(t('mm_struct', 'rw', 2, 'current', 'modelled: mmap_lock, map_count, total_vm (mm/mmap.c)'), t('vma', 'rw', 8, 'current', `modelled: new vm_area_struct (200 B) + maple tree nodes walked and written (mm/mmap.c mmap_region); ${EST}`)) },
  { key: 'syscall:munmap', text: measuredText('mmap_touch_munmap_4K', 2), insns: measuredInsns(8697.1, 'mmap_touch_munmap_4K', 2), tlbFlushPages: 1,
    data: syscall(t('mm_struct', 'rw', 2, 'current', 'modelled: mmap_lock, counters'), t('vma', 'rw', 6, 'current', `modelled: maple tree removal (mm/mmap.c do_vmi_munmap); ${EST}`),
      t('page-table', 'rw', 2, 'current', 'modelled: zap_pte_range reads and clears the PTE (mm/memory.c)'), t('kernel-global', 'rw', 2, 'global', 'modelled: struct page refcount/LRU of the freed page'),
      t('percpu', 'rw', 2, 'cpu', 'modelled: mmu_gather batch, per-CPU page lists')) },
  { key: 'syscall:futex', text: measuredText('futex_wake_nowaiters'), insns: measuredInsns(489, 'futex_wake_nowaiters'),
    data: syscall(t('mm_struct', 'read', 1, 'current', 'modelled: get_futex_key for a private futex keys on current->mm (kernel/futex/core.c)'), t('kernel-global', 'read', 1, 'global', 'modelled: futex_hash bucket, found empty')) },
  { key: 'syscall:sendto', text: measuredText('unix_send_recv_64B', 0), insns: measuredInsns(1923, 'unix_send_recv_64B', 0),
    data: syscall(...FILE_FD, t('user-pages', 'read', 1, 'current', 'modelled: 64 bytes copied from the user buffer'), t('sock', 'rw', 8, 'current', `modelled: sender and peer unix_sock: state, peer, receive queue, sk_data_ready (net/unix/af_unix.c); ${EST}`),
      t('sk_buff', 'write', 4, 'current', 'modelled: alloc_skb initialises a 232-byte sk_buff (4 lines)'), t('skb-data', 'write', 6, 'current', 'modelled: 64 data bytes (1 line) + skb_shared_info (320 B, 5 lines)'),
      t('cred', 'read', 1, 'current', 'modelled: scm_send takes the sender\'s pid/cred references')) },
  { key: 'syscall:recvfrom', text: measuredText('unix_send_recv_64B', 1), insns: measuredInsns(1707, 'unix_send_recv_64B', 1),
    data: syscall(...FILE_FD, t('sock', 'rw', 4, 'current', `modelled: receive queue dequeue (net/unix/af_unix.c unix_stream_read_generic); ${EST}`), t('sk_buff', 'rw', 4, 'current', 'modelled: skb dequeued and freed'),
      t('skb-data', 'read', 2, 'current', 'modelled: 64 data bytes + shared info read'), t('user-pages', 'write', 1, 'current', 'modelled: 64 bytes copied to the user buffer')) },
  { key: 'syscall:epoll_wait', text: measuredText('epoll_wait_timeout0'), insns: measuredInsns(398, 'epoll_wait_timeout0'),
    data: syscall(...FILE_FD, t('kernel-global', 'rw', 2, 'global', 'modelled: eventpoll lock and empty rdllist (fs/eventpoll.c)')) },
  { key: 'syscall:clock_gettime', text: measuredText('clock_gettime_syscall'), insns: measuredInsns(439, 'clock_gettime_syscall'),
    data: syscall(t('kernel-global', 'read', 2, 'global', 'modelled: tk_core timekeeper (kernel/time/timekeeping.c)'), t('user-pages', 'write', 1, 'current', 'modelled: struct timespec64 put_timespec64')) },
  { key: 'syscall:sched_yield', text: measuredText('sched_yield'), insns: measuredInsns(800, 'sched_yield'),
    data: syscall(t('percpu', 'rw', 4, 'cpu', `modelled: runqueue lock, cfs_rq (kernel/sched/core.c do_sched_yield); ${EST}`), t('task_struct', 'rw', 2, 'current', 'modelled: se.vruntime, sum_exec_runtime (update_curr)')) },
  { key: 'syscall:lseek', text: measuredText('getdents64_tmpfs_dir', 0), insns: measuredInsns(506, 'getdents64_tmpfs_dir', 0), data: syscall(...FILE_FD) },
  { key: 'syscall:getdents64', text: measuredText('getdents64_tmpfs_dir', 1), insns: measuredInsns(3719, 'getdents64_tmpfs_dir', 1),
    data: syscall(...FILE_FD, t('dentry', 'read', 8, 'global', `modelled: dcache_readdir walks the children (fs/libfs.c); ${EST}`), t('inode', 'read', 2, 'global', 'modelled: d_inode of each child'), t('user-pages', 'write', 2, 'current', 'modelled: linux_dirent64 records filldir64')) },

  // --- common system calls not measured: text borrowed from the nearest measured path ---
  { key: 'syscall:getpid', text: borrowedText('getppid', 0, 'same entry path and a one-line handler, kernel/sys.c'), insns: { count: 329, source: 'modelled: as measured getppid' },
    data: syscall(t('task_struct', 'read', 1, 'current', 'modelled: task_tgid_vnr(current)')) },
  { key: 'syscall:gettid', text: borrowedText('getppid', 0, 'same entry path and a one-line handler, kernel/sys.c'), insns: { count: 329, source: 'modelled: as measured getppid' },
    data: syscall(t('task_struct', 'read', 1, 'current', 'modelled: task_pid_vnr(current)')) },
  { key: 'syscall:pread64', text: borrowedText('read_devzero_1B', 0, 'vfs_read path; the regular-file filemap_read part is not measured (assumption)'), insns: { count: 1500, source: 'assumption: measured read 661 + ~840 for filemap_read of one cached page' },
    data: syscall(...FILE_FD, t('page-cache', 'read', 64, 'current', 'modelled: filemap_read copies a 4 KiB cached page (mm/filemap.c)'), t('user-pages', 'write', 64, 'current', 'modelled: copy_page_to_iter into the 4 KiB user buffer')) },
  { key: 'syscall:pwrite64', text: borrowedText('pipe_write_read_1B', 0, 'vfs_write path; generic_perform_write is not measured (assumption)'), insns: { count: 2000, source: 'assumption: measured pipe write 1359 + the page-cache write path' },
    data: syscall(...FILE_FD, t('user-pages', 'read', 64, 'current', 'modelled: 4 KiB copied from the user buffer'), t('page-cache', 'write', 64, 'current', 'modelled: generic_perform_write into a cached page (mm/filemap.c)')) },
  { key: 'syscall:sendmsg', text: borrowedText('unix_send_recv_64B', 0, 'sendto and sendmsg share ____sys_sendmsg'), insns: { count: 1923, source: 'modelled: as measured sendto' },
    data: syscall(...FILE_FD, t('user-pages', 'read', 2, 'current', 'modelled: msghdr + 64 bytes'), t('sock', 'rw', 8, 'current', 'modelled: as sendto'), t('sk_buff', 'write', 4, 'current', 'modelled: as sendto'), t('skb-data', 'write', 6, 'current', 'modelled: as sendto')) },
  { key: 'syscall:recvmsg', text: borrowedText('unix_send_recv_64B', 1, 'recvfrom and recvmsg share ____sys_recvmsg'), insns: { count: 1707, source: 'modelled: as measured recvfrom' },
    data: syscall(...FILE_FD, t('sock', 'rw', 4, 'current', 'modelled: as recvfrom'), t('sk_buff', 'rw', 4, 'current', 'modelled: as recvfrom'), t('skb-data', 'read', 2, 'current', 'modelled: as recvfrom'), t('user-pages', 'write', 2, 'current', 'modelled: msghdr + 64 bytes')) },
  { key: 'syscall:poll', text: borrowedText('epoll_wait_timeout0', 0, 'a non-blocking readiness check; do_sys_poll is not measured (assumption)'), insns: { count: 600, source: 'assumption: measured epoll_wait 398 + per-fd ->poll calls' },
    data: syscall(...FILE_FD, t('user-pages', 'rw', 1, 'current', 'modelled: the pollfd array copied in and out (fs/select.c)')) },
  { key: 'syscall:nanosleep', text: borrowedText('sched_yield', 0, 'enters the scheduler; the hrtimer sleep itself is not measured (assumption)'), insns: { count: 1200, source: 'assumption: measured sched_yield 800 + hrtimer setup' },
    data: syscall(t('percpu', 'rw', 6, 'cpu', 'modelled: runqueue + hrtimer_cpu_base (kernel/time/hrtimer.c)'), t('task_struct', 'rw', 2, 'current', 'modelled: task state, sleeper\'s hrtimer on its stack'), t('user-pages', 'read', 1, 'current', 'modelled: the requested timespec')) },
  { key: 'syscall:brk', text: borrowedText('mmap_touch_munmap_4K', 0, 'brk grows the heap VMA through the same mm/mmap.c paths'), insns: { count: 3000, source: 'assumption: below measured mmap (4960): brk usually extends an existing VMA' },
    data: syscall(t('mm_struct', 'rw', 2, 'current', 'modelled: mm->brk, mmap_lock (mm/mmap.c)'), t('vma', 'rw', 4, 'current', 'modelled: the heap VMA extended')) },
  { key: 'syscall:mprotect', text: borrowedText('mmap_touch_munmap_4K', 2, 'changes PTEs and flushes like munmap\'s zap path (mm/mprotect.c)'), insns: { count: 4000, source: 'assumption: below measured munmap (8697)' }, tlbFlushPages: 1,
    data: syscall(t('mm_struct', 'rw', 2, 'current', 'modelled: mmap_lock'), t('vma', 'rw', 4, 'current', 'modelled: VMA split or flags changed'), t('page-table', 'rw', 2, 'current', 'modelled: change_pte_range')) },

  // --- exceptions and interrupts ---
  { key: 'page-fault', text: measuredText('user_page_fault_anon'), insns: measuredInsns(2608.5, 'user_page_fault_anon'),
    data: irq(t('task_struct', 'read', 1, 'current', 'modelled: current->mm'), t('mm_struct', 'rw', 2, 'current', 'modelled: mmap_lock (read), rss counters (mm/memory.c)'), t('vma', 'read', 2, 'current', 'modelled: lock_mm_and_find_vma / find_vma'),
      t('page-table', 'rw', 2, 'current', 'modelled: PMD read, PTE written (set_pte_at)'), t('fresh-page', 'write', 64, 'current', 'modelled: do_anonymous_page → alloc_zeroed_user_highpage_movable clears the newly allocated 4 KiB page through the direct map (64 lines)'),
      t('kernel-global', 'rw', 3, 'global', 'modelled: struct page, LRU, memcg charge'), t('percpu', 'rw', 2, 'cpu', 'modelled: per-CPU page lists (mm/page_alloc.c rmqueue_pcplist)')) },
  { key: 'timer-interrupt', text: measuredText('user_spin_timer_irq'), insns: measuredInsns(2580.9, 'user_spin_timer_irq'),
    data: irq(t('percpu', 'rw', 6, 'cpu', `modelled: hrtimer_cpu_base, tick_sched, runqueue (kernel/time/tick-sched.c, kernel/sched/core.c scheduler_tick); ${EST}`),
      t('kernel-global', 'rw', 3, 'global', 'modelled: jiffies_64 and tk_core timekeeper on the tick CPU (kernel/time/timekeeping.c)'), t('task_struct', 'rw', 2, 'current', 'modelled: account_user_time and update_curr')) },
  { key: 'ipi', insns: { count: 600, source: 'assumption: call-function IPI with a short callback' },
    text: { measured: [], modulePages: 0, symbols: { names: ['asm_sysvec_call_function_single', 'sysvec_call_function_single', '__flush_smp_call_function_queue', 'generic_smp_call_function_single_interrupt'], pages: ['0xffffffff81c00000', '0xffffffff81a47000', '0xffffffff81170000'] },
      source: 'modelled: pages holding the call-function-single IPI path (kallsyms of captures/la48-pti-nokaslr)' },
    data: irq(t('percpu', 'rw', 2, 'cpu', 'modelled: call_single_queue and csd lock (kernel/smp.c)')) },
  { key: 'nmi', insns: { count: 1500, source: 'assumption: a perf overflow NMI: nmi_handle walks the handler list, the PMU handler reads and rearms counters' },
    text: { measured: [], modulePages: 0, symbols: { names: ['asm_exc_nmi', 'exc_nmi', 'default_do_nmi', 'nmi_handle', 'perf_event_nmi_handler'], pages: ['0xffffffff81c01000', '0xffffffff81a45000', '0xffffffff81036000', '0xffffffff81009000'] },
      source: 'modelled: pages holding the NMI entry and perf NMI handler (kallsyms of captures/la48-pti-nokaslr)' },
    data: [t('percpu', 'rw', 4, 'cpu', 'modelled: the NMI IST stack in cpu_entry_area, nmi_state, cpu_hw_events (arch/x86/kernel/nmi.c)'), t('kernel-global', 'read', 2, 'global', 'modelled: nmi_desc handler list, perf event')] },

  // --- scheduling ---
  { key: 'context-switch', insns: { count: 1300, source: 'modelled: measured sched_yield (800, __schedule without a switch) + assumption 500 for switch_mm_irqs_off, __switch_to, finish_task_switch' },
    text: { measured: [m('sched_yield')], modulePages: 0, symbols: CTXSW_SYMS, source: 'modelled: measured sched_yield parts[0] + pages holding the switch proper (kallsyms of captures/la48-pti-nokaslr)' },
    data: [t('task_struct', 'rw', 17, 'previous', 'modelled: prev->thread.sp/fsbase, state, se (4 lines) + XSAVE of its FPU state into thread.fpu (832 B, 13 lines) (arch/x86/kernel/process_64.c, fpu/core.c)'),
      t('task_struct', 'rw', 17, 'current', 'modelled: next\'s thread state (4 lines) + XRSTOR of its FPU state on return to user (switch_fpu_return)'),
      t('kernel-stack', 'rw', 2, 'previous', 'modelled: __switch_to_asm pushes callee-saved registers on prev\'s stack'), t('kernel-stack', 'rw', 2, 'current', 'modelled: and pops them from next\'s'),
      t('mm_struct', 'read', 2, 'current', 'modelled: switch_mm_irqs_off reads next->mm pgd, context.ctx_id, tlb_gen (arch/x86/mm/tlb.c)'), t('mm_struct', 'rw', 1, 'previous', 'modelled: cpumask bit of prev->mm cleared'),
      t('percpu', 'rw', 4, 'cpu', 'modelled: runqueue, cpu_tlbstate (loaded_mm, asid), pcpu_hot.current_task')] },
  { key: 'idle', insns: { count: 300, source: 'assumption: do_idle loop entry, tick_nohz_idle_enter, default_idle → HLT' },
    text: { measured: [], modulePages: 0, symbols: { names: ['do_idle', 'default_idle_call', 'default_idle', 'arch_cpu_idle', 'schedule_idle'], pages: ['0xffffffff810fb000', '0xffffffff81a59000', '0xffffffff8103f000', '0xffffffff81a53000'] },
      source: 'modelled: pages holding the idle loop (kallsyms of captures/la48-pti-nokaslr)' },
    data: [t('percpu', 'rw', 3, 'cpu', 'modelled: idle task, runqueue, tick_sched (kernel/sched/idle.c)')] },

  // --- VM exits (VMX exit reasons, SDM Vol. 3C Appendix C); kernel text borrowed, module text assumed ---
  { key: 'vm-exit:CPUID', text: { measured: [], modulePages: 5, source: `${KVM_TEXT} + kvm_emulate_cpuid (1)` }, insns: { count: 0, source: 'definition: the CPUID exit is the round trip costs.vmExitEntry measures' },
    data: vmx(t('kvm_vcpu', 'read', 2, 'current', 'modelled: kvm_find_cpuid_entry scans vcpu->arch.cpuid_entries (arch/x86/kvm/cpuid.c)')) },
  { key: 'vm-exit:MSR_WRITE', text: { measured: [], modulePages: 6, source: `${KVM_TEXT} + kvm_emulate_wrmsr, kvm_set_msr_common (2)` }, insns: { count: 300, source: 'assumption: a common MSR write (x2APIC ICR, TSC deadline) handled in KVM' },
    data: vmx(t('kvm_vcpu', 'rw', 2, 'current', 'modelled: the MSR\'s shadow state in vcpu->arch / the vAPIC')) },
  { key: 'vm-exit:HLT', text: { measured: [m('sched_yield')], modulePages: 6, symbols: CTXSW_SYMS, source: `modelled: kvm_vcpu_halt → kvm_vcpu_block → schedule(): borrows measured sched_yield + the switch proper (kallsyms); ${KVM_TEXT} + halt/block (2)` },
    insns: { count: 1600, source: 'assumption: measured sched_yield 800 + KVM halt-polling check and block (~800)' },
    data: vmx(t('kvm_vcpu', 'rw', 2, 'current', 'modelled: vcpu->arch.mp_state, halt-poll state (virt/kvm/kvm_main.c)'), t('percpu', 'rw', 4, 'cpu', 'modelled: runqueue dequeue of the vCPU thread'), t('task_struct', 'rw', 2, 'current', 'modelled: the vCPU thread\'s state')) },
  { key: 'vm-exit:EXTERNAL_INTERRUPT', text: { measured: [m('user_spin_timer_irq')], modulePages: 5, source: `modelled: handle_external_interrupt_irqoff calls the host IDT handler: borrows measured user_spin_timer_irq (a timer tick); ${KVM_TEXT} + the irqoff trampoline (1)` },
    insns: { count: 2581, source: 'modelled: as measured user_spin_timer_irq (the host handles the same vector)' },
    data: vmx(t('percpu', 'rw', 6, 'cpu', 'modelled: as timer-interrupt'), t('kernel-global', 'rw', 3, 'global', 'modelled: as timer-interrupt')) },
  { key: 'vm-exit:EPT_VIOLATION', text: { measured: [m('user_page_fault_anon')], modulePages: 10, source: `modelled: first touch of a guest page: kvm_mmu_page_fault → kvm_faultin_pfn → hva_to_pfn faults in the VMM's anonymous memory: borrows measured user_page_fault_anon; ${KVM_TEXT} + the TDP MMU (6)` },
    insns: { count: 4100, source: 'assumption: measured anonymous fault 2609 + ~1500 for the TDP MMU fault path' },
    data: vmx(t('ept', 'read', 3, 'current', 'modelled: kvm_tdp_mmu_map walks the EPT (arch/x86/kvm/mmu/tdp_mmu.c)'), t('ept', 'write', 1, 'current', 'modelled: the new leaf SPTE'),
      t('kvm', 'read', 2, 'current', 'modelled: memslot lookup (virt/kvm/kvm_main.c __gfn_to_memslot)'), t('mm_struct', 'read', 1, 'current', 'modelled: the VMM\'s mm in get_user_pages'),
      t('page-table', 'rw', 2, 'current', 'modelled: the VMM\'s PTE for the backing page'), t('fresh-page', 'write', 64, 'current', 'modelled: the newly allocated backing page is zeroed (clear_page) before the guest sees it'),
      t('kernel-global', 'rw', 3, 'global', 'modelled: struct page, LRU, memcg charge')) },
  { key: 'vm-exit:EPT_MISCONFIG', text: { measured: [], modulePages: 14, source: `${KVM_TEXT} + MMIO emulation: handle_ept_misconfig → x86_emulate_instruction (10)` },
    insns: { count: 3000, source: 'assumption: instruction fetch, decode and emulation of one MMIO access (arch/x86/kvm/emulate.c)' },
    data: vmx(t('guest-memory', 'read', 5, 'current', 'modelled: the emulator walks the guest page tables (4 lines) and fetches the instruction (1 line) from guest memory'),
      t('kvm_vcpu', 'rw', 6, 'current', 'modelled: x86_emulate_ctxt (x86_emulator cache, 2672 B) decode state'), t('kvm', 'read', 2, 'current', 'modelled: kvm->buses MMIO device lookup'), t('kvm-run', 'write', 1, 'current', 'modelled: kvm_run->mmio when the access goes to the VMM')) },
  { key: 'vm-exit:IO_INSTRUCTION', text: { measured: [m('invalid_syscall')], modulePages: 6, symbols: { names: ['__x64_sys_ioctl'], pages: ['0xffffffff81381000'] }, source: `modelled: the port access exits to the VMM: KVM_RUN returns and is re-entered: borrows measured invalid_syscall (syscall exit + entry) + __x64_sys_ioctl (kallsyms); ${KVM_TEXT} + handle_io/complete_pio (2)` },
    insns: { count: 900, source: 'assumption: measured syscall entry/exit 216 + ioctl dispatch and KVM_RUN re-entry (~700); the VMM\'s own work is not modelled' },
    data: vmx(...SYSCALL_COMMON, t('kvm-run', 'write', 2, 'current', 'modelled: kvm_run->io and the data at io.data_offset (include/uapi/linux/kvm.h)'), t('kvm_vcpu', 'rw', 2, 'current', 'modelled: vcpu->arch.pio state')) },
];

const SPEC_BY_KEY: ReadonlyMap<string, FootprintSpec> = new Map(SPECS.map((s) => [s.key, s]));

/** The measured test parts an entry's text comes from (empty for modelled text). */
export function measuredRefs(key: string): readonly MeasuredRef[] {
  return SPEC_BY_KEY.get(key)?.text.measured ?? [];
}

/** The event keys of the built-in table (no fixture needed). */
export function footprintKeys(): string[] {
  return [...SPEC_BY_KEY.keys()];
}

// --- overrides and resolution ----------------------------------------------------------------

export interface FootprintOverride {
  /** Replaces the text: pages of measured tests/parts, explicit page VAs, module page count. */
  text?: { measured?: readonly MeasuredRef[]; pages?: readonly bigint[]; modulePages?: number };
  insns?: number;
  /** Replaces the whole data list. */
  data?: readonly Omit<DataTouch, 'source'>[];
  tlbFlushPages?: number;
  /** The source's measured native latency of the event (replaces transition + insns: sim/event-base.ts withNativeBase). */
  base?: NativeBase;
  /** Where the override comes from (e.g. "scenario.yaml:40"); becomes the source of what it replaces. */
  source: string;
}

function measuredPages(fp: Footprints, refs: readonly MeasuredRef[], key: string): bigint[] {
  const out: bigint[] = [];
  const seen = new Set<bigint>();
  for (const r of refs) {
    const test = fp.tests.find((x) => x.name === r.test);
    if (test === undefined) throw new RangeError(`footprint ${key}: test "${r.test}" is not in ${fp.file}`);
    const part = test.parts[r.part];
    if (part === undefined) throw new RangeError(`footprint ${key}: ${r.test} has no parts[${r.part}] in ${fp.file}`);
    for (const p of part.textPages) if (!seen.has(p)) { seen.add(p); out.push(p); }
  }
  return out;
}

function resolve(fp: Footprints, s: FootprintSpec): Footprint {
  const { event, detail } = parseFootprintKey(s.key);
  const pages = measuredPages(fp, s.text.measured, s.key);
  for (const h of s.text.symbols?.pages ?? []) {
    const p = BigInt(h);
    if (!pages.includes(p)) pages.push(p);
  }
  return {
    key: s.key, event, detail, transition: TRANSITION_OF[event],
    text: { pages, modulePages: s.text.modulePages, source: s.text.source },
    insns: s.insns, data: s.data, tlbFlushPages: s.tlbFlushPages ?? 0, loopCycles: 0, base: null,
    source: s.text.source.startsWith('measured') ? `text and insns measured (${FJ}); data modelled` : 'modelled (see text, insns and data sources)',
  };
}

function applyOverride(fp: Footprints, key: string, base: Footprint | undefined, o: FootprintOverride): Footprint {
  const { event, detail } = parseFootprintKey(key);
  if (base === undefined && (o.text === undefined || o.insns === undefined || o.data === undefined)) {
    throw new RangeError(`footprint ${key} is not in the table: a new entry needs text, insns and data`);
  }
  const src = `override: ${o.source}`;
  let text = base?.text ?? { pages: [], modulePages: 0, source: src };
  if (o.text !== undefined) {
    const pages = measuredPages(fp, o.text.measured ?? [], key);
    for (const p of o.text.pages ?? []) {
      if (p % 4096n !== 0n) throw new RangeError(`footprint ${key}: page 0x${p.toString(16)} is not 4 KiB aligned`);
      if (!pages.includes(p)) pages.push(p);
    }
    text = { pages, modulePages: o.text.modulePages ?? 0, source: src };
  }
  return {
    key, event, detail, transition: TRANSITION_OF[event], text,
    insns: o.insns !== undefined ? { count: o.insns, source: src } : base!.insns,
    data: o.data !== undefined ? o.data.map((d) => ({ ...d, source: src })) : base!.data,
    tlbFlushPages: o.tlbFlushPages ?? base?.tlbFlushPages ?? 0,
    loopCycles: base?.loopCycles ?? 0,
    base: o.base ?? base?.base ?? null,
    source: base === undefined ? src : `${base.source}; ${src} (${Object.keys(o).filter((k) => k !== 'source').join(', ')})`,
  };
}

const cache = new Map<string, Footprints>();

/**
 * The table with its measured pages read from `file` (default: the fixture) and `overrides`
 * applied by key. The file is read once per process.
 */
export function loadFootprintTable(opts: { file?: string; overrides?: Readonly<Record<string, FootprintOverride>> } = {}): FootprintTable {
  const file = opts.file ?? DEFAULT_FOOTPRINTS_FILE;
  let fp = cache.get(file);
  if (fp === undefined) {
    fp = loadFootprints(file);
    cache.set(file, fp);
  }
  const entries = new Map<string, Footprint>();
  for (const s of SPECS) entries.set(s.key, resolve(fp, s));
  for (const [key, o] of Object.entries(opts.overrides ?? {})) entries.set(key, applyOverride(fp, key, entries.get(key), o));
  return { version: FOOTPRINT_TABLE_VERSION, file, entries };
}

/** A page VA as an offset from the kernel image start, for rebasing under KASLR (not on a hot path). */
export function textPageOffset(page: bigint, imageStart = 0xffffffff81000000n): number {
  return Number(page - imageStart);
}
