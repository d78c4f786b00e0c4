/**
 * What `kasi capture` collects from a running Linux host, as the files of a capture folder
 * (the layout of test/fixtures/captures/*, README there): plain bytes and notes, nothing of the
 * model. Every path is read under `root` ("/" on a real host; a fake root folder in tests).
 *
 *   kallsyms.txt.gz     /proc/kallsyms, gzip-compressed
 *   iomem.txt           /proc/iomem
 *   cmdline.txt         /proc/cmdline
 *   cpuinfo.txt         the first processor block of /proc/cpuinfo (up to its blank line)
 *   meminfo.txt         /proc/meminfo
 *   vulnerabilities.txt /sys/devices/system/cpu/vulnerabilities/*, one `name: content` line each, in `ls` order
 *   config.gz           /proc/config.gz (CONFIG_IKCONFIG_PROC) as is, else /boot/config-$(uname -r) compressed
 *   version.txt         /proc/version (which kernel this is)
 *   ptdump-kernel.txt, ptdump-current_kernel.txt, ptdump-current_user.txt
 *                       /sys/kernel/debug/page_tables/* (CONFIG_PTDUMP_DEBUGFS, arch/x86/mm/debug_pagetables.c;
 *                       before 4.15 the one file /sys/kernel/debug/kernel_page_tables)
 *   capture.json        what was read from where, and what could not be read and why
 *
 * Without root the kernel hides what kasi needs most: /proc/kallsyms prints every address as 0
 * (kptr_restrict, lib/vsprintf.c restricted_pointer(); kernel/kallsyms.c kallsyms_show_value()),
 * /proc/iomem prints 0-0 ranges to a reader without CAP_SYS_ADMIN (kernel/resource.c r_show()),
 * and debugfs is mode 0700. Such a file is not written (a capture of zeros would boot a wrong
 * model); `missing` says why, and for kallsyms /boot/System.map-$(uname -r) is taken instead when
 * it can be read (the link-time addresses: right without KASLR).
 */
import { readdirSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { InputError, readLimited } from './files.ts';
import { LIMITS } from './limits.ts';

export const CAPTURE_FORMAT = 'kasi-capture/1';

export interface CapturedFile {
  /** The file's name in the capture folder. */
  name: string;
  data: Buffer;
  /** The host path it was read from (under the root). */
  from: string;
}

export interface NotCaptured {
  /** The capture file that is absent or incomplete. */
  name: string;
  from: string;
  why: string;
}

export interface HostCapture {
  files: CapturedFile[];
  missing: NotCaptured[];
  /** `uname -r` of the captured kernel (/proc/sys/kernel/osrelease), or null when unreadable. */
  release: string | null;
}

type Read = { ok: true; data: Buffer } | { ok: false; why: string };

/** A host file's bytes, or why it cannot be had (absent, no permission, too big). */
function tryRead(path: string): Read {
  try {
    return { ok: true, data: readLimited(path, LIMITS.textBytes) };
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    const m = /cannot read: (\w+)/.exec(err.message);
    const code = m?.[1];
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, why: 'not present' };
    if (code === 'EACCES' || code === 'EPERM') return { ok: false, why: `not readable (${code}: run kasi capture as root)` };
    return { ok: false, why: err.message.slice(path.length + 2) };
  }
}

/** Every address field zero: what a reader without the right to see them gets. */
function allZeroKallsyms(text: string): boolean {
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]+)\s/.exec(line);
    if (m === null) continue;
    if (!/^0+$/.test(m[1])) return false;
    n++;
  }
  return n > 0;
}

function allZeroIomem(text: string): boolean {
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*([0-9a-fA-F]+)-([0-9a-fA-F]+) :/.exec(line);
    if (m === null) continue;
    if (!/^0+$/.test(m[1]) || !/^0+$/.test(m[2])) return false;
    n++;
  }
  return n > 0;
}

/** The first processor block of /proc/cpuinfo: its lines up to the first blank line, with that line's newline. */
export function firstCpuinfoBlock(text: string): string {
  const lines = text.split('\n');
  let start = 0;
  while (start < lines.length && lines[start].trim() === '') start++;
  let end = start;
  while (end < lines.length && lines[end].trim() !== '') end++;
  return lines.slice(start, end).map((l) => `${l}\n`).join('');
}

export function collectHostCapture(root: string): HostCapture {
  const files: CapturedFile[] = [];
  const missing: NotCaptured[] = [];
  const at = (p: string) => join(root, p);
  const add = (name: string, data: Buffer, from: string) => files.push({ name, data, from });

  const rel = tryRead(at('proc/sys/kernel/osrelease'));
  const release = rel.ok ? rel.data.toString('utf8').trim() || null : root === '/' ? osRelease() : null;

  // kallsyms: the image layout. Zeroed addresses are refused; System.map is the fallback.
  const ks = tryRead(at('proc/kallsyms'));
  let ksWhy: string | null = null;
  if (!ks.ok) ksWhy = ks.why;
  else if (allZeroKallsyms(ks.data.toString('latin1'))) ksWhy = 'every address reads 0 (kernel.kptr_restrict, or not root): not written';
  else add('kallsyms.txt.gz', gzipSync(ks.data), at('proc/kallsyms'));
  if (ksWhy !== null) {
    const map = release === null ? null : at(`boot/System.map-${release}`);
    const sm = map === null ? null : tryRead(map);
    if (sm !== null && sm.ok && !allZeroKallsyms(sm.data.toString('latin1'))) {
      add('System.map', sm.data, map!);
      missing.push({ name: 'kallsyms.txt.gz', from: at('proc/kallsyms'), why: `${ksWhy}; ${map} taken instead (link-time addresses: right only without KASLR)` });
    } else {
      missing.push({ name: 'kallsyms.txt.gz', from: at('proc/kallsyms'), why: `${ksWhy}; kasi kernel --capture will need --system-map (the System.map of this kernel)` });
    }
  }

  const io = tryRead(at('proc/iomem'));
  if (!io.ok) missing.push({ name: 'iomem.txt', from: at('proc/iomem'), why: io.why });
  else if (allZeroIomem(io.data.toString('latin1'))) missing.push({ name: 'iomem.txt', from: at('proc/iomem'), why: 'every range reads 0-0 (not root): not written; kasi kernel --capture will need --iomem' });
  else add('iomem.txt', io.data, at('proc/iomem'));

  for (const [name, path] of [['cmdline.txt', 'proc/cmdline'], ['meminfo.txt', 'proc/meminfo'], ['version.txt', 'proc/version']] as const) {
    const r = tryRead(at(path));
    if (r.ok) add(name, r.data, at(path));
    else missing.push({ name, from: at(path), why: r.why });
  }

  const cpu = tryRead(at('proc/cpuinfo'));
  if (!cpu.ok) missing.push({ name: 'cpuinfo.txt', from: at('proc/cpuinfo'), why: cpu.why });
  else add('cpuinfo.txt', Buffer.from(firstCpuinfoBlock(cpu.data.toString('utf8'))), `${at('proc/cpuinfo')} (the first processor)`);

  collectVulnerabilities(at('sys/devices/system/cpu/vulnerabilities'), add, missing);
  collectConfig(root, release, add, missing);
  collectPtdump(root, add, missing);
  return { files, missing, release };
}

function collectVulnerabilities(dir: string, add: (n: string, d: Buffer, f: string) => void, missing: NotCaptured[]): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort(); // ls order (C locale: the names are lower case and '_')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    missing.push({ name: 'vulnerabilities.txt', from: dir, why: code === 'ENOENT' ? 'not present (a kernel before 4.15, or no sysfs)' : `not readable (${code})` });
    return;
  }
  const lines: string[] = [];
  for (const n of names) {
    const r = tryRead(join(dir, n));
    if (r.ok) lines.push(`${n}: ${r.data.toString('utf8').replace(/\n+$/, '')}\n`);
    else missing.push({ name: 'vulnerabilities.txt', from: join(dir, n), why: r.why });
  }
  if (lines.length > 0) add('vulnerabilities.txt', Buffer.from(lines.join('')), `${dir}/*`);
}

function collectConfig(root: string, release: string | null, add: (n: string, d: Buffer, f: string) => void, missing: NotCaptured[]): void {
  const proc = join(root, 'proc/config.gz');
  const pc = tryRead(proc);
  if (pc.ok) { add('config.gz', pc.data, proc); return; }
  const boot = release === null ? null : join(root, `boot/config-${release}`);
  const bc = boot === null ? null : tryRead(boot);
  if (bc !== null && bc.ok) { add('config.gz', bc.data[0] === 0x1f && bc.data[1] === 0x8b ? bc.data : gzipSync(bc.data), boot!); return; }
  missing.push({ name: 'config.gz', from: boot === null ? proc : `${proc} or ${boot}`, why: `${pc.why}${bc !== null && !bc.ok ? `; ${boot}: ${bc.why}` : release === null ? '; no kernel release to find /boot/config-RELEASE' : ''}` });
}

function collectPtdump(root: string, add: (n: string, d: Buffer, f: string) => void, missing: NotCaptured[]): void {
  const dir = join(root, 'sys/kernel/debug/page_tables');
  let got = 0;
  let why: string | null = null;
  for (const f of ['kernel', 'current_kernel', 'current_user']) {
    const r = tryRead(join(dir, f));
    if (r.ok) { add(`ptdump-${f}.txt`, r.data, join(dir, f)); got++; } else why ??= r.why;
  }
  if (got > 0) return;
  const old = join(root, 'sys/kernel/debug/kernel_page_tables'); // CONFIG_X86_PTDUMP before 4.15
  const r = tryRead(old);
  if (r.ok) { add('ptdump-kernel.txt', r.data, old); return; }
  missing.push({
    name: 'ptdump-*.txt', from: dir,
    why: why === 'not present' ? 'not present (no CONFIG_PTDUMP_DEBUGFS, or debugfs not mounted at /sys/kernel/debug)' : why ?? 'not present',
  });
}

/** capture.json: the files, where each came from, what is missing. */
export function captureManifest(c: HostCapture, root: string): string {
  return `${JSON.stringify({
    format: CAPTURE_FORMAT,
    root,
    release: c.release,
    files: c.files.map((f) => ({ name: f.name, from: f.from, bytes: f.data.length })),
    missing: c.missing,
  }, null, 2)}\n`;
}
