import assert from "node:assert/strict";
import { suite, test } from "node:test";
import type { JsonObject, JsonValue } from "../../src/base/json.js";
import { PROXY_ID_PREFIX, type ProxyClientPort, ProxyCore } from "../../src/cli/proxy-core.js";
import { EventBus, ManualClock, THROTTLE_TABLE_7_2 } from "../../src/server/index.js";
import { JsonStreamDecoder, qdictKeyOrder } from "../../src/wire/index.js";

const upstreamGreeting = {
  QMP: {
    version: { qemu: { micro: 22, minor: 2, major: 7 }, package: "Debian" },
    capabilities: ["oob"],
  },
};

/** A core with fake ports; `maxInFlight: 1` (one command upstream at a time) unless given. */
function harness(options: { maxInFlight?: number; text?: boolean } = {}) {
  const upstream: JsonObject[] = [];
  const log: string[] = [];
  const clock = { ms: 0 };
  const core = new ProxyCore({
    upstream: { send: (m) => upstream.push(m) },
    orderKeys: qdictKeyOrder,
    upstreamName: "unix:/vm.qmp",
    log: (l) => log.push(l),
    maxInFlight: options.maxInFlight ?? 1,
    now: () => clock.ms,
  });
  const client = () => {
    const received: JsonObject[] = [];
    /** What went out as text (`sendText`), line ends included. */
    const texts: string[] = [];
    let closed = false;
    const decoder = new JsonStreamDecoder({ dialect: "qemu" });
    const port: ProxyClientPort = {
      send: (m) => received.push(m),
      close: () => (closed = true),
      ...(options.text
        ? {
            sendText: (t: string) => {
              texts.push(t);
              received.push(JSON.parse(t) as JsonObject);
            },
          }
        : {}),
    };
    core.addClient(port);
    return {
      port,
      received,
      texts,
      closed: () => closed,
      /** Sends raw text, as a client would write it. */
      write(text: string) {
        for (const item of decoder.push(new TextEncoder().encode(text)))
          core.clientItem(port, item);
      },
    };
  };
  /** Answers the one request in flight upstream with `reply` (its id filled in). */
  const answer = (reply: JsonObject) => {
    const request = upstream.at(-1);
    assert.ok(request, "a request should be in flight upstream");
    core.upstreamMessage({ ...reply, id: request.id as JsonValue });
  };
  return { core, upstream, log, client, answer, clock };
}

suite("proxy core", () => {
  test("should greet each client itself once the upstream is ready, without OOB when it is off upstream", () => {
    const h = harness();
    const a = h.client();
    assert.deepEqual(a.received, []);
    h.core.upstreamConnected(upstreamGreeting);
    const b = h.client();
    const greeting = { QMP: { version: upstreamGreeting.QMP.version, capabilities: [] } };
    assert.deepEqual(a.received, [greeting]);
    assert.deepEqual(b.received, [greeting]);
  });

  test("should answer negotiation locally with QEMU's replies", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    a.received.length = 0;
    a.write('{"execute":"query-status","id":1}');
    a.write('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":2}');
    a.write('{"execute":"qmp_capabilities","id":3}');
    a.write('{"execute":"qmp_capabilities","id":4}');
    assert.deepEqual(a.received, [
      {
        id: 1,
        error: {
          class: "CommandNotFound",
          desc: "Expecting capabilities negotiation with 'qmp_capabilities'",
        },
      },
      { id: 2, error: { class: "GenericError", desc: "Capability oob not available" } },
      { return: {}, id: 3 },
      {
        id: 4,
        error: {
          class: "CommandNotFound",
          desc: "Capabilities negotiation is already complete, command ignored",
        },
      },
    ]);
    assert.deepEqual(h.upstream, [], "nothing of the negotiation reaches the upstream");
  });

  test("should rewrite ids upstream and restore each client's own id, or its absence", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    a.received.length = 0;
    a.write('{"execute":"query-status","id":{"mine":[1,2]}}');
    assert.equal(h.upstream.length, 1);
    assert.match(String(h.upstream[0]!.id), new RegExp(`^${PROXY_ID_PREFIX}\\d+$`));
    assert.equal(h.upstream[0]!.execute, "query-status");
    h.answer({ return: { status: "running", singlestep: false, running: true } });
    a.write('{"execute":"stop"}');
    h.answer({ return: {} });
    a.write('{"execute":"nope","id":"x"}');
    h.answer({ error: { class: "CommandNotFound", desc: "The command nope has not been found" } });
    assert.deepEqual(a.received, [
      { return: { status: "running", singlestep: false, running: true }, id: { mine: [1, 2] } },
      { return: {} },
      { id: "x", error: { class: "CommandNotFound", desc: "The command nope has not been found" } },
    ]);
  });

  test("should keep replies in each client's order, JSON errors included", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    a.received.length = 0;
    a.write(
      '{"execute":"query-name","id":1} {"execute": @} [1] {"execute":"query-kvm","id":2,"bogus":1}',
    );
    // Nothing is answered before the command in flight.
    assert.deepEqual(a.received, []);
    h.answer({ return: {} });
    assert.deepEqual(a.received, [
      { return: {}, id: 1 },
      { error: { class: "GenericError", desc: "JSON parse error, stray '@'" } },
      { error: { class: "GenericError", desc: "JSON parse error, expecting value" } },
      { error: { class: "GenericError", desc: "QMP input must be a JSON object" } },
      { id: 2, error: { class: "GenericError", desc: "QMP input member 'bogus' is unexpected" } },
    ]);
    assert.equal(h.upstream.length, 1);
  });

  test("should answer exec-oob at once, ahead of queued in-band replies, as QEMU without OOB does", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    a.received.length = 0;
    a.write('{"execute":"query-name","id":1}{"exec-oob":"migrate-pause","id":2}');
    assert.deepEqual(a.received, [
      {
        id: 2,
        error: { class: "GenericError", desc: "QMP input member 'exec-oob' is unexpected" },
      },
    ]);
    h.answer({ return: {} });
    assert.deepEqual(a.received.at(-1), { return: {}, id: 1 });
  });

  test("should send one command upstream at a time, round-robin across clients", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    const b = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    b.write('{"execute":"qmp_capabilities"}');
    a.write('{"execute":"a1"}{"execute":"a2"}');
    b.write('{"execute":"b1"}');
    const names = () => h.upstream.map((m) => m.execute);
    assert.deepEqual(names(), ["a1"]);
    h.answer({ return: {} });
    assert.deepEqual(names(), ["a1", "b1"]);
    h.answer({ return: {} });
    assert.deepEqual(names(), ["a1", "b1", "a2"]);
    h.answer({ return: {} });
    assert.equal(a.received.length, 1 + 1 + 2);
    assert.equal(b.received.length, 1 + 1 + 1);
  });

  test("should fan events out to negotiated clients only", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    const b = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    const stop = { timestamp: { seconds: 1, microseconds: 2 }, event: "STOP" };
    h.core.upstreamMessage(stop);
    assert.deepEqual(a.received.at(-1), stop);
    assert.equal(b.received.length, 1, "b is still negotiating: only its greeting");
  });

  test("should write an event raised on an EventBus it is attached to, one text for every client", () => {
    const h = harness({ text: true });
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    const b = h.client();
    const c = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    b.write('{"execute":"qmp_capabilities"}');
    const events = new EventBus({
      throttle: THROTTLE_TABLE_7_2,
      clock: new ManualClock({ startMicros: 1_000_002 }),
    });
    events.attach(h.core);
    events.emit("STOP");
    const line = '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n';
    assert.equal(a.texts.at(-1), line);
    assert.equal(b.texts.at(-1), line);
    assert.deepEqual(
      [c.texts.length, c.received.length],
      [0, 1],
      "c is negotiating: its greeting only",
    );
  });

  test("should fail pending commands clearly and disconnect clients when the upstream goes", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    const b = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    b.write('{"execute":"qmp_capabilities"}');
    a.write('{"execute":"stop","id":7}');
    b.write('{"execute":"cont","id":8}');
    a.received.length = 0;
    b.received.length = 0;
    h.core.upstreamLost("EOF");
    assert.deepEqual(a.received, [
      {
        id: 7,
        error: {
          class: "GenericError",
          desc: "qmpkit proxy: lost the connection to unix:/vm.qmp (EOF) before 'stop' was answered; it may or may not have run",
        },
      },
    ]);
    assert.deepEqual(b.received, [
      {
        id: 8,
        error: {
          class: "GenericError",
          desc: "qmpkit proxy: lost the connection to unix:/vm.qmp (EOF); 'cont' was not sent",
        },
      },
    ]);
    assert.ok(a.closed() && b.closed());
    assert.equal(h.core.clientsConnected, 0);
    // A client arriving now is greeted with the last greeting, may negotiate, and is told at
    // once that the upstream is away; once it is back, its commands go through.
    h.clock.ms += 12_300;
    const c = h.client();
    assert.equal(c.received.length, 1, "greeted");
    c.write('{"execute":"qmp_capabilities"}');
    c.write('{"execute":"query-status","id":1}');
    assert.deepEqual(c.received.slice(1), [
      { return: {} },
      {
        id: 1,
        error: {
          class: "GenericError",
          desc: "qmpkit proxy: QEMU at unix:/vm.qmp is not connected, lost 12 s ago; the proxy is reconnecting; 'query-status' was not sent",
        },
      },
    ]);
    h.clock.ms += 2_000;
    h.core.upstreamConnected(upstreamGreeting);
    assert.equal(h.log.at(-1), "upstream unix:/vm.qmp is back after 14 s");
    c.write('{"execute":"query-status","id":2}');
    assert.equal(h.upstream.at(-1)?.execute, "query-status");
  });

  test("should drop a reply whose client left, and go on with the next", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    const b = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    b.write('{"execute":"qmp_capabilities"}');
    a.write('{"execute":"a1"}');
    b.write('{"execute":"b1"}');
    h.core.removeClient(a.port);
    h.answer({ return: {} });
    assert.deepEqual(
      h.upstream.map((m) => m.execute),
      ["a1", "b1"],
    );
    h.answer({ return: { ok: true } });
    assert.deepEqual(b.received.at(-1), { return: { ok: true } });
  });

  test("should offer OOB when it is on upstream, and pass exec-oob at once, ahead of in-band", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting, { oob: true });
    const a = h.client();
    const b = h.client();
    assert.deepEqual(a.received, [
      { QMP: { version: upstreamGreeting.QMP.version, capabilities: ["oob"] } },
    ]);
    a.write('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
    b.write('{"execute":"qmp_capabilities"}');
    a.received.length = 0;
    b.received.length = 0;
    // One in-band command in flight, one queued behind it, then an out-of-band one.
    a.write('{"execute":"query-name","id":"n"}{"execute":"query-status","id":"s"}');
    a.write('{"exec-oob":"migrate-pause","id":"oob"}');
    assert.deepEqual(
      h.upstream.map((m) => [m["exec-oob"] ?? m.execute, m.id]),
      [
        ["query-name", `${PROXY_ID_PREFIX}1`],
        ["migrate-pause", `${PROXY_ID_PREFIX}2`],
      ],
    );
    // Its reply overtakes the in-band ones, with the client's id.
    const desc = "migrate-pause is currently only supported during postcopy-active state";
    h.core.upstreamMessage({
      id: `${PROXY_ID_PREFIX}2`,
      error: { class: "GenericError", desc },
    });
    assert.deepEqual(a.received, [{ id: "oob", error: { class: "GenericError", desc } }]);
    h.core.upstreamMessage({ return: { name: "vm" }, id: `${PROXY_ID_PREFIX}1` });
    h.answer({ return: { status: "running" } });
    assert.deepEqual(a.received.slice(1), [
      { return: { name: "vm" }, id: "n" },
      { return: { status: "running" }, id: "s" },
    ]);
    // A client that did not enable OOB gets QEMU's error for exec-oob, as before.
    b.write('{"exec-oob":"migrate-pause","id":3}');
    assert.deepEqual(b.received, [
      {
        id: 3,
        error: { class: "GenericError", desc: "QMP input member 'exec-oob' is unexpected" },
      },
    ]);
    assert.equal(h.upstream.length, 3);
  });

  test("should refuse exec-oob where QEMU does, without asking upstream", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting, { oob: true });
    const a = h.client();
    a.write('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
    a.received.length = 0;
    a.write('{"exec-oob":"qmp_capabilities","id":1}');
    a.write('{"exec-oob":"yank","execute":"query-status","id":2}');
    a.write('{"exec-oob":"yank","arguments":[]}');
    assert.deepEqual(a.received, [
      {
        id: 1,
        error: {
          class: "GenericError",
          desc: "The command qmp_capabilities does not support OOB",
        },
      },
      {
        id: 2,
        error: {
          class: "GenericError",
          desc: "QMP input member 'execute' clashes with 'exec-oob'",
        },
      },
      { error: { class: "GenericError", desc: "QMP input member 'arguments' must be an object" } },
    ]);
    assert.deepEqual(h.upstream, []);
  });

  test("should read input sent before the greeting once greeted, OOB negotiation included", () => {
    const h = harness();
    const a = h.client();
    a.write(
      '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}{"exec-oob":"query-yank","id":1}',
    );
    assert.deepEqual(a.received, []);
    h.core.upstreamConnected(upstreamGreeting, { oob: true });
    assert.deepEqual(a.received.slice(1), [{ return: {} }]);
    assert.deepEqual(h.upstream, [{ "exec-oob": "query-yank", id: `${PROXY_ID_PREFIX}1` }]);
    h.core.upstreamMessage({ return: [], id: `${PROXY_ID_PREFIX}1` });
    assert.deepEqual(a.received.at(-1), { return: [], id: 1 });
  });

  test("should fail an exec-oob in flight when the upstream goes, before the queued ones", () => {
    const h = harness();
    h.core.upstreamConnected(upstreamGreeting, { oob: true });
    const a = h.client();
    a.write('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
    a.write('{"execute":"stop","id":1}{"execute":"cont","id":2}{"exec-oob":"yank","id":3}');
    a.received.length = 0;
    h.core.upstreamLost("EOF");
    assert.deepEqual(
      a.received.map((m) => [m.id, (m.error as { desc: string }).desc.replace(/^.*\(EOF\)/, "")]),
      [
        [3, " before 'yank' was answered; it may or may not have run"],
        [1, " before 'stop' was answered; it may or may not have run"],
        [2, "; 'cont' was not sent"],
      ],
    );
    assert.ok(a.closed());
  });

  test("should keep up to maxInFlight commands upstream, round-robin, replies in each client's order", () => {
    const h = harness({ maxInFlight: 4 });
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    const b = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    b.write('{"execute":"qmp_capabilities"}');
    a.received.length = 0;
    b.received.length = 0;
    a.write('{"execute":"a1","id":1}{"execute":"qmp_capabilities","id":2}{"execute":"a3","id":3}');
    a.write('{"execute":"a4","id":4}{"execute":"a5","id":5}');
    b.write('{"execute":"b1","id":1}');
    // Sent without waiting, a's first ones before b wrote; qmp_capabilities stays here.
    assert.deepEqual(
      h.upstream.map((m) => m.execute),
      ["a1", "a3", "a4", "a5"],
    );
    assert.equal(a.received.length, 0, "the local answer waits for a1's reply");
    const ids = h.upstream.map((m) => m.id as JsonValue);
    h.core.upstreamMessage({ return: { n: 1 }, id: ids[0]! });
    // a1 answered: its reply, then the local one behind it; b1 takes the free place.
    assert.deepEqual(a.received, [
      { return: { n: 1 }, id: 1 },
      {
        id: 2,
        error: {
          class: "CommandNotFound",
          desc: "Capabilities negotiation is already complete, command ignored",
        },
      },
    ]);
    assert.equal(h.upstream.at(-1)!.execute, "b1");
    for (const [i, id] of [...ids.slice(1), h.upstream.at(-1)!.id as JsonValue].entries())
      h.core.upstreamMessage({ return: { n: i + 3 }, id });
    assert.deepEqual(
      a.received.slice(2).map((m) => m.id),
      [3, 4, 5],
    );
    assert.deepEqual(b.received, [{ return: { n: 6 }, id: 1 }]);
  });

  test("should fail every command sent when the upstream goes as of unknown outcome", () => {
    const h = harness({ maxInFlight: 2 });
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    a.received.length = 0;
    a.write('{"execute":"stop","id":1}{"execute":"cont","id":2}{"execute":"quit","id":3}');
    h.core.upstreamLost("EOF");
    assert.deepEqual(
      a.received.map((m) => [m.id, (m.error as { desc: string }).desc.replace(/^.*\(EOF\)/, "")]),
      [
        [1, " before 'stop' was answered; it may or may not have run"],
        [2, " before 'cont' was answered; it may or may not have run"],
        [3, "; 'quit' was not sent"],
      ],
    );
  });

  test("should pass the upstream's text on: events verbatim, replies with the client's id spliced in", () => {
    const h = harness({ maxInFlight: 4, text: true });
    h.core.upstreamConnected(upstreamGreeting);
    const a = h.client();
    a.write('{"execute":"qmp_capabilities"}');
    a.texts.length = 0;
    a.write('{"execute":"q1","id":{"b":1,"a":[2]}}{"execute":"q2"}{"execute":"q3","id":"x"}');
    a.write('{"execute":"q4"}{"execute":"q5","id":5}');
    const [q1, q2, q3, q4] = h.upstream.map((m) => m.id as string);
    // Text as QEMU writes it, parsed value beside it; ids printed as QEMU prints what it parsed
    // (QDict order), as the writer does without text. (as the transport hands both over).
    const fromQemu = (text: string) => h.core.upstreamMessage(JSON.parse(text) as JsonValue, text);
    fromQemu(`{"return": {"status": "running", "x": "\\u00E9"}, "id": "${q1}"}`);
    fromQemu(`{"return": {}, "id": "${q2}"}`);
    fromQemu(`{"id": "${q3}", "error": {"class": "GenericError", "desc": "no"}}`);
    fromQemu(`{"id": "${q4}", "error": {"class": "GenericError", "desc": "no"}}`);
    const event = '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}';
    fromQemu(event);
    assert.deepEqual(a.texts, [
      '{"return": {"status": "running", "x": "\\u00E9"}, "id": {"a": [2], "b": 1}}\r\n',
      '{"return": {}}\r\n',
      '{"id": "x", "error": {"class": "GenericError", "desc": "no"}}\r\n',
      '{"error": {"class": "GenericError", "desc": "no"}}\r\n',
      `${event}\r\n`,
    ]);
    // Text in another form (another writer, pretty): rebuilt from the parsed value instead.
    const q5 = h.upstream.at(-1)!.id as string;
    h.core.upstreamMessage({ id: q5, return: { ok: true } }, `{"id":"${q5}","return":{"ok":true}}`);
    assert.deepEqual(a.received.at(-1), { return: { ok: true }, id: 5 });
    assert.equal(a.texts.length, 5);
  });
});
