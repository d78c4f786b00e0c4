/**
 * `kasi vulns --cpu PROFILE [--cmdline "…"] [--kvm | --no-kvm] [--json]`: what
 * /sys/devices/system/cpu/vulnerabilities/{l1tf,mds,meltdown,spectre_v1,tsx_async_abort}
 * would say on that CPU booted with that command line by Linux 6.1 (Debian's build), on a
 * KVM host (kvm_intel loaded) unless --no-kvm. Text output is `name: content` per file, the
 * format of the captures' vulnerabilities.txt; --json adds the resolved mitigation state.
 */
import type { Command } from 'commander';
import { UsageError } from '../usage.ts';
import { writeOutput } from './mappings.ts';
import { PROFILES, profileNames } from '../../uarch/profiles.ts';
import { CmdlineError, parseMitigationCmdline } from '../../mitigations/cmdline.ts';
import { selectMitigations, type MitigationState } from '../../mitigations/select.ts';
import { formatVulnerabilities, vulnerabilities } from '../../mitigations/vulns.ts';

export interface VulnsOpts {
  cpu?: string;
  cmdline?: string;
  kvm?: boolean;
  json?: boolean;
}

/** The report text (exported for tests). */
export function vulnsReport(opts: VulnsOpts): string {
  if (opts.cpu === undefined) throw new UsageError(`--cpu: required (one of ${profileNames().join(', ')})`);
  const profile = PROFILES.get(opts.cpu);
  if (profile === undefined) throw new UsageError(`--cpu: unknown CPU profile "${opts.cpu}" (expected one of ${profileNames().join(', ')})`);
  let cmd;
  try {
    cmd = parseMitigationCmdline(opts.cmdline ?? '');
  } catch (e) {
    if (e instanceof CmdlineError) throw new UsageError(`--cmdline: ${e.message.replace(/^kernel command line: /, '')}`);
    throw e;
  }
  const state = selectMitigations(profile, cmd, { kvm: opts.kvm ?? true });
  if (!opts.json) return formatVulnerabilities(state);
  return JSON.stringify({
    cpu: profile.name,
    cmdline: cmd.text,
    kvm: state.kvmLoaded,
    bugs: [...profile.bugs].sort(),
    vulnerabilities: vulnerabilities(state),
    state: stateJson(state),
  }, null, 2) + '\n';
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
    .option('--cmdline <text>', 'kernel command line (mitigations=, nosmt, pti=, l1tf=, mds=, tsx=, kvm-intel.*, asi=, ...)', '')
    .option('--kvm', 'a KVM host: kvm_intel loaded', true)
    .option('--no-kvm', 'not a KVM host (kvm_intel not loaded)')
    .option('--json', 'JSON with the resolved mitigation state')
    .action((opts: VulnsOpts) => {
      writeOutput(vulnsReport(opts));
    });
}
