/**
 * Test support: wait for a file or socket to appear, as tests do after starting something that
 * listens on a unix socket or writes a pid file.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";

/** Options of {@link waitForPath}. */
export interface WaitForPathOptions {
  /** Give up (reject) after this many milliseconds. Default 10 000. */
  readonly timeoutMs?: number | undefined;
  /** The process expected to create the path: its exit ends the wait with an error at once. */
  readonly child?: ChildProcess | undefined;
}

/** Resolves once `path` exists; rejects after the timeout, or when `child` has exited first. */
export async function waitForPath(path: string, options: WaitForPathOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
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
