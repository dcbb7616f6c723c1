/**
 * The one error the client adds under the `QmpError` root (`src/base/errors.ts` holds the rest):
 *
 * ```
 * QmpError
 * └── EventOverflowError   an event stream with `overflow: "error"` could not keep up
 * ```
 *
 * @module
 */
import { QmpError } from "../base/errors.js";

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
