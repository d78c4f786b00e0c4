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
 * the copy's or clear's loop added as cycles of its own (Footprint.loopCycles: a loop is hot code
 * whatever ran before, so it is priced by its throughput, not by the path's cycles per
 * instruction):
 *  - a copy: bytes / COPY_BYTES_PER_CYCLE (assumption: `rep movsb` in
 *    copy_user_enhanced_fast_string moves about 32 bytes per cycle from cache on Skylake-class
 *    cores, Intel's optimization manual "Enhanced REP MOVSB"; misses are priced by the L1D model);
 *  - a clear: a footprint that writes the user buffer from no source object (syscall:read is the
 *    measured read of /dev/zero: read_iter_zero → iov_iter_zero → clear_user, drivers/char/mem.c).
 *    Up to v6.1 __clear_user (arch/x86/lib/usercopy_64.c) is a loop of `movq $0,(%[dst])`,
 *    `addq $8,%[dst]`, `decl %ecx; jnz`: one store an iteration on the `addq` chain of one cycle,
 *    so 8 bytes a cycle (CLEAR_BYTES_PER_CYCLE) on a core that retires a store a cycle; v6.2's
 *    "x86/clear_user: Make it faster" moved it to `rep stosb`.
 * The measured footprints copied 1 to 64 bytes, so the table's own lines and instructions stand
 * for the first 64 bytes. The kenjo/kpti_bench figures (dd from /dev/zero at 18 block sizes) test
 * the clear rate and the L1D spill beyond 32 KiB.
 */
import type { DataTouch, Footprint } from './footprints.ts';

export const SIZED_SYSCALLS: readonly string[] = ['read', 'write', 'pread64', 'pwrite64', 'sendto', 'recvfrom', 'sendmsg', 'recvmsg'];
const COPY_KINDS: ReadonlySet<string> = new Set(['user-pages', 'page-cache', 'pipe-page', 'skb-data']);
export const COPY_BYTES_PER_CYCLE = 32;
export const CLEAR_BYTES_PER_CYCLE = 8;
/** The kinds a copy reads from (the other side of the user buffer). */
const SOURCE_KINDS: ReadonlySet<string> = new Set(['page-cache', 'pipe-page', 'skb-data']);
const PAGE = 4096;
const LINE = 64;

/** The footprint of `fp` for a copy of `bytes` bytes. */
export function sizedFootprint(fp: Footprint, bytes: number): Footprint {
  // A measured native base (sim/event-base.ts) replaces the instructions, so the copy's would be lost.
  if (fp.base !== null) throw new RangeError(`${fp.key} with bytes: its footprint carries a measured native base (${fp.base.source}), which says nothing of the cost per byte; give the base or the size, not both`);
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
  const clear = !fp.data.some((d) => SOURCE_KINDS.has(d.kind)) && fp.data.some((d) => d.kind === 'user-pages' && d.access === 'write');
  const loop = Math.max(0, bytes - LINE) / (clear ? CLEAR_BYTES_PER_CYCLE : COPY_BYTES_PER_CYCLE);
  const how = clear ? `${CLEAR_BYTES_PER_CYCLE} bytes a cycle (__clear_user)` : `${COPY_BYTES_PER_CYCLE} bytes a cycle (copy)`;
  return {
    ...fp, data, loopCycles: fp.loopCycles + loop,
    source: `${fp.source}; sized to ${bytes} bytes, its loop at ${how} (sim/sized.ts)`,
  };
}
