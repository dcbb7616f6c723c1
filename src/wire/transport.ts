/**
 * Transports: the only part of the wire layer that touches the network. A QMP endpoint is named
 * `unix:PATH` or `tcp:HOST:PORT` (QEMU's own `-qmp` spelling), or given as any Node `Duplex`
 * (stdio of a child process, a socket you opened yourself, an in-memory pair for tests).
 *
 * @module
 */
import { existsSync, lstatSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Duplex, type Readable, type Writable } from "node:stream";
import { ConnectError, TimeoutError } from "../base/errors.js";
import { armDeadline } from "../base/deadline.js";

/** A parsed endpoint. */
export type Target =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

/** Options of {@link openStream}. */
export interface OpenStreamOptions {
  /** Give up connecting after this many milliseconds. Default: no limit. */
  timeoutMs?: number | undefined;
  /** Cancels the attempt; the call rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

/** A listening endpoint. */
export interface Listener {
  /** Where it listens, as a target string (`unix:/run/x.sock`, `tcp:127.0.0.1:4444`). */
  readonly address: string;
  /**
   * Stops accepting and destroys the connections it accepted that are still open; for a unix
   * socket, removes the socket file. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Parses `unix:PATH` or `tcp:HOST:PORT` (an IPv6 host in brackets: `tcp:[::1]:4444`).
 * @throws ConnectError when the text names no endpoint.
 */
export function parseTarget(text: string): Target {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (path !== "") return { kind: "unix", path };
  } else if (text.startsWith("tcp:")) {
    const rest = text.slice(4);
    const colon = rest.lastIndexOf(":");
    if (colon > 0) {
      let host = rest.slice(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
      const portText = rest.slice(colon + 1);
      const port = Number(portText);
      if (host !== "" && /^\d+$/.test(portText) && port <= 65535)
        return { kind: "tcp", host, port };
    }
  }
  throw new ConnectError(
    `invalid QMP target ${JSON.stringify(text)}: expected unix:PATH or tcp:HOST:PORT`,
    text,
  );
}

/** The target string of a parsed target. */
export function formatTarget(target: Target): string {
  if (target.kind === "unix") return `unix:${target.path}`;
  return `tcp:${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`;
}

/**
 * Opens a stream to a target. A `Duplex` is returned as it is.
 * @throws ConnectError when the peer cannot be reached, TimeoutError after `timeoutMs`
 *   (`sent: false`), or the signal's reason when aborted.
 */
export async function openStream(
  target: string | Target | Duplex,
  options: OpenStreamOptions = {},
): Promise<Duplex> {
  if (target instanceof Duplex) return target;
  const parsed = typeof target === "string" ? parseTarget(target) : target;
  const name = typeof target === "string" ? target : formatTarget(parsed);
  const { signal, timeoutMs } = options;
  signal?.throwIfAborted();
  return await new Promise<Duplex>((resolve, reject) => {
    // No Nagle on TCP: each QMP message is one write, and a pipelined command must not wait
    // for the acknowledgement of the one before it.
    const socket: Socket =
      parsed.kind === "unix"
        ? connect(parsed.path)
        : connect({ port: parsed.port, host: parsed.host, noDelay: true });
    const cleanup = (): void => {
      disarm();
      socket.off("connect", onConnect);
      socket.off("error", onError);
    };
    const fail = (error: unknown): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    const onError = (error: Error): void => {
      fail(new ConnectError(`connect to ${name} failed: ${error.message}`, name, { cause: error }));
    };
    socket.once("connect", onConnect);
    socket.once("error", onError);
    const disarm = armDeadline(
      { timeoutMs, signal },
      fail,
      () =>
        new TimeoutError(
          `connect to ${name} timed out after ${timeoutMs} ms`,
          "connect",
          timeoutMs!,
          false,
        ),
    );
  });
}

/**
 * Listens on a target and hands every accepted connection to `onStream`. For a unix socket, a
 * stale socket file at the path is replaced (as QEMU's `server=on` does). TCP port 0 picks a free
 * port; `address` tells which.
 * @throws ConnectError when the address cannot be bound.
 */
export async function listen(
  target: string | Target,
  onStream: (stream: Duplex) => void,
): Promise<Listener> {
  const parsed = typeof target === "string" ? parseTarget(target) : target;
  const name = typeof target === "string" ? target : formatTarget(parsed);
  const open = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    onStream(socket);
  });
  if (parsed.kind === "unix" && existsSync(parsed.path) && lstatSync(parsed.path).isSocket()) {
    unlinkSync(parsed.path);
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(
        new ConnectError(`listen on ${name} failed: ${error.message}`, name, { cause: error }),
      );
    };
    server.once("error", onError);
    const ready = (): void => {
      server.off("error", onError);
      resolve();
    };
    if (parsed.kind === "unix") server.listen(parsed.path, ready);
    else server.listen(parsed.port, parsed.host, ready);
  });
  let address = name;
  if (parsed.kind === "tcp") {
    const bound = server.address();
    if (bound !== null && typeof bound === "object") {
      address = formatTarget({ kind: "tcp", host: parsed.host, port: bound.port });
    }
  }
  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }).finally(() => {
        if (parsed.kind === "unix" && existsSync(parsed.path)) {
          try {
            unlinkSync(parsed.path);
          } catch {
            // already gone
          }
        }
      });
      return closing;
    },
  };
}

/**
 * One `Duplex` from a readable and a writable stream: a child process's stdout and stdin (QEMU
 * started with `-qmp stdio`), or this process's own stdin and stdout.
 *
 * @example
 * const qemu = spawn("qemu-system-x86_64", ["-qmp", "stdio", ...]);
 * const stream = joinStreams(qemu.stdout, qemu.stdin);
 */
export function joinStreams(readable: Readable, writable: Writable): Duplex {
  return Duplex.from({ readable, writable });
}

/** One end of an in-memory pair. */
class MemoryEnd extends Duplex {
  peer: MemoryEnd | undefined;

  constructor() {
    // Like a socket: when the peer's writing ends, this end's writing ends too.
    super({ allowHalfOpen: false });
  }

  override _read(): void {}

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    const peer = this.peer;
    if (peer === undefined || peer.destroyed || peer.readableEnded) {
      callback(new Error("write to a closed in-memory stream"));
      return;
    }
    // Deliver asynchronously, as a socket would, and copy so the writer may reuse its buffer.
    const copy = Buffer.from(chunk);
    setImmediate(() => {
      if (!peer.destroyed) peer.push(copy);
      callback();
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    setImmediate(() => {
      if (peer !== undefined && !peer.destroyed && !peer.readableEnded) peer.push(null);
      callback();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    setImmediate(() => {
      if (peer !== undefined && !peer.destroyed && !peer.readableEnded) peer.push(null);
    });
    callback(error);
  }
}

/**
 * Two connected in-memory `Duplex` streams: what one writes, the other reads; ending or
 * destroying one ends the other's input. For tests and for in-process client/server pairs.
 */
export function createMemoryPair(): [Duplex, Duplex] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
