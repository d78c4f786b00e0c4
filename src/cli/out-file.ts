/**
 * `--out FILE`: write a command's report to a file without ever replacing what is not a file.
 *
 * - FILE does not exist, or is a regular file (or a symlink to one): write a temporary file in
 *   the target's own folder and rename it over the target — readers see the old report or the
 *   new one, never half; nothing is written when the command fails. A symlink is followed (the
 *   file it names is replaced, the link stays).
 * - FILE exists and is not a regular file (a device such as /dev/full or /dev/stdout, a FIFO):
 *   write through it, as a shell redirection would. Renaming over it would replace a device node
 *   with a regular file (run as root, `--out /dev/null` would destroy /dev/null).
 * - FILE is a folder: refused.
 */
import { closeSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UsageError } from './usage.ts';

function fail(file: string, err: unknown): never {
  throw new UsageError(`--out ${file}: ${(err as Error).message}`);
}

/** Write all of `text` to an open descriptor (writeSync may write less than asked). */
function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
}

export function writeOutFile(file: string, text: string): void {
  let target = file;
  let exists = true;
  try {
    target = realpathSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') fail(file, err);
    exists = false;
  }
  if (exists) {
    const st = statSync(target);
    if (st.isDirectory()) throw new UsageError(`--out ${file}: is a folder, not a file`);
    if (!st.isFile()) {
      let fd: number | undefined;
      try {
        fd = openSync(target, 'w');
        writeAll(fd, text);
      } catch (err) {
        fail(file, err);
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      return;
    }
  }
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'wx');
    try { writeAll(fd, text); } finally { closeSync(fd); }
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    fail(file, err);
  }
}
