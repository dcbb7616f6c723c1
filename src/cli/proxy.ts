/**
 * `QmpProxy`: the sockets around {@link ProxyCore}. It listens where asked, serves each client
 * connection with QEMU's own JSON dialect and output form, and holds one connection to the
 * upstream QMP server, reconnecting with backoff when it goes away.
 *
 * @example
 * const proxy = await QmpProxy.start({ upstream: "unix:/run/vm1.qmp", listen: ["unix:/run/vm1-shared.qmp"] });
 * // … any number of QMP clients connect to /run/vm1-shared.qmp …
 * await proxy.close();
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { ConnectError, ProtocolError } from "../base/errors.js";
import { isJsonObject, type JsonObject } from "../base/json.js";
import {
  Connection,
  type JsonStreamItem,
  type Listener,
  listen,
  openStream,
  qdictKeyOrder,
} from "../wire/index.js";
import type { FrameTap } from "../journal/recorder.js";
import { PROXY_ID_PREFIX, type ProxyClientPort, ProxyCore } from "./proxy-core.js";

const nonAscii = /[^\x00-\x7f]/;

/** Options of {@link QmpProxy.start}. */
export interface QmpProxyOptions {
  /** The QMP server to share: `unix:PATH` or `tcp:HOST:PORT`. */
  readonly upstream: string;
  /** Where clients connect (`unix:PATH`, `tcp:HOST:PORT`), one or more. */
  readonly listen: readonly string[];
  /** Time for each upstream connect and handshake (ms). Default 5 000. */
  readonly connectTimeoutMs?: number | undefined;
  /** Delay before the first reconnection attempt (ms), doubling up to `maxDelayMs`. Default 100. */
  readonly reconnectDelayMs?: number | undefined;
  /** Upper bound of the reconnection delay (ms). Default 2 000. */
  readonly maxDelayMs?: number | undefined;
  /**
   * In-band commands sent upstream before their replies come back. Default 8; 1 sends each
   * only once the previous one is answered.
   */
  readonly maxInFlight?: number | undefined;
  /** What the proxy does, one line each (client connected, upstream lost, reconnected). */
  readonly log?: ((line: string) => void) | undefined;
  /** Aborts `start()`. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Sees every frame, both directions, with QEMU (peer `qemu`) and each client (`client#N`):
   * `qmpkit proxy --record` passes the journal's `SessionRecorder`.
   */
  readonly tap?: FrameTap | undefined;
}

/** A running proxy. */
export class QmpProxy {
  private readonly core: ProxyCore;
  private readonly listeners: Listener[] = [];
  private readonly clientConnections = new Set<Connection>();
  private upstream: Connection | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private delay: number;
  private clientCount = 0;

  private constructor(private readonly options: QmpProxyOptions) {
    this.delay = options.reconnectDelayMs ?? 100;
    this.core = new ProxyCore({
      upstream: { send: (message) => this.upstream?.send(message) },
      orderKeys: qdictKeyOrder,
      upstreamName: options.upstream,
      log: options.log,
      maxInFlight: options.maxInFlight,
    });
  }

  /**
   * Connects to the upstream, then listens. Rejects with a `ConnectError` (unreachable) or a
   * `ProtocolError` (not a QMP server) when the first connection fails: a proxy for nothing is
   * a mistake worth reporting at once. Later losses are retried for ever.
   */
  static async start(options: QmpProxyOptions): Promise<QmpProxy> {
    const proxy = new QmpProxy(options);
    try {
      await proxy.connectUpstream(options.signal);
      for (const address of options.listen) {
        proxy.listeners.push(await listen(address, (stream) => proxy.accept(stream)));
      }
    } catch (error) {
      await proxy.close();
      throw error;
    }
    return proxy;
  }

  /** The addresses clients can connect to. */
  get addresses(): string[] {
    return this.listeners.map((l) => l.address);
  }

  /** Whether the upstream is connected and negotiated. */
  get upstreamReady(): boolean {
    return this.core.upstreamReady;
  }

  /** The number of connected clients. */
  get clients(): number {
    return this.core.clientsConnected;
  }

  private accept(stream: Duplex): void {
    if (this.closed) {
      stream.destroy();
      return;
    }
    let port: ProxyClientPort | undefined;
    const tap = this.options.tap;
    const peer = `client#${++this.clientCount}`;
    tap?.open(peer);
    const connection = new Connection(stream, {
      dialect: "qemu",
      writer: "qemu",
      ...(tap && { onTraffic: (d, text) => d === "out" && tap.frame(peer, "out", text) }),
      // Runs in the client's reader loop: hands the item over, never waits.
      onItem: (item: JsonStreamItem) => {
        if (item.kind === "value") tap?.frame(peer, "in", item.value);
        if (port) this.core.clientItem(port, item);
      },
    });
    port = {
      send: (message) => connection.send(message),
      sendText: (text) => connection.sendRaw(text),
      close: () => connection.close(),
    };
    const clientPort = port;
    this.clientConnections.add(connection);
    this.core.addClient(clientPort);
    void connection.closed.then(() => {
      this.clientConnections.delete(connection);
      this.core.removeClient(clientPort);
      tap?.close(peer);
    });
  }

  /** One upstream connection: greeting, `qmp_capabilities`, then replies and events to the core. */
  private async connectUpstream(signal?: AbortSignal | undefined): Promise<void> {
    const target = this.options.upstream;
    const timeoutMs = this.options.connectTimeoutMs ?? 5_000;
    let stream: Duplex;
    try {
      stream = await openStream(target, { timeoutMs, signal });
    } catch (error) {
      throw new ConnectError(`cannot connect to ${target}: ${(error as Error).message}`, target, {
        cause: error,
      });
    }
    const tap = this.options.tap;
    tap?.open("qemu");
    let phase: "greeting" | "negotiating" | "ready" = "greeting";
    // The text of each message as the upstream wrote it, for the core to pass on instead of
    // printing the parsed value again. The decoder tells each message's size in bytes and skips
    // the whitespace between messages; sizes in bytes are sizes in characters as long as the
    // upstream writes ASCII, as QEMU always does (§1.1). Anything else (non-ASCII, a JSON error)
    // turns this off for the connection, and the core prints the parsed values.
    let received = "";
    let textual = true;
    const stopText = () => {
      textual = false;
      received = "";
    };
    const messageText = (bytes: number): string | undefined => {
      if (!textual) return undefined;
      let start = 0;
      while (start < received.length && " \t\r\n".includes(received[start]!)) start++;
      const text = received.slice(start, start + bytes);
      received = received.slice(start + bytes);
      if (text.length !== bytes || text[0] !== "{" || text[bytes - 1] !== "}") {
        stopText();
        return undefined;
      }
      // QEMU's pretty form spans lines: the core rebuilds such a message in the plain form.
      return text.includes("\n") ? undefined : text;
    };
    let greeting: JsonObject | undefined;
    let oob = false;
    let settle!: (error?: Error) => void;
    const handshake = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    const connection = new Connection(stream, {
      dialect: "client",
      writer: "compact",
      onTraffic: (direction, text) => {
        if (direction === "out") tap?.frame("qemu", "out", text);
        if (direction !== "in" || !textual) return;
        if (nonAscii.test(text)) stopText();
        else received += text;
      },
      onItem: (item: JsonStreamItem) => {
        if (item.kind === "error") {
          stopText();
          if (phase !== "ready")
            connection.close(
              new ProtocolError(`${target} is not a QMP server: ${item.error.desc}`),
            );
          return;
        }
        const value = item.value;
        const text = messageText(item.bytes);
        tap?.frame("qemu", "in", text ?? value);
        if (phase === "ready") {
          this.core.upstreamMessage(value, text);
        } else if (phase === "greeting") {
          if (!isJsonObject(value) || !isJsonObject(value.QMP)) {
            connection.close(
              new ProtocolError(
                `${target} is not a QMP server: its first message is not a QMP greeting`,
                value,
              ),
            );
            return;
          }
          greeting = value;
          phase = "negotiating";
          // OOB is enabled upstream whenever offered, so that clients can be offered it (§1.7).
          const caps = value.QMP.capabilities;
          oob = Array.isArray(caps) && caps.includes("oob");
          connection.send(
            oob
              ? {
                  execute: "qmp_capabilities",
                  arguments: { enable: ["oob"] },
                  id: `${PROXY_ID_PREFIX}0`,
                }
              : { execute: "qmp_capabilities", id: `${PROXY_ID_PREFIX}0` },
          );
        } else if (isJsonObject(value) && "return" in value) {
          phase = "ready";
          settle();
        } else if (isJsonObject(value) && "error" in value) {
          connection.close(
            new ProtocolError(
              `${target} refused qmp_capabilities: ${JSON.stringify(value.error)}`,
              value,
            ),
          );
        }
      },
    });
    const timer = setTimeout(
      () =>
        connection.close(
          new ConnectError(
            `cannot connect to ${target}: no QMP greeting within ${timeoutMs} ms`,
            target,
          ),
        ),
      timeoutMs,
    );
    void connection.closed.then((error) => {
      tap?.close("qemu");
      settle(
        error ??
          new ConnectError(
            `cannot connect to ${target}: the connection closed during the handshake`,
            target,
          ),
      );
      if (phase === "ready") this.upstreamGone(connection, error);
    });
    try {
      await handshake;
    } finally {
      clearTimeout(timer);
    }
    if (this.closed) {
      connection.close();
      return;
    }
    this.upstream = connection;
    this.delay = this.options.reconnectDelayMs ?? 100;
    this.core.upstreamConnected(greeting!, { oob });
  }

  private upstreamGone(connection: Connection, error: Error | undefined): void {
    if (this.upstream !== connection) return;
    this.upstream = undefined;
    this.core.upstreamLost(error ? error.message : "it closed the connection");
    if (!this.closed) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.options.maxDelayMs ?? 2_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connectUpstream().catch((error: unknown) => {
        this.options.log?.(
          `reconnecting to ${this.options.upstream} failed: ${(error as Error).message}`,
        );
        if (!this.closed) this.scheduleReconnect();
      });
    }, wait);
  }

  /** Stops listening, disconnects every client and the upstream. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.core.closeAll();
    for (const c of this.clientConnections) c.close();
    this.upstream?.close();
    await Promise.all(this.listeners.splice(0).map((l) => l.close()));
  }
}
