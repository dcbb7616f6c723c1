/**
 * The process edges the commands use, passed in so that tests and embedders can run the CLI in
 * process: standard streams, the environment, the working directory, and an abort signal for
 * Ctrl-C (the commands stop cleanly and `main` returns; nothing calls `process.exit`).
 *
 * @module
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** A writable stream as the CLI uses it (a TTY has `isTTY` and `columns`). */
export interface CliOutput {
  write(chunk: string): boolean;
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

/** Standard streams, environment and cancellation for one run of the CLI. */
export interface CliIo {
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean | undefined };
  readonly stdout: CliOutput & NodeJS.WritableStream;
  readonly stderr: CliOutput & NodeJS.WritableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Aborted on SIGINT/SIGTERM when the CLI runs as a process. */
  readonly signal: AbortSignal;
}

/** The streams and environment of this process, with `signal` aborted on SIGINT/SIGTERM. */
export function processIo(): { io: CliIo; dispose(): void } {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (name: NodeJS.Signals) => {
    interrupts++;
    // A second Ctrl-C while a command is winding down ends the process at once.
    if (interrupts > 1) process.exit(130);
    controller.abort(new Error(`interrupted by ${name}`));
  };
  // A reader that goes away (`qmpkit events | head`) ends the command quietly, as for other
  // tools, rather than an unhandled EPIPE.
  const onOutputError = (error: NodeJS.ErrnoException) => {
    if (!controller.signal.aborted)
      controller.abort(new Error(`output closed: ${error.code ?? error.message}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.stdout.on("error", onOutputError);
  process.stderr.on("error", onOutputError);
  return {
    io: {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      cwd: process.cwd(),
      signal: controller.signal,
    },
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      // Left in place: a late write to a closed pipe must still not crash the process.
    },
  };
}

/**
 * Whether to colour output on `stream`: `--color`/`--no-color` win, then `NO_COLOR` (any value,
 * no-color.org) and `FORCE_COLOR`, then whether the stream is a terminal.
 */
export function wantColor(
  stream: CliOutput,
  env: CliIo["env"],
  flag?: boolean | undefined,
): boolean {
  if (flag !== undefined) return flag;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== "0";
  return stream.isTTY === true && env.TERM !== "dumb";
}

/**
 * Whether the module at `moduleUrl` (pass `import.meta.url`) is the program being run, as in
 * `tsx src/cli/main.ts` or `node dist/cli/main.js` (both paths compared with symlinks resolved).
 */
export function isEntryPoint(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

/**
 * Resolves after `ms`, or at once when `signal` aborts; never rejects. For the commands' polling
 * and pacing loops, which look at the signal themselves after each pause.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
