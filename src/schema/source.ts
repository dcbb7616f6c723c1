/**
 * Where things are in QAPI schema files, and the one way to report a schema error.
 *
 * QEMU's `scripts/qapi/source.py` keeps a `QAPISourceInfo` (file, line, the including file's info)
 * on every expression, and `scripts/qapi/error.py` prints `file:line:col: message` preceded by
 * "In file included from …" lines. This module is the same idea, built on `SchemaError`.
 *
 * @module
 */
import { SchemaError, type SourceLocation } from "../base/errors.js";

/** A position in a schema file plus the chain of includes that led to it (outermost first). */
export interface SourceInfo extends SourceLocation {
  readonly includedFrom: readonly SourceLocation[];
}

/** A `SchemaError` at `info`: `file:line:col: reason`. */
export function schemaError(reason: string, info: SourceInfo, cause?: unknown): SchemaError {
  return new SchemaError(
    reason,
    { file: info.file, line: info.line, column: info.column },
    info.includedFrom,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * The error as QEMU prints it: the include chain ("In file included from a.json:3:") and then
 * `file:line:col: reason`.
 */
export function formatSchemaError(error: SchemaError): string {
  const lines = error.includedFrom.map(
    (loc, i) =>
      `${i === 0 ? "In file included from" : "                 from"} ${loc.file}:${loc.line}:`,
  );
  lines.push(error.message);
  return lines.join("\n");
}

/** Join and normalise `/`-separated paths without `node:path` (the schema layer is pure). */
export function joinPath(dir: string, rel: string): string {
  if (rel.startsWith("/")) return normalizePath(rel);
  return normalizePath(dir === "" ? rel : `${dir}/${rel}`);
}

/** The directory part of a `/`-separated path (`""` for a bare file name). */
export function dirName(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : i === 0 ? "/" : path.slice(0, i);
}

function normalizePath(path: string): string {
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (part === ".." && absolute) continue;
    else out.push(part);
  }
  return (absolute ? "/" : "") + out.join("/");
}
