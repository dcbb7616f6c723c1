/**
 * Client-side fault tests over real unix sockets, against a raw peer that misbehaves on purpose:
 * it dies mid-command, closes during the greeting, stops in the middle of a message, sends a
 * 10 MB reply, or floods 100,000 events. Every call must settle, nothing may hang or leak, and
 * no rejection may go unhandled (node:test fails the test on an unhandled rejection).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { isConnectError, isConnectionClosedError, isProtocolError } from "../../src/base/errors.js";
import { type ClientNotice, QmpClient } from "../../src/client/index.js";
import { FakePeer } from "./support/fake-peer.js";

/** How many timers are alive in this process. */
function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

/** A unix-socket server whose connections are handed to the test as fake peers. */
async function rawServer() {
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-fault-"));
  const path = join(dir, "qmp.sock");
  const peers: FakePeer[] = [];
  const sockets = new Set<Socket>();
  const waiters: Array<() => void> = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    peers.push(new FakePeer(socket));
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    target: `unix:${path}`,
    /** The next connection's peer. */
    async peer(index: number): Promise<FakePeer> {
      while (peers.length <= index) await new Promise<void>((r) => waiters.push(r));
      return peers[index]!;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

suite("QmpClient faults", () => {
  test("should fail the pending command when the peer dies mid-command", async () => {
    const srv = await rawServer();
    try {
      const connecting = QmpClient.connect(srv.target);
      const peer = await srv.peer(0);
      await peer.handshake({ status: "running" });
      const client = await connecting;
      const timersBefore = activeTimers();
      const call = client.execute("query-block", undefined, { timeoutMs: 60_000 });
      const waiting = client.executeAndWait("stop", undefined, {
        event: "STOP",
        timeoutMs: 60_000,
      });
      await peer.next();
      await peer.next();
      assert.equal(activeTimers(), timersBefore + 2);
      peer.destroy();
      await assert.rejects(waiting, isConnectionClosedError);
      await assert.rejects(call, (e) => {
        assert.ok(isConnectionClosedError(e));
        assert.equal(e.sent, true);
        assert.equal(e.command, "query-block");
        return true;
      });
      assert.ok(isConnectionClosedError(await client.closed));
      assert.equal(client.state, "closed");
      assert.equal(activeTimers(), timersBefore, "every timer was cleared");
    } finally {
      await srv.close();
    }
  });

  test("should fail connect with ConnectError naming the target when nothing listens", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-fault-"));
    try {
      const target = `unix:${join(dir, "absent.sock")}`;
      await assert.rejects(QmpClient.connect(target), (e) => {
        assert.ok(isConnectError(e));
        assert.equal(e.target, target);
        assert.match(e.message, /absent\.sock/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should fail connect with ConnectError when the peer closes during the greeting", async () => {
    const srv = await rawServer();
    try {
      const connecting = QmpClient.connect(srv.target);
      const peer = await srv.peer(0);
      peer.write('{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "ma');
      peer.end();
      await assert.rejects(connecting, (e) => {
        assert.ok(isConnectError(e));
        assert.match(e.message, /closed the connection during the greeting/);
        return true;
      });
    } finally {
      await srv.close();
    }
  });

  test("should end with a ProtocolError when the peer sends half a message then closes", async () => {
    const srv = await rawServer();
    try {
      const connecting = QmpClient.connect(srv.target, { trackRunState: false });
      const peer = await srv.peer(0);
      await peer.handshake({ status: false });
      const client = await connecting;
      const stream = client.events();
      const call = client.execute("query-status");
      const request = await peer.next();
      peer.write(`{"return": {"status": "running", "singlestep": false, "running": tr`);
      peer.end();
      await assert.rejects(call, (e) => {
        assert.ok(isConnectionClosedError(e));
        assert.equal(e.sent, true);
        assert.ok(isProtocolError(e.cause), "the cause says a message was cut off");
        return true;
      });
      const reason = await client.closed;
      assert.ok(isProtocolError(reason));
      assert.match(reason.message, /in the middle of a message/);
      assert.deepEqual(await stream.next(), { value: undefined, done: true });
      assert.equal(request.execute, "query-status");
    } finally {
      await srv.close();
    }
  });

  test("should receive a 10 MB reply whole", async () => {
    const srv = await rawServer();
    try {
      const connecting = QmpClient.connect(srv.target, { trackRunState: false });
      const peer = await srv.peer(0);
      await peer.handshake({ status: false });
      const client = await connecting;
      try {
        const call = client.execute("x-big");
        const request = await peer.next();
        const big = "x".repeat(10 * 1024 * 1024);
        peer.write(
          `{"return": {"blob": "${big}", "n": 1}, "id": ${JSON.stringify(request.id)}}\r\n`,
        );
        const result = (await call) as { blob: string; n: number };
        assert.equal(result.blob.length, big.length);
        assert.equal(result.n, 1);
        // The connection is still usable afterwards.
        const next = client.execute("query-name");
        peer.reply(await peer.next(), {});
        assert.deepEqual(await next, {});
      } finally {
        await client.close();
      }
    } finally {
      await srv.close();
    }
  });

  test("should refuse a reply over maxMessageBytes without hanging the caller past its timeout", async () => {
    const srv = await rawServer();
    try {
      const notices: ClientNotice[] = [];
      const connecting = QmpClient.connect(srv.target, {
        trackRunState: false,
        maxMessageBytes: 1024 * 1024,
        onNotice: (n) => notices.push(n),
      });
      const peer = await srv.peer(0);
      await peer.handshake({ status: false });
      const client = await connecting;
      try {
        const call = client.execute("x-big", undefined, { timeoutMs: 2_000 });
        const request = await peer.next();
        peer.write(
          `{"return": "${"y".repeat(2 * 1024 * 1024)}", "id": ${JSON.stringify(request.id)}}\r\n`,
        );
        await assert.rejects(call);
        assert.ok(
          notices.some((n) => n.kind === "protocol-error"),
          "the oversized message was reported",
        );
        // The stream recovered at the next message (§1.8).
        const next = client.execute("query-name");
        peer.reply(await peer.next(), { name: "after" });
        assert.deepEqual(await next, { name: "after" });
      } finally {
        await client.close();
      }
    } finally {
      await srv.close();
    }
  });

  test("should take a burst of 100000 events with bounded memory and stay responsive", async () => {
    const srv = await rawServer();
    try {
      const notices: ClientNotice[] = [];
      const connecting = QmpClient.connect(srv.target, {
        historySize: 100,
        onNotice: (n) => notices.push(n),
      });
      const peer = await srv.peer(0);
      await peer.handshake({ status: "running" });
      const client = await connecting;
      try {
        const slow = client.events({ maxQueue: 500 }); // never read during the burst
        const strict = client.events({ maxQueue: 500, overflow: "error" });
        let counted = 0;
        client.on("BURST", () => counted++);
        const total = 100_000;
        const batch: string[] = [];
        for (let i = 0; i < total; i++) {
          batch.push(
            `{"timestamp": {"seconds": 1700000000, "microseconds": ${i % 1_000_000}}, "event": "BURST", "data": {"n": ${i}}}\r\n`,
          );
          if (batch.length === 10_000) {
            peer.write(batch.join(""));
            batch.length = 0;
          }
        }
        const call = client.execute("query-name");
        peer.reply(await peer.next(20_000), { name: "vm" });
        assert.deepEqual(await call, { name: "vm" });
        assert.equal(counted, total);
        assert.equal(slow.queued, 500);
        assert.equal(slow.dropped, total - 500);
        assert.equal(client.history.length, 100);
        assert.deepEqual(client.history.at(-1)?.data, { n: total - 1 });
        assert.equal(client.runState, "running", "BURST does not touch the run state");
        // The strict stream failed after its 500 queued events.
        let read = 0;
        await assert.rejects(
          (async () => {
            for await (const _ of strict) read++;
          })(),
          (e) => (e as Error).name === "EventOverflowError",
        );
        assert.equal(read, 500);
        const dropReports = notices.filter((n) => n.kind === "events-dropped");
        assert.equal(dropReports.length, 2, "one report per overflowing stream");
      } finally {
        await client.close();
      }
    } finally {
      await srv.close();
    }
  });
});
