/**
 * System Call Isolation (src/asi/sci.ts) on the kernel model built from the la48 capture.
 * Truth used:
 *  - the capture itself (test/fixtures/captures/la48-pti-nokaslr): its KPTI user root's leaves
 *    (user.json.gz), its kernel root's leaves for do_syscall_64 and the per-CPU page
 *    (kernel.json.gz), and its kallsyms for every symbol address;
 *  - the RFC's rules written out below as a table (patch 2/7, sci_pagetable_init() /
 *    sci_verify_code_access() / sci_verify_and_map(); 4/7 sci_syscall_enter/exit): which ranges
 *    are cloned, offset 0 allowed, "the next page of already mapped one" allowed, anything else
 *    killed, SCI_MAX_PTES 256, SCI_MAX_BACKTRACE 64, CR3 = pgd | asid | 1 << 10;
 *  - the SDM (4.10.4.1): a CR3 write without bit 63 flushes the new PCID's non-global entries.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadKallsyms } from '../../src/formats/kallsyms.ts';
import { loadPtImage } from '../../src/x86/ptimage.ts';
import { modelFromCapture } from '../../src/linux/capture.ts';
import { SCI, SCI_MAX_BACKTRACE, SCI_MAX_PTES } from '../../src/asi/sci.ts';
import { sciTaskOnModel } from '../../src/asi/sci-report.ts';
import { CR3_NOFLUSH_HI, PTE_PS } from '../../src/x86/bits.ts';
import type { PhysMemory } from '../../src/phys/memory.ts';
import { forEachLeaf, hex16 } from '../../src/x86/leaves.ts';
import { Translation, vaHalves, walkFrom } from '../../src/x86/walk.ts';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'captures', 'la48-pti-nokaslr');
const ks = loadKallsyms(join(DIR, 'kallsyms.txt.gz'));
const { model } = modelFromCapture(DIR);
const world = sciTaskOnModel(model, ks);
const capUser = loadPtImage(join(DIR, 'user.json.gz'), 40);
const capKernel = loadPtImage(join(DIR, 'kernel.json.gz'), 40);
const sym = (n: string) => ks.addressOf(n)!;
const page = (v: bigint) => v & ~0xfffn;
const hex = (v: bigint) => `0x${v.toString(16)}`;

const CEA = 0xfffffe0000000000n; // CPU_ENTRY_AREA_BASE (mm.rst)
const ESPFIX = 0xffffff0000000000n; // ESPFIX_BASE_ADDR
const P4D = 1n << 39n;

type Leaf = { va: bigint; shift: number; pa: number; flags: string };
/** Every present leaf of one half, by the leaf enumerator. */
function leaves(mem: PhysMemory, root: number, half: 'user' | 'kernel'): Leaf[] {
  const out: Leaf[] = [];
  forEachLeaf(mem, root, 4, (lo, hi, shift, pa, elo, ehi) => {
    if ((hi >= 0x80000000) !== (half === 'kernel')) return;
    out.push({ va: BigInt(`0x${hex16(lo, hi)}`), shift, pa, flags: `${((elo & 0xfff) >>> 0).toString(16)}:${ehi >>> 31}` });
  });
  return out;
}
const key = (l: Leaf) => `${hex(l.va)}:${l.shift}:${l.pa.toString(16)}:${l.flags}`;

/** The capture's kernel-root leaf for `va`, as the 4 KiB PTE sci_clone_page() makes of it (PS dropped). */
function kernelPte(va: bigint): Leaf {
  const t = new Translation();
  const { lo, hi } = vaHalves(va);
  capKernel.cpu.load({ cpl: 0 });
  if (!walkFrom(capKernel.mem, capKernel.cpu, capKernel.roots.kernel, lo, hi, 0, t)) throw new Error(`${hex(va)} unmapped in the capture`);
  return { va: page(va), shift: 12, pa: t.pa - (t.pa % 4096), flags: `${((t.leafLo & 0xfff & ~PTE_PS) >>> 0).toString(16)}:${t.leafHi >>> 31}` };
}

describe('the SCI page table of a task (sci_pagetable_init)', () => {
  const tables = world.tables();
  const sci = leaves(model.mem, tables.root, 'kernel');
  const captured = leaves(capUser.mem, capUser.roots.user, 'kernel');
  const inCea = (l: Leaf) => l.va >= CEA && l.va < CEA + P4D;
  const entryPmd = (l: Leaf) => l.va <= sym('__entry_text_start') && sym('__entry_text_start') < l.va + (1n << BigInt(l.shift));
  const extras: Leaf[] = [
    ...world.stack.pfns.map((pfn, i) => ({ va: world.stack.va + BigInt(i * 4096), shift: 12, pa: pfn * 4096, flags: '63:1' })), // vmalloc PAGE_KERNEL without G (pti)
    kernelPte(0xffff888000000000n + 0x1f400000n), // per-CPU area of CPU 0 (the capture's TSS page - cpu_tss_rw)
    kernelPte(sym('do_syscall_64')),
  ];

  it('holds exactly the user root\'s cpu_entry_area and entry text, the stack, the per-CPU page and do_syscall_64', () => {
    const cloned = captured.filter((l) => inCea(l) || entryPmd(l));
    expect(cloned.filter(entryPmd)).toHaveLength(1);
    expect(cloned.filter(inCea).length).toBeGreaterThan(10);
    expect(sci.map(key).sort()).toEqual([...cloned, ...extras].map(key).sort());
  });

  it('maps do_syscall_64 with the kernel\'s own PTE bits (4 KiB slice of its 2 MiB leaf)', () => {
    const d = sci.find((l) => l.va === 0xffffffff81a43000n)!;
    expect(d.pa).toBe(0x1a43000);
    expect(d.flags).toBe('61:0'); // P A D of the kernel's 0x...e1 PMD, PS gone; executable
  });

  it('leaves out what the RFC does not clone: ESPFIX and the cpu_tss_rw page', () => {
    const have = new Set(sci.map(key));
    const missing = captured.filter((l) => !have.has(key(l)));
    expect(missing.length).toBe(65537);
    expect(missing.filter((l) => l.va >= ESPFIX && l.va < ESPFIX + P4D)).toHaveLength(65536);
    expect(missing.filter((l) => l.va >= 0xffff888000000000n && l.va < 0xffffc88000000000n).map((l) => hex(l.va))).toEqual(['0xffff88801f406000']);
  });

  it('shares the process\'s user half and nothing of the kernel half\'s tables', () => {
    expect(leaves(model.mem, tables.root, 'user').map(key)).toEqual(leaves(model.mem, world.process.userPgd, 'user').map(key));
    const tablesOf = (root: number) => {
      const s = new Set<number>();
      const walk = (t: number, level: number) => {
        for (let i = level === 4 ? 256 : 0; i < 512; i++) {
          const e = model.mem.read64Big(t + i * 8);
          if ((e & 1n) === 0n || level === 1 || (level <= 3 && (e & 0x80n))) continue;
          const next = Number(e & 0x000ffffffffff000n);
          s.add(next);
          walk(next, level - 1);
        }
      };
      walk(root, 4);
      return s;
    };
    const mine = tablesOf(tables.root);
    const theirs = new Set([...tablesOf(world.process.userPgd), ...tablesOf(world.process.pgd)]);
    expect([...mine].filter((t) => theirs.has(t))).toEqual([]); // "all the hierarchy for SCI page tables is cloned"
  });

  it('with clone "kpti-user" holds every kernel-half leaf of the user root plus the same extras', () => {
    const full = world.tables({ clone: 'kpti-user' });
    expect(leaves(model.mem, full.root, 'kernel').map(key).sort()).toEqual([...captured, ...extras].map(key).sort());
  });

  it('switches CR3 to the SCI root with the kernel PCID and bit 10 (asid | 1 << X86_CR3_SCI_PCID_BIT)', () => {
    expect(tables.cr3.sci).toBe(tables.root + 1 + 1024);
    expect(tables.cr3.kernel).toBe(world.process.pgd + 1);
  });
});

describe('verified faults: a legitimate call chain runs, a ROP chain is killed', () => {
  it('admits entries at symbol starts and the page after an entered function', () => {
    const s = world.tables().syscall();
    expect(s.fetch(sym('entry_SYSCALL_64'))).toBe(SCI.HIT); // entry text: cloned PMD
    expect(s.fetch(sym('do_syscall_64') + 0x20n)).toBe(SCI.HIT); // pre-mapped page
    for (const f of ['x64_sys_call', '__x64_sys_getppid', '__task_pid_nr_ns', '__rcu_read_lock', '__rcu_read_unlock']) {
      expect(s.fetch(sym(f)), f).toBe(SCI.MAPPED);
      expect(s.fetch(sym(f) + 4n), f).toBe(SCI.HIT); // then runs on in its page
    }
    // x64_sys_call (4768 bytes from 0x...3320) runs on into the next page: allowed, "next page of already mapped one".
    expect(page(sym('x64_sys_call') + 4000n)).toBe(page(sym('x64_sys_call')) + 4096n);
    expect(s.fetch(sym('x64_sys_call') + 4000n)).toBe(SCI.MAPPED);
    expect(s.killed).toBe(false);
    expect(s.codeFaults).toBe(6);
    expect(s.ptesUsed).toBe(6);
    expect(s.backtraceSize).toBe(6); // do_syscall_64 + five entered functions
  });

  it('refuses the third page of a long function (copy_process): only page(rip) + 1 is allowed', () => {
    const s = world.tables().syscall();
    const cp = sym('copy_process'); // 0x...9ee40 .. 0x...a0920
    expect(s.fetch(cp)).toBe(SCI.MAPPED);
    expect(s.fetch(page(cp) + 0x1000n + 0x10n)).toBe(SCI.MAPPED);
    expect(s.fetch(page(cp) + 0x2000n + 0x10n)).toBe(SCI.KILLED);
    expect(s.killReason).toMatch(/copy_process\+0x1[0-9a-f]{3}: access in the middle of a function/);
  });

  it('kills at the first gadget of a ROP chain inside kernel functions', () => {
    const s = world.tables().syscall();
    expect(s.fetch(sym('__x64_sys_getppid'))).toBe(SCI.MAPPED);
    const chain = [sym('commit_creds') + 0x1an, sym('prepare_kernel_cred') + 0x33n, sym('native_write_cr4') + 0x8n];
    expect(s.fetch(chain[0])).toBe(SCI.KILLED);
    expect(s.killReason).toMatch(/^fetch at 0xffffffff810d3bda: commit_creds\+0x1a: access in the middle of a function/);
    for (const g of chain.slice(1)) expect(s.fetch(g)).toBe(SCI.KILLED); // the task is dead: nothing runs
    const t = new Translation();
    const { lo, hi } = vaHalves(chain[0]);
    expect(walkFrom(model.mem, world.tables().mmu.cpu, s.tables.root, lo, hi, 2, t)).toBe(false); // never mapped
    expect(s.refusals).toHaveLength(1);
  });

  it('has the rule\'s gaps: a gadget in a page already mapped, or in the page after an entered function, runs', () => {
    const s = world.tables().syscall();
    expect(s.fetch(sym('x64_sys_call'))).toBe(SCI.MAPPED);
    expect(s.fetch(sym('x64_sys_call') + 0x123n)).toBe(SCI.HIT); // mid-function, same page: no fault, no check
    // The page after do_syscall_64's holds other functions; any offset there passes (0x...a44000).
    const g = page(sym('do_syscall_64')) + 0x1000n + 0x77n;
    expect(ks.symbolAt(g)!.offset).toBeGreaterThan(0);
    expect(s.fetch(g)).toBe(SCI.MAPPED);
    expect(s.killed).toBe(false);
  });

  it('maps any kernel data, refuses unmapped addresses and fetches from data', () => {
    const s = world.tables().syscall();
    expect(s.read(0xffff888002000000n)).toBe(SCI.MAPPED); // "allows access to any kernel data"
    expect(s.fetch(0xffff888002000000n)).toBe(SCI.KILLED);
    expect(s.killReason).toMatch(/instruction fetch outside kernel or module text/);
    const u = world.tables().syscall();
    expect(u.read(0xffffc9ff00000000n)).toBe(SCI.KILLED); // a vmalloc hole
    expect(u.killReason).toMatch(/sci_clone_page\(\) returns NULL/);
    // A write to the read-only alias of the image (rodata at 0x2000000): the kernel's tables deny it
    // too, so the copied PTE faults again; the RFC would loop, the model stops.
    const w = world.tables().syscall();
    expect(w.write(0xffff888002000000n)).toBe(SCI.KILLED);
    expect(w.killReason).toMatch(/the fault persists/);
  });

  it('reads the task\'s user memory through the shared user half; user faults are not SCI\'s', () => {
    const s = world.tables().syscall();
    expect(s.read(0x1000000n)).toBe(SCI.HIT); // [heap] of the default layout
    expect(s.fetch(0x401000n)).toBe(SCI.OTHER_FAULT); // SMEP: a kernel fetch from a user page
    expect(s.read(0x30000000n)).toBe(SCI.OTHER_FAULT); // unmapped user address: do_user_addr_fault()
    expect(s.killed).toBe(false);
  });
});

describe('the caps: SCI_MAX_PTES 256, SCI_MAX_BACKTRACE 64', () => {
  it('maps 256 distinct data pages in one syscall and kills the task at the 257th', () => {
    expect(SCI_MAX_PTES).toBe(256);
    const s = world.tables().syscall();
    const ram = 0xffff888010000000n; // free RAM at 256 MiB, writable in the direct map
    for (let i = 0; i < 256; i++) expect(s.write(ram + BigInt(i * 4096))).toBe(SCI.MAPPED);
    expect(s.ptesUsed).toBe(256);
    expect(s.read(ram + 256n * 4096n)).toBe(SCI.KILLED);
    expect(s.killReason).toMatch(/ptes_count 256 >= SCI_MAX_PTES/);
    expect(s.read(ram)).toBe(SCI.KILLED);
  });

  it('admits 63 function entries (plus do_syscall_64) and refuses the 64th', () => {
    expect(SCI_MAX_BACKTRACE).toBe(64);
    const starts: bigint[] = [];
    const seen = new Set<bigint>();
    for (let i = ks.indexOf('_stext'); starts.length < 64; i++) {
      const a = ks.addressAt(i);
      if (a < 0xffffffff81010000n || seen.has(page(a)) || 'Tt'.indexOf(String.fromCharCode(ks.types[i])) < 0) continue;
      seen.add(page(a));
      starts.push(a);
    }
    const s = world.tables().syscall();
    starts.slice(0, 63).forEach((a) => expect(s.fetch(a), hex(a)).toBe(SCI.MAPPED));
    expect(s.backtraceSize).toBe(64);
    expect(s.fetch(starts[63])).toBe(SCI.KILLED);
    expect(s.killReason).toMatch(/backtrace_size 64 >= SCI_MAX_BACKTRACE/);
  });
});

describe('syscall end: sci_clear_data() and the TLB', () => {
  it('drops every mapping the syscall added', () => {
    const tables = world.tables();
    const before = leaves(model.mem, tables.root, 'kernel').map(key);
    const s = tables.syscall();
    s.fetch(sym('__x64_sys_getppid'));
    s.read(0xffff888003000000n);
    expect(leaves(model.mem, tables.root, 'kernel').length).toBe(before.length + 2);
    expect(s.end()).toEqual({ ptes: 2, backtrace: 2 });
    expect(leaves(model.mem, tables.root, 'kernel').map(key)).toEqual(before);
    expect(tables.backtrace).toEqual([sym('do_syscall_64')]);
  });

  it('relies on the CR3 writes to flush: the next syscall faults again, the kernel PCID is flushed on exit', () => {
    const tables = world.tables();
    const mmu = tables.mmu;
    const x = vaHalves(0xffff888004000000n);
    const f = vaHalves(sym('__x64_sys_getppid'));
    mmu.writeCr3(tables.cr3.kernel % 4294967296, 0);
    expect(mmu.translate(f.lo, f.hi, 2)).toBe(true); // kernel PCID 1 caches a non-global text entry
    expect(mmu.tlb.find(f.lo, f.hi, 1)).toBeGreaterThanOrEqual(0);
    const a = tables.syscall();
    expect(a.read(0xffff888004000000n)).toBe(SCI.MAPPED);
    a.end();
    expect(mmu.tlb.find(f.lo, f.hi, 1)).toBe(-1); // write_cr3(kernel_cr3) without the no-flush bit
    expect(mmu.tlb.find(x.lo, x.hi, 1 | 1024)).toBeGreaterThanOrEqual(0); // stale: PTE cleared, no flush in sci_clear_data()
    const b = tables.syscall();
    expect(b.read(0xffff888004000000n)).toBe(SCI.MAPPED); // the SCI CR3 write flushed it
    expect(b.dataFaults).toBe(1);
    b.end();
    // Were that write a no-flush one, the cleared page would still be reachable through the TLB.
    mmu.writeCr3(tables.cr3.sci % 4294967296, CR3_NOFLUSH_HI);
    expect(mmu.translate(x.lo, x.hi, 0)).toBe(true);
  });
});
