import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { suite, test } from "node:test";
import { isConnectError, isTimeoutError, type TimeoutError } from "../base/errors.js";
import { Connection } from "./connection.js";
import type { JsonStreamItem } from "./json-stream.js";
import { createMemoryPair, joinStreams, listen, openStream, parseTarget } from "./transport.js";

function readAll(stream: Duplex): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    stream.setEncoding("utf8");
    stream.on("data", (s: string) => {
      text += s;
    });
    stream.on("end", () => resolve(text));
  });
}

suite("parseTarget()", () => {
  test("should parse unix and tcp targets, IPv6 in brackets", () => {
    assert.deepEqual(parseTarget("unix:/run/vm.qmp"), { kind: "unix", path: "/run/vm.qmp" });
    assert.deepEqual(parseTarget("tcp:localhost:4444"), {
      kind: "tcp",
      host: "localhost",
      port: 4444,
    });
    assert.deepEqual(parseTarget("tcp:[::1]:0"), { kind: "tcp", host: "::1", port: 0 });
  });

  test("should reject what names no endpoint, naming it", () => {
    for (const bad of [
      "",
      "unix:",
      "tcp:host",
      "tcp::80",
      "tcp:h:x",
      "tcp:h:70000",
      "/run/vm.qmp",
    ]) {
      assert.throws(
        () => parseTarget(bad),
        (e) => isConnectError(e) && e.target === bad && e.message.includes(JSON.stringify(bad)),
      );
    }
  });
});

suite("listen() and openStream()", () => {
  test("should connect over a unix socket and clean up the socket file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-wire-"));
    try {
      const path = join(dir, "qmp.sock");
      const listener = await listen(`unix:${path}`, (stream) => stream.end("hello\r\n"));
      assert.equal(listener.address, `unix:${path}`);
      const stream = await openStream(`unix:${path}`, { timeoutMs: 2_000 });
      assert.equal(await readAll(stream), "hello\r\n");
      await listener.close();
      await listener.close();
      assert.equal(existsSync(path), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should connect over TCP on a free port and destroy open connections on close", async () => {
    const listener = await listen("tcp:127.0.0.1:0", () => {});
    assert.match(listener.address, /^tcp:127\.0\.0\.1:\d+$/);
    const stream = await openStream(listener.address);
    const closed = once(stream, "close");
    await listener.close();
    await closed;
  });

  test("should fail with ConnectError when nothing listens", async () => {
    await assert.rejects(openStream("unix:/nonexistent/qmpkit.sock"), (e) => {
      return (
        isConnectError(e) && e.target === "unix:/nonexistent/qmpkit.sock" && e.cause !== undefined
      );
    });
  });

  test("should time out with a TimeoutError that says nothing was sent", async () => {
    const listener = await listen("tcp:127.0.0.1:0", () => {});
    try {
      // From the check phase, block past the deadline: the next loop iteration runs the due
      // timer before it polls for the connection's completion.
      await new Promise((resolve) => setImmediate(resolve));
      const attempt = openStream(listener.address, { timeoutMs: 1 });
      const until = Date.now() + 20;
      while (Date.now() < until) {
        // busy wait
      }
      await assert.rejects(attempt, (e) => {
        const t = e as TimeoutError;
        return isTimeoutError(e) && t.operation === "connect" && t.timeoutMs === 1 && !t.sent;
      });
    } finally {
      await listener.close();
    }
  });

  test("should reject with the signal's reason when aborted", async () => {
    const listener = await listen("tcp:127.0.0.1:0", () => {});
    try {
      const reason = new Error("stop");
      await assert.rejects(
        openStream(listener.address, { signal: AbortSignal.abort(reason) }),
        reason,
      );
      const controller = new AbortController();
      const attempt = openStream(listener.address, { signal: controller.signal });
      controller.abort(reason);
      await assert.rejects(attempt, reason);
    } finally {
      await listener.close();
    }
  });

  test("should pass a Duplex through as it is", async () => {
    const [a] = createMemoryPair();
    assert.equal(await openStream(a), a);
  });

  test("should refuse to listen where it cannot", async () => {
    await assert.rejects(
      listen("unix:/nonexistent/dir/x.sock", () => {}),
      (e) => isConnectError(e),
    );
  });
});

suite("createMemoryPair()", () => {
  test("should carry bytes both ways and end the peer on end or destroy", async () => {
    const [a, b] = createMemoryPair();
    const fromA = readAll(b);
    const fromB = readAll(a);
    a.write("ping");
    b.write(Buffer.from([0xc3]));
    b.end(Buffer.from([0xa9]));
    a.end();
    assert.equal(await fromA, "ping");
    assert.equal(await fromB, "\u00e9");
    const [c, d] = createMemoryPair();
    const ended = once(d, "end");
    d.resume();
    c.destroy();
    await ended;
  });
});

suite("joinStreams()", () => {
  test("should make one Duplex of a child's stdout and stdin", async () => {
    const child = spawn("cat", [], { stdio: ["pipe", "pipe", "ignore"] });
    try {
      const items: JsonStreamItem[] = [];
      const conn = new Connection(joinStreams(child.stdout, child.stdin), {
        dialect: "client",
        writer: "compact",
        onItem: (item) => {
          items.push(item);
          conn.close();
        },
      });
      conn.send({ execute: "query-status", id: 1 });
      assert.equal(await conn.closed, undefined);
      assert.deepEqual(
        items.map((i) => (i.kind === "value" ? i.value : i.error.desc)),
        [{ execute: "query-status", id: 1 }],
      );
    } finally {
      child.kill();
    }
  });
});
