/**
 * Reading outside files: one error type that names the file (and line), and one reader for
 * text that may be gzip-compressed. Every importer goes through these, so a missing,
 * unreadable or truncated file reads the same way whatever the format.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** Bad input: printed by the CLI as one line `FILE[:LINE]: message`, exit 2. */
export class InputError extends Error {
  constructor(readonly file: string, message: string, readonly line?: number) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${message}`);
    this.name = 'InputError';
  }
}

/** Read a text file, gunzipping it when it starts with the gzip magic (1f 8b). Errors name the file. */
export function readTextMaybeGz(file: string, encoding: BufferEncoding = 'utf8'): string {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new InputError(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString(encoding);
  } catch (err) {
    throw new InputError(file, `corrupt or truncated gzip data (${(err as Error).message})`);
  }
}
