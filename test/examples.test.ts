/** The README's examples run as they stand, through the package's own exports. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { suite, test } from "node:test";
import { QEMU_10, realQemuTest, startQemu } from "./support/real-qemu.js";

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

  test(
    "should run examples/typed-release.ts, a client typed for QEMU 10.0, against QEMU 10.0.2",
    realQemuTest(QEMU_10),
    async () => {
      // Its @ts-expect-error lines are checked by `npm run typecheck` (examples/ is included):
      // a misspelt command or event, or a wrong argument type, that compiled would fail it.
      const qemu = await startQemu({ qemu: QEMU_10 });
      try {
        const { stdout } = await run(
          process.execPath,
          ["--conditions=source", "--import", "tsx", "examples/typed-release.ts", qemu.socketPath],
          { cwd: root, timeout: 60_000 },
        );
        assert.equal(stdout, "block devices: 0; machine: none-machine\nscratch node removed\n");
      } finally {
        await qemu.stop();
      }
    },
  );
});
