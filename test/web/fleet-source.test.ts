/**
 * The dashboard's fleet source against a real nats-server: what a fleet agent publishes (stream
 * QMP) lands in the dashboard's journal under its host, the VM table shows it, a source started
 * again on the same journal goes on after the last message it journalled (nothing twice,
 * nothing missed: exact counts), and actions on fleet VMs are refused with the reason.
 */
import assert from "node:assert/strict";
import { after, before, suite, test } from "node:test";
import { FleetAgent } from "../../src/fleet/index.js";
import { Journal, type JournalEntry } from "../../src/journal/index.js";
import { ActionError, FleetSource, LiveFeed } from "../../src/web/index.js";
import { streamCount } from "../fleet/support.js";
import { type NatsServer, natsServerTest, startNatsServer } from "../support/nats-server.js";
import { tempDir, waitFor } from "./support.js";

const ts = (seconds: number) => ({ seconds, microseconds: 0 });

suite("dashboard: the fleet source", natsServerTest(), () => {
  const dir = tempDir("qmpkit-fleet-source-");
  let nats: NatsServer;
  let agentJournal: Journal;
  let agent: FleetAgent;

  before(async () => {
    nats = await startNatsServer();
    agentJournal = Journal.open(`${dir.path}/agent.db`);
    agent = new FleetAgent({ host: "web1", nats: { servers: nats.url }, journal: agentJournal });
    agent.start();
  });

  after(async () => {
    await agent?.close();
    agentJournal?.close();
    await nats?.dispose();
    dir.remove();
  });

  async function entries(journal: Journal): Promise<JournalEntry[]> {
    const out: JournalEntry[] = [];
    for await (const e of journal.entries()) out.push(e);
    return out;
  }

  /** Runs a source on `journal` until it journalled `count` rows in all. */
  async function consume(journal: Journal, count: number): Promise<FleetSource> {
    const warnings: string[] = [];
    const source = new FleetSource({
      nats: { servers: nats.url },
      journal,
      onWarning: (line) => warnings.push(line),
    });
    const controller = new AbortController();
    const done = source.run(controller.signal);
    try {
      await waitFor(`${count} rows in the dashboard's journal`, () => {
        journal.flush();
        return journal.lastId() >= count;
      });
    } finally {
      controller.abort();
      assert.equal(await done, 0, warnings.join("\n"));
    }
    return source;
  }

  test("should journal the fleet's messages under their hosts and resume after the last one", async () => {
    agent.notice("vm1", {
      kind: "connected",
      address: "unix:/run/vm1.qmp",
      qemu: "10.0.2",
      state: "running",
    });
    agent.event("vm1", { event: "GUEST_PANICKED", data: { action: "pause" }, timestamp: ts(100) });
    agent.event("vm1", { event: "STOP", timestamp: ts(100) });
    agent.state("vm1", { from: "running", to: "guest-panicked", cause: "STOP", atMs: 100_000 });
    await waitFor("4 messages in the stream", async () => (await streamCount(nats.url)) === 4);

    const journal = Journal.open(`${dir.path}/dashboard.db`, { restartGaps: false });
    const feed = await LiveFeed.open(journal);
    await consume(journal, 4);
    const first = await entries(journal);
    assert.deepEqual(
      first.map((e) => [e.host, e.vm, e.kind]),
      [
        ["web1", "vm1", "watch"],
        ["web1", "vm1", "event"],
        ["web1", "vm1", "event"],
        ["web1", "vm1", "state"],
      ],
    );
    const row = feed.table.rows.get("web1/vm1");
    assert.equal(row?.state, "guest-panicked");
    assert.equal(row?.qemu, "10.0.2");
    assert.equal(row?.connection, "connected");

    // Two more while no dashboard reads; a new source on the same journal goes on from there.
    agent.event("vm1", { event: "RESUME", timestamp: ts(200) });
    agent.state("vm1", { from: "guest-panicked", to: "running", cause: "RESUME", atMs: 200_000 });
    await waitFor("6 messages in the stream", async () => (await streamCount(nats.url)) === 6);
    await consume(journal, 6);
    const all = await entries(journal);
    assert.equal(all.length, 6);
    assert.deepEqual(all.slice(0, 4), first);
    assert.deepEqual(
      all.slice(4).map((e) => (e.kind === "event" ? e.event.event : e.kind)),
      ["RESUME", "state"],
    );
    assert.equal(feed.table.rows.get("web1/vm1")?.state, "running");
    feed.close();
    journal.close();
  });

  test("should refuse actions on fleet VMs and say why", async () => {
    const journal = Journal.open(":memory:");
    const source = new FleetSource({ nats: { servers: nats.url }, journal });
    await assert.rejects(source.actions.execute({ host: "web1", name: "vm1" }, "stop"), (e) => {
      assert.ok(e instanceof ActionError);
      assert.equal(e.status, 403);
      assert.match(
        e.message,
        /stop on web1\/vm1 refused: actions on fleet VMs go through their agent/,
      );
      return true;
    });
    journal.close();
  });
});
