/**
 * Fleet at scale (issue 12 §2): H hosts (default 3), each with N simulated VMs (default 1,000,
 * in one process per host, `test/fleet/vm-host.ts`) and its own `qmpkit agent` process, one real
 * nats-server; every VM makes RATE events a second (default 0.5: 1,500 events/s in all) for
 * SECONDS (default 30), the VMs of a host spread over 20 turns per period (a steady load).
 * Reported:
 *
 * - how long the agents took to watch every VM;
 * - how long after the flood stopped every VM's KV entry (`qmp-vms`, the fleet's current view)
 *   had its newest event;
 * - event-to-consumer latency over the run (QEMU timestamp → an ordered consumer of the stream),
 *   p50/p99/max: how far behind the fleet view ever was;
 * - at the end, for every VM, whether the stream's newest event is the VM's newest (the view is
 *   current) and whether the stream holds exactly the events the VM emitted (exact counts), and
 *   how long the last events took to arrive after the flood stopped;
 * - the resident memory of each agent (from /proc).
 *
 * Run: `npx tsx bench/fleet-scale.ts [N] [RATE] [SECONDS] [H]`.
 *
 * @module
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import {
  DEFAULT_BUCKET,
  DEFAULT_STREAM,
  type FleetVmEntry,
  parseSubject,
  rfc3339,
} from "../src/fleet/index.js";
import {
  type AgentProcess,
  startAgentProcess,
  startVmHost,
  type VmHost,
} from "../test/fleet/vm-hosts.js";
import { natsServerAvailable, startNatsServer } from "../test/support/nats-server.js";

const [N = 1000, RATE = 0.5, SECONDS = 30, H = 3] = process.argv.slice(2).map(Number);

if (!natsServerAvailable()) {
  console.log("skipped: nats-server is not installed");
  process.exit(0);
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 300_000) {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

const dir = mkdtempSync(join(tmpdir(), "qmpkit-bench-fleet-scale-"));
const nats = await startNatsServer();
const hostNames = Array.from({ length: H }, (_, i) => `host${i + 1}`);
const vmNames = Array.from({ length: N }, (_, i) => `vm${String(i + 1).padStart(4, "0")}`);
const hosts = new Map<string, VmHost>();
const agents = new Map<string, AgentProcess>();
const nc = await connect({ servers: nats.url });
try {
  console.log(
    `${H} hosts × ${N} simulated VMs, ${RATE} events/s each (${(H * N * RATE).toFixed(0)} events/s in all) for ${SECONDS} s; one agent process per host; nats-server (file store)`,
  );
  for (const h of hostNames) {
    mkdirSync(join(dir, h, "vms"), { recursive: true });
    hosts.set(h, await startVmHost(join(dir, h, "vms"), vmNames));
  }
  const watchStart = Date.now();
  for (const h of hostNames)
    agents.set(
      h,
      startAgentProcess(nats.url, h, join(dir, h, "agent.db"), join(dir, h, "vms", "*.qmp")),
    );
  await until("every VM watched", async () => {
    for (const host of hosts.values()) {
      const s = await host.status();
      if (!vmNames.every((n) => s[n]!.clients > 0)) return false;
    }
    return true;
  });
  const watchedAfter = (Date.now() - watchStart) / 1000;
  await until("every connected notice in the stream", async () => {
    try {
      const info = await (await jetstreamManager(nc)).streams.info(DEFAULT_STREAM);
      return info.state.messages >= H * N;
    } catch {
      return false;
    }
  });
  console.log(
    `every VM watched after ${watchedAfter.toFixed(1)} s (connected notices in the stream)`,
  );

  // The fleet view: the newest event per VM, and each event's latency.
  const newest = new Map<string, number>();
  const counts = new Map<string, number>();
  const latencies: number[] = [];
  let lastArrival = 0;
  const consumer = await jetstream(nc).consumers.get(DEFAULT_STREAM);
  const messages = await consumer.consume();
  void (async () => {
    for await (const m of messages) {
      const s = parseSubject(m.subject);
      if (s?.kind !== "event") continue;
      const at = Date.now();
      lastArrival = at;
      const e = (
        m.json() as {
          data: { data: { id: string }; timestamp: { seconds: number; microseconds: number } };
        }
      ).data;
      latencies.push(at - (e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000));
      const key = `${s.host}/${s.vm}`;
      newest.set(key, Number(e.data.id));
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  })();

  const tickMs = 1000;
  // RATE events/s per VM: one event every 1/RATE s, spread over the VMs by their turn.
  const perTick = Math.max(1, Math.round(RATE));
  const everyNthTick = RATE >= 1 ? 1 : Math.round(1 / RATE);
  const before = new Map<string, Record<string, { emitted: number }>>();
  for (const [h, host] of hosts) before.set(h, await host.status());
  const floodStart = Date.now();
  let rssPeak = new Map<string, number>();
  // Pace by asking each host to emit one round per tick (the host does the emitting).
  // Spread over 20 turns per period: a steady load, not all VMs of a host at the same instant.
  for (const host of hosts.values())
    await host.ask({
      op: "flood",
      vms: "all",
      on: true,
      perTick,
      tickMs: tickMs * everyNthTick,
      slices: 20,
    });
  await until("the run's length", async () => {
    for (const [h, a] of agents) rssPeak.set(h, Math.max(rssPeak.get(h) ?? 0, rssMb(a.child.pid)));
    return Date.now() - floodStart >= SECONDS * 1000;
  });
  for (const host of hosts.values()) await host.ask({ op: "flood", vms: "all", on: false });
  const stopped = Date.now();
  const final = new Map<string, Record<string, { emitted: number }>>();
  let total = 0;
  for (const [h, host] of hosts) {
    const s = await host.status();
    final.set(h, s);
    for (const n of vmNames) total += s[n]!.emitted - before.get(h)![n]!.emitted;
  }
  await until("every event at the consumer", () => latencies.length >= total);
  messages.stop();
  let current = 0;
  let exact = 0;
  for (const h of hostNames)
    for (const n of vmNames) {
      const emitted = final.get(h)![n]!.emitted;
      if (newest.get(`${h}/${n}`) === emitted - 1) current++;
      if ((counts.get(`${h}/${n}`) ?? 0) === emitted) exact++;
    }
  // The KV bucket: how long after the flood stopped until every VM's entry has its newest event.
  const kvNc = await connect({ servers: nats.url });
  const kv = await new Kvm(kvNc).open(DEFAULT_BUCKET);
  const expected = new Map<string, string>();
  for (const [h, host] of hosts)
    for (const n of vmNames) {
      const last = host.truth(n).at(-1)!;
      expected.set(`${h}.${n}`, rfc3339(Math.floor(last.us / 1e6), last.us % 1e6));
    }
  let kvCurrent = 0;
  await until("every KV entry current", async () => {
    kvCurrent = 0;
    for (const [key, time] of expected) {
      const e = await kv.get(key);
      if (e !== null && e.json<FleetVmEntry>().lastEvent?.time === time) kvCurrent++;
    }
    return kvCurrent === expected.size;
  });
  const kvAfter = (Date.now() - stopped) / 1000;
  await kvNc.close();
  latencies.sort((a, b) => a - b);
  const runS = (stopped - floodStart) / 1000;
  let lastEmittedUs = 0;
  for (const host of hosts.values())
    for (const n of vmNames) lastEmittedUs = Math.max(lastEmittedUs, host.truth(n).at(-1)!.us);
  console.log(
    `${total} events in ${runS.toFixed(1)} s (${(total / runS).toFixed(0)} events/s emitted); the last at the consumer ${(lastArrival - lastEmittedUs / 1000).toFixed(0)} ms after the last was emitted`,
  );
  console.log(
    `latency, QEMU timestamp → consumer: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
  );
  console.log(
    `fleet view at the end: ${current} of ${H * N} VMs with their newest event in the stream; ${exact} of ${H * N} with exactly the events they emitted`,
  );
  console.log(
    `KV bucket: ${kvCurrent} of ${expected.size} entries with the VM's newest event, ${kvAfter.toFixed(2)} s after the flood stopped`,
  );
  console.log(
    `agent RSS peak: ${[...rssPeak].map(([h, mb]) => `${h} ${mb.toFixed(0)} MB`).join(", ")}`,
  );
  rssPeak = new Map();
} finally {
  await nc.close().catch(() => {});
  for (const a of agents.values()) await a.stop();
  for (const h of hosts.values()) await h.close();
  await nats.dispose();
  rmSync(dir, { recursive: true, force: true });
}
