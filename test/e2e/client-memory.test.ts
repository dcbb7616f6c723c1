/**
 * QmpClient against a scripted fake peer over the wire layer's in-memory pair: every byte of the
 * conversation is stated by the test, so routing, errors, events, the run-state tracker and
 * reconnection are checked exactly.
 */
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import { suite, test } from "node:test";
import {
  isCommandError,
  isConnectError,
  isConnectionClosedError,
  isProtocolError,
  isStateError,
  isTimeoutError,
  isValidationError,
  ValidationError,
} from "../../src/base/errors.js";
import type { Validator } from "../../src/schema/validator.js";
import type { ClientNotice, EventStreamNotice, QmpEvent } from "../../src/client/index.js";
import { QmpClient } from "../../src/client/index.js";
import { createMemoryPair } from "../../src/wire/index.js";
import { FakePeer, GREETING_7_2 } from "./support/fake-peer.js";

/** A connected client and its peer; the client's notices are collected. */
async function pair(
  options: Parameters<typeof QmpClient.connect>[1] = {},
  handshake: Parameters<FakePeer["handshake"]>[0] = {},
) {
  const [near, far] = createMemoryPair();
  const peer = new FakePeer(far);
  const notices: ClientNotice[] = [];
  const connecting = QmpClient.connect(near, { onNotice: (n) => notices.push(n), ...options });
  await peer.handshake(
    options.trackRunState === false ? { status: false, ...handshake } : handshake,
  );
  const client = await connecting;
  return { client, peer, notices };
}

const tick = () => new Promise((r) => setImmediate(r));

/** Checks an executeAndWait failure cut off by the connection: it names command and event. */
function assertWaitClosed(e: unknown, details: { sent: boolean; answered: boolean }, why: RegExp) {
  assert.ok(isConnectionClosedError(e));
  assert.equal(e.command, "system_powerdown");
  assert.equal(e.sent, details.sent);
  assert.match(e.message, /system_powerdown then wait for SHUTDOWN failed/);
  assert.match(e.message, why);
  assert.deepEqual((e as { details?: unknown }).details, {
    command: "system_powerdown",
    event: "SHUTDOWN",
    ...details,
  });
  return true;
}

suite("QmpClient.connect()", () => {
  test("should read the typed greeting, negotiate, and read the run state", async () => {
    const { client, peer } = await pair();
    try {
      assert.deepEqual(client.greeting.version.qemu, { major: 7, minor: 2, micro: 22 });
      assert.equal(client.greeting.version.package, "Debian 1:7.2+dfsg-7+deb12u18+b3");
      assert.deepEqual(client.greeting.capabilities, ["oob"]);
      assert.deepEqual(client.capabilities, []);
      assert.equal(client.state, "connected");
      assert.equal(client.runState, "prelaunch");
      assert.deepEqual(peer.received[0], { execute: "qmp_capabilities", id: "__qmpkit#1" });
      assert.deepEqual(peer.received[1], { execute: "query-status", id: "__qmpkit#2" });
    } finally {
      await client.close();
    }
  });

  test("should skip query-status with trackRunState false", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      assert.equal(client.runState, undefined);
      assert.equal(peer.received.length, 1);
      assert.throws(() => client.onRunStateChange(() => {}), isStateError);
    } finally {
      await client.close();
    }
  });

  test("should negotiate oob on request and send exec-oob per call", async () => {
    const [near, far] = createMemoryPair();
    const peer = new FakePeer(far);
    const connecting = QmpClient.connect(near, { oob: true, trackRunState: false });
    peer.send(GREETING_7_2);
    const caps = await peer.next();
    assert.deepEqual(caps, {
      execute: "qmp_capabilities",
      arguments: { enable: ["oob"] },
      id: "__qmpkit#1",
    });
    peer.reply(caps);
    const client = await connecting;
    try {
      assert.deepEqual(client.capabilities, ["oob"]);
      const result = client.execute("migrate-pause", undefined, { oob: true });
      const request = await peer.next();
      assert.deepEqual(request, { "exec-oob": "migrate-pause", id: "__qmpkit#2" });
      peer.fail(
        request,
        "GenericError",
        "migrate-pause is currently only supported during postcopy-active state",
      );
      await assert.rejects(result, isCommandError);
    } finally {
      await client.close();
    }
  });

  test("should fail clearly when oob is requested but not offered", async () => {
    const [near, far] = createMemoryPair();
    const peer = new FakePeer(far);
    const connecting = QmpClient.connect(near, { oob: true });
    peer.send({ QMP: { ...GREETING_7_2.QMP, capabilities: [] } });
    await assert.rejects(connecting, (e) => {
      assert.ok(isConnectError(e));
      assert.match(e.message, /oob was requested but the peer offers \[\]/);
      return true;
    });
    assert.ok(await peer.hungUp());
  });

  test("should refuse exec-oob when oob was not negotiated", async () => {
    const { client } = await pair();
    try {
      await assert.rejects(client.execute("yank", { instances: [] }, { oob: true }), (e) => {
        assert.ok(isStateError(e));
        assert.match(e.message, /oob capability was not negotiated/);
        return true;
      });
    } finally {
      await client.close();
    }
  });

  test("should time out waiting for the greeting", async () => {
    const [near] = createMemoryPair();
    await assert.rejects(QmpClient.connect(near, { handshakeTimeoutMs: 30 }), (e) => {
      assert.ok(isTimeoutError(e));
      assert.equal(e.operation, "greeting");
      assert.equal(e.sent, false);
      return true;
    });
  });

  test("should fail with ConnectError when the peer closes during the greeting", async () => {
    const [near, far] = createMemoryPair();
    const connecting = QmpClient.connect(near);
    far.write('{"QMP": {"version": ');
    far.end();
    await assert.rejects(connecting, (e) => {
      assert.ok(isConnectError(e));
      assert.match(e.message, /closed the connection during the greeting/);
      return true;
    });
  });

  test("should fail with ConnectError (cause ProtocolError) on a greeting that is not QMP", async () => {
    const [near, far] = createMemoryPair();
    const connecting = QmpClient.connect(near);
    far.write('{"hello": "world"}\r\n');
    await assert.rejects(connecting, (e) => {
      assert.ok(isConnectError(e));
      assert.ok(isProtocolError(e.cause));
      assert.match(e.message, /invalid QMP greeting: member 'QMP' is missing/);
      return true;
    });
  });

  test("should reject with the signal's reason, untouched, when connect is aborted", async () => {
    const [near] = createMemoryPair();
    const controller = new AbortController();
    const reason = new Error("user gave up");
    const connecting = QmpClient.connect(near, { signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(connecting, (e) => e === reason);
  });

  test("should let the signal abort connect while the first query-status is out", async () => {
    const [near, far] = createMemoryPair();
    const peer = new FakePeer(far);
    const controller = new AbortController();
    const connecting = QmpClient.connect(near, { signal: controller.signal });
    peer.send(GREETING_7_2);
    peer.reply(await peer.next());
    assert.equal((await peer.next()).execute, "query-status");
    const reason = new Error("took too long for me");
    controller.abort(reason);
    await assert.rejects(connecting, (e) => e === reason);
    assert.ok(await peer.hungUp(), "the half-made client hung up");
  });

  test("should fail with ConnectError when qmp_capabilities is refused", async () => {
    const [near, far] = createMemoryPair();
    const peer = new FakePeer(far);
    const connecting = QmpClient.connect(near);
    peer.send(GREETING_7_2);
    peer.fail(await peer.next(), "GenericError", "Capability oob not available");
    await assert.rejects(connecting, (e) => {
      assert.ok(isConnectError(e));
      assert.ok(isCommandError(e.cause));
      assert.match(e.message, /qmp_capabilities was refused: GenericError: Capability oob/);
      return true;
    });
  });
});

suite("QmpClient.execute()", () => {
  test("should match replies to commands by id, in any order", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const a = client.execute("query-name");
      const b = client.execute("query-version");
      const c = client.execute("human-monitor-command", { "command-line": "info status" });
      const [ra, rb, rc] = [await peer.next(), await peer.next(), await peer.next()];
      assert.deepEqual(rc, {
        execute: "human-monitor-command",
        arguments: { "command-line": "info status" },
        id: "__qmpkit#4",
      });
      peer.reply(rc, "VM status: paused (prelaunch)\r\n");
      peer.reply(ra, {});
      peer.reply(rb, GREETING_7_2.QMP.version);
      assert.deepEqual(await a, {});
      assert.deepEqual(await b, GREETING_7_2.QMP.version);
      assert.equal(await c, "VM status: paused (prelaunch)\r\n");
    } finally {
      await client.close();
    }
  });

  test("should reject with a CommandError carrying class, desc, command and id", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const call = client.execute("device_del", { id: "nope" });
      const request = await peer.next();
      peer.fail(request, "DeviceNotFound", "Device 'nope' not found");
      await assert.rejects(call, (e) => {
        assert.ok(isCommandError(e));
        assert.equal(e.errorClass, "DeviceNotFound");
        assert.equal(e.desc, "Device 'nope' not found");
        assert.equal(e.command, "device_del");
        assert.equal(e.id, "__qmpkit#2");
        assert.equal(e.message, "device_del failed: DeviceNotFound: Device 'nope' not found");
        return true;
      });
    } finally {
      await client.close();
    }
  });

  test("should match a reply to its command only by the exact id it was sent with", async () => {
    const { client, peer, notices } = await pair({ trackRunState: false });
    try {
      const call = client.execute("query-name");
      const request = await peer.next();
      assert.equal(request.id, "__qmpkit#2");
      // Look-alikes of the pending id (same number, other spelling) answer nothing.
      const lookalikes = ["__qmpkit#02", "__qmpkit#2.0", "__qmpkit#+2", "__qmpkit#", "__qmpkit#2 "];
      for (const id of lookalikes) peer.send({ return: { name: "wrong" }, id });
      peer.send({ return: { name: "right" }, id: "__qmpkit#2" });
      assert.deepEqual(await call, { name: "right" });
      assert.deepEqual(
        notices.map((n) => (n.kind === "unknown-reply" ? n.id : n.kind)),
        lookalikes,
      );
    } finally {
      await client.close();
    }
  });

  test("should drop and report a reply with an id that is not ours", async () => {
    const { client, peer, notices } = await pair({ trackRunState: false });
    try {
      peer.send({ return: {}, id: "someone-else" });
      const call = client.execute("query-name");
      peer.reply(await peer.next());
      await call;
      assert.deepEqual(notices, [
        { kind: "unknown-reply", id: "someone-else", message: { return: {}, id: "someone-else" } },
      ]);
    } finally {
      await client.close();
    }
  });

  test("should time out with sent: true and report the late reply", async () => {
    const { client, peer, notices } = await pair({ trackRunState: false });
    try {
      const call = client.execute("query-name", undefined, { timeoutMs: 20 });
      const request = await peer.next();
      await assert.rejects(call, (e) => {
        assert.ok(isTimeoutError(e));
        assert.equal(e.sent, true);
        assert.equal(e.operation, "query-name");
        assert.equal(e.timeoutMs, 20);
        return true;
      });
      peer.reply(request);
      const next = client.execute("query-name");
      peer.reply(await peer.next());
      await next;
      assert.deepEqual(notices, [{ kind: "late-reply", id: "__qmpkit#2", command: "query-name" }]);
    } finally {
      await client.close();
    }
  });

  test("should use commandTimeoutMs as the default timeout", async () => {
    const { client, peer } = await pair({ trackRunState: false, commandTimeoutMs: 15 });
    try {
      const call = client.execute("query-name");
      await peer.next();
      await assert.rejects(call, isTimeoutError);
    } finally {
      await client.close();
    }
  });

  test("should reject with the signal's reason and send nothing when already aborted", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const reason = new Error("cancelled");
      await assert.rejects(
        client.execute("query-name", undefined, { signal: AbortSignal.abort(reason) }),
        (e) => e === reason,
      );
      const controller = new AbortController();
      const call = client.execute("query-name", undefined, { signal: controller.signal });
      await peer.next();
      controller.abort(reason);
      await assert.rejects(call, (e) => e === reason);
      assert.equal(peer.received.length, 2, "only the aborted-after-send command went out");
    } finally {
      await client.close();
    }
  });

  test("should treat an error reply without id as a peer parse error and end the connection", async () => {
    const { client, peer, notices } = await pair({ trackRunState: false });
    const call = client.execute("query-name");
    await peer.next();
    peer.send({ error: { class: "GenericError", desc: "JSON parse error, expecting value" } });
    await assert.rejects(call, (e) => {
      assert.ok(isConnectionClosedError(e));
      assert.equal(e.sent, true);
      assert.ok(isProtocolError(e.cause));
      return true;
    });
    const reason = await client.closed;
    assert.ok(isProtocolError(reason));
    assert.match(
      reason.message,
      /could not read a message the client sent: GenericError: JSON parse error/,
    );
    assert.equal(notices[0]?.kind, "protocol-error");
    assert.equal(client.state, "closed");
  });

  test("should reject every pending command at once when the peer goes away", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    const calls = [
      client.execute("query-name"),
      client.execute("query-uuid"),
      client.execute("stop"),
    ];
    await peer.next();
    await peer.next();
    await peer.next();
    peer.destroy();
    const results = await Promise.allSettled(calls);
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, "rejected");
      const e = (r as PromiseRejectedResult).reason;
      assert.ok(isConnectionClosedError(e), `call ${i}`);
      assert.equal(e.sent, true);
    }
    assert.equal((results[2] as PromiseRejectedResult).reason.command, "stop");
    assert.ok(isConnectionClosedError(await client.closed));
    await assert.rejects(client.execute("query-name"), (e) => {
      assert.ok(isConnectionClosedError(e));
      assert.equal(e.sent, false);
      return true;
    });
  });

  test("should report a message that is not JSON and live on", async () => {
    const { client, peer, notices } = await pair({ trackRunState: false });
    try {
      peer.write(
        '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X", "data": {"v": inf}}\r\n',
      );
      const call = client.execute("query-name");
      peer.reply(await peer.next(), { name: "vm" });
      assert.deepEqual(await call, { name: "vm" });
      assert.equal(notices.length, 1);
      assert.equal(notices[0]?.kind, "protocol-error");
    } finally {
      await client.close();
    }
  });

  test("should fail a command whose reply could not be decoded once a later reply arrives", async () => {
    const { client, peer, notices } = await pair({ trackRunState: false });
    try {
      const first = client.execute("query-balloon");
      const second = client.execute("query-name");
      const [r1, r2] = [await peer.next(), await peer.next()];
      // QEMU prints a non-finite double as inf (§1.1): not JSON, and no way to read the id.
      peer.write(`{"return": {"actual": inf}, "id": ${JSON.stringify(r1.id)}}\r\n`);
      peer.reply(r2, { name: "vm" });
      await assert.rejects(first, (e) => {
        assert.ok(isProtocolError(e));
        assert.match(e.message, /^query-balloon failed: its reply could not be decoded/);
        return true;
      });
      assert.deepEqual(await second, { name: "vm" });
      assert.deepEqual(
        notices.map((n) => n.kind),
        ["protocol-error"],
      );
    } finally {
      await client.close();
    }
  });

  test("should show the raw traffic both ways", async () => {
    const traffic: string[] = [];
    const { client, peer } = await pair({
      trackRunState: false,
      onTraffic: (direction, text) => traffic.push(`${direction} ${text}`),
    });
    try {
      const call = client.execute("query-name");
      peer.reply(await peer.next());
      await call;
      assert.ok(traffic.includes('out {"execute":"qmp_capabilities","id":"__qmpkit#1"}\n'));
      assert.ok(traffic.includes('out {"execute":"query-name","id":"__qmpkit#2"}\n'));
      assert.ok(traffic.some((t) => t.startsWith('in {"QMP": {"version"')));
      assert.ok(traffic.join("").includes('in {"return": {}, "id": "__qmpkit#2"}\r\n'));
    } finally {
      await client.close();
    }
  });

  test("should check replies against validators when asked", async () => {
    const issues = [{ kind: "missing", path: "running" } as const];
    const statusValidator: Validator<unknown> = {
      name: "StatusInfo",
      check: (v): v is unknown => typeof (v as { running?: unknown }).running === "boolean",
      errors: () => [...issues],
      parse: (v) => {
        throw new ValidationError("StatusInfo", issues, { cause: v });
      },
    };
    const validators = {
      returns: (name: string) => (name === "query-status" ? statusValidator : undefined),
      event: () => undefined,
    };
    const reported = await pair({
      trackRunState: false,
      validate: { validators },
    });
    try {
      const call = reported.client.execute("query-status");
      reported.peer.reply(await reported.peer.next(), { status: "running" });
      assert.deepEqual(await call, { status: "running" });
      assert.deepEqual(reported.notices, [
        { kind: "invalid-reply", command: "query-status", issues },
      ]);
    } finally {
      await reported.client.close();
    }
    const strict = await pair({
      trackRunState: false,
      validate: { validators, onInvalid: "reject" },
    });
    try {
      const call = strict.client.execute("query-status");
      strict.peer.reply(await strict.peer.next(), { status: "running" });
      await assert.rejects(call, (e) => {
        assert.ok(isValidationError(e));
        assert.deepEqual(e.issues, issues);
        return true;
      });
    } finally {
      await strict.client.close();
    }
  });
});

suite("QmpClient.events()", () => {
  test("should deliver events to streams, callbacks and history, and end streams on close", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    const stream = client.events({ names: ["STOP", "RESUME"] });
    const seen: string[] = [];
    client.on("POWERDOWN", (e) => seen.push(e.event));
    client.on("*", (e) => seen.push(`*${e.event}`));
    peer.event("STOP");
    peer.event("POWERDOWN");
    peer.event("RESUME");
    const got: QmpEvent[] = [];
    for await (const e of stream) {
      got.push(e);
      if (got.length === 2) await client.close();
    }
    assert.deepEqual(
      got.map((e) => [e.event, e.data, e.timestamp.seconds]),
      [
        ["STOP", undefined, 1_700_000_000],
        ["RESUME", undefined, 1_700_000_000],
      ],
    );
    assert.deepEqual(seen, ["*STOP", "POWERDOWN", "*POWERDOWN", "*RESUME"]);
    assert.deepEqual(
      client.history.map((e) => e.event),
      ["STOP", "POWERDOWN", "RESUME"],
    );
  });

  test("should end a stream when the peer goes away, or fail it with onClose error", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    const ending = client.events();
    const failing = client.events({ onClose: "error" });
    peer.event("STOP");
    await tick();
    peer.destroy();
    const done: string[] = [];
    for await (const e of ending) done.push(e.event);
    assert.deepEqual(done, ["STOP"]);
    assert.equal((await failing.next()).value?.event, "STOP");
    await assert.rejects(failing.next(), isConnectionClosedError);
    const late = client.events();
    assert.deepEqual(await late.next(), { value: undefined, done: true });
  });

  test("should survive a burst of 100000 events with a bounded queue", async () => {
    const { client, peer, notices } = await pair({ trackRunState: false, historySize: 10 });
    try {
      const stream = client.events({ maxQueue: 1000 });
      let count = 0;
      client.on("BURST", () => count++);
      const chunk: string[] = [];
      for (let i = 0; i < 100_000; i++) {
        chunk.push(
          `{"timestamp": {"seconds": 1, "microseconds": ${i}}, "event": "BURST", "data": {"i": ${i}}}\r\n`,
        );
        if (chunk.length === 5_000) {
          peer.write(chunk.join(""));
          chunk.length = 0;
        }
      }
      const call = client.execute("query-name");
      peer.reply(await peer.next(10_000));
      await call;
      assert.equal(count, 100_000);
      assert.equal(stream.queued, 1000);
      assert.equal(stream.dropped, 99_000);
      assert.equal(client.history.length, 10);
      assert.deepEqual(client.history[9]?.data, { i: 99_999 });
      assert.deepEqual(notices, [
        { kind: "events-dropped", dropped: 1, maxQueue: 1000, policy: "drop-oldest" },
      ]);
      assert.deepEqual((await stream.next()).value?.data, { i: 99_000 });
    } finally {
      await client.close();
    }
  });
});

suite("QmpClient.executeAndWait()", () => {
  test("should take the event that comes before the reply (QEMU >= 9.0, 7.2.9+)", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const call = client.executeAndWait("quit", {}, { event: "SHUTDOWN" });
      const request = await peer.next();
      peer.event("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
      peer.reply(request);
      const { result, event } = await call;
      assert.deepEqual(result, {});
      assert.deepEqual(event.data, { guest: false, reason: "host-qmp-quit" });
    } finally {
      await client.close();
    }
  });

  test("should wait for an event that comes after the reply (before 9.0)", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const call = client.executeAndWait("system_reset", undefined, { event: "RESET" });
      const request = await peer.next();
      peer.reply(request);
      await tick();
      peer.event("RESET", { guest: false, reason: "host-qmp-system-reset" });
      const { event } = await call;
      assert.equal(event.event, "RESET");
    } finally {
      await client.close();
    }
  });

  test("should pick the matching occurrence with where (object or predicate)", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const byObject = client.executeAndWait(
        "device_del",
        { id: "nic1" },
        { event: "DEVICE_DELETED", where: { device: "nic1" } },
      );
      const r1 = await peer.next();
      peer.reply(r1);
      peer.event("DEVICE_DELETED", { device: "nic0", path: "/machine/peripheral/nic0" });
      peer.event("DEVICE_DELETED", { device: "nic1", path: "/machine/peripheral/nic1" });
      assert.equal(
        ((await byObject).event.data as { path: string }).path,
        "/machine/peripheral/nic1",
      );
      const byPredicate = client.executeAndWait(
        "device_del",
        { id: "d2" },
        {
          event: "DEVICE_DELETED",
          where: (e) => (e.data as { device?: string } | undefined)?.device === "d2",
        },
      );
      const r2 = await peer.next();
      peer.event("DEVICE_DELETED", { device: "d2", path: "/p" });
      peer.reply(r2);
      assert.equal((await byPredicate).event.event, "DEVICE_DELETED");
    } finally {
      await client.close();
    }
  });

  test("should reject with the CommandError when the command fails", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const call = client.executeAndWait("system_wakeup", undefined, { event: "WAKEUP" });
      peer.fail(
        await peer.next(),
        "GenericError",
        "wake-up from suspend is not supported by this guest",
      );
      await assert.rejects(call, isCommandError);
    } finally {
      await client.close();
    }
  });

  test("should time out waiting for the event after the reply", async (t) => {
    const { client, peer, notices } = await pair({ trackRunState: false });
    // The clock is the test's: the budget runs out only after the reply is in, however busy the
    // machine (with real time, a slow reply made this a timeout of the command instead).
    t.mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const call = client.executeAndWait("system_powerdown", undefined, {
        event: "SHUTDOWN",
        timeoutMs: 40,
      });
      const outcome = assert.rejects(call, (e) => {
        assert.ok(isTimeoutError(e));
        assert.equal(e.operation, "wait for SHUTDOWN");
        assert.equal(e.sent, true);
        return true;
      });
      peer.reply(await peer.next());
      for (let i = 0; i < 5; i++) await tick();
      t.mock.timers.tick(40);
      await outcome;
      assert.deepEqual(notices, []);
    } finally {
      t.mock.timers.reset();
      await client.close();
    }
  });

  test("should say the command was sent and answered when the connection ends before the event", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    const call = client.executeAndWait("system_powerdown", undefined, { event: "SHUTDOWN" });
    peer.reply(await peer.next());
    await tick();
    peer.destroy();
    await assert.rejects(call, (e) =>
      assertWaitClosed(e, { sent: true, answered: true }, /was answered, SHUTDOWN had not arrived/),
    );
  });

  test("should say the command was sent but not answered when the connection ends before the reply", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    const call = client.executeAndWait("system_powerdown", undefined, { event: "SHUTDOWN" });
    await peer.next();
    peer.destroy();
    await assert.rejects(call, (e) =>
      assertWaitClosed(e, { sent: true, answered: false }, /outcome is unknown/),
    );
  });

  test("should say in an AbortError's details whether the command had been sent", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const before = new AbortController();
      before.abort();
      await assert.rejects(
        client.executeAndWait("system_powerdown", undefined, {
          event: "SHUTDOWN",
          signal: before.signal,
        }),
        (e) => {
          assert.ok(e instanceof Error);
          assert.equal(e.name, "AbortError");
          assert.equal(e.cause, before.signal.reason);
          assert.deepEqual((e as { details?: unknown }).details, {
            command: "system_powerdown",
            event: "SHUTDOWN",
            sent: false,
            answered: false,
          });
          return true;
        },
      );
      const during = new AbortController();
      const call = client.executeAndWait("system_powerdown", undefined, {
        event: "SHUTDOWN",
        signal: during.signal,
      });
      peer.reply(await peer.next());
      await tick();
      during.abort();
      await assert.rejects(call, (e) => {
        assert.ok(e instanceof Error);
        assert.equal(e.name, "AbortError");
        assert.match(e.message, /system_powerdown/);
        assert.match(e.message, /SHUTDOWN/);
        assert.equal(e.cause, during.signal.reason);
        assert.deepEqual((e as { details?: unknown }).details, {
          command: "system_powerdown",
          event: "SHUTDOWN",
          sent: true,
          answered: true,
        });
        return true;
      });
    } finally {
      await client.close();
    }
  });

  test("should reject with the caller's own abort reason untouched", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    try {
      const controller = new AbortController();
      const reason = new Error("operator cancelled");
      const call = client.executeAndWait("system_powerdown", undefined, {
        event: "SHUTDOWN",
        signal: controller.signal,
      });
      await peer.next();
      controller.abort(reason);
      await assert.rejects(call, (e) => e === reason);
    } finally {
      await client.close();
    }
  });
});

suite("QmpClient run-state tracking", () => {
  test("should follow STOP and RESUME and confirm with query-status", async () => {
    const { client, peer } = await pair({}, { status: "running" });
    try {
      assert.equal(client.runState, "running");
      const changes: string[] = [];
      client.onRunStateChange((c) => changes.push(`${c.from}->${c.to}`));
      const stopping = client.execute("stop");
      const stop = await peer.next();
      peer.event("STOP");
      peer.reply(stop);
      await stopping;
      assert.equal(client.runState, "paused");
      const query = await peer.next();
      assert.equal(query.execute, "query-status");
      peer.reply(query, { status: "paused", singlestep: false, running: false });
      peer.event("RESUME");
      assert.equal(await client.waitForRunState("running", { timeoutMs: 1_000 }), "running");
      assert.deepEqual(changes, ["running->paused", "paused->running"]);
    } finally {
      await client.close();
    }
  });

  test("should reject waitForRunState when the client closes", async () => {
    const { client } = await pair();
    const waiting = assert.rejects(client.waitForRunState("running"), isConnectionClosedError);
    await client.close();
    await waiting;
  });
});

suite("QmpClient.events({ runState: true })", () => {
  test("should yield each run-state change right after the event that caused it", async () => {
    const { client, peer } = await pair({}, { status: "running" });
    try {
      const stream = client.events({ runState: true });
      const items: unknown[] = [];
      const reading = (async () => {
        for await (const item of stream) {
          items.push(
            "kind" in item
              ? `${item.cause}: ${item.from} -> ${item.to} @${item.timestamp.seconds}`
              : item.event,
          );
          if (items.length === 5) break;
        }
      })();
      peer.send({ timestamp: { seconds: 7, microseconds: 0 }, event: "STOP" });
      peer.event("RTC_CHANGE", { offset: 1, "qom-path": "/machine/unattached/device[7]" });
      // STOP made the tracker ask; its answer knows better than the guess.
      const query = await peer.next();
      assert.equal(query.execute, "query-status");
      peer.reply(query, { status: "shutdown", singlestep: false, running: false });
      await tick();
      peer.send({ timestamp: { seconds: 9, microseconds: 0 }, event: "RESUME" });
      await reading;
      assert.deepEqual(items.slice(0, 3), ["STOP", "STOP: running -> paused @7", "RTC_CHANGE"]);
      assert.match(String(items[3]), /^query-status: paused -> shutdown @\d+$/);
      assert.equal(items[4], "RESUME");
    } finally {
      await client.close();
    }
  });

  test("should yield an event's run-state change only when the event passes the stream's filters", async () => {
    const { client, peer } = await pair({}, { status: "running" });
    try {
      const onlyResume = client.events({ names: ["RESUME"], runState: true });
      const plain = client.events({ names: ["STOP", "RESUME"] });
      peer.event("STOP");
      const query = await peer.next();
      peer.reply(query, { status: "paused", singlestep: false, running: false });
      peer.event("RESUME");
      const first = await onlyResume.next();
      const second = await onlyResume.next();
      assert.equal((first.value as QmpEvent).event, "RESUME");
      assert.deepEqual(
        { ...(second.value as object), timestamp: undefined },
        { kind: "run-state", from: "paused", to: "running", cause: "RESUME", timestamp: undefined },
      );
      assert.equal(onlyResume.queued, 0);
      // A stream that did not ask for run-state items gets events only.
      assert.equal((await plain.next()).value?.event, "STOP");
      assert.equal((await plain.next()).value?.event, "RESUME");
      assert.equal(plain.queued, 0);
    } finally {
      await client.close();
    }
  });

  test("should refuse run-state items from a client that does not track the run state", async () => {
    const { client } = await pair({ trackRunState: false });
    try {
      assert.throws(() => client.events({ runState: true }), isStateError);
    } finally {
      await client.close();
    }
  });
});

suite("QmpClient reconnect", () => {
  test("should reconnect with a fresh greeting, fail pending commands, and tell streams of the gap", async () => {
    const peers: FakePeer[] = [];
    let opened = 0;
    const factory = (): Duplex => {
      const [near, far] = createMemoryPair();
      opened++;
      peers.push(new FakePeer(far));
      return near;
    };
    const notices: ClientNotice[] = [];
    const connecting = QmpClient.connect(factory, {
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
      onNotice: (n) => notices.push(n),
    });
    await peers[0]!.handshake({ status: "running" });
    const client = await connecting;
    try {
      const stream = client.events({ notices: true });
      peers[0]!.event("STOP");
      const pending = client.execute("query-name");
      const waiting = client.executeAndWait("system_powerdown", undefined, { event: "POWERDOWN" });
      // The STOP made the tracker ask query-status too; answer only system_powerdown.
      for (;;) {
        const request = await peers[0]!.next();
        if (request.execute !== "system_powerdown") continue;
        peers[0]!.reply(request);
        break;
      }
      await tick();
      peers[0]!.destroy();
      await assert.rejects(waiting, (e) => {
        assert.ok(isConnectionClosedError(e));
        assert.match(e.message, /the connection dropped/);
        return true;
      });
      await assert.rejects(pending, (e) => {
        assert.ok(isConnectionClosedError(e));
        assert.equal(e.sent, true);
        return true;
      });
      assert.equal(client.state, "reconnecting");
      await assert.rejects(client.execute("query-name"), (e) => {
        assert.ok(isConnectionClosedError(e));
        assert.match(e.message, /reconnecting/);
        return true;
      });
      while (peers.length < 2) await new Promise((r) => setTimeout(r, 5));
      const newer = {
        QMP: {
          ...GREETING_7_2.QMP,
          version: { qemu: { major: 8, minor: 2, micro: 0 }, package: "" },
        },
      };
      await peers[1]!.handshake({ status: "paused", greeting: newer });
      peers[1]!.event("RESUME");
      const items: Array<QmpEvent | EventStreamNotice> = [];
      for await (const item of stream) {
        items.push(item);
        if (items.length === 3) break;
      }
      assert.equal((items[0] as QmpEvent).event, "STOP");
      const gap = items[1] as EventStreamNotice;
      assert.equal(gap.notice, "gap");
      assert.ok(gap.notice === "gap" && gap.greeting.version.qemu.major === 8);
      assert.equal((items[2] as QmpEvent).event, "RESUME");
      assert.equal(client.state, "connected");
      assert.equal(client.greeting.version.qemu.major, 8);
      assert.equal(opened, 2);
      assert.deepEqual(
        notices.map((n) => n.kind),
        ["disconnected", "reconnected"],
      );
      const call = client.execute("query-name");
      peers[1]!.reply(await peers[1]!.next(), {});
      assert.deepEqual(await call, {});
    } finally {
      await client.close();
    }
    assert.equal(client.state, "closed");
    assert.equal(await client.closed, undefined);
  });

  test("should give up after maxAttempts and close with the reason", async () => {
    let calls = 0;
    const first = createMemoryPair();
    const peer = new FakePeer(first[1]);
    const factory = (): Duplex => {
      calls++;
      if (calls === 1) return first[0];
      throw new Error("socket is gone");
    };
    const connecting = QmpClient.connect(factory, {
      trackRunState: false,
      reconnect: { initialDelayMs: 1, maxAttempts: 3 },
    });
    await peer.handshake({ status: false });
    const client = await connecting;
    const stream = client.events();
    peer.destroy();
    const reason = await client.closed;
    assert.ok(isConnectionClosedError(reason));
    assert.match(
      reason.message,
      /gave up after 3 attempts: connect to stream factory failed: socket is gone/,
    );
    assert.equal(calls, 4);
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  test("should refuse reconnect for a bare Duplex", async () => {
    const [near] = createMemoryPair();
    await assert.rejects(QmpClient.connect(near, { reconnect: true }), isConnectError);
  });
});

suite("QmpClient.close()", () => {
  test("should be idempotent, resolve closed with undefined, and work with await using", async () => {
    const { client, peer } = await pair({ trackRunState: false });
    const pending = client.execute("query-name");
    await peer.next();
    await Promise.all([client.close(), client.close()]);
    await assert.rejects(pending, isConnectionClosedError);
    assert.equal(await client.closed, undefined);
    assert.ok(await peer.hungUp());
    {
      await using other = (await pair({ trackRunState: false })).client;
      assert.equal(other.state, "connected");
    }
  });
});
