/** Shared by the importer tests: the tool samples (test/fixtures/tool-samples/README.md) and a parse-and-sum shortcut. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../src/formats/files.ts';
import { toProfile, type Parsed, type WorkloadProfile } from '../../src/formats/profile.ts';

export const SAMPLES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/tool-samples');

export function sample(dir: string, name: string): { text: string; file: string } {
  const file = join(SAMPLES, dir, name);
  return { text: readFileSync(file, 'utf8'), file };
}

/** Parse and sum; events as name → count for short assertions. */
export function profileOf(parse: (text: string, file: string) => Parsed, text: string, file = 'input.txt', vcpu?: number): WorkloadProfile {
  return toProfile(parse(text, file), file, { vcpu });
}

export function counts(p: WorkloadProfile): Record<string, number> {
  return Object.fromEntries(p.events.map((e) => [e.name, e.count]));
}

/** The InputError a call raises (fails the test when it raises nothing or something else). */
export function inputError(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError, got none');
}
