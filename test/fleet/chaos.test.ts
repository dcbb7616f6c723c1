/**
 * The fleet's chaos test (issue 12 §2, docs/fleet.md "What the chaos test proves"): a real
 * nats-server, three hosts each with three simulated QEMUs in a process of their own
 * (`vm-host.ts`) and its `qmpkit agent` process, a steady flood of events on every VM, while
 *
 * (a) the broker is killed with `kill -9` and restarted on its file store,
 * (b) an agent is killed with `kill -9` (while the broker is down, so that its outbox holds
 *     messages the stream never acknowledged) and restarted on the same journal,
 * (c) a VM's QEMU is killed and a new one starts on the same socket.
 *
 * Afterwards, for every VM, exactly:
 *
 * - the events in the stream are the events that VM wrote to a watcher, each once, in the order
 *   it emitted them, with QEMU's own timestamps (the ground truth is the VM's own record,
 *   `vm-host.ts`: each event with whether a negotiated client was connected when it was sent);
 * - the events it emitted while nobody watched (the agent dead, the new QEMU not yet connected
 *   to) are not in the stream, and every one of them is covered by a gap record (`.watch`
 *   subject, `kind: "reconnected"`) whose interval holds its timestamp and whose place in the
 *   stream is exactly where they are missing; a VM that was never unwatched has no gap record;
 * - the VM's messages carry the sequence numbers 1, 2, 3, … in stream order: nothing lost,
 *   doubled or reordered, notices included;
 * - its entry in the KV bucket (the fleet's current view) says connected, with its last event.
 *
 * What "emitted while watched" means, made exact. QEMU writes an event to the clients that have
 * negotiated (`monitor_qapi_event_emit`); it does not replay, so what it writes while nobody is
 * connected is gone, and that is a gap, never a loss to hide. The one ambiguous moment is a
 * `kill -9` of the reader: events written to its socket after the process died but before QEMU
 * noticed the hang-up count as "sent to a watcher" yet nobody read them. So around (b) and (c)
 * the flood of the VMs concerned pauses until their agent has the last event safely (in its
 * outbox for (b), in the stream for (c)), and resumes once QEMU has seen the hang-up (for (b))
 * or the stream has the agent's "disconnected" notice (for (c)): from then on every event is
 * unambiguously unwatched until a client negotiates again, and watched from that moment on. The
 * flood never pauses for (a), nor on any other VM.
 *
 * Every wait is on a condition (counts reaching the ground truth, a notice in the stream, a
 * socket's client gone) with a generous deadline; nothing waits on a timing.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import Database from "better-sqlite3";
import { rfc3339, vmSubjects } from "../../src/fleet/index.js";
import { natsServerTest, startNatsServer } from "../support/nats-server.js";
import { readStream, type StoredMessage, until } from "./support.js";
import {
  type AgentProcess,
  StreamWatcher,
  startAgentProcess,
  startVmHost,
  untilEveryVm,
  type VmHost,
} from "./vm-hosts.js";
import type { VmStatus } from "./vm-host.js";

const root = mkdtempSync(join(tmpdir(), "qmpkit-chaos-"));
after(() => rmSync(root, { recursive: true, force: true }));

const HOSTS = ["h1", "h2", "h3"] as const;
const VMS = ["vm1", "vm2", "vm3"] as const;
/** Generous: the machine has 2 cores and other tests run beside this one. */
const DEADLINE_MS = 90_000;

/** The newest outbox row of `key` in an agent's journal (its payload, parsed). */
function lastOutboxPayload(journal: string, key: string): Record<string, unknown> | undefined {
  const db = new Database(journal, { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare("SELECT payload FROM outbox WHERE key = ? ORDER BY seq DESC LIMIT 1")
      .get(key) as { payload: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.payload) as Record<string, unknown>);
  } finally {
    db.close();
  }
}

function eventId(m: StoredMessage): number {
  assert.equal(m.message.kind, "event");
  return m.message.kind === "event" ? Number(m.message.event.data?.id) : Number.NaN;
}

suite("the fleet under chaos", natsServerTest(), () => {
  test("should have every watched event in the stream exactly once and in order, and every unwatched one in a gap record, through a broker kill -9, an agent kill -9 and a QEMU restart", {
    timeout: 300_000,
  }, async () => {
    const started = Date.now();
    const nats = await startNatsServer();
    const hosts = new Map<string, VmHost>();
    const agents = new Map<string, AgentProcess>();
    const journal = (h: string) => join(root, h, "agent.db");
    const glob = (h: string) => join(root, h, "vms", "*.qmp");
    const startAgent = (h: string) =>
      agents.set(h, startAgentProcess(nats.url, h, journal(h), glob(h)));
    let watcher: StreamWatcher | undefined;
    try {
      for (const h of HOSTS) {
        mkdirSync(join(root, h, "vms"), { recursive: true });
        hosts.set(h, await startVmHost(join(root, h, "vms"), VMS));
        startAgent(h);
      }
      watcher = await StreamWatcher.open(nats.url);
      const w = watcher;
      const host = (h: string) => hosts.get(h)!;
      const everyVm = (
        what: string,
        check: (h: string, vm: string, s: VmStatus) => boolean,
        only: readonly string[] = HOSTS,
      ) => untilEveryVm(what, new Map(only.map((h) => [h, host(h)])), check, DEADLINE_MS);
      const emittedNow = async () => {
        const out = new Map<string, number>();
        for (const h of HOSTS) {
          const status = await host(h).status();
          for (const vm of VMS) out.set(`${h}/${vm}`, status[vm]!.emitted);
        }
        return out;
      };
      const storedEvents = async (h: string, vm: string) => {
        let n = 0;
        for (const c of (await w.subjectCounts(`qmp.${h}.${vm}.event.>`)).values()) n += c;
        return n;
      };
      const lastWatch = (h: string, vm: string) => w.last(vmSubjects(h, vm).watch);

      await everyVm("every VM watched by its agent", (_h, _vm, s) => s.clients > 0);
      for (const h of HOSTS) await host(h).ask({ op: "flood", vms: "all", on: true, tickMs: 10 });
      await until(
        "events of every VM in the stream",
        async () => {
          for (const h of HOSTS)
            for (const vm of VMS) if ((await storedEvents(h, vm)) < 200) return false;
          return true;
        },
        DEADLINE_MS,
      );

      // (a) The broker dies; every agent keeps watching and fills its outbox.
      await nats.kill();
      let mark = await emittedNow();
      await everyVm(
        "200 events per VM while the broker is down",
        (h, vm, s) => s.emitted >= mark.get(`${h}/${vm}`)! + 200,
      );

      // (b) Agent h2 dies while the broker is down, its outbox holding unacknowledged messages.
      await host("h2").ask({ op: "flood", vms: "all", on: false });
      const paused = await host("h2").status();
      await until(
        "h2's agent to have its VMs' last events in its outbox",
        () =>
          VMS.every((vm) => {
            const p = lastOutboxPayload(journal("h2"), vmSubjects("h2", vm).key);
            const data = p?.data as { data?: { id?: string } } | undefined;
            return data?.data?.id === String(paused[vm]!.emitted - 1);
          }),
        DEADLINE_MS,
      );
      const db = new Database(journal("h2"), { readonly: true });
      const unacked = (
        db.prepare("SELECT count(*) AS n FROM outbox WHERE acked_us IS NULL").get() as { n: number }
      ).n;
      db.close();
      assert.ok(unacked > 0, "h2's outbox holds messages the stream has not acknowledged");
      const killed = await agents.get("h2")!.stop("SIGKILL");
      assert.equal(killed.signal, "SIGKILL");
      // QEMU has seen the hang-up: from now on h2's events are written to nobody.
      await everyVm("h2's VMs to see their watcher gone", (_h, _vm, s) => s.clients === 0, ["h2"]);
      mark = await emittedNow();
      await host("h2").ask({ op: "flood", vms: "all", on: true });
      await everyVm(
        "100 unwatched events per h2 VM",
        (h, vm, s) => s.emitted >= mark.get(`${h}/${vm}`)! + 100,
        ["h2"],
      );

      await nats.restart();
      startAgent("h2");
      await everyVm("h2's VMs watched again", (_h, _vm, s) => s.clients > 0, ["h2"]);

      // (c) h3/vm1's QEMU dies and a new one starts on the same socket.
      mark = await emittedNow();
      await everyVm(
        "200 more events per VM",
        (h, vm, s) => s.emitted >= mark.get(`${h}/${vm}`)! + 200,
      );
      await host("h3").ask({ op: "flood", vms: ["vm1"], on: false });
      const vm1 = (await host("h3").status()).vm1!;
      await until(
        "h3/vm1's events in the stream",
        async () => (await storedEvents("h3", "vm1")) === vm1.watched,
        DEADLINE_MS,
      );
      await host("h3").ask({ op: "kill-qemu", vm: "vm1" });
      await until(
        "the agent's notice that h3/vm1 hung up",
        async () => {
          const m = await lastWatch("h3", "vm1");
          return m?.kind === "watch" && m.notice.kind === "disconnected";
        },
        DEADLINE_MS,
      );
      await host("h3").ask({ op: "flood", vms: ["vm1"], on: true });
      await host("h3").ask({ op: "start-qemu", vm: "vm1" });
      await everyVm("h3/vm1 watched again", (_h, vm, s) => vm !== "vm1" || s.clients > 0, ["h3"]);
      mark = await emittedNow();
      await everyVm(
        "100 more events per VM",
        (h, vm, s) => s.emitted >= mark.get(`${h}/${vm}`)! + 100,
      );

      // The end: the flood stops, the agents drain their outboxes.
      for (const h of HOSTS) await host(h).ask({ op: "flood", vms: "all", on: false });
      const final = new Map<string, Awaited<ReturnType<VmHost["status"]>>>();
      for (const h of HOSTS) final.set(h, await host(h).status());
      await until(
        "every watched event in the stream",
        async () => {
          for (const h of HOSTS)
            for (const vm of VMS)
              if ((await storedEvents(h, vm)) !== final.get(h)![vm]!.watched) return false;
          return true;
        },
        DEADLINE_MS,
      ).catch(async (error: unknown) => {
        // Say where it stands: per VM, stored against watched, and what the agents said.
        const where: string[] = [];
        for (const h of HOSTS)
          for (const vm of VMS)
            where.push(
              `${h}/${vm}: ${await storedEvents(h, vm)} stored, ${final.get(h)![vm]!.watched} watched`,
            );
        const all = await readStream(nats.url);
        for (const h of HOSTS)
          for (const vm of VMS) {
            const have = new Set(
              all
                .filter(
                  (m) => m.message.host === h && m.message.vm === vm && m.message.kind === "event",
                )
                .map(eventId),
            );
            const missing = host(h)
              .truth(vm)
              .filter((t) => t.watched && !have.has(t.n));
            if (missing.length > 0)
              where.push(
                `${h}/${vm} missing: ${JSON.stringify(missing)}; around them: ${JSON.stringify(
                  host(h)
                    .truth(vm)
                    .filter((t) => Math.abs(t.n - missing[0]!.n) < 4),
                )}`,
              );
          }
        const logs = [...agents].map(([h, a]) => `--- agent ${h}:\n${a.log()}`).join("\n");
        throw new Error(`${(error as Error).message}\n${where.join("\n")}\n${logs}`);
      });
      // The fleet's current view (the KV bucket) caught up too: every VM connected again, its
      // newest event the last one it emitted (all of them watched: the flood ended watched).
      await until(
        "every VM's KV entry current",
        async () => {
          const kv = await w.kvEntries();
          return HOSTS.every((h) =>
            VMS.every((vm) => {
              const e = kv.get(vmSubjects(h, vm).key);
              const last = host(h).truth(vm).at(-1)!;
              return (
                last.watched &&
                e?.connection === "connected" &&
                e.lastEvent?.time === rfc3339(Math.floor(last.us / 1e6), last.us % 1e6)
              );
            }),
          );
        },
        DEADLINE_MS,
      );
      const stored = await readStream(nats.url);

      // ------------------------------------------------------------------ the accounts
      assert.equal(
        new Set(stored.map((m) => m.message.id)).size,
        stored.length,
        "no message id twice",
      );
      for (const m of stored)
        assert.equal(m.msgId, m.message.id, "the Nats-Msg-Id is the envelope's id");
      const lines: string[] = [];
      let totals = { emitted: 0, watched: 0, unwatched: 0, gaps: 0, messages: 0 };
      for (const h of HOSTS) {
        for (const vm of VMS) {
          const label = `${h}/${vm}`;
          const truth = host(h).truth(vm);
          assert.equal(
            truth.length,
            final.get(h)![vm]!.emitted,
            `${label}: the ground truth file is whole`,
          );
          const mine = stored.filter((m) => m.message.host === h && m.message.vm === vm);
          // Sequence numbers 1, 2, 3, … in stream order.
          assert.deepEqual(
            mine.map((m) => m.message.sequence),
            mine.map((_, i) => i + 1),
            `${label}: sequence numbers in stream order`,
          );
          // Every watched event once, in emission order, with QEMU's timestamp.
          const watched = truth.filter((t) => t.watched);
          const events = mine.filter((m) => m.message.kind === "event");
          assert.deepEqual(
            events.map(eventId),
            watched.map((t) => t.n),
            `${label}: the watched events, once each, in order`,
          );
          events.forEach((m, i) => {
            const e = m.message.kind === "event" ? m.message.event : undefined;
            assert.equal(
              e!.timestamp.seconds * 1_000_000 + e!.timestamp.microseconds,
              watched[i]!.us,
            );
          });
          // Every unwatched event in exactly the gap record where it is missing.
          const unwatched = truth.filter((t) => !t.watched);
          const gaps = mine.flatMap((m, at) =>
            m.message.kind === "watch" && m.message.notice.kind === "reconnected"
              ? [{ at, m }]
              : [],
          );
          const covered: number[] = [];
          for (const { at, m } of gaps) {
            const before = mine
              .slice(0, at)
              .filter((x) => x.message.kind === "event")
              .at(-1);
            const next = mine.slice(at + 1).find((x) => x.message.kind === "event");
            const from = before === undefined ? 0 : eventId(before) + 1;
            const to = next === undefined ? truth.length : eventId(next);
            const notice = m.message.kind === "watch" ? m.message.notice : undefined;
            const sinceMs = Number(notice?.sinceMs);
            const untilMs = Number(notice?.untilMs);
            for (let n = from; n < to; n++) {
              const t = truth[n]!;
              assert.equal(
                t.watched,
                false,
                `${label}: event ${n} before the gap record is unwatched`,
              );
              assert.ok(
                t.us >= sinceMs * 1000 && t.us < (untilMs + 1) * 1000,
                `${label}: event ${n} (${t.us} µs) within the gap ${sinceMs}..${untilMs} ms`,
              );
              covered.push(n);
            }
          }
          assert.deepEqual(
            covered,
            unwatched.map((t) => t.n),
            `${label}: every unwatched event in a gap record`,
          );
          // Which gaps there were, by design of the run.
          const expectedGaps = h === "h2" ? 1 : h === "h3" && vm === "vm1" ? 1 : 0;
          assert.equal(gaps.length, expectedGaps, `${label}: gap records`);
          if (h === "h2")
            assert.equal(
              gaps[0]!.m.message.kind === "watch" && gaps[0]!.m.message.notice.agent,
              "restarted",
            );
          if (h === "h3" && vm === "vm1")
            assert.equal(
              gaps[0]!.m.message.kind === "watch" && gaps[0]!.m.message.notice.restarted,
              true,
              "a new QEMU process",
            );
          const kinds = (k: string) => mine.filter((m) => m.message.kind === k).length;
          const notices = mine
            .filter((m) => m.message.kind === "watch")
            .map((m) => (m.message.kind === "watch" ? m.message.notice.kind : ""));
          // And no other notice: connected once; h2's agent restarted (its gap, then connected
          // again); h3/vm1 hung up and came back (one gap); the broker's outage is no gap at all.
          const expectedNotices =
            h === "h2"
              ? ["connected", "reconnected", "connected"]
              : h === "h3" && vm === "vm1"
                ? ["connected", "disconnected", "reconnected"]
                : ["connected"];
          assert.deepEqual(notices, expectedNotices, `${label}: watch notices`);
          lines.push(
            `${label}: emitted ${truth.length} = ${watched.length} watched (in the stream, once each) + ${unwatched.length} unwatched (in ${gaps.length} gap record(s)); ${mine.length} messages: ${events.length} events, ${kinds("state")} state, ${kinds("watch")} watch [${notices.join(",")}]`,
          );
          totals = {
            emitted: totals.emitted + truth.length,
            watched: totals.watched + watched.length,
            unwatched: totals.unwatched + unwatched.length,
            gaps: totals.gaps + gaps.length,
            messages: totals.messages + mine.length,
          };
        }
      }
      assert.equal(totals.messages, stored.length, "every message in the stream belongs to a VM");
      assert.equal(totals.gaps, 4);
      for (const h of HOSTS) {
        const result = await agents.get(h)!.stop();
        assert.equal(result.status, 0, agents.get(h)!.log());
      }
      assert.match(agents.get("h1")!.log(), /lost the NATS connection/);
      assert.match(agents.get("h2")!.log(), /message\(s\) from an earlier run wait in the outbox/);
      process.stderr.write(
        `chaos: ${lines.join("\n       ")}\nchaos: ${totals.emitted} events emitted = ${totals.watched} watched, all in the stream exactly once + ${totals.unwatched} unwatched, all in ${totals.gaps} gap records; h2's outbox held ${unacked} unacknowledged message(s) at its kill -9; ${stored.length} messages in the stream; ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    } finally {
      await watcher?.close().catch(() => {});
      for (const a of agents.values()) await a.stop("SIGKILL");
      for (const h of hosts.values()) await h.close();
      await nats.dispose();
    }
  });
});
