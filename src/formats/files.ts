/**
 * Reading outside files: one error type that names the file (and line), and one reader for
 * text that may be gzip-compressed. Every importer goes through these, so a missing,
 * unreadable, truncated or oversized file reads the same way whatever the format.
 *
 * The reader never reads more than a limit (formats/limits.ts): a regular file above it is refused
 * from its size, a device or pipe (`/dev/zero`) after limit + 1 bytes, a gzip stream when its
 * output passes the limit — each with a message that names the limit, not "corrupt".
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { LIMITS, formatLimit, jsonDepth } from './limits.ts';

/** Bad input: printed by the CLI as one line `FILE[:LINE]: message`, exit 2. */
export class InputError extends Error {
  constructor(readonly file: string, message: string, readonly line?: number) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${message}`);
    this.name = 'InputError';
  }
}

const CHUNK = 1 << 20;

/** At most `limit` bytes of `file`; an InputError when it holds more or cannot be read. */
export function readLimited(file: string, limit: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new InputError(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new InputError(file, 'cannot read: EISDIR (a folder, not a file)');
    if (st.isFile() && st.size > limit) throw new InputError(file, `${st.size} bytes, above the ${formatLimit(limit)} kasi reads from one file of this kind`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, limit + 1 - total));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        throw new InputError(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
      if (total > limit) throw new InputError(file, `more than ${formatLimit(limit)}, the most kasi reads from one file of this kind (a device or pipe that does not end?)`);
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * Read a text file, gunzipping it when it starts with the gzip magic (1f 8b). Errors name the
 * file. `limit` bounds the bytes read and the bytes gunzip may produce (default LIMITS.textBytes).
 */
export function readTextMaybeGz(file: string, encoding: BufferEncoding = 'utf8', limit: number = LIMITS.textBytes): string {
  const raw = readLimited(file, limit);
  if (!(raw[0] === 0x1f && raw[1] === 0x8b)) return raw.toString(encoding);
  let out: Buffer;
  try {
    out = gunzipSync(raw, { maxOutputLength: limit });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new InputError(file, `more than ${formatLimit(limit)} once decompressed, the most kasi reads from one file of this kind (the gzip data is not corrupt: split the file or trim it)`);
    }
    throw new InputError(file, `corrupt or truncated gzip data (${(err as Error).message})`);
  }
  return out.toString(encoding);
}

/**
 * JSON.parse with the nesting bounded first (LIMITS.jsonDepth): a deeper document is refused by
 * a linear scan instead of overflowing the stack in JSON.parse or in a walk over the result.
 */
export function parseJson(text: string, file: string, line?: number): unknown {
  const depth = jsonDepth(text, LIMITS.jsonDepth);
  if (depth > LIMITS.jsonDepth) throw new InputError(file, `JSON nested more than ${LIMITS.jsonDepth} levels deep (the format nests a few levels)`, line);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(file, `not valid JSON (${(err as Error).message})`, line);
  }
}
