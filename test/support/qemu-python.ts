/**
 * Test support: QEMU's own Python QMP library (`python/qemu/qmp` in QEMU's source tree), run
 * with Debian's `/usr/bin/python3`. The tree is `QMPKIT_QEMU_PYTHON_SRC`, else the first tree of
 * `QMPKIT_QEMU_SRC` (the schema tests' list of trees) that has the library, else
 * `/opt/qemu-src/qemu-7.2+dfsg`, where CI fetches it (`.ci/fetch-qemu-src`, `apt-get source`). In
 * CI (`CI` set) a missing tree is a failure; on a developer machine the tests skip loudly, as
 * `real-qemu.ts` does for a missing QEMU.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export const PYTHON = "/usr/bin/python3";

/** The QEMU source tree holding `python/qemu/qmp`. */
export const qemuSourceTree =
  process.env.QMPKIT_QEMU_PYTHON_SRC ||
  (process.env.QMPKIT_QEMU_SRC ?? "")
    .split(":")
    .find((tree) => tree !== "" && existsSync(join(tree, "python/qemu/qmp/__init__.py"))) ||
  "/opt/qemu-src/qemu-7.2+dfsg";

/** Whether QEMU's Python library and python3 are there. */
export function qemuPythonAvailable(): boolean {
  return existsSync(PYTHON) && existsSync(join(qemuSourceTree, "python/qemu/qmp/__init__.py"));
}

/** `{ skip }` without the library on a developer machine; in CI the test runs and fails. */
export function qemuPythonTest(): { skip?: string } {
  if (qemuPythonAvailable() || process.env.CI) return {};
  const why = `QEMU's Python QMP library not found at ${qemuSourceTree}/python/qemu/qmp: qemu.qmp tests SKIPPED (bash .ci/fetch-qemu-src, or set QMPKIT_QEMU_PYTHON_SRC)`;
  process.stderr.write(`\n*** ${why} ***\n\n`);
  return { skip: why };
}

/** Runs a Python script with `qemu.qmp` importable; resolves with its stdout (rejects on failure). */
export function runQemuPython(
  script: string,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["-c", script, ...args], {
      env: { ...process.env, PYTHONPATH: join(qemuSourceTree, "python") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      stderr += s;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`python3 exited with ${code ?? signal}:\n${stderr}`));
    });
  });
}
