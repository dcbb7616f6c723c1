/**
 * Options of `QmpClient` and its calls, their defaults (named constants), and the notices the
 * client reports through `onNotice`.
 *
 * @module
 */
import type { ProtocolError, ValidationIssue } from "../base/errors.js";
import type { JsonValue } from "../base/json.js";
import type { Validator } from "../schema/validator.js";
import type { OverflowPolicy } from "./event-stream.js";
import type { QmpGreeting } from "./types.js";

/** Default time to open the socket (ms). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Default time for the greeting, negotiation, the peer's schema and the first `query-status` (ms). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default time the run-state tracker gives each `query-status` (ms). */
export const DEFAULT_STATUS_QUERY_TIMEOUT_MS = 10_000;
/** Prefix of every id the client puts on a command; replies with other ids are not ours. */
export const ID_PREFIX = "__qmpkit#";
/** How many timed-out or aborted command ids are remembered, to tell a late reply from a stray one. */
export const ABANDONED_IDS_KEPT = 1024;

/** Reconnection policy: exponential backoff between attempts. */
export interface ReconnectOptions {
  /** Delay before the first attempt (ms). Default 100. */
  readonly initialDelayMs?: number | undefined;
  /** Upper bound of the delay (ms). Default 5 000. */
  readonly maxDelayMs?: number | undefined;
  /** Factor the delay grows by after each failed attempt. Default 2. */
  readonly factor?: number | undefined;
  /** Random spread added to each delay, as a fraction of it (0 to 1). Default 0.1. */
  readonly jitter?: number | undefined;
  /** Attempts before giving up and closing the client for good. Default: no limit. */
  readonly maxAttempts?: number | undefined;
}

/** A reconnection policy with every value filled in. */
export type ReconnectPolicy = { readonly [K in keyof ReconnectOptions]-?: number };

export const DEFAULT_RECONNECT: ReconnectPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  factor: 2,
  jitter: 0.1,
  maxAttempts: Number.POSITIVE_INFINITY,
};

/**
 * Where the validators for replies and events come from: the command's `returns` validator and
 * the event's data validator, by name. Names without a validator pass unchecked.
 */
export interface QmpValidators {
  returns(command: string): Validator<unknown> | undefined;
  event(name: string): Validator<unknown> | undefined;
}

/** Checking what the peer sends against the schema. Off unless asked for. */
export interface ValidationOptions {
  /**
   * `lenient` (default): members the schema does not know pass (newer QEMUs add members);
   * `strict`: they are issues too.
   */
  readonly mode?: "lenient" | "strict" | undefined;
  /** Check command replies. Default true. */
  readonly replies?: boolean | undefined;
  /** Check event data. Default true. */
  readonly events?: boolean | undefined;
  /**
   * What an invalid reply does: `report` (default) resolves as usual and sends an
   * `invalid-reply` notice; `reject` rejects the call with a `ValidationError`. Invalid events are
   * always delivered, with an `invalid-event` notice.
   */
  readonly onInvalid?: "report" | "reject" | undefined;
  /**
   * The validators to use: `"bundled"` (default) = generated from the project's schema;
   * `"peer"` = built from the peer's own `query-qmp-schema`, asked at every (re)connection
   * (a `peer-schema-failed` notice, and no checking, if that fails); or your own.
   */
  readonly validators?: QmpValidators | "bundled" | "peer" | undefined;
}

/** A byte-level view of the conversation (`onTraffic`). */
export type TrafficDirection = "in" | "out";

/** Options of `QmpClient.connect()`. */
export interface QmpClientOptions {
  /**
   * Overall budget of `connect()` (ms): opening the socket, the greeting, negotiation, the peer's
   * schema (`validators: "peer"`) and the first `query-status` (unless `trackRunState: false`).
   * Default: the sum of the parts.
   */
  readonly timeoutMs?: number | undefined;
  /** Time to open the socket (ms). Default {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  readonly connectTimeoutMs?: number | undefined;
  /**
   * Time for the greeting, negotiation, the peer's schema and the first `query-status` (ms).
   * Default {@link DEFAULT_HANDSHAKE_TIMEOUT_MS}.
   */
  readonly handshakeTimeoutMs?: number | undefined;
  /** Aborts `connect()` (rejects with the signal's reason). Has no effect once connected. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Negotiate out-of-band execution (§1.7). Connecting fails with a `ConnectError` when the peer
   * does not offer `oob`. Default false.
   */
  readonly oob?: boolean | undefined;
  /** Default `timeoutMs` of every `execute()`. Default: none (a command may take as long as it takes). */
  readonly commandTimeoutMs?: number | undefined;
  /** Follow the run state (`query-status` at connect, then events). Default true. */
  readonly trackRunState?: boolean | undefined;
  /** Recent events kept in `history`. Default 100. */
  readonly historySize?: number | undefined;
  /** Largest message accepted from the peer (bytes). Default: the wire layer's (QEMU's 64 MiB). */
  readonly maxMessageBytes?: number | undefined;
  /**
   * Reconnect when the connection drops (a restarted QEMU on the same socket path). `true` uses
   * {@link DEFAULT_RECONNECT}. Needs a target string or a stream factory, not a bare Duplex.
   * Default false: a drop closes the client.
   */
  readonly reconnect?: boolean | ReconnectOptions | undefined;
  /** Check replies and events against the schema. `true` = `{}`. Default off. */
  readonly validate?: boolean | ValidationOptions | undefined;
  /** Sees every message as text, both ways (`in`: as received, `out`: as sent). Must not throw. */
  readonly onTraffic?: ((direction: TrafficDirection, text: string) => void) | undefined;
  /** Sees everything the client noticed but could not hand to a caller. Must not throw. */
  readonly onNotice?: ((notice: ClientNotice) => void) | undefined;
}

/** Options of every command call. */
export interface ExecuteOptions {
  /** Reject with a `TimeoutError` (`sent: true`: outcome unknown) after this long (ms). */
  readonly timeoutMs?: number | undefined;
  /** Reject with the signal's reason when aborted; the reply, if it comes, is dropped. */
  readonly signal?: AbortSignal | undefined;
  /** Send as `exec-oob` (needs `oob` negotiated, and a command that allows it, §1.7). */
  readonly oob?: boolean | undefined;
}

/** Where the client stands. */
export type ClientState = "connecting" | "connected" | "reconnecting" | "closed";

/** Things the client noticed that no caller was waiting for (`onNotice`). */
export type ClientNotice =
  /** A reply whose id is none of ours, or no longer pending: dropped (qmp-spec: ids not ours). */
  | {
      readonly kind: "unknown-reply";
      readonly id: JsonValue | undefined;
      readonly message: unknown;
    }
  /** The reply to a command that had already timed out or been aborted: dropped. */
  | { readonly kind: "late-reply"; readonly id: string; readonly command: string }
  /** A message that is neither greeting, reply nor event, or a greeting out of place: dropped. */
  | { readonly kind: "unexpected-message"; readonly message: unknown }
  /** The peer sent something that is not QMP (e.g. `inf` in JSON); the connection lives on. */
  | { readonly kind: "protocol-error"; readonly error: ProtocolError }
  /** An event stream's queue overflowed (once per episode; `dropped` counts the stream's total). */
  | {
      readonly kind: "events-dropped";
      readonly dropped: number;
      readonly maxQueue: number;
      readonly policy: OverflowPolicy;
    }
  /** A callback (`on`, `onRunStateChange`) threw; the others still ran. */
  | { readonly kind: "callback-error"; readonly event: string; readonly error: unknown }
  /** A reply did not match its schema type (with `validate`). */
  | {
      readonly kind: "invalid-reply";
      readonly command: string;
      readonly issues: readonly ValidationIssue[];
    }
  /** An event's data did not match its schema type (with `validate`); it was still delivered. */
  | {
      readonly kind: "invalid-event";
      readonly event: string;
      readonly issues: readonly ValidationIssue[];
    }
  /** `query-qmp-schema` failed or answered nonsense (with `validators: "peer"`): nothing is checked. */
  | { readonly kind: "peer-schema-failed"; readonly error: unknown }
  /** The tracker's `query-status` failed; the run state stays at the last known value. */
  | { readonly kind: "run-state-query-failed"; readonly error: unknown }
  /** `query-status` answered a status this client does not know. */
  | { readonly kind: "run-state-unknown"; readonly status: unknown }
  /** The connection dropped; with `reconnect` the client now tries again. */
  | { readonly kind: "disconnected"; readonly reason: Error | undefined }
  /** A reconnection attempt failed; the next comes after `delayMs`. */
  | {
      readonly kind: "reconnect-failed";
      readonly attempt: number;
      readonly error: unknown;
      readonly delayMs: number;
    }
  /** Connected again: events in between are lost (a `gap` notice went to every stream). */
  | { readonly kind: "reconnected"; readonly attempt: number; readonly greeting: QmpGreeting };
