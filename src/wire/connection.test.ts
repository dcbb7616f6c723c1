import assert from "node:assert/strict";
import { once } from "node:events";
import type { Duplex } from "node:stream";
import { suite, test } from "node:test";
import { isProtocolError, isStateError } from "../base/errors.js";
import type { JsonValue } from "../base/json.js";
import { Connection, type ConnectionOptions } from "./connection.js";
import type { JsonStreamItem } from "./json-stream.js";
import { createMemoryPair } from "./transport.js";

/** Collects everything that arrives on a raw stream. */
function collect(stream: Duplex): () => string {
  let text = "";
  stream.setEncoding("utf8");
  stream.on("data", (s: string) => {
    text += s;
  });
  return () => text;
}

/** Waits until `ready()` holds (polling), failing after two seconds. */
async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function shown(items: JsonStreamItem[]): (JsonValue | string)[] {
  return items.map((i) => (i.kind === "value" ? i.value : `error: ${i.error.desc}`));
}

function connection(stream: Duplex, options: Partial<ConnectionOptions> = {}) {
  const items: JsonStreamItem[] = [];
  const conn = new Connection(stream, {
    dialect: "qemu",
    writer: "qemu",
    onItem: (item) => items.push(item),
    ...options,
  });
  return { conn, items };
}

suite("Connection", () => {
  test("should decode what arrives and write QEMU's form with \\r\\n", async () => {
    const [a, b] = createMemoryPair();
    const { conn, items } = connection(a);
    const raw = collect(b);
    b.write('{"execute": "query-status", "id": 1}{"exec');
    b.write('ute": @}\r\n');
    conn.send({ return: { status: "paused", running: false }, id: 1 });
    await until(() => items.length >= 3 && raw() !== "", "three items and the reply");
    assert.deepEqual(shown(items), [
      { execute: "query-status", id: 1 },
      "error: JSON parse error, stray '@'",
      "error: JSON parse error, expecting value",
    ]);
    assert.equal(raw(), '{"return": {"status": "paused", "running": false}, "id": 1}\r\n');
    conn.close();
    assert.equal(await conn.closed, undefined);
  });

  test("should write compact JSON with \\n, and pretty QEMU JSON with \\r\\n line ends", async () => {
    const [a, b] = createMemoryPair();
    const raw = collect(b);
    const { conn } = connection(a, { dialect: "client", writer: "compact" });
    conn.send({ execute: "x", arguments: { big: 18446744073709551615n } });
    const [c, d] = createMemoryPair();
    const rawPretty = collect(d);
    const { conn: pretty } = connection(c, { pretty: true });
    pretty.send({ return: {} });
    await until(() => raw() !== "" && rawPretty() !== "", "both writes");
    assert.equal(raw(), '{"execute":"x","arguments":{"big":18446744073709551615}}\n');
    assert.equal(rawPretty(), '{\r\n    "return": {\r\n    }\r\n}\r\n');
    conn.close();
    pretty.close();
  });

  test("should hold back items after pause(), even from the same chunk, until resume()", async () => {
    const [a, b] = createMemoryPair();
    const seen: JsonValue[] = [];
    const conn: Connection = new Connection(a, {
      dialect: "qemu",
      writer: "qemu",
      onItem: (item) => {
        if (item.kind !== "value") return;
        seen.push(item.value);
        conn.pause(); // one request at a time, as QEMU's monitor
      },
    });
    b.write("1 2 3 ");
    await until(() => seen.length > 0, "the first item");
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, [1]);
    conn.resume();
    assert.deepEqual(seen, [1, 2]);
    conn.resume();
    conn.resume();
    assert.deepEqual(seen, [1, 2, 3]);
    conn.close();
  });

  test("should answer what was received before the peer hung up, even while paused", async () => {
    const [a, b] = createMemoryPair();
    const seen: JsonValue[] = [];
    const conn: Connection = new Connection(a, {
      dialect: "qemu",
      writer: "qemu",
      onItem: (item) => {
        if (item.kind === "value") seen.push(item.value);
        conn.pause();
      },
    });
    b.end("[1] [2] ");
    await until(() => seen.length > 0, "the first item");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(conn.isClosed, false);
    conn.resume();
    assert.deepEqual(seen, [[1], [2]]);
    conn.resume();
    assert.equal(await conn.closed, undefined);
    assert.equal(conn.isClosed, true);
  });

  test("should be closed idempotently, first cause kept, and refuse to send afterwards", async () => {
    const [a] = createMemoryPair();
    const { conn } = connection(a);
    const first = new Error("first");
    conn.close(first);
    conn.close(new Error("second"));
    conn.close();
    assert.equal(conn.isClosed, true);
    assert.equal(await conn.closed, first);
    assert.throws(
      () => conn.send({}),
      (e) => isStateError(e),
    );
  });

  test("should report a peer that hangs up in the middle of a message", async () => {
    const [a, b] = createMemoryPair();
    const { conn, items } = connection(a, { dialect: "client", writer: "compact" });
    b.write('{"return": {}}\r\n{"return": {"x"');
    b.end();
    const cause = await conn.closed;
    assert.ok(isProtocolError(cause), String(cause));
    assert.match(String(cause?.message), /middle of a message \(\d+ bytes pending\)/);
    assert.deepEqual(shown(items), [{ return: {} }]);
  });

  test("should resolve closed with a stream error", async () => {
    const [a] = createMemoryPair();
    const { conn } = connection(a);
    const boom = new Error("boom");
    a.destroy(boom);
    assert.equal(await conn.closed, boom);
  });

  test("should flush what it sent before closing", async () => {
    const [a, b] = createMemoryPair();
    const raw = collect(b);
    const { conn } = connection(a);
    conn.send({ return: {} });
    conn.close();
    await once(b, "end");
    assert.equal(raw(), '{"return": {}}\r\n');
    assert.equal(await conn.closed, undefined);
  });

  test("should show the raw traffic both ways, UTF-8 split across chunks included", async () => {
    const [a, b] = createMemoryPair();
    const traffic: string[] = [];
    const { conn, items } = connection(a, {
      dialect: "client",
      writer: "compact",
      onTraffic: (direction, text) => traffic.push(`${direction}:${text}`),
    });
    const bytes = Buffer.from('{"s": "\u00e9"}\n');
    b.write(bytes.subarray(0, 8));
    await until(() => traffic.length === 1, "the first chunk");
    b.write(bytes.subarray(8));
    await until(() => traffic.length === 2, "the second chunk");
    conn.send({ ok: true });
    assert.deepEqual(traffic, ['in:{"s": "', 'in:\u00e9"}\n', 'out:{"ok":true}\n']);
    assert.deepEqual(shown(items), [{ s: "\u00e9" }]);
    conn.close();
  });

  test("should close with the error a throwing onItem raised, and go no further", async () => {
    const [a, b] = createMemoryPair();
    const boom = new Error("handler failed");
    const seen: JsonValue[] = [];
    const conn = new Connection(a, {
      dialect: "qemu",
      writer: "qemu",
      onItem: (item) => {
        if (item.kind === "value") seen.push(item.value);
        throw boom;
      },
    });
    b.write("1 2 3 ");
    assert.equal(await conn.closed, boom);
    assert.deepEqual(seen, [1]);
  });

  test("should settle closed for a stream that is already destroyed", async () => {
    const [a] = createMemoryPair();
    a.destroy();
    await once(a, "close");
    const { conn } = connection(a);
    assert.equal(await conn.closed, undefined);
    assert.equal(conn.isClosed, true);
  });
});
