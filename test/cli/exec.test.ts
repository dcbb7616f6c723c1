/**
 * `qmpkit exec` through the real CLI, against real QEMU and the simulator: results on stdout,
 * schema-typed key=value, --json, and QMP errors on stderr with exit status 1.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { SimulatedMachine } from "../../src/sim/index.js";
import { realQemuTest, startQemu } from "../support/real-qemu.js";
import { runCli } from "./support.js";

suite("exec against real QEMU", () => {
  test(
    "should print results, type key=value by the schema and report QMP errors",
    realQemuTest(),
    async () => {
      const qemu = await startQemu();
      try {
        const status = await runCli(["exec", qemu.socketPath, "query-status"]);
        assert.equal(status.status, 0, status.stderr);
        assert.equal(status.stdout, '{"status":"prelaunch","singlestep":false,"running":false}\n');
        assert.equal(status.stderr, "");

        // Enum values stay strings.
        const set = await runCli([
          "exec",
          `unix:${qemu.socketPath}`,
          "set-action",
          "panic=none",
          "reboot=shutdown",
        ]);
        assert.equal(set.status, 0, set.stderr);
        assert.equal(set.stdout, "{}\n");

        // A value with spaces, quoted by the shell, stays one string argument.
        const hmp = await runCli([
          "exec",
          qemu.socketPath,
          "human-monitor-command",
          "command-line=info status",
        ]);
        assert.equal(hmp.status, 0, hmp.stderr);
        assert.equal(hmp.stdout, '"VM status: paused (prelaunch)\\r\\n"\n');

        const json = await runCli([
          "exec",
          qemu.socketPath,
          "qom-get",
          "--json",
          '{"path": "/machine", "property": "type"}',
          "--pretty",
        ]);
        assert.equal(json.status, 0, json.stderr);
        assert.equal(json.stdout, '"none-machine"\n');

        const error = await runCli(["exec", qemu.socketPath, "set-action", "panic=bogus"]);
        assert.equal(error.status, 1);
        assert.equal(error.stdout, "");
        assert.equal(
          error.stderr,
          "qmpkit: set-action: GenericError: Parameter 'panic' does not accept value 'bogus'\n",
        );

        const typed = await runCli([
          "exec",
          qemu.socketPath,
          "qom-get",
          "path=/machine",
          "property=nosuch",
        ]);
        assert.equal(typed.status, 1);
        assert.match(
          typed.stderr,
          /^qmpkit: qom-get: GenericError: Property '.*nosuch' not found\n$/,
        );

        const mistyped = await runCli(["exec", qemu.socketPath, "balloon", "value=lots"]);
        assert.equal(mistyped.status, 2);
        assert.equal(
          mistyped.stderr,
          "qmpkit: invalid argument 'value=lots': 'value' expects an integer\n",
        );
      } finally {
        await qemu.stop();
      }
    },
  );
});

suite("exec against the simulator", () => {
  test("should drive the simulator and pretty-print on request", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-exec-"));
    const vm = new SimulatedMachine({ name: "web1" });
    try {
      const path = join(dir, "vm.qmp");
      await vm.listen(`unix:${path}`);
      const name = await runCli(["exec", path, "query-name", "--pretty"]);
      assert.equal(name.stdout, '{\n  "name": "web1"\n}\n');
      const panic = await runCli(["exec", path, "x-sim-guest", "action=panic"]);
      assert.equal(panic.status, 0, panic.stderr);
      assert.equal(vm.state, "shutdown");
      assert.equal(await vm.exited, 0);
    } finally {
      await vm.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
