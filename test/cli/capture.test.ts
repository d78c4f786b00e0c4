/**
 * `kasi capture` against a fake root folder built from a shared capture (never the machine the
 * test runs on): /proc/kallsyms, iomem, cmdline, cpuinfo (two processors), meminfo, version,
 * osrelease, config.gz, the sysfs vulnerabilities files, and debugfs page_tables files made from
 * the capture's own page tables. The truth is the capture folder itself: each collected file must
 * be its file byte for byte, and `kasi kernel --capture` / `kasi vulns --capture` on the output
 * must say what they say on the capture. A host cannot give kernel.json.gz (QEMU's snapshot of
 * the page-table pages), so `kasi kernel` is compared with the capture's host-side files, and with
 * the whole capture on every line its page tables do not decide.
 * Without root: zeroed kallsyms and iomem are not written, System.map is taken, the rest goes on.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { kasiRun, ROOT } from '../helpers/kasi-cli.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { runCapture } from '../../src/cli/commands/capture.ts';
import { vulnsRun } from '../../src/cli/commands/vulns.ts';
import { summary } from '../../src/cli/commands/kernel.ts';
import { layoutFromKernelValues } from '../../src/report/markers.ts';
import { ptdump } from '../../src/report/ptdump.ts';
import { loadPtImage } from '../../src/x86/ptimage.ts';
import { parsePtdump } from '../../src/formats/ptdump.ts';
import { loadIomem } from '../../src/formats/iomem.ts';
import { modelFromCapture } from '../../src/linux/capture.ts';
import { markerLayout } from '../../src/linux/compare.ts';

const CAP = join(ROOT, 'test/fixtures/captures/la48-pti-nokaslr');
const TMP = mkdtempSync(join(tmpdir(), 'kasi-capture-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const RELEASE = '6.1.0-56-amd64'; // kernel-package.txt: linux-image-6.1.0-56-amd64

const kasi = (...args: string[]) => kasiRun(args);

const put = (root: string, path: string, data: string | Buffer) => {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), data);
};

/** A root folder a capture of CAP would have been read from. */
function fakeRoot(name: string, edit?: (root: string) => void): string {
  const r = join(TMP, name);
  put(r, 'proc/kallsyms', gunzipSync(readFileSync(join(CAP, 'kallsyms.txt.gz'))));
  for (const [from, to] of [['iomem.txt', 'proc/iomem'], ['cmdline.txt', 'proc/cmdline'], ['meminfo.txt', 'proc/meminfo'], ['config.gz', 'proc/config.gz']]) {
    put(r, to, readFileSync(join(CAP, from)));
  }
  const cpu0 = readFileSync(join(CAP, 'cpuinfo.txt'), 'utf8');
  put(r, 'proc/cpuinfo', `${cpu0}\n${cpu0.replace(/^processor\t: 0/, 'processor\t: 1')}\n`); // /proc/cpuinfo ends each block with a blank line
  put(r, 'proc/version', 'Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2\n');
  put(r, 'proc/sys/kernel/osrelease', `${RELEASE}\n`);
  for (const l of readFileSync(join(CAP, 'vulnerabilities.txt'), 'utf8').trimEnd().split('\n')) {
    const i = l.indexOf(': ');
    put(r, `sys/devices/system/cpu/vulnerabilities/${l.slice(0, i)}`, `${l.slice(i + 2)}\n`); // sysfs adds the newline
  }
  const img = loadPtImage(join(CAP, 'kernel.json.gz'));
  for (const [root, file] of [['kernel', 'current_kernel'], ['user', 'current_user']]) {
    put(r, `sys/kernel/debug/page_tables/${file}`, ptdump(img.mem, img.roots[root], layoutFromKernelValues(img.paging_levels, img.kernel_values)).text);
  }
  edit?.(r);
  return r;
}

/** The capture's files a host can give (all but QEMU's snapshots and logs). */
function hostPart(): string {
  const d = join(TMP, 'host-part');
  if (existsSync(d)) return d;
  mkdirSync(d);
  for (const f of ['kallsyms.txt.gz', 'iomem.txt', 'cmdline.txt', 'cpuinfo.txt', 'meminfo.txt', 'vulnerabilities.txt', 'config.gz']) copyFileSync(join(CAP, f), join(d, f));
  return d;
}

const paths = (s: string, dir: string) => s.split(dir).join('DIR');
const CAP_HOST = hostPart();
const models = new Map<string, ReturnType<typeof modelFromCapture>>();
const model = (dir: string) => { if (!models.has(dir)) models.set(dir, modelFromCapture(dir)); return models.get(dir)!; };
const kernelText = (dir: string) => summary(model(dir).model, model(dir).notes);

describe('kasi capture --root FAKE', () => {
  it('collects the capture\'s files byte for byte; kasi kernel and kasi vulns read the output as they read the capture', async () => {
    const fake = fakeRoot('fake');
    const out = join(TMP, 'out');
    // With it, the CLI's exit status for a vulns comparison that differs (1, as kasi kernel --compare): mitigations=off against the capture's own line.
    const [cap, vDiff] = await Promise.all([kasi('capture', '--root', fake, '--out', out), kasi('vulns', '--capture', CAP, '--cmdline', 'mitigations=off')]);
    expect(vDiff.status, vDiff.stderr).toBe(1);
    expect(vDiff.stdout).toMatch(/^l1tf: Not affected\n/);
    expect(vDiff.stdout).toContain('#   spectre_v1: DIFFERS: the capture says');
    expect(cap.status, cap.stderr).toBe(0);
    expect(cap.stderr).toBe(''); // everything was there
    expect(cap.stdout).toMatch(new RegExp(`^${out}: 10 files from ${fake} \\(Linux ${RELEASE}\\)\\n`));
    expect(readdirSync(out).sort()).toEqual(['capture.json', 'cmdline.txt', 'config.gz', 'cpuinfo.txt', 'iomem.txt', 'kallsyms.txt.gz', 'meminfo.txt',
      'ptdump-current_kernel.txt', 'ptdump-current_user.txt', 'version.txt', 'vulnerabilities.txt']);
    // Buffer.equals, not toEqual: vitest's deep equality takes half a minute over kallsyms' 2.5 MB.
    const same = (a: Buffer, b: Buffer) => a.equals(b);
    for (const f of ['iomem.txt', 'cmdline.txt', 'meminfo.txt', 'config.gz', 'vulnerabilities.txt']) expect(same(readFileSync(join(out, f)), readFileSync(join(CAP, f))), f).toBe(true);
    expect(readFileSync(join(out, 'cpuinfo.txt'), 'utf8')).toBe(readFileSync(join(CAP, 'cpuinfo.txt'), 'utf8')); // the first processor only
    expect(same(gunzipSync(readFileSync(join(out, 'kallsyms.txt.gz'))), gunzipSync(readFileSync(join(CAP, 'kallsyms.txt.gz'))))).toBe(true);
    expect(same(readFileSync(join(out, 'ptdump-current_user.txt')), readFileSync(join(fake, 'sys/kernel/debug/page_tables/current_user')))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(out, 'capture.json'), 'utf8'));
    expect(manifest).toMatchObject({ format: 'kasi-capture/1', root: fake, release: RELEASE, missing: [] });

    const host = CAP_HOST;
    // What `kasi kernel --capture DIR` prints (the command's own code, in process: a boot under the CLI costs seconds more).
    const kOut = { stdout: kernelText(out) };
    const kHost = { stdout: kernelText(host) };
    const kCap = { stdout: kernelText(CAP) };
    expect(paths(kOut.stdout, out)).toBe(paths(kHost.stdout, host));
    // With the page tables (kernel.json.gz) the capture adds the ESPFIX page and per-CPU areas of that boot; every line before is the same.
    const upTo = (s: string) => s.slice(0, s.indexOf('  ESPFIX page_random'));
    expect(upTo(kOut.stdout).length).toBeGreaterThan(500);
    expect(upTo(kOut.stdout)).toBe(upTo(kCap.stdout));
    expect(parsePtdump(readFileSync(join(out, 'ptdump-current_kernel.txt'), 'utf8'), 'k').regions.length).toBeGreaterThan(5);

    const vOut = vulnsRun({ capture: out });
    expect(paths(vOut.text, out)).toBe(paths(vulnsRun({ capture: CAP }).text, CAP));
    expect(vOut.ok).toBe(true);
    expect(vOut.text).toContain('5 of 5 modelled files the same');
  }, 60_000);

  it('without root: zeroed kallsyms and iomem are not written, System.map is taken, debugfs is said missing, the rest is collected', async () => {
    const fake = fakeRoot('fake-user', (r) => {
      const ks = readFileSync(join(r, 'proc/kallsyms'), 'utf8');
      put(r, 'proc/kallsyms', ks.replace(/^[0-9a-f]{16}/gm, '0000000000000000')); // kptr_restrict
      put(r, `boot/System.map-${RELEASE}`, ks.replace(/^([0-9a-f]{16}) A /gm, '$1 D '));
      put(r, 'proc/iomem', readFileSync(join(r, 'proc/iomem'), 'utf8').replace(/[0-9a-f]+-[0-9a-f]+ :/g, '00000000-00000000 :')); // r_show() without CAP_SYS_ADMIN
      rmSync(join(r, 'sys/kernel/debug'), { recursive: true });
      rmSync(join(r, 'proc/config.gz'));
      put(r, `boot/config-${RELEASE}`, gunzipSync(readFileSync(join(CAP, 'config.gz'))));
    });
    const out = join(TMP, 'out-user');
    const r = runCapture({ root: fake, out });
    expect(readdirSync(out).sort()).toEqual(['System.map', 'capture.json', 'cmdline.txt', 'config.gz', 'cpuinfo.txt', 'meminfo.txt', 'version.txt', 'vulnerabilities.txt']);
    expect(r.warnings).toEqual([
      `kasi capture: could not read ${fake}/proc/kallsyms: every address reads 0 (kernel.kptr_restrict, or not root): not written; ${fake}/boot/System.map-${RELEASE} taken instead (link-time addresses: right only without KASLR)`,
      `kasi capture: could not read ${fake}/proc/iomem: every range reads 0-0 (not root): not written; kasi kernel --capture will need --iomem`,
      `kasi capture: could not read ${fake}/sys/kernel/debug/page_tables: not present (no CONFIG_PTDUMP_DEBUGFS, or debugfs not mounted at /sys/kernel/debug)`,
    ]);
    expect(gunzipSync(readFileSync(join(out, 'config.gz'))).equals(gunzipSync(readFileSync(join(CAP, 'config.gz'))))).toBe(true); // /boot/config-RELEASE, compressed
    // The image layout from System.map and the RAM from --iomem (kasi kernel --capture OUT --iomem F): the same model as from the capture's kallsyms and iomem.
    const m = modelFromCapture(out, { iomem: loadIomem(join(CAP, 'iomem.txt')) });
    const ref = model(CAP_HOST);
    expect(m.notes[0]).toBe(`image symbols: ${join(out, 'System.map')}`);
    const dump = (x: typeof m) => ptdump(x.model.mem, x.model.kernelRoot, markerLayout(x.model.layout)).text;
    expect(dump(m)).toBe(dump(ref));
    expect([m.model.sections, m.model.layout.addrs, m.model.stats]).toEqual([ref.model.sections, ref.model.layout.addrs, ref.model.stats]);
  }, 60_000);

  it('no partial output: an existing --out is refused and left alone; nothing readable, or an unwritable place, leaves nothing', () => {
    const existing = join(TMP, 'existing');
    mkdirSync(existing);
    writeFileSync(join(existing, 'mine.txt'), 'keep');
    expect(() => runCapture({ root: join(TMP, 'fake'), out: existing })).toThrow(`--out ${existing}: already exists (kasi capture writes a new folder and never adds to one)`);
    expect(readdirSync(existing)).toEqual(['mine.txt']);

    const empty = join(TMP, 'empty-root');
    mkdirSync(empty);
    expect(() => runCapture({ root: empty, out: join(TMP, 'never') })).toThrow(/^nothing could be read under .*empty-root/);
    expect(existsSync(join(TMP, 'never'))).toBe(false);
    expect(() => runCapture({ root: join(TMP, 'fake'), out: join(TMP, 'no/such/dir/out') })).toThrow(/cannot write in .*no\/such\/dir \(ENOENT\)/);
    expect(() => runCapture({ root: join(TMP, 'nope') })).toThrow(/^--root .*nope: ENOENT$/);
    expect(readdirSync(TMP).filter((f) => f.includes('.tmp-'))).toEqual([]);
  }, 60_000);
});

describe('kasi vulns --capture DIR', () => {
  it('the CPU from cpuinfo.txt, the command line from cmdline.txt; a difference from vulnerabilities.txt is named and fails', () => {
    // la48's cpuinfo.txt: vendor_id AuthenticAMD, cpu family 15, model 107, stepping 1: the qemu-max profile.
    const same = vulnsRun({ capture: CAP });
    expect(same.text).toContain(`# CPU profile qemu-max: the one ${join(CAP, 'cpuinfo.txt')} names`);
    expect(same.text).toContain(`# command line: ${join(CAP, 'cmdline.txt')}`);
    expect(same.text).toMatch(/#   not modelled: gather_data_sampling, .*spectre_v2/);
    // mitigations=off turns spectre_v1's swapgs barriers off (bugs.c spectre_v1_select_mitigation): the capture says otherwise.
    const off = vulnsRun({ capture: CAP, cmdline: 'mitigations=off' });
    expect(off.ok).toBe(false);
    expect(off.text).toContain('#   spectre_v1: DIFFERS: the capture says "Mitigation: usercopy/swapgs barriers and __user pointer sanitization"');
    expect(JSON.parse(vulnsRun({ capture: CAP, json: true }).text).capture.compare).toHaveLength(5);
  });

  it('Skylake-SP and Cascade Lake share model 0x55: the stepping decides; an unknown CPU is one line naming cpuinfo.txt', () => {
    const d = join(TMP, 'cpus');
    mkdirSync(d);
    const block = (model: number, stepping: number) => `processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: ${model}\nstepping\t: ${stepping}\n\nprocessor\t: 1\n`;
    for (const [name, model, stepping, want] of [['sky', 85, 4, 'skylake-sp'], ['cas', 85, 7, 'cascade-lake'], ['icx', 106, 6, 'ice-lake-sp']] as const) {
      mkdirSync(join(d, name));
      writeFileSync(join(d, name, 'cpuinfo.txt'), block(model, stepping));
      expect(vulnsRun({ capture: join(d, name) }).text, name).toContain(`# CPU profile ${want}: `);
    }
    mkdirSync(join(d, 'atom'));
    writeFileSync(join(d, 'atom', 'cpuinfo.txt'), block(0x5c, 9));
    expect(() => vulnsRun({ capture: join(d, 'atom') })).toThrow(new RegExp(`^${join(d, 'atom', 'cpuinfo.txt')}: vendor_id GenuineIntel, cpu family 6, model 92: no CPU profile of kasi is that CPU .*; give --cpu$`));
  });
});
