/**
 * QmpServer: a QMP server that answers byte for byte as QEMU does.
 *
 * What it reproduces (citing `docs/qemu-behaviour.md` as §N and QEMU's
 * `monitor/qmp.c`, `monitor/monitor.c`, `qapi/qmp-dispatch.c`):
 * - the greeting and negotiation mode (§1.2, §1.3), per connection;
 * - monitors: each listener is like one `-qmp` chardev, serving one client at a time (further
 *   clients wait for their greeting) or `maxClients`; all monitors share one dispatcher, one
 *   throttle state and every event, as in one QEMU process;
 * - request checking in QEMU's order with QEMU's texts (§1.4), `id` echoed verbatim;
 * - in-band requests answered strictly in order, one at a time, by one dispatcher shared by all
 *   clients in round-robin order; `exec-oob` dispatched at once (§1.7);
 * - events stamped when built, throttled globally (§2), broadcast to negotiated clients (§1.6),
 *   through an {@link EventBus}: the server's own, or one shared by several servers (the
 *   monitors of one simulated machine), so that every monitor gets the same bytes;
 * - output as QEMU's JSON writer prints it, each message ending in `\r\n` (§1.1).
 *
 * The in-band dispatcher never starts a request before the previous reply was written, and
 * never throws: a handler's failure becomes an error reply.
 *
 * Known difference: QEMU watches a unix socket for hang-up and drops a vanished client at once;
 * here (as QEMU does on TCP) a client that disconnects while its command runs is noticed when
 * the reply is written, so with one client slot the next client waits for that command.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { type QmpErrorClass, StateError, type ValidationIssue } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { commandValidators, type QmpCommandMap, type QmpEventMap } from "../generated/index.js";
import type { Validator } from "../schema/validator.js";
import { type Listener, listen, qdictKeyOrder } from "../wire/index.js";
import { checkCapabilitiesArguments, checkCapabilitiesOffered } from "./capabilities.js";
import { type ServerClock, systemClock } from "./clock.js";
import { type BuiltEvent, EventBus, type EventSink, monitorText } from "./event-bus.js";
import { isQmpReplyError } from "./reply-error.js";
import { checkRequest, describeArgumentIssue, selectArgumentIssue } from "./request.js";
import { QmpSession, type SessionHost, type SessionInfo } from "./session.js";
import { type ThrottleTable, throttleTableFor } from "./throttle.js";

/** `query-version`'s answer, as the greeting carries it (§1.2). */
export interface QmpVersionInfo {
  readonly qemu: { readonly major: number; readonly minor: number; readonly micro: number };
  /** `QEMU_PKGVERSION`: empty for a release tarball, a distro string for distro builds. */
  readonly package: string;
}

/** The QEMU version a server plays when told nothing: Debian 12's QEMU 7.2.22, as observed. */
export const DEFAULT_VERSION: QmpVersionInfo = Object.freeze({
  qemu: Object.freeze({ major: 7, minor: 2, micro: 22 }),
  package: "Debian 1:7.2+dfsg-7+deb12u18+b3",
});

/** What the greeting says (§1.2). */
export interface QmpGreetingOptions {
  /** Default {@link DEFAULT_VERSION}. */
  readonly version?: QmpVersionInfo | undefined;
  /**
   * Capabilities offered. Default `["oob"]`, as QEMU offers on socket and stdio monitors; `[]`
   * plays a monitor without an I/O thread, which cannot enable OOB.
   */
  readonly capabilities?: readonly string[] | undefined;
}

/** Options of {@link QmpServer}. */
export interface QmpServerOptions {
  readonly greeting?: QmpGreetingOptions | undefined;
  /**
   * Wall clock and timers for event timestamps and throttling. Default {@link systemClock}. With
   * `events`, the bus's clock stamps and throttles the events.
   */
  readonly clock?: ServerClock | undefined;
  /**
   * The process's events, shared with other servers: `emit` raises the event there, and this
   * server's clients receive every event raised on it (built, stamped and throttled once for all
   * of them, as one QEMU process does for its monitors). Default: a bus of the server's own, made
   * from `clock`, `throttle` and `validateEvents` (which are then not used).
   */
  readonly events?: EventBus | undefined;
  /**
   * How many clients each monitor (each `listen`) serves at once. Default 1, like a QEMU socket
   * chardev: a further client is accepted but gets its greeting only when an earlier one
   * leaves. Overridden per listener by `listen(target, { maxClients })`.
   */
  readonly maxClients?: number | undefined;
  /** Throttled events. Default: the table of the greeting's QEMU version ({@link throttleTableFor}). */
  readonly throttle?: ThrottleTable | undefined;
  /**
   * Pretty-print output with 4-space indentation, like `-mon …,pretty=on`. Default false;
   * overridden per monitor by `listen(target, { pretty })` and `accept(stream, { pretty })`.
   */
  readonly pretty?: boolean | undefined;
  /** Per-message input limit. Default the wire layer's (QEMU's 64 MiB). */
  readonly maxMessageBytes?: number | undefined;
  /**
   * Play `--preconfig`: commands registered without `allowPreconfig` fail (§1.4 step 7) until
   * {@link QmpServer.preconfig} is set to false. Default false.
   */
  readonly preconfig?: boolean | undefined;
  /** Sees every chunk read (latin1 text of the bytes) and every message written. */
  readonly onTraffic?:
    | ((direction: "in" | "out", text: string, session: SessionInfo) => void)
    | undefined;
  /**
   * Called when a handler (or an `afterReply` callback) throws something other than a
   * {@link QmpReplyError}; the client gets a GenericError with the error's message.
   */
  readonly onHandlerError?: ((error: unknown, command: string) => void) | undefined;
  /**
   * Check the data of every emitted event the schema knows against its generated validator
   * (strict mode); `emit` then throws a `ValidationError` instead of sending a malformed event.
   * For simulators and tests. Default false.
   */
  readonly validateEvents?: boolean | undefined;
  /** Called when a client's session opens (greeting sent) and when it closes. */
  readonly onSession?: ((session: SessionInfo, change: "open" | "close") => void) | undefined;
}

/** Options of {@link QmpServer.addMonitor}. */
export interface MonitorOptions {
  /** Clients served at once; further ones wait for their greeting. Default: the server's. */
  readonly maxClients?: number | undefined;
  /** Pretty-printed output. Default: the server's. */
  readonly pretty?: boolean | undefined;
}

/** Options of {@link QmpServer.listen}. */
export interface ListenOptions extends MonitorOptions {
  readonly signal?: AbortSignal | undefined;
}

/** A group of client slots, like one QEMU monitor chardev. */
export interface QmpMonitor {
  /** Serves a stream in this monitor: at once if a slot is free, else when one frees up. */
  accept(stream: Duplex): SessionInfo;
}

interface Monitor extends QmpMonitor {
  readonly maxClients: number;
  readonly pretty: boolean;
  active: number;
  readonly waiting: QmpSession[];
  /** Made by `accept()` for one stream: forgotten when that stream closes. */
  transient?: boolean;
}

/** What a handler learns about the request it serves. */
export interface CommandContext {
  /** The command name as sent. */
  readonly command: string;
  /** The request's `id`, verbatim; `undefined` when it had none. */
  readonly id: JsonValue | undefined;
  /** Whether the request came with `exec-oob`. */
  readonly oob: boolean;
  /** The client. */
  readonly session: SessionInfo;
  /** Aborted when the client disconnects; the reply would be dropped anyway. */
  readonly signal: AbortSignal;
  /**
   * Runs `fn` right after the reply has been written (or dropped, if the client left), before
   * the next in-band request. For QEMU before 9.0, where events that the main loop emits for
   * `system_reset`, `system_powerdown`, `quit` came after the reply (§1.9).
   */
  afterReply(fn: () => void): void;
}

/** The context of one request: a class, so that serving a request creates no closures. */
class RequestContext implements CommandContext {
  constructor(
    readonly command: string,
    readonly id: JsonValue | undefined,
    readonly oob: boolean,
    readonly session: QmpSession,
  ) {}

  /** Functions to run once the reply is written; allocated by the first `afterReply` only. */
  callbacks: Array<() => void> | undefined;

  get signal(): AbortSignal {
    return this.session.abort.signal;
  }

  afterReply(fn: () => void): void {
    (this.callbacks ??= []).push(fn);
  }
}

type CommandArgs<K extends string> = K extends keyof QmpCommandMap
  ? QmpCommandMap[K] extends { args: infer A }
    ? A
    : JsonObject
  : JsonObject;
type CommandReturns<K extends string> = K extends keyof QmpCommandMap
  ? QmpCommandMap[K] extends { returns: infer R }
    ? R
    : unknown
  : unknown;
type EventData<K extends string> = K extends keyof QmpEventMap ? QmpEventMap[K] : unknown;

/**
 * A command handler: the arguments (already checked when a validator was given) and the
 * context; returns the `return` value (`undefined` answers `{}`), or throws a
 * {@link QmpReplyError}.
 */
export type CommandHandler<A = JsonObject, R = unknown> = (
  args: A,
  ctx: CommandContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing (sync or async) answers {}
) => R | undefined | void | Promise<R | undefined | void>;

/** Options of {@link QmpServer.command}. */
export interface CommandOptions {
  /**
   * Checks the arguments before the handler runs (strict mode); the first issue becomes the
   * GenericError QEMU sends (§1.4 step 8). Default: the generated validator when the schema
   * knows the command (as QEMU's generated marshaller always checks), else none. `false`: the
   * handler gets whatever object came.
   */
  readonly args?: Validator<unknown> | false | undefined;
  /** `allow-oob`: may be sent with `exec-oob`. Default false. */
  readonly allowOob?: boolean | undefined;
  /** `allow-preconfig`: usable during `--preconfig`. Default false. */
  readonly allowPreconfig?: boolean | undefined;
}

interface RegisteredCommand {
  readonly handler: CommandHandler<never, unknown>;
  readonly options: CommandOptions;
  readonly validator: Validator<unknown> | undefined;
  disabled: { readonly reason: string | undefined } | undefined;
}

/** A validator for commands without arguments: every member is unexpected. */
export const noArguments: Validator<Record<string, never>> = {
  name: "no arguments",
  check: (value): value is Record<string, never> =>
    isJsonObject(value) && Object.keys(value).length === 0,
  errors(value): ValidationIssue[] {
    if (!isJsonObject(value))
      return [{ kind: "type", path: "", expected: "object", actual: typeof value }];
    return Object.keys(value).map((path) => ({ kind: "unexpected", path }));
  },
  parse(value) {
    return value as Record<string, never>;
  },
};

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

function errorResponse(errorClass: string, desc: string, id: JsonValue | undefined): JsonObject {
  // Insertion order as QEMU builds it (qmp_error_response, then the id): it decides the
  // printed order only within a hash bucket, but that is what the writer follows.
  const response: JsonObject = { error: { class: errorClass, desc } };
  if (id !== undefined) response.id = id;
  return response;
}

function successResponse(value: JsonValue, id: JsonValue | undefined): JsonObject {
  const response: JsonObject = { return: value };
  if (id !== undefined) response.id = id;
  return response;
}

/** How a request ended: a `return` value, or a QMP error. */
type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | {
      readonly ok: false;
      readonly errorClass: QmpErrorClass | (string & {});
      readonly desc: string;
    };

const succeeded = (value: unknown): Outcome => ({ ok: true, value });

// Options objects made once rather than per request.
const CHECK_OOB_ON = { oobEnabled: true, orderKeys: qdictKeyOrder } as const;
const CHECK_OOB_OFF = { oobEnabled: false, orderKeys: qdictKeyOrder } as const;
/** The server checks arguments as QEMU does: unknown members are errors. */
const STRICT = { mode: "strict" } as const;
const failed = (errorClass: QmpErrorClass | (string & {}), desc: string): Outcome => ({
  ok: false,
  errorClass,
  desc,
});

/**
 * A QMP server.
 *
 * @example
 * const server = new QmpServer({ greeting: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "" } } });
 * server.command("query-status", () => ({ status: "running", singlestep: false, running: true }));
 * server.command("stop", () => { server.emit("STOP"); });
 * const listener = await server.listen("unix:/tmp/vm.qmp");
 * // …
 * await server.close();
 */
export class QmpServer {
  private readonly commands = new Map<string, RegisteredCommand>();
  /** Every session being served, across monitors, in dispatch (round-robin) order. */
  private readonly sessions: QmpSession[] = [];
  private readonly monitors = new Set<Monitor>();
  private readonly listeners: Listener[] = [];
  private readonly events: EventBus;
  /** Whether `events` is the server's own (closed with it) rather than shared. */
  private readonly ownsEvents: boolean;
  private readonly sink: EventSink = { deliverEvent: (event) => this.broadcast(event) };
  private readonly version: QmpVersionInfo;
  private readonly offered: readonly string[];
  private readonly maxClients: number;
  private readonly pretty: boolean;
  private readonly host: SessionHost;
  private nextSessionId = 1;
  private dispatching = false;
  private kickScheduled = false;
  private closing = false;
  /** Whether the machine is in `--preconfig` (commands need `allowPreconfig`). */
  preconfig: boolean;

  constructor(private readonly options: QmpServerOptions = {}) {
    this.version = options.greeting?.version ?? DEFAULT_VERSION;
    this.offered = [...(options.greeting?.capabilities ?? ["oob"])];
    this.maxClients = options.maxClients ?? 1;
    this.preconfig = options.preconfig ?? false;
    this.ownsEvents = options.events === undefined;
    this.events =
      options.events ??
      new EventBus({
        throttle: options.throttle ?? throttleTableFor(this.version.qemu),
        clock: options.clock ?? systemClock,
        validate: options.validateEvents,
      });
    this.events.attach(this.sink);
    this.pretty = options.pretty ?? false;
    this.host = {
      maxMessageBytes: options.maxMessageBytes,
      greeting: () => this.greeting(),
      serialize: monitorText,
      kick: (deferred) => {
        if (deferred !== true) {
          this.kick();
        } else if (!this.kickScheduled) {
          this.kickScheduled = true;
          queueMicrotask(() => {
            this.kickScheduled = false;
            this.kick();
          });
        }
      },
      dispatchOob: (session, request) => this.dispatchOob(session, request),
      sessionClosed: (session) => this.sessionClosed(session),
      traffic:
        options.onTraffic === undefined
          ? undefined
          : (session, direction, text) => options.onTraffic?.(direction, text, session),
    };
  }

  /** The clients being served (negotiating or negotiated), in dispatch order. */
  get clients(): readonly SessionInfo[] {
    return [...this.sessions];
  }

  /** How many accepted clients wait for their greeting, over all monitors. */
  get waitingClients(): number {
    let n = 0;
    for (const m of this.monitors) n += m.waiting.length;
    return n;
  }

  /** The throttle table in force (the event bus's, shared when the bus is). */
  setThrottleTable(table: ThrottleTable): void {
    this.events.setThrottleTable(table);
  }

  /** The throttle state, for tests and diagnostics. */
  get throttleState(): { readonly records: number; readonly held: number } {
    return this.events.throttleState;
  }

  /**
   * Registers (or replaces) a command. `qmp_capabilities` is built in and cannot be replaced.
   *
   * @throws {TypeError} for `qmp_capabilities` or an empty name.
   */
  command<K extends string>(
    name: K,
    handler: CommandHandler<CommandArgs<K>, CommandReturns<K>>,
    options: CommandOptions = {},
  ): this {
    if (name === "qmp_capabilities" || name === "") {
      throw new TypeError(`cannot register command: '${name}' is reserved`);
    }
    const generated = Object.hasOwn(commandValidators, name)
      ? (commandValidators as Record<string, { readonly args: Validator<unknown> }>)[name]!.args
      : undefined;
    this.commands.set(name, {
      handler: handler as CommandHandler<never, unknown>,
      options,
      validator: options.args === false ? undefined : (options.args ?? generated),
      disabled: undefined,
    });
    return this;
  }

  /** Removes a command; it then answers CommandNotFound. */
  removeCommand(name: string): boolean {
    return this.commands.delete(name);
  }

  /** Whether a command is registered. */
  hasCommand(name: string): boolean {
    return name === "qmp_capabilities" || this.commands.has(name);
  }

  /**
   * Disables a command like `qmp_disable_command`: it then answers CommandNotFound
   * `Command <name> has been disabled[: reason]`.
   */
  disableCommand(name: string, reason?: string): void {
    const cmd = this.commands.get(name);
    if (cmd !== undefined) cmd.disabled = { reason };
  }

  /** Enables a disabled command again. */
  enableCommand(name: string): void {
    const cmd = this.commands.get(name);
    if (cmd !== undefined) cmd.disabled = undefined;
  }

  /**
   * Emits an event on the server's {@link EventBus}: stamped now with the wall clock, throttled
   * as QEMU does (§2), then sent to every client that has finished negotiation, on this server
   * and on every other server sharing the bus; others never see it (§1.3). Events emitted while
   * one is being delivered keep their order (`qapi_event_emit`'s FIFO). Returns the event as
   * built (a held event goes out later, with this timestamp).
   *
   * `data` is printed with QEMU's key order; build it with members in schema order, as QEMU's
   * generated code inserts them.
   *
   * @throws ValidationError with `validateEvents`, when the data does not match the schema.
   */
  emit<K extends string>(name: K, data?: EventData<K>): JsonObject {
    // A closed server has no clients and must not arm throttle timers any more.
    if (this.closing) return this.events.build(name, data as JsonObject | undefined);
    return this.events.emit(name, data as JsonObject | undefined);
  }

  /**
   * Adds a monitor: a group of client slots like one QEMU `-mon`/`-qmp` chardev, serving
   * `maxClients` clients at once (default: the server's), further clients waiting for their
   * greeting. All monitors share the dispatcher, the throttle state and every event.
   */
  addMonitor(options: MonitorOptions = {}): QmpMonitor {
    const monitor: Monitor = {
      maxClients: options.maxClients ?? this.maxClients,
      pretty: options.pretty ?? this.pretty,
      active: 0,
      waiting: [],
      accept: (stream) => this.acceptOn(monitor, stream),
    };
    this.monitors.add(monitor);
    return monitor;
  }

  /**
   * Serves a connected stream (a socket, a child's stdio, one end of a memory pair) at once, as
   * a monitor of its own (like `-qmp stdio`). For one-at-a-time slots shared by several
   * streams, use {@link QmpServer.addMonitor}.
   */
  accept(stream: Duplex, options: { readonly pretty?: boolean | undefined } = {}): SessionInfo {
    const monitor = this.addMonitor({ maxClients: 1, pretty: options.pretty }) as Monitor;
    monitor.transient = true;
    return monitor.accept(stream);
  }

  private acceptOn(monitor: Monitor, stream: Duplex): SessionInfo {
    // Keep writing after the peer half-closes: QEMU answers requests sent before an EOF (it
    // reads the EOF only once they are done, §1.7) and then hangs up itself.
    stream.allowHalfOpen = true;
    const session = new QmpSession(
      this.nextSessionId++,
      stream,
      this.host,
      monitor.pretty,
      monitor,
    );
    if (this.closing) {
      session.close();
      return session;
    }
    if (monitor.active < monitor.maxClients) this.admit(monitor, session);
    else monitor.waiting.push(session);
    return session;
  }

  /**
   * Listens on `unix:PATH` or `tcp:HOST:PORT` as a new monitor and serves every connection,
   * `maxClients` at a time. Resolves with the wire layer's listener (`address`, `close()`).
   */
  async listen(target: string, options: ListenOptions = {}): Promise<Listener> {
    options.signal?.throwIfAborted();
    const monitor = this.addMonitor(options);
    const listener = await listen(target, (stream) => {
      monitor.accept(stream);
    });
    if (this.closing || options.signal?.aborted) {
      await listener.close();
      options.signal?.throwIfAborted();
      throw new StateError(`listen on ${target} failed: the server is closed`, "closed", "open");
    }
    this.listeners.push(listener);
    return listener;
  }

  /**
   * Stops listening, disconnects every client (pending handler results are dropped) and
   * cancels throttle timers. Idempotent.
   */
  async close(): Promise<void> {
    this.closing = true;
    const listeners = this.listeners.splice(0);
    const waiting = [...this.monitors].flatMap((m) => m.waiting);
    for (const s of [...waiting, ...this.sessions]) s.close();
    this.events.detach(this.sink);
    if (this.ownsEvents) this.events.close();
    await Promise.all(listeners.map((l) => l.close()));
  }

  private greeting(): JsonObject {
    const { major, minor, micro } = this.version.qemu;
    // query-version's output visitor inserts members in schema order.
    return {
      QMP: {
        version: { qemu: { major, minor, micro }, package: this.version.package },
        capabilities: [...this.offered],
      },
    };
  }

  private admit(monitor: Monitor, session: QmpSession): void {
    monitor.active++;
    this.sessions.push(session);
    session.open();
    if (!session.isClosed) this.options.onSession?.(session, "open");
  }

  private sessionClosed(session: QmpSession): void {
    const monitor = session.monitor as Monitor;
    const w = monitor.waiting.indexOf(session);
    if (w >= 0) {
      monitor.waiting.splice(w, 1);
      return;
    }
    const i = this.sessions.indexOf(session);
    if (i < 0) return;
    this.sessions.splice(i, 1);
    monitor.active--;
    if (monitor.transient) this.monitors.delete(monitor);
    this.options.onSession?.(session, "close");
    while (!this.closing && monitor.active < monitor.maxClients && monitor.waiting.length > 0) {
      this.admit(monitor, monitor.waiting.shift()!);
    }
  }

  private broadcast(event: BuiltEvent): void {
    // Printed once per output style for every server on the bus: every client gets the same
    // bytes (§1.6).
    for (const session of this.sessions) {
      if (session.state === "command") session.writeText(event.text(session.pretty));
    }
  }

  /**
   * The in-band dispatcher (`monitor_qmp_dispatcher_co`): one request at a time across all
   * clients, round-robin; a client's next request starts only after the reply to its previous
   * one was written. Synchronous handlers are served in one loop, without a tick per request.
   */
  private kick(): void {
    if (this.dispatching || this.kickScheduled) return;
    this.dispatching = true;
    let pending: Promise<void> | undefined;
    try {
      pending = this.dispatchReady();
    } finally {
      if (pending === undefined) this.dispatching = false;
    }
    if (pending !== undefined) {
      void pending.finally(() => {
        this.dispatching = false;
        this.kick();
      });
    }
  }

  /**
   * Serves queued requests until none is ready, or one is answered asynchronously: then returns
   * a promise (never rejecting) that settles once that reply is written and the client resumed.
   */
  private dispatchReady(): Promise<void> | undefined {
    for (;;) {
      const sessions = this.sessions;
      let index = 0;
      while (index < sessions.length && !sessions[index]!.ready) index++;
      if (index === sessions.length) return undefined;
      const session = sessions[index]!;
      // Round-robin: the client just served goes to the back (monitor_qmp_requests_pop_any).
      if (index < sessions.length - 1) {
        sessions.splice(index, 1);
        sessions.push(session);
      }
      const request = session.take()!;
      // Saved first: qmp_capabilities may enable OOB while this request runs.
      const oobEnabled = session.oobEnabled;
      let pending: Promise<void> | undefined;
      if (request.kind === "error") {
        // A parse error, queued in-band to keep its place in the reply order (§1.4 step 1).
        session.write(errorResponse("GenericError", request.desc, undefined));
      } else {
        pending = this.execute(session, request.value);
      }
      if (pending !== undefined) {
        return pending.then(() => {
          if (!oobEnabled) session.resume();
        });
      }
      if (!oobEnabled) session.resume();
    }
  }

  private dispatchOob(session: QmpSession, request: JsonValue): void {
    void this.execute(session, request);
  }

  /**
   * `qmp_dispatch` for one parsed request, then the reply. Returns a promise only when a
   * handler answered asynchronously; it never rejects.
   */
  private execute(session: QmpSession, request: JsonValue): Promise<void> | undefined {
    const checked = checkRequest(request, session.oobEnabled ? CHECK_OOB_ON : CHECK_OOB_OFF);
    if (checked.kind === "error") {
      this.reply(session, failed("GenericError", checked.desc), checked.id, []);
      return undefined;
    }
    const { name, args, id, oob } = checked;
    const failure = this.precheck(session, name, args, oob);
    if (failure !== undefined) {
      this.reply(session, failure, id, undefined);
      return undefined;
    }
    if (name === "qmp_capabilities") {
      this.reply(session, this.capabilities(session, args), id, undefined);
      return undefined;
    }
    const ctx = new RequestContext(name, id, oob, session);
    let result: unknown;
    try {
      const handler = this.commands.get(name)!.handler as CommandHandler<JsonObject, unknown>;
      result = handler(args, ctx);
    } catch (error) {
      this.reply(session, this.failureOf(error, name), id, ctx.callbacks, name);
      return undefined;
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result)
        .then(
          (value) => this.reply(session, succeeded(value), id, ctx.callbacks, name),
          (error: unknown) =>
            this.reply(session, this.failureOf(error, name), id, ctx.callbacks, name),
        )
        .catch((error: unknown) => this.options.onHandlerError?.(error, name));
    }
    this.reply(session, succeeded(result), id, ctx.callbacks, name);
    return undefined;
  }

  /** §1.4 steps 5–8: command lookup, disabled, OOB, preconfig, arguments. */
  private precheck(
    session: QmpSession,
    name: string,
    args: JsonObject,
    oob: boolean,
  ): Outcome | undefined {
    const negotiating = session.state === "negotiating";
    if (name === "qmp_capabilities") {
      // Registered without allow-oob (qapi/control.json), with allow-preconfig.
      return oob ? failed("GenericError", `The command ${name} does not support OOB`) : undefined;
    }
    const cmd = negotiating ? undefined : this.commands.get(name);
    if (cmd === undefined) {
      return failed("CommandNotFound", `The command ${name} has not been found`);
    }
    if (cmd.disabled !== undefined) {
      const reason = cmd.disabled.reason;
      return failed(
        "CommandNotFound",
        `Command ${name} has been disabled${reason === undefined ? "" : `: ${reason}`}`,
      );
    }
    if (oob && !cmd.options.allowOob) {
      return failed("GenericError", `The command ${name} does not support OOB`);
    }
    if (this.preconfig && !cmd.options.allowPreconfig) {
      return failed(
        "GenericError",
        `The command '${name}' is permitted only after machine initialization has completed`,
      );
    }
    const validator = cmd.validator;
    if (validator !== undefined) {
      const issue = selectArgumentIssue(validator.errors(args, STRICT), args, qdictKeyOrder);
      if (issue !== undefined) return failed("GenericError", describeArgumentIssue(issue));
    }
    return undefined;
  }

  /** `qmp_qmp_capabilities` (§1.3): arguments first, then the mode, then the offer. */
  private capabilities(session: QmpSession, args: JsonObject): Outcome {
    const checked = checkCapabilitiesArguments(args, qdictKeyOrder);
    if ("desc" in checked) return failed("GenericError", checked.desc);
    if (session.state !== "negotiating") {
      return failed(
        "CommandNotFound",
        "Capabilities negotiation is already complete, command ignored",
      );
    }
    const unavailable = checkCapabilitiesOffered(checked.enable, this.offered);
    if (unavailable !== undefined) return failed("GenericError", unavailable);
    session.negotiated(checked.enable);
    return succeeded(undefined);
  }

  private failureOf(error: unknown, command: string): Outcome {
    if (isQmpReplyError(error)) return failed(error.errorClass, error.desc);
    this.options.onHandlerError?.(error, command);
    return failed("GenericError", error instanceof Error ? error.message : String(error));
  }

  /**
   * Writes the reply (unless the client left) and runs the `afterReply` callbacks. In
   * negotiation mode a CommandNotFound desc is replaced (`monitor_qmp_dispatch`, §1.3).
   */
  private reply(
    session: QmpSession,
    outcome: Outcome,
    id: JsonValue | undefined,
    afterReply: ReadonlyArray<() => void> | undefined,
    command = "request",
  ): void {
    let text: string;
    try {
      if (!outcome.ok) {
        const { errorClass } = outcome;
        const desc =
          session.state === "negotiating" && errorClass === "CommandNotFound"
            ? "Expecting capabilities negotiation with 'qmp_capabilities'"
            : outcome.desc;
        text = monitorText(errorResponse(errorClass, desc, id), session.pretty);
      } else {
        const value = outcome.value === undefined ? {} : (outcome.value as JsonValue);
        text = monitorText(successResponse(value, id), session.pretty);
      }
    } catch (error) {
      // A handler returned something that is not JSON (a function, a cycle, …): the client
      // still gets an answer, and the bug is reported.
      this.options.onHandlerError?.(error, command);
      const desc = `${command} returned a value that cannot be sent: ${error instanceof Error ? error.message : String(error)}`;
      text = monitorText(errorResponse("GenericError", desc, id), session.pretty);
    }
    session.writeText(text);
    if (afterReply === undefined) return;
    for (const fn of afterReply) {
      try {
        fn();
      } catch (error) {
        this.options.onHandlerError?.(error, command);
      }
    }
  }
}
