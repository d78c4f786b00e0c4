/**
 * Network namespaces as owners, and the per-namespace objects the networking stack allocates
 * (Linux 6.1), so that "every object of netns X" can be asked by virtual and physical address.
 *
 * Where the objects come from:
 *  - struct net: copy_net_ns() -> net_alloc() -> kmem_cache_zalloc(net_cachep), the cache made by
 *    net_ns_init() as kmem_cache_create("net_namespace", sizeof(struct net), SMP_CACHE_BYTES,
 *    SLAB_PANIC | SLAB_ACCOUNT, NULL) (net/core/net_namespace.c). init_net is a static object in
 *    the kernel image, not a slab object;
 *  - a socket: sock_alloc() takes a struct socket_alloc from sock_inode_cache (net/socket.c
 *    sock_alloc_inode()), and sk_alloc(net, …) the protocol's sock from prot->slab, the cache
 *    proto_register() made as kmem_cache_create_usercopy(prot->name, prot->obj_size, 0,
 *    SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT | prot->slab_flags, …), tcp_prot.slab_flags =
 *    SLAB_TYPESAFE_BY_RCU (net/core/sock.c, net/ipv4/tcp_ipv4.c);
 *  - an sk_buff: __alloc_skb() takes the head from skbuff_head_cache and the data from
 *    kmalloc_reserve() of SKB_DATA_ALIGN(size) + SKB_DATA_ALIGN(sizeof(struct skb_shared_info)),
 *    SKB_DATA_ALIGN(X) = ALIGN(X, SMP_CACHE_BYTES) (net/core/skbuff.c, include/linux/skbuff.h).
 *    sizeof(struct skb_shared_info) is 320 on x86-64 in 6.1 (48 bytes of fields + MAX_SKB_FRAGS = 17
 *    skb_frag_t of 16 bytes), computed from the struct, not read from a running kernel.
 *
 * Every object is allocated with its namespace as the owner, so its class comes from the
 * sensitivity model; a model where these kinds are locally non-sensitive (netnsLocalModel(), the
 * namespace address-space design) makes the slab keep each namespace's objects on its own pages.
 */
import { KERNEL_OWNER, type Owner, type Owners } from './owners.ts';
import {
  CLASS_LOCAL_NONSENSITIVE, getModel, type ModelName, type Rule, type SensitivityModel,
} from './sensitivity.ts';
import type { CacheDef, SlabAllocator } from './slab.ts';

/** SMP_CACHE_BYTES on x86-64. */
const SMP_CACHE_BYTES = 64;
/** sizeof(struct skb_shared_info) on x86-64, Linux 6.1 (see the header). */
export const SKB_SHARED_INFO_SIZE = 320;

const EST = 'assumption: estimated for a Debian 6.1 x86-64 config (no slabinfo of that kernel was available)';

/** The caches this module needs beyond slab.ts's NAMED_CACHES (created on first use). */
export const NETNS_CACHES: readonly CacheDef[] = [
  { name: 'net_namespace', objectSize: 4928, align: SMP_CACHE_BYTES, source: `${EST}: sizeof(struct net); align SMP_CACHE_BYTES (net_ns_init())` },
  { name: 'TCP', objectSize: 2280, hwcacheAlign: true, typesafeByRcu: true, source: `${EST} for sizeof(struct tcp_sock); SLAB_HWCACHE_ALIGN | SLAB_TYPESAFE_BY_RCU give the 2304-byte objects, 14 per 8-page slab, of a 6.x slabtop (uutils/procps PR #42)` },
];

/** The kinds of the objects here, as the sensitivity model sees them. */
export const NETNS_KINDS = ['net_namespace', 'TCP', 'sock_inode_cache', 'skbuff_head_cache', 'skb-data'] as const;

/** SKB_DATA_ALIGN(size) + SKB_DATA_ALIGN(sizeof(struct skb_shared_info)): the kmalloc request of __alloc_skb(). */
export function skbDataRequest(size: number): number {
  const align = (x: number) => Math.ceil(x / SMP_CACHE_BYTES) * SMP_CACHE_BYTES;
  return align(size) + align(SKB_SHARED_INFO_SIZE);
}

/**
 * `base` with every netns object kind locally non-sensitive to its namespace: the namespace
 * address-space design (Bottomley/Rapoport 2019, see docs/DESIGN.md), where netns A's private objects
 * are absent from netns B's tables. Assumption: all of NETNS_KINDS count as private.
 */
export function netnsLocalModel(base: ModelName | SensitivityModel): SensitivityModel {
  const m = getModel(base);
  const rules = new Map<string, Rule>(m.rules);
  for (const kind of NETNS_KINDS) {
    rules.set(kind, { kind, cls: 'local', source: 'assumption: namespace address spaces (Bottomley/Rapoport 2019) keep a netns\'s private objects out of other namespaces\' tables' });
  }
  const classes = m.classes.includes(CLASS_LOCAL_NONSENSITIVE) ? m.classes : [...m.classes, CLASS_LOCAL_NONSENSITIVE];
  return { ...m, description: `${m.description}; netns objects local to their namespace`, classes, rules };
}

export type NetnsObjectKind = 'net' | 'socket-inode' | 'sock' | 'skb' | 'skb-data';

export interface NetnsObject {
  kind: NetnsObjectKind;
  /** Slab object id (-1 for the static init_net). */
  id: number;
  pa: number;
  va: bigint;
  size: number;
  cache: string;
  cls: number;
}

export interface NetNs {
  readonly owner: Owner;
  readonly name: string;
  /** Slab object id of struct net (-1 for init_net). */
  readonly net: number;
  /** Live objects: kind and slab id. */
  readonly objects: Map<number, NetnsObjectKind>;
}

export interface NetnsOptions {
  slab: SlabAllocator;
  owners: Owners;
  /** Where the kernel image holds init_net (from kallsyms), if known. */
  initNetAddr?: { pa: number; va: bigint; size?: number };
}

export class NetNamespaces {
  readonly initNet: NetNs;
  readonly namespaces: NetNs[] = [];
  private readonly slab: SlabAllocator;
  private readonly owners: Owners;
  private readonly byOwner = new Map<number, NetNs>();
  private readonly initNetAddr?: { pa: number; va: bigint; size: number };

  constructor(opts: NetnsOptions) {
    this.slab = opts.slab;
    this.owners = opts.owners;
    const names = new Set(this.slab.cacheNames());
    for (const d of NETNS_CACHES) if (!names.has(d.name)) this.slab.createCache(d);
    if (opts.initNetAddr) this.initNetAddr = { size: 4928, ...opts.initNetAddr };
    this.initNet = this.register(this.owners.netns('init_net'), -1);
  }

  private register(owner: Owner, net: number): NetNs {
    const ns: NetNs = { owner, name: owner.name, net, objects: new Map() };
    if (net >= 0) ns.objects.set(net, 'net');
    this.namespaces.push(ns);
    this.byOwner.set(owner.id, ns);
    return ns;
  }

  /** unshare(CLONE_NEWNET) / clone(CLONE_NEWNET): a namespace with its struct net. */
  create(name: string): NetNs {
    const owner = this.owners.netns(name);
    return this.register(owner, this.slab.allocId('net_namespace', owner.id));
  }

  /** socket(AF_INET, SOCK_STREAM, 0) in `ns`: the socket inode and the TCP sock. */
  socket(ns: NetNs): { inode: number; sk: number } {
    const inode = this.track(ns, 'socket-inode', this.slab.allocId('sock_inode_cache', ns.owner.id));
    const sk = this.track(ns, 'sock', this.slab.allocId('TCP', ns.owner.id));
    return { inode, sk };
  }

  /** alloc_skb(size) for a packet of `ns`: head and data. */
  allocSkb(ns: NetNs, size: number): { head: number; data: number } {
    const head = this.track(ns, 'skb', this.slab.allocId('skbuff_head_cache', ns.owner.id));
    const req = skbDataRequest(size);
    const data = this.track(ns, 'skb-data', this.slab.kmalloc(req, ns.owner.id, { kind: 'skb-data' }).id);
    return { head, data };
  }

  /** kfree_skb() / sock release: free objects of `ns` by slab id. */
  free(ns: NetNs, ...ids: number[]): void {
    for (const id of ids) {
      if (!ns.objects.has(id) || ns.objects.get(id) === 'net') throw new Error(`object ${id} is not a freeable object of netns ${ns.name}`);
      this.slab.free(id);
      ns.objects.delete(id);
    }
  }

  private track(ns: NetNs, kind: NetnsObjectKind, id: number): number {
    ns.objects.set(id, kind);
    return id;
  }

  // -- queries ---------------------------------------------------------------------------

  /** Every live object of `ns` (init_net's static struct net first, when its address is known). */
  objectsOf(ns: NetNs): NetnsObject[] {
    const out: NetnsObject[] = [];
    if (ns === this.initNet && this.initNetAddr) {
      const a = this.initNetAddr;
      out.push({ kind: 'net', id: -1, pa: a.pa, va: a.va, size: a.size, cache: '(kernel image)', cls: -1 });
    }
    for (const [id, kind] of ns.objects) {
      const o = this.slab.objectInfo(id)!;
      out.push({ kind, id, pa: o.pa, va: o.va, size: o.size, cache: o.cache, cls: o.cls });
    }
    return out;
  }

  /** The namespace owning the byte at `pa` (a slab object, or the static init_net), or null. */
  netnsOfPa(pa: number): NetNs | null {
    const a = this.initNetAddr;
    if (a && pa >= a.pa && pa < a.pa + a.size) return this.initNet;
    const o = this.slab.objectAtPa(pa);
    if (!o || pa >= o.pa + o.size) return null; // the padding after object_size belongs to no one
    return this.byOwner.get(o.owner) ?? null;
  }

  /** As netnsOfPa() for a kernel virtual address (the direct map, or init_net's image address). */
  netnsOfVa(va: bigint): NetNs | null {
    const a = this.initNetAddr;
    if (a && va >= a.va && va < a.va + BigInt(a.size)) return this.initNet;
    const o = this.slab.objectAtVa(va);
    if (!o) return null;
    return this.netnsOfPa(o.pa + Number(BigInt.asUintN(64, va) - o.va));
  }

  /** The namespace with this owner id. */
  byOwnerId(id: number): NetNs | undefined {
    return id === KERNEL_OWNER ? undefined : this.byOwner.get(id);
  }
}
