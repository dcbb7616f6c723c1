/**
 * `qmpkit agent` as a process against a real nats-server and simulated VMs: every event reaches
 * the stream exactly once and in order, through a broker `kill -9` and through the agent's own
 * `kill -9` (resuming from its outbox, the stream dropping resends by `Nats-Msg-Id`); a gap in
 * watching is published as a gap.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import Database from "better-sqlite3";
import { SimulatedMachine } from "../../src/sim/index.js";
import { natsServerTest, startNatsServer } from "../support/nats-server.js";
import {
  type Agent,
  flood,
  readStream,
  startAgent,
  streamCount,
  tempRoot,
  trayIds,
  until,
} from "./support.js";

const temp = tempRoot("agent");
after(() => temp.dispose());

function waitingRows(dir: string): number {
  const db = new Database(join(dir, "agent.db"), { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare("SELECT count(*) AS n FROM outbox WHERE acked_us IS NULL").get() as { n: number }
    ).n;
  } finally {
    db.close();
  }
}

/** n0..n(count-1), as the flood numbers them. */
function numbered(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `n${i}`);
}

/** The per-VM sequences are 1, 2, 3, … in stream order: nothing lost, doubled or reordered. */
function assertSequences(messages: Awaited<ReturnType<typeof readStream>>): void {
  const last = new Map<string, number>();
  for (const m of messages) {
    const key = `${m.message.host}/${m.message.vm}`;
    const expected = (last.get(key) ?? 0) + 1;
    assert.equal(
      m.message.sequence,
      expected,
      `${key}: sequence ${m.message.sequence} at stream seq ${m.streamSeq}`,
    );
    assert.equal(m.msgId, m.message.id, "the Nats-Msg-Id is the envelope's id");
    last.set(key, expected);
  }
}

suite("qmpkit agent", natsServerTest(), () => {
  test("should publish every event exactly once, in order, through a broker kill -9", async () => {
    const nats = await startNatsServer();
    const dir = temp.dir();
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    const agent = startAgent(nats.url, dir);
    try {
      await agent.waitFor("watching h1/vm1", "connected to NATS");
      const events = flood(vm, 5);
      await until("events in the stream", async () => (await streamCount(nats.url)) > 300);
      await nats.kill();
      // The agent keeps watching; the events wait in its outbox.
      const atKill = events.count;
      await until("events flooding while the broker is down", () => events.count > atKill + 500);
      await until("messages waiting in the outbox", () => waitingRows(dir) > 0);
      await nats.restart();
      await until("more events after the restart", () => events.count > atKill + 1500);
      const total = await events.stop();
      await until("the outbox emptied", () => waitingRows(dir) === 0);
      const stored = await readStream(nats.url);
      assert.deepEqual(trayIds(stored), numbered(total));
      assertSequences(stored);
      const kinds = stored.map((m) => m.message.kind);
      assert.equal(kinds.filter((k) => k === "event").length, total);
      const first = stored[0]!.message;
      assert.equal(first.kind, "watch");
      assert.deepEqual(first.kind === "watch" && first.notice.kind, "connected");
      assert.equal(stored[0]!.subject, "qmp.h1.vm1.watch");
      assert.equal(
        stored.find((m) => m.message.kind === "event")!.subject,
        "qmp.h1.vm1.event.DEVICE_TRAY_MOVED",
      );
      process.stderr.write(
        `broker kill -9: ${total} events, ${stored.length} messages in the stream, exactly once\n`,
      );
    } finally {
      const result = await agent.stop();
      assert.equal(result.status, 0, agent.log());
      assert.match(agent.log(), /lost the NATS connection/);
      await vm.close();
      await nats.dispose();
    }
  });

  test("should resume from its outbox after kill -9 without a duplicate, and publish the gap", async () => {
    const nats = await startNatsServer();
    const dir = temp.dir();
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    let agent: Agent | undefined = startAgent(nats.url, dir);
    await agent.waitFor("connected to NATS", "watching h1/vm1");
    const events = flood(vm, 5);
    try {
      await until("events in the stream", async () => (await streamCount(nats.url)) > 500);
      // Stop the broker too, so that the outbox holds unpublished messages when the agent dies.
      await nats.kill();
      await until("messages waiting in the outbox", () => waitingRows(dir) > 200);
      const killed = await agent.stop("SIGKILL");
      agent = undefined;
      assert.equal(killed.signal, "SIGKILL");
      const left = waitingRows(dir);
      assert.ok(left > 0);
      await nats.restart();
      agent = startAgent(nats.url, dir);
      await agent.waitFor("wait in the outbox", "watching h1/vm1");
      const resumedAt = events.count;
      await until("more events after the restart", () => events.count > resumedAt + 500);
      const total = await events.stop();
      await until("the outbox emptied", () => waitingRows(dir) === 0);
      const stored = await readStream(nats.url);
      assertSequences(stored);
      const ids = trayIds(stored);
      // Exactly once and in order: what the stream has is n0..nK, then (after the gap) nM..n(total-1).
      assert.equal(new Set(ids).size, ids.length, "no event twice");
      const numbers = ids.map((id) => Number(id.slice(1)));
      const breaks = numbers.flatMap((n, i) => (i > 0 && n !== numbers[i - 1]! + 1 ? [i] : []));
      assert.ok(breaks.length <= 1, `one gap at most: ${breaks.length}`);
      assert.equal(numbers[0], 0);
      assert.equal(numbers[numbers.length - 1], total - 1);
      // The gap is published where it is, with the agent's restart named.
      const gapAt = stored.findIndex(
        (m) =>
          m.message.kind === "watch" &&
          m.message.notice.kind === "reconnected" &&
          m.message.notice.agent === "restarted",
      );
      assert.ok(gapAt > 0, "a reconnected notice for the agent's restart");
      if (breaks.length === 1) {
        const before = stored.slice(0, gapAt).filter((m) => m.message.kind === "event").length;
        assert.equal(before, breaks[0], "the gap notice sits where events are missing");
      }
      process.stderr.write(
        `agent kill -9: ${left} message(s) resumed from the outbox, ${ids.length} of ${total} events in the stream once each, ${total - ids.length} in the gap\n`,
      );
    } finally {
      await events.stop();
      if (agent) {
        const result = await agent.stop();
        assert.equal(result.status, 0, agent.log());
      }
      await vm.close();
      await nats.dispose();
    }
  });
});
