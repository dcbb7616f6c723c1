/**
 * QmpServer end to end over real unix sockets (and a memory pair, and TCP), with the byte-level
 * peer `RawQmp`: the wire text is checked exactly.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { RawQmp } from "../../test/support/real-qemu.js";
import { createDeferred } from "../base/deferred.js";
import { createMemoryPair } from "../wire/index.js";
import { ManualClock } from "./clock.js";
import { QmpReplyError } from "./reply-error.js";
import { noArguments, QmpServer, type QmpServerOptions } from "./server.js";

let dir = "";
let n = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "qmpkit-server-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "test"}, "capabilities": ["oob"]}}\r\n';

/** A server on a fresh unix socket, with `query-name` registered; closed by `stop()`. */
async function start(options: QmpServerOptions = {}) {
  const server = new QmpServer({
    greeting: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "test" } },
    ...options,
  });
  server.command("query-name", () => ({}), { args: noArguments });
  const path = join(dir, `s${n++}.sock`);
  await server.listen(`unix:${path}`);
  const peers: RawQmp[] = [];
  return {
    server,
    path,
    async client(): Promise<RawQmp> {
      const peer = await RawQmp.connect(path);
      peers.push(peer);
      return peer;
    },
    async stop() {
      for (const p of peers) p.close();
      await server.close();
    },
  };
}

/** Reads `count` lines. */
async function lines(peer: RawQmp, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const line = await peer.nextLine(3_000);
    assert.ok(line !== undefined, `expected ${count} lines, got ${out.length}: ${out.join("")}`);
    out.push(line);
  }
  return out;
}

suite("QmpServer greeting and negotiation", () => {
  test("should greet with the configured version, package and capabilities", async () => {
    const t = await start({
      greeting: {
        version: { qemu: { major: 10, minor: 2, micro: 1 }, package: "v10.2.1-dirty" },
        capabilities: [],
      },
    });
    try {
      const c = await t.client();
      assert.equal(
        await c.nextLine(),
        '{"QMP": {"version": {"qemu": {"micro": 1, "minor": 2, "major": 10}, "package": "v10.2.1-dirty"}, "capabilities": []}}\r\n',
      );
      c.send(
        '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}{"execute":"qmp_capabilities","id":1}',
      );
      assert.deepEqual(await lines(c, 2), [
        '{"error": {"class": "GenericError", "desc": "Capability oob not available"}}\r\n',
        '{"return": {}, "id": 1}\r\n',
      ]);
    } finally {
      await t.stop();
    }
  });

  test("should allow only qmp_capabilities before negotiation and refuse a second negotiation", async () => {
    const t = await start();
    try {
      const c = await t.client();
      assert.equal(await c.nextLine(), GREETING);
      c.send('{"execute":"query-name","id":1}{"execute":"bogus"}{"id":2}');
      c.send(
        '{"execute":"qmp_capabilities"}{"execute":"query-name","id":3}{"execute":"qmp_capabilities","id":4}',
      );
      assert.deepEqual(await lines(c, 6), [
        `{"id": 1, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}\r\n`,
        `{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}\r\n`,
        `{"id": 2, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}\r\n`,
        '{"return": {}}\r\n',
        '{"return": {}, "id": 3}\r\n',
        `{"id": 4, "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}\r\n`,
      ]);
    } finally {
      await t.stop();
    }
  });

  test("should drop events emitted before a client negotiates, not buffer them", async () => {
    const clock = new ManualClock({ startMicros: 1_700_000_000_123_456 });
    const t = await start({ clock });
    try {
      const c = await t.client();
      await c.nextLine();
      await new Promise((r) => setTimeout(r, 20));
      t.server.emit("STOP");
      c.send('{"execute":"qmp_capabilities"}');
      assert.equal(await c.nextLine(), '{"return": {}}\r\n');
      clock.advance(1.5);
      t.server.emit("RESUME");
      assert.equal(
        await c.nextLine(),
        '{"timestamp": {"seconds": 1700000000, "microseconds": 124956}, "event": "RESUME"}\r\n',
      );
      assert.deepEqual(await c.drain(50), []);
    } finally {
      await t.stop();
    }
  });

  test("should start every new connection in negotiation mode", async () => {
    const t = await start();
    try {
      const a = await t.client();
      await a.handshake();
      a.close();
      const b = await t.client();
      assert.equal(await b.nextLine(), GREETING);
      b.send('{"execute":"query-name"}');
      assert.match((await b.nextLine())!, /Expecting capabilities negotiation/);
    } finally {
      await t.stop();
    }
  });
});

suite("QmpServer clients", () => {
  test("should serve one client at a time by default: the next one is greeted when the first leaves", async () => {
    const t = await start();
    try {
      const a = await t.client();
      await a.handshake();
      const b = await t.client();
      b.send('{"execute":"qmp_capabilities","id":"early"}');
      assert.equal(
        await b.nextLine(200),
        undefined,
        "no greeting while the first client is served",
      );
      assert.equal(t.server.waitingClients, 1);
      t.server.emit("STOP");
      assert.match((await a.nextLine())!, /"event": "STOP"/);
      a.close();
      assert.equal(await b.nextLine(), GREETING);
      assert.equal(await b.nextLine(), '{"return": {}, "id": "early"}\r\n');
      assert.deepEqual(await b.drain(50), [], "the event was not kept for the waiting client");
    } finally {
      await t.stop();
    }
  });

  test("should serve several clients at once when allowed, broadcasting each event with one timestamp", async () => {
    const clock = new ManualClock({ startMicros: 5_000_001 });
    const t = await start({ maxClients: 3, clock });
    try {
      const a = await t.client();
      const b = await t.client();
      const c = await t.client();
      await a.handshake();
      await b.handshake();
      assert.equal(await c.nextLine(), GREETING);
      t.server.emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
      const expected =
        '{"timestamp": {"seconds": 5, "microseconds": 1}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}\r\n';
      assert.equal(await a.nextLine(), expected);
      assert.equal(await b.nextLine(), expected);
      assert.equal(await c.nextLine(200), undefined, "a client still negotiating gets nothing");
      assert.equal(t.server.clients.length, 3);
    } finally {
      await t.stop();
    }
  });

  test("should give each listener its own client slot and pretty flag, sharing events", async () => {
    const clock = new ManualClock({ startMicros: 7_000_000 });
    const t = await start({ clock });
    const second = join(dir, `s${n++}.sock`);
    await t.server.listen(`unix:${second}`, { pretty: true });
    try {
      const a = await t.client();
      await a.handshake();
      const b = await RawQmp.connect(second);
      const c = await RawQmp.connect(second);
      try {
        assert.equal(await b.nextLine(), "{\r\n", "the second monitor has its own free slot");
        await b.drain(50);
        b.send('{"execute":"qmp_capabilities"}');
        assert.deepEqual(await b.drain(50), ["{\r\n", '    "return": {\r\n', "    }\r\n", "}\r\n"]);
        assert.equal(await c.nextLine(100), undefined, "its one slot is taken");
        t.server.emit("STOP");
        assert.equal(
          await a.nextLine(),
          '{"timestamp": {"seconds": 7, "microseconds": 0}, "event": "STOP"}\r\n',
        );
        assert.deepEqual(await b.drain(50), [
          "{\r\n",
          '    "timestamp": {\r\n',
          '        "seconds": 7,\r\n',
          '        "microseconds": 0\r\n',
          "    },\r\n",
          '    "event": "STOP"\r\n',
          "}\r\n",
        ]);
        b.close();
        assert.equal(await c.nextLine(), "{\r\n");
      } finally {
        b.close();
        c.close();
      }
    } finally {
      await t.stop();
    }
  });

  test("should serve a Duplex given to accept() and a TCP listener", {
    timeout: 30_000,
  }, async () => {
    const server = new QmpServer();
    try {
      const [ours, theirs] = createMemoryPair();
      server.accept(ours);
      const got: string[] = [];
      theirs.setEncoding("latin1");
      theirs.on("data", (s: string) => got.push(s));
      theirs.write('{"execute":"qmp_capabilities","id":"m"}');
      // Until the reply arrived (a fixed sleep was too short with both cores busy).
      await new Promise<void>((resolve) => {
        const done = () => {
          if (got.join("").includes('"id": "m"}\r\n')) resolve();
          else theirs.once("data", done);
        };
        done();
      });
      assert.match(got.join(""), /^\{"QMP": .*\r\n\{"return": \{\}, "id": "m"\}\r\n$/);
      theirs.destroy();

      const listener = await server.listen("tcp:127.0.0.1:0");
      const port = Number(listener.address.split(":").at(-1));
      const socket = connect(port, "127.0.0.1");
      const greeting = await new Promise<string>((resolve) =>
        socket.once("data", (d) => resolve(String(d))),
      );
      assert.match(
        greeting,
        /^\{"QMP": \{"version": \{"qemu": \{"micro": 22, "minor": 2, "major": 7\}/,
      );
      socket.destroy();
    } finally {
      await server.close();
    }
  });
});

suite("QmpServer dispatch", () => {
  test("should answer {} for a command without a return value, and echo ids verbatim", async () => {
    const t = await start();
    t.server.command("stop", () => undefined);
    t.server.command("async-nothing", async () => {});
    try {
      const c = await t.client();
      await c.handshake();
      c.send(
        '{"execute":"stop","id":{"b":[1,2.5,"x"],"a":null}}{"execute":"async-nothing","id":-0.5}',
      );
      assert.deepEqual(await lines(c, 2), [
        // Verbatim, in QEMU's printed key order (QDict buckets: "a" before "b").
        '{"return": {}, "id": {"a": null, "b": [1, 2.5, "x"]}}\r\n',
        '{"return": {}, "id": -0.5}\r\n',
      ]);
    } finally {
      await t.stop();
    }
  });

  test("should not start the next in-band request before the previous reply is written", async () => {
    const t = await start();
    const calls: string[] = [];
    const gate = createDeferred<void>();
    t.server.command("slow", async () => {
      calls.push("slow");
      await gate.promise;
      return { done: "slow" };
    });
    t.server.command("fast", () => {
      calls.push("fast");
      return { done: "fast" };
    });
    try {
      const c = await t.client();
      await c.handshake();
      c.send('{"execute":"slow","id":1}{"execute":"fast","id":2}');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(calls, ["slow"], "fast waits while slow runs");
      gate.resolve();
      assert.deepEqual(await lines(c, 2), [
        '{"return": {"done": "slow"}, "id": 1}\r\n',
        '{"return": {"done": "fast"}, "id": 2}\r\n',
      ]);
      assert.deepEqual(calls, ["slow", "fast"]);
    } finally {
      await t.stop();
    }
  });

  test("should run exec-oob at once, overtaking a blocked in-band request, when OOB is on", async () => {
    const t = await start();
    const gate = createDeferred<void>();
    t.server.command("slow", async () => {
      await gate.promise;
    });
    // An OOB-capable stand-in, called without arguments: the schema's own check is not the point.
    t.server.command("yank", () => undefined, { allowOob: true, args: false });
    try {
      const c = await t.client();
      await c.nextLine();
      c.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
      assert.equal(await c.nextLine(), '{"return": {}}\r\n');
      c.send(
        '{"execute":"slow","id":1}{"exec-oob":"yank","id":"o1"}{"exec-oob":"query-name","id":"o2"}',
      );
      assert.deepEqual(await lines(c, 2), [
        '{"return": {}, "id": "o1"}\r\n',
        `{"id": "o2", "error": {"class": "GenericError", "desc": "The command query-name does not support OOB"}}\r\n`,
      ]);
      gate.resolve();
      assert.equal(await c.nextLine(), '{"return": {}, "id": 1}\r\n');
    } finally {
      await t.stop();
    }
  });

  test("should answer exec-oob in order when OOB is off: it waits behind the in-band request", async () => {
    const t = await start();
    const gate = createDeferred<void>();
    t.server.command("slow", async () => {
      await gate.promise;
    });
    try {
      const c = await t.client();
      await c.handshake();
      c.send('{"execute":"slow","id":1}{"exec-oob":"query-name","id":2}');
      assert.equal(await c.nextLine(100), undefined);
      gate.resolve();
      assert.deepEqual(await lines(c, 2), [
        '{"return": {}, "id": 1}\r\n',
        `{"id": 2, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}\r\n`,
      ]);
    } finally {
      await t.stop();
    }
  });

  test("should queue at most 8 in-band requests with OOB on, then stop reading until one is taken", async () => {
    const t = await start();
    const gates: Array<ReturnType<typeof createDeferred<void>>> = [];
    t.server.command("block", async () => {
      const gate = createDeferred<void>();
      gates.push(gate);
      await gate.promise;
    });
    // An OOB-capable stand-in, called without arguments: the schema's own check is not the point.
    t.server.command("yank", () => undefined, { allowOob: true, args: false });
    try {
      const c = await t.client();
      await c.nextLine();
      c.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
      await c.nextLine();
      // One runs, eight wait in the queue: the eighth queued suspends input.
      let text = "";
      for (let i = 1; i <= 9; i++) text += `{"execute":"block","id":${i}}`;
      c.send(`${text}{"exec-oob":"yank","id":"oob"}`);
      assert.equal(
        await c.nextLine(150),
        undefined,
        "the exec-oob behind a full queue is not read",
      );
      assert.equal(gates.length, 1);
      gates[0]!.resolve();
      // Taking request 2 from the full queue resumes input at once: the exec-oob gets through
      // while request 2 still runs.
      assert.deepEqual(await lines(c, 2), [
        '{"return": {}, "id": 1}\r\n',
        '{"return": {}, "id": "oob"}\r\n',
      ]);
      assert.equal(gates.length, 2);
      for (let i = 1; i < 9; i++) {
        while (gates.length <= i) await new Promise((r) => setTimeout(r, 5));
        gates[i]!.resolve();
      }
      const rest = await lines(c, 8);
      assert.deepEqual(
        rest,
        Array.from({ length: 8 }, (_, i) => `{"return": {}, "id": ${i + 2}}\r\n`),
      );
    } finally {
      for (const g of gates) g.resolve();
      await t.stop();
    }
  });

  test("should serve in-band requests of several clients round-robin, one at a time overall", async () => {
    const t = await start({ maxClients: 2 });
    const order: string[] = [];
    t.server.command("who", async (_args, ctx) => {
      order.push(`${ctx.session.id}:${String(ctx.id)}`);
      await new Promise((r) => setTimeout(r, 5));
    });
    try {
      const a = await t.client();
      const b = await t.client();
      await a.handshake();
      await b.handshake();
      a.send('{"execute":"who","id":1}{"execute":"who","id":2}{"execute":"who","id":3}');
      b.send('{"execute":"who","id":1}{"execute":"who","id":2}{"execute":"who","id":3}');
      await lines(a, 3);
      await lines(b, 3);
      // Each client's own order holds; the dispatcher alternates between them.
      const ofA = order.filter((x) => x.startsWith(`${order[0]!.split(":")[0]}:`));
      assert.deepEqual(
        ofA.map((x) => x.split(":")[1]),
        ["1", "2", "3"],
      );
      const firstSession = order[0]!.split(":")[0];
      assert.notEqual(order[1]!.split(":")[0], firstSession, "the other client is served next");
    } finally {
      await t.stop();
    }
  });

  test("should run afterReply callbacks after the reply, before the next request", async () => {
    const t = await start();
    t.server.command("system_reset", (_args, ctx) => {
      ctx.afterReply(() =>
        t.server.emit("RESET", { guest: false, reason: "host-qmp-system-reset" }),
      );
    });
    t.server.command("stop", () => {
      t.server.emit("STOP");
    });
    try {
      const c = await t.client();
      await c.handshake();
      c.send('{"execute":"system_reset","id":1}{"execute":"stop","id":2}');
      const got = (await lines(c, 4)).map((l) => l.replace(/"timestamp": \{[^}]*\}, /, ""));
      assert.deepEqual(got, [
        '{"return": {}, "id": 1}\r\n',
        '{"event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}\r\n',
        '{"event": "STOP"}\r\n',
        '{"return": {}, "id": 2}\r\n',
      ]);
    } finally {
      await t.stop();
    }
  });

  test("should answer handler errors: QmpReplyError as given, other errors as GenericError (reported)", async () => {
    const reported: unknown[] = [];
    const t = await start({ onHandlerError: (e) => reported.push(e) });
    t.server.command("query-balloon", () => {
      throw new QmpReplyError("DeviceNotActive", "No balloon device has been activated");
    });
    t.server.command("broken", async () => {
      throw new Error("handler bug");
    });
    t.server.command("throws-string", () => {
      throw "plain";
    });
    t.server.command("bad-return", async () => ({ f: () => 1 }));
    try {
      const c = await t.client();
      await c.handshake();
      c.send(
        '{"execute":"query-balloon","id":1}{"execute":"broken","id":2}{"execute":"throws-string"}{"execute":"bad-return","id":4}',
      );
      assert.deepEqual(await lines(c, 4), [
        '{"id": 1, "error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}}\r\n',
        '{"id": 2, "error": {"class": "GenericError", "desc": "handler bug"}}\r\n',
        '{"error": {"class": "GenericError", "desc": "plain"}}\r\n',
        '{"id": 4, "error": {"class": "GenericError", "desc": "bad-return returned a value that cannot be sent: cannot write function as JSON"}}\r\n',
      ]);
      assert.equal(reported.length, 3);
    } finally {
      await t.stop();
    }
  });

  test("should answer disabled commands and preconfig as QEMU does", async () => {
    const t = await start({ preconfig: true });
    t.server.command("a", () => ({}), { allowPreconfig: true });
    t.server.command("b", () => ({}));
    t.server.disableCommand("a");
    try {
      const c = await t.client();
      await c.handshake();
      c.send('{"execute":"a"}{"execute":"b"}');
      assert.deepEqual(await lines(c, 2), [
        '{"error": {"class": "CommandNotFound", "desc": "Command a has been disabled"}}\r\n',
        `{"error": {"class": "GenericError", "desc": "The command 'b' is permitted only after machine initialization has completed"}}\r\n`,
      ]);
      t.server.disableCommand("a", "for testing");
      t.server.preconfig = false;
      c.send('{"execute":"a"}{"execute":"b"}');
      assert.deepEqual(await lines(c, 2), [
        '{"error": {"class": "CommandNotFound", "desc": "Command a has been disabled: for testing"}}\r\n',
        '{"return": {}}\r\n',
      ]);
      t.server.enableCommand("a");
      t.server.removeCommand("b");
      c.send('{"execute":"a"}{"execute":"b"}');
      assert.deepEqual(await lines(c, 2), [
        '{"return": {}}\r\n',
        '{"error": {"class": "CommandNotFound", "desc": "The command b has not been found"}}\r\n',
      ]);
    } finally {
      await t.stop();
    }
  });

  test("should refuse to replace qmp_capabilities", () => {
    const server = new QmpServer();
    assert.throws(() => server.command("qmp_capabilities", () => undefined), TypeError);
  });

  test("should print pretty output with \\r\\n line ends when asked", async () => {
    const t = await start({ pretty: true });
    try {
      const c = await t.client();
      assert.equal(await c.nextLine(), "{\r\n");
      const rest = await c.drain(50);
      assert.equal(rest.at(-1), "}\r\n");
      assert.ok(rest.every((l) => l.endsWith("\r\n") && !l.slice(0, -2).includes("\n")));
      assert.ok(rest.includes('        "capabilities": [\r\n'));
    } finally {
      await t.stop();
    }
  });
});

suite("QmpServer events", () => {
  test("should leave out data for events without it", async () => {
    const clock = new ManualClock({ startMicros: 0 });
    const t = await start({ clock });
    try {
      const c = await t.client();
      await c.handshake();
      t.server.emit("POWERDOWN");
      t.server.emit("WATCHDOG", { action: "none" });
      assert.deepEqual(await lines(c, 2), [
        '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "POWERDOWN"}\r\n',
        '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "WATCHDOG", "data": {"action": "none"}}\r\n',
      ]);
    } finally {
      await t.stop();
    }
  });

  test("should send a held throttled event, with its own timestamp, to whoever is negotiated when the timer fires", async () => {
    const clock = new ManualClock({ startMicros: 10_000_000 });
    const t = await start({ clock, maxClients: 2 });
    try {
      const a = await t.client();
      await a.handshake();
      t.server.emit("RTC_CHANGE", { offset: 1, "qom-path": "/machine/rtc" });
      clock.advance(100);
      t.server.emit("RTC_CHANGE", { offset: 2, "qom-path": "/machine/rtc" });
      clock.advance(100);
      t.server.emit("STOP");
      assert.deepEqual(await lines(a, 2), [
        '{"timestamp": {"seconds": 10, "microseconds": 0}, "event": "RTC_CHANGE", "data": {"offset": 1, "qom-path": "/machine/rtc"}}\r\n',
        '{"timestamp": {"seconds": 10, "microseconds": 200000}, "event": "STOP"}\r\n',
      ]);
      assert.deepEqual(t.server.throttleState, { records: 1, held: 1 });
      const b = await t.client();
      await b.handshake();
      clock.advance(800);
      const held =
        '{"timestamp": {"seconds": 10, "microseconds": 100000}, "event": "RTC_CHANGE", "data": {"offset": 2, "qom-path": "/machine/rtc"}}\r\n';
      assert.equal(await a.nextLine(), held);
      assert.equal(await b.nextLine(), held);
      clock.advance(1000);
      assert.deepEqual(t.server.throttleState, { records: 0, held: 0 });
    } finally {
      await t.stop();
    }
  });
});

suite("QmpServer event order", () => {
  test("should deliver an event emitted while another is being delivered after it, to every client", async () => {
    let server: QmpServer | undefined;
    let nested = false;
    const t = await start({
      maxClients: 2,
      onTraffic: (direction, text) => {
        if (direction === "out" && text.includes('"STOP"') && !nested) {
          nested = true;
          server?.emit("RESUME");
        }
      },
    });
    server = t.server;
    try {
      const a = await t.client();
      const b = await t.client();
      await a.handshake();
      await b.handshake();
      t.server.emit("STOP");
      for (const c of [a, b]) {
        const got = (await lines(c, 2)).map((l) => JSON.parse(l).event);
        assert.deepEqual(got, ["STOP", "RESUME"]);
      }
    } finally {
      await t.stop();
    }
  });
});

suite("QmpServer event validation", () => {
  test("should refuse malformed event data when validateEvents is on, and send it when off", () => {
    const strict = new QmpServer({ validateEvents: true });
    assert.throws(
      () => strict.emit("SHUTDOWN", { guest: "yes" } as never),
      (e: Error) => e.name === "ValidationError" && /guest/.test(e.message),
    );
    assert.throws(() => strict.emit("STOP", { extra: 1 } as never), { name: "ValidationError" });
    strict.emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
    strict.emit("STOP");
    strict.emit("X-UNKNOWN-EVENT", { anything: 1 });
    const lax = new QmpServer();
    lax.emit("SHUTDOWN", { guest: "yes" } as never);
  });
});

suite("QmpServer disconnects", () => {
  test("should drop the result of a handler whose client left, abort its signal, and serve the next client", async () => {
    const reported: unknown[] = [];
    const t = await start({ onHandlerError: (e) => reported.push(e) });
    const gate = createDeferred<void>();
    let signal: AbortSignal | undefined;
    let afterReplyRan = false;
    t.server.command("slow", async (_args, ctx) => {
      signal = ctx.signal;
      ctx.afterReply(() => {
        afterReplyRan = true;
      });
      await gate.promise;
      return { late: true };
    });
    try {
      const a = await t.client();
      await a.handshake();
      a.send('{"execute":"slow","id":1}');
      await new Promise((r) => setTimeout(r, 30));
      a.close();
      const b = await t.client();
      // Like QEMU on TCP, the server notices a vanished peer when it next writes to it: here,
      // when the running command's reply goes out.
      assert.equal(await b.nextLine(100), undefined);
      gate.resolve();
      assert.equal(await b.nextLine(), GREETING);
      assert.equal(signal?.aborted, true);
      assert.equal(afterReplyRan, true, "side effects after the reply still happen");
      b.send('{"execute":"qmp_capabilities"}');
      assert.equal(await b.nextLine(), '{"return": {}}\r\n');
      assert.deepEqual(reported, []);
    } finally {
      await t.stop();
    }
  });

  test("should close the socket after answering what came before a half-close", async () => {
    const t = await start();
    try {
      const socket = connect(t.path);
      let text = "";
      socket.setEncoding("latin1");
      socket.on("data", (s: string) => {
        text += s;
      });
      await new Promise<void>((r) => socket.once("connect", () => r()));
      socket.end('{"execute":"qmp_capabilities"}{"execute":"query-name","id":1}');
      await new Promise<void>((r) => socket.once("close", () => r()));
      assert.equal(text, `${GREETING}{"return": {}}\r\n{"return": {}, "id": 1}\r\n`);
      assert.equal(t.server.clients.length, 0);
    } finally {
      await t.stop();
    }
  });
});
