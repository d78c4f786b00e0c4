/**
 * Microarchitectural Data Sampling (RIDL, ZombieLoad, Fallout) as sampling of the modelled
 * buffers. Documentation/admin-guide/hw-vuln/mds.rst: "Under certain conditions, usually a
 * fault/assist caused by a load operation, data unrelated to the load memory address can be
 * speculatively forwarded from the buffers." and "the MDS vulnerability does not allow the
 * attacker to control the memory target address. As a consequence the attacks are purely
 * sampling based". So each primitive returns the bytes an entry of a buffer holds, without an
 * address (address-less samples, scored by content in score.ts).
 *
 * The model has no timing: an attacker that samples over an interval is taken to obtain every
 * entry holding data at that instant (an upper bound on a real attacker's yield per interval).
 * An entry that was never filled, or was overwritten by a buffer clear (VERW with MD_CLEAR),
 * holds zeros in the model and is skipped: its zeros are not anyone's data.
 *
 * Which buffers, and from which thread, Documentation/arch/x86/mds.rst:
 *  - MFBDS: "Fill buffers are shared between Hyper-Threads so cross thread leakage is possible."
 *  - MLPDS: "Load ports are shared between Hyper-Threads so cross thread leakage is possible."
 *  - MSBDS: "Store buffers are partitioned between Hyper-Threads so cross thread forwarding is
 *    not possible. But if a thread enters or exits a sleep state the store buffer is
 *    repartitioned which can expose data from one thread to the other." The attacker samples
 *    the entries its thread owns (uarch/storebuffer.ts): its own stores (e.g. the kernel's,
 *    before a return to user space without VERW) and, after its sibling went idle, the
 *    sibling's stale entries.
 *  - MDSUM ("an uncacheable load from memory that takes a fault or assist can leave data in a
 *    microarchitectural structure that may later be observed using one of the same methods")
 *    is not a primitive of its own: the buffers are the same three, and the uarch model has no
 *    uncacheable load path (Core.load always goes through the L1D), so nothing puts UC data
 *    there yet.
 *
 * Needs X86_BUG_MDS. A CPU that is X86_BUG_MSBDS_ONLY leaks through the store buffer only
 * (mds.rst: "XEON PHI is not affected by the other MDS variants").
 */
import type { HwThread } from '../uarch/core.ts';
import { LINE_BYTES } from '../uarch/cache.ts';
import {
  ATTACK_MFBDS, ATTACK_MLPDS, ATTACK_MSBDS, SRC_LFB, SRC_LOAD_PORT, SRC_STORE_BUFFER, putU32,
  type SamplingThread, type Samples,
} from './sample.ts';

/** Machine-wide id of thread `index` of `hw`'s core, or -1. */
function threadId(hw: HwThread, index: number): number {
  return index >= 0 && index < hw.core.threads.length ? hw.core.threads[index].id : -1;
}

/** Every fill-buffer entry of `hw`'s core that holds data: 64-byte address-less samples. */
export function sampleFillBuffers(hw: HwThread, attack: number, out: Samples, at: number): number {
  const lfb = hw.core.lfb;
  let got = 0;
  for (let e = 0; e < lfb.entries; e++) {
    const line = lfb.line[e];
    if (line < 0) continue;
    const off = out.add(attack, SRC_LFB, e, -1, line, hw.id, threadId(hw, lfb.owner[e]), at, LINE_BYTES);
    const d = out.data;
    const src = e * LINE_BYTES;
    for (let k = 0; k < LINE_BYTES; k++) d[off + k] = lfb.data[src + k];
    got += LINE_BYTES;
  }
  return got;
}

/** Every load port of `hw`'s core that holds data: 8-byte address-less samples. */
export function sampleLoadPorts(hw: HwThread, attack: number, out: Samples, at: number): number {
  const lp = hw.core.loadPorts;
  let got = 0;
  for (let p = 0; p < lp.ports; p++) {
    const pa = lp.pa[p];
    if (pa < 0) continue;
    const off = out.add(attack, SRC_LOAD_PORT, p, -1, pa, hw.id, threadId(hw, lp.owner[p]), at, 8);
    putU32(out.data, off, lp.lo[p]);
    putU32(out.data, off + 4, lp.hi[p]);
    got += 8;
  }
  return got;
}

/** The store-buffer entries `hw`'s thread owns that hold a store: 8-byte address-less samples. */
export function sampleStoreBuffer(hw: HwThread, attack: number, out: Samples, at: number): number {
  const sb = hw.core.storeBuffer;
  let got = 0;
  const end = sb.end(hw.index);
  for (let i = sb.start(hw.index); i < end; i++) {
    const pa = sb.pa[i];
    if (pa < 0) continue;
    const off = out.add(attack, SRC_STORE_BUFFER, i, -1, pa, hw.id, threadId(hw, sb.owner[i]), at, 8);
    putU32(out.data, off, sb.lo[i]);
    putU32(out.data, off + 4, sb.hi[i]);
    got += 8;
  }
  return got;
}

/** Whether the fill-buffer and load-port variants exist on this CPU. */
function fullMds(t: SamplingThread): boolean {
  return t.cpu.bugs.has('mds') && !t.cpu.bugs.has('msbds_only');
}

/** MFBDS (RIDL, ZombieLoad): sample the core's line fill buffers. A sleeping thread runs nothing. */
export function mfbds(t: SamplingThread, out: Samples, at: number): number {
  if (!fullMds(t) || t.hw.idle) return 0;
  return sampleFillBuffers(t.hw, ATTACK_MFBDS, out, at);
}

/** MLPDS (RIDL): sample the core's load ports. */
export function mlpds(t: SamplingThread, out: Samples, at: number): number {
  if (!fullMds(t) || t.hw.idle) return 0;
  return sampleLoadPorts(t.hw, ATTACK_MLPDS, out, at);
}

/** MSBDS (Fallout): sample the store-buffer entries the attacker's thread owns. */
export function msbds(t: SamplingThread, out: Samples, at: number): number {
  if (!t.cpu.bugs.has('mds') || t.hw.idle) return 0;
  return sampleStoreBuffer(t.hw, ATTACK_MSBDS, out, at);
}
