/** The README's examples run as they stand, through the package's own exports. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { suite, test } from "node:test";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));

suite("examples", () => {
  test("should run examples/quickstart.ts against a simulated QEMU", async () => {
    const { stdout } = await run(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "examples/quickstart.ts"],
      { cwd: root, timeout: 60_000 },
    );
    assert.equal(
      stdout,
      [
        "connected to QEMU 7.2.22",
        "status: prelaunch, running: false",
        "stop caused STOP",
        "run state: guest-panicked",
        "events seen: RESUME, STOP, RESUME, GUEST_PANICKED, STOP",
        "",
      ].join("\n"),
    );
  });

  test("should run examples/server.ts, a QmpServer of one's own", async () => {
    const { stdout } = await run(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "examples/server.ts"],
      { cwd: root, timeout: 60_000 },
    );
    assert.equal(
      stdout,
      [
        "{ status: 'running', singlestep: false, running: true }",
        "cont failed: GenericError: already running",
        "query-status failed: GenericError: Parameter 'verbose' is unexpected",
        "",
      ].join("\n"),
    );
  });
});
