/**
 * System calls with sizes (`{ event: syscall, name: read, bytes: 65536 }`): the copy between the
 * user buffer and the kernel object touches that many bytes of each, so the cost and the cache
 * pollution grow with the size (issue "Calibration").
 *
 * A sized entry is the table's footprint with every copy touch (the user buffer and the object
 * copied from or to: user pages, page-cache pages, pipe pages, skb data) replaced by one touch of
 * up to a page (64 lines) per 4 KiB of `bytes`, page i of the tenant's I/O buffer and file
 * (sim/world.ts: SIZED_PAGES pages each, wrapping beyond; other kinds draw from their
 * candidates), and
 * the copy's instructions added: bytes / COPY_BYTES_PER_CYCLE (assumption: `rep movsb` in
 * copy_user_enhanced_fast_string moves about 32 bytes per cycle from cache on Skylake-class
 * cores, Intel's optimization manual "Enhanced REP MOVSB"; misses are priced by the L1D model).
 * The measured footprints copied 1 to 64 bytes, so the table's own lines stand for the first 64
 * bytes.
 */
import type { DataTouch, Footprint } from './footprints.ts';

export const SIZED_SYSCALLS: readonly string[] = ['read', 'write', 'pread64', 'pwrite64', 'sendto', 'recvfrom', 'sendmsg', 'recvmsg'];
const COPY_KINDS: ReadonlySet<string> = new Set(['user-pages', 'page-cache', 'pipe-page', 'skb-data']);
export const COPY_BYTES_PER_CYCLE = 32;
const PAGE = 4096;
const LINE = 64;

/** The footprint of `fp` for a copy of `bytes` bytes. */
export function sizedFootprint(fp: Footprint, bytes: number): Footprint {
  const pages = Math.ceil(bytes / PAGE);
  const data: DataTouch[] = [];
  for (const d of fp.data) {
    if (!COPY_KINDS.has(d.kind)) { data.push(d); continue; }
    let left = Math.ceil(bytes / LINE);
    for (let i = 0; i < pages; i++) {
      const lines = Math.min(PAGE / LINE, left);
      left -= lines;
      data.push({ ...d, lines, seq: i, source: `${d.source}; sized: ${bytes} bytes, page ${i} (sim/sized.ts)` });
    }
  }
  const extra = Math.max(0, (bytes - LINE) / COPY_BYTES_PER_CYCLE);
  return {
    ...fp, data,
    insns: { count: fp.insns.count + extra, source: `${fp.insns.source}; + ${bytes} bytes / ${COPY_BYTES_PER_CYCLE} per cycle (sim/sized.ts)` },
    source: `${fp.source}; sized to ${bytes} bytes`,
  };
}
