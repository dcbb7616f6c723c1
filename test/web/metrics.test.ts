/**
 * The Prometheus metrics (src/web/metrics.ts): exact values in the exposition text after known
 * journal entries (fed live through a LiveFeed, and read back from a journal's history), the
 * series of every run state, `/metrics` served on an address of its own (the agent's
 * `--metrics`), and bad addresses refused.
 */
import assert from "node:assert/strict";
import { after, suite, test } from "node:test";
import { RUN_STATES } from "../../src/client/index.js";
import { Journal, type JournalVm } from "../../src/journal/index.js";
import {
  createMetrics,
  LiveFeed,
  ListenAddressError,
  parseListenAddress,
  serveMetrics,
} from "../../src/web/index.js";
import { parseExposition, tempDir } from "./support.js";

const dir = tempDir("qmpkit-metrics-");
after(() => dir.remove());
let n = 0;
const ts = (seconds: number) => ({ seconds, microseconds: 0 });

/** A journal with VM `vm1` on host `h1`, and its metrics fed by a LiveFeed. */
async function rig() {
  const journal = Journal.open(`${dir.path}/j${++n}.db`, { host: "h1" });
  const metrics = createMetrics();
  const feed = await LiveFeed.open(journal, { metrics });
  const vm = journal.vm({ name: "vm1", address: "unix:/run/vm1.qmp" });
  const samples = async () => parseExposition(await metrics.text());
  return { journal, metrics, feed, vm, samples };
}

function play(journal: Journal, vm: JournalVm): void {
  journal.notice(vm, { kind: "connected", address: vm.address, qemu: "7.2.22", state: "running" });
  journal.event(vm, { event: "GUEST_PANICKED", data: { action: "pause" }, timestamp: ts(10) });
  journal.event(vm, { event: "STOP", timestamp: ts(10) });
  journal.state(vm, { from: "running", to: "guest-panicked", cause: "STOP", atMs: 10_000 });
  journal.notice(vm, { kind: "disconnected", reconnecting: true });
  journal.notice(vm, { kind: "reconnected", qemu: "7.2.22", sinceMs: 11_000, untilMs: 12_000 });
  journal.event(vm, { event: "RESUME", timestamp: ts(13) });
  journal.state(vm, { from: "guest-panicked", to: "running", cause: "RESUME", atMs: 13_000 });
  journal.event(vm, { event: "STOP", timestamp: ts(14) });
  journal.state(vm, { from: "running", to: "paused", cause: "STOP", atMs: 14_000 });
  journal.flush();
}

suite("metrics", () => {
  test("should expose exact values after known events", async () => {
    const { journal, feed, vm, samples } = await rig();
    play(journal, vm);
    const s = await samples();
    const vmLabels = 'host="h1",vm="vm1"';
    assert.equal(s.get(`qmpkit_events_total{event="STOP",${vmLabels}}`), 2);
    assert.equal(s.get(`qmpkit_events_total{event="GUEST_PANICKED",${vmLabels}}`), 1);
    assert.equal(s.get(`qmpkit_events_total{event="RESUME",${vmLabels}}`), 1);
    assert.equal(s.get(`qmpkit_vm_connected{${vmLabels}}`), 1);
    assert.equal(s.get(`qmpkit_watch_gaps_total{${vmLabels}}`), 1);
    // One series per state of QEMU's RunState, 1 for the current one only.
    const states = [...s].filter(([k]) => k.startsWith("qmpkit_vm_run_state{"));
    assert.equal(states.length, RUN_STATES.length);
    assert.deepEqual(
      states.filter(([, v]) => v === 1).map(([k]) => k),
      ['qmpkit_vm_run_state{host="h1",state="paused",vm="vm1"}'],
    );
    assert.ok(states.every(([, v]) => v === 0 || v === 1));
    feed.close();
    journal.close();
  });

  test("should take run states and connections from the journal's history, unwatched until watched", async () => {
    const first = await rig();
    play(first.journal, first.vm);
    first.feed.close();
    first.journal.close();
    const journal = Journal.open(first.journal.path, { host: "h1" });
    const metrics = createMetrics();
    const feed = await LiveFeed.open(journal, { metrics });
    const s = parseExposition(await metrics.text());
    // Labels sort as host, state, vm in the parsed keys.
    const key = (state: string) => `qmpkit_vm_run_state{host="h1",state="${state}",vm="vm1"}`;
    assert.equal(s.get(key("paused")), 1);
    assert.equal(s.get(key("running")), 0);
    // The closed journal said "disconnected" (the recorder stopped); nobody watches it now.
    assert.equal(s.get('qmpkit_vm_connected{host="h1",vm="vm1"}'), 0);
    // Counters start with the process: history's events are not counted again.
    assert.equal(s.get('qmpkit_events_total{event="STOP",host="h1",vm="vm1"}'), undefined);
    assert.equal(feed.table.rows.get("h1/vm1")?.connection, "not watched");
    feed.close();
    journal.close();
  });

  test("should keep a series for a state QEMU's table does not have, and feed the outbox gauge", async () => {
    const metrics = createMetrics();
    metrics.runState("h2", "vm9", "future-state");
    metrics.runState("h2", "vm9", "running");
    metrics.outboxDepth("h2", 42);
    const s = parseExposition(await metrics.text());
    assert.equal(s.get('qmpkit_vm_run_state{host="h2",state="future-state",vm="vm9"}'), 0);
    assert.equal(s.get('qmpkit_vm_run_state{host="h2",state="running",vm="vm9"}'), 1);
    assert.equal(s.get('qmpkit_outbox_depth{host="h2"}'), 42);
  });

  test("should serve /metrics on an address of its own, and refuse bad addresses", async () => {
    const metrics = createMetrics();
    metrics.event("h1", "vm1", "STOP");
    const server = await serveMetrics(metrics, { listen: "127.0.0.1:0" });
    try {
      const response = await fetch(`${server.url}/metrics`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const s = parseExposition(await response.text());
      assert.equal(s.get('qmpkit_events_total{event="STOP",host="h1",vm="vm1"}'), 1);
      // The same port again: in use, and said so with the address.
      await assert.rejects(serveMetrics(metrics, { listen: `127.0.0.1:${server.port}` }), {
        message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${server.port}: .*EADDRINUSE`),
      });
    } finally {
      await server.close();
    }
    for (const bad of ["localhost", "127.0.0.1:99999", "[nothost]:80", ""])
      assert.throws(() => parseListenAddress(bad), ListenAddressError, bad);
    assert.deepEqual(parseListenAddress("9470"), { host: "127.0.0.1", port: 9470 });
    assert.deepEqual(parseListenAddress("[::1]:8470"), { host: "::1", port: 8470 });
    assert.deepEqual(parseListenAddress("0.0.0.0:8470"), { host: "0.0.0.0", port: 8470 });
  });
});
