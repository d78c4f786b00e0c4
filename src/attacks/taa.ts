/**
 * TSX Asynchronous Abort: the MDS buffers, sampled from inside an aborting TSX transaction.
 *
 * Documentation/admin-guide/hw-vuln/tsx_async_abort.rst: "When performing store, load or L1
 * refill operations, processors write data into temporary microarchitectural structures
 * (buffers). [...] Immediately after an uncompleted asynchronous abort, certain speculatively
 * executed loads may read data from those internal buffers and pass it to dependent operations."
 * "Because the buffers are potentially shared between Hyper-Threads cross Hyper-Thread attacks
 * are possible." and "The victim of a malicious actor does not need to make use of TSX. Only the
 * attacker needs to begin a TSX transaction".
 *
 * So: the same three structures as MDS (fill buffers, load ports, the store-buffer entries the
 * attacker's thread owns), on a CPU with X86_BUG_TAA, and only while TSX is enabled: with TSX
 * off (IA32_TSX_CTRL.RTM_DISABLE, tsx=off) there is no transaction to abort. Whether TSX is on is
 * machine state the uarch model does not hold yet, so the caller passes it.
 */
import { ATTACK_TAA, type SamplingThread, type Samples } from './sample.ts';
import { sampleFillBuffers, sampleLoadPorts, sampleStoreBuffer } from './mds.ts';

export function taa(t: SamplingThread, tsxEnabled: boolean, out: Samples, at: number): number {
  if (!t.cpu.bugs.has('taa') || !tsxEnabled || t.hw.idle) return 0;
  return sampleFillBuffers(t.hw, ATTACK_TAA, out, at) + sampleLoadPorts(t.hw, ATTACK_TAA, out, at) + sampleStoreBuffer(t.hw, ATTACK_TAA, out, at);
}
