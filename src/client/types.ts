/**
 * The client's view of QMP messages: the greeting, events, and the typing of commands and events
 * through the generated `QmpCommandMap` / `QmpEventMap`.
 *
 * Names the schema knows get their generated types; any other name (real QEMUs have commands and
 * events this project does not model) falls back to untyped JSON, so the client can talk to every
 * QEMU without a cast.
 *
 * @module
 */
import type { JsonObject } from "../base/json.js";
import type { QmpCommandMap, QmpEventMap } from "../generated/index.js";
import type { QemuVersion } from "../schema/qemu-version.js";

/**
 * `{ major, minor, micro }` of the peer's QEMU (qmp-spec "Server Greeting", §1.2): the project's
 * one version type (schema/qemu-version.ts), compared with `compareQemuVersions`.
 */
export type QemuVersionTriple = QemuVersion;

/**
 * The greeting the peer sends on connect (§1.2):
 * `{"QMP": {"version": {"qemu": {...}, "package": "..."}, "capabilities": [...]}}`.
 */
export interface QmpGreeting {
  readonly version: {
    readonly qemu: QemuVersionTriple;
    /** `QEMU_PKGVERSION`: empty for a release tarball, a distro string for distro builds. */
    readonly package: string;
  };
  /** What the server offers; only `oob` exists in QEMU 7.2 to 10.2. */
  readonly capabilities: readonly string[];
}

/** The wall-clock time the peer built an event at (§1.6). */
export interface QmpTimestamp {
  readonly seconds: number;
  readonly microseconds: number;
}

/** Event names the generated schema knows. */
export type KnownEventName = keyof QmpEventMap & string;

/** An event name: a known one (with autocompletion) or any other string. */
export type EventName = KnownEventName | (string & {});

/** The data of event `N`: generated for known names, plain JSON (or absent) otherwise. */
export type EventData<N extends string> = N extends KnownEventName
  ? QmpEventMap[N]
  : JsonObject | undefined;

/**
 * One QMP event (§1.6). `data` is `undefined` for events without data (STOP, RESUME, …), as QEMU
 * leaves the member out.
 */
export interface QmpEvent<N extends string = string, D = EventData<N>> {
  readonly event: N;
  readonly data: D;
  readonly timestamp: QmpTimestamp;
}

/** The typed event union for a set of names (distributes over the union `N`). */
export type QmpEventOf<N extends string> = N extends unknown ? QmpEvent<N> : never;

/** Command names the generated schema knows. */
export type KnownCommandName = keyof QmpCommandMap & string;

/** A command name: a known one (with autocompletion) or any other string. */
export type CommandName = KnownCommandName | (string & {});

/** The arguments of command `K`: generated for known names, any JSON object otherwise. */
export type CommandArgs<K extends string> = K extends KnownCommandName
  ? QmpCommandMap[K] extends { args: infer A }
    ? A
    : JsonObject
  : JsonObject;

/** What command `K` returns: generated for known names, `unknown` otherwise. */
export type CommandReturn<K extends string> = K extends KnownCommandName
  ? QmpCommandMap[K] extends { returns: infer R }
    ? R
    : unknown
  : unknown;

/**
 * The parameters after the command name: the arguments may be left out when every member is
 * optional (or there are none), and must be given otherwise.
 */
export type CommandParams<K extends string, O> =
  {} extends CommandArgs<K>
    ? [args?: CommandArgs<K> | undefined, options?: O | undefined]
    : [args: CommandArgs<K>, options?: O | undefined];
