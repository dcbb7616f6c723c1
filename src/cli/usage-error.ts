/**
 * The error for bad command-line input (an unknown option value, a malformed `key=value`, a
 * target that cannot be parsed). `main` prints its message as one line and exits with status 2,
 * as commander does for its own usage errors.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";

/** Bad command-line input; the message names the offending value. */
export class UsageError extends QmpError {
  override name = "UsageError";
}

/** Whether `e` is a `UsageError` (by name, so that two copies of the package agree). */
export const isUsageError = (e: unknown): e is UsageError =>
  e instanceof Error && e.name === "UsageError";

/** A commander option parser for a positive integer; anything else is a `UsageError` naming it. */
export function positiveInteger(option: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
      throw new UsageError(`invalid ${option} '${value}': expected a positive integer`);
    }
    return n;
  };
}
