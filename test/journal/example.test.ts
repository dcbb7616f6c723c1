/** examples/journal.ts (the README's journal example) runs as it stands, through the package's exports. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { suite, test } from "node:test";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));

suite("journal example", () => {
  test("should record a client into a journal and read back its events and timeline", async () => {
    const { stdout } = await run(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "examples/journal.ts"],
      { cwd: root, timeout: 60_000 },
    );
    assert.equal(
      stdout,
      [
        "event RESUME",
        "event STOP",
        "vm1: prelaunch (connected)",
        "vm1: running (RESUME)",
        "vm1: paused (STOP)",
        "",
      ].join("\n"),
    );
  });
});
