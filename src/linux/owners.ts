/**
 * Who an allocation belongs to: the kernel itself, a process, a VM or a network namespace.
 *
 * Owner ids are small dense integers (they live in Uint16Array columns of the page and slab
 * allocators): the kernel is always id 0, every other owner gets the next free id in
 * registration order, so the same scenario gives the same ids. A process keeps its pid as
 * data, not as its id (pids are sparse and may exceed 65535).
 */

export type OwnerKind = 'kernel' | 'process' | 'vm' | 'netns';

export interface Owner {
  readonly id: number;
  readonly kind: OwnerKind;
  readonly name: string;
  /** Process id, for kind 'process'. */
  readonly pid?: number;
}

/** The kernel's own owner id. */
export const KERNEL_OWNER = 0;
/** Ids are stored in Uint16Array columns. */
export const MAX_OWNERS = 65536;

export class Owners {
  private readonly list: Owner[] = [{ id: KERNEL_OWNER, kind: 'kernel', name: 'kernel' }];

  /** Register a new owner and return it. */
  add(kind: Exclude<OwnerKind, 'kernel'>, name: string, pid?: number): Owner {
    if (this.list.length >= MAX_OWNERS) throw new RangeError(`too many owners (at most ${MAX_OWNERS})`);
    const owner: Owner = pid === undefined ? { id: this.list.length, kind, name } : { id: this.list.length, kind, name, pid };
    this.list.push(owner);
    return owner;
  }

  process(name: string, pid: number): Owner {
    return this.add('process', name, pid);
  }

  vm(name: string): Owner {
    return this.add('vm', name);
  }

  netns(name: string): Owner {
    return this.add('netns', name);
  }

  get kernel(): Owner {
    return this.list[KERNEL_OWNER];
  }

  /** The owner with this id; throws on an unknown id. */
  get(id: number): Owner {
    const o = this.list[id];
    if (o === undefined) throw new RangeError(`unknown owner id ${id}`);
    return o;
  }

  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.list.length;
  }

  kindOf(id: number): OwnerKind {
    return this.get(id).kind;
  }

  /** The process with this pid, if registered. */
  byPid(pid: number): Owner | undefined {
    return this.list.find((o) => o.kind === 'process' && o.pid === pid);
  }

  byKind(kind: OwnerKind): Owner[] {
    return this.list.filter((o) => o.kind === kind);
  }

  all(): readonly Owner[] {
    return this.list;
  }

  get size(): number {
    return this.list.length;
  }
}
