/**
 * Test support: a real `nats-server` (Debian's 2.9.10 in CI) with JetStream on a file store, in a
 * private temporary directory, on a free loopback port, with a private config file. Stopped by
 * its pid; `kill()` is `kill -9`, and `restart()` starts it again on the same port, config and
 * store (what JetStream recovers from its files is what survived).
 *
 * ```ts
 * const nats = await startNatsServer();          // or { config: "authorization { ... }" }
 * nats.url;                                      // "nats://127.0.0.1:PORT"
 * await nats.kill();  await nats.restart();      // broker outage, file store kept
 * await nats.dispose();                          // stop, and remove its private directory
 * ```
 *
 * Every server started here is also killed when the test process exits, so none is left behind
 * by a failed test.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The binary: `QMPKIT_NATS_SERVER`, else `nats-server` on the PATH. */
export const natsServerBinary = process.env.QMPKIT_NATS_SERVER ?? "nats-server";

let availability: boolean | undefined;

/** Whether `nats-server --version` runs. */
export function natsServerAvailable(): boolean {
  availability ??= spawnSync(natsServerBinary, ["--version"], { stdio: "ignore" }).status === 0;
  return availability;
}

/**
 * Options for a test that needs nats-server: `{ skip }` on a developer machine without it (said
 * loudly). In CI (`CI` set) the test runs anyway and fails on the missing binary, as it must.
 */
export function natsServerTest(): { skip?: string } {
  if (natsServerAvailable() || process.env.CI) return {};
  const why = `${natsServerBinary} not found: NATS tests SKIPPED (apt-get install nats-server)`;
  process.stderr.write(`\n*** ${why} ***\n\n`);
  return { skip: why };
}

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /**
   * Extra lines of server configuration (nats-server's config syntax), e.g. an
   * `authorization { users = [...] }` block. Default none: anyone on loopback may connect.
   */
  readonly config?: string | undefined;
  /** The port (default: a free one). */
  readonly port?: number | undefined;
  /** Whether to enable JetStream (`-js`). Default true. */
  readonly jetstream?: boolean | undefined;
  /** How long to wait for "Server is ready" (ms). Default 30 000. */
  readonly readyTimeoutMs?: number | undefined;
}

/** A running (or stopped, restartable) nats-server. */
export interface NatsServer {
  /** `nats://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The private directory: config, log, and the JetStream store (`store/`). */
  readonly dir: string;
  /** The JetStream store directory (`-sd`). */
  readonly storeDir: string;
  readonly configPath: string;
  /** The log file (the server's stderr, across restarts). */
  readonly logPath: string;
  /** The current process id (undefined while stopped). */
  readonly pid: number | undefined;
  /** Whether the process is running. */
  readonly running: boolean;
  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** `kill -9`: no shutdown, the store as the crash left it. Waits for the exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same port, config and store; waits until it is ready. */
  restart(): Promise<void>;
  /** Stops the server (if running) and removes its private directory. */
  dispose(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
});

/** A TCP port free on loopback right now (the kernel's choice for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a nats-server with JetStream in a private directory; resolves once it is ready. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-nats-"));
  const storeDir = join(dir, "store");
  mkdirSync(storeDir);
  const configPath = join(dir, "nats.conf");
  const logPath = join(dir, "nats.log");
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  // A port picked free may be taken by someone else before the server binds it: try another.
  let port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const writeConfig = () =>
    writeFileSync(
      configPath,
      [
        `listen: "127.0.0.1:${port}"`,
        `server_name: "qmpkit-test-${port}"`,
        // Small limits: tests share a 2-core machine and its disk.
        "max_payload: 1MB",
        options.jetstream === false
          ? ""
          : // The store directory comes from `-sd` (the command line), never from here.
            "jetstream { max_memory_store: 64MB, max_file_store: 1GB }",
        options.config ?? "",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );

  const launch = async (): Promise<void> => {
    const before = logSize(logPath);
    const log = openSync(logPath, "a");
    const args = ["-c", configPath];
    if (options.jetstream !== false) args.push("-js", "-sd", storeDir);
    const proc = spawn(natsServerBinary, args, { stdio: ["ignore", log, log] });
    closeSync(log);
    child = proc;
    running.add(proc);
    exited = new Promise((resolve) => {
      proc.once("exit", () => {
        running.delete(proc);
        resolve();
      });
      proc.once("error", () => {
        running.delete(proc);
        resolve();
      });
    });
    const start = Date.now();
    for (;;) {
      const text = readFileSync(logPath, "utf8").slice(before);
      if (text.includes("Server is ready")) return;
      if (proc.exitCode !== null || proc.signalCode !== null || !running.has(proc)) {
        throw new Error(`nats-server exited before it was ready:\n${text}`);
      }
      if (Date.now() - start > readyTimeoutMs) {
        proc.kill("SIGKILL");
        throw new Error(`nats-server was not ready in ${readyTimeoutMs} ms:\n${text}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  for (let attempt = 0; ; attempt++) {
    writeConfig();
    try {
      await launch();
      break;
    } catch (error) {
      const text = String((error as Error).message);
      if (options.port === undefined && attempt < 5 && /address already in use/i.test(text)) {
        port = await freePort();
        continue;
      }
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  const signalAndWait = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (proc === undefined || !running.has(proc)) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const server: NatsServer = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    storeDir,
    configPath,
    logPath,
    get pid() {
      return child !== undefined && running.has(child) ? child.pid : undefined;
    },
    get running() {
      return child !== undefined && running.has(child);
    },
    stop: () => signalAndWait("SIGTERM"),
    kill: () => signalAndWait("SIGKILL"),
    async restart() {
      if (server.running) throw new Error("nats-server is running: stop() or kill() it first");
      await launch();
    },
    async dispose() {
      await signalAndWait("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

function logSize(path: string): number {
  try {
    return readFileSync(path, "utf8").length;
  } catch {
    return 0;
  }
}
