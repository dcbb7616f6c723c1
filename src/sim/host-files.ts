/**
 * What the host's file system would say to a simulated QEMU that opens a file for writing
 * (`dump-guest-memory file:PATH`, 10.0's `migrate file:PATH`). The simulator writes no file, but
 * it refuses a path QEMU could not open, with the same errno text: it looks, it does not create.
 *
 * @module
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** The errno texts QEMU prints (`strerror`, glibc's words) for the failures checked here. */
const ENOENT = "No such file or directory";
const ENOTDIR = "Not a directory";
const EISDIR = "Is a directory";
const EACCES = "Permission denied";

/**
 * Why `open(path, O_WRONLY | O_CREAT | O_TRUNC)` would fail, as `strerror` puts it, or
 * `undefined` if it would succeed. Relative paths are taken from this process's directory, as
 * QEMU takes them from its own.
 */
export function openForWriteError(path: string): string | undefined {
  if (path === "") return ENOENT;
  const full = resolve(path);
  const target = statSync(full, { throwIfNoEntry: false });
  if (target?.isDirectory()) return EISDIR;
  const parent = statSync(dirname(full), { throwIfNoEntry: false });
  // A missing directory anywhere on the way is ENOENT; a file on the way is ENOTDIR.
  if (parent === undefined) return ancestorIsFile(dirname(full)) ? ENOTDIR : ENOENT;
  if (!parent.isDirectory()) return ENOTDIR;
  try {
    accessSync(target === undefined ? dirname(full) : full, constants.W_OK);
  } catch {
    return EACCES;
  }
  return undefined;
}

/** Whether the nearest existing ancestor of `dir` is not a directory. */
function ancestorIsFile(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    const s = statSync(d, { throwIfNoEntry: false });
    if (s !== undefined) return !s.isDirectory();
    if (dirname(d) === d) return false;
  }
}
