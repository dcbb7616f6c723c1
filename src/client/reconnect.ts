/**
 * The reconnection policy: whether a client reconnects at all, and the exponential backoff
 * between its attempts. The client says how to make one attempt; this module decides when, how
 * often, and when to give up.
 *
 * @module
 */
import { armDeadline } from "../base/deadline.js";
import { ConnectError, ConnectionClosedError } from "../base/errors.js";
import { DEFAULT_RECONNECT, type ReconnectOptions, type ReconnectPolicy } from "./options.js";

/**
 * The policy `option` asks for (`true`: {@link DEFAULT_RECONNECT}), or `undefined` when the
 * client is not to reconnect.
 * @throws ConnectError when `target` is a bare Duplex, which cannot be opened again.
 */
export function reconnectPolicy(
  option: boolean | ReconnectOptions | undefined,
  target: unknown,
): ReconnectPolicy | undefined {
  if (option === undefined || option === false) return undefined;
  if (typeof target !== "string" && typeof target !== "function") {
    throw new ConnectError(
      "cannot reconnect to a duplex: pass a target string or a stream factory",
      "duplex",
    );
  }
  return {
    ...DEFAULT_RECONNECT,
    ...(option === true ? {} : stripUndefined(option)),
  } as ReconnectPolicy;
}

/** What the reconnection loop does, and tells. */
export interface ReconnectHooks {
  /** Makes attempt number `attempt`; resolves once connected. */
  attempt(attempt: number): Promise<void>;
  /** An attempt failed; the next comes after `delayMs` (0: none, the loop gives up). */
  failed(attempt: number, error: unknown, delayMs: number): void;
  /** The loop gave up after `policy.maxAttempts` attempts: the client closes with `error`. */
  gaveUp(error: ConnectionClosedError): void;
}

/**
 * Tries to connect again until an attempt succeeds, `policy.maxAttempts` fail, or `signal`
 * aborts (the client closed for good meanwhile). Never rejects.
 */
export async function reconnect(
  policy: ReconnectPolicy,
  hooks: ReconnectHooks,
  signal: AbortSignal,
): Promise<void> {
  let delay = policy.initialDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await sleep(delay * (1 + policy.jitter * Math.random()), signal);
    } catch {
      return; // closed for good meanwhile
    }
    try {
      await hooks.attempt(attempt);
      return;
    } catch (error) {
      if (signal.aborted) return;
      delay = Math.min(delay * policy.factor, policy.maxDelayMs);
      if (attempt >= policy.maxAttempts) {
        hooks.failed(attempt, error, 0);
        hooks.gaveUp(
          new ConnectionClosedError(
            `reconnect failed: gave up after ${attempt} attempts: ${(error as Error)?.message ?? error}`,
            undefined,
            false,
            { cause: error },
          ),
        );
        return;
      }
      hooks.failed(attempt, error, delay);
    }
  }
}

/** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    armDeadline({ timeoutMs: ms, signal }, () =>
      signal.aborted ? reject(signal.reason) : resolve(),
    );
  });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
