/**
 * The load ports of one core, shared by its hardware threads.
 *
 * Documentation/arch/x86/mds.rst (MLPDS): "Load ports are used to perform load operations
 * from memory or I/O. [...] In some implementations the Load Port can contain stale data from
 * a previous operation which can be forwarded to faulting or assisting loads [...] Load ports
 * are shared between Hyper-Threads so cross thread leakage is possible."
 *
 * Each port keeps the last 8 bytes it loaded (two u32 halves), their physical address and the
 * thread that loaded them. Loads are issued to the ports round-robin.
 */
export class LoadPorts {
  readonly ports: number;
  readonly pa: Float64Array;
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
  readonly owner: Int8Array;
  private next = 0;
  loads = 0;
  clears = 0;

  constructor(ports: number) {
    if (!Number.isInteger(ports) || ports < 1 || ports > 8) throw new RangeError(`load ports: expected 1..8, got ${ports}`);
    this.ports = ports;
    this.pa = new Float64Array(ports).fill(-1);
    this.lo = new Uint32Array(ports);
    this.hi = new Uint32Array(ports);
    this.owner = new Int8Array(ports).fill(-1);
  }

  /** A load of the 8 bytes at `pa` (8-aligned) by thread `owner`. Returns the port used. */
  record(pa: number, lo: number, hi: number, owner: number): number {
    const p = this.next;
    this.next = p + 1 === this.ports ? 0 : p + 1;
    this.pa[p] = pa;
    this.lo[p] = lo;
    this.hi[p] = hi;
    this.owner[p] = owner;
    this.loads++;
    return p;
  }

  /** Overwrite every port (VERW with MD_CLEAR microcode, mds.rst). */
  clear(): void {
    this.pa.fill(-1);
    this.lo.fill(0);
    this.hi.fill(0);
    this.owner.fill(-1);
    this.next = 0;
    this.clears++;
  }

  occupancy(): number {
    let n = 0;
    for (let p = 0; p < this.ports; p++) if (this.pa[p] >= 0) n++;
    return n;
  }
}
