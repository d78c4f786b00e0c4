/**
 * `kasi vulns --cpu PROFILE [--cmdline "…"] [--kvm | --no-kvm] [--json]`: what
 * /sys/devices/system/cpu/vulnerabilities/{l1tf,mds,meltdown,spectre_v1,tsx_async_abort}
 * would say on that CPU booted with that command line by Linux 6.1 (Debian's build), on a
 * KVM host (kvm_intel loaded) unless --no-kvm. Text output is `name: content` per file, the
 * format of the captures' vulnerabilities.txt; --json adds the resolved mitigation state.
 *
 * `kasi vulns --capture DIR` (a folder of `kasi capture`, or a shared capture): the CPU profile is
 * the one cpuinfo.txt names (vendor_id, cpu family, model; the nearest stepping not above the
 * capture's among profiles of that model), the command line is cmdline.txt (--cpu and --cmdline
 * override them), and the model's files are compared with the capture's vulnerabilities.txt, line
 * by line: exit 1 when one differs, as `kasi kernel --compare` does.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, readTextMaybeGz } from '../../formats/files.ts';
import { firstCpuinfoBlock } from '../../formats/host-capture.ts';
import type { CpuProfile } from '../../uarch/profiles.ts';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';
import { PROFILES, profileNames } from '../../uarch/profiles.ts';
import { CmdlineError, parseMitigationCmdline } from '../../mitigations/cmdline.ts';
import { selectMitigations, type MitigationState } from '../../mitigations/select.ts';
import { VULN_FILES, formatVulnerabilities, vulnerabilities } from '../../mitigations/vulns.ts';

export interface VulnsOpts {
  cpu?: string;
  cmdline?: string;
  kvm?: boolean;
  json?: boolean;
  capture?: string;
}

/** The report text (exported for tests); `ok` is false when a capture's file differs from the model's. */
export function vulnsReport(opts: VulnsOpts): string {
  return vulnsRun(opts).text;
}

export function vulnsRun(opts: VulnsOpts): { text: string; ok: boolean } {
  const cap = opts.capture === undefined ? null : fromCapture(opts.capture, opts);
  const cpu = opts.cpu ?? cap?.profile.name;
  if (cpu === undefined) throw new UsageError(`--cpu: required (one of ${profileNames().join(', ')}), or --capture DIR`);
  const profile = PROFILES.get(cpu);
  if (profile === undefined) throw new UsageError(`--cpu: unknown CPU profile "${cpu}" (expected one of ${profileNames().join(', ')})`);
  let cmd;
  const cmdText = opts.cmdline ?? cap?.cmdline ?? '';
  try {
    cmd = parseMitigationCmdline(cmdText);
  } catch (e) {
    if (!(e instanceof CmdlineError)) throw e;
    if (opts.cmdline === undefined && cap?.cmdlineFile) throw new InputError(cap.cmdlineFile, e.message);
    throw new UsageError(`--cmdline: ${e.message.replace(/^kernel command line: /, '')}`);
  }
  const state = selectMitigations(profile, cmd, { kvm: opts.kvm ?? true });
  const model = vulnerabilities(state);
  const compare = cap?.captured === null || cap === null ? null : VULN_FILES.map((f) => {
    const captured = cap.captured!.get(f) ?? null;
    return { file: f, model: model[f], captured, same: captured === model[f] };
  });
  const ok = compare === null || compare.every((c) => c.captured === null || c.same);
  if (opts.json) {
    return {
      ok,
      text: JSON.stringify({
        cpu: profile.name,
        cmdline: cmd.text,
        kvm: state.kvmLoaded,
        bugs: [...profile.bugs].sort(),
        vulnerabilities: model,
        state: stateJson(state),
        ...(cap === null ? {} : { capture: { dir: opts.capture, notes: cap.notes, compare } }),
      }, null, 2) + '\n',
    };
  }
  let text = formatVulnerabilities(state);
  if (cap !== null) {
    text += `\n${cap.notes.map((n) => `# ${n}\n`).join('')}`;
    if (compare === null) text += `# no vulnerabilities.txt in ${opts.capture}: nothing to compare\n`;
    else {
      text += `# compared with ${cap.vulnFile}: ${compare.filter((c) => c.same).length} of ${compare.length} modelled files the same\n`;
      for (const c of compare) {
        text += c.captured === null ? `#   ${c.file}: not in the capture\n` : c.same ? `#   ${c.file}: same\n` : `#   ${c.file}: DIFFERS: the capture says ${JSON.stringify(c.captured)}\n`;
      }
      const other = [...cap.captured!.keys()].filter((k) => !(VULN_FILES as readonly string[]).includes(k));
      if (other.length > 0) text += `#   not modelled: ${other.join(', ')}\n`;
    }
  }
  return { text, ok };
}

interface CaptureInputs {
  profile: CpuProfile;
  cmdline: string | undefined;
  cmdlineFile: string | null;
  /** vulnerabilities.txt as name → content, or null when the folder has none. */
  captured: Map<string, string> | null;
  vulnFile: string;
  notes: string[];
}

/** A capture folder's CPU profile, command line and sysfs answers. */
function fromCapture(dir: string, opts: VulnsOpts): CaptureInputs {
  if (!existsSync(dir)) throw new UsageError(`--capture ${dir}: no such folder`);
  const notes: string[] = [];
  const cpuFile = join(dir, 'cpuinfo.txt');
  let profile: CpuProfile;
  if (opts.cpu !== undefined) {
    profile = PROFILES.get(opts.cpu) ?? (() => { throw new UsageError(`--cpu: unknown CPU profile "${opts.cpu}" (expected one of ${profileNames().join(', ')})`); })();
    notes.push(`CPU profile ${profile.name} (--cpu)`);
  } else {
    profile = profileFromCpuinfo(readTextMaybeGz(cpuFile), cpuFile);
    notes.push(`CPU profile ${profile.name}: the one ${cpuFile} names (vendor ${profile.vendor}, family ${profile.family}, model ${profile.model}, stepping ${profile.stepping})`);
  }
  const cmdFile = join(dir, 'cmdline.txt');
  let cmdline: string | undefined;
  if (opts.cmdline !== undefined) notes.push('command line: --cmdline');
  else if (existsSync(cmdFile)) {
    cmdline = readTextMaybeGz(cmdFile, 'latin1').replace(/\n+$/, '');
    if (cmdline.includes('\0')) throw new InputError(cmdFile, 'a NUL character: /proc/cmdline has none');
    notes.push(`command line: ${cmdFile}`);
  } else notes.push(`no cmdline.txt in ${dir}: the default command line`);
  notes.push(opts.kvm === false ? 'not a KVM host (--no-kvm)' : 'a KVM host: kvm_intel loaded where the CPU has VMX (--no-kvm if not)');
  const vulnFile = join(dir, 'vulnerabilities.txt');
  let captured: Map<string, string> | null = null;
  if (existsSync(vulnFile)) {
    captured = new Map();
    readTextMaybeGz(vulnFile).split('\n').forEach((l, i) => {
      if (l.trim() === '') return;
      const m = /^([a-z0-9_]+): (.*)$/.exec(l);
      if (m === null) throw new InputError(vulnFile, `expected "name: content" (the sysfs file's name and what it says), found ${JSON.stringify(l.slice(0, 60))}`, i + 1);
      captured!.set(m[1], m[2]);
    });
  }
  return { profile, cmdline, cmdlineFile: opts.cmdline === undefined && cmdline !== undefined ? cmdFile : null, captured, vulnFile, notes };
}

/**
 * The profile of the CPU a /proc/cpuinfo block names: same vendor_id, cpu family and model; of
 * several (Skylake-SP and Cascade Lake are both family 6 model 0x55), the highest stepping not above
 * the block's, as the kernel's x86_cpu_id stepping ranges go (arch/x86/include/asm/cpu_device_id.h).
 */
export function profileFromCpuinfo(text: string, file: string): CpuProfile {
  const block = firstCpuinfoBlock(text).split('\n');
  const field = (k: string): string | undefined => {
    const l = block.find((x) => x.indexOf(':') > 0 && x.slice(0, x.indexOf(':')).trim() === k);
    return l?.slice(l.indexOf(':') + 1).trim();
  };
  const vendor = field('vendor_id');
  const family = Number(field('cpu family'));
  const model = Number(field('model'));
  const stepping = Number(field('stepping') ?? 0);
  if (vendor === undefined || !Number.isInteger(family) || !Number.isInteger(model)) {
    throw new InputError(file, 'expected a /proc/cpuinfo block with vendor_id, cpu family and model lines');
  }
  const same = [...PROFILES.values()].filter((p) => p.vendor === vendor && p.family === family && p.model === model).sort((a, b) => a.stepping - b.stepping);
  if (same.length === 0) {
    throw new InputError(file, `vendor_id ${vendor}, cpu family ${family}, model ${model}: no CPU profile of kasi is that CPU (${[...PROFILES.values()].map((p) => `${p.name} ${p.family}/${p.model}`).join(', ')}); give --cpu`);
  }
  return [...same].reverse().find((p) => p.stepping <= stepping) ?? same[0];
}

function stateJson(s: MitigationState): Record<string, unknown> {
  const { bugs: _bugs, ...rest } = s;
  return rest;
}

export function registerVulns(program: Command): void {
  program
    .command('vulns')
    .description('the sysfs vulnerabilities files Linux 6.1 would show for a CPU profile and kernel command line')
    .option('--cpu <profile>', `CPU profile: ${profileNames().join(', ')}`)
    .option('--cmdline <text>', 'kernel command line (mitigations=, nosmt, pti=, l1tf=, mds=, tsx=, kvm-intel.*, asi=, ...; default: none, or the capture\'s)')
    .option('--kvm', 'a KVM host: kvm_intel loaded', true)
    .option('--no-kvm', 'not a KVM host (kvm_intel not loaded)')
    .option('--json', 'JSON with the resolved mitigation state')
    .option('--capture <dir>', "a capture folder: its cpuinfo.txt's CPU and cmdline.txt, compared with its vulnerabilities.txt (exit 1 on a difference)")
    .action((opts: VulnsOpts) => {
      const r = vulnsRun(opts);
      writeOutput(r.text);
      if (!r.ok) process.exitCode = 1;
    });
}
