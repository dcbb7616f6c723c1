/**
 * `qmpkit agent --metrics ADDR` against a real nats-server and a simulated VM: after known
 * events the exposition has exactly their values (events per name, the run state's series, the
 * monitor connection, watch gaps after the VM's QEMU restarts), and the outbox depth rises by
 * exactly the events written while the broker is down (kill -9), returning to 0 once it is back,
 * with every one of them in the stream. Bad `--metrics` input is refused before anything runs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { QmpClient } from "../../src/client/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { runCli } from "../cli/support.js";
import { type NatsServer, natsServerTest, startNatsServer } from "../support/nats-server.js";
import { parseExposition } from "../web/support.js";
import { type Agent, readStream, startAgent, tempRoot, trayIds, until } from "./support.js";

const temp = tempRoot("agent-metrics");
after(() => temp.dispose());

const labels = 'host="h1",vm="vm1"';
const events = (name: string) => `qmpkit_events_total{event="${name}",${labels}}`;
// parseExposition sorts the labels: host, state, vm.
const runState = (state: string) => `qmpkit_vm_run_state{host="h1",state="${state}",vm="vm1"}`;
const connected = `qmpkit_vm_connected{${labels}}`;
const gaps = `qmpkit_watch_gaps_total{${labels}}`;
const outbox = 'qmpkit_outbox_depth{host="h1"}';

suite("qmpkit agent --metrics", natsServerTest(), () => {
  let nats: NatsServer;
  let dir: string;
  let agent: Agent;
  let url: string;
  let vm = new SimulatedMachine();
  let tray = 0;

  async function scrape(): Promise<Map<string, number>> {
    const response = await fetch(`${url}/metrics`);
    assert.equal(response.status, 200);
    return parseExposition(await response.text());
  }

  /** Scrapes until `check` holds for the samples; returns them. */
  function scrapeUntil(what: string, check: (s: Map<string, number>) => boolean) {
    let last = new Map<string, number>();
    return until(what, async () => check((last = await scrape()))).then(
      () => last,
      (error: Error) => {
        throw new Error(`${error.message}; last scrape: ${JSON.stringify([...last])}`);
      },
    );
  }

  function injectTray(n: number): void {
    for (let i = 0; i < n; i++)
      vm.hostSide.inject("DEVICE_TRAY_MOVED", {
        device: "",
        id: `n${tray++}`,
        "tray-open": true,
      });
  }

  before(async () => {
    nats = await startNatsServer();
    dir = temp.dir();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    agent = startAgent(nats.url, dir, "h1", ["--metrics", "127.0.0.1:0", "--reconcile", "1h"]);
    await agent.waitFor("watching h1/vm1", "connected to NATS", "metrics on ");
    url = /metrics on (http:\/\/\S+)\/metrics/.exec(agent.log())![1]!;
  });

  after(async () => {
    const result = await agent?.stop();
    await vm.close();
    await nats?.dispose();
    assert.equal(result?.status, 0, agent?.log());
  });

  test("should expose exact values after known events, and a gap after QEMU restarts", async () => {
    const ctl = await QmpClient.connect(await vm.listen(`unix:${join(dir, "ctl.qmp")}`));
    try {
      await ctl.execute("stop");
      await ctl.execute("cont");
      await ctl.execute("stop");
    } finally {
      await ctl.close();
    }
    injectTray(3);
    let s = await scrapeUntil(
      "the events counted and published",
      (s) => s.get(events("DEVICE_TRAY_MOVED")) === 3 && s.get(outbox) === 0,
    );
    assert.equal(s.get(events("STOP")), 2);
    assert.equal(s.get(events("RESUME")), 1);
    assert.equal(s.get(runState("paused")), 1);
    assert.equal(s.get(runState("running")), 0);
    assert.equal(
      [...s].filter(([k, v]) => k.startsWith("qmpkit_vm_run_state{") && v === 1).length,
      1,
      "one state is 1, every other 0",
    );
    assert.equal(s.get(connected), 1);
    assert.equal(s.get(gaps), undefined, "no gap yet: no series");

    // QEMU goes away: the monitor is disconnected; a new one on the same socket is a gap.
    await vm.close();
    await scrapeUntil("vm1 disconnected", (s) => s.get(connected) === 0);
    vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    s = await scrapeUntil(
      "vm1 reconnected, with a gap",
      (s) => s.get(connected) === 1 && s.get(gaps) === 1 && s.get(runState("running")) === 1,
    );
    assert.equal(s.get(runState("paused")), 0);
    assert.equal(s.get(events("STOP")), 2);
    assert.equal(s.get(events("RESUME")), 1);
    assert.equal(s.get(events("DEVICE_TRAY_MOVED")), 3);
  });

  test("should count the outbox up while the broker is down and back to 0 after", async () => {
    await scrapeUntil("an empty outbox", (s) => s.get(outbox) === 0);
    await nats.kill();
    injectTray(5);
    let s = await scrapeUntil(
      "5 events in the outbox",
      (s) => s.get(events("DEVICE_TRAY_MOVED")) === 8 && s.get(outbox) === 5,
    );
    assert.equal(s.get(connected), 1, "the VM's monitor is not NATS");
    injectTray(2);
    s = await scrapeUntil("7 in the outbox", (s) => s.get(outbox) === 7);
    assert.equal(s.get(events("DEVICE_TRAY_MOVED")), 10);
    await nats.restart();
    s = await scrapeUntil("the outbox empty again", (s) => s.get(outbox) === 0);
    assert.equal(s.get(events("DEVICE_TRAY_MOVED")), 10);
    assert.deepEqual(
      trayIds(
        (await readStream(nats.url)).filter(
          (m) => m.message.kind === "event" && m.message.event.event === "DEVICE_TRAY_MOVED",
        ),
        "vm1",
      ),
      Array.from({ length: 10 }, (_, i) => `n${i}`),
      "each event in the stream once, in order",
    );
  });

  test("should refuse bad --metrics input before anything runs", async () => {
    const base = ["agent", "--nats", nats.url, "--journal", join(dir, "bad.db"), "x.qmp"];
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["--metrics", "nowhere"], {}, /invalid listen address 'nowhere'/],
      [
        ["--metrics", "0.0.0.0:0"],
        {},
        /--metrics 0\.0\.0\.0:0: not loopback, so a token is needed/,
      ],
      [["--metrics", "0.0.0.0:0"], { QMPKIT_METRICS_TOKEN: "short" }, /token is too short/],
      [["--metrics-token-file", join(dir, "none")], {}, /--metrics-token-file needs --metrics/],
      [
        ["--metrics", "0.0.0.0:0", "--metrics-token-file", join(dir, "none")],
        {},
        /cannot read --metrics-token-file/,
      ],
    ];
    for (const [args, env, message] of cases) {
      const r = await runCli([...base, ...args], { env, timeoutMs: 60_000 });
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
