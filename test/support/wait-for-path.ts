/**
 * Test support: wait for a file or socket to appear, as tests do after starting something that
 * listens on a unix socket or writes a pid file. A unix socket counts once it accepts
 * connections, not when its file appears.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, lstatSync, readFileSync } from "node:fs";

/**
 * Whether a unix socket at `path` accepts connections. Its file appears at `bind()`, a moment
 * before the server's `listen()`, and a connection in between is refused (seen once in CI with
 * QEMU). Linux lists listening sockets in /proc/net/unix with the accept flag (0x10000);
 * elsewhere the file's existence is the best sign there is.
 */
export function unixSocketListening(path: string): boolean {
  if (!existsSync(path)) return false;
  let table: string;
  try {
    table = readFileSync("/proc/net/unix", "latin1");
  } catch {
    return true;
  }
  return table.split("\n").some((line) => {
    if (!line.endsWith(` ${path}`)) return false;
    const flags = Number.parseInt(line.split(/\s+/)[3] ?? "0", 16);
    return (flags & 0x10000) !== 0;
  });
}

/** A regular file once it exists; a unix socket once it listens. */
function ready(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    return !lstatSync(path).isSocket() || unixSocketListening(path);
  } catch {
    return false;
  }
}

/** Options of {@link waitForPath}. */
export interface WaitForPathOptions {
  /** Give up (reject) after this many milliseconds. Default 10 000. */
  readonly timeoutMs?: number | undefined;
  /** The process expected to create the path: its exit ends the wait with an error at once. */
  readonly child?: ChildProcess | undefined;
}

/**
 * Resolves once `path` exists (and, for a unix socket, listens); rejects after the timeout, or
 * when `child` has exited first.
 */
export async function waitForPath(path: string, options: WaitForPathOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  while (!ready(path)) {
    const child = options.child;
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(
        `${path} did not appear: the process exited (${child.exitCode ?? child.signalCode})`,
      );
    }
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
