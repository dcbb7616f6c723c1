/**
 * The pieces of the fleet without a broker: the outbox in the journal (ids that survive a
 * reopen and are never reused, committed-only hand-over, acknowledgements, bounds that drop the
 * oldest but never a pinned or in-flight message), the subject tokens and the envelope.
 */
import assert from "node:assert/strict";
import { after, suite, test } from "node:test";
import { join } from "node:path";
import { setImmediate as tick } from "node:timers/promises";
import {
  decodeEnvelope,
  decodeToken,
  encodeEnvelope,
  encodeToken,
  fleetFilterSubject,
  parseRfc3339,
  parseSubject,
  vmSubjects,
} from "../../src/fleet/index.js";
import { Journal, type OutboxDrop, type OutboxMessage } from "../../src/journal/index.js";
import { tempRoot } from "./support.js";

const temp = tempRoot("outbox");
after(() => temp.dispose());

suite("outbox", () => {
  test("should hand over only committed messages, with ids that survive a reopen and are never reused", async () => {
    const path = join(temp.dir(), "a.db");
    const committed: OutboxMessage[] = [];
    let journal = Journal.open(path);
    let outbox = journal.outbox({ onCommit: (m) => committed.push(...m) });
    const a = outbox.add("h.vm1", "qmp.h.vm1.state", ({ msgId, keySeq }) => `${msgId}/${keySeq}`);
    const b = outbox.add("h.vm2", "qmp.h.vm2.state", ({ msgId, keySeq }) => `${msgId}/${keySeq}`);
    const c = outbox.add("h.vm1", "qmp.h.vm1.state", ({ msgId, keySeq }) => `${msgId}/${keySeq}`);
    assert.equal(committed.length, 0, "nothing before the commit");
    await tick();
    assert.deepEqual(
      committed.map((m) => [m.seq, m.key, m.keySeq]),
      [
        [1, "h.vm1", 1],
        [2, "h.vm2", 1],
        [3, "h.vm1", 2],
      ],
    );
    assert.equal(a.msgId, `${outbox.id}-1`);
    assert.equal(c.payload, `${outbox.id}-3/2`);
    outbox.ack(a, 10);
    outbox.ack(b, 11);
    const id = outbox.id;
    journal.close();

    journal = Journal.open(path);
    outbox = journal.outbox();
    assert.equal(outbox.id, id, "the outbox id is the file's");
    assert.deepEqual(outbox.waitingMessages(), [{ ...c }]);
    assert.equal(outbox.waiting, 1);
    assert.equal(outbox.keyInfo("h.vm1")?.lastKeySeq, 2);
    outbox.ack(c, 12);
    journal.close();

    // Every row acknowledged and the acknowledged rows pruned: numbers still go on.
    journal = Journal.open(path);
    outbox = journal.outbox({ keepAcked: 0 });
    const d = outbox.add("h.vm1", "s", () => "d");
    assert.equal(d.seq, 4);
    assert.equal(d.keySeq, 3);
    journal.close();
  });

  test("should drop the oldest waiting messages over a bound, loudly, but never a pinned or in-flight one", async () => {
    const drops: OutboxDrop[] = [];
    const journal = Journal.open(join(temp.dir(), "b.db"));
    const outbox = journal.outbox({
      maxMessages: 10,
      onDrop: (d) => drops.push(...d),
      inFlight: (seq) => seq === 1,
    });
    outbox.add("k", "s", () => "m1");
    outbox.add("k", "s", () => "notice", { pinned: true });
    for (let i = 3; i <= 12; i++) outbox.add("k", "s", () => `m${i}`);
    await tick();
    // 12 waiting > 10: down to 9, the oldest first, skipping #1 (in flight) and #2 (pinned).
    assert.equal(outbox.waiting, 9);
    assert.deepEqual(
      drops.map((d) => [d.key, d.seqs, d.keySeqs, d.reason]),
      [["k", [3, 4, 5], [3, 4, 5], "messages"]],
    );
    assert.deepEqual(
      outbox.waitingMessages().map((m) => m.seq),
      [1, 2, 6, 7, 8, 9, 10, 11, 12],
    );
    assert.equal(outbox.dropped, 3);
    // A waiting notice grows in place: same id, new text.
    const notice = outbox.waitingMessages()[1]!;
    const grown = outbox.replace(notice, "notice, grown");
    assert.deepEqual(grown, { ...notice, payload: "notice, grown" });
    assert.equal(outbox.waitingMessages()[1]!.payload, "notice, grown");
    journal.close();
  });
});

suite("subjects and envelope", () => {
  test("should encode names as subject tokens and KV key parts, reversibly", () => {
    for (const name of ["web1", "web1.example.org", "vm 1", "a/b", "é*>=", "x=2E"]) {
      const token = encodeToken(name);
      assert.match(token, /^[A-Za-z0-9_/=-]+$/, name);
      assert.equal(decodeToken(token), name);
    }
    assert.equal(encodeToken("web1.example.org"), "web1=2Eexample=2Eorg");
    const s = vmSubjects("h.x", "vm1");
    assert.deepEqual(
      [s.event("STOP"), s.state, s.watch, s.exec, s.key],
      [
        "qmp.h=2Ex.vm1.event.STOP",
        "qmp.h=2Ex.vm1.state",
        "qmp.h=2Ex.vm1.watch",
        "qmp-exec.h=2Ex.vm1",
        "h=2Ex.vm1",
      ],
    );
    assert.deepEqual(parseSubject("qmp.h=2Ex.vm1.event.STOP"), {
      host: "h.x",
      vm: "vm1",
      kind: "event",
      event: "STOP",
    });
    assert.equal(parseSubject("qmp-exec.h.vm1"), undefined);
    assert.equal(fleetFilterSubject("web1/*"), "qmp.web1.*.>");
    assert.equal(fleetFilterSubject("web1"), "qmp.web1.*.>");
    assert.equal(fleetFilterSubject("*/db?"), "qmp.*.*.>");
    assert.equal(fleetFilterSubject(undefined), "qmp.>");
    assert.throws(() => encodeToken(""), /must not be empty/);
  });

  test("should carry QEMU's timestamp as the stamp, to the microsecond, and decode what it encodes", () => {
    const event = {
      event: "STOP",
      timestamp: { seconds: 1796587001, microseconds: 7 },
    };
    const text = encodeEnvelope({ host: "h", vm: "vm1", kind: "event", event }, "abc-1", 1);
    const o = JSON.parse(text) as Record<string, unknown>;
    assert.equal(o.time, "2026-12-06T19:56:41.000007Z");
    assert.deepEqual(
      [o.specversion, o.id, o.type, o.source, o.subject, o.sequence],
      ["1.0", "abc-1", "qmp.event", "qmpkit://h/agent", "h/vm1", 1],
    );
    assert.deepEqual(decodeEnvelope(text), {
      id: "abc-1",
      host: "h",
      vm: "vm1",
      sequence: 1,
      timeMs: 1796587001000.007,
      kind: "event",
      event,
    });
    const state = decodeEnvelope(
      encodeEnvelope(
        {
          host: "h",
          vm: "vm1",
          kind: "state",
          change: { from: "running", to: "paused", cause: "STOP", atMs: 1796587001000.5 },
        },
        "abc-2",
        2,
      ),
    );
    assert.deepEqual(state.kind === "state" && state.change, {
      from: "running",
      to: "paused",
      cause: "STOP",
      atMs: 1796587001000.5,
    });
    assert.equal(parseRfc3339("2026-12-06T19:56:41.5Z"), 1796587001500);
    assert.throws(() => decodeEnvelope("{"), /not JSON/);
    assert.throws(() => decodeEnvelope('{"specversion":"0.3"}'), /not a CloudEvents 1\.0/);
    assert.throws(() => decodeEnvelope("[]"), /not a JSON object/);
  });
});
