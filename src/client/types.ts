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

/**
 * What a client is typed by: a map of commands (`{ args, returns }` per name) and a map of events
 * (data per name). A typing with `open: true` also accepts any other name, untyped; without it
 * only its own names compile.
 */
export interface QmpTyping {
  readonly commands: object;
  readonly events: object;
  readonly open?: true | undefined;
}

/**
 * The default typing: qmpkit's catalogue, open (real QEMUs have commands and events the
 * catalogue does not describe). For the whole of one release, closed, use `qmpkit/qemu/7.2`'s
 * `Qemu7_2` or `qmpkit/qemu/10.0`'s `Qemu10_0`.
 */
export interface CatalogueTyping {
  readonly commands: QmpCommandMap;
  readonly events: QmpEventMap;
  readonly open: true;
}

/** Event names the typing knows. */
export type KnownEventName<T extends QmpTyping = CatalogueTyping> = keyof T["events"] & string;

/** An event name: a known one (with autocompletion), or, in an open typing, any other string. */
export type EventName<T extends QmpTyping = CatalogueTyping> = T extends { open: true }
  ? KnownEventName<T> | (string & {})
  : KnownEventName<T>;

/** The data of event `N`: as typed for known names, plain JSON (or absent) otherwise. */
export type EventData<N extends string, T extends QmpTyping = CatalogueTyping> =
  N extends KnownEventName<T> ? T["events"][N & keyof T["events"]] : JsonObject | undefined;

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
export type QmpEventOf<N extends string, T extends QmpTyping = CatalogueTyping> = N extends unknown
  ? QmpEvent<N, EventData<N, T>>
  : never;

/** Command names the typing knows. */
export type KnownCommandName<T extends QmpTyping = CatalogueTyping> = keyof T["commands"] & string;

/** A command name: a known one (with autocompletion), or, in an open typing, any other string. */
export type CommandName<T extends QmpTyping = CatalogueTyping> = T extends { open: true }
  ? KnownCommandName<T> | (string & {})
  : KnownCommandName<T>;

/** The arguments of command `K`: as typed for known names, any JSON object otherwise. */
export type CommandArgs<K extends string, T extends QmpTyping = CatalogueTyping> =
  K extends KnownCommandName<T>
    ? T["commands"][K & keyof T["commands"]] extends { args: infer A }
      ? A
      : JsonObject
    : JsonObject;

/** What command `K` returns: as typed for known names, `unknown` otherwise. */
export type CommandReturn<K extends string, T extends QmpTyping = CatalogueTyping> =
  K extends KnownCommandName<T>
    ? T["commands"][K & keyof T["commands"]] extends { returns: infer R }
      ? R
      : unknown
    : unknown;

/**
 * The parameters after the command name: the arguments may be left out when every member is
 * optional (or there are none), and must be given otherwise.
 */
export type CommandParams<K extends string, O, T extends QmpTyping = CatalogueTyping> =
  {} extends CommandArgs<K, T>
    ? [args?: CommandArgs<K, T> | undefined, options?: O | undefined]
    : [args: CommandArgs<K, T>, options?: O | undefined];
