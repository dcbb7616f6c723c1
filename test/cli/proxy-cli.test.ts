/**
 * `qmpkit proxy` through the real CLI, in front of the simulator and of a QMP server that is
 * made to go away with a command in flight.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { isCommandError } from "../../src/base/errors.js";
import { QmpClient } from "../../src/client/index.js";
import { QmpServer } from "../../src/server/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { RawQmp } from "../support/real-qemu.js";
import { collect, runCli, spawnCli, waitForOutput } from "./support.js";

suite("proxy command", () => {
  test("should let several tools share one simulated VM's only monitor", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-cli-"));
    const upstream = join(dir, "vm.qmp");
    const shared = join(dir, "shared.qmp");
    const vm = new SimulatedMachine({ startPaused: true, name: "shared" });
    await vm.listen(`unix:${upstream}`);
    const proxy = spawnCli(["proxy", upstream, "--listen", `unix:${shared}`]);
    const proxyDone = collect(proxy, { timeoutMs: 60_000 });
    const clients: QmpClient[] = [];
    try {
      await waitForOutput(proxy, (s) => s.includes("sharing"), 15_000, "stderr");
      // A watcher through the proxy, while other clients run commands through it.
      const watcher = spawnCli(["events", shared, "--json", "--count", "2"]);
      const watched = collect(watcher, { timeoutMs: 30_000 });
      await waitForOutput(watcher, (s) => s.includes('"watch":"connected"'));
      for (let i = 0; i < 3; i++)
        clients.push(await QmpClient.connect(`unix:${shared}`, { timeoutMs: 5_000 }));
      const names = await Promise.all(clients.map((c) => c.execute("query-name")));
      assert.deepEqual(names, [{ name: "shared" }, { name: "shared" }, { name: "shared" }]);
      const seen = clients.map((c) => c.events({ names: ["RESUME"] }));
      assert.equal((await runCli(["exec", shared, "cont"])).status, 0);
      for (const s of seen) assert.equal((await s.next()).value?.event, "RESUME");
      await clients[0]!.execute("stop");
      const w = await watched;
      assert.equal(w.status, 0, w.stderr);
      assert.deepEqual(
        w.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { event?: string; "run-state"?: { to: string } })
          .map((l) => l.event ?? l["run-state"]?.to)
          .filter((x) => x !== undefined),
        ["RESUME", "running", "STOP", "paused"],
      );
      assert.equal(vm.state, "paused");
    } finally {
      for (const c of clients) await c.close();
      proxy.kill("SIGINT");
      const r = await proxyDone;
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /client \d+ connected/);
      await vm.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should fail a command in flight when the upstream goes, and reconnect when it is back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-loss-"));
    const upstream = join(dir, "hang.qmp");
    const shared = join(dir, "shared.qmp");
    const hanging = () => {
      const server = new QmpServer();
      server.command("x-hang", () => new Promise(() => {}));
      server.command("query-name", () => ({ name: "back" }));
      return server;
    };
    let server = hanging();
    await server.listen(`unix:${upstream}`);
    // One command upstream at a time: query-name waits in the proxy behind x-hang.
    const proxy = spawnCli([
      "proxy",
      upstream,
      "--listen",
      `unix:${shared}`,
      "--max-in-flight",
      "1",
    ]);
    const proxyDone = collect(proxy, { timeoutMs: 60_000 });
    let client: QmpClient | undefined;
    try {
      await waitForOutput(proxy, (s) => s.includes("sharing"), 15_000, "stderr");
      client = await QmpClient.connect(`unix:${shared}`, {
        timeoutMs: 5_000,
        trackRunState: false,
      });
      const pending = client.execute("x-hang").then(
        () => assert.fail("x-hang cannot succeed"),
        (e: unknown) => e,
      );
      const queued = client.execute("query-name").then(
        () => assert.fail("query-name was queued behind x-hang"),
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 300));
      await server.close();
      const inFlight = await pending;
      assert.ok(isCommandError(inFlight), String(inFlight));
      assert.match(
        inFlight.desc,
        /^qmpkit proxy: lost the connection to unix:.*hang\.qmp .*before 'x-hang' was answered; it may or may not have run$/,
      );
      const notSent = await queued;
      assert.ok(isCommandError(notSent), String(notSent));
      assert.match(notSent.desc, /'query-name' was not sent$/);
      await client.closed;
      // While QEMU is away a client is greeted and told so, not left to time out.
      const early = await QmpClient.connect(`unix:${shared}`, {
        timeoutMs: 5_000,
        trackRunState: false,
      });
      const refused = await early.execute("query-name").then(
        () => assert.fail("query-name cannot run while the upstream is away"),
        (e: unknown) => e,
      );
      assert.ok(isCommandError(refused), String(refused));
      assert.match(refused.desc, /is not connected, lost .* ago; the proxy is reconnecting/);
      await early.close();
      server = hanging();
      await server.listen(`unix:${upstream}`);
      await waitForOutput(proxy, (s) => s.includes("is back after"), 15_000, "stderr");
      client = await QmpClient.connect(`unix:${shared}`, {
        timeoutMs: 5_000,
        trackRunState: false,
      });
      assert.deepEqual(await client.execute("query-name"), { name: "back" });
    } finally {
      await client?.close();
      proxy.kill("SIGINT");
      const done = await proxyDone;
      await server.close();
      // One line when the upstream went, one when it came back, none per failed attempt.
      assert.equal(done.stderr.match(/ lost: /g)?.length, 1, done.stderr);
      assert.equal(done.stderr.match(/is back after/g)?.length, 1, done.stderr);
      assert.doesNotMatch(done.stderr, /reconnecting to .* failed/);
      assert.match(done.stderr, /shutting down: closing \d+ clients? and the connection to /);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should offer OOB and answer exec-oob while an in-band command hangs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-oob-"));
    const upstream = join(dir, "oob.qmp");
    const shared = join(dir, "shared.qmp");
    const server = new QmpServer();
    server.command("x-hang", () => new Promise(() => {}));
    server.command("x-ping", (args) => ({ pong: args.n ?? null }), { allowOob: true });
    await server.listen(`unix:${upstream}`);
    const proxy = spawnCli(["proxy", upstream, "--listen", `unix:${shared}`]);
    const proxyDone = collect(proxy, { timeoutMs: 60_000 });
    let client: QmpClient | undefined;
    try {
      await waitForOutput(proxy, (s) => s.includes("sharing"), 15_000, "stderr");
      // The client library negotiates OOB only if the greeting offers it.
      client = await QmpClient.connect(`unix:${shared}`, {
        timeoutMs: 5_000,
        trackRunState: false,
        oob: true,
      });
      const hung = client.execute("x-hang").catch((e: unknown) => e);
      const queued = client.execute("x-ping", { n: 0 }).catch((e: unknown) => e);
      // In band, x-ping would wait for ever behind x-hang; out of band it is answered now.
      assert.deepEqual(await client.execute("x-ping", { n: 1 }, { oob: true, timeoutMs: 5_000 }), {
        pong: 1,
      });
      assert.deepEqual(await client.execute("x-ping", { n: 2 }, { oob: true, timeoutMs: 5_000 }), {
        pong: 2,
      });
      await client.close();
      await Promise.all([hung, queued]);
    } finally {
      await client?.close();
      proxy.kill("SIGINT");
      const r = await proxyDone;
      assert.match(r.stderr, /client \d+ negotiated \(oob\)/);
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should answer exec-oob through the proxy as the simulator answers it directly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-oob-sim-"));
    const upstream = join(dir, "vm.qmp");
    const second = join(dir, "direct.qmp");
    const shared = join(dir, "shared.qmp");
    const vm = new SimulatedMachine({ qemuVersion: "7.2.22" });
    await vm.listen(`unix:${upstream}`);
    await vm.listen(`unix:${second}`);
    const proxy = spawnCli(["proxy", upstream, "--listen", `unix:${shared}`]);
    const proxyDone = collect(proxy, { timeoutMs: 60_000 });
    const raws: RawQmp[] = [];
    try {
      await waitForOutput(proxy, (s) => s.includes("sharing"), 15_000, "stderr");
      const direct = await RawQmp.connect(second);
      const viaProxy = await RawQmp.connect(shared);
      raws.push(direct, viaProxy);
      assert.equal(await viaProxy.nextLine(), await direct.nextLine());
      for (const r of raws) {
        r.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
        assert.equal(await r.nextLine(), '{"return": {}}\r\n');
      }
      for (const request of [
        '{"exec-oob":"query-status","id":"s"}',
        '{"exec-oob":"migrate-pause","id":"p"}',
        '{"exec-oob":"qmp_capabilities","id":"c"}',
        '{"exec-oob":"query-name","execute":"query-name"}',
        '{"execute":"query-name","id":"in-band"}',
      ]) {
        direct.send(request);
        viaProxy.send(request);
        const expected = await direct.nextLine();
        assert.ok(expected, request);
        assert.equal(await viaProxy.nextLine(), expected, request);
      }
    } finally {
      for (const r of raws) r.close();
      proxy.kill("SIGINT");
      await proxyDone;
      await vm.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
