/**
 * `QmpClient`: the public facade of the QMP client. It keeps what outlives one connection (the
 * event hub and its streams, the run-state tracker, validation, the client's state and
 * lifetime) and puts the parts together:
 *
 * - `link.ts`: one connection to the peer (greeting, negotiation, id routing, pending commands);
 * - `reconnect.ts`: whether and when to connect again after a drop;
 * - `event-hub.ts`, `event-stream.ts`: events to waiters, callbacks, streams and the history;
 * - `run-state-tracker.ts`: the peer's run state from `query-status` and events;
 * - `validation.ts`: replies and events checked against the schema.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { armDeadline, startBudget, withDeadline } from "../base/deadline.js";
import {
  ConnectError,
  ConnectionClosedError,
  isConnectionClosedError,
  QmpError,
  StateError,
  TimeoutError,
} from "../base/errors.js";
import type { JsonObject } from "../base/json.js";
import { openStream } from "../wire/index.js";
import { AbortError, type ExecuteAndWaitDetails, WaitClosedError } from "./errors.js";
import { DEFAULT_HISTORY_SIZE, EventHub, type HubReport } from "./event-hub.js";
import {
  EventStream,
  type EventStreamNotice,
  type EventStreamOptions,
  type GapNotice,
  type RunStateItem,
} from "./event-stream.js";
import { AbandonedCalls, Link, type LinkHost } from "./link.js";
import {
  type ClientNotice,
  type ClientState,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_STATUS_QUERY_TIMEOUT_MS,
  type ExecuteOptions,
  type QmpClientOptions,
  type ReconnectPolicy,
} from "./options.js";
import { reconnect, reconnectPolicy } from "./reconnect.js";
import {
  type RunState,
  type RunStateChange,
  RunStateTracker,
  type TrackerReport,
  type WaitOptions,
} from "./run-state-tracker.js";
import type {
  CommandName,
  CommandParams,
  CommandReturn,
  EventData,
  EventName,
  QmpEvent,
  QmpEventOf,
  QmpGreeting,
  CatalogueTyping,
  KnownEventName,
  QmpTyping,
} from "./types.js";
import { Validation } from "./validation.js";

/** What to connect to: `unix:PATH`, `tcp:HOST:PORT`, an open Duplex, or a factory of Duplexes. */
export type QmpTarget = string | Duplex | (() => Duplex | Promise<Duplex>);

/** Options of `executeAndWait()`. */
export interface ExecuteAndWaitOptions<E extends string, T extends QmpTyping = CatalogueTyping>
  extends ExecuteOptions {
  /** The event the command causes. */
  readonly event: E;
  /**
   * Which occurrence: a predicate, or members the event's `data` must have (compared with `===`,
   * e.g. `{ device: "nic0" }` for DEVICE_DELETED). Default: the first `event` of that name.
   */
  readonly where?:
    | ((event: QmpEventOf<E, T>) => boolean)
    | Partial<EventData<E, T> & object>
    | undefined;
  /** One budget for the reply and the event together (ms). */
  readonly timeoutMs?: number | undefined;
}

/** The result of `executeAndWait()`: the command's return value and the event. */
export interface ExecuteAndWaitResult<
  K extends string,
  E extends string,
  T extends QmpTyping = CatalogueTyping,
> {
  readonly result: CommandReturn<K, T>;
  readonly event: QmpEventOf<E, T>;
}

/**
 * The events a stream yields when it names none: any name in an open typing (untyped unless
 * named), every event of a closed one.
 */
type DefaultEventName<T extends QmpTyping> = T extends { open: true } ? string : KnownEventName<T>;

/** The options of a command called without any (shared: `Link.send` only reads them). */
const NO_OPTIONS: ExecuteOptions = Object.freeze({});

function targetName(target: QmpTarget): string {
  return typeof target === "string"
    ? target
    : typeof target === "function"
      ? "stream factory"
      : "duplex";
}

/** Now, as a QMP timestamp (for a change found by `query-status`, which has none of its own). */
function timestampNow(): QmpEvent["timestamp"] {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), microseconds: (ms % 1000) * 1000 };
}

/** Whether `event.data` has every member of `want` (compared with `===`). */
function dataMatches(event: QmpEvent, want: Partial<Record<string, unknown>>): boolean {
  const data = event.data as Record<string, unknown> | undefined;
  for (const key of Object.keys(want)) {
    if (data?.[key] !== want[key]) return false;
  }
  return true;
}

/**
 * What an `executeAndWait()` that failed with `error` rejects with: how far it got, when the
 * connection ended or the caller aborted with the platform's `AbortError`; any other error (a
 * `CommandError`, a `TimeoutError` that says `sent`, a reason of the caller's own) as it is.
 */
function waitFailed(
  error: unknown,
  details: ExecuteAndWaitDetails,
  signal: AbortSignal | undefined,
): unknown {
  if (signal?.aborted && error === signal.reason) {
    const isAbort = error instanceof Error && error.name === "AbortError";
    return isAbort ? new AbortError(details, { cause: error }) : error;
  }
  if (error instanceof ConnectionClosedError) {
    // A waiter failed by the hub says why (dropped, client closed); a command says its own.
    const why =
      error.command === undefined
        ? error.message
        : details.sent
          ? "the connection closed"
          : "the connection is closed";
    return new WaitClosedError(details, why, { cause: error });
  }
  return error;
}

/**
 * A QMP client. Create it with {@link QmpClient.connect}.
 *
 * @example
 * ```ts
 * await using qmp = await QmpClient.connect("unix:/run/vm1.qmp", { timeoutMs: 5_000 });
 * const { status } = await qmp.execute("query-status");
 * for await (const ev of qmp.events({ names: ["STOP", "RESUME"] })) console.log(ev.event);
 * ```
 */
export class QmpClient<T extends QmpTyping = CatalogueTyping> implements AsyncDisposable {
  readonly #target: QmpTarget;
  readonly #options: QmpClientOptions;
  readonly #hub: EventHub;
  readonly #tracker: RunStateTracker | undefined;
  readonly #reconnect: ReconnectPolicy | undefined;
  readonly #validation: Validation;
  #state: ClientState = "connecting";
  #link: Link | undefined;
  #greeting: QmpGreeting | undefined;
  #nextId = 0;
  /** Aborted when the client closes for good: stops reconnection attempts and their sleeps. */
  readonly #lifetime = new AbortController();
  #closeReason: Error | undefined;
  readonly #closed: Promise<Error | undefined>;
  #resolveClosed!: (reason: Error | undefined) => void;
  #finalizing = false;
  /** When and why the connection dropped, until a reconnection ends the gap. */
  #disconnectedAt: { at: Date; reason: Error | undefined } | undefined;
  /** The reconnection attempt under way (for the `reconnected` notice). */
  #attempt = 0;
  /** What each connection needs from the client; its members run in the reader loop. */
  readonly #host: LinkHost;

  private constructor(target: QmpTarget, options: QmpClientOptions) {
    this.#target = target;
    this.#options = options;
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#hub = new EventHub({
      historySize: options.historySize ?? DEFAULT_HISTORY_SIZE,
      report: (report: HubReport) => this.#notice(report),
    });
    if (options.trackRunState !== false) {
      this.#tracker = new RunStateTracker({
        // Every typing has query-status; the tracker reads it as the catalogue types it.
        query: () =>
          this.executeUnchecked("query-status", undefined, {
            timeoutMs: options.commandTimeoutMs ?? DEFAULT_STATUS_QUERY_TIMEOUT_MS,
          }),
        isClosing: () => this.#state !== "connected",
        report: (report: TrackerReport) => this.#notice(report),
      });
      this.#tracker.onChange((change) => this.#onRunStateChange(change));
    }
    this.#reconnect = reconnectPolicy(options.reconnect, target);
    this.#validation = new Validation(options.validate);
    const client = this;
    const abandoned = new AbandonedCalls();
    this.#host = {
      nextSeq: () => ++this.#nextId,
      commandTimeoutMs: options.commandTimeoutMs,
      get closeReason() {
        return client.#closeReason;
      },
      abandoned,
      onReady: (link) => this.#onLinkReady(link),
      onEvent: (event) => this.#onEvent(event),
      checkReply: (command, value) =>
        this.#validation.checkReply(command, value, (issues) =>
          this.#notice({ kind: "invalid-reply", command, issues }),
        ),
      notice: (notice) => this.#notice(notice),
      onClosed: (link, reason) => this.#onLinkClosed(link, reason),
    };
  }

  /**
   * Connects, reads the greeting, negotiates capabilities and (unless `trackRunState: false`) reads
   * the run state.
   *
   * `timeoutMs` bounds all of it. A peer that greets and negotiates but does not answer the first
   * `query-status` in time fails the connect too (a `TimeoutError` with `operation:
   * "query-status"`): a client returned by `connect` knows the run state. After a reconnection,
   * which no caller waits for, the state stays as last known until that query answers.
   *
   * @throws ConnectError when the peer cannot be reached, the greeting is not QMP, or negotiation
   *   fails (e.g. `oob` requested but not offered); TimeoutError when a step runs out of time
   *   (`operation`: `connect`, `greeting`, `negotiation` or `query-status`); the signal's reason
   *   when aborted.
   *
   * `setup` runs on the new client before it connects: a stream subscribed there
   * (`client.events(…)`) sees every event from the first, those QEMU sends during the handshake
   * included (after the negotiation, before the first `query-status` answers), which a stream
   * subscribed after `connect` returns would find only in the bounded `history`.
   */
  static async connect<T extends QmpTyping = CatalogueTyping>(
    target: QmpTarget,
    options: QmpClientOptions = {},
    setup?: (client: QmpClient<T>) => void,
  ): Promise<QmpClient<T>> {
    const client = new QmpClient<T>(target, options);
    setup?.(client);
    try {
      await client.#open(options.signal, options.timeoutMs, true);
    } catch (error) {
      client.#finish(
        error instanceof Error ? error : new ConnectError(String(error), targetName(target)),
      );
      await client.#closed;
      throw error;
    }
    return client;
  }

  /** The current connection's greeting (after a reconnect, the new one). */
  get greeting(): QmpGreeting {
    return this.#greeting!;
  }

  /** The capabilities negotiated on the current connection (`["oob"]` or `[]`). */
  get capabilities(): readonly string[] {
    return this.#link?.oob ? ["oob"] : [];
  }

  /** `connected`, `reconnecting` (with `reconnect`), or `closed`. */
  get state(): ClientState {
    return this.#state;
  }

  /** The peer's run state as tracked, `undefined` if unknown (or tracking is off). */
  get runState(): RunState | undefined {
    return this.#tracker?.state;
  }

  /** Resolves once the client is closed for good: `undefined` after `close()`, else the reason. Never rejects. */
  get closed(): Promise<Error | undefined> {
    return this.#closed;
  }

  /** Recent events, oldest first (bounded by `historySize`). */
  get history(): QmpEvent[] {
    return this.#hub.history;
  }

  /** Empties the history; returns what it held. */
  clearHistory(): QmpEvent[] {
    return this.#hub.clearHistory();
  }

  /**
   * Runs a command and resolves with its `return` value.
   *
   * Commands are typed by the client's typing: by default qmpkit's catalogue, where any other
   * name is accepted and returns `unknown`; with a release's typing
   * (`QmpClient.connect<Qemu10_0>(…)`) only that release's commands compile, with their
   * arguments. {@link executeUnchecked} runs any command, untyped.
   *
   * @throws CommandError when the peer answers with a QMP error (`errorClass`, `desc`);
   *   TimeoutError (`sent`) after `timeoutMs`; ConnectionClosedError when the connection ends
   *   first; StateError for `oob` without the capability; the signal's reason when aborted.
   */
  execute<K extends CommandName<T>>(
    name: K,
    ...params: CommandParams<K, ExecuteOptions, T>
  ): Promise<CommandReturn<K, T>> {
    const [args, options] = params as [JsonObject | undefined, ExecuteOptions | undefined];
    return this.executeUnchecked(name, args, options) as Promise<CommandReturn<K, T>>;
  }

  /**
   * Runs any command, typed or not, with any arguments: the escape hatch for commands outside
   * the client's typing (a newer QEMU's, a vendor's). Resolves with the `return` value as
   * `unknown`; throws as {@link execute}.
   */
  executeUnchecked(
    name: string,
    args?: JsonObject | undefined,
    options?: ExecuteOptions | undefined,
  ): Promise<unknown> {
    const link = this.#link;
    if (link === undefined || this.#state !== "connected") {
      return Promise.reject(this.#notConnected(name));
    }
    return link.send(name, args, options ?? NO_OPTIONS);
  }

  /**
   * Runs a command and waits for the event it causes, e.g. `stop` → STOP, `device_del` →
   * DEVICE_DELETED of that device. The wait starts before the command is sent, so the event cannot
   * be missed, whichever order the peer uses: the event before the reply (QEMU ≥ 9.0, 7.2.9+) or
   * after it (older, §1.9).
   *
   * @throws as `execute`; TimeoutError (`operation: "wait for EVENT"`) when the reply came but
   *   the event did not within `timeoutMs`; `WaitClosedError` (a `ConnectionClosedError`) when the
   *   connection ends first, with `details` (`sent`, `answered`, the `event`); when the signal
   *   aborts, its reason, or, for the platform's `AbortError`, qmpkit's `AbortError` with the
   *   same `details` and the reason as `cause`.
   */
  async executeAndWait<K extends CommandName<T>, E extends EventName<T>>(
    name: K,
    args: CommandParams<K, never, T>[0],
    options: ExecuteAndWaitOptions<E, T>,
  ): Promise<ExecuteAndWaitResult<K, E, T>> {
    const { event, where, timeoutMs, signal, oob } = options;
    const link = this.#link;
    if (link === undefined || this.#state !== "connected") throw this.#notConnected(name);
    if (signal?.aborted) {
      throw waitFailed(
        signal.reason,
        { command: name, event, sent: false, answered: false },
        signal,
      );
    }
    const match =
      where === undefined
        ? undefined
        : typeof where === "function"
          ? (where as (e: QmpEvent) => boolean)
          : (e: QmpEvent) => dataMatches(e, where);

    let sent = false;
    let replied = false;
    const inner = new AbortController();
    const eventArrived = new Promise<QmpEvent>((resolve, reject) => {
      const waiter = { name: event, match, resolve, reject };
      this.#hub.addWaiter(waiter);
      inner.signal.addEventListener("abort", () => {
        this.#hub.removeWaiter(waiter);
        reject(inner.signal.reason);
      });
    });
    eventArrived.catch(() => {});
    const disarm = armDeadline(
      { timeoutMs, signal },
      (reason) => inner.abort(reason),
      () =>
        new TimeoutError(
          replied
            ? `wait for ${event} after ${name} timed out: no matching event within ${timeoutMs} ms`
            : `${name} timed out after ${timeoutMs} ms: the command was sent, its outcome is unknown`,
          replied ? `wait for ${event}` : name,
          timeoutMs!,
          true,
        ),
    );
    try {
      const reply = link
        .send(name, args as JsonObject | undefined, { signal: inner.signal, oob })
        .then((value) => {
          replied = true;
          return value;
        });
      sent = true; // unless the connection was closed already (see below)
      reply.catch(() => {});
      // The reply settles first or together with the event; a command error ends the wait.
      const [result, ev] = await Promise.all([reply, eventArrived]);
      return { result: result as CommandReturn<K, T>, event: ev as QmpEventOf<E, T> };
    } catch (error) {
      const notSent = isConnectionClosedError(error) && error.command === name && !error.sent;
      const details = { command: name, event, sent: sent && !notSent, answered: replied };
      throw waitFailed(error, details, signal);
    } finally {
      disarm();
      if (!inner.signal.aborted) inner.abort(new StateError("wait ended", "done", "waiting"));
    }
  }

  /**
   * An async iterator over events with its own bounded queue; see {@link EventStreamOptions}.
   * `break` (or `close()`, `await using`) unsubscribes. It ends when the client closes for good.
   * With `runState: true` it also yields the tracked run state's changes ({@link RunStateItem}),
   * each right after the event that caused it.
   * @throws StateError for `runState: true` on a client connected with `trackRunState: false`.
   */
  events<N extends EventName<T> = DefaultEventName<T>>(
    options: EventStreamOptions<N> & { readonly notices: true; readonly runState: boolean },
  ): EventStream<QmpEventOf<N, T> | EventStreamNotice | RunStateItem>;
  events<N extends EventName<T> = DefaultEventName<T>>(
    options: EventStreamOptions<N> & { readonly notices: true },
  ): EventStream<QmpEventOf<N, T> | EventStreamNotice>;
  events<N extends EventName<T> = DefaultEventName<T>>(
    options: EventStreamOptions<N> & { readonly runState: boolean },
  ): EventStream<QmpEventOf<N, T> | RunStateItem>;
  events<N extends EventName<T> = DefaultEventName<T>>(
    options?: EventStreamOptions<N>,
  ): EventStream<QmpEventOf<N, T>>;
  // biome-ignore lint/suspicious/noExplicitAny: the implementation of the overloads above
  events(options: EventStreamOptions<any> = {}): EventStream<any> {
    if (options.runState === true && this.#tracker === undefined) {
      throw new StateError(
        "cannot stream run-state changes: the client was connected with trackRunState: false",
        "untracked",
        "tracked",
      );
    }
    const stream = new EventStream<unknown>(
      options,
      (s) => this.#hub.removeStream(s),
      (report) => this.#notice({ kind: "events-dropped", ...report }),
    );
    if (this.#hub.ended) stream.finish(this.#closeReason);
    else this.#hub.addStream(stream);
    return stream;
  }

  /**
   * Calls `callback` for each event named `name` (`"*"`: every event), in the reader loop: keep it
   * quick, never await a reply in it. A callback that throws is reported (`callback-error`).
   * Returns the function that removes it.
   */
  on<N extends EventName<T>>(
    name: N | "*",
    callback: (event: QmpEventOf<N, T>) => void,
  ): () => void {
    return this.#hub.on(name, callback as (event: QmpEvent) => void);
  }

  /** Calls `listener` on each change of the tracked run state. Returns its remover. */
  onRunStateChange(listener: (change: RunStateChange) => void): () => void {
    if (this.#tracker === undefined) {
      throw new StateError(
        "cannot follow the run state: the client was connected with trackRunState: false",
        "untracked",
        "tracked",
      );
    }
    return this.#tracker.onChange(listener);
  }

  /**
   * Resolves once the tracked run state satisfies `want` (at once if it does already).
   * @throws TimeoutError after `timeoutMs`; ConnectionClosedError if the client closes first.
   */
  async waitForRunState(
    want: RunState | ((state: RunState) => boolean),
    options: WaitOptions = {},
  ): Promise<RunState> {
    const tracker = this.#tracker;
    if (tracker === undefined) {
      throw new StateError(
        "cannot wait for a run state: the client was connected with trackRunState: false",
        "untracked",
        "tracked",
      );
    }
    if (this.#state === "closed") throw this.#notConnected("wait for run state");
    const inner = new AbortController();
    const disarm = armDeadline({ signal: options.signal }, (reason) => inner.abort(reason));
    const disarmClose = armDeadline({ signal: this.#lifetime.signal }, () =>
      inner.abort(this.#notConnected("wait for run state")),
    );
    try {
      return await tracker.waitFor(want, { timeoutMs: options.timeoutMs, signal: inner.signal });
    } finally {
      disarm();
      disarmClose();
    }
  }

  /** Asks `query-status` now and updates the tracked run state; resolves with it. */
  async refreshRunState(): Promise<RunState | undefined> {
    await this.#tracker?.refresh();
    return this.runState;
  }

  /**
   * Closes the client for good: pending commands reject with `ConnectionClosedError`, streams
   * end, reconnection stops. Idempotent; resolves once the connection is down.
   */
  async close(): Promise<void> {
    this.#finish(undefined);
    await this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────

  #notConnected(what: string): ConnectionClosedError {
    const why =
      this.#state === "reconnecting"
        ? "the connection dropped and the client is reconnecting"
        : "the client is closed";
    return new ConnectionClosedError(`${what} failed: ${why}`, what, false, {
      cause: this.#closeReason,
    });
  }

  #notice(notice: ClientNotice): void {
    const hook = this.#options.onNotice;
    if (hook === undefined) return;
    try {
      hook(notice);
    } catch {
      // The hook must not throw; if it does, the reader loop carries on regardless.
    }
  }

  /**
   * Opens a connection, reads the greeting and negotiates (the link becomes current in the
   * reader loop, when the negotiation reply arrives), then reads the peer's schema and run state
   * as asked. `totalMs` bounds it all (`connect`'s `timeoutMs`); a reconnection has none.
   * `first`: the connection `connect()` makes, whose caller waits for the run state.
   */
  async #open(
    signal: AbortSignal | undefined,
    totalMs: number | undefined,
    first: boolean,
  ): Promise<void> {
    const name = targetName(this.#target);
    const budget = startBudget(totalMs);
    let stream: Duplex;
    try {
      const target = this.#target;
      const source = typeof target === "function" ? await target() : target;
      stream = await openStream(source, {
        timeoutMs: budget(this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
        signal,
      });
    } catch (error) {
      if ((signal?.aborted && error === signal.reason) || error instanceof TimeoutError) {
        throw error;
      }
      if (error instanceof ConnectError) throw error;
      throw new ConnectError(
        `connect to ${name} failed: ${(error as Error)?.message ?? error}`,
        name,
        { cause: error },
      );
    }
    const link = new Link(stream, this.#host, this.#options);
    // One handshake budget for the greeting, negotiation, the peer's schema and the first
    // query-status (DEFAULT_HANDSHAKE_TIMEOUT_MS), within what is left of `totalMs`.
    const handshakeMs = budget(this.#options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
    const handshakeLeft = startBudget(handshakeMs);
    await link.handshake(name, this.#options.oob === true, handshakeMs, signal);

    if (this.#validation.fromPeer) await this.#loadPeerSchema(link, handshakeLeft(handshakeMs));
    if (this.#tracker === undefined) return;
    const refreshed = this.#tracker.refresh();
    if (!first) {
      // A reconnection has no caller to fail: the link is already current and carries events.
      // The run state stays as last known until the query answers (or fails, with a
      // `run-state-query-failed` notice from the tracker).
      return;
    }
    await withDeadline(refreshed, { timeoutMs: handshakeLeft(handshakeMs), signal }, () => {
      return new TimeoutError(
        `connect to ${name} failed: no answer to query-status within ${handshakeMs} ms (the peer greeted and negotiated; its run state is unknown)`,
        "query-status",
        handshakeMs,
        true,
      );
    });
  }

  /** Builds the validators from the peer's own `query-qmp-schema` (docs/design.md principle 3). */
  async #loadPeerSchema(link: Link, timeoutMs: number): Promise<void> {
    this.#validation.forgetPeer();
    try {
      this.#validation.usePeerSchema(await link.send("query-qmp-schema", undefined, { timeoutMs }));
    } catch (error) {
      this.#notice({ kind: "peer-schema-failed", error });
    }
  }

  /** The negotiation reply arrived: the link becomes current. Runs in the reader loop. */
  #onLinkReady(link: Link): void {
    const previous = this.#disconnectedAt;
    this.#link = link;
    this.#greeting = link.greeting;
    this.#state = "connected";
    this.#tracker?.reset(link.greeting!.version.qemu.major);
    if (previous !== undefined) {
      // QEMU does not replay events (§1.3): tell every stream, in position, before new events.
      const gap: GapNotice = {
        notice: "gap",
        since: previous.at,
        until: new Date(),
        reason: previous.reason,
        greeting: link.greeting!,
      };
      this.#disconnectedAt = undefined;
      this.#hub.gap(gap);
      this.#notice({ kind: "reconnected", attempt: this.#attempt, greeting: link.greeting! });
    }
  }

  /** Runs in the reader loop. */
  #onEvent(event: QmpEvent): void {
    const issues = this.#validation.eventIssues(event);
    if (issues !== undefined) this.#notice({ kind: "invalid-event", event: event.event, issues });
    const tracker = this.#tracker;
    if (tracker === undefined) {
      this.#hub.dispatch(event);
      return;
    }
    // The tracker hears the event first (so that `runState` is current for every subscriber);
    // the changes it causes reach the streams after the event itself.
    this.#changesOf = event;
    tracker.onEvent(event);
    this.#changesOf = undefined;
    this.#hub.dispatch(event);
    const changes = this.#heldChanges;
    if (changes === undefined) return;
    this.#heldChanges = undefined;
    for (const item of changes) this.#hub.runState(item, event);
  }

  /** The event being followed by the tracker: the changes it causes wait for its dispatch. */
  #changesOf: QmpEvent | undefined;
  #heldChanges: RunStateItem[] | undefined;

  /** A change of the tracked run state, as a stream item. Runs in the reader loop. */
  #onRunStateChange(change: RunStateChange): void {
    const cause = change.cause;
    const item: RunStateItem = {
      kind: "run-state",
      from: change.from,
      to: change.to,
      cause: cause === "query-status" ? cause : cause.event,
      timestamp: cause === "query-status" ? timestampNow() : cause.timestamp,
    };
    if (cause !== "query-status" && cause === this.#changesOf) {
      (this.#heldChanges ??= []).push(item);
      return;
    }
    this.#hub.runState(item, undefined);
  }

  /** A connection ended (peer gone, error, or our own close); its commands have been failed. */
  #onLinkClosed(link: Link, reason: Error | undefined): void {
    if (link !== this.#link) return; // a handshake that failed: #open reports it
    this.#link = undefined;
    if (this.#finalizing) {
      this.#resolveClosed(this.#closeReason);
      return;
    }
    // `closed` always resolves with a QmpError: a stream error (ECONNRESET, …) becomes the cause.
    const why =
      reason === undefined
        ? new ConnectionClosedError("the peer closed the connection", undefined, false)
        : reason instanceof QmpError
          ? reason
          : new ConnectionClosedError(
              `the connection failed: ${reason.message}`,
              undefined,
              false,
              {
                cause: reason,
              },
            );
    if (this.#reconnect === undefined) {
      this.#notice({ kind: "disconnected", reason: why });
      this.#finish(why);
      return;
    }
    this.#state = "reconnecting";
    this.#disconnectedAt = { at: new Date(), reason: why };
    this.#notice({ kind: "disconnected", reason: why });
    this.#hub.failWaiters(
      new ConnectionClosedError(
        `the connection dropped (${why.message}); events until the reconnection are lost`,
        undefined,
        false,
        { cause: why },
      ),
    );
    void reconnect(
      this.#reconnect,
      {
        attempt: (attempt) => {
          this.#attempt = attempt;
          return this.#open(this.#lifetime.signal, undefined, false);
        },
        failed: (attempt, error, delayMs) =>
          this.#notice({ kind: "reconnect-failed", attempt, error, delayMs }),
        gaveUp: (error) => this.#finish(error),
      },
      this.#lifetime.signal,
    );
  }

  /** Closes the client for good with `reason` (`undefined`: closed by its owner). Idempotent. */
  #finish(reason: Error | undefined): void {
    if (this.#finalizing) return;
    this.#finalizing = true;
    this.#closeReason = reason;
    this.#state = "closed";
    this.#lifetime.abort(
      reason ?? new ConnectionClosedError("the client was closed", undefined, false),
    );
    this.#hub.end(
      reason,
      new ConnectionClosedError(
        `the client closed${reason ? `: ${reason.message}` : ""}`,
        undefined,
        false,
        { cause: reason },
      ),
    );
    const link = this.#link;
    if (link === undefined) {
      this.#resolveClosed(reason);
      return;
    }
    link.close();
    // #onLinkClosed resolves `closed` once the connection is down.
  }
}
