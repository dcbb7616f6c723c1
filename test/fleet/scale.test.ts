/**
 * The fleet at a size CI can afford (issue 12 §2 "Scale"; the full 3 × 1,000 is
 * `bench/fleet-scale.ts`): three hosts with 100 simulated VMs each (a process per host), their
 * three `qmpkit agent` processes and one real nats-server; every VM emits events steadily. At the
 * end the stream is the fleet's current view: for every one of the 300 VMs, exactly the events
 * it emitted, in order, the newest last, after its one `connected` notice.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { type FleetVmEntry, rfc3339 } from "../../src/fleet/index.js";
import { natsServerTest, startNatsServer } from "../support/nats-server.js";
import { readStream, until } from "./support.js";
import type { VmStatus } from "./vm-host.js";
import {
  type AgentProcess,
  StreamWatcher,
  startAgentProcess,
  startVmHost,
  untilEveryVm,
  type VmHost,
} from "./vm-hosts.js";

const root = mkdtempSync(join(tmpdir(), "qmpkit-fleet-scale-"));
after(() => rmSync(root, { recursive: true, force: true }));

const HOSTS = ["h1", "h2", "h3"];
const VMS = Array.from({ length: 100 }, (_, i) => `vm${String(i + 1).padStart(3, "0")}`);
const EVENTS_PER_VM = 10;

suite("the fleet at scale", natsServerTest(), () => {
  test("should show every VM of three hosts × 100 with exactly its events, the newest last", {
    timeout: 240_000,
  }, async () => {
    const started = Date.now();
    const nats = await startNatsServer();
    const hosts = new Map<string, VmHost>();
    const agents: AgentProcess[] = [];
    let watcher: StreamWatcher | undefined;
    try {
      for (const h of HOSTS) {
        mkdirSync(join(root, h, "vms"), { recursive: true });
        hosts.set(h, await startVmHost(join(root, h, "vms"), VMS));
        agents.push(
          startAgentProcess(nats.url, h, join(root, h, "agent.db"), join(root, h, "vms", "*.qmp")),
        );
      }
      const everyVm = (what: string, check: (s: VmStatus) => boolean) =>
        untilEveryVm(what, hosts, (_h, _vm, s) => check(s), 120_000);
      await everyVm("every VM watched", (s) => s.clients > 0);
      // Every VM an event every 200 ms or so, until each has emitted EVENTS_PER_VM.
      for (const host of hosts.values())
        await host.ask({ op: "flood", vms: "all", on: true, tickMs: 200 });
      await everyVm(`${EVENTS_PER_VM} events from every VM`, (s) => s.emitted >= EVENTS_PER_VM);
      for (const host of hosts.values()) await host.ask({ op: "flood", vms: "all", on: false });
      let emitted = 0;
      for (const host of hosts.values())
        for (const s of Object.values(await host.status())) emitted += s.emitted;
      watcher = await StreamWatcher.open(nats.url);
      const w = watcher;
      await until(
        "every event in the stream",
        async () => {
          let n = 0;
          for (const c of (await w.subjectCounts("qmp.*.*.event.>")).values()) n += c;
          return n === emitted;
        },
        120_000,
      );
      // The KV bucket too: every VM connected, running, its newest event the last one emitted.
      const expectedLast = new Map<string, string>();
      for (const [h, host] of hosts)
        for (const vm of VMS) {
          const last = host.truth(vm).at(-1)!;
          expectedLast.set(`${h}.${vm}`, rfc3339(Math.floor(last.us / 1e6), last.us % 1e6));
        }
      let kv = new Map<string, FleetVmEntry>();
      await until(
        "every VM's KV entry current",
        async () => {
          kv = await w.kvEntries();
          return [...expectedLast].every(([key, time]) => kv.get(key)?.lastEvent?.time === time);
        },
        120_000,
      );
      assert.equal(kv.size, HOSTS.length * VMS.length);
      for (const e of kv.values()) {
        assert.equal(e.connection, "connected", `${e.host}/${e.vm}`);
        assert.equal(e.state, "running", `${e.host}/${e.vm}`);
        assert.equal(e.lastEvent?.event, "DEVICE_TRAY_MOVED");
      }
      const stored = await readStream(nats.url);
      let current = 0;
      for (const [h, host] of hosts) {
        for (const vm of VMS) {
          const mine = stored.filter((m) => m.message.host === h && m.message.vm === vm);
          const truth = host.truth(vm);
          assert.ok(
            truth.every((t) => t.watched),
            `${h}/${vm}: watched throughout`,
          );
          assert.deepEqual(
            mine.map((m) =>
              m.message.kind === "event"
                ? Number(m.message.event.data?.id)
                : m.message.kind === "watch"
                  ? m.message.notice.kind
                  : m.message.kind,
            ),
            ["connected", ...truth.map((t) => t.n)],
            `${h}/${vm}: its connected notice, then exactly its events in order`,
          );
          current++;
        }
      }
      assert.equal(current, HOSTS.length * VMS.length);
      assert.equal(stored.length, emitted + current);
      for (const a of agents) assert.equal((await a.stop()).status, 0, a.log());
      process.stderr.write(
        `scale: ${HOSTS.length} hosts × ${VMS.length} VMs: ${emitted} events emitted, ${emitted} in the stream (each VM exactly its own, in order), ${stored.length} messages; ${kv.size} KV entries current; ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    } finally {
      await watcher?.close().catch(() => {});
      for (const a of agents) await a.stop("SIGKILL");
      for (const host of hosts.values()) await host.close();
      await nats.dispose();
    }
  });
});
