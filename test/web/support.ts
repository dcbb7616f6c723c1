/**
 * Test support for the web layer: the dashboard as a real `qmpkit dashboard` process, free
 * ports, waiting on conditions, the Prometheus exposition parsed, and Debian's Chromium driven
 * by playwright-core (a missing Chromium fails under CI=true, and is skipped loudly elsewhere).
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnCli, waitForOutput } from "../cli/support.js";

/** Debian's Chromium, and the flags this machine needs (docs: no network, no sandbox as root). */
export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-quic",
  "--disable-sync",
];

/** Why browser tests cannot run here (undefined: they can); under CI=true, a failure instead. */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `${CHROMIUM} is not installed (apt-get install chromium)`;
  if (process.env.CI === "true") throw new Error(`CI needs Chromium: ${why}`);
  console.warn(`SKIPPED: browser tests: ${why}`);
  return why;
}

/** A port nobody listens on now (asked of the system, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns something other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A `qmpkit dashboard` process. */
export interface DashboardProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 10 s; resolves when it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `qmpkit dashboard ARGS` and waits for its address line. */
export async function startDashboardProcess(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): Promise<DashboardProcess> {
  const child = spawnCli(["dashboard", ...args], { env });
  child.stdin?.end();
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    err += s;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const line = await Promise.race([
    waitForOutput(child, (s) => /http:\/\/\S+\/ /.test(s), 60_000, "stderr"),
    exited.then(() => {
      throw new Error(`qmpkit dashboard exited: ${err}`);
    }),
  ]);
  const url = /(http:\/\/\S+?)\/ /.exec(line)![1]!;
  return {
    child,
    url,
    stderr: () => err,
    stop: async (signal: NodeJS.Signals = "SIGTERM") => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The samples of a Prometheus text exposition: `name{labels}` (labels sorted) → value. */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels = [...(m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`)
      .sort();
    samples.set(`${m[1]}{${labels.join(",")}}`, Number(m[3]));
  }
  return samples;
}
