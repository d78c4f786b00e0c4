/**
 * Sensitivity models and their use by the allocators. Truth used:
 *  - statements of the RFCs, written here as literal expectations (the quotes are in the
 *    comments), not read back from the model's own table;
 *  - the 2022 RFC's separation rule ("different classes of memory do not share the same physical
 *    page ... locally non-sensitive memory for different processes into different pages"),
 *    checked on random allocation sequences through the buddy allocator's per-frame columns.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BuddyAllocator } from '../../src/linux/buddy.ts';
import { KERNEL_OWNER, Owners } from '../../src/linux/owners.ts';
import { SlabAllocator } from '../../src/linux/slab.ts';
import {
  CLASS_GLOBAL_NONSENSITIVE as G, CLASS_LOCAL_NONSENSITIVE as L, CLASS_SENSITIVE as S, MODEL_NAMES,
  classify, classifyMapping, getModel,
} from '../../src/linux/sensitivity.ts';

const PAGE_OFFSET = 0xffff888000000000n;
const proc = { kind: 'process' as const };
const kernel = { kind: 'kernel' as const };

describe('what the RFCs say, as literal expectations', () => {
  it('asi-2022: sensitive unless annotated; task_struct global, vm_area_struct local; user and guest memory local', () => {
    // "By default, all memory is considered sensitive unless specifically categorized otherwise."
    expect(classify('asi-2022', 'cred_jar', proc)).toBe(S);
    expect(classify('asi-2022', 'some-unannotated-cache', proc)).toBe(S);
    expect(classify('asi-2022', 'page-cache', proc)).toBe(S);
    // fork.c: task_struct SLAB_GLOBAL_NONSENSITIVE, vm_area_struct SLAB_LOCAL_NONSENSITIVE.
    expect(classify('asi-2022', 'task_struct', proc)).toBe(G);
    expect(classify('asi-2022', 'mm_struct', proc)).toBe(G);
    expect(classify('asi-2022', 'vm_area_struct', proc)).toBe(L);
    // "Examples include userspace memory (or guest memory in the case of VMs)".
    expect(classify('asi-2022', 'anon', proc)).toBe(L);
    expect(classify('asi-2022', 'guest-memory', { kind: 'vm' })).toBe(L);
  });

  it('asi-2025: sensitive iff __GFP_SENSITIVE: user, guest and page-cache pages; never slab', () => {
    // "By simply adding __GFP_SENSITIVE to GFP_USER"; "The entire page cache is removed from the direct map".
    expect(classify('asi-2025', 'anon', proc)).toBe(S);
    expect(classify('asi-2025', 'page-cache', proc)).toBe(S);
    expect(classify('asi-2025', 'guest-memory', { kind: 'vm' })).toBe(S);
    // "currently only supported for buddy allocations, not slab ... everything else is considered non-sensitive"
    for (const c of ['task_struct', 'cred_jar', 'key_jar', 'kvm_vcpu', 'kmalloc', 'dentry']) expect(classify('asi-2025', c, proc)).toBe(G);
    // vmalloc: backing pages __GFP_SENSITIVE, the vmalloc range asi_map()ed nonsensitive.
    expect([classify('asi-2025', 'kernel-stack', proc), classifyMapping('asi-2025', 'kernel-stack', proc)]).toEqual([S, G]);
  });

  it('none: one class for everything', () => {
    for (const k of ['anon', 'task_struct', 'kernel-stack', 'x']) expect(classify('none', k, proc)).toBe(S);
    expect(getModel('none').classes).toEqual([S]);
  });

  it('local needs a restricted space of its own: kernel-owned local kinds stay sensitive', () => {
    expect(classify('asi-2022', 'vm_area_struct', kernel)).toBe(S);
    expect(classify('asi-2022', 'task_struct', kernel)).toBe(G);
  });

  it('every rule cites an RFC or says it is an assumption', () => {
    for (const name of MODEL_NAMES) {
      const m = getModel(name);
      for (const r of [m.fallback, ...m.rules.values()]) {
        expect(r.source.length).toBeGreaterThan(20);
        if (name !== 'none') expect(/RFC|^assumption/.test(r.source)).toBe(true);
      }
    }
    expect(() => getModel('asi-1999' as never)).toThrow(RangeError);
  });
});

function setup(model: 'asi-2022' | 'asi-2025') {
  const buddy = new BuddyAllocator({ ram: [[0x100000, 0x10000000]] });
  const owners = new Owners();
  const slab = new SlabAllocator({ buddy, owners, model, pageOffsetBase: PAGE_OFFSET, cpus: 1 });
  return { buddy, owners, slab };
}

describe('owners and classes queryable by PA and by VA', () => {
  it('asi-2022: local objects sit on their owner\'s pages, global ones on kernel pages', () => {
    const { buddy, owners, slab } = setup('asi-2022');
    const a = owners.process('nginx', 10);
    const b = owners.process('redis', 11);
    const vm = owners.vm('guest0');
    const vmaA = slab.alloc('vm_area_struct', a.id);
    const vmaB = slab.alloc('vm_area_struct', b.id);
    const taskA = slab.alloc('task_struct', a.id);
    const credA = slab.alloc('cred_jar', a.id);
    const vcpu = slab.alloc('kvm_vcpu', vm.id);

    expect(Math.floor(vmaA.pa / 4096)).not.toBe(Math.floor(vmaB.pa / 4096));
    expect([buddy.ownerOfPfn(Math.floor(vmaA.pa / 4096)), buddy.classOfPfn(Math.floor(vmaA.pa / 4096))]).toEqual([a.id, L]);
    expect([buddy.ownerOfPfn(Math.floor(vmaB.pa / 4096)), buddy.classOfPfn(Math.floor(vmaB.pa / 4096))]).toEqual([b.id, L]);
    expect([buddy.ownerOfPfn(Math.floor(taskA.pa / 4096)), buddy.classOfPfn(Math.floor(taskA.pa / 4096))]).toEqual([KERNEL_OWNER, G]);
    expect(buddy.classOfPfn(Math.floor(credA.pa / 4096))).toBe(S);
    expect([buddy.ownerOfPfn(Math.floor(vcpu.pa / 4096)), vcpu.cls]).toEqual([vm.id, L]);

    for (const o of [vmaA, vmaB, taskA, credA, vcpu]) {
      const byVa = slab.objectAtVa(PAGE_OFFSET + BigInt(o.pa + 3))!;
      const byPa = slab.objectAtPa(o.pa + 3)!;
      expect([byVa.id, byVa.owner, byVa.cls]).toEqual([o.id, o.owner, o.cls]);
      expect(byPa.id).toBe(o.id);
    }
    expect(taskA.owner).toBe(a.id);
  });

  it('asi-2025: every slab object is nonsensitive and no local class exists', () => {
    const { owners, slab } = setup('asi-2025');
    const a = owners.process('nginx', 10);
    for (const c of ['task_struct', 'cred_jar', 'vm_area_struct', 'kmalloc-64']) expect(slab.alloc(c, a.id).cls).toBe(G);
    expect(() => slab.alloc('vm_area_struct', a.id, { cls: L })).toThrow(RangeError);
    expect(slab.alloc('kmalloc-64', a.id, { cls: S }).cls).toBe(S); // an explicit __GFP_SENSITIVE
  });

  it('asi-2022: no page mixes classes, nor local objects of two owners (fast-check)', () => {
    const caches = ['vm_area_struct', 'task_struct', 'cred_jar', 'kmalloc-64', 'x86_emulator', 'files_cache', 'kvm_vcpu'];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(caches.length - 1), fc.nat(3), fc.nat(2), fc.boolean()), { maxLength: 300, size: 'max' }), (ops) => {
        const { buddy, owners, slab } = setup('asi-2022');
        const ids = [KERNEL_OWNER, owners.process('a', 1).id, owners.process('b', 2).id, owners.vm('v').id];
        const live: number[] = [];
        for (const [c, o, k, keep] of ops) {
          // kmalloc-64 gets each class by flag, as __GFP_*_NONSENSITIVE would choose it.
          const cls = caches[c] === 'kmalloc-64' && !(k === L && ids[o] === KERNEL_OWNER) ? k : undefined;
          live.push(slab.alloc(caches[c], ids[o], { cls }).id);
          if (!keep && live.length > 1) slab.free(live.splice(o % live.length, 1)[0]);
        }
        const pages = new Map<number, { cls: number; owner: number }>();
        for (const obj of slab.liveObjects()) {
          for (const pfn of [Math.floor(obj.pa / 4096), Math.floor((obj.pa + obj.size - 1) / 4096)]) {
            const key = { cls: obj.cls, owner: obj.cls === L ? obj.owner : KERNEL_OWNER };
            const seen = pages.get(pfn);
            if (seen) expect(seen).toEqual(key);
            else pages.set(pfn, key);
            expect(buddy.classOfPfn(pfn)).toBe(key.cls);
            expect(buddy.ownerOfPfn(pfn)).toBe(key.owner);
          }
        }
      }),
      { numRuns: 40 },
    );
  });
});
