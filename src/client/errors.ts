/**
 * The errors the client adds under the `QmpError` root (`src/base/errors.ts` holds the rest):
 *
 * ```
 * QmpError
 * ├── EventOverflowError         an event stream with `overflow: "error"` could not keep up
 * ├── AbortError                 an executeAndWait aborted (by a signal without a reason of
 * │                              its own): how far it got, in `details`
 * └── ConnectionClosedError
 *     └── WaitClosedError        an executeAndWait cut off by the connection: `details`
 * ```
 *
 * @module
 */
import { ConnectionClosedError, QmpError } from "../base/errors.js";

/** How far an `executeAndWait()` got before it failed. */
export interface ExecuteAndWaitDetails {
  readonly command: string;
  /** The event it waited for. */
  readonly event: string;
  /** The command was written to the peer: unless `answered`, its outcome is unknown. */
  readonly sent: boolean;
  /** The peer answered the command with success (the event had not come yet). */
  readonly answered: boolean;
}

/** What the details say, in words: `system_powerdown was answered, SHUTDOWN had not arrived`. */
export function describeProgress(details: ExecuteAndWaitDetails): string {
  const { command, event, sent, answered } = details;
  if (answered) return `${command} was answered, ${event} had not arrived`;
  if (sent)
    return `${command} was sent but not answered (its outcome is unknown), ${event} not seen`;
  return `${command} was not sent`;
}

/**
 * An `executeAndWait()` whose signal aborted with an `AbortError` (the platform's reason when
 * `abort()` is called without one): the same name, so `name === "AbortError"` checks hold, the
 * signal's reason as `cause`, and how far the call got in `details`. A reason of the caller's own
 * is never replaced: the call rejects with it, untouched.
 */
export class AbortError extends QmpError {
  override name = "AbortError";
  constructor(
    readonly details: ExecuteAndWaitDetails,
    options?: ErrorOptions,
  ) {
    super(
      `${details.command} then wait for ${details.event} aborted: ${describeProgress(details)}`,
      options,
    );
  }
}

/** Whether `e` is qmpkit's {@link AbortError} (an `AbortError` that carries `details`). */
export const isAbortError = (e: unknown): e is AbortError =>
  e instanceof Error && e.name === "AbortError" && "details" in e;

/**
 * An `executeAndWait()` cut off by the end of the connection (or of the client). A
 * `ConnectionClosedError` (`command`, `sent`) that also tells whether the command was answered.
 */
export class WaitClosedError extends ConnectionClosedError {
  constructor(
    readonly details: ExecuteAndWaitDetails,
    why: string,
    options?: ErrorOptions,
  ) {
    super(
      `${details.command} then wait for ${details.event} failed: ${describeProgress(details)}: ${why}`,
      details.command,
      details.sent,
      options,
    );
  }
}

/**
 * An event stream whose queue was full when another event arrived, under the `"error"` overflow
 * policy. The stream ends with this error after the queued events have been read.
 */
export class EventOverflowError extends QmpError {
  override name = "EventOverflowError";
  constructor(
    /** The stream's queue bound. */
    readonly maxQueue: number,
    /** The event that did not fit. */
    readonly event: string,
    options?: ErrorOptions,
  ) {
    super(
      `event stream overflowed: ${event} arrived with ${maxQueue} events already queued`,
      options,
    );
  }
}

/** Whether `e` is an {@link EventOverflowError} (checks `name`, so copies of the package agree). */
export const isEventOverflowError = (e: unknown): e is EventOverflowError =>
  e instanceof Error && e.name === "EventOverflowError";
