/**
 * The contract every generated validator implements (docs/design.md, the check / errors / parse trio).
 *
 * Generated code imports its runtime helpers from the schema layer only; the client, the server
 * and the simulator use validators through this interface.
 *
 * @module
 */
import type { ValidationIssue } from "../base/errors.js";

export interface ValidateOptions {
  /**
   * `strict`: members the type does not have are errors (the server, checking arguments as QEMU
   * does). `lenient`: they pass and are reported as `unexpected` issues by `errors()` (the client,
   * because newer QEMUs add members). Default: `strict`.
   */
  readonly mode?: "strict" | "lenient" | undefined;
}

export interface Validator<T> {
  /** The schema name of the type, e.g. `StatusInfo`, or `SHUTDOWN` for event data. */
  readonly name: string;
  /** True when `value` is a valid `T` in the given mode. Never throws. */
  check(value: unknown, options?: ValidateOptions): value is T;
  /**
   * Every issue found, in QEMU's order (members in schema order, then unexpected members).
   * In lenient mode unexpected members are still listed, though `check` passes.
   */
  errors(value: unknown, options?: ValidateOptions): ValidationIssue[];
  /** The value typed as `T`, or a `ValidationError` carrying the issues. */
  parse(value: unknown, options?: ValidateOptions): T;
}
