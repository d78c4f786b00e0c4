/**
 * `kasi asi --design sci-2019 --verify` (src/asi/sci-verify.ts) must fail when the SCI tables
 * depart from SCI's construction rule and tell that from a design exposure. Truth: the rule of
 * RFC 2/7 sci_pagetable_init() (lore 1556228754-12996-1-git-send-email-rppt@linux.ibm.com) —
 * cpu_entry_area and entry text cloned from the KPTI user root at the source's leaf size, the
 * task stack, a 4 KiB PTE for each per-CPU page and for do_syscall_64, the user PGD entries
 * copied — and sci_verify_and_map(): one 4 KiB PTE per granted fault, cleared at syscall exit.
 * The violations are planted by hand in the SCI tables only: an extra leaf, another frame, a
 * writable text PMD, a large leaf where a PTE belongs, a missing PTE, a foreign user PGD entry,
 * and the other reading of the clone ('kpti-user': ESPFIX and cpu_tss_rw too).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sci2019 } from '../../src/asi/designs/sci-2019.ts';
import { sciAfterSyscall } from '../../src/asi/sci-after.ts';
import { DEFAULT_FOOTPRINTS } from '../../src/asi/sci-report.ts';
import { leafAt } from '../../src/asi/sci-rule.ts';
import { buildSciSpace } from '../../src/asi/sci-space.ts';
import { verifySci, type SciFault } from '../../src/asi/sci-verify.ts';
import { SCI } from '../../src/asi/sci.ts';
import { loadFootprints } from '../../src/formats/footprints.ts';
import { loadKallsyms } from '../../src/formats/kallsyms.ts';
import { __PAGE_KERNEL } from '../../src/linux/cpa.ts';
import { bootSystem, populateTenants, type System } from '../../src/linux/system.ts';
import { loadFootprintTable } from '../../src/sim/footprints.ts';
import { slidKallsyms } from '../../src/sim/sci-run.ts';
import { SIZE_4K } from '../../src/x86/pgtable.ts';
import { kasi } from '../helpers/kasi-cli.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CAPS = ['la48-pti-nokaslr', 'la57-pti-nokaslr'].map((c) => join(ROOT, 'test/fixtures/captures', c));
const PFN = 0x000ffffffffff000n;


const slide = (sys: System) => sys.kernel.sections.text - 0xffffffff81000000n;

function world(capture?: string, index = 0) {
  const sys = populateTenants(bootSystem({ model: sci2019.model, ...(capture ? { capture } : {}) }));
  const ks = capture ? loadKallsyms(join(capture, 'kallsyms.txt.gz')) : slidKallsyms(slide(sys));
  const sci = buildSciSpace(sys, ks, index);
  /** The SCI entry of `va` at `level` (physical address), creating SCI tables on the way. */
  const at = (va: bigint, level: number) => Number(sci.tables.pt.entryAddr(va, level));
  return { sys, ks, sci, at, read: (pa: number) => sys.mem.read64Big(pa), write: (pa: number, v: bigint) => sys.mem.write64Big(pa, v) };
}

const taskStruct = (sys: System, i: number) => sys.slab.objectInfo(sys.userProcesses[i].slabObjects[0])!;

describe('SCI tables against the construction rule', () => {
  it('clean tables: no model error, no exposure, every premapped leaf is a rule leaf (built-in kernel and both captures)', async () => {
    for (const cap of [undefined, ...CAPS]) {
      const w = world(cap);
      const v = verifySci(w.sys, w.sci);
      expect(v.ok, cap).toBe(true);
      expect([v.mismatches, v.forbidden, v.exposures]).toEqual([[], [], []]);
      expect(v.expectedLeaves).toBe(w.sci.tables.premapped.length);
      for (const what of ['cpu_entry_area', 'entry text', 'task stack', 'do_syscall_64']) expect(v.rule.map((r) => r.what)).toContain(what);
    }
  });

  it('an extra leaf (another process\'s task_struct at its own direct-map address, as the full space maps it) is forbidden, not a mismatch', async () => {
    const w = world();
    const o = taskStruct(w.sys, 1);
    w.sci.tables.pt.mapPage(o.va & ~0xfffn, BigInt(o.pa & ~0xfff), SIZE_4K, __PAGE_KERNEL);
    const v = verifySci(w.sys, w.sci);
    expect(v.ok).toBe(false);
    expect(v.mismatches).toEqual([]);
    expect(v.forbidden.map((f) => f.va)).toEqual([o.va & ~0xfffn]);
    expect(v.forbidden[0].why).toMatch(/^direct_map: this 4 KiB leaf: not put there by sci_pagetable_init/);
  });

  it('a rule leaf with another frame is a mismatch', async () => {
    const w = world();
    const p = w.ks.addressOf('do_syscall_64')! & ~0xfffn;
    const pte = w.at(p, 1);
    w.write(pte, w.read(pte) + 0x1000n);
    const v = verifySci(w.sys, w.sci);
    expect(v.ok).toBe(false);
    expect(v.mismatches.map((m) => m.va)).toEqual([p]);
    expect(v.mismatches[0].why).toMatch(/^do_syscall_64: maps 0x[0-9a-f]+, the full space 0x/);
  });

  it('an entry-text PMD made writable is a mismatch against the KPTI user root it is cloned from', async () => {
    const w = world();
    const pmd = w.at(w.ks.addressOf('__entry_text_start')!, 2);
    w.write(pmd, w.read(pmd) | 2n);
    const v = verifySci(w.sys, w.sci);
    expect(v.ok).toBe(false);
    expect(v.mismatches[0].why).toMatch(/^entry text: writable here, read-only in the KPTI user root it is cloned from \(and 511 more pages/);
  });

  it('a per-CPU page mapped through its whole large leaf (not the 4 KiB PTE sci_clone_page() writes): size mismatch and forbidden neighbours', async () => {
    const w = world();
    const unit = w.sys.allocations().find((a) => a.boot && a.kind === 'percpu')!;
    const va = w.sys.directMapVa(unit.ranges[0].pa);
    const src = leafAt(w.sys, w.sys.userProcesses[0].pgd, va)!;
    expect(src.shift).toBeGreaterThan(12); // the direct map maps it with a large page
    const base2m = (src.entry & PFN & ~((1n << BigInt(src.shift)) - 1n)) + ((va - src.start) & ~0x1fffffn);
    w.write(w.at(va, 2), base2m | (src.entry & ~PFN) | 0x80n);
    const v = verifySci(w.sys, w.sci);
    expect(v.ok).toBe(false);
    expect(v.mismatches.some((m) => /per-CPU page of CPU 0: a 2 MiB leaf where sci_clone_page\(\) writes a 4 KiB PTE/.test(m.why))).toBe(true);
    expect(v.forbidden.some((f) => /511 pages of this 2 MiB leaf/.test(f.why))).toBe(true);
  });

  it('a rule leaf that is absent is a mismatch', async () => {
    const w = world();
    const p = w.ks.addressOf('do_syscall_64')! & ~0xfffn;
    w.write(w.at(p, 1), 0n);
    const v = verifySci(w.sys, w.sci);
    expect(v.ok).toBe(false);
    expect(v.mismatches.map((m) => m.why)).toEqual([expect.stringMatching(/^absent: the rule maps do_syscall_64 here/)]);
  });

  it('a user PGD entry that is not the process\'s user root\'s is a mismatch (sci_sync_user_pagetable())', async () => {
    const w = world();
    const other = w.sys.userProcesses[1].userPgd;
    const i = [...Array(256).keys()].find((k) => (w.read(other + k * 8) & 1n) !== 0n)!;
    w.write(w.sci.space.root + i * 8, w.read(other + i * 8));
    const v = verifySci(w.sys, w.sci);
    expect(v.ok).toBe(false);
    expect(v.mismatches.some((m) => m.why.startsWith(`user PGD entry ${i} is`))).toBe(true);
  });

  it('the other reading of the clone (every kernel-half leaf of the KPTI user root) breaks the rule: ESPFIX and cpu_tss_rw', async () => {
    const w = world();
    const wide = buildSciSpace(w.sys, w.ks, 1, { clone: 'kpti-user' });
    const v = verifySci(w.sys, wide);
    expect(v.ok).toBe(false);
    expect(v.forbidden.map((f) => f.why.split(':')[0]).sort()).toEqual(['direct_map', 'espfix']);
  });
});

describe('SCI in the middle of a system call', () => {
  it('a granted data fault is explained by that fault only; sci_clear_data() leaves the rule alone; a stale PTE after exit is forbidden', async () => {
    const w = world();
    const clean = verifySci(w.sys, w.sci).leaves;
    const o = taskStruct(w.sys, 0);
    const s = w.sci.tables.syscall();
    expect(s.read(o.va)).toBe(SCI.MAPPED);
    const id = w.sys.allocations().find((a) => a.slabId === w.sys.userProcesses[0].slabObjects[0])!.id;
    const fault: SciFault = { va: o.va, access: 'read', what: 'task_struct of proc0', granted: true, allocations: [id] };
    const mid = verifySci(w.sys, w.sci, [fault]);
    expect(mid.ok).toBe(true);
    expect(mid.leaves).toBe(clean + 1);
    const unexplained = verifySci(w.sys, w.sci);
    expect(unexplained.forbidden.map((f) => f.va)).toEqual([o.va & ~0xfffn]);
    const pte = w.at(o.va, 1);
    const value = w.read(pte);
    w.write(pte, value + 0x1000n); // the PTE sci_clone_page() wrote, with another frame
    expect(verifySci(w.sys, w.sci, [fault]).mismatches[0].why).toMatch(/^fault: task_struct of proc0: maps/);
    w.write(pte, value);
    s.end();
    const after = verifySci(w.sys, w.sci);
    expect([after.ok, after.leaves]).toEqual([true, clean]);
    w.write(pte, value); // sci_clear_data() skipped: the PTE outlives the call
    expect(verifySci(w.sys, w.sci).forbidden.map((f) => f.va)).toEqual([o.va & ~0xfffn]);
  });

  it('another tenant\'s object a fault asks for is a design exposure (fault-mapped), not a model error', async () => {
    const w = world();
    const o = taskStruct(w.sys, 1);
    const s = w.sci.tables.syscall();
    expect(s.read(o.va)).toBe(SCI.MAPPED); // "only code access is checked"
    const a = w.sys.allocations().find((x) => x.slabId === w.sys.userProcesses[1].slabObjects[0])!;
    const v = verifySci(w.sys, w.sci, [{ va: o.va, access: 'read', what: 'task_struct of proc1', granted: true, allocations: [a.id] }]);
    expect(v.ok).toBe(true);
    expect(v.exposures.find((e) => e.alloc === a)?.cause).toBe('fault-mapped');
    s.end();
  });

  const fp = loadFootprints(DEFAULT_FOOTPRINTS);
  const data = (name: string) => loadFootprintTable().entries.get(`syscall:${name}`)!.data;

  it('after getppid: the faults are the measured code pages and the task_struct, sci->ptes are exactly theirs, the tables verify mid-call and after exit', async () => {
    for (const cap of [undefined, CAPS[1]]) {
      const w = world(cap);
      const clean = verifySci(w.sys, w.sci).leaves;
      const a = sciAfterSyscall(w.sys, w.sci, fp, 'getppid', data('getppid'), slide(w.sys));
      expect(a.killed).toBeNull();
      expect(a.ptesMatch).toBe(true);
      expect(a.ptes).toBe(a.faults.length);
      expect(a.faults.filter((f) => f.access === 'fetch').map((f) => f.what)).toContain('__do_sys_getppid+0x0');
      expect(a.faults.filter((f) => f.access !== 'fetch').map((f) => f.what)).toEqual(['task_struct of proc0']);
      expect(a.verify.ok).toBe(true);
      expect(a.verify.leaves).toBe(clean + a.ptes);
      expect([a.afterExit.ok, a.afterExit.leaves]).toEqual([true, clean]);
      expect(a.notReplayed.map((x) => x.kind)).toEqual(['kernel-global']);
    }
  });

  it('after futex: the mm_struct page SCI maps carries other processes\' mm_structs (slab-neighbour exposures)', async () => {
    const w = world();
    const a = sciAfterSyscall(w.sys, w.sci, fp, 'futex', data('futex'), slide(w.sys));
    expect(a.verify.ok).toBe(true);
    const ex = a.verify.exposures.filter((e) => e.object === 'mm_struct');
    expect(ex.map((e) => e.owner)).toContain('proc1');
    expect(ex.every((e) => e.cause === 'slab-neighbour')).toBe(true);
    expect(a.afterExit.exposures).toEqual([]);
  });

  it('after munmap: killed at the 64-entry backtrace cap; nothing past the kill is mapped', async () => {
    const w = world();
    const a = sciAfterSyscall(w.sys, w.sci, fp, 'munmap', data('munmap'), slide(w.sys));
    expect(a.killed).toMatch(/SCI_MAX_BACKTRACE/);
    expect(a.faults.at(-1)!.granted).toBe(false);
    expect(a.steps.filter((x) => x.kind === 'data').every((x) => x.outcome === 'not-run')).toBe(true);
    expect([a.verify.ok, a.ptesMatch, a.afterExit.ok]).toEqual([true, true, true]);
  });
});

describe('kasi asi --design sci-2019', () => {
  it('--verify --json: exit 0 and the verify shape of every design, on the built-in kernel and both captures', async () => {
    for (const cap of [[], ...CAPS.map((c) => ['--capture', c])]) {
      const r = await kasi('asi', '--design', 'sci-2019', '--verify', '--json', ...cap);
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.design).toBe('sci-2019');
      expect(j.context).toBe('process proc0[1000]');
      expect([j.verify.ok, j.verify.mismatches, j.verify.forbidden, j.verify.exposures]).toEqual([true, [], [], []]);
      expect(j.pcid.cpuHasPcid).toBe(cap.length === 0);
    }
  });

  it('--after futex: the mid-call exposures in JSON; exit 1 with --fail-on-exposure; --vm is a usage error', async () => {
    const r = await kasi('asi', '--design', 'sci-2019', '--process', '0', '--after', 'futex', '--json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.after.verify.ok).toBe(true);
    expect(j.after.verify.exposures.map((e: { cause: string }) => e.cause)).toContain('slab-neighbour');
    expect(j.after.ptesMatch).toBe(true);
    expect((await kasi('asi', '--design', 'sci-2019', '--after', 'futex', '--fail-on-exposure')).status).toBe(1);
    expect((await kasi('asi', '--design', 'sci-2019', '--vm', '0')).status).toBe(2);
  });
});
