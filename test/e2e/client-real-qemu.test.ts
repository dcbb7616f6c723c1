/**
 * QmpClient against a real QEMU 7.2 (`qemu-system-x86_64 -machine none -S`): the oracle.
 * Greeting, query-status, stop/cont with their events, executeAndWait, system_reset, quit, the
 * run-state tracker following all of it, and reconnection across a QEMU restart on one socket.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { isCommandError, isConnectionClosedError } from "../../src/base/errors.js";
import {
  type ClientNotice,
  type EventStreamNotice,
  QmpClient,
  type QmpEvent,
  type RunStateChange,
} from "../../src/client/index.js";
import { realQemuTest, startQemu } from "../support/real-qemu.js";
import { waitForPath } from "../support/wait-for-path.js";

suite("QmpClient against real QEMU 7.2", () => {
  test(
    "should greet, track the run state through cont/stop/system_reset, and quit",
    realQemuTest(),
    async () => {
      const qemu = await startQemu();
      let client: QmpClient | undefined;
      try {
        client = await QmpClient.connect(`unix:${qemu.socketPath}`, { timeoutMs: 10_000 });
        const { qemu: version } = client.greeting.version;
        assert.equal(version.major, 7);
        assert.equal(version.minor, 2);
        assert.equal(typeof client.greeting.version.package, "string");
        assert.deepEqual(client.greeting.capabilities, ["oob"]);
        assert.equal(client.runState, "prelaunch");

        const status = await client.execute("query-status");
        assert.deepEqual(status, { status: "prelaunch", singlestep: false, running: false });

        const changes: RunStateChange[] = [];
        client.onRunStateChange((c) => changes.push(c));
        const stream = client.events({ names: ["STOP", "RESUME", "RESET", "SHUTDOWN"] });

        await client.execute("cont");
        assert.equal(client.runState, "running", "RESUME arrives before cont's return (§1.9)");

        const stopped = await client.executeAndWait("stop", undefined, {
          event: "STOP",
          timeoutMs: 5_000,
        });
        assert.deepEqual(stopped.result, {});
        assert.equal(stopped.event.event, "STOP");
        assert.equal(client.runState, "paused");

        const reset = await client.executeAndWait("system_reset", undefined, {
          event: "RESET",
          timeoutMs: 5_000,
        });
        assert.deepEqual(reset.event.data, { guest: false, reason: "host-qmp-system-reset" });
        assert.equal(client.runState, "prelaunch", "system_reset from paused → prelaunch (§5)");
        // The tracker confirms with query-status; the state stays the same.
        assert.equal(await client.refreshRunState(), "prelaunch");

        await assert.rejects(client.execute("no-such-command"), (e) => {
          assert.ok(isCommandError(e));
          assert.equal(e.errorClass, "CommandNotFound");
          assert.equal(e.desc, "The command no-such-command has not been found");
          return true;
        });

        const quit = await client.executeAndWait("quit", undefined, {
          event: "SHUTDOWN",
          timeoutMs: 5_000,
        });
        assert.deepEqual(quit.event.data, { guest: false, reason: "host-qmp-quit" });
        const reason = await client.closed;
        assert.ok(isConnectionClosedError(reason), `closed with ${reason}`);
        assert.equal(client.state, "closed");
        assert.equal(await qemu.exited, 0);

        const seen: string[] = [];
        for await (const e of stream) seen.push(e.event);
        assert.deepEqual(seen, ["RESUME", "STOP", "RESET", "SHUTDOWN"]);
        assert.deepEqual(
          changes.map((c) => `${c.from}->${c.to}`),
          ["prelaunch->running", "running->paused", "paused->prelaunch"],
        );
      } finally {
        await client?.close();
        await qemu.stop();
      }
    },
  );

  test("should negotiate oob with real QEMU and send exec-oob", realQemuTest(), async () => {
    const qemu = await startQemu();
    let client: QmpClient | undefined;
    try {
      client = await QmpClient.connect(`unix:${qemu.socketPath}`, { oob: true, timeoutMs: 10_000 });
      assert.deepEqual(client.capabilities, ["oob"]);
      // §1.7: migrate-pause allows OOB and answers at once, outside postcopy with this error.
      await assert.rejects(client.execute("migrate-pause", undefined, { oob: true }), (e) => {
        assert.ok(isCommandError(e));
        assert.equal(
          e.desc,
          "migrate-pause is currently only supported during postcopy-active state",
        );
        return true;
      });
      await assert.rejects(client.execute("query-status", undefined, { oob: true }), (e) => {
        assert.ok(isCommandError(e));
        assert.equal(e.desc, "The command query-status does not support OOB");
        return true;
      });
      // In-band commands work as before.
      assert.equal((await client.execute("query-status")).status, "prelaunch");
    } finally {
      await client?.close();
      await qemu.stop();
    }
  });

  test(
    "should reconnect across a QEMU restart on the same socket path",
    realQemuTest(),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-reconnect-"));
      const shared = join(dir, "vm.qmp");
      const monitor = ["-qmp", `unix:${shared},server=on,wait=off`];
      let first = await startQemu({ args: monitor });
      // startQemu waits for its own monitor's socket; a second `-qmp` socket may come a moment later.
      await waitForPath(shared);
      let second: Awaited<ReturnType<typeof startQemu>> | undefined;
      let client: QmpClient | undefined;
      try {
        const notices: ClientNotice[] = [];
        client = await QmpClient.connect(`unix:${shared}`, {
          reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
          onNotice: (n) => notices.push(n),
        });
        const stream = client.events({ notices: true });
        await client.execute("cont");
        assert.equal(client.runState, "running");

        await first.stop(); // SIGKILL: no SHUTDOWN, the socket just goes away
        const dropped = Date.now();
        while (client.state === "connected" && Date.now() - dropped < 5_000) {
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.equal(client.state, "reconnecting");
        await assert.rejects(client.execute("query-status"), isConnectionClosedError);

        second = await startQemu({ args: monitor });
        const items: Array<QmpEvent | EventStreamNotice> = [];
        for await (const item of stream) {
          items.push(item);
          if ("notice" in item && item.notice === "gap") break;
        }
        assert.equal((items[0] as QmpEvent).event, "RESUME");
        const gap = items.at(-1) as EventStreamNotice;
        assert.equal(gap.notice, "gap");
        assert.equal(client.state, "connected");
        // The new QEMU started with -S: the tracker asked again.
        assert.equal(await client.waitForRunState("prelaunch", { timeoutMs: 5_000 }), "prelaunch");
        assert.deepEqual(await client.execute("query-status"), {
          status: "prelaunch",
          singlestep: false,
          running: false,
        });
        assert.ok(notices.some((n) => n.kind === "disconnected"));
        assert.ok(notices.some((n) => n.kind === "reconnected"));
      } finally {
        await client?.close();
        await first.stop();
        await second?.stop();
        rmSync(dir, { recursive: true, force: true });
      }
      first = undefined as never;
    },
  );
});
