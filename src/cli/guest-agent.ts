/**
 * A peer that speaks QMP's JSON without its handshake: QEMU's guest agent (`qemu-ga`), which
 * sends no greeting and knows no `qmp_capabilities`, and answers `{"execute": …}` with
 * `{"return": …}` or `{"error": …}`. What `qmpkit shell -N` talks to, as `qmp-shell -N` does.
 *
 * Each command carries an id and its reply is matched by it; the agent sends no events. A reply
 * never comes for `guest-sync-delimited`'s 0xFF resync byte or for commands the agent marks
 * `success-response: false` (`guest-shutdown`, `guest-suspend-*`): `timeoutMs` bounds those.
 *
 * @module
 */
import { CommandError, ConnectionClosedError, TimeoutError } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { armDeadline } from "../base/deadline.js";
import { Connection, type JsonStreamItem, openStream } from "../wire/index.js";

/** Options of {@link GuestAgentPeer.connect}. */
export interface GuestAgentPeerOptions {
  /** Time to open the socket (ms). */
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Sees every message as text, both ways. */
  readonly onTraffic?: ((direction: "in" | "out", text: string) => void) | undefined;
}

interface Waiting {
  readonly name: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** One connection to a guest agent. */
export class GuestAgentPeer {
  readonly #connection: Connection;
  readonly #waiting = new Map<string, Waiting>();
  #nextId = 1;
  #closedFor: Error | undefined;

  private constructor(
    stream: Awaited<ReturnType<typeof openStream>>,
    options: GuestAgentPeerOptions,
  ) {
    this.#connection = new Connection(stream, {
      dialect: "client",
      writer: "compact",
      onTraffic: options.onTraffic,
      // Runs in the reader loop: settles the waiting call, never awaits.
      onItem: (item: JsonStreamItem) => this.#onItem(item),
    });
    void this.#connection.closed.then((cause) => {
      this.#closedFor = cause ?? new Error("the guest agent closed the connection");
      for (const [id, w] of this.#waiting) {
        this.#waiting.delete(id);
        w.reject(
          new ConnectionClosedError(
            `${w.name} failed: the connection closed before the reply; the outcome is unknown`,
            w.name,
            true,
            { cause: this.#closedFor },
          ),
        );
      }
    });
  }

  /** Opens `target` (`unix:PATH`, `tcp:HOST:PORT`); there is no greeting to wait for. */
  static async connect(
    target: string,
    options: GuestAgentPeerOptions = {},
  ): Promise<GuestAgentPeer> {
    const stream = await openStream(target, {
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
    return new GuestAgentPeer(stream, options);
  }

  /** Resolves once the connection is down (with why, `undefined` after `close()`). */
  get closed(): Promise<Error | undefined> {
    return this.#connection.closed;
  }

  get isClosed(): boolean {
    return this.#connection.isClosed;
  }

  /**
   * Runs a command; resolves with its `return` value.
   * @throws CommandError for the agent's error reply; TimeoutError after `timeoutMs`;
   *   ConnectionClosedError when the connection ends first.
   */
  execute(
    name: string,
    args?: JsonObject | undefined,
    options: {
      readonly timeoutMs?: number | undefined;
      readonly signal?: AbortSignal | undefined;
    } = {},
  ): Promise<unknown> {
    if (this.#connection.isClosed) {
      return Promise.reject(
        new ConnectionClosedError(`${name} failed: the connection is closed`, name, false, {
          cause: this.#closedFor,
        }),
      );
    }
    const id = `qmpkit-ga#${this.#nextId++}`;
    const request: JsonObject = { execute: name, ...(args ? { arguments: args } : {}), id };
    return new Promise<unknown>((resolve, reject) => {
      const disarm = armDeadline(
        options,
        (reason) => {
          this.#waiting.delete(id);
          reject(reason);
        },
        () =>
          new TimeoutError(
            `${name} timed out after ${options.timeoutMs} ms: the command was sent, its outcome is unknown`,
            name,
            options.timeoutMs!,
            true,
          ),
      );
      this.#waiting.set(id, {
        name,
        resolve: (v) => {
          disarm();
          resolve(v);
        },
        reject: (e) => {
          disarm();
          reject(e);
        },
      });
      this.#connection.send(request);
    });
  }

  #onItem(item: JsonStreamItem): void {
    if (item.kind !== "value" || !isJsonObject(item.value)) return;
    const reply = item.value;
    const id = typeof reply.id === "string" ? reply.id : undefined;
    const waiting = id === undefined ? undefined : this.#waiting.get(id);
    if (waiting === undefined) return;
    this.#waiting.delete(id!);
    if ("return" in reply) {
      waiting.resolve(reply.return as JsonValue);
    } else {
      const error = isJsonObject(reply.error) ? reply.error : {};
      waiting.reject(
        new CommandError(
          waiting.name,
          String(error.class ?? "GenericError"),
          String(error.desc ?? ""),
          reply.id,
        ),
      );
    }
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.#connection.close();
    await this.#connection.closed;
  }
}
