/**
 * How the CLI reports a failure: one line on stderr, `qmpkit: what failed: why`, and an exit
 * status (2 for bad usage, 1 for everything else). No stack trace unless `QMPKIT_DEBUG` is set,
 * so a user sees what to fix, and a developer can still see where.
 *
 * @module
 */
import { isConnectError, isProtocolError, isQmpError } from "../base/errors.js";
import type { CliIo } from "./io.js";
import { isUsageError } from "./usage-error.js";

/** Exit status for bad command-line input (as commander and most tools use). */
export const EXIT_USAGE = 2;
/** Exit status for a failure at run time (unreachable target, QMP error, …). */
export const EXIT_FAILURE = 1;

/** One line, with the causes that add something, e.g. `cannot connect to unix:/x: ENOENT`. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The peer answered, but not in QMP: say so in those words.
  const protocol = isProtocolError(error)
    ? error
    : isProtocolError(error.cause)
      ? error.cause
      : undefined;
  if (isConnectError(error) && protocol) {
    return `${error.target} is not a QMP server: ${protocol.message}`.replace(/\s*\n\s*/g, " ");
  }
  let text = error.message;
  // Follow causes whose message the outer one does not already contain.
  let cause = error.cause;
  for (let depth = 0; cause instanceof Error && depth < 4; depth++) {
    if (!text.includes(cause.message)) text += `: ${cause.message}`;
    cause = cause.cause;
  }
  // A busy monitor looks like a silent one: QEMU greets the next client only when the first
  // leaves (§1.2). Say so, and what shares a monitor.
  if (/no (QMP )?greeting within/i.test(text)) {
    text +=
      " (a QEMU monitor serves one client at a time: is another one connected? `qmpkit proxy` shares a monitor)";
  }
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** Writes the failure line and returns the exit status to use. */
export function reportError(io: Pick<CliIo, "stderr" | "env">, error: unknown): number {
  const usage = isUsageError(error);
  io.stderr.write(`qmpkit: ${describeError(error)}\n`);
  if (io.env.QMPKIT_DEBUG && error instanceof Error && error.stack) {
    io.stderr.write(`${error.stack}\n`);
  } else if (!usage && !isQmpError(error) && error instanceof Error && !isSystemError(error)) {
    // Not an error qmpkit raises on purpose: likely a bug, so say how to see more.
    io.stderr.write("qmpkit: (set QMPKIT_DEBUG=1 for the stack trace)\n");
  }
  return usage ? EXIT_USAGE : EXIT_FAILURE;
}

function isSystemError(error: Error): boolean {
  return typeof (error as NodeJS.ErrnoException).code === "string";
}
