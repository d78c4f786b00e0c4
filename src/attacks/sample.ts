/**
 * What an attack primitive returns: bytes it read out of a modelled structure, with their
 * provenance. One caller-owned `Samples` buffer collects them; primitives append and never
 * allocate once the buffer has grown to its working size.
 *
 * A sample is one contiguous chunk of bytes. Two kinds exist, and the scorer (score.ts) treats
 * them differently:
 *   - address-known (`addr >= 0`): the attacker chose the address (L1TF, Meltdown, Spectre v1),
 *     so it knows which physical byte each value belongs to;
 *   - address-less (`addr = -1`): sampled data (MDS, TAA). mds.rst: "Contrary to other
 *     speculation based vulnerabilities the MDS vulnerability does not allow the attacker to
 *     control the memory target address." `truePa` still records where the model knows the bytes
 *     came from, for reports only; scoring never reads it.
 *
 * Columns (sample i):
 *   start, len    Int32Array   where its bytes are in `data`, and how many
 *   addr          Float64Array physical address of the first byte as the attacker knows it, or -1
 *   truePa        Float64Array physical address the structure entry held (ground truth), or -1
 *   attack        Uint8Array   ATTACK_* code
 *   source        Uint8Array   SRC_* code: which structure the bytes came out of
 *   entry         Int16Array   index of the entry in that structure (L1D slot, LFB entry, port…)
 *   attacker      Int32Array   machine-wide id of the hardware thread that ran the attack
 *   from          Int32Array   machine-wide id of the thread whose operation left the data, or -1
 *   at            Float64Array the time (cycle or event index) the caller passed in
 */
import type { HwThread } from '../uarch/core.ts';
import type { BugName } from '../uarch/vulnerability.ts';
import type { Mmu } from '../x86/mmu.ts';

export const ATTACK_L1TF_NATIVE = 0;
export const ATTACK_L1TF_GUEST = 1;
export const ATTACK_MFBDS = 2;
export const ATTACK_MLPDS = 3;
export const ATTACK_MSBDS = 4;
export const ATTACK_TAA = 5;
export const ATTACK_MELTDOWN = 6;
export const ATTACK_SPECTRE_V1 = 7;
export const ATTACK_ROP = 8;
/** By code. */
export const ATTACK_NAMES = ['l1tf-native', 'l1tf-guest', 'mfbds', 'mlpds', 'msbds', 'taa', 'meltdown', 'spectre-v1', 'rop'] as const;
export type AttackName = (typeof ATTACK_NAMES)[number];

export const SRC_L1D = 0;
/** A load that missed the L1D and was served from memory (through a fill). */
export const SRC_MEMORY = 1;
export const SRC_LFB = 2;
export const SRC_LOAD_PORT = 3;
export const SRC_STORE_BUFFER = 4;
export const SOURCE_NAMES = ['l1d', 'memory', 'fill-buffer', 'load-port', 'store-buffer'] as const;

/** What a primitive needs to know about the silicon: a CpuProfile satisfies it. */
export interface CpuVulnerabilities {
  readonly name: string;
  /** The X86_BUG_* set (uarch/vulnerability.ts): whether a mechanism exists at all. */
  readonly bugs: ReadonlySet<BugName>;
  /** MAXPHYADDR; also the width of the L1D's physical tags (see l1tf.ts). */
  readonly maxPhysBits: number;
}

/** A hardware thread as an attacker or victim: its core's structures and its MMU (current CR3, CPL). */
export interface AttackThread {
  readonly cpu: CpuVulnerabilities;
  readonly hw: HwThread;
  readonly mmu: Mmu;
}

/** A thread that only samples buffers (MDS, TAA): no translation involved. */
export interface SamplingThread {
  readonly cpu: CpuVulnerabilities;
  readonly hw: HwThread;
}

export class Samples {
  count = 0;
  /** Bytes of `data` in use. */
  used = 0;
  data: Uint8Array;
  start: Int32Array;
  len: Int32Array;
  addr: Float64Array;
  truePa: Float64Array;
  attack: Uint8Array;
  source: Uint8Array;
  entry: Int16Array;
  attacker: Int32Array;
  from: Int32Array;
  at: Float64Array;

  constructor(capacity = 64, byteCapacity = 4096) {
    this.data = new Uint8Array(byteCapacity);
    this.start = new Int32Array(capacity);
    this.len = new Int32Array(capacity);
    this.addr = new Float64Array(capacity);
    this.truePa = new Float64Array(capacity);
    this.attack = new Uint8Array(capacity);
    this.source = new Uint8Array(capacity);
    this.entry = new Int16Array(capacity);
    this.attacker = new Int32Array(capacity);
    this.from = new Int32Array(capacity);
    this.at = new Float64Array(capacity);
  }

  /**
   * Append a sample of `n` bytes and return the offset in `data` where the caller writes them.
   * Grows (doubling) only when full, so a reused buffer stops allocating.
   */
  add(attack: number, source: number, entry: number, addr: number, truePa: number, attacker: number, from: number, at: number, n: number): number {
    if (this.count === this.start.length) this.growRows();
    if (this.used + n > this.data.length) this.growBytes(this.used + n);
    const i = this.count++;
    const off = this.used;
    this.used += n;
    this.start[i] = off;
    this.len[i] = n;
    this.addr[i] = addr;
    this.truePa[i] = truePa;
    this.attack[i] = attack;
    this.source[i] = source;
    this.entry[i] = entry;
    this.attacker[i] = attacker;
    this.from[i] = from;
    this.at[i] = at;
    return off;
  }

  /** Drop every sample, keeping the storage. */
  clear(): void {
    this.count = 0;
    this.used = 0;
  }

  /** The bytes of sample i (a copy: for tests and reports). */
  bytesOf(i: number): Uint8Array {
    return this.data.slice(this.start[i], this.start[i] + this.len[i]);
  }

  /** Total bytes held by the samples that satisfy `pick` (all by default). */
  totalBytes(pick?: (i: number) => boolean): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) if (!pick || pick(i)) n += this.len[i];
    return n;
  }

  private growRows(): void {
    const n = this.start.length * 2;
    const g = <T extends Int32Array | Float64Array | Uint8Array | Int16Array>(a: T): T => {
      const b = new (a.constructor as new (len: number) => T)(n);
      b.set(a);
      return b;
    };
    this.start = g(this.start);
    this.len = g(this.len);
    this.addr = g(this.addr);
    this.truePa = g(this.truePa);
    this.attack = g(this.attack);
    this.source = g(this.source);
    this.entry = g(this.entry);
    this.attacker = g(this.attacker);
    this.from = g(this.from);
    this.at = g(this.at);
  }

  private growBytes(need: number): void {
    const b = new Uint8Array(Math.max(need, this.data.length * 2));
    b.set(this.data.subarray(0, this.used));
    this.data = b;
  }
}

/** Write a u32 little endian at data[off..off+4). */
export function putU32(data: Uint8Array, off: number, v: number): void {
  data[off] = v & 0xff;
  data[off + 1] = (v >>> 8) & 0xff;
  data[off + 2] = (v >>> 16) & 0xff;
  data[off + 3] = (v >>> 24) & 0xff;
}
