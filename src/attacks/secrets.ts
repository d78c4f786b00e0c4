/**
 * Planted secrets: random bytes written into named objects of the modelled kernel (a slab
 * object, a process page, a page-cache page, a guest RAM page, a vmalloc area), each recorded
 * with its owner and the physical ranges that hold it. Attacks never look here; afterwards
 * score.ts compares what they read with these bytes.
 *
 * The bytes come from the run's seeded PRNG (a `nextU32()` source such as linux/kaslr.ts's
 * Xoshiro128): the same seed and the same planting calls give the same bytes. Bytes are written
 * into PhysMemory directly; like any write behind the caches' backs (uarch/machine.ts), a line
 * already cached keeps its old bytes until refilled, so plant before the workload runs.
 *
 * A secret must be at least MIN_RUN bytes long: shorter ones could never be scored (score.ts).
 */
import { PAGE_SIZE, type PhysMemory } from '../phys/memory.ts';
import type { Owners } from '../linux/owners.ts';
import type { Process } from '../linux/process.ts';
import type { SlabAllocator } from '../linux/slab.ts';
import type { Vm } from '../linux/kvm.ts';
import type { VmArea } from '../linux/vmalloc.ts';

/** Bytes a leaked run must match contiguously before any of them counts (score.ts). */
export const MIN_RUN = 8;

export interface Rng32 {
  nextU32(): number;
}

export type SecretKind = 'slab' | 'process' | 'page-cache' | 'guest' | 'vmalloc' | 'phys';

/** One physically contiguous piece of a secret: bytes [off, off+len) of it live at [pa, pa+len). */
export interface SecretRange {
  readonly pa: number;
  readonly len: number;
  readonly off: number;
}

export interface Secret {
  readonly id: number;
  readonly name: string;
  /** Owner id (linux/owners.ts) and its name. */
  readonly owner: number;
  readonly ownerName: string;
  readonly kind: SecretKind;
  /** The object holding it, e.g. "cred_jar object 12", "anon page of sshd[1000] at 0x1000000". */
  readonly object: string;
  readonly ranges: readonly SecretRange[];
  readonly bytes: Uint8Array;
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

export class SecretSet {
  private readonly list: Secret[] = [];

  constructor(
    readonly mem: PhysMemory,
    private readonly rng: Rng32,
    private readonly owners: Owners,
  ) {}

  all(): readonly Secret[] {
    return this.list;
  }

  get(id: number): Secret {
    const s = this.list[id];
    if (s === undefined) throw new RangeError(`no secret ${id} (0..${this.list.length - 1})`);
    return s;
  }

  get size(): number {
    return this.list.length;
  }

  /** `len` fresh random bytes from the PRNG, four per draw. */
  randomBytes(len: number): Uint8Array {
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i += 4) {
      const v = this.rng.nextU32();
      for (let k = 0; k < 4 && i + k < len; k++) b[i + k] = (v >>> (8 * k)) & 0xff;
    }
    return b;
  }

  /**
   * Plant `len` random bytes at the physical pieces `pieces` (each [pa, len], in secret order).
   * The lower-level entry point; the helpers below find the pieces of each kind of object.
   */
  plantRanges(name: string, owner: number, kind: SecretKind, object: string, pieces: ReadonlyArray<readonly [number, number]>): Secret {
    const total = pieces.reduce((n, [, l]) => n + l, 0);
    if (!Number.isInteger(total) || total < MIN_RUN) throw new RangeError(`secret '${name}': ${total} bytes; a secret needs at least ${MIN_RUN}`);
    for (const [pa, len] of pieces) {
      for (const o of this.list) {
        for (const r of o.ranges) {
          if (pa < r.pa + r.len && r.pa < pa + len) throw new RangeError(`secret '${name}': ${hex(pa)}+${len} overlaps secret '${o.name}'`);
        }
      }
    }
    const bytes = this.randomBytes(total);
    const ranges: SecretRange[] = [];
    let off = 0;
    for (const [pa, len] of pieces) {
      if (!(pa >= 0) || !(len > 0)) throw new RangeError(`secret '${name}': bad range ${hex(pa)}+${len}`);
      this.mem.writeBytes(pa, bytes.subarray(off, off + len));
      ranges.push({ pa, len, off });
      off += len;
    }
    const s: Secret = {
      id: this.list.length, name, owner, ownerName: this.owners.get(owner).name, kind, object, ranges, bytes,
    };
    this.list.push(s);
    return s;
  }

  /** A secret at one physically contiguous range (kernel data, a buffer given by address). */
  plantPhys(name: string, owner: number, pa: number, len: number, object = `phys ${hex(pa)}`): Secret {
    return this.plantRanges(name, owner, 'phys', object, [[pa, len]]);
  }

  /** Inside slab object `objId` (its whole object_size by default), owned by the object's owner. */
  plantSlab(slab: SlabAllocator, objId: number, name: string, len?: number, offset = 0): Secret {
    const o = slab.objectInfo(objId);
    if (!o) throw new RangeError(`secret '${name}': slab object ${objId} is not allocated`);
    const n = len ?? o.size - offset;
    if (offset < 0 || offset + n > o.size) throw new RangeError(`secret '${name}': ${n} bytes at +${offset} overflow a ${o.size}-byte ${o.cache} object`);
    return this.plantRanges(name, o.owner, 'slab', `${o.cache} object ${objId}`, [[o.pa + offset, n]]);
  }

  /**
   * In a process's memory at user address `va`, through its page tables (the pages must be
   * populated). Kind 'page-cache' when the VMA holds page-cache pages (a read-only file mapping,
   * linux/process.ts), else 'process'; the owner is the VMA's (the VM for guest RAM).
   */
  plantProcess(p: Process, va: bigint, len: number, name: string): Secret {
    const vma = p.vmaAt(va);
    if (!vma || va + BigInt(len) > vma.end) throw new RangeError(`secret '${name}': [${hex(va)}, +${len}) is not inside one VMA of ${p.comm}[${p.pid}]`);
    const pieces = this.virtualPieces(va, len, (v) => p.paOf(v), `${p.comm}[${p.pid}]`, name);
    const kind: SecretKind = vma.kind === 'page-cache' ? 'page-cache' : 'process';
    const what = vma.kind === 'page-cache' ? 'page-cache page' : `${vma.kind} page`;
    return this.plantRanges(name, vma.owner, kind, `${what} of ${p.comm}[${p.pid}] ${vma.name} at ${hex(va)}`, pieces);
  }

  /** In guest RAM at guest-physical address `gpa`, through the VM's EPT; owned by the VM. */
  plantGuest(vm: Vm, gpa: number, len: number, name: string): Secret {
    if (gpa < 0 || gpa + len > vm.ramBytes) throw new RangeError(`secret '${name}': GPA range ${hex(gpa)}+${len} is outside the ${vm.ramBytes}-byte guest RAM of ${vm.owner.name}`);
    const pieces = this.virtualPieces(BigInt(gpa), len, (g) => vm.gpaToHpa(Number(g)), vm.owner.name, name);
    return this.plantRanges(name, vm.owner.id, 'guest', `guest RAM of ${vm.owner.name} at GPA ${hex(gpa)}`, pieces);
  }

  /** In a vmalloc area at byte `offset`; owned by the area's owner. */
  plantVmalloc(area: VmArea, len: number, name: string, offset = 0): Secret {
    if (offset < 0 || offset + len > area.size) throw new RangeError(`secret '${name}': ${len} bytes at +${offset} overflow the ${area.size}-byte vmalloc area ${hex(area.va)}`);
    const pieces = this.virtualPieces(area.va + BigInt(offset), len, (v) => {
      const page = Number((v - area.va) / BigInt(PAGE_SIZE));
      return area.pfns[page] * PAGE_SIZE + Number((v - area.va) % BigInt(PAGE_SIZE));
    }, `vmalloc ${hex(area.va)}`, name);
    return this.plantRanges(name, area.owner, 'vmalloc', `${area.kind} area ${hex(area.va)}+${hex(offset)}`, pieces);
  }

  /** Split [va, va+len) at page boundaries and translate each page (merging contiguous frames). */
  private virtualPieces(va: bigint, len: number, pa: (v: bigint) => number, where: string, name: string): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let done = 0;
    while (done < len) {
      const v = va + BigInt(done);
      const p = pa(v);
      if (p < 0) throw new RangeError(`secret '${name}': ${hex(v)} is not mapped in ${where}`);
      const n = Math.min(len - done, PAGE_SIZE - Number(v % BigInt(PAGE_SIZE)));
      const last = out[out.length - 1];
      if (last && last[0] + last[1] === p) last[1] += n;
      else out.push([p, n]);
      done += n;
    }
    return out;
  }
}
