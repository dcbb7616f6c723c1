/**
 * The one error root of qmpkit and its subclasses.
 *
 * ```
 * QmpError
 * ├── ConnectError          could not reach the peer, or the greeting/negotiation failed
 * ├── StateError            a call made in a state that does not allow it (closed client, …)
 * ├── TimeoutError          an operation ran out of time; `sent` says whether a command left
 * ├── ConnectionClosedError the connection ended first; for a sent command the outcome is unknown
 * ├── CommandError          the peer answered a command with a QMP error (`class`, `desc`)
 * ├── ProtocolError         the peer broke the protocol (bad greeting, reply that is not QMP, …)
 * │   └── JsonStreamError   the byte stream was not QEMU-dialect JSON, or broke a QEMU limit
 * ├── ValidationError       a value does not match its schema type (carries the issues)
 * └── SchemaError           a QAPI schema file is wrong (`file:line:col: message`)
 * ```
 *
 * Conventions (docs/design.md): messages read "what failed: why", with the offending value; every
 * subclass sets `name`, carries its context as fields and passes `{ cause }` on. Cancellation is
 * never wrapped: an aborted call rejects with the `AbortSignal`'s own reason.
 *
 * Each class has an `isXxx` guard that checks `name` rather than `instanceof` alone, so errors
 * from two copies of the package (the dual-package hazard) are still recognised.
 *
 * @module
 */

/** The QMP error classes QEMU sends (`qapi/error.json`, identical from 2.x to 10.x). */
export type QmpErrorClass =
  | "GenericError"
  | "CommandNotFound"
  | "DeviceNotActive"
  | "DeviceNotFound"
  | "KVMMissingCap";

/** The root of every error qmpkit throws. */
export class QmpError extends Error {
  override name = "QmpError";
}

function hasName(value: unknown, name: string): boolean {
  return value instanceof Error && value.name === name;
}

const errorNames = new Set([
  "QmpError",
  "ConnectError",
  "StateError",
  "TimeoutError",
  "ConnectionClosedError",
  "CommandError",
  "ProtocolError",
  "JsonStreamError",
  "ValidationError",
  "SchemaError",
]);

export function isQmpError(value: unknown): value is QmpError {
  return value instanceof QmpError || (value instanceof Error && errorNames.has(value.name));
}

/** Could not connect, or the greeting or capability negotiation failed. */
export class ConnectError extends QmpError {
  override name = "ConnectError";
  constructor(
    message: string,
    /** The endpoint, as the caller spelled it (`unix:/run/vm.qmp`, `tcp:host:1234`, `duplex`). */
    readonly target: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
export const isConnectError = (e: unknown): e is ConnectError => hasName(e, "ConnectError");

/** A call was made in a state that does not allow it. */
export class StateError extends QmpError {
  override name = "StateError";
  constructor(
    message: string,
    readonly state: string,
    readonly required: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
export const isStateError = (e: unknown): e is StateError => hasName(e, "StateError");

/** An operation ran out of time. */
export class TimeoutError extends QmpError {
  override name = "TimeoutError";
  constructor(
    message: string,
    /** What timed out: a command name, `connect`, `greeting`, `wait for SHUTDOWN`, … */
    readonly operation: string,
    readonly timeoutMs: number,
    /** Whether the command had been written to the peer: if so, its outcome is unknown. */
    readonly sent: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
export const isTimeoutError = (e: unknown): e is TimeoutError => hasName(e, "TimeoutError");

/** The connection ended before the operation completed. */
export class ConnectionClosedError extends QmpError {
  override name = "ConnectionClosedError";
  constructor(
    message: string,
    /** The command that was cut off, if any. */
    readonly command: string | undefined,
    /** Whether the command had been written to the peer: if so, its outcome is unknown. */
    readonly sent: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
export const isConnectionClosedError = (e: unknown): e is ConnectionClosedError =>
  hasName(e, "ConnectionClosedError");

/** The peer answered a command with a QMP error response. */
export class CommandError extends QmpError {
  override name = "CommandError";
  constructor(
    readonly command: string,
    readonly errorClass: QmpErrorClass | (string & {}),
    readonly desc: string,
    readonly id: unknown,
    options?: ErrorOptions,
  ) {
    super(`${command} failed: ${errorClass}: ${desc}`, options);
  }
}
export const isCommandError = (e: unknown): e is CommandError => hasName(e, "CommandError");

/** The peer broke the protocol. `raw` keeps what was received, when there is something to keep. */
export class ProtocolError extends QmpError {
  override name = "ProtocolError";
  constructor(
    message: string,
    readonly raw?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
export const isProtocolError = (e: unknown): e is ProtocolError =>
  hasName(e, "ProtocolError") || hasName(e, "JsonStreamError");

/**
 * The byte stream was not valid QEMU-dialect JSON, or a message broke one of QEMU's limits.
 * `desc` is exactly the text QEMU puts in its error reply (`JSON parse error, expecting value`).
 */
export class JsonStreamError extends ProtocolError {
  override name = "JsonStreamError";
  constructor(
    readonly desc: string,
    raw?: unknown,
    options?: ErrorOptions,
  ) {
    super(`malformed JSON input: ${desc}`, raw, options);
  }
}
export const isJsonStreamError = (e: unknown): e is JsonStreamError =>
  hasName(e, "JsonStreamError");

/** One way a value fails to match a schema type. `path` is QEMU's spelling (`a.b`, `a[0]`). */
export type ValidationIssue =
  /** A mandatory member is absent. */
  | { readonly kind: "missing"; readonly path: string }
  /** A member the type does not have (an error in strict mode, a report in lenient mode). */
  | { readonly kind: "unexpected"; readonly path: string }
  /** The JSON type is wrong: `expected` is QEMU's word (`string`, `integer`, `number`, `boolean`, `object`, `array`, `null`). */
  | {
      readonly kind: "type";
      readonly path: string;
      readonly expected: string;
      readonly actual: string;
    }
  /** A string that is not a member of the enum. */
  | {
      readonly kind: "enum";
      readonly path: string;
      readonly value: string;
      readonly allowed: readonly string[];
    }
  /** An integer outside its type's range: `expected` is QEMU's word (`uint8`, `int64`, …). */
  | {
      readonly kind: "range";
      readonly path: string;
      readonly value: number | bigint;
      readonly expected: string;
    }
  /** A union discriminator or alternate that matches no branch. */
  | { readonly kind: "variant"; readonly path: string; readonly message: string };

/** A value does not match its schema type. */
export class ValidationError extends QmpError {
  override name = "ValidationError";
  constructor(
    /** What was validated: `SHUTDOWN data`, `arguments of set-action`, … */
    readonly subject: string,
    readonly issues: readonly ValidationIssue[],
    options?: ErrorOptions,
  ) {
    super(`${subject} is invalid: ${issues.map(describeIssue).join("; ")}`, options);
  }
}
export const isValidationError = (e: unknown): e is ValidationError =>
  hasName(e, "ValidationError");

/** A short English description of one issue (not QEMU's wording: see the server for that). */
export function describeIssue(issue: ValidationIssue): string {
  const at = issue.path === "" ? "the value" : `'${issue.path}'`;
  switch (issue.kind) {
    case "missing":
      return `${at} is missing`;
    case "unexpected":
      return `${at} is unexpected`;
    case "type":
      return `${at} should be ${issue.expected}, not ${issue.actual}`;
    case "enum":
      return `${at} does not accept '${issue.value}' (one of ${issue.allowed.join(", ")})`;
    case "range":
      return `${at} expects ${issue.expected}, not ${String(issue.value)}`;
    case "variant":
      return `${at}: ${issue.message}`;
  }
}

/** Where in a QAPI schema file something is. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** A QAPI schema file is wrong. The message is `file:line:col: what is wrong`. */
export class SchemaError extends QmpError {
  override name = "SchemaError";
  constructor(
    readonly reason: string,
    readonly location: SourceLocation,
    /** The include chain, outermost first, as QEMU prints "In file included from …". */
    readonly includedFrom: readonly SourceLocation[] = [],
    options?: ErrorOptions,
  ) {
    super(`${location.file}:${location.line}:${location.column}: ${reason}`, options);
  }
}
export const isSchemaError = (e: unknown): e is SchemaError => hasName(e, "SchemaError");
