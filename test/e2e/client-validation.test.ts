/**
 * Checking what the peer sends: the bundled (generated) validators, and validators built from
 * the peer's own `query-qmp-schema`, against a scripted peer and against real QEMU 7.2.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isProtocolError, isValidationError } from "../../src/base/errors.js";
import {
  bundledValidators,
  type ClientNotice,
  QmpClient,
  validatorsFromIntrospection,
} from "../../src/client/index.js";
import { qemuSchema } from "../../src/generated/index.js";
import { createMemoryPair } from "../../src/wire/index.js";
import { realQemuTest, startQemu } from "../support/real-qemu.js";
import { FakePeer, GREETING_7_2 } from "./support/fake-peer.js";

suite("validatorsFromIntrospection()", () => {
  const peer = validatorsFromIntrospection(qemuSchema.introspect("7.2.0"));

  test("should accept what QEMU 7.2 answers and list every problem otherwise", () => {
    const status = peer.returns("query-status")!;
    assert.deepEqual(status.errors({ status: "prelaunch", singlestep: false, running: false }), []);
    const issues = status.errors({ status: "bogus", running: "no", extra: 1 });
    assert.deepEqual(
      issues.map((i) => `${i.kind}:${i.path}`),
      ["type:running", "missing:singlestep", "enum:status", "unexpected:extra"],
    );
    assert.equal(
      status.check(
        { status: "running", singlestep: false, running: true, x: 1 },
        { mode: "lenient" },
      ),
      true,
    );
    assert.equal(
      status.check(
        { status: "running", singlestep: false, running: true, x: 1 },
        { mode: "strict" },
      ),
      false,
    );
    assert.throws(() => status.parse({}), isValidationError);
  });

  test("should check event data, and accept absent data for events without any", () => {
    assert.deepEqual(peer.event("STOP")!.errors(undefined), []);
    const shutdown = peer.event("SHUTDOWN")!;
    assert.deepEqual(shutdown.errors({ guest: true, reason: "guest-shutdown" }), []);
    assert.deepEqual(
      shutdown.errors({ guest: 1, reason: "nope" }).map((i) => `${i.kind}:${i.path}`),
      ["type:guest", "enum:reason"],
    );
    assert.equal(peer.event("NO_SUCH_EVENT"), undefined);
    assert.equal(peer.returns("no-such-command"), undefined);
  });

  test("should follow union variants, lists and nested paths", () => {
    const panicked = peer.event("GUEST_PANICKED")!;
    assert.deepEqual(panicked.errors({ action: "pause" }), []);
    assert.deepEqual(
      panicked
        .errors({ action: "pause", info: { type: "hyper-v", arg1: 1, arg2: "x" } })
        .map((i) => `${i.kind}:${i.path}`),
      ["type:info.arg2", "missing:info.arg3", "missing:info.arg4", "missing:info.arg5"],
    );
    const commands = peer.returns("query-commands")!;
    assert.deepEqual(
      commands.errors([{ name: "stop" }, { name: 3 }]).map((i) => `${i.kind}:${i.path}`),
      ["type:[1].name"],
    );
  });

  test("should refuse an answer that is not a SchemaInfo list", () => {
    assert.throws(() => validatorsFromIntrospection({ return: [] }), isProtocolError);
  });

  test("should agree with the bundled validators on the same values", () => {
    const value = { status: "running", singlestep: false, running: true };
    assert.equal(bundledValidators.returns("query-status")!.check(value), true);
    assert.equal(peer.returns("query-status")!.check(value), true);
    assert.equal(bundledValidators.returns("query-status")!.check({ status: "x" }), false);
  });
});

suite("QmpClient validate", () => {
  test("should ask query-qmp-schema with validators peer and report a reply that breaks it", async () => {
    const [near, far] = createMemoryPair();
    const peer = new FakePeer(far);
    const notices: ClientNotice[] = [];
    const connecting = QmpClient.connect(near, {
      trackRunState: false,
      validate: { validators: "peer" },
      onNotice: (n) => notices.push(n),
    });
    peer.send(GREETING_7_2);
    peer.reply(await peer.next());
    const schema = await peer.next();
    assert.equal(schema.execute, "query-qmp-schema");
    peer.reply(schema, qemuSchema.introspect("7.2.0"));
    const client = await connecting;
    try {
      const call = client.execute("query-status");
      peer.reply(await peer.next(), { status: "running", running: true });
      assert.deepEqual(await call, { status: "running", running: true }, "reported, not rejected");
      peer.event("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
      peer.event("RESET", { guest: false });
      const next = client.execute("query-name");
      peer.reply(await peer.next(), {});
      await next;
      assert.deepEqual(
        notices.map((n) =>
          n.kind === "invalid-reply"
            ? `reply ${n.command} ${n.issues.map((i) => i.path)}`
            : n.kind === "invalid-event"
              ? `event ${n.event} ${n.issues.map((i) => i.path)}`
              : n.kind,
        ),
        ["reply query-status singlestep", "event RESET reason"],
      );
    } finally {
      await client.close();
    }
  });

  test("should go on unchecked, with a notice, when query-qmp-schema fails", async () => {
    const [near, far] = createMemoryPair();
    const peer = new FakePeer(far);
    const notices: ClientNotice[] = [];
    const connecting = QmpClient.connect(near, {
      trackRunState: false,
      validate: { validators: "peer" },
      onNotice: (n) => notices.push(n),
    });
    peer.send(GREETING_7_2);
    peer.reply(await peer.next());
    peer.fail(
      await peer.next(),
      "CommandNotFound",
      "The command query-qmp-schema has not been found",
    );
    const client = await connecting;
    try {
      assert.deepEqual(
        notices.map((n) => n.kind),
        ["peer-schema-failed"],
      );
    } finally {
      await client.close();
    }
  });

  test(
    "should find nothing wrong in real QEMU 7.2's answers, by its own schema and by ours",
    realQemuTest(),
    async () => {
      const qemu = await startQemu();
      try {
        for (const validators of ["peer", "bundled"] as const) {
          const notices: ClientNotice[] = [];
          const client = await QmpClient.connect(`unix:${qemu.socketPath}`, {
            validate: { validators, mode: "strict", onInvalid: "reject" },
            onNotice: (n) => notices.push(n),
          });
          try {
            assert.equal(client.runState, "prelaunch");
            await client.executeAndWait("cont", undefined, { event: "RESUME", timeoutMs: 5_000 });
            await client.executeAndWait("stop", undefined, { event: "STOP", timeoutMs: 5_000 });
            await client.executeAndWait("system_reset", undefined, {
              event: "RESET",
              timeoutMs: 5_000,
            });
            await client.execute("query-version");
            await client.execute("query-name");
            await client.execute("query-commands");
            assert.deepEqual(notices, [], validators);
          } finally {
            await client.close();
          }
        }
      } finally {
        await qemu.stop();
      }
    },
  );
});
