/**
 * `Link`: the client's side of one connection to the peer, a fresh one for each (re)connection
 * (style anchor A3: `qmp_client.py` on `protocol.py`). The wire layer's `Connection` owns the
 * bytes; the link adds the greeting, capability negotiation and id routing. What the client makes
 * of events, of a link becoming ready and of a link closing is its host's business
 * ({@link LinkHost}: the `QmpClient` facade).
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
 * each message. Everything reached from there ("runs in the reader loop") settles promises and
 * hands events on, but never awaits a reply: awaiting there would wait for the very loop that
 * has to deliver it.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { armDeadline, type Disarm, withDeadline } from "../base/deadline.js";
import { createDeferred, type Deferred } from "../base/deferred.js";
import {
  CommandError,
  ConnectError,
  ConnectionClosedError,
  ProtocolError,
  StateError,
  TimeoutError,
  type ValidationError,
} from "../base/errors.js";
import { isJsonObject, type JsonObject } from "../base/json.js";
import { Connection, type JsonStreamItem } from "../wire/index.js";
import { describe, parseGreeting } from "./greeting.js";
import {
  ABANDONED_IDS_KEPT,
  type ClientNotice,
  type ExecuteOptions,
  ID_PREFIX,
  type TrafficDirection,
} from "./options.js";
import { PendingTable } from "./pending-table.js";
import { requestText } from "./request-text.js";
import type { QmpEvent, QmpGreeting } from "./types.js";

/** What a link needs from the client that owns it. Every method runs in the reader loop. */
export interface LinkHost {
  /** The number of the next command: it keeps growing across reconnections. */
  nextSeq(): number;
  /** The default `timeoutMs` of a command (`commandTimeoutMs`). */
  readonly commandTimeoutMs: number | undefined;
  /** Why the client closed for good, if it did: the cause of what a closing link rejects. */
  readonly closeReason: Error | undefined;
  /** Calls that timed out or were aborted, to tell a late reply from a stray one. */
  readonly abandoned: AbandonedCalls;
  /** The negotiation reply arrived: the link is ready for commands. */
  onReady(link: Link): void;
  onEvent(event: QmpEvent): void;
  /** Checks a reply against its schema type: an error rejects the call instead of resolving it. */
  checkReply(command: string, value: unknown): ValidationError | undefined;
  notice(notice: ClientNotice): void;
  /** The connection ended: every pending command of the link has already been rejected. */
  onClosed(link: Link, reason: Error | undefined): void;
}

/** Options of one link's `Connection`. */
export interface LinkOptions {
  readonly maxMessageBytes?: number | undefined;
  readonly onTraffic?: ((direction: TrafficDirection, text: string) => void) | undefined;
}

/** Ids of calls that timed out or were aborted, with their command (the newest are kept). */
export class AbandonedCalls {
  readonly #ids = new Map<string, string>();

  add(id: string, command: string): void {
    this.#ids.set(id, command);
    if (this.#ids.size > ABANDONED_IDS_KEPT) this.#ids.delete(this.#ids.keys().next().value!);
  }

  /** The command of an abandoned call, forgotten once asked for (a reply comes only once). */
  take(id: string): string | undefined {
    const command = this.#ids.get(id);
    if (command !== undefined) this.#ids.delete(id);
    return command;
  }
}

interface Pending {
  /** The number in the command's id (`${ID_PREFIX}${seq}`): its key in `Link.pending`. */
  readonly seq: number;
  readonly command: string;
  /** Set by the promise's executor ({@link capture}). */
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  /** Clears the command's deadline (its timer and abort listener). */
  disarm: Disarm;
  /** Sent with `exec-oob`: its reply may overtake in-band ones (§1.7). */
  readonly oob: boolean;
  /** How many undecodable messages the link had seen when this command was sent. */
  readonly undecodableBefore: number;
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

/** The stage of a handshake, for its timeout message. */
type HandshakeStage = "greeting" | "negotiation";

/** One connection to the peer. */
export class Link {
  /**
   * Commands waiting for their reply, by the number in their id, in the order sent. Numbers
   * rather than the id strings: a fresh string must be hashed on every lookup, a number need not
   * (issue 2 §6). {@link pendingFor} maps an id back, exactly.
   */
  readonly #pending = new PendingTable<Pending>();
  readonly #host: LinkHost;
  readonly #connection: Connection;
  /** The peer's greeting, once read. */
  greeting: QmpGreeting | undefined;
  /** Negotiated `oob`. */
  oob = false;
  #phase: "greeting" | "negotiating" | "ready" = "greeting";
  /** Messages from the peer that could not be decoded and named no pending command. */
  readonly #undecodable: { count: number; last: Error | undefined } = {
    count: 0,
    last: undefined,
  };
  readonly #greeted: Deferred<QmpGreeting> = createDeferred();

  constructor(stream: Duplex, host: LinkHost, options: LinkOptions) {
    this.#host = host;
    this.#greeted.promise.catch(() => {}); // observed by the handshake; never unhandled
    this.#connection = new Connection(stream, {
      dialect: "client",
      writer: "compact",
      ...(options.maxMessageBytes === undefined
        ? {}
        : { maxMessageBytes: options.maxMessageBytes }),
      onItem: (item: JsonStreamItem) => this.#onItem(item),
      ...(options.onTraffic === undefined ? {} : { onTraffic: options.onTraffic }),
    });
    void this.#connection.closed.then((reason: Error | undefined) => this.#onClosed(reason));
  }

  /** Ends the connection; pending commands reject once it is down. */
  close(reason?: Error): void {
    this.#connection.close(reason);
  }

  /**
   * Reads the greeting and negotiates capabilities, within `timeoutMs` (the handshake's share of
   * the connect budget) unless `signal` aborts first. Resolves once the host was told the link is
   * ready. On failure the connection is closed.
   *
   * @throws ConnectError (naming `name`) when the greeting is not QMP, the peer closes, or
   *   negotiation fails; TimeoutError (`operation`: the stage) after `timeoutMs`; the signal's
   *   reason when aborted.
   */
  async handshake(
    name: string,
    wantOob: boolean,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const handshake = new AbortController();
    let stage: HandshakeStage = "greeting";
    const disarm = armDeadline(
      { timeoutMs, signal },
      (reason) => handshake.abort(reason),
      () =>
        new TimeoutError(
          `connect to ${name} failed: no ${stage === "greeting" ? "greeting" : "negotiation reply"} within ${timeoutMs} ms`,
          stage,
          timeoutMs,
          stage !== "greeting",
        ),
    );
    try {
      const greeting = await withDeadline(this.#greeted.promise, { signal: handshake.signal });
      stage = "negotiation";
      if (wantOob && !greeting.capabilities.includes("oob")) {
        throw new ConnectError(
          `connect to ${name} failed: oob was requested but the peer offers ${JSON.stringify(greeting.capabilities)}`,
          name,
        );
      }
      this.#phase = "negotiating";
      await this.send("qmp_capabilities", wantOob ? { enable: ["oob"] } : undefined, {
        signal: handshake.signal,
      });
      this.oob = wantOob;
      // `#onReply` already told the host the link is ready when the reply arrived.
    } catch (error) {
      this.close(error instanceof Error ? error : undefined);
      if (handshake.signal.aborted && error === handshake.signal.reason) throw error;
      if (error instanceof ConnectError) throw error;
      const why =
        error instanceof ConnectionClosedError
          ? `the peer closed the connection during the ${stage}`
          : error instanceof CommandError
            ? `qmp_capabilities was refused: ${error.errorClass}: ${error.desc}`
            : ((error as Error)?.message ?? String(error));
      throw new ConnectError(`connect to ${name} failed: ${why}`, name, { cause: error });
    } finally {
      disarm();
    }
  }

  /**
   * Sends one command; resolves with its `return` value. The core of `execute`.
   * @throws as `QmpClient.execute`.
   */
  send(name: string, args: JsonObject | undefined, options: ExecuteOptions): Promise<unknown> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (options.oob && !this.oob) {
      return Promise.reject(
        new StateError(
          `cannot execute ${name} out of band: the oob capability was not negotiated (connect with { oob: true })`,
          "oob off",
          "oob on",
        ),
      );
    }
    const seq = this.#host.nextSeq();
    const text = requestText(name, args, seq, options.oob === true);
    try {
      this.#connection.sendRaw(text);
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
      disarm: noop,
      oob: options.oob === true,
      undecodableBefore: this.#undecodable.count,
    };
    capturing = pending;
    const promise = new Promise<unknown>(capture);
    this.#pending.add(pending);
    const timeoutMs = options.timeoutMs ?? this.#host.commandTimeoutMs;
    if (timeoutMs !== undefined || signal !== undefined) {
      pending.disarm = armDeadline(
        { timeoutMs, signal },
        (reason) => {
          this.#abandon(pending);
          pending.reject(reason);
        },
        () =>
          new TimeoutError(
            `${name} timed out after ${timeoutMs} ms: the command was sent, its outcome is unknown`,
            name,
            timeoutMs!,
            true,
          ),
      );
    }
    return promise;
  }

  /** Stops waiting for `pending`; remembers its id so a late reply is recognised. */
  #abandon(pending: Pending): void {
    this.#settle(pending);
    this.#host.abandoned.add(`${ID_PREFIX}${pending.seq}`, pending.command);
  }

  /** Removes `pending` from the table and clears its deadline. */
  #settle(pending: Pending): void {
    this.#pending.delete(pending);
    pending.disarm();
  }

  /**
   * The command waiting for the reply that carries `id`: only an id this client made, character
   * for character (`__qmpkit#01` or `__qmpkit#1.0` name no command, as before ids were numbers).
   */
  #pendingFor(id: string): Pending | undefined {
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
    return this.#pending.get(seq);
  }

  /** One message (or one undecodable message) from the peer. Runs in the reader loop. */
  #onItem(item: JsonStreamItem): void {
    if (item.kind === "error") {
      this.#onUndecodable(item.error);
      return;
    }
    const message = item.value;
    if (!isJsonObject(message)) {
      this.#host.notice({ kind: "unexpected-message", message });
      return;
    }
    if (this.#phase === "greeting") {
      try {
        this.greeting = parseGreeting(message);
        this.#greeted.resolve(this.greeting);
      } catch (error) {
        this.#greeted.reject(error);
      }
      return;
    }
    if (typeof message.event === "string") {
      this.#host.onEvent(message as unknown as QmpEvent);
      return;
    }
    if ("return" in message || "error" in message) {
      this.#onReply(message);
      return;
    }
    this.#host.notice({ kind: "unexpected-message", message });
  }

  /** Runs in the reader loop. */
  #onReply(message: JsonObject): void {
    const id = message.id;
    if (id === undefined) {
      if ("error" in message) {
        // §1.4 step 1: the peer could not parse (or read as an object) something we sent. It is
        // no command's answer, and everything after it is suspect: end the connection.
        const error = new ProtocolError(
          `the peer could not read a message the client sent: ${describeError(message.error)}`,
          message,
        );
        this.#host.notice({ kind: "protocol-error", error });
        this.close(error);
      } else {
        this.#host.notice({ kind: "unknown-reply", id, message });
      }
      return;
    }
    const pending = typeof id === "string" ? this.#pendingFor(id) : undefined;
    if (pending === undefined) {
      const late = typeof id === "string" ? this.#host.abandoned.take(id) : undefined;
      if (late !== undefined) {
        this.#host.notice({ kind: "late-reply", id: id as string, command: late });
      } else {
        this.#host.notice({ kind: "unknown-reply", id, message });
      }
      return;
    }
    this.#settle(pending);
    this.#failLostReplies(pending);
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
    // While negotiating, the one command sent is qmp_capabilities.
    if (this.#phase === "negotiating") {
      this.#phase = "ready";
      this.#host.onReady(this);
    }
    const invalid = this.#host.checkReply(pending.command, value);
    if (invalid !== undefined) pending.reject(invalid);
    else pending.resolve(value);
  }

  /**
   * The peer sent bytes that are not one JSON message (e.g. `inf`, §1.1; or a message over the
   * size limit). If it carries one of our ids, that command fails; otherwise it is reported and
   * the connection lives on.
   */
  #onUndecodable(error: Error): void {
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
    const pending = found === null ? undefined : this.#pendingFor(found[1]!);
    const protocolError =
      error instanceof ProtocolError
        ? error
        : new ProtocolError(`undecodable message from the peer: ${error.message}`, raw, {
            cause: error,
          });
    if (this.#phase === "greeting") {
      this.#greeted.reject(protocolError);
      return;
    }
    if (pending !== undefined) {
      this.#settle(pending);
      pending.reject(
        new ProtocolError(
          `${pending.command} failed: its reply could not be decoded: ${error.message}`,
          raw,
          { cause: error },
        ),
      );
      return;
    }
    this.#undecodable.count++;
    this.#undecodable.last = protocolError;
    this.#host.notice({ kind: "protocol-error", error: protocolError });
  }

  /**
   * In-band replies come strictly in request order (§1.7: the monitor handles one in-band
   * request at a time). So when `answered` gets its reply while an in-band command sent before
   * it is still pending, and an undecodable message arrived since that command left, that
   * message was its reply: fail it now rather than let it wait forever. Runs in the reader loop.
   */
  #failLostReplies(answered: Pending): void {
    if (answered.oob || this.#undecodable.count === 0) return;
    for (const earlier of this.#pending.values()) {
      if (earlier === answered) return;
      if (earlier.oob || earlier.undecodableBefore === this.#undecodable.count) continue;
      this.#settle(earlier);
      earlier.reject(
        new ProtocolError(
          `${earlier.command} failed: its reply could not be decoded (a later command was answered first): ${this.#undecodable.last?.message}`,
          undefined,
          { cause: this.#undecodable.last },
        ),
      );
    }
  }

  /** The connection ended (peer gone, error, or our own close). */
  #onClosed(closedBy: Error | undefined): void {
    const reason = closedBy ?? this.#host.closeReason;
    this.#greeted.reject(
      new ConnectionClosedError(
        "the peer closed the connection before the greeting",
        undefined,
        false,
        { cause: reason },
      ),
    );
    for (const p of this.#pending.clear()) {
      p.disarm();
      p.reject(
        new ConnectionClosedError(
          `${p.command} failed: the connection closed before the reply; the outcome is unknown`,
          p.command,
          true,
          { cause: reason },
        ),
      );
    }
    this.#host.onClosed(this, closedBy);
  }
}

function describeError(body: unknown): string {
  if (isJsonObject(body) && typeof body.class === "string" && typeof body.desc === "string") {
    return `${body.class}: ${body.desc}`;
  }
  return describe(body);
}
