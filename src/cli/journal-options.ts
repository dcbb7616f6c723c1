/**
 * Option values of `record` and `history`: durations (`--max-age 7d`), sizes (`--max-size
 * 500M`) and points in time (`--since 10m`, `--since 2026-12-06T16:50`). Each parser throws a
 * `UsageError` naming the option and the value.
 *
 * @module
 */
import { UsageError } from "./usage-error.js";

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const UNIT_BYTES: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/i;

/** `500ms`, `30s`, `15m`, `12h`, `7d`, `2w` in milliseconds, or `undefined` if not one. */
export function durationMs(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]!.toLowerCase()]! : undefined;
}

/** A commander parser for a positive duration. */
export function durationOption(option: string): (value: string) => number {
  return (value) => {
    const ms = durationMs(value);
    if (ms === undefined || ms <= 0)
      throw new UsageError(
        `invalid ${option} '${value}': expected a duration such as 30s, 15m, 12h or 7d`,
      );
    return ms;
  };
}

/** A commander parser for a size in bytes: `1048576`, `512K`, `100M`, `2G` (powers of 1024, `B`/`iB` optional). */
export function sizeOption(option: string): (value: string) => number {
  return (value) => {
    const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(value.trim());
    const bytes = m ? Math.floor(Number(m[1]) * UNIT_BYTES[m[2]!.toLowerCase()]!) : Number.NaN;
    if (!(bytes > 0))
      throw new UsageError(
        `invalid ${option} '${value}': expected a size such as 512K, 100M or 2G`,
      );
    return bytes;
  };
}

/**
 * A commander parser for a point in time (ms since the epoch): a duration means that long ago
 * (`10m`), anything else is a date and time as `Date` reads it (`2026-12-06T16:50:00`, local
 * time without a zone; `…Z` for UTC).
 */
export function timeOption(
  option: string,
  now: () => number = Date.now,
): (value: string) => number {
  return (value) => {
    const ago = durationMs(value);
    if (ago !== undefined) return now() - ago;
    const at = /^\d{4}-\d\d-\d\d/.test(value.trim()) ? Date.parse(value.trim()) : Number.NaN;
    if (Number.isNaN(at))
      throw new UsageError(
        `invalid ${option} '${value}': expected a duration ago (10m, 2h, 1d) or a date and time (2026-12-06T16:50:00)`,
      );
    return at;
  };
}
