/**
 * A QEMU release number, and the one comparison of two of them that the whole project uses
 * (the schema's `Since:` marks, the simulator's version behaviour, the server's throttle table).
 *
 * The shape is the greeting's `version.qemu` (qmp-spec "Server Greeting") and `query-version`'s
 * `qemu` member, so a peer's version is used as it arrives.
 *
 * @module
 */

/** A release as QEMU reports it: `{ major, minor, micro }`. */
export interface QemuVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
}

/**
 * Parse `"7.2"`, `"7.2.22"` or `{ major, minor, micro }` (the greeting's shape).
 * @throws RangeError when the text is not a version.
 */
export function parseQemuVersion(version: string | QemuVersion): QemuVersion {
  if (typeof version !== "string") {
    return { major: version.major, minor: version.minor, micro: version.micro };
  }
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?\s*$/.exec(version);
  if (!m) throw new RangeError(`invalid QEMU version: '${version}' (expected X.Y or X.Y.Z)`);
  return { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3] ?? 0) };
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`. */
export function compareQemuVersions(a: QemuVersion, b: QemuVersion): number {
  return a.major - b.major || a.minor - b.minor || a.micro - b.micro;
}

/** Whether `version` is `major.minor.micro` or newer. */
export function versionAtLeast(
  version: QemuVersion,
  major: number,
  minor: number,
  micro = 0,
): boolean {
  return compareQemuVersions(version, { major, minor, micro }) >= 0;
}

/** `"7.2.0"`: the release as text, one spelling per release (a cache key). */
export function formatQemuVersion(version: QemuVersion): string {
  return `${version.major}.${version.minor}.${version.micro}`;
}
