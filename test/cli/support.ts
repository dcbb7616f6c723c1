/**
 * Test support for the CLI: runs the real `qmpkit` as a subprocess (through tsx, from the
 * sources), with a timeout, and collects its output and exit status.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
export const cliMain = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

export interface CliResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunCliOptions {
  /** Written to stdin, which is then closed. Default: stdin closed at once. */
  readonly input?: string | undefined;
  readonly env?: Record<string, string | undefined> | undefined;
  readonly cwd?: string | undefined;
  /** Kill the process (SIGKILL) after this long and fail. Default 20 000 ms. */
  readonly timeoutMs?: number | undefined;
}

/** Starts `qmpkit ARGS` and returns the child (for tests that interact with it). */
export function spawnCli(args: readonly string[], options: RunCliOptions = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", cliMain, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: undefined, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Runs `qmpkit ARGS` to completion. */
export function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  return collect(child, options);
}

/** Collects a child's output until it exits (killing it after the timeout). */
export function collect(child: ChildProcess, options: RunCliOptions = {}): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (s: string) => {
    stdout += s;
  });
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  else child.stdin?.end();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`qmpkit did not finish in time\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on("exit", (status, signal) => {
      clearTimeout(timer);
      // Let the last output drain.
      setImmediate(() => resolve({ status, signal, stdout, stderr }));
    });
  });
}

/** Resolves once `predicate(text so far)` holds for the child's stdout (or rejects after a timeout). */
export function waitForOutput(
  child: ChildProcess,
  predicate: (stdout: string) => boolean,
  timeoutMs = 15_000,
  stream: "stdout" | "stderr" = "stdout",
): Promise<string> {
  let text = "";
  const source = child[stream]!;
  source.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    const onData = (s: string) => {
      text += s;
      if (predicate(text)) {
        finish();
        resolve(text);
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`timed out waiting for output; got:\n${text}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      source.off("data", onData);
    };
    source.on("data", onData);
  });
}
