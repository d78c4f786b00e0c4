/**
 * A machine: N cores of 1 or 2 hardware threads over one PhysMemory.
 *
 * Thread ids are core-major (core c, thread i → c * threadsPerCore + i). The operations here
 * are the microarchitectural events the engine drives: a load or store by a thread, VERW, an
 * L1D flush, a thread going idle. They never allocate.
 *
 * Coherence: a store writes memory (the architectural value) and updates the storing core's
 * L1D; every other core's copy of that line is invalidated, as an invalidation-based protocol
 * (MESI) would. Memory changed behind the caches' backs (the model writing PhysMemory
 * directly, e.g. a page reused) is not snooped: those lines stay stale until refilled.
 */
import type { PhysMemory } from '../phys/memory.ts';
import { Core, type CoreGeometry, type HwThread } from './core.ts';
import type { CpuProfile } from './profiles.ts';

export interface MachineConfig extends CoreGeometry {
  cores: number;
  threadsPerCore: number;
  /** CPUID.7.EDX[10] MD_CLEAR: VERW overwrites the CPU buffers (else VERW clears nothing). */
  mdClear: boolean;
  /** CPUID.7.EDX[28] FLUSH_L1D: the IA32_FLUSH_CMD MSR exists. */
  flushL1d: boolean;
  /** Whether the CPU can run 2 threads per core (validation only). */
  smt: boolean;
}

export class Machine {
  readonly cores: Core[] = [];
  readonly threads: HwThread[] = [];
  readonly threadsPerCore: number;
  readonly mdClear: boolean;
  readonly flushL1dMsr: boolean;
  verws = 0;
  l1dFlushes = 0;

  constructor(readonly memory: PhysMemory, config: MachineConfig) {
    const { cores, threadsPerCore } = config;
    if (!Number.isInteger(cores) || cores < 1) {
      throw new RangeError(`machine: the number of cores must be a whole number of at least 1, got ${cores}`);
    }
    if (threadsPerCore !== 1 && threadsPerCore !== 2) {
      throw new RangeError(`machine: a core runs 1 or 2 hardware threads (2 with SMT), got ${threadsPerCore} threads per core`);
    }
    if (threadsPerCore === 2 && !config.smt) {
      throw new RangeError('machine: 2 threads per core requested but this CPU has no SMT');
    }
    this.threadsPerCore = threadsPerCore;
    this.mdClear = config.mdClear;
    this.flushL1dMsr = config.flushL1d;
    for (let c = 0; c < cores; c++) {
      const core = new Core(c, threadsPerCore, c * threadsPerCore, config, memory);
      this.cores.push(core);
      for (const t of core.threads) this.threads.push(t);
    }
    if (cores > 1) {
      // Sharer masks over all L1Ds (L1dCache.cohMasks): per hash of a line (~1/4 of the hashes
      // in use when every L1D is full), one bit per core that holds a line of that hash. A store
      // looks only at the cores whose bit is set, not at every core (a directory, as the snoop
      // filters of many-core parts keep).
      const lines = this.cores[0].l1d.tags.length;
      const size = Math.min(1 << 20, Math.max(1024, 2 ** Math.ceil(Math.log2(cores * lines * 4))));
      const words = Math.ceil(cores / 32);
      const masks = new Uint32Array(size * words);
      for (const core of this.cores) {
        const c = core.l1d;
        if (size <= c.setMask) throw new RangeError(`machine: sharer hash of ${size} is smaller than the L1D's ${c.sets} sets`);
        c.cohMasks = masks;
        c.cohMask = size - 1;
        c.cohWords = words;
        c.cohWord = core.id >>> 5;
        c.cohBit = (1 << (core.id & 31)) >>> 0;
      }
      this.sharers = masks;
      this.sharerWords = words;
    }
  }

  /** The L1Ds' sharer masks (null with one core) and their words per hash. */
  private readonly sharers: Uint32Array | null = null;
  private readonly sharerWords: number = 0;

  /** Drop the line of `pa` from every core's L1D but `core`'s, which holds it (just stored). */
  private invalidateOthers(core: Core, pa: number): void {
    const masks = this.sharers;
    if (masks === null) return;
    const words = this.sharerWords;
    const base = (Math.floor(pa / 64) & (masks.length / words - 1)) * words;
    for (let w = 0; w < words; w++) {
      let bits = masks[base + w];
      if (w === core.id >>> 5) bits &= ~(1 << (core.id & 31));
      while (bits !== 0) {
        const low = bits & -bits;
        this.cores[w * 32 + 31 - Math.clz32(low)].l1d.invalidateLine(pa);
        bits ^= low;
      }
    }
  }

  /** A machine shaped by a CPU profile; threadsPerCore defaults to 2 on SMT CPUs, else 1. */
  static fromProfile(memory: PhysMemory, profile: CpuProfile, opts: { cores: number; threadsPerCore?: number }): Machine {
    if (memory.maxPhysBits !== profile.maxPhysBits) {
      throw new RangeError(`machine: memory has MAXPHYADDR ${memory.maxPhysBits} but ${profile.name} has ${profile.maxPhysBits}`);
    }
    return new Machine(memory, {
      cores: opts.cores,
      threadsPerCore: opts.threadsPerCore ?? (profile.smt ? 2 : 1),
      smt: profile.smt,
      l1d: profile.l1d,
      lfbEntries: profile.lfbEntries,
      loadPorts: profile.loadPorts,
      storeBufferEntries: profile.storeBufferEntries,
      mdClear: profile.features.mdClear,
      flushL1d: profile.features.flushL1d,
    });
  }

  thread(id: number): HwThread {
    const t = this.threads[id];
    if (t === undefined) throw new RangeError(`machine: no hardware thread ${id} (0..${this.threads.length - 1})`);
    return t;
  }

  /** Thread `id` loads 8 bytes at `pa`; returns whether it hit its core's L1D. */
  load(id: number, pa: number): boolean {
    const t = this.threads[id];
    return t.core.load(t.index, pa);
  }

  /** Thread `id` stores 8 bytes (u32 halves) at 8-aligned `pa`. */
  store(id: number, pa: number, lo: number, hi: number): void {
    const t = this.threads[id];
    if ((pa & 7) !== 0) throw new RangeError(`machine: store at 0x${pa.toString(16)} is not 8-byte aligned`);
    this.memory.write32(pa, lo);
    this.memory.write32(pa + 4, hi);
    // The local store first: the line is then in this core's L1D, so invalidateOthers() can tell
    // from the sharer counts whether any other core holds it (the order changes no byte).
    t.core.storeLocal(t.index, pa, lo, hi);
    this.invalidateOthers(t.core, pa);
  }

  /**
   * Thread `id` stores 8 bytes (u32 halves) at 8-aligned `pa` that memory already holds (the
   * caller read them from it): store() without the write-through, which would change no byte.
   * Returns whether the store hit the L1D.
   */
  storeHeld(id: number, pa: number, lo: number, hi: number): boolean {
    const t = this.threads[id];
    t.core.storeLocal(t.index, pa, lo, hi);
    const hit = t.core.l1d.lastHit;
    this.invalidateOthers(t.core, pa);
    return hit;
  }

  /**
   * VERW on thread `id`: with MD_CLEAR microcode it clears its core's CPU buffers; without,
   * "there is no side effect other than a small number of pointlessly wasted CPU cycles"
   * (Documentation/arch/x86/mds.rst). Returns whether the buffers were cleared.
   */
  verw(id: number): boolean {
    this.verws++;
    if (!this.mdClear) return false;
    this.threads[id].core.clearBuffers();
    return true;
  }

  /**
   * An L1D flush on thread `id`'s core (the IA32_FLUSH_CMD write KVM issues before VM entry,
   * arch/x86/kvm/vmx/vmx.c vmx_l1d_flush()). "L1D Flush includes CPU buffer clear to mitigate
   * MDS" (vmx.c, vmx_vcpu_enter_exit) — on CPUs with the MD_CLEAR microcode, so the buffers are
   * cleared too when the CPU has MD_CLEAR and the MSR. Without the MSR the kernel's software
   * fallback only evicts the L1D by reading a 64 KiB buffer; modelled as the same invalidation.
   */
  l1dFlush(id: number): void {
    const core = this.threads[id].core;
    core.l1d.flush();
    this.l1dFlushes++;
    if (this.flushL1dMsr && this.mdClear) core.clearBuffers();
  }

  /** Thread `id` enters (true) or leaves (false) a sleep state. */
  setIdle(id: number, idle: boolean): void {
    const t = this.threads[id];
    t.core.setIdle(t.index, idle);
  }
}
