/**
 * What the CLI prints when a command fails. Bad input — the project's InputError (a file, with
 * its line and field: formats/files.ts) or a UsageError (a command-line option) — is one line and exit
 * 2: the user can fix it. Anything else is a bug in kasi, whatever its class (a RangeError from
 * the model included): it prints "internal error" with the stack and a request to report it, and
 * exits 70 (EX_SOFTWARE, sysexits.h), so that scripts and the fuzz tests can tell the two apart.
 */
import { InputError } from '../formats/files.ts';
import { UsageError } from './usage.ts';

export const EXIT_INPUT = 2;
export const EXIT_INTERNAL = 70;

/**
 * An input error, also when it crossed a worker thread: sim/pool.ts rethrows a worker's error as
 * a plain Error that keeps only its name and message.
 */
export function isInputError(err: unknown): err is Error {
  if (err instanceof InputError || err instanceof UsageError) return true;
  return err instanceof Error && !(err instanceof TypeError) && (err.name === 'InputError' || err.name === 'ScenarioError');
}

/** The text for `err` and the exit status. */
export function describeError(err: unknown): { text: string; status: number } {
  if (isInputError(err)) return { text: `kasi: ${err.message.split('\n')[0]}\n`, status: EXIT_INPUT };
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    text: `kasi: internal error: ${e.name}: ${e.message}\n${e.stack ?? ''}\n`
      + 'kasi: this is a bug in kasi, not in your input: please report it with the command line and the files it read\n',
    status: EXIT_INTERNAL,
  };
}
