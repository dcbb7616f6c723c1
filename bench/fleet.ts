/**
 * Fleet benchmark (issue 12 §2): events from simulated VMs through a real `qmpkit agent` process
 * into a real nats-server's JetStream stream, against a floor of the very same messages (the
 * agent's envelopes, subjects and `Nats-Msg-Id`s, taken from the stream) published straight to
 * JetStream by a bare client, in the same run and on the same server. Goal: the agent at least
 * 0.5× the floor's events/s.
 *
 * - **throughput**: V simulated VMs (default 50, in a process of their own, `test/fleet/vm-host.ts`)
 *   each emit K events (default 400) as fast as they can; the agent watches them (QMP over unix
 *   sockets), writes each to its outbox (SQLite, on disk) and publishes it; timed from the first
 *   event emitted to the last one received by an ordered consumer of the stream. The floor: the
 *   same messages, published by a bare client with up to 1,024 in flight (the agent's own
 *   bound), timed from the first publish to the last one received by the same kind of consumer.
 *   Rounds alternate (agent, floor), after one warm-up pair not counted; the ratio is the median of the per-round ratios. The stream
 *   is deleted before each side, so that de-duplication never shortens the floor's work.
 * - **latency**: the same VMs paced at RATE events/s in all (default 1,000) for SECONDS (default
 *   5): from each event's QEMU timestamp to its arrival at the consumer, p50/p99/max; and the
 *   floor's: the bare client publishing as many messages at the same pace, from the publish call
 *   to the arrival.
 *
 * Run: `npx tsx bench/fleet.ts [V] [K] [ROUNDS] [RATE] [SECONDS]`.
 *
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DEFAULT_STREAM, streamSubjects } from "../src/fleet/index.js";
import { startAgentProcess, startVmHost } from "../test/fleet/vm-hosts.js";
import { natsServerAvailable, startNatsServer } from "../test/support/nats-server.js";
import { median } from "./support/events.js";

const [V = 50, K = 400, ROUNDS = 3, RATE = 1000, SECONDS = 5] = process.argv.slice(2).map(Number);

if (!natsServerAvailable()) {
  console.log("skipped: nats-server is not installed");
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), "qmpkit-bench-fleet-"));
mkdirSync(join(dir, "vms"));
const names = Array.from({ length: V }, (_, i) => `vm${i + 1}`);

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 120_000) {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One stored message, as the floor republishes it. */
interface Taken {
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly msgId: string;
}

/** An ordered consumer of the whole stream, counting what arrives (and keeping it, if asked). */
async function consume(
  nc: NatsConnection,
  onMessage: (m: JsMsg, at: number) => void,
): Promise<{ stop(): void }> {
  const consumer = await jetstream(nc).consumers.get(DEFAULT_STREAM);
  const messages = await consumer.consume();
  void (async () => {
    for await (const m of messages) onMessage(m, Date.now());
  })();
  return { stop: () => void messages.stop() };
}

async function resetStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(DEFAULT_STREAM).catch(() => false);
}

async function createStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: DEFAULT_STREAM, subjects: streamSubjects() });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

const nats = await startNatsServer();
const host = await startVmHost(join(dir, "vms"), names);
const nc = await connect({ servers: nats.url });
const glob = join(dir, "vms", "*.qmp");
let agentNumber = 0;

/** Starts an agent on a fresh journal and stream; resolves once it watches every VM. */
async function startAgent() {
  await resetStream(nc);
  agentNumber++;
  const agent = startAgentProcess(nats.url, "bench", join(dir, `agent${agentNumber}.db`), glob);
  await until("the agent watching every VM", async () => {
    const s = await host.status();
    return names.every((n) => s[n]!.clients > 0);
  });
  // The stream exists once the agent made it: wait for every VM's connected notice in it.
  await until("the connected notices", async () => {
    try {
      return (await (await jetstreamManager(nc)).streams.info(DEFAULT_STREAM)).state.messages >= V;
    } catch {
      return false;
    }
  });
  return agent;
}

async function agentRound(): Promise<{ rate: number; taken: Taken[] }> {
  const agent = await startAgent();
  const total = V * K;
  const taken: Taken[] = [];
  let last = 0;
  const consumer = await consume(nc, (m, at) => {
    if (!m.subject.includes(".event.")) return;
    taken.push({ subject: m.subject, payload: m.data, msgId: m.headers?.get("Nats-Msg-Id") ?? "" });
    last = at;
  });
  const start = Date.now();
  await host.ask({ op: "burst", count: K, perTick: 10 });
  await until("every event at the consumer", () => taken.length >= total);
  consumer.stop();
  await agent.stop();
  return { rate: total / ((last - start) / 1000), taken };
}

async function floorRound(taken: readonly Taken[]): Promise<number> {
  await resetStream(nc);
  await createStream(nc);
  const bare = await connect({ servers: nats.url });
  const js = jetstream(bare);
  let got = 0;
  let last = 0;
  const consumer = await consume(nc, (_m, at) => {
    got++;
    last = at;
  });
  const start = Date.now();
  const inFlight = new Set<Promise<unknown>>();
  for (const m of taken) {
    const p = js.publish(m.subject, m.payload, { msgID: m.msgId });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 1024) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await until("every message at the consumer", () => got >= taken.length);
  consumer.stop();
  await bare.close();
  return taken.length / ((last - start) / 1000);
}

async function agentLatency(): Promise<number[]> {
  const agent = await startAgent();
  const latencies: number[] = [];
  const consumer = await consume(nc, (m, at) => {
    if (!m.subject.includes(".event.")) return;
    const e = (m.json() as { data: { timestamp: { seconds: number; microseconds: number } } }).data;
    latencies.push(at - (e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000));
  });
  const before = await host.status();
  const tickMs = 50;
  await host.ask({
    op: "flood",
    vms: "all",
    on: true,
    perTick: Math.max(1, Math.round((RATE * tickMs) / 1000 / V)),
    tickMs,
  });
  const perVm = Math.round((RATE * SECONDS) / V);
  await until("the paced run", async () => {
    const s = await host.status();
    return names.every((n) => s[n]!.emitted >= before[n]!.emitted + perVm);
  });
  await host.ask({ op: "flood", vms: "all", on: false });
  const after = await host.status();
  const total = names.reduce((n, v) => n + after[v]!.emitted - before[v]!.emitted, 0);
  await until("every paced event at the consumer", () => latencies.length >= total);
  consumer.stop();
  await agent.stop();
  return latencies;
}

async function floorLatency(count: number): Promise<number[]> {
  await resetStream(nc);
  await createStream(nc);
  const bare = await connect({ servers: nats.url });
  const js = jetstream(bare);
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const consumer = await consume(nc, (m, at) => {
    latencies.push(at - sentAt.get(m.headers?.get("Nats-Msg-Id") ?? "")!);
  });
  const tickMs = 50;
  const perTick = Math.max(1, Math.round((RATE * tickMs) / 1000));
  const payload = JSON.stringify({ specversion: "1.0", padding: "x".repeat(300) });
  let n = 0;
  while (n < count) {
    for (let i = 0; i < perTick && n < count; i++, n++) {
      const id = `floor-${n}`;
      sentAt.set(id, Date.now());
      void js.publish(`qmp.floor.vm${n % V}.event.DEVICE_TRAY_MOVED`, payload, { msgID: id });
    }
    await new Promise((r) => setTimeout(r, tickMs));
  }
  await until("every floor message at the consumer", () => latencies.length >= count);
  consumer.stop();
  await bare.close();
  return latencies;
}

try {
  console.log(
    `${V} simulated VMs × ${K} events (${V * K} per round), ${ROUNDS} rounds; nats-server ${nats.url} (file store)`,
  );
  const ratios: number[] = [];
  const agentRates: number[] = [];
  const floorRates: number[] = [];
  // A warm-up pair, not counted: the first agent process compiles its modules, the server
  // creates its files.
  await floorRound((await agentRound()).taken);
  for (let r = 1; r <= ROUNDS; r++) {
    const { rate, taken } = await agentRound();
    const floor = await floorRound(taken);
    agentRates.push(rate);
    floorRates.push(floor);
    ratios.push(rate / floor);
    console.log(
      `round ${r}: agent ${rate.toFixed(0)} events/s, floor (bare client, same messages) ${floor.toFixed(0)} msgs/s, ratio ${(rate / floor).toFixed(2)}×`,
    );
  }
  console.log(
    `throughput (median): agent ${median(agentRates).toFixed(0)} events/s, floor ${median(floorRates).toFixed(0)} msgs/s, ratio ${median(ratios).toFixed(2)}× (goal ≥ 0.5×)`,
  );
  const agentLat = (await agentLatency()).sort((a, b) => a - b);
  const floorLat = (await floorLatency(agentLat.length)).sort((a, b) => a - b);
  const fmt = (l: number[]) =>
    `p50 ${percentile(l, 50).toFixed(1)} ms, p99 ${percentile(l, 99).toFixed(1)} ms, max ${l.at(-1)!.toFixed(1)} ms`;
  console.log(
    `latency at ${RATE} events/s for ${SECONDS} s (${agentLat.length} events): agent, QEMU timestamp → consumer: ${fmt(agentLat)}`,
  );
  console.log(
    `latency at the same pace (${floorLat.length} messages): floor, publish → consumer: ${fmt(floorLat)}`,
  );
} finally {
  await nc.close().catch(() => {});
  await host.close();
  await nats.dispose();
  rmSync(dir, { recursive: true, force: true });
}
