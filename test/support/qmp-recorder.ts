/**
 * Test support: a QMP peer that records everything on the wire, with the time each line arrived.
 *
 * Like `RawQmp` (real-qemu.ts) it sends bytes as given and keeps what arrives as raw lines (QEMU
 * ends each message with `\r\n`), with no JSON library in between, so two servers can be compared
 * byte for byte. It also notes when each line arrived (wall clock, the clock QEMU stamps events
 * with, §1.6) and the end of the stream, which the conformance suite needs for throttling (§2).
 */
import { connect, type Socket } from "node:net";

/** One thing seen on a QMP connection, in order. `at` is `Date.now()` when it happened. */
export type WireEntry =
  | { readonly kind: "received"; readonly text: string; readonly at: number }
  | { readonly kind: "sent"; readonly text: string; readonly at: number }
  | { readonly kind: "eof"; readonly at: number };

/** Whether a received line is a command's reply (`return` or `error` at the top level). */
export function isReplyLine(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && ("return" in value || "error" in value);
  } catch {
    return false;
  }
}

/** The event name of a received line, or `undefined` if it is not an event. */
export function eventNameOf(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || !("event" in value)) return undefined;
    return typeof value.event === "string" ? value.event : undefined;
  } catch {
    return undefined;
  }
}

/** Options of the waiting calls. */
export interface WaitOptions {
  /** Give up after this many milliseconds (the call then rejects). Default 5 000. */
  timeoutMs?: number | undefined;
}

/** A recording QMP peer over a unix socket. */
export class QmpRecorder {
  /** Everything so far, in order. */
  readonly entries: WireEntry[] = [];
  private buffer = "";
  private waiters: Array<() => void> = [];
  private ended = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      const now = Date.now();
      let nl = this.buffer.indexOf("\n");
      while (nl >= 0) {
        this.entries.push({ kind: "received", text: this.buffer.slice(0, nl + 1), at: now });
        this.buffer = this.buffer.slice(nl + 1);
        nl = this.buffer.indexOf("\n");
      }
      this.wake();
    });
    const end = () => {
      if (this.ended) return;
      this.ended = true;
      // A partial last line is kept as it is: the comparison shows it without its line end.
      if (this.buffer !== "") {
        this.entries.push({ kind: "received", text: this.buffer, at: Date.now() });
        this.buffer = "";
      }
      this.entries.push({ kind: "eof", at: Date.now() });
      this.wake();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  /**
   * Connects to a unix socket. A refused or missing socket is retried until `timeoutMs`: QEMU
   * creates the socket file (bind) a moment before it listens.
   */
  static async connect(path: string, options: WaitOptions = {}): Promise<QmpRecorder> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return new QmpRecorder(await connectOnce(path));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const retry = code === "ECONNREFUSED" || code === "ENOENT";
        if (!retry || Date.now() > deadline) {
          throw new Error(`connect to ${path} failed: ${(error as Error).message}`, {
            cause: error,
          });
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  /** Whether the peer closed the connection. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** The received lines so far. */
  received(): string[] {
    const out: string[] = [];
    for (const e of this.entries) if (e.kind === "received") out.push(e.text);
    return out;
  }

  /** Writes `text` as is (UTF-8) and records it. Nothing is sent once the stream has ended. */
  send(text: string): void {
    this.entries.push({ kind: "sent", text, at: Date.now() });
    if (!this.ended) this.socket.write(text);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Waits until `done(entries)` holds. Rejects after `timeoutMs`, naming `what` and showing the
   * lines seen so far, so a scenario that goes wrong says where.
   */
  async waitFor(
    what: string,
    done: (entries: readonly WireEntry[]) => boolean,
    options: WaitOptions = {},
  ): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const deadline = Date.now() + timeoutMs;
    while (!done(this.entries)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `waiting for ${what} failed: not seen in ${timeoutMs} ms; the peer sent:\n${this.received().join("")}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once nothing has arrived for `quietMs` (or at end of stream). */
  async waitQuiet(quietMs: number): Promise<void> {
    for (;;) {
      if (this.ended) return;
      const count = this.entries.length;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, quietMs);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (this.entries.length === count) return;
    }
  }

  /**
   * Sends a command and waits for its reply, or for the end of the stream (`quit` may lose its
   * reply, qmp-spec). Replies are matched by count: requests are answered in order (§1.7).
   */
  async command(text: string, options: WaitOptions = {}): Promise<void> {
    const repliesBefore = this.received().filter(isReplyLine).length;
    this.send(text);
    await this.waitFor(
      `the reply to ${text}`,
      () => this.ended || this.received().filter(isReplyLine).length > repliesBefore,
      options,
    );
  }

  /** Closes the connection (idempotent). */
  close(): void {
    this.socket.destroy();
  }
}

function connectOnce(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const onError = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(socket);
    });
  });
}
