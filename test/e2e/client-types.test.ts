/**
 * The client's typing through the generated maps. These checks run twice: the type assertions
 * fail `npm run typecheck` (a `@ts-expect-error` that stops being an error is itself an error),
 * and the values are checked at run time over a scripted peer.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { QmpClient, type QmpEvent } from "../../src/client/index.js";
import type { ShutdownCause, StatusInfo } from "../../src/generated/index.js";
import { createMemoryPair } from "../../src/wire/index.js";
import { FakePeer } from "./support/fake-peer.js";

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_: T): void {}

suite("QmpClient typing", () => {
  test("should type known commands and events from the schema, and fall back for others", async () => {
    const [near, far] = createMemoryPair();
    const peer = new FakePeer(far);
    const connecting = QmpClient.connect(near, { trackRunState: false });
    await peer.handshake({ status: false });
    const client = await connecting;
    try {
      const status = client.execute("query-status");
      expectType<Equal<typeof status, Promise<StatusInfo>>>(true);
      peer.reply(await peer.next(), { status: "running", singlestep: false, running: true });
      assert.equal((await status).status, "running");

      const other = client.execute("x-not-in-the-schema", { any: ["thing"] });
      expectType<Equal<typeof other, Promise<unknown>>>(true);
      peer.reply(await peer.next(), 42);
      assert.equal(await other, 42);

      // Arguments of a known command are checked, and required when the command has mandatory ones.
      // @ts-expect-error: device_del needs { id }
      const missing = client.execute("device_del").catch(() => undefined);
      // @ts-expect-error: 'panic' does not take 'explode'
      const wrong = client.execute("set-action", { panic: "explode" }).catch(() => undefined);
      for (const request of [await peer.next(), await peer.next()]) {
        peer.fail(request, "GenericError", "rejected by the peer");
      }
      await Promise.all([missing, wrong]);

      const stream = client.events({ names: ["SHUTDOWN", "STOP"] });
      peer.event("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
      const { value } = await stream.next();
      if (value?.event === "SHUTDOWN") {
        expectType<Equal<typeof value.data.reason, ShutdownCause>>(true);
        assert.equal(value.data.reason, "host-qmp-quit");
      } else {
        assert.fail(`expected SHUTDOWN, got ${JSON.stringify(value)}`);
      }
      stream.close();

      // `where` as an object takes the event's own members, typed.
      const deleted = client.executeAndWait(
        "device_del",
        { id: "nic0" },
        // @ts-expect-error: DEVICE_DELETED's device is a string
        { event: "DEVICE_DELETED", where: { device: 0 }, timeoutMs: 50 },
      );
      peer.reply(await peer.next());
      await assert.rejects(deleted, (e) => (e as Error).name === "TimeoutError");

      const waited = client.executeAndWait("system_powerdown", undefined, { event: "POWERDOWN" });
      expectType<Equal<Awaited<typeof waited>["event"], QmpEvent<"POWERDOWN">>>(true);
      peer.reply(await peer.next());
      peer.event("POWERDOWN");
      assert.equal((await waited).event.data, undefined);
    } finally {
      await client.close();
    }
  });
});
