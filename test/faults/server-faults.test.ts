/**
 * QmpServer under hostile or broken peers: a client that leaves mid-request, half a message then
 * EOF, a 10 MB request, 100,000 requests in one burst, a reader that does not read. Nothing may
 * leak (sessions, sockets, timers), hang, or escape as an unhandled error.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, suite, test } from "node:test";
import { createDeferred } from "../../src/base/deferred.js";
import { noArguments, QmpServer } from "../../src/server/index.js";

let dir = "";
let n = 0;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

before(() => {
  dir = mkdtempSync(join(tmpdir(), "qmpkit-faults-"));
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUnhandled);
});
after(() => {
  process.off("unhandledRejection", onUnhandled);
  process.off("uncaughtException", onUnhandled);
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  unhandled.length = 0;
});
afterEach(() => {
  assert.deepEqual(unhandled, [], "no unhandled rejection or exception");
});

/** Sockets and pipes the process holds (`process.getActiveResourcesInfo`). */
function handles(): number {
  return process
    .getActiveResourcesInfo()
    .filter((r) => r === "PipeWrap" || r === "TCPSocketWrap" || r === "Timeout").length;
}

async function settle(ms = 50): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function start() {
  const reported: unknown[] = [];
  const server = new QmpServer({ onHandlerError: (e) => reported.push(e) });
  server.command("query-name", () => ({}), { args: noArguments });
  const path = join(dir, `f${n++}.sock`);
  await server.listen(`unix:${path}`);
  return { server, path, reported };
}

/** A raw client socket that counts the lines it receives. */
async function open(
  path: string,
): Promise<{ socket: Socket; text: () => string; lines: () => number }> {
  const socket = connect(path);
  let text = "";
  let count = 0;
  socket.setEncoding("latin1");
  socket.on("data", (s: string) => {
    text += s;
    for (let i = s.indexOf("\n"); i >= 0; i = s.indexOf("\n", i + 1)) count++;
  });
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, text: () => text, lines: () => count };
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(5);
  }
}

suite("QmpServer faults", () => {
  test("should survive a client that closes while its command runs, and leak nothing", async () => {
    await settle(100);
    const before = handles();
    const { server, path, reported } = await start();
    const gate = createDeferred<void>();
    let started = 0;
    server.command("slow", async () => {
      started++;
      await gate.promise;
      return { big: "x".repeat(100_000) };
    });
    const c = await open(path);
    c.socket.write(
      '{"execute":"qmp_capabilities"}{"execute":"slow","id":1}{"execute":"slow","id":2}',
    );
    await until("the command to start", () => started === 1);
    c.socket.destroy();
    await settle();
    gate.resolve();
    await until("the session to close", () => server.clients.length === 0);
    assert.equal(started, 1, "the queued request was dropped with the connection");
    assert.deepEqual(reported, []);
    // The server still serves.
    const d = await open(path);
    d.socket.write('{"execute":"qmp_capabilities"}{"execute":"query-name","id":"ok"}');
    await until("the reply", () => d.text().includes('"id": "ok"'));
    d.socket.destroy();
    await server.close();
    await settle();
    assert.ok(handles() <= before, `${handles()} handles open, ${before} before`);
  });

  test("should drop half a message when the peer closes, without replying or failing", async () => {
    const { server, path } = await start();
    const c = await open(path);
    c.socket.end('{"execute":"qmp_capabilities"}{"execute":"query-name","id":"cut');
    await new Promise<void>((r) => c.socket.once("close", () => r()));
    // The greeting and the negotiation reply, nothing for the cut message.
    assert.equal(c.lines(), 2);
    assert.equal(server.clients.length, 0);
    await server.close();
  });

  test("should survive a client that closes during the greeting", async () => {
    const { server, path } = await start();
    for (let i = 0; i < 20; i++) {
      const socket = connect(path);
      socket.on("error", () => {});
      socket.once("connect", () => socket.destroy());
    }
    await settle(100);
    await until(
      "all sessions to close",
      () => server.clients.length === 0 && server.waitingClients === 0,
    );
    const d = await open(path);
    await until("a greeting", () => d.lines() === 1);
    d.socket.destroy();
    await server.close();
  });

  test("should answer a 10 MB request, echoing its 10 MB id", async () => {
    const { server, path } = await start();
    const c = await open(path);
    const id = "q".repeat(10 * 1024 * 1024);
    c.socket.write('{"execute":"qmp_capabilities"}');
    c.socket.write(`{"execute":"query-name","id":"${id}"}{"execute":"query-name","id":"after"}`);
    await until("both replies", () => c.text().includes('"id": "after"'), 30_000);
    const text = c.text();
    assert.ok(text.includes(`{"return": {}, "id": "${id}"}\r\n`));
    c.socket.destroy();
    await server.close();
  });

  test("should reject a message over the size limit and recover at the next one", async () => {
    const server = new QmpServer({ maxMessageBytes: 1024 });
    server.command("query-name", () => ({}), { args: noArguments });
    const path = join(dir, `f${n++}.sock`);
    await server.listen(`unix:${path}`);
    const c = await open(path);
    c.socket.write(
      `{"execute":"qmp_capabilities"}{"execute":"query-name","id":"${"z".repeat(4096)}"}`,
    );
    // QEMU's lexer cuts the oversized token and lexes on from there; a 0xFF byte resets it, as
    // the QMP spec tells clients to do.
    c.socket.write(Buffer.from([0xff]));
    c.socket.write('{"execute":"query-name","id":2}');
    await until("the reply after the oversized message", () => c.text().includes('"id": 2'));
    assert.match(c.text(), /JSON token size limit exceeded/);
    c.socket.destroy();
    await server.close();
  });

  test("should answer 100,000 pipelined requests, in order", async () => {
    const { server, path } = await start();
    const c = await open(path);
    const count = 100_000;
    const parts = ['{"execute":"qmp_capabilities"}'];
    for (let i = 0; i < count; i++) parts.push(`{"execute":"query-name","id":${i}}`);
    c.socket.write(parts.join(""));
    await until("every reply", () => c.lines() === count + 2, 60_000);
    const replies = c.text().split("\r\n").slice(2, -1);
    assert.equal(replies.length, count);
    assert.equal(replies[0], '{"return": {}, "id": 0}');
    assert.equal(replies[count - 1], `{"return": {}, "id": ${count - 1}}`);
    assert.ok(replies.every((r, i) => r === `{"return": {}, "id": ${i}}`));
    c.socket.destroy();
    await server.close();
  });

  test("should stop reading from a client that does not read its replies, and catch up when it does", async () => {
    let outBytes = 0;
    const server = new QmpServer({
      onTraffic: (direction, text) => {
        if (direction === "out") outBytes += text.length;
      },
    });
    server.command("query-name", () => ({}), { args: noArguments });
    const path = join(dir, `f${n++}.sock`);
    await server.listen(`unix:${path}`);
    const c = await open(path);
    c.socket.pause();
    const count = 50_000;
    const pad = "p".repeat(40);
    const parts = ['{"execute":"qmp_capabilities"}'];
    for (let i = 0; i < count; i++) parts.push(`{"execute":"query-name","id":"${pad}${i}"}`);
    c.socket.write(parts.join(""));
    await settle(500);
    // All the replies would be about 3.6 MB. The server must stop taking requests once its
    // output backs up, instead of queueing every reply in memory: what it wrote is bounded by
    // the socket buffers.
    const allReplies = count * `{"return": {}, "id": "${pad}${count}"}\r\n`.length;
    assert.ok(
      outBytes < allReplies / 8,
      `wrote ${outBytes} of ${allReplies} bytes to a paused reader`,
    );
    assert.equal(c.lines(), 0);
    c.socket.resume();
    await until("every reply", () => c.lines() === count + 2, 60_000);
    assert.ok(c.text().endsWith(`"id": "${pad}${count - 1}"}\r\n`));
    c.socket.destroy();
    await server.close();
  });

  test("should not throw on any byte the peer sends", async () => {
    const { server, path } = await start();
    const c = await open(path);
    const junk = Buffer.alloc(64 * 1024);
    let seed = 12345;
    for (let i = 0; i < junk.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      junk[i] = seed >>> 24;
    }
    c.socket.write('{"execute":"qmp_capabilities"}');
    c.socket.write(junk);
    c.socket.write(Buffer.from([0xff]));
    c.socket.write('{"execute":"query-name","id":"alive"}');
    await until("the reply after the junk", () => c.text().includes('"id": "alive"'), 30_000);
    c.socket.destroy();
    await server.close();
  });

  test("should close every client and listener on close(), and be idempotent", async () => {
    await settle(100);
    const before = handles();
    const { server, path } = await start();
    const a = await open(path);
    const b = await open(path);
    const gone = Promise.all(
      [a, b].map((x) => new Promise<void>((r) => x.socket.once("close", () => r()))),
    );
    await settle();
    await Promise.all([server.close(), server.close()]);
    await gone;
    await settle();
    assert.ok(handles() <= before, `${handles()} handles open, ${before} before`);
    assert.equal(server.clients.length, 0);
    assert.equal(server.waitingClients, 0);
  });
});
