/**
 * `qmpkit proxy --record`: the real CLI in front of the simulator, two clients; every frame,
 * both directions, with QEMU and with each client, lands in the journal (secrets redacted), one
 * session per connection, with monotonic times.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { QmpClient } from "../../src/client/index.js";
import { type JournalFrame, Journal, REDACTED } from "../../src/journal/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { collect, spawnCli, waitForOutput } from "../cli/support.js";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-record-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `direction execute|event|return|error|QMP` of each frame. */
function summary(frames: readonly JournalFrame[]): string[] {
  return frames.map((f) => {
    const m = JSON.parse(f.text) as Record<string, unknown>;
    const what =
      typeof m.execute === "string"
        ? m.execute
        : typeof m.event === "string"
          ? m.event
          : (["return", "error", "QMP"].find((k) => k in m) ?? "?");
    return `${f.direction} ${what}`;
  });
}

suite("proxy --record", () => {
  test("should journal every frame of QEMU's session and of each client's", async () => {
    const upstream = join(dir, "vm1.qmp");
    const shared = join(dir, "shared.qmp");
    const journal = join(dir, "frames.db");
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${upstream}`);
    const proxy = spawnCli(["proxy", upstream, "--listen", `unix:${shared}`, "--record", journal]);
    const proxyDone = collect(proxy, { timeoutMs: 60_000 });
    try {
      await waitForOutput(proxy, (s) => s.includes("sharing"), 60_000, "stderr");
      const a = await QmpClient.connect(`unix:${shared}`, { trackRunState: false });
      const b = await QmpClient.connect(`unix:${shared}`, { trackRunState: false });
      await a.execute("query-name");
      await b.execute("stop");
      await assert.rejects(
        a.execute("set_password" as never, { protocol: "vnc", password: "hunter2" } as never),
        { name: "CommandError" },
      );
      await a.close();
      await b.close();
    } finally {
      proxy.kill("SIGTERM");
      const result = await proxyDone;
      await vm.close();
      assert.equal(result.status, 0, result.stderr);
    }
    const j = Journal.open(journal, { readonly: true });
    const frames: JournalFrame[] = [];
    for await (const f of j.frames()) frames.push(f);
    j.close();
    const of = (peer: string) => frames.filter((f) => f.peer === peer);
    // QEMU sends STOP before the reply to `stop`; the proxy passes each on in that order.
    assert.deepEqual(summary(of("qemu")), [
      "in QMP",
      "out qmp_capabilities",
      "in return",
      "out query-name",
      "in return",
      "out stop",
      "in STOP",
      "in return",
      "out set_password",
      "in error",
    ]);
    assert.deepEqual(summary(of("client#1")), [
      "out QMP",
      "in qmp_capabilities",
      "out return",
      "in query-name",
      "out return",
      "out STOP",
      "in set_password",
      "out error",
    ]);
    assert.deepEqual(summary(of("client#2")), [
      "out QMP",
      "in qmp_capabilities",
      "out return",
      "in stop",
      "out STOP",
      "out return",
    ]);
    // One session per peer connection, frames in monotonic order within each.
    for (const peer of ["qemu", "client#1", "client#2"]) {
      const own = of(peer);
      assert.equal(new Set(own.map((f) => f.session)).size, 1, peer);
      for (let i = 1; i < own.length; i++) assert.ok(own[i]!.monoNs >= own[i - 1]!.monoNs);
    }
    const secret = of("client#1").find((f) => f.text.includes("set_password"))!;
    assert.equal(JSON.parse(secret.text).arguments.password, REDACTED);
    for (const file of [journal, `${journal}-wal`]) {
      try {
        assert.doesNotMatch(readFileSync(file, "latin1"), /hunter2/);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
  });
});
