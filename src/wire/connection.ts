/**
 * A QMP connection over any byte stream: decodes incoming JSON messages, writes outgoing ones,
 * and owns the stream's lifecycle. Generic: the QMP client and the server session build on it
 * (greeting, negotiation, ids and dispatch live there).
 *
 * Concurrency contract: `onItem` runs **in the reader loop**, synchronously, once per decoded
 * message or error, in stream order. It must never wait for a reply (the reply could only be read
 * by the very loop it blocks); it may call `send`, `pause` and `close`. If it throws, the
 * connection closes with that error as its cause. After `pause()` no further item is delivered,
 * even one already decoded from the same chunk, until `resume()`: a server uses this to handle
 * one request at a time as QEMU's monitor does (§1.7).
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { ProtocolError, StateError } from "../base/errors.js";
import type { JsonValue } from "../base/json.js";
import { type JsonDialect, type JsonStreamItem, JsonStreamDecoder } from "./json-stream.js";
import { writeCompactJson, writeQemuJson } from "./json-writer.js";

/** The empty queue, shared: a delivered chunk leaves no array behind. */
const NO_ITEMS: JsonStreamItem[] = [];

/** Direction of raw traffic, from this end's point of view. */
export type TrafficDirection = "in" | "out";

/** Options of {@link Connection}. */
export interface ConnectionOptions {
  /** The JSON dialect read from the peer: `qemu` for a server, `client` for a client. */
  dialect: JsonDialect;
  /**
   * How `send` writes: `qemu` = QEMU's exact form (QDict key order) followed by `\r\n`;
   * `compact` = compact JSON (bigint-safe) followed by `\n`.
   */
  writer: "qemu" | "compact";
  /** With the `qemu` writer: QEMU's pretty form, every line ending `\r\n`. Default false. */
  pretty?: boolean | undefined;
  /** Limit on one incoming message (QEMU's 64 MiB by default). */
  maxMessageBytes?: number | undefined;
  /** Runs in the reader loop for every decoded message or error: must not await a reply. */
  onItem(item: JsonStreamItem): void;
  /**
   * Sees the raw traffic: what arrived (decoded as UTF-8, chunk by chunk) and what was written.
   * Runs synchronously; keep it cheap.
   */
  onTraffic?: ((direction: TrafficDirection, text: string) => void) | undefined;
}

/**
 * A message connection over a `Duplex`.
 *
 * `closed` resolves (never rejects) once the connection is down, with the first cause: the
 * error passed to `close(error)`, a stream error, a `ProtocolError` when the peer hung up in
 * the middle of a message, or `undefined` for an orderly end.
 */
export class Connection {
  /** Resolves when the connection is down, with the first cause (`undefined`: orderly end). */
  readonly closed: Promise<Error | undefined>;
  private resolveClosed!: (cause: Error | undefined) => void;
  private cause: Error | undefined;
  private closing = false;
  private paused = false;
  private delivering = false;
  /** The peer ended while items were held back by `pause()`: close once they are delivered. */
  private endPending = false;
  private queue: JsonStreamItem[] = [];
  private queueHead = 0;
  private readonly decoder: JsonStreamDecoder;
  private readonly textDecoder = new TextDecoder();
  private graceTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly options: ConnectionOptions,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.decoder = new JsonStreamDecoder({
      dialect: options.dialect,
      maxMessageBytes: options.maxMessageBytes,
    });
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("error", this.onError);
    stream.on("close", this.onClose);
    // A stream that is already gone will not say so again.
    if (stream.destroyed) queueMicrotask(this.onClose);
  }

  /** Whether `close` was called or the stream ended: nothing more can be sent. */
  get isClosed(): boolean {
    return this.closing;
  }

  /**
   * Writes one message.
   * @throws StateError when the connection is closed.
   */
  send(value: JsonValue): void {
    let text: string;
    if (this.options.writer === "qemu") {
      text = writeQemuJson(value, { pretty: this.options.pretty });
      // QEMU's monitor writes "\r" before every "\n" (monitor_puts_locked, §1.1).
      if (this.options.pretty === true) text = text.replace(/\n/g, "\r\n");
      text += "\r\n";
    } else {
      text = `${writeCompactJson(value)}\n`;
    }
    this.sendRaw(text);
  }

  /**
   * Writes text exactly as given (UTF-8).
   * @throws StateError when the connection is closed.
   */
  sendRaw(text: string): void {
    if (this.closing) {
      throw new StateError("send failed: the connection is closed", "closed", "open");
    }
    this.options.onTraffic?.("out", text);
    this.stream.write(text);
  }

  /** Stops delivering items (and reading) until `resume()`. */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.stream.pause();
  }

  /** Delivers the items held back by `pause()`, then reads on. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.deliver();
    if (!this.paused && !this.closing) this.stream.resume();
  }

  /**
   * Closes the connection: pending output is flushed, then the stream is ended and destroyed.
   * Idempotent; the first cause wins. Items not yet delivered are dropped.
   */
  close(error?: Error): void {
    this.cause ??= error;
    if (this.closing) return;
    this.closing = true;
    this.queue = [];
    this.queueHead = 0;
    const stream = this.stream;
    if (stream.destroyed) {
      this.finish();
      return;
    }
    if (error !== undefined || !stream.writable) {
      stream.destroy();
      return;
    }
    // Let written replies reach the peer (QEMU's `quit` answers, then hangs up), but never wait
    // forever on a peer that does not read.
    stream.end(() => stream.destroy());
    this.graceTimer = setTimeout(() => stream.destroy(), 2_000);
    this.graceTimer.unref?.();
  }

  private readonly onData = (chunk: Buffer | string): void => {
    if (this.closing) return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    this.options.onTraffic?.("in", this.textDecoder.decode(bytes, { stream: true }));
    const items = this.decoder.push(bytes);
    if (items.length === 0) return;
    if (this.queueHead === this.queue.length) {
      this.queue = items;
      this.queueHead = 0;
    } else {
      for (const item of items) this.queue.push(item);
    }
    this.deliver();
  };

  /** The reader loop's delivery: runs `onItem` for queued items until paused or closed. */
  private deliver(): void {
    if (this.delivering) return; // re-entered from onItem (resume inside a handler)
    this.delivering = true;
    try {
      while (!this.paused && !this.closing && this.queueHead < this.queue.length) {
        const item = this.queue[this.queueHead++]!;
        try {
          this.options.onItem(item);
        } catch (error) {
          // A throwing handler must not take the process down from a stream event: the
          // connection ends, and `closed` says why.
          this.close(error instanceof Error ? error : new Error(`onItem threw: ${String(error)}`));
        }
      }
    } finally {
      this.delivering = false;
    }
    if (this.queueHead === this.queue.length) {
      // Nothing is ever pushed onto an empty queue (onData replaces it), so it can be shared.
      this.queue = NO_ITEMS;
      this.queueHead = 0;
      if (this.endPending) this.close();
    }
  }

  private readonly onEnd = (): void => {
    const pending = this.decoder.pendingBytes;
    if (pending > 0) {
      this.cause ??= new ProtocolError(
        `connection closed by the peer in the middle of a message (${pending} bytes pending)`,
      );
    }
    // Like QEMU, which reads on until the end, answer what was received before hanging up.
    if (this.queueHead < this.queue.length) this.endPending = true;
    else this.close();
  };

  private readonly onError = (error: Error): void => {
    this.cause ??= error;
    this.close();
  };

  private readonly onClose = (): void => {
    this.closing = true;
    this.finish();
  };

  private finish(): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.stream.off("data", this.onData);
    this.resolveClosed(this.cause);
  }
}
