/**
 * QmpClient against QmpServer over real unix sockets: the two halves of qmpkit talking to each
 * other as a program would use them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { isCommandError, isConnectionClosedError, isTimeoutError } from "../../src/base/errors.js";
import {
  type ClientNotice,
  type EventStreamNotice,
  QmpClient,
  type QmpEvent,
} from "../../src/client/index.js";
import type { RunState } from "../../src/generated/index.js";
import { QmpReplyError, QmpServer } from "../../src/server/index.js";

/** A QmpServer playing a tiny VM (run state + a few commands) on a fresh unix socket. */
async function startServer(options: ConstructorParameters<typeof QmpServer>[0] = {}) {
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-e2e-"));
  const target = `unix:${join(dir, "qmp.sock")}`;
  const server = new QmpServer(options);
  let status: RunState = "prelaunch";
  server.command("query-status", () => ({
    status,
    singlestep: false,
    running: status === "running",
  }));
  server.command("cont", () => {
    if (status !== "running") {
      status = "running";
      server.emit("RESUME"); // emitted by the handler: before the reply (§1.9)
    }
  });
  server.command("stop", () => {
    if (status === "running") {
      status = "paused";
      server.emit("STOP");
    }
  });
  server.command("system_reset", (_args, ctx) => {
    // The pre-9.0 order: the main loop emits RESET after the reply went out (§1.9).
    ctx.afterReply(() => {
      server.emit("RESET", { guest: false, reason: "host-qmp-system-reset" });
      if (status !== "running") status = "prelaunch";
    });
  });
  server.command("device_del", (args) => {
    const id = (args as { id?: unknown }).id;
    if (id !== "nic0")
      throw new QmpReplyError("DeviceNotFound", `Device '${String(id)}' not found`);
    setTimeout(
      () => server.emit("DEVICE_DELETED", { device: "nic0", path: "/machine/peripheral/nic0" }),
      5,
    );
  });
  server.command("echo", (args) => args);
  server.command("yank", () => ({}), { allowOob: true });
  let listener = await server.listen(target);
  return {
    server,
    target,
    async relisten() {
      listener = await server.listen(target);
    },
    async stop() {
      await server.close();
      await listener.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

suite("QmpClient ↔ QmpServer over a unix socket", () => {
  test("should connect, negotiate and follow the run state", async () => {
    const vm = await startServer();
    const client = await QmpClient.connect(vm.target, { timeoutMs: 5_000 });
    try {
      assert.deepEqual(client.greeting.version.qemu, { major: 7, minor: 2, micro: 22 });
      assert.deepEqual(client.greeting.capabilities, ["oob"]);
      assert.equal(client.runState, "prelaunch");
      const { event } = await client.executeAndWait("cont", undefined, {
        event: "RESUME",
        timeoutMs: 2_000,
      });
      assert.equal(event.event, "RESUME");
      assert.equal(client.runState, "running");
      await client.executeAndWait("stop", undefined, { event: "STOP", timeoutMs: 2_000 });
      assert.equal(client.runState, "paused");
      // Reply before event (pre-9.0 order).
      const reset = await client.executeAndWait("system_reset", undefined, {
        event: "RESET",
        timeoutMs: 2_000,
      });
      assert.deepEqual(reset.event.data, { guest: false, reason: "host-qmp-system-reset" });
      assert.equal(client.runState, "prelaunch");
    } finally {
      await client.close();
      await vm.stop();
    }
  });

  test("should bound connect with timeoutMs, the first query-status included", async () => {
    // A peer that greets and negotiates but never answers query-status.
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-e2e-"));
    const target = `unix:${join(dir, "qmp.sock")}`;
    const server = new QmpServer();
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    server.command("query-status", async () => {
      await stuck;
      return { status: "running" as const, singlestep: false, running: true };
    });
    const listener = await server.listen(target);
    let bound: ReturnType<typeof setTimeout> | undefined;
    try {
      const outcome = await Promise.race([
        QmpClient.connect(target, { timeoutMs: 1_000 }).then(
          async (client) => {
            await client.close();
            return "connected";
          },
          (error: unknown) => error,
        ),
        // Liveness, not timing: a 1 s budget has long run out by then, however busy the machine.
        new Promise((resolve) => {
          bound = setTimeout(() => resolve("still connecting after 8 s"), 8_000);
        }),
      ]);
      assert.ok(isTimeoutError(outcome), `connect settled with ${String(outcome)}`);
      assert.equal(outcome.operation, "query-status");
      assert.equal(outcome.sent, true);
      assert.match(outcome.message, /query-status/);
    } finally {
      clearTimeout(bound);
      release();
      await server.close();
      await listener.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should connect over tcp:HOST:PORT too", async () => {
    const server = new QmpServer();
    server.command("query-status", () => ({
      status: "running" as const,
      singlestep: false,
      running: true,
    }));
    const listener = await server.listen("tcp:127.0.0.1:0");
    try {
      assert.match(listener.address, /^tcp:127\.0\.0\.1:\d+$/);
      const client = await QmpClient.connect(listener.address, { timeoutMs: 5_000 });
      assert.equal(client.runState, "running");
      await client.close();
    } finally {
      await server.close();
      await listener.close();
    }
  });

  test("should keep many commands in flight and match every reply", async () => {
    const vm = await startServer();
    const client = await QmpClient.connect(vm.target, { trackRunState: false });
    try {
      const calls = Array.from({ length: 200 }, (_, i) =>
        client.execute("echo", { i, s: `é${i}\u2028` }),
      );
      const results = await Promise.all(calls);
      for (const [i, r] of results.entries()) assert.deepEqual(r, { i, s: `é${i}\u2028` });
    } finally {
      await client.close();
      await vm.stop();
    }
  });

  test("should surface QMP errors as CommandError with the server's class and desc", async () => {
    const vm = await startServer();
    const client = await QmpClient.connect(vm.target, { trackRunState: false });
    try {
      await assert.rejects(client.execute("device_del", { id: "sda" }), (e) => {
        assert.ok(isCommandError(e));
        assert.equal(e.errorClass, "DeviceNotFound");
        assert.equal(e.desc, "Device 'sda' not found");
        return true;
      });
      await assert.rejects(client.execute("nope"), (e) => {
        assert.ok(isCommandError(e));
        assert.equal(e.errorClass, "CommandNotFound");
        assert.equal(e.desc, "The command nope has not been found");
        return true;
      });
      const { event } = await client.executeAndWait(
        "device_del",
        { id: "nic0" },
        { event: "DEVICE_DELETED", where: { device: "nic0" }, timeoutMs: 2_000 },
      );
      assert.equal((event.data as { path: string }).path, "/machine/peripheral/nic0");
    } finally {
      await client.close();
      await vm.stop();
    }
  });

  test("should negotiate oob and run an allow-oob command with exec-oob", async () => {
    const vm = await startServer();
    const client = await QmpClient.connect(vm.target, { oob: true, trackRunState: false });
    try {
      assert.deepEqual(client.capabilities, ["oob"]);
      assert.deepEqual(await client.execute("yank", { instances: [] }, { oob: true }), {});
      await assert.rejects(client.execute("echo", {}, { oob: true }), (e) => {
        assert.ok(isCommandError(e));
        assert.equal(e.desc, "The command echo does not support OOB");
        return true;
      });
    } finally {
      await client.close();
      await vm.stop();
    }
  });

  test("should wait for its greeting while another client holds a one-client server", async () => {
    const vm = await startServer();
    const first = await QmpClient.connect(vm.target, { trackRunState: false });
    try {
      await assert.rejects(
        QmpClient.connect(vm.target, { handshakeTimeoutMs: 100 }),
        (e) => isTimeoutError(e) && e.operation === "greeting",
      );
      const second = QmpClient.connect(vm.target, { trackRunState: false });
      await first.close();
      const client = await second;
      assert.equal(client.state, "connected");
      await client.close();
    } finally {
      await first.close();
      await vm.stop();
    }
  });

  test("should deliver broadcast events to streams and callbacks", async () => {
    const vm = await startServer({ maxClients: Number.POSITIVE_INFINITY });
    const a = await QmpClient.connect(vm.target, { trackRunState: false });
    const b = await QmpClient.connect(vm.target, { trackRunState: false });
    try {
      const stream = a.events({ names: ["POWERDOWN"] });
      const onB: QmpEvent[] = [];
      b.on("POWERDOWN", (e) => onB.push(e));
      vm.server.emit("POWERDOWN");
      const first = await stream.next();
      assert.equal(first.value?.event, "POWERDOWN");
      await b.execute("echo", {}); // the event was written before this reply
      assert.equal(onB.length, 1);
      assert.deepEqual(onB[0]?.timestamp, first.value?.timestamp, "same timestamp to every client");
    } finally {
      await a.close();
      await b.close();
      await vm.stop();
    }
  });

  test("should reconnect when the server comes back on the same path, with a gap notice", async () => {
    const vm = await startServer();
    const notices: ClientNotice[] = [];
    const client = await QmpClient.connect(vm.target, {
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
      onNotice: (n) => notices.push(n),
    });
    try {
      const stream = client.events({ notices: true });
      await client.execute("cont");
      const pending = client.execute("echo", { slow: true });
      await vm.server.close(); // every client is dropped; the listener is gone
      await assert.rejects(pending, isConnectionClosedError);
      // The same server object cannot listen again once closed: a new one takes the path.
      const again = new QmpServer();
      again.command("query-status", () => ({
        status: "paused" as const,
        singlestep: false,
        running: false,
      }));
      const listener = await again.listen(vm.target);
      try {
        const items: Array<QmpEvent | EventStreamNotice> = [];
        for await (const item of stream) {
          items.push(item);
          if ("notice" in item) break;
        }
        assert.deepEqual(
          items.map((i) => ("notice" in i ? i.notice : i.event)),
          ["RESUME", "gap"],
        );
        assert.equal(await client.waitForRunState("paused", { timeoutMs: 2_000 }), "paused");
        assert.deepEqual(
          notices.map((n) => n.kind).filter((k) => k !== "reconnect-failed"),
          ["disconnected", "reconnected"],
        );
      } finally {
        await client.close();
        await again.close();
        await listener.close();
      }
    } finally {
      await client.close();
      await vm.stop();
    }
  });
});
