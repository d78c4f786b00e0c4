/**
 * A physical core and its hardware threads (1, or 2 with SMT).
 *
 * What siblings share and what they do not (Documentation/arch/x86/mds.rst, l1tf.rst):
 *   - the L1D: shared ("Hyperthreads on the affected processors share the L1 Data Cache");
 *   - the fill buffers and load ports: shared ("shared between Hyper-Threads");
 *   - the store buffer: one structure, partitioned between the threads (storebuffer.ts).
 *
 * A buffer clear (`clearBuffers`, the effect of VERW with MD_CLEAR microcode) overwrites the
 * store buffer, the fill buffers and the load ports: mds.rst "the microcode clears the
 * affected CPU buffers when the VERW instruction is executed", the affected buffers being
 * those of MSBDS, MFBDS and MLPDS. It does not touch the L1D.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { L1dCache, LINE_BYTES, type CacheGeometry } from './cache.ts';
import { FillBuffers } from './fillbuffer.ts';
import { LoadPorts } from './loadport.ts';
import { StoreBuffer } from './storebuffer.ts';

const WORDS_PER_LINE = LINE_BYTES >>> 2;

export interface CoreGeometry {
  l1d: CacheGeometry;
  lfbEntries: number;
  loadPorts: number;
  storeBufferEntries: number;
}

export class HwThread {
  /** Set by the machine once every thread exists. */
  sibling: HwThread | null = null;
  idle = false;

  constructor(
    /** Machine-wide id (core-major: core c, thread i has id c * threadsPerCore + i). */
    readonly id: number,
    readonly core: Core,
    /** Index of the thread within its core (0 or 1). */
    readonly index: number,
  ) {}
}

export class Core {
  readonly l1d: L1dCache;
  readonly lfb: FillBuffers;
  readonly loadPorts: LoadPorts;
  readonly storeBuffer: StoreBuffer;
  readonly threads: HwThread[] = [];
  /** The 8 bytes the last load() returned (u32 halves). */
  lastLo = 0;
  lastHi = 0;
  bufferClears = 0;

  constructor(readonly id: number, threadsPerCore: number, firstThreadId: number, geom: CoreGeometry, mem: PhysMemory) {
    this.l1d = new L1dCache(geom.l1d, mem);
    this.lfb = new FillBuffers(geom.lfbEntries);
    this.loadPorts = new LoadPorts(geom.loadPorts);
    this.storeBuffer = new StoreBuffer(geom.storeBufferEntries, threadsPerCore);
    for (let i = 0; i < threadsPerCore; i++) this.threads.push(new HwThread(firstThreadId + i, this, i));
    if (threadsPerCore === 2) {
      this.threads[0].sibling = this.threads[1];
      this.threads[1].sibling = this.threads[0];
    }
  }

  /**
   * Thread `t` (index in the core) loads the 8 bytes at `pa` (rounded down to 8). An L1D miss
   * fills the line from memory and through a fill buffer; the value passes a load port.
   * Returns whether the load hit the L1D; the value is in lastLo/lastHi.
   */
  load(t: number, pa: number): boolean {
    const c = this.l1d;
    const slot = c.access(pa);
    const hit = c.lastHit;
    if (!hit) this.lfb.record(pa - (pa & (LINE_BYTES - 1)), t, c.data32, slot * WORDS_PER_LINE);
    const i = slot * WORDS_PER_LINE + ((pa & (LINE_BYTES - 8)) >>> 2);
    this.lastLo = c.data32[i];
    this.lastHi = c.data32[i + 1];
    this.loadPorts.record(pa - (pa & 7), this.lastLo, this.lastHi, t);
    return hit;
  }

  /**
   * Thread `t` stores 8 bytes at `pa` (8-aligned) that memory already holds (the machine writes
   * memory first): the store passes the store buffer, and the L1D line is updated in place on
   * a hit or filled (write-allocate) on a miss, through a fill buffer.
   */
  storeLocal(t: number, pa: number, lo: number, hi: number): void {
    this.storeBuffer.record(t, pa, lo, hi);
    const c = this.l1d;
    const slot = c.access(pa);
    if (c.lastHit) c.patch64(slot, pa & (LINE_BYTES - 1), lo, hi);
    else this.lfb.record(pa - (pa & (LINE_BYTES - 1)), t, c.data32, slot * WORDS_PER_LINE);
  }

  /** VERW with MD_CLEAR: overwrite store buffer, fill buffers and load ports (mds.rst). */
  clearBuffers(): void {
    this.storeBuffer.clear();
    this.lfb.clear();
    this.loadPorts.clear();
    this.bufferClears++;
  }

  /** Thread `t` enters or leaves idle: the store buffer is repartitioned (mds.rst, MSBDS). */
  setIdle(t: number, idle: boolean): void {
    this.threads[t].idle = idle;
    this.storeBuffer.setIdle(t, idle);
  }
}
