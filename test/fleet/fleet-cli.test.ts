/**
 * `qmpkit fleet events|status|exec` against a real nats-server, with `qmpkit agent` processes
 * watching simulated VMs: the KV table, the stream in the formats of `events`, commands through
 * the agent (allowed, refused by the agent), the reconcile correction when the stream missed a
 * change, and bad input (malformed URLs, an unreachable broker, a bad HOST/VM).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { QmpClient } from "../../src/client/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { runCli } from "../cli/support.js";
import {
  freePort,
  type NatsServer,
  natsServerTest,
  startNatsServer,
} from "../support/nats-server.js";
import { type Agent, flood, readStream, startAgent, tempRoot, until } from "./support.js";

const temp = tempRoot("fleet-cli");
after(() => temp.dispose());

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function fleet(url: string, ...args: string[]) {
  return runCli(["fleet", ...args, "--nats", url], { timeoutMs: 60_000 });
}

async function statusOf(url: string): Promise<Array<Record<string, unknown>>> {
  const r = await fleet(url, "status", "--json");
  if (r.status !== 0) return [];
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

suite("qmpkit fleet", natsServerTest(), () => {
  let nats: NatsServer;
  let dir: string;
  let agent: Agent;
  const vm1 = new SimulatedMachine();
  const vm2 = new SimulatedMachine({ qemuVersion: "10.0.2" });
  let ctl: QmpClient;

  before(async () => {
    nats = await startNatsServer();
    dir = temp.dir();
    await vm1.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    await vm2.listen(`unix:${join(dir, "vms", "vm2.qmp")}`);
    ctl = await QmpClient.connect(await vm1.listen(`unix:${join(dir, "ctl.qmp")}`));
    agent = startAgent(nats.url, dir, "h1", ["--allow", "query-*,cont"]);
    await agent.waitFor("watching h1/vm1", "watching h1/vm2", "connected to NATS");
  });

  after(async () => {
    const result = await agent.stop();
    await ctl.close();
    await vm1.close();
    await vm2.close();
    await nats.dispose();
    assert.equal(result.status, 0, agent.log());
  });

  test("should show each VM's current state from the KV bucket", async () => {
    await ctl.execute("stop");
    await until("vm1 paused in the KV bucket", async () =>
      (await statusOf(nats.url)).some((e) => e.vm === "vm1" && e.state === "paused"),
    );
    const entries = await statusOf(nats.url);
    assert.deepEqual(
      entries.map((e) => [e.host, e.vm, e.state, e.qemu, e.connection, e.address]),
      [
        ["h1", "vm1", "paused", "7.2.22", "connected", `unix:${join(dir, "vms", "vm1.qmp")}`],
        ["h1", "vm2", "running", "10.0.2", "connected", `unix:${join(dir, "vms", "vm2.qmp")}`],
      ],
    );
    const vm1Entry = entries[0]!;
    assert.equal((vm1Entry.lastEvent as { event: string }).event, "STOP");
    assert.ok(Date.parse(String(vm1Entry.since)) <= Date.parse(String(vm1Entry.updated)));
    const table = await fleet(nats.url, "status");
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^VM +STATE +SINCE +QEMU +MONITOR +LAST EVENT\n/);
    assert.match(
      table.stdout,
      /\nh1\/vm1 +paused +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +7\.2\.22 +connected +STOP /,
    );
    const one = await fleet(nats.url, "status", "h1/vm2", "--json");
    assert.deepEqual(
      (JSON.parse(one.stdout) as Array<{ vm: string }>).map((e) => e.vm),
      ["vm2"],
    );
    await ctl.execute("cont");
  });

  test("should print the stream as events does, labelled HOST/VM, filtered", async () => {
    vm2.hostSide.inject("DEVICE_TRAY_MOVED", { device: "", id: "cd0", "tray-open": true });
    await until("the tray event in the stream", async () =>
      (await readStream(nats.url)).some(
        (m) => m.message.kind === "event" && m.message.vm === "vm2",
      ),
    );
    const all = await fleet(nats.url, "events", "--since", "1h", "--no-follow", "--json");
    assert.equal(all.status, 0, all.stderr);
    const lines = jsonLines(all.stdout);
    assert.deepEqual(lines[0], { ...lines[0], vm: "h1/vm1", watch: "connected", qemu: "7.2.22" });
    const vm1Lines = lines.filter((l) => l.vm === "h1/vm1" && !("watch" in l));
    assert.deepEqual(
      vm1Lines.slice(0, 4).map((l) => l.event ?? (l["run-state"] as { to: string }).to),
      ["STOP", "paused", "RESUME", "running"],
    );
    assert.deepEqual(vm1Lines[1]!["run-state"], { from: "running", to: "paused", cause: "STOP" });
    const tray = lines.find((l) => l.event === "DEVICE_TRAY_MOVED")!;
    assert.equal(tray.vm, "h1/vm2");
    assert.deepEqual(tray.data, { device: "", "tray-open": true, id: "cd0" });
    // One VM, by its pattern; and --only, as in events.
    const vm2Only = jsonLines(
      (await fleet(nats.url, "events", "h1/vm2", "--since", "1h", "--no-follow", "--json")).stdout,
    );
    assert.ok(vm2Only.length >= 2);
    assert.ok(vm2Only.every((l) => l.vm === "h1/vm2"));
    const stops = await fleet(
      nats.url,
      "events",
      "*/vm?",
      "--since",
      "1h",
      "--no-follow",
      "--only",
      "STOP",
    );
    assert.match(stops.stdout, /h1\/vm1 +STOP\n.*state running → paused\n/);
    assert.doesNotMatch(stops.stdout, /RESUME|DEVICE_TRAY_MOVED/);
  });

  test("should run allowed commands through the agent and refuse the others", async () => {
    const status = await fleet(nats.url, "exec", "h1/vm2", "query-status", "--compact");
    assert.equal(status.status, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout), { status: "running", running: true });
    // Refused by the agent: not in its --allow (query-*,cont); the VM is not touched.
    const refused = await fleet(nats.url, "exec", "h1/vm1", "stop");
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /^qmpkit: stop: GenericError: the agent on h1 does not run 'stop' for the fleet \(allowed: query-\*, cont;/,
    );
    assert.equal((await ctl.execute("query-status")).status, "running");
    // Allowed, with arguments: QEMU's own error comes back as QEMU's.
    await ctl.execute("stop");
    const cont = await fleet(nats.url, "exec", "h1/vm1", "cont");
    assert.equal(cont.status, 0, cont.stderr);
    assert.equal(cont.stdout.trim(), "{}");
    assert.equal((await ctl.execute("query-status")).status, "running");
    const bad = await fleet(nats.url, "exec", "h1/vm1", "query-block-jobs", "nonsense=1");
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^qmpkit: query-block-jobs: GenericError: .*nonsense/);
    const none = await fleet(nats.url, "exec", "h1/vm9", "query-status");
    assert.equal(none.status, 1);
    assert.match(none.stderr, /h1\/vm9 is not connected to its agent/);
    const nobody = await fleet(nats.url, "exec", "h7/vm1", "query-status");
    assert.equal(nobody.status, 1);
    assert.match(nobody.stderr, /^qmpkit: no agent answers for h7\/vm1 \(qmp-exec\.h7\.vm1\)/);
  });

  test("should refuse bad input with a clear error", async () => {
    const badHost = await fleet(nats.url, "exec", "vm1", "query-status");
    assert.equal(badHost.status, 2);
    assert.match(badHost.stderr, /^qmpkit: invalid VM 'vm1': expected HOST\/VM/);
    for (const url of [
      "http://user:secret@example.org",
      "nats://",
      "nats://host:99999",
      "nats://h:1/path",
    ]) {
      const r = await runCli(["fleet", "status", "--nats", url], { timeoutMs: 60_000 });
      assert.equal(r.status, 2, `${url}: ${r.stderr}`);
      assert.match(r.stderr, /^qmpkit: (invalid NATS URL|Invalid URL)/, url);
      assert.doesNotMatch(r.stderr, /secret/);
    }
    const port = await freePort();
    for (const command of [
      ["status"],
      ["events", "--no-follow"],
      ["exec", "h1/vm1", "query-status"],
    ]) {
      const r = await runCli(
        ["fleet", ...command, "--nats", `nats://user:secret@127.0.0.1:${port}`],
        {
          timeoutMs: 60_000,
        },
      );
      assert.equal(r.status, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^qmpkit: cannot connect to NATS at nats://\\*\\*\\*@127\\.0\\.0\\.1:${port}: connection refused`,
        ),
      );
      assert.doesNotMatch(r.stderr, /secret/);
    }
    const agentBad = await runCli(
      ["agent", "--nats", "ftp://x", "--journal", join(dir, "x.db"), "x.qmp"],
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(agentBad.status, 2);
    assert.match(agentBad.stderr, /^qmpkit: invalid NATS URL 'ftp:\/\/x'/);
  });
});

suite("qmpkit agent: reconcile and an unreachable broker", natsServerTest(), () => {
  test("should publish a correction when the stream missed a change (outbox dropped it)", async () => {
    const nats = await startNatsServer();
    const dir = temp.dir();
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    const ctl = await QmpClient.connect(await vm.listen(`unix:${join(dir, "ctl.qmp")}`));
    const agent = startAgent(nats.url, dir, "h2", ["--outbox-max", "20", "--reconcile", "1s"]);
    try {
      await agent.waitFor("watching h2/vm1", "connected to NATS");
      await until(
        "the connected notice in the stream",
        async () => (await readStream(nats.url)).length >= 1,
      );
      await nats.kill();
      // STOP and its state change, then enough events to push them out of the bounded outbox.
      await ctl.execute("stop");
      const events = flood(vm, 10);
      await until("the outbox dropping", () => agent.log().includes("OUTBOX FULL"));
      await events.stop();
      await nats.restart();
      await until("the correction", () => agent.log().includes("correction: h2/vm1 is paused"));
      await until("the correction in the stream", async () =>
        (await readStream(nats.url)).some(
          (m) => m.message.kind === "state" && m.message.change.cause === "query-status",
        ),
      );
      const stored = await readStream(nats.url);
      // Every message the stream lacks is named by a dropped notice; nothing else is missing.
      const named = stored.flatMap((m) => {
        if (m.message.kind !== "watch" || m.message.notice.kind !== "dropped") return [];
        const { ranges } = m.message.notice as unknown as { ranges: Array<[number, number]> };
        return ranges.flatMap(([from, to]) =>
          Array.from({ length: to - from + 1 }, (_, i) => from + i),
        );
      });
      assert.ok(named.length > 0, "a dropped notice in the stream");
      // Later drops grow the waiting notice: one notice (or two, if one was being sent).
      const notices = stored.filter(
        (m) => m.message.kind === "watch" && m.message.notice.kind === "dropped",
      );
      assert.ok(notices.length <= 2, `${notices.length} dropped notices`);
      const present = new Set(stored.map((m) => m.message.sequence));
      const last = Math.max(...present);
      const missing = Array.from({ length: last }, (_, i) => i + 1).filter((n) => !present.has(n));
      assert.deepEqual(
        missing,
        [...named].sort((a, b) => a - b),
      );
      // The state change to paused was dropped: the stream says paused by the correction only.
      const states = stored.filter((m) => m.message.kind === "state");
      assert.deepEqual(
        states.map(
          (m) =>
            m.message.kind === "state" && [
              m.message.change.from,
              m.message.change.to,
              m.message.change.cause,
            ],
        ),
        [["running", "paused", "query-status"]],
      );
      await until("paused in the KV bucket", async () =>
        (await statusOf(nats.url)).some((e) => e.vm === "vm1" && e.state === "paused"),
      );
    } finally {
      await agent.stop();
      await ctl.close();
      await vm.close();
      await nats.dispose();
    }
  });

  test("should keep watching while the broker is unreachable, and publish once it is there", async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const dir = temp.dir();
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    const agent = startAgent(url, dir, "h3");
    let nats: NatsServer | undefined;
    try {
      await agent.waitFor(
        "watching h3/vm1",
        `cannot connect to NATS at ${url}: connection refused`,
      );
      vm.hostSide.inject("DEVICE_TRAY_MOVED", { device: "", id: "early", "tray-open": true });
      nats = await startNatsServer({ port });
      await agent.waitFor("connected to NATS");
      await until("the early event in the stream", async () =>
        (await readStream(nats!.url).catch(() => [])).some(
          (m) => m.message.kind === "event" && m.message.event.data?.id === "early",
        ),
      );
      const stored = await readStream(nats.url);
      assert.deepEqual(
        stored.map((m) => m.message.sequence),
        stored.map((_, i) => i + 1),
      );
    } finally {
      const result = await agent.stop();
      assert.equal(result.status, 0, agent.log());
      await vm.close();
      await nats?.dispose();
    }
  });
});
