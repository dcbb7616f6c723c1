/**
 * The test support's nats-server (test/support/nats-server.ts) against the real server: it
 * starts with JetStream on a private file store, keeps a stream's messages across `kill -9` and
 * restart on the same port, drops a resent message by its `Nats-Msg-Id`, and leaves nothing
 * behind.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { suite, test } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsServerTest, startNatsServer } from "../support/nats-server.js";

suite("test support: nats-server", natsServerTest(), () => {
  test("should keep a stream across kill -9 and restart, and de-duplicate by message id", async () => {
    const nats = await startNatsServer();
    try {
      let nc = await connect({ servers: nats.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "T", subjects: ["t.>"] });
      const js = jetstream(nc);
      assert.equal((await js.publish("t.a", "1", { msgID: "m1" })).duplicate, false);
      assert.equal((await js.publish("t.a", "1", { msgID: "m1" })).duplicate, true);
      await nc.close();
      const pid = nats.pid;
      await nats.kill();
      assert.equal(nats.running, false);
      await nats.restart();
      assert.notEqual(nats.pid, pid);
      nc = await connect({ servers: nats.url });
      const info = await (await jetstreamManager(nc)).streams.info("T");
      assert.equal(info.state.messages, 1);
      // Still inside the duplicate window after the restart: the id is remembered.
      assert.equal((await jetstream(nc).publish("t.a", "1", { msgID: "m1" })).duplicate, true);
      await nc.close();
    } finally {
      await nats.dispose();
    }
    assert.equal(existsSync(nats.dir), false);
  });
});
