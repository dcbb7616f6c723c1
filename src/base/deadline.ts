/**
 * The deadline of an awaitable call: every one takes `{ timeoutMs?, signal? }` (docs/design.md
 * conventions) and stops at whichever comes first, the time running out or the signal aborting.
 * One helper for that, so that every layer clears its timer and its abort listener the same way.
 *
 * Cancellation is never wrapped: an aborted call sees the signal's own reason.
 *
 * @module
 */
import { TimeoutError } from "./errors.js";

/** The options every awaitable call takes. */
export interface DeadlineOptions {
  /** Give up after this long (ms). */
  readonly timeoutMs?: number | undefined;
  /** Give up when this aborts, with its reason. */
  readonly signal?: AbortSignal | undefined;
}

/** Clears a deadline's timer and abort listener. Idempotent. */
export type Disarm = () => void;

function noop(): void {}

/** The error of a deadline that passed, when the caller names none. */
function timedOut(timeoutMs: number): Error {
  return new TimeoutError(
    `operation timed out after ${timeoutMs} ms`,
    "operation",
    timeoutMs,
    false,
  );
}

/**
 * Arms a deadline: `expire` is called once, with `timeout()` after `timeoutMs`, or with the
 * signal's reason when it aborts (at once, before this returns, if it already has). Returns the
 * function that disarms it: call it when the operation settles, in `finally`. Without a
 * `timeoutMs` or a `signal`, nothing is armed and nothing is allocated (hot paths call this for
 * every command).
 */
export function armDeadline(
  options: DeadlineOptions,
  expire: (reason: unknown) => void,
  timeout?: () => Error,
): Disarm {
  const { timeoutMs, signal } = options;
  if (timeoutMs === undefined && signal === undefined) return noop;
  if (signal?.aborted) {
    expire(signal.reason);
    return noop;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let armed = true;
  const disarm = (): void => {
    if (!armed) return;
    armed = false;
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  };
  const onAbort = (): void => {
    disarm();
    expire(signal!.reason);
  };
  if (timeoutMs !== undefined) {
    timer = setTimeout(() => {
      disarm();
      expire(timeout === undefined ? timedOut(timeoutMs!) : timeout());
    }, timeoutMs);
  }
  signal?.addEventListener("abort", onAbort, { once: true });
  return disarm;
}

/**
 * `promise`, or a rejection as soon as the deadline passes: `timeout()` after `timeoutMs`, the
 * signal's reason when it aborts. The timer and listener are cleared whichever settles first.
 * The operation behind `promise` is not stopped: the caller decides what a deadline means for it.
 */
export function withDeadline<T>(
  promise: Promise<T>,
  options: DeadlineOptions,
  timeout?: () => Error,
): Promise<T> {
  if (options.timeoutMs === undefined && options.signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const disarm = armDeadline(options, reject, timeout);
    promise.then(
      (value) => {
        disarm();
        resolve(value);
      },
      (error: unknown) => {
        disarm();
        reject(error);
      },
    );
  });
}

/**
 * The time left of an overall budget started now: `remaining(partMs)` is `partMs`, cut to what is
 * left of `totalMs` (no overall budget: `partMs` as it is). For calls made of steps, each with its
 * own limit, under one `timeoutMs` for the whole.
 */
export function startBudget(totalMs: number | undefined): (partMs: number) => number {
  if (totalMs === undefined) return (partMs) => partMs;
  const start = Date.now();
  return (partMs) => Math.max(0, Math.min(partMs, totalMs - (Date.now() - start)));
}
