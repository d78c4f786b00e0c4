/**
 * `npx tsx bench/kernel.ts`: how long booting the kernel page-table model takes and how much
 * page-table memory it builds, for a machine with 1 TiB of RAM (a synthetic e820 with the
 * usual 32-bit PCI hole: [4 KiB, 639 KiB), [1 MiB, 3 GiB), [4 GiB, 1 TiB + 1 GiB)), with
 * GB pages and without (nogbpages: half a million 2 MiB entries). Also the 512 MiB QEMU
 * machine of the captures for reference. Writes bench/kernel-results.json.
 *
 * Each case keeps its best of ROUNDS runs (the first runs warm the JIT).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootKernel, type KernelOptions } from '../src/linux/kernel.ts';

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = 5;
const G = 1n << 30n;
const TB_RAM = [
  { start: 0x1000n, end: 0x9fc00n },
  { start: 0x100000n, end: 3n * G },
  { start: 4n * G, end: 1025n * G },
];

interface Case { name: string; opts: KernelOptions }
const cases: Case[] = [
  { name: 'tib_gbpages', opts: { ram: TB_RAM, cpu: { gbpages: true } } },
  { name: 'tib_nogbpages', opts: { ram: TB_RAM, cmdline: 'nogbpages' } },
  { name: 'tib_gbpages_la57', opts: { ram: TB_RAM, levels: 5, cpu: { gbpages: true, la57: true } } },
  { name: 'qemu_512m', opts: {} },
];

const results: Record<string, unknown> = {};
for (const c of cases) {
  let best = Infinity;
  let last: ReturnType<typeof bootKernel> | null = null;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    last = bootKernel(c.opts);
    const ms = performance.now() - t0;
    if (ms < best) best = ms;
  }
  const s = last!.stats;
  results[c.name] = {
    boot_ms: Math.round(best * 10) / 10,
    table_pages: s.tablePages,
    table_bytes: s.tableBytes,
    direct_map_kb: { k4: s.directMap.k4 / 1024, m2: s.directMap.m2 / 1024, g1: s.directMap.g1 / 1024 },
    direct_map_tables: s.tables.kernel.direct_map ?? 0,
    splits: s.splits,
    frames_backed: last!.mem.frameCount,
  };
  console.log(`${c.name.padEnd(18)} ${best.toFixed(1).padStart(8)} ms  ${String(s.tablePages).padStart(6)} table pages (${(s.tableBytes / 1048576).toFixed(2)} MiB)  DirectMap 4k/2M/1G kB ${s.directMap.k4 / 1024}/${s.directMap.m2 / 1024}/${s.directMap.g1 / 1024}`);
}
results.rounds = ROUNDS;
results.node = process.version;
writeFileSync(join(here, 'kernel-results.json'), JSON.stringify(results, null, 2) + '\n');
