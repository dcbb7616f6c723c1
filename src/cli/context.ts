/**
 * What every command's action gets from `main`: the I/O, where to put its exit status, and the
 * top-level `--color` choice.
 *
 * @module
 */
import type { CliIo } from "./io.js";

/** The context of one run of the CLI. */
export interface CommandContext {
  readonly io: CliIo;
  /** The exit status `main` returns; an action sets it (default 0). */
  exitCode: number;
  /** `--color` / `--no-color` from the top level, if given. */
  color(): boolean | undefined;
}
