/**
 * `QmpClient`: the QMP client on top of the wire layer's `Connection` (style anchor A3:
 * `qmp_client.py` on `protocol.py`). The connection owns the bytes; the client adds the greeting,
 * capability negotiation, id routing, events, the run-state tracker and reconnection.
 *
 * Routing rules (qmp-spec "Commands Responses"; A3):
 * - every command gets an id `__qmpkit#N` (reserved prefix); replies are matched by id, so any
 *   number of commands may be in flight;
 * - a reply with an id that is not pending is dropped and reported (`unknown-reply`, or
 *   `late-reply` when it answers a call that already timed out or was aborted);
 * - an error reply without an id means the peer could not parse something we sent (§1.4 step 1):
 *   a `ProtocolError` that ends the connection, since no one can tell which command it was;
 * - when the connection ends, every pending command rejects at once with a
 *   `ConnectionClosedError` (`sent: true`: the outcome is unknown).
 *
 * Concurrency contract: the connection calls `#onItem` from its reader loop, synchronously for
 * each message. Everything reached from there ("runs in the reader loop") settles promises, queues
 * events and starts queries, but never awaits a reply: awaiting there would wait for the very loop
 * that has to deliver it.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import {
  CommandError,
  ConnectError,
  ConnectionClosedError,
  ProtocolError,
  QmpError,
  StateError,
  TimeoutError,
  ValidationError,
} from "../base/errors.js";
import { isJsonObject, type JsonObject } from "../base/json.js";
import { Connection, type JsonStreamItem, openStream } from "../wire/index.js";
import { EventHub, DEFAULT_HISTORY_SIZE, type HubReport } from "./event-hub.js";
import {
  EventStream,
  type EventStreamNotice,
  type EventStreamOptions,
  type GapNotice,
} from "./event-stream.js";
import { describe, parseGreeting } from "./greeting.js";
import { PendingTable } from "./pending-table.js";
import { requestText } from "./request-text.js";
import {
  ABANDONED_IDS_KEPT,
  type ClientNotice,
  type ClientState,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_RECONNECT,
  DEFAULT_STATUS_QUERY_TIMEOUT_MS,
  type ExecuteOptions,
  ID_PREFIX,
  type QmpClientOptions,
  type QmpValidators,
  type ReconnectPolicy,
} from "./options.js";
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
} from "./types.js";
import { bundledValidators, validatorsFromIntrospection } from "./validators.js";

/** What to connect to: `unix:PATH`, `tcp:HOST:PORT`, an open Duplex, or a factory of Duplexes. */
export type QmpTarget = string | Duplex | (() => Duplex | Promise<Duplex>);

/** Options of `executeAndWait()`. */
export interface ExecuteAndWaitOptions<E extends string> extends ExecuteOptions {
  /** The event the command causes. */
  readonly event: E;
  /**
   * Which occurrence: a predicate, or members the event's `data` must have (compared with `===`,
   * e.g. `{ device: "nic0" }` for DEVICE_DELETED). Default: the first `event` of that name.
   */
  readonly where?: ((event: QmpEventOf<E>) => boolean) | Partial<EventData<E> & object> | undefined;
  /** One budget for the reply and the event together (ms). */
  readonly timeoutMs?: number | undefined;
}

/** The result of `executeAndWait()`: the command's return value and the event. */
export interface ExecuteAndWaitResult<K extends string, E extends string> {
  readonly result: CommandReturn<K>;
  readonly event: QmpEventOf<E>;
}

interface Pending {
  /** The number in the command's id (`${ID_PREFIX}${seq}`): its key in `Link.pending`. */
  readonly seq: number;
  readonly command: string;
  /** Set by the promise's executor ({@link capture}). */
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Sent with `exec-oob`: its reply may overtake in-band ones (§1.7). */
  readonly oob: boolean;
  /** How many undecodable messages the link had seen when this command was sent. */
  readonly undecodableBefore: number;
}

/** One connection to the peer: a fresh one for each (re)connection. */
class Link {
  /**
   * Commands waiting for their reply, by the number in their id, in the order sent. Numbers
   * rather than the id strings: a fresh string must be hashed on every lookup, a number need not
   * (issue 2 §6). {@link pendingFor} maps an id back, exactly.
   */
  readonly pending = new PendingTable<Pending>();
  greeting: QmpGreeting | undefined;
  /** Negotiated `oob`. */
  oob = false;
  phase: "greeting" | "negotiating" | "ready" = "greeting";
  /** Messages from the peer that could not be decoded and named no pending command. */
  readonly undecodable: { count: number; last: Error | undefined } = { count: 0, last: undefined };
  /** Id of the `qmp_capabilities` command, to act on its reply in the reader loop. */
  negotiationId: string | undefined;
  readonly greeted: {
    promise: Promise<QmpGreeting>;
    resolve(greeting: QmpGreeting): void;
    reject(reason: unknown): void;
  };
  connection!: Connection;

  constructor() {
    let resolve!: (greeting: QmpGreeting) => void;
    let reject!: (reason: unknown) => void;
    const promise = new Promise<QmpGreeting>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // observed by the handshake; never an unhandled rejection
    this.greeted = { promise, resolve, reject };
  }
}

/**
 * The command waiting for the reply that carries `id`: only an id this client made, character
 * for character (`__qmpkit#01` or `__qmpkit#1.0` name no command, as before ids were numbers).
 */
function pendingFor(link: Link, id: string): Pending | undefined {
  const n = id.length;
  if (n <= ID_PREFIX.length || n > ID_PREFIX.length + 15 || !id.startsWith(ID_PREFIX)) {
    return undefined;
  }
  // Ids count from 1 and are written without leading zeros: `__qmpkit#01` names no command.
  if (id.charCodeAt(ID_PREFIX.length) === 0x30) return undefined;
  let seq = 0;
  for (let i = ID_PREFIX.length; i < n; i++) {
    const d = id.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    seq = seq * 10 + d;
  }
  // At most 15 digits: `seq` is exact, so the id is exactly `${ID_PREFIX}${seq}`.
  return link.pending.get(seq);
}

function noop(): void {}

/**
 * The command whose promise is being created: `capture`, the promise's executor, stores the
 * promise's resolve and reject functions in it. One shared executor instead of a closure per
 * command (issue 2 §6); the executor runs synchronously inside `new Promise`, so the variable is
 * only ever read right after it was set.
 */
let capturing: Pending | undefined;

function capture(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  const pending = capturing!;
  capturing = undefined;
  pending.resolve = resolve;
  pending.reject = reject;
}

/** The options of a command called without any (shared: `#send` only reads them). */
const NO_OPTIONS: ExecuteOptions = Object.freeze({});

function targetName(target: QmpTarget): string {
  return typeof target === "string"
    ? target
    : typeof target === "function"
      ? "stream factory"
      : "duplex";
}

function isAbortFrom(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && error === signal.reason;
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
 * A QMP client. Create it with {@link QmpClient.connect}.
 *
 * @example
 * ```ts
 * await using qmp = await QmpClient.connect("unix:/run/vm1.qmp", { timeoutMs: 5_000 });
 * const { status } = await qmp.execute("query-status");
 * for await (const ev of qmp.events({ names: ["STOP", "RESUME"] })) console.log(ev.event);
 * ```
 */
export class QmpClient implements AsyncDisposable {
  readonly #target: QmpTarget;
  readonly #options: QmpClientOptions;
  readonly #hub: EventHub;
  readonly #tracker: RunStateTracker | undefined;
  readonly #reconnect: ReconnectPolicy | undefined;
  #validators: QmpValidators | undefined;
  readonly #peerSchema: boolean;
  readonly #validateMode: "lenient" | "strict";
  readonly #validateReplies: boolean;
  readonly #validateEvents: boolean;
  readonly #rejectInvalid: boolean;
  #state: ClientState = "connecting";
  #link: Link | undefined;
  #greeting: QmpGreeting | undefined;
  #nextId = 0;
  /** Ids of calls that timed out or were aborted, with their command: a later reply is "late". */
  readonly #abandoned = new Map<string, string>();
  /** Aborted when the client closes for good: stops reconnection attempts and their sleeps. */
  readonly #lifetime = new AbortController();
  #closeReason: Error | undefined;
  readonly #closed: Promise<Error | undefined>;
  #resolveClosed!: (reason: Error | undefined) => void;
  #finalizing = false;

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
        query: () =>
          this.execute("query-status", undefined, {
            timeoutMs: options.commandTimeoutMs ?? DEFAULT_STATUS_QUERY_TIMEOUT_MS,
          }),
        isClosing: () => this.#state !== "connected",
        report: (report: TrackerReport) => this.#notice(report),
      });
    }
    const reconnect = options.reconnect;
    if (reconnect !== undefined && reconnect !== false) {
      if (typeof target !== "string" && typeof target !== "function") {
        throw new ConnectError(
          "cannot reconnect to a duplex: pass a target string or a stream factory",
          "duplex",
        );
      }
      this.#reconnect = {
        ...DEFAULT_RECONNECT,
        ...(reconnect === true ? {} : stripUndefined(reconnect)),
      } as ReconnectPolicy;
    }
    const validate = options.validate;
    const v =
      validate === true ? {} : validate === false || validate === undefined ? undefined : validate;
    this.#peerSchema = v?.validators === "peer";
    this.#validators =
      v === undefined || v.validators === "peer"
        ? undefined
        : v.validators === undefined || v.validators === "bundled"
          ? bundledValidators
          : v.validators;
    this.#validateMode = v?.mode ?? "lenient";
    this.#validateReplies = v !== undefined && v.replies !== false;
    this.#validateEvents = v !== undefined && v.events !== false;
    this.#rejectInvalid = v?.onInvalid === "reject";
  }

  /**
   * Connects, reads the greeting, negotiates capabilities and (unless `trackRunState: false`) reads
   * the run state.
   *
   * @throws ConnectError when the peer cannot be reached, the greeting is not QMP, or negotiation
   *   fails (e.g. `oob` requested but not offered); TimeoutError when a step runs out of time; the
   *   signal's reason when aborted.
   */
  static async connect(target: QmpTarget, options: QmpClientOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(target, options);
    try {
      await client.#open(options.signal, options.timeoutMs);
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
   * Known commands are typed from the schema (`QmpCommandMap`); any other name is accepted and
   * returns `unknown`.
   *
   * @throws CommandError when the peer answers with a QMP error (`errorClass`, `desc`);
   *   TimeoutError (`sent`) after `timeoutMs`; ConnectionClosedError when the connection ends
   *   first; StateError for `oob` without the capability; the signal's reason when aborted.
   */
  execute<K extends CommandName>(
    name: K,
    ...params: CommandParams<K, ExecuteOptions>
  ): Promise<CommandReturn<K>> {
    const [args, options] = params as [JsonObject | undefined, ExecuteOptions | undefined];
    const link = this.#link;
    if (link === undefined || this.#state !== "connected") {
      return Promise.reject(this.#notConnected(name));
    }
    return this.#send(link, name, args, options ?? NO_OPTIONS) as Promise<CommandReturn<K>>;
  }

  /**
   * Runs a command and waits for the event it causes, e.g. `stop` → STOP, `device_del` →
   * DEVICE_DELETED of that device. The wait starts before the command is sent, so the event cannot
   * be missed, whichever order the peer uses: the event before the reply (QEMU ≥ 9.0, 7.2.9+) or
   * after it (older, §1.9).
   *
   * @throws as `execute`; TimeoutError (`operation: "wait for EVENT"`) when the reply came but
   *   the event did not within `timeoutMs`.
   */
  async executeAndWait<K extends CommandName, E extends EventName>(
    name: K,
    args: CommandParams<K, never>[0],
    options: ExecuteAndWaitOptions<E>,
  ): Promise<ExecuteAndWaitResult<K, E>> {
    const { event, where, timeoutMs, signal, oob } = options;
    const link = this.#link;
    if (link === undefined || this.#state !== "connected") throw this.#notConnected(name);
    if (signal?.aborted) throw signal.reason;
    const match =
      where === undefined
        ? undefined
        : typeof where === "function"
          ? (where as (e: QmpEvent) => boolean)
          : (e: QmpEvent) => dataMatches(e, where);

    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
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
    try {
      const reply = this.#send(link, name, args as JsonObject | undefined, {
        signal: inner.signal,
        oob,
      }).then((value) => {
        replied = true;
        return value;
      });
      reply.catch(() => {});
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const what = replied ? `wait for ${event}` : name;
          inner.abort(
            new TimeoutError(
              replied
                ? `wait for ${event} after ${name} timed out: no matching event within ${timeoutMs} ms`
                : `${name} timed out after ${timeoutMs} ms: the command was sent, its outcome is unknown`,
              what,
              timeoutMs,
              true,
            ),
          );
        }, timeoutMs);
      }
      if (signal !== undefined) {
        onAbort = () => inner.abort(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
      }
      // The reply settles first or together with the event; a command error ends the wait.
      const [result, ev] = await Promise.all([reply, eventArrived]);
      return { result: result as CommandReturn<K>, event: ev as QmpEventOf<E> };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
      if (!inner.signal.aborted) inner.abort(new StateError("wait ended", "done", "waiting"));
    }
  }

  /**
   * An async iterator over events with its own bounded queue; see {@link EventStreamOptions}.
   * `break` (or `close()`, `await using`) unsubscribes. It ends when the client closes for good.
   */
  events<N extends EventName = string>(
    options: EventStreamOptions<N> & { readonly notices: true },
  ): EventStream<QmpEventOf<N> | EventStreamNotice>;
  events<N extends EventName = string>(options?: EventStreamOptions<N>): EventStream<QmpEventOf<N>>;
  // biome-ignore lint/suspicious/noExplicitAny: the implementation of the two overloads above
  events(options: EventStreamOptions<any> = {}): EventStream<any> {
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
  on<N extends EventName>(name: N | "*", callback: (event: QmpEventOf<N>) => void): () => void {
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
    const onAbort = () => inner.abort(options.signal!.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) inner.abort(options.signal.reason);
    const onClose = () => inner.abort(this.#notConnected("wait for run state"));
    this.#lifetime.signal.addEventListener("abort", onClose, { once: true });
    try {
      return await tracker.waitFor(want, { timeoutMs: options.timeoutMs, signal: inner.signal });
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      this.#lifetime.signal.removeEventListener("abort", onClose);
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

  /** Sends one command on `link`; the core of `execute`. */
  #send(
    link: Link,
    name: string,
    args: JsonObject | undefined,
    options: ExecuteOptions,
  ): Promise<unknown> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (options.oob && !link.oob) {
      return Promise.reject(
        new StateError(
          `cannot execute ${name} out of band: the oob capability was not negotiated (connect with { oob: true })`,
          "oob off",
          "oob on",
        ),
      );
    }
    const seq = ++this.#nextId;
    const text = requestText(name, args, seq, options.oob === true);
    try {
      link.connection.sendRaw(text);
    } catch (error) {
      // The wire layer throws only when the connection is already closed.
      return Promise.reject(
        new ConnectionClosedError(
          `${name} failed: the connection is closed, the command was not sent`,
          name,
          false,
          { cause: error },
        ),
      );
    }
    // Sent: the reply cannot arrive before this function returns (it is read by the event loop).
    const pending: Pending = {
      seq,
      command: name,
      resolve: noop,
      reject: noop,
      timer: undefined,
      signal,
      onAbort: undefined,
      oob: options.oob === true,
      undecodableBefore: link.undecodable.count,
    };
    capturing = pending;
    const promise = new Promise<unknown>(capture);
    link.pending.add(pending);
    const timeoutMs = options.timeoutMs ?? this.#options.commandTimeoutMs;
    if (timeoutMs !== undefined) {
      pending.timer = setTimeout(() => {
        this.#abandon(link, pending);
        pending.reject(
          new TimeoutError(
            `${name} timed out after ${timeoutMs} ms: the command was sent, its outcome is unknown`,
            name,
            timeoutMs,
            true,
          ),
        );
      }, timeoutMs);
    }
    if (signal !== undefined) {
      pending.onAbort = () => {
        this.#abandon(link, pending);
        pending.reject(signal.reason);
      };
      signal.addEventListener("abort", pending.onAbort, { once: true });
    }
    return promise;
  }

  /** Stops waiting for `pending`; remembers its id so a late reply is recognised. */
  #abandon(link: Link, pending: Pending): void {
    this.#settle(link, pending);
    this.#abandoned.set(`${ID_PREFIX}${pending.seq}`, pending.command);
    if (this.#abandoned.size > ABANDONED_IDS_KEPT) {
      this.#abandoned.delete(this.#abandoned.keys().next().value!);
    }
  }

  /** Removes `pending` from its link and clears its timer and abort listener. */
  #settle(link: Link, pending: Pending): void {
    link.pending.delete(pending);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    if (pending.onAbort !== undefined)
      pending.signal?.removeEventListener("abort", pending.onAbort);
  }

  /** Opens a connection, reads the greeting and negotiates; makes it the current link. */
  async #open(signal: AbortSignal | undefined, totalMs: number | undefined): Promise<void> {
    const name = targetName(this.#target);
    const start = Date.now();
    const budget = (partMs: number) =>
      totalMs === undefined
        ? partMs
        : Math.max(0, Math.min(partMs, totalMs - (Date.now() - start)));
    const connectMs = budget(this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);

    let stream: Duplex;
    try {
      const target = this.#target;
      const source = typeof target === "function" ? await target() : target;
      stream = await openStream(source, { timeoutMs: connectMs, signal });
    } catch (error) {
      if (isAbortFrom(error, signal) || error instanceof TimeoutError) throw error;
      if (error instanceof ConnectError) throw error;
      throw new ConnectError(
        `connect to ${name} failed: ${(error as Error)?.message ?? error}`,
        name,
        {
          cause: error,
        },
      );
    }

    const link = new Link();
    link.connection = new Connection(stream, {
      dialect: "client",
      writer: "compact",
      ...(this.#options.maxMessageBytes === undefined
        ? {}
        : { maxMessageBytes: this.#options.maxMessageBytes }),
      onItem: (item: JsonStreamItem) => this.#onItem(link, item),
      ...(this.#options.onTraffic === undefined ? {} : { onTraffic: this.#options.onTraffic }),
    });
    void link.connection.closed.then((reason: Error | undefined) =>
      this.#onLinkClosed(link, reason),
    );

    const handshakeMs = budget(this.#options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
    const handshake = new AbortController();
    let stage = "greeting";
    const timer = setTimeout(() => {
      handshake.abort(
        new TimeoutError(
          `connect to ${name} failed: no ${stage === "greeting" ? "greeting" : "negotiation reply"} within ${handshakeMs} ms`,
          stage,
          handshakeMs,
          stage !== "greeting",
        ),
      );
    }, handshakeMs);
    const onAbort = () => handshake.abort(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) handshake.abort(signal.reason);
    try {
      const aborted = new Promise<never>((_, reject) => {
        if (handshake.signal.aborted) reject(handshake.signal.reason);
        handshake.signal.addEventListener("abort", () => reject(handshake.signal.reason), {
          once: true,
        });
      });
      aborted.catch(() => {});
      const greeting = await Promise.race([link.greeted.promise, aborted]);
      stage = "negotiation";
      const wantOob = this.#options.oob === true;
      if (wantOob && !greeting.capabilities.includes("oob")) {
        throw new ConnectError(
          `connect to ${name} failed: oob was requested but the peer offers ${JSON.stringify(greeting.capabilities)}`,
          name,
        );
      }
      link.phase = "negotiating";
      const negotiated = this.#send(
        link,
        "qmp_capabilities",
        wantOob ? { enable: ["oob"] } : undefined,
        { signal: handshake.signal },
      );
      link.negotiationId = `${ID_PREFIX}${this.#nextId}`;
      await negotiated;
      link.oob = wantOob;
      // `#onItem` already made the link current when the reply arrived (in the reader loop).
    } catch (error) {
      link.connection.close(error instanceof Error ? error : undefined);
      if (isAbortFrom(error, signal) || error instanceof TimeoutError) throw error;
      if (error instanceof ConnectError) throw error;
      const why =
        error instanceof ConnectionClosedError
          ? `the peer closed the connection during the ${stage}`
          : error instanceof CommandError
            ? `qmp_capabilities was refused: ${error.errorClass}: ${error.desc}`
            : ((error as Error)?.message ?? String(error));
      throw new ConnectError(`connect to ${name} failed: ${why}`, name, { cause: error });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }

    if (this.#peerSchema) await this.#loadPeerSchema(link, budget(handshakeMs));
    if (this.#tracker !== undefined) await abortable(this.#tracker.refresh(), signal);
  }

  /** Builds the validators from the peer's own `query-qmp-schema` (DESIGN.md principle 3). */
  async #loadPeerSchema(link: Link, timeoutMs: number): Promise<void> {
    this.#validators = undefined;
    try {
      const reply = await this.#send(link, "query-qmp-schema", undefined, { timeoutMs });
      this.#validators = validatorsFromIntrospection(reply);
    } catch (error) {
      this.#notice({ kind: "peer-schema-failed", error });
    }
  }

  /** The negotiation reply arrived: the link becomes current. Runs in the reader loop. */
  #onLinkReady(link: Link): void {
    const previous = this.#disconnectedAt;
    link.phase = "ready";
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

  #disconnectedAt: { at: Date; reason: Error | undefined } | undefined;
  /** The reconnection attempt under way (for the `reconnected` notice). */
  #attempt = 0;

  /** One message (or one undecodable message) from the peer. Runs in the reader loop. */
  #onItem(link: Link, item: JsonStreamItem): void {
    if (item.kind === "error") {
      this.#onUndecodable(link, item.error);
      return;
    }
    const message = item.value;
    if (!isJsonObject(message)) {
      this.#notice({ kind: "unexpected-message", message });
      return;
    }
    if (link.phase === "greeting") {
      try {
        link.greeting = parseGreeting(message);
        link.greeted.resolve(link.greeting);
      } catch (error) {
        link.greeted.reject(error);
      }
      return;
    }
    if (typeof message.event === "string") {
      this.#onEvent(message as unknown as QmpEvent);
      return;
    }
    if ("return" in message || "error" in message) {
      this.#onReply(link, message);
      return;
    }
    this.#notice({ kind: "unexpected-message", message });
  }

  /** Runs in the reader loop. */
  #onEvent(event: QmpEvent): void {
    if (this.#validateEvents && this.#validators !== undefined) {
      const validator = this.#validators.event(event.event);
      if (validator !== undefined && !validator.check(event.data, { mode: this.#validateMode })) {
        this.#notice({
          kind: "invalid-event",
          event: event.event,
          issues: validator.errors(event.data, { mode: this.#validateMode }),
        });
      }
    }
    this.#tracker?.onEvent(event);
    this.#hub.dispatch(event);
  }

  /** Runs in the reader loop. */
  #onReply(link: Link, message: JsonObject): void {
    const id = message.id;
    if (id === undefined) {
      if ("error" in message) {
        // §1.4 step 1: the peer could not parse (or read as an object) something we sent. It is
        // no command's answer, and everything after it is suspect: end the connection.
        const error = new ProtocolError(
          `the peer could not read a message the client sent: ${describeError(message.error)}`,
          message,
        );
        this.#notice({ kind: "protocol-error", error });
        link.connection.close(error);
      } else {
        this.#notice({ kind: "unknown-reply", id, message });
      }
      return;
    }
    const pending = typeof id === "string" ? pendingFor(link, id) : undefined;
    if (pending === undefined) {
      const late = typeof id === "string" ? this.#abandoned.get(id) : undefined;
      if (late !== undefined && typeof id === "string") {
        this.#abandoned.delete(id);
        this.#notice({ kind: "late-reply", id, command: late });
      } else {
        this.#notice({ kind: "unknown-reply", id, message });
      }
      return;
    }
    this.#settle(link, pending);
    this.#failLostReplies(link, pending);
    if ("error" in message) {
      const body = message.error;
      if (!isJsonObject(body) || typeof body.class !== "string" || typeof body.desc !== "string") {
        pending.reject(
          new ProtocolError(
            `${pending.command} failed: malformed error reply: ${describe(message)}`,
            message,
          ),
        );
        return;
      }
      pending.reject(new CommandError(pending.command, body.class, body.desc, id));
      return;
    }
    const value = message.return;
    if (link.phase === "negotiating" && id === link.negotiationId) this.#onLinkReady(link);
    if (this.#validateReplies && this.#validators !== undefined) {
      const validator = this.#validators.returns(pending.command);
      if (validator !== undefined && !validator.check(value, { mode: this.#validateMode })) {
        const issues = validator.errors(value, { mode: this.#validateMode });
        if (this.#rejectInvalid) {
          pending.reject(new ValidationError(`reply of ${pending.command}`, issues));
          return;
        }
        this.#notice({ kind: "invalid-reply", command: pending.command, issues });
      }
    }
    pending.resolve(value);
  }

  /**
   * The peer sent bytes that are not one JSON message (e.g. `inf`, §1.1; or a message over the
   * size limit). If it carries one of our ids, that command fails; otherwise it is reported and
   * the connection lives on.
   */
  #onUndecodable(link: Link, error: Error): void {
    const raw = (error as { raw?: unknown }).raw;
    const text =
      typeof raw === "string"
        ? raw
        : raw instanceof Uint8Array
          ? Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, 1 << 20)).toString(
              "latin1",
            )
          : "";
    const found = /"id"\s*:\s*"(__qmpkit#\d+)"/.exec(text);
    const pending = found === null ? undefined : pendingFor(link, found[1]!);
    const protocolError =
      error instanceof ProtocolError
        ? error
        : new ProtocolError(`undecodable message from the peer: ${error.message}`, raw, {
            cause: error,
          });
    if (link.phase === "greeting") {
      link.greeted.reject(protocolError);
      return;
    }
    if (pending !== undefined) {
      this.#settle(link, pending);
      pending.reject(
        new ProtocolError(
          `${pending.command} failed: its reply could not be decoded: ${error.message}`,
          raw,
          { cause: error },
        ),
      );
      return;
    }
    link.undecodable.count++;
    link.undecodable.last = protocolError;
    this.#notice({ kind: "protocol-error", error: protocolError });
  }

  /**
   * In-band replies come strictly in request order (§1.7: the monitor handles one in-band
   * request at a time). So when `answered` gets its reply while an in-band command sent before
   * it is still pending, and an undecodable message arrived since that command left, that
   * message was its reply: fail it now rather than let it wait forever. Runs in the reader loop.
   */
  #failLostReplies(link: Link, answered: Pending): void {
    if (answered.oob || link.undecodable.count === 0) return;
    for (const earlier of link.pending.values()) {
      if (earlier === answered) return;
      if (earlier.oob || earlier.undecodableBefore === link.undecodable.count) continue;
      this.#settle(link, earlier);
      earlier.reject(
        new ProtocolError(
          `${earlier.command} failed: its reply could not be decoded (a later command was answered first): ${link.undecodable.last?.message}`,
          undefined,
          { cause: link.undecodable.last },
        ),
      );
    }
  }

  /** A connection ended (peer gone, error, or our own close). */
  #onLinkClosed(link: Link, reason: Error | undefined): void {
    const cause = reason ?? this.#closeReason;
    link.greeted.reject(
      new ConnectionClosedError(
        "the peer closed the connection before the greeting",
        undefined,
        false,
        {
          cause,
        },
      ),
    );
    const pending = link.pending.clear();
    for (const p of pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      if (p.onAbort !== undefined) p.signal?.removeEventListener("abort", p.onAbort);
      p.reject(
        new ConnectionClosedError(
          `${p.command} failed: the connection closed before the reply; the outcome is unknown`,
          p.command,
          true,
          { cause },
        ),
      );
    }
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
    if (this.#reconnect !== undefined) {
      this.#state = "reconnecting";
      this.#disconnectedAt = { at: new Date(), reason: why };
      this.#notice({ kind: "disconnected", reason: why });
      this.#hub.failWaiters(
        new ConnectionClosedError(
          `wait for event failed: the connection dropped (${why.message}); events until the reconnection are lost`,
          undefined,
          false,
          { cause: why },
        ),
      );
      void this.#reconnectLoop(this.#reconnect);
      return;
    }
    this.#notice({ kind: "disconnected", reason: why });
    this.#finish(why);
  }

  async #reconnectLoop(policy: ReconnectPolicy): Promise<void> {
    let delay = policy.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      const wait = delay * (1 + policy.jitter * Math.random());
      try {
        await sleep(wait, this.#lifetime.signal);
      } catch {
        return; // closed for good meanwhile
      }
      try {
        this.#attempt = attempt;
        await this.#open(this.#lifetime.signal, undefined);
        return;
      } catch (error) {
        if (this.#lifetime.signal.aborted) return;
        delay = Math.min(delay * policy.factor, policy.maxDelayMs);
        if (attempt >= policy.maxAttempts) {
          this.#notice({ kind: "reconnect-failed", attempt, error, delayMs: 0 });
          this.#finish(
            new ConnectionClosedError(
              `reconnect failed: gave up after ${attempt} attempts: ${(error as Error)?.message ?? error}`,
              undefined,
              false,
              { cause: error },
            ),
          );
          return;
        }
        this.#notice({ kind: "reconnect-failed", attempt, error, delayMs: delay });
      }
    }
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
        `wait for event failed: the client closed${reason ? `: ${reason.message}` : ""}`,
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
    link.connection.close();
    // #onLinkClosed resolves `closed` once the connection is down.
  }
}

function describeError(body: unknown): string {
  if (isJsonObject(body) && typeof body.class === "string" && typeof body.desc === "string") {
    return `${body.class}: ${body.desc}`;
  }
  return describe(body);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `promise`, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
