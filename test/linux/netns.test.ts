/**
 * Network namespaces and their objects (src/linux/netns.ts). Truth used:
 *  - the asi-2022 rule that local memory of different owners never shares a page (cover letter,
 *    see sensitivity.ts), checked as an invariant over every live slab object after random
 *    allocation/free sequences — and its converse: without local classes (plain asi-2022, where
 *    these kinds are sensitive) objects of two namespaces do end up on one page;
 *  - size classes of skb data computed by hand from skbuff.h (SKB_DATA_ALIGN to 64 bytes, 320-byte
 *    skb_shared_info) and slab_common.c's kmalloc sizes;
 *  - a real 6.x slabtop row for the TCP cache: objsize 2.25K (2304), 14 objects per slab, 8 pages
 *    (uutils/procps PR #42).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BuddyAllocator } from '../../src/linux/buddy.ts';
import { NETNS_KINDS, NetNamespaces, netnsLocalModel, skbDataRequest } from '../../src/linux/netns.ts';
import { Owners } from '../../src/linux/owners.ts';
import {
  CLASS_GLOBAL_NONSENSITIVE, CLASS_LOCAL_NONSENSITIVE, CLASS_SENSITIVE, type ModelName, type SensitivityModel,
} from '../../src/linux/sensitivity.ts';
import { SlabAllocator } from '../../src/linux/slab.ts';
import { PhysMemory } from '../../src/phys/memory.ts';

const PAGE_OFFSET = 0xffff888000000000n;

function setup(model: ModelName | SensitivityModel, initNetAddr?: { pa: number; va: bigint }) {
  const buddy = new BuddyAllocator({ ram: [[0x100000n, 0x20000000n]] });
  const owners = new Owners();
  const slab = new SlabAllocator({ buddy, owners, model, pageOffsetBase: PAGE_OFFSET, mem: new PhysMemory(46), cpus: 4 });
  return { slab, owners, buddy, net: new NetNamespaces({ slab, owners, initNetAddr }) };
}

/** Owners of local objects per 4 KiB page, and whether a page mixes local with other classes. */
function pageOwners(slab: SlabAllocator) {
  const byPage = new Map<number, { owners: Set<number>; classes: Set<number> }>();
  for (const o of slab.liveObjects()) {
    for (let pfn = Math.floor(o.pa / 4096); pfn <= Math.floor((o.pa + o.size - 1) / 4096); pfn++) {
      const e = byPage.get(pfn) ?? { owners: new Set(), classes: new Set() };
      e.owners.add(o.owner);
      e.classes.add(o.cls);
      byPage.set(pfn, e);
    }
  }
  return byPage;
}

describe('namespaces and their objects', () => {
  it('init_net is registered first, as a netns owner; others follow', () => {
    const { net, owners } = setup('asi-2022');
    const a = net.create('A');
    expect([net.initNet.owner.kind, net.initNet.name, net.initNet.net]).toEqual(['netns', 'init_net', -1]);
    expect(owners.byKind('netns').map((o) => o.name)).toEqual(['init_net', 'A']);
    expect(net.objectsOf(a).map((o) => [o.kind, o.cache])).toEqual([['net', 'net_namespace']]);
  });

  it('a socket is a sock_inode_cache object and a TCP sock; an skb a head and kmalloc data', () => {
    const { net } = setup('asi-2022');
    const a = net.create('A');
    const s = net.socket(a);
    const skb = net.allocSkb(a, 1500);
    const objs = new Map(net.objectsOf(a).map((o) => [o.id, o]));
    expect(objs.get(s.inode)!.cache).toBe('sock_inode_cache');
    expect(objs.get(s.sk)!.cache).toBe('TCP');
    expect(objs.get(skb.head)!.cache).toBe('skbuff_head_cache');
    // alloc_skb(1500): ALIGN(1500, 64) = 1536, + 320 = 1856 -> kmalloc-2k.
    expect(objs.get(skb.data)!.cache).toBe('kmalloc-2k');
    net.free(a, skb.head, skb.data);
    expect(net.objectsOf(a).length).toBe(3);
    expect(() => net.free(a, a.net)).toThrow(/not a freeable/);
  });

  it('skb data requests, by hand from skbuff.h', () => {
    expect([0, 1, 64, 100, 1500, 3776, 3777, 7872].map(skbDataRequest)).toEqual([320, 384, 384, 448, 1856, 4096, 4160, 8192]);
  });

  it('the TCP cache has the geometry of a real 6.x slabtop row', () => {
    const { slab } = setup('asi-2022');
    const g = slab.cacheInfo('TCP').geometry;
    expect([g.size, g.objects, 2 ** g.order]).toEqual([2304, 14, 8]);
  });

  it('every object of a namespace is found by PA and VA, inside and at its edges', () => {
    const { net, slab } = setup(netnsLocalModel('asi-2022'), { pa: 0x3a3c140, va: 0xffffffff83a3c140n });
    const a = net.create('A');
    const b = net.create('B');
    for (const ns of [a, b, net.initNet]) {
      net.socket(ns);
      net.allocSkb(ns, 200);
    }
    for (const ns of [a, b, net.initNet]) {
      const objs = net.objectsOf(ns);
      expect(objs.length).toBe(5); // struct net (init_net's is static), inode, sock, skb head, skb data
      for (const o of objs) {
        for (const off of [0, 1, o.size - 1]) {
          expect(net.netnsOfPa(o.pa + off)).toBe(ns);
          expect(net.netnsOfVa(o.va + BigInt(off))).toBe(ns);
        }
        if (o.id >= 0) {
          expect(o.va).toBe(PAGE_OFFSET + BigInt(o.pa)); // direct-map address
          expect(slab.objectAtVa(o.va)!.id).toBe(o.id);
        }
      }
    }
    // The static init_net (kernel image) is init_net's; a free slot is nobody's.
    expect(net.netnsOfVa(0xffffffff83a3c140n)).toBe(net.initNet);
    expect(net.netnsOfPa(0x1ff00000)).toBeNull();
  });
});

describe('page separation between namespaces', () => {
  const op = fc.record({
    ns: fc.integer({ min: 0, max: 2 }),
    what: fc.constantFrom('socket', 'skb', 'skb', 'free'),
    len: fc.integer({ min: 0, max: 7000 }),
  });

  it('netns-local model: no page ever holds objects of two namespaces, nor local and non-local objects', () => {
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 80 }), (ops) => {
      const { net, slab } = setup(netnsLocalModel('asi-2022'));
      const nss = [net.create('A'), net.create('B'), net.create('C')];
      for (const o of ops) {
        const ns = nss[o.ns];
        if (o.what === 'socket') net.socket(ns);
        else if (o.what === 'skb') net.allocSkb(ns, o.len);
        else {
          const ids = [...ns.objects.keys()].filter((id) => ns.objects.get(id) !== 'net');
          if (ids.length) net.free(ns, ids[o.len % ids.length]);
        }
      }
      for (const ns of nss) for (const x of net.objectsOf(ns)) expect(x.cls).toBe(CLASS_LOCAL_NONSENSITIVE);
      for (const [, e] of pageOwners(slab)) {
        if (e.classes.has(CLASS_LOCAL_NONSENSITIVE)) {
          expect(e.owners.size).toBe(1);
          expect(e.classes.size).toBe(1);
        }
      }
    }), { numRuns: 60 });
  });

  it('plain asi-2022 (these kinds sensitive) and asi-2025 (slab nonsensitive) do mix namespaces on a page', () => {
    for (const [model, cls] of [['asi-2022', CLASS_SENSITIVE], ['asi-2025', CLASS_GLOBAL_NONSENSITIVE]] as const) {
      const { net, slab } = setup(model);
      const a = net.create('A');
      const b = net.create('B');
      net.socket(a);
      net.socket(b);
      for (const o of [...net.objectsOf(a), ...net.objectsOf(b)]) expect(o.cls).toBe(cls);
      const mixed = [...pageOwners(slab).values()].filter((e) => e.owners.has(a.owner.id) && e.owners.has(b.owner.id));
      expect(mixed.length).toBeGreaterThan(0);
    }
  });

  it('the local model only changes the netns kinds', () => {
    const m = netnsLocalModel('asi-2025');
    expect([...NETNS_KINDS].map((k) => m.rules.get(k)!.cls)).toEqual(['local', 'local', 'local', 'local', 'local']);
    expect(m.rules.get('anon')!.cls).toBe('sensitive');
    expect(m.classes).toContain(CLASS_LOCAL_NONSENSITIVE);
  });
});
