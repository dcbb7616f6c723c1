/**
 * One client connection of a {@link QmpServer}: QEMU's `MonitorQMP` (`monitor/qmp.c`).
 *
 * It owns the byte stream, the QEMU-dialect JSON decoder, the negotiation state and the in-band
 * request queue, and reproduces QEMU's input suspension (§1.7):
 *
 * - QEMU reads its input one byte at a time and stops reading while the monitor is suspended.
 *   Here the decoder may hand over several messages from one chunk, so decoded messages wait in
 *   an *inbox* and are taken one by one, only while the session is not suspended: the effect on
 *   the wire is the same, because bytes QEMU has not read yet simply wait in the socket.
 * - Without OOB, each in-band request suspends the session until its reply has been written, so
 *   requests are answered strictly in order, one at a time. With OOB, up to 8 requests queue and
 *   the 8th suspends; taking one from a full queue resumes at once.
 * - `exec-oob` requests (objects with `exec-oob` and no `execute`) bypass the queue and run at
 *   once when they are read, so they can overtake in-band replies.
 * - The end of input is an inbox entry too: like QEMU, the session sees EOF only once it reads on,
 *   so requests pipelined before a half-close are still answered when OOB is off.
 *
 * The session never throws into the stream's callbacks: malformed input produces error replies,
 * and I/O errors close the session.
 *
 * It drives the wire layer's decoder and QEMU writer itself rather than through `Connection`:
 * the server needs the end of input to queue behind suspended input (above) and the socket's
 * write backpressure (a client that does not read stops being served instead of having every
 * reply buffered in memory), which a generic connection does not expose.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { ConnectionClosedError } from "../base/errors.js";
import type { JsonObject, JsonValue } from "../base/json.js";
import { JsonStreamDecoder, JsonStreamErrorItem, type JsonStreamItem } from "../wire/index.js";
import { isOobRequest } from "./request.js";

/** QEMU's `QMP_REQ_QUEUE_LEN_MAX` (`include/monitor/monitor.h`, 7.2 and 10.2). */
export const QMP_REQUEST_QUEUE_MAX = 8;

/** What a handler (and the server's owner) can know about a client connection. */
export interface SessionInfo {
  /** A number unique within the server, counting from 1 in order of connection. */
  readonly id: number;
  /** The peer, as far as the transport tells (`unix`, `127.0.0.1:51234`, `duplex`). */
  readonly peer: string;
  /** `negotiating` until `qmp_capabilities` succeeds, then `command`; `closed` at the end. */
  readonly state: SessionState;
  /** The capabilities this client enabled (`oob`), empty before negotiation. */
  readonly capabilities: readonly string[];
}

export type SessionState = "waiting" | "negotiating" | "command" | "closed";

/** One in-band request waiting in the queue: a parsed value or a parse error. */
export type QueuedRequest = JsonStreamItem;

/** How long a closing session waits for its last output to drain before destroying the stream. */
const CLOSE_LINGER_MS = 1_000;

const EOF = Symbol("eof");
type InboxEntry = JsonStreamItem | typeof EOF;

/** What a session needs from its server (internal). */
export interface SessionHost {
  readonly maxMessageBytes: number | undefined;
  greeting(): JsonObject;
  /** One message as QEMU prints it (pretty or not), line end included. */
  serialize(message: JsonObject, pretty: boolean): string;
  /**
   * Wakes the in-band dispatcher: this session queued a request or became writable. `deferred`:
   * let the reader finish the chunk first, as QEMU's I/O thread reads ahead of the main-loop
   * dispatcher when OOB is on, so `exec-oob` requests in the same chunk overtake (§1.7).
   */
  kick(deferred?: boolean): void;
  /** Runs an `exec-oob` request now, outside the queue. */
  dispatchOob(session: QmpSession, request: JsonValue): void;
  /** Called once when the session has closed. */
  sessionClosed(session: QmpSession): void;
  /** Sees raw traffic; absent when nobody listens (then nothing is converted to text). */
  readonly traffic:
    | ((session: QmpSession, direction: "in" | "out", text: string) => void)
    | undefined;
}

function describePeer(stream: Duplex): string {
  const s = stream as Duplex & { remoteAddress?: unknown; remotePort?: unknown };
  if (typeof s.remoteAddress === "string") {
    return typeof s.remotePort === "number"
      ? `${s.remoteAddress}:${s.remotePort}`
      : s.remoteAddress;
  }
  // A net.Socket without a remote address is a unix socket; anything else is some Duplex.
  return "setNoDelay" in stream ? "unix" : "duplex";
}

/** A client connection. Created and driven by {@link QmpServer}; handlers see its {@link SessionInfo}. */
export class QmpSession implements SessionInfo {
  state: SessionState = "waiting";
  /** Enabled capabilities (`qmp_caps_accept`); reset on every new connection. */
  readonly enabled = new Set<string>();
  /** `enabled.has("oob")`, kept as a field: it is asked several times per request. */
  private oob = false;
  readonly queue: QueuedRequest[] = [];
  readonly peer: string;
  /** Aborted when the connection ends; handed to command handlers. */
  readonly abort = new AbortController();
  /** Decoded input not yet read (as QEMU would not have read it); taken from `inboxHead`. */
  private inbox: InboxEntry[] = [];
  private inboxHead = 0;
  private suspendCount = 0;
  private decoder: JsonStreamDecoder | undefined;
  private outputBlocked = false;
  private streamPaused = false;
  private corked = false;
  private readonly uncork = () => {
    this.corked = false;
    if (!this.stream.destroyed) this.stream.uncork();
  };
  private readonly onData = (chunk: Buffer | string) => this.receive(chunk);
  private readonly onEnd = () => this.enqueueInput(EOF);
  private readonly onGone = () => this.close();
  private readonly onDrain = () => {
    this.outputBlocked = false;
    this.pump();
    this.host.kick();
  };

  constructor(
    readonly id: number,
    private readonly stream: Duplex,
    private readonly host: SessionHost,
    /** Pretty-printed output (the monitor's `pretty=on`). */
    readonly pretty: boolean,
    /** The monitor (client slot group) this connection belongs to; the server's business. */
    readonly monitor: unknown,
  ) {
    this.peer = describePeer(stream);
    // Errors while waiting must not become unhandled 'error' events.
    stream.on("error", this.onGone);
    stream.on("close", this.onGone);
  }

  get capabilities(): readonly string[] {
    return [...this.enabled];
  }

  get oobEnabled(): boolean {
    return this.oob;
  }

  get isClosed(): boolean {
    return this.state === "closed";
  }

  /** Whether the dispatcher may run this session's next queued request now. */
  get ready(): boolean {
    return this.queue.length > 0 && !this.outputBlocked && this.state !== "closed";
  }

  /** `CHR_EVENT_OPENED`: negotiation mode, capabilities cleared, greeting sent, reading starts. */
  open(): void {
    if (this.state !== "waiting") return;
    if (this.stream.destroyed) {
      this.close();
      return;
    }
    this.state = "negotiating";
    this.enabled.clear();
    this.oob = false;
    this.decoder = new JsonStreamDecoder({
      dialect: "qemu",
      ...(this.host.maxMessageBytes === undefined
        ? {}
        : { maxMessageBytes: this.host.maxMessageBytes }),
    });
    this.write(this.host.greeting());
    this.stream.on("data", this.onData);
    this.stream.on("end", this.onEnd);
    this.stream.on("drain", this.onDrain);
  }

  /** Writes one message as QEMU does: its JSON text, then every `\n` becomes `\r\n` (§1.1). */
  write(message: JsonObject): void {
    if (this.state === "closed") return;
    this.writeText(this.host.serialize(message, this.pretty));
  }

  /** Writes text already serialized by the host (a broadcast event serialized once). */
  writeText(text: string): void {
    if (this.state === "closed" || this.stream.destroyed || this.stream.writableEnded) return;
    this.host.traffic?.(this, "out", text);
    try {
      const ok = this.stream.write(text);
      if (!ok) this.outputBlocked = true;
    } catch {
      this.close();
    }
  }

  /** Moves the session to command mode with the given capabilities (`qmp_capabilities`). */
  negotiated(enable: readonly string[]): void {
    if (this.state !== "negotiating") return;
    this.enabled.clear();
    for (const c of enable) this.enabled.add(c);
    this.oob = this.enabled.has("oob");
    this.state = "command";
  }

  /** Takes the next queued request; resumes input at once when it came off a full OOB queue. */
  take(): QueuedRequest | undefined {
    const request = this.queue.shift();
    if (request === undefined) return undefined;
    if (this.oobEnabled && this.queue.length === QMP_REQUEST_QUEUE_MAX - 1) this.resume();
    return request;
  }

  /** Ends the suspension a queued request caused (`monitor_resume`). */
  resume(): void {
    if (this.suspendCount > 0) this.suspendCount--;
    this.pump();
  }

  private receive(chunk: Buffer | string): void {
    if (this.state === "closed" || this.decoder === undefined) return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    this.host.traffic?.(this, "in", bytes.toString("latin1"));
    let items: JsonStreamItem[];
    try {
      items = this.decoder.push(bytes);
    } catch (error) {
      // The decoder reports bad input as items; a throw is a bug, but must not kill the server.
      items = [new JsonStreamErrorItem(`JSON parse error, ${String(error)}`)];
    }
    if (items.length > 1 && !this.corked) {
      // A pipelined burst: the replies written in this turn of the event loop leave in one
      // system call (the bytes are the same as QEMU's line-by-line flush). A lone request is
      // answered with a plain write, which is cheaper.
      this.corked = true;
      this.stream.cork();
      queueMicrotask(this.uncork);
    }
    if (this.inboxHead === this.inbox.length) {
      this.inbox = items;
      this.inboxHead = 0;
    } else {
      for (const item of items) this.inbox.push(item);
    }
    this.pump();
  }

  private enqueueInput(entry: InboxEntry): void {
    if (this.state === "closed") return;
    this.inbox.push(entry);
    this.pump();
  }

  /** Reads on while not suspended, as QEMU's `monitor_can_read` allows (§1.7). */
  private pump(): void {
    while (this.state !== "closed" && this.suspendCount === 0 && !this.outputBlocked) {
      if (this.inboxHead === this.inbox.length) break;
      const entry = this.inbox[this.inboxHead++]!;
      if (entry === EOF) {
        this.close();
        return;
      }
      this.handle(entry);
    }
    this.applyBackpressure();
  }

  /** `handle_qmp_command`: OOB requests run now, the rest queue (parse errors too, §1.4). */
  private handle(item: JsonStreamItem): void {
    if (item.kind === "value" && isOobRequest(item.value)) {
      this.host.dispatchOob(this, item.value);
      return;
    }
    if (!this.oobEnabled || this.queue.length === QMP_REQUEST_QUEUE_MAX - 1) this.suspendCount++;
    this.queue.push(item);
    this.host.kick(this.oobEnabled);
  }

  /** Stops reading the socket while decoded input waits, so memory stays bounded. */
  private applyBackpressure(): void {
    if (this.state === "closed") return;
    if (this.inboxHead === this.inbox.length && this.inboxHead > 0) {
      this.inbox = [];
      this.inboxHead = 0;
    }
    const hold = this.inbox.length > 0 || this.suspendCount > 0 || this.outputBlocked;
    if (hold && !this.streamPaused) {
      this.streamPaused = true;
      this.stream.pause();
    } else if (!hold && this.streamPaused) {
      this.streamPaused = false;
      this.stream.resume();
    }
  }

  /**
   * `CHR_EVENT_CLOSED`: the queue and unread input are dropped, handlers are told through the
   * abort signal, and the stream is ended (what was already written still goes out).
   */
  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.queue.length = 0;
    this.inbox = [];
    this.inboxHead = 0;
    this.decoder = undefined;
    this.stream.off("data", this.onData);
    this.stream.off("end", this.onEnd);
    this.stream.off("drain", this.onDrain);
    if (!this.stream.destroyed) {
      // What was written still goes out, then the socket closes; a peer that never reads
      // must not keep it open, so a timer destroys it in any case.
      const timer = setTimeout(() => this.stream.destroy(), CLOSE_LINGER_MS);
      timer.unref();
      this.stream.once("close", () => clearTimeout(timer));
      this.stream.once("finish", () => this.stream.destroy());
      this.stream.end();
    }
    this.abort.abort(
      new ConnectionClosedError(`client ${this.id} (${this.peer}) disconnected`, undefined, false),
    );
    this.host.sessionClosed(this);
  }
}
