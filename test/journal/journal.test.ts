/**
 * The journal on its own: WAL and the versioned schema, rows written and read back (batched
 * commits seen by a reader in another connection), the restart gap, retention by age and size,
 * and redaction of secrets (the documented list, each item).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import Database from "better-sqlite3";
import {
  Journal,
  type JournalEntry,
  REDACTED,
  redactHmpLine,
  redactJson,
  redactJsonText,
  SCHEMA_VERSION,
  TimelineBuilder,
} from "../../src/journal/index.js";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-journal-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `j${++n}.db`);

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const ts = (seconds: number, microseconds = 0) => ({ seconds, microseconds });

suite("journal: the database", () => {
  test("should create a WAL database at the current schema version, and refuse a newer one", () => {
    const path = fresh();
    const j = Journal.open(path);
    assert.equal(j.journalMode, "wal");
    assert.equal(j.schemaVersion, SCHEMA_VERSION);
    j.close();
    // Opening again migrates nothing and keeps the version.
    const again = Journal.open(path);
    assert.equal(again.schemaVersion, SCHEMA_VERSION);
    again.close();
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => Journal.open(path), {
      name: "JournalError",
      message: new RegExp(`schema version ${SCHEMA_VERSION + 1} is newer than this qmpkit's`),
    });
    assert.throws(() => Journal.open(join(dir, "missing.db"), { readonly: true }), {
      name: "JournalError",
      message: /cannot open the journal .*missing\.db/,
    });
  });

  test("should let a reader see what the writer committed, in order, with the VM and connection", async () => {
    const path = fresh();
    let now = 1_700_000_000_000;
    const w = Journal.open(path, { host: "h1", now: () => now, flushMs: 60_000, batchRows: 3 });
    const vm = w.vm({ name: "vm1", address: "unix:/run/vm1.qmp" });
    w.notice(vm, { kind: "connected", address: vm.address, qemu: "7.2.22", state: "running" });
    w.event(vm, { event: "STOP", timestamp: ts(1_700_000_001, 5) }, now + 2);
    const r = Journal.open(path, { readonly: true });
    // Two rows pending (batchRows 3): nothing committed yet.
    assert.equal((await all(r.entries())).length, 0);
    w.state(vm, { from: "running", to: "paused", cause: "STOP", atMs: 1_700_000_001_000.005 });
    const rows = await all(r.entries());
    assert.deepEqual(
      rows.map((e) => e.kind),
      ["watch", "event", "state"],
    );
    const event = rows[1] as Extract<JournalEntry, { kind: "event" }>;
    assert.deepEqual(event.event, { event: "STOP", timestamp: ts(1_700_000_001, 5) });
    assert.equal(event.vm, "vm1");
    assert.equal(event.host, "h1");
    assert.equal(event.address, "unix:/run/vm1.qmp");
    assert.equal(event.receivedMs, now + 2);
    assert.equal(typeof event.connection, "number");
    assert.equal(rows[0]!.connection, event.connection);
    const state = rows[2] as Extract<JournalEntry, { kind: "state" }>;
    assert.deepEqual(state.change, {
      from: "running",
      to: "paused",
      cause: "STOP",
      atMs: 1_700_000_001_000.005,
    });
    // close() commits what is pending.
    now += 1000;
    w.event(vm, { event: "RESUME", data: { x: 1 }, timestamp: ts(1_700_000_002) });
    w.close();
    const events = await all(r.entries({ kinds: ["event"], pageSize: 1 }));
    assert.deepEqual(
      events.map((e) => (e.kind === "event" ? [e.event.event, e.event.data] : [])),
      [
        ["STOP", undefined],
        ["RESUME", { x: 1 }],
      ],
    );
    // Queries by VM (globs) and by time (the event's own timestamp).
    assert.equal((await all(r.entries({ vm: "vm*", kinds: ["event"] }))).length, 2);
    assert.equal((await all(r.entries({ vm: "other" }))).length, 0);
    const since = await all(r.entries({ sinceMs: 1_700_000_001_500, kinds: ["event"] }));
    assert.deepEqual(
      since.map((e) => e.kind === "event" && e.event.event),
      ["RESUME"],
    );
    assert.throws(
      () =>
        (r as unknown as { event: Journal["event"] }).event(vm, { event: "X", timestamp: ts(1) }),
      { name: "JournalError", message: /read-only/ },
    );
    r.close();
  });

  test("should note a gap when a recorder starts again on a journal that has rows of the VM", async () => {
    const path = fresh();
    let now = 1_000_000;
    const first = Journal.open(path, { now: () => now });
    const vm = first.vm({ name: "vm1", address: "a" });
    first.notice(vm, { kind: "connected", address: "a", qemu: "7.2.22", state: "running" });
    first.event(vm, { event: "STOP", timestamp: ts(1000) });
    first.flush();
    // Not closed: as if killed.
    now = 5_000_000;
    const second = Journal.open(path, { now: () => now });
    const again = second.vm({ name: "vm1", address: "a" });
    assert.equal(again.id, vm.id);
    second.notice(again, { kind: "connected", address: "a", qemu: "7.2.22", state: "paused" });
    second.close();
    const r = Journal.open(path, { readonly: true });
    const rows = await all(r.entries({ kinds: ["watch"] }));
    assert.deepEqual(
      rows.map((e) => e.kind === "watch" && [e.notice.kind, e.notice.sinceMs, e.notice.untilMs]),
      [
        ["connected", undefined, undefined],
        ["reconnected", 1_000_000, 5_000_000],
        ["connected", undefined, undefined],
        ["disconnected", undefined, undefined],
      ],
    );
    const [timeline] = await all(r.timeline());
    assert.deepEqual(
      timeline!.map((i) => [i.state, i.fromMs, i.untilMs, i.cause]),
      [
        ["running", 1_000_000, 1_000_000, "connected"],
        ["running", 5_000_000, 5_000_000, "reconnected"],
        ["paused", 5_000_000, 5_000_000, "connected"],
      ],
    );
    r.close();
  });
});

suite("journal: retention", () => {
  test("should delete rows older than maxAgeMs", async () => {
    let now = 10_000_000;
    const path = fresh();
    const j = Journal.open(path, { now: () => now, maxAgeMs: 60_000 });
    const vm = j.vm({ name: "vm1", address: "a" });
    for (let i = 0; i < 10; i++) j.event(vm, { event: "E", data: { i }, timestamp: ts(i) });
    j.flush();
    now += 30_000;
    for (let i = 10; i < 15; i++) j.event(vm, { event: "E", data: { i }, timestamp: ts(i) });
    now += 40_000;
    j.flush();
    // The first ten are 70 s old, the last five 40 s.
    const left = await all(j.entries());
    assert.deepEqual(
      left.map((e) => e.kind === "event" && e.event.data?.i),
      [10, 11, 12, 13, 14],
    );
    j.close();
  });

  test("should keep the pages in use under maxSizeBytes, dropping the oldest rows", async () => {
    const path = fresh();
    const max = 256 * 1024;
    const j = Journal.open(path, { maxSizeBytes: max, batchRows: 500 });
    const vm = j.vm({ name: "vm1", address: "a" });
    const pad = "x".repeat(200);
    for (let i = 0; i < 20_000; i++) {
      j.event(vm, { event: "E", data: { i, pad }, timestamp: ts(i) });
      if (i % 500 === 499) j.enforceRetention();
    }
    j.flush();
    j.enforceRetention();
    assert.ok(j.usedBytes() <= max, `${j.usedBytes()} bytes in use`);
    const left = await all(j.entries());
    assert.ok(left.length > 100 && left.length < 20_000, `${left.length} rows kept`);
    // The newest rows are the ones kept, contiguous up to the last.
    const ids = left.map((e) => (e.kind === "event" ? (e.event.data?.i as number) : -1));
    assert.equal(ids.at(-1), 19_999);
    assert.deepEqual(
      ids,
      ids.map((_, k) => ids[0]! + k),
    );
    j.close();
  });
});

suite("journal: secrets", () => {
  test("should redact each documented member and keep the rest", () => {
    assert.deepEqual(
      redactJson({
        execute: "set_password",
        arguments: { protocol: "vnc", password: "hunter2", connected: "keep" },
      }),
      {
        execute: "set_password",
        arguments: { protocol: "vnc", password: REDACTED, connected: "keep" },
      },
    );
    assert.deepEqual(
      redactJson({ execute: "change-vnc-password", arguments: { password: "pw" } }),
      { execute: "change-vnc-password", arguments: { password: REDACTED } },
    );
    assert.deepEqual(
      redactJson({
        execute: "object-add",
        arguments: { "qom-type": "secret", id: "sec0", data: "letmein", format: "raw" },
      }),
      {
        execute: "object-add",
        arguments: { "qom-type": "secret", id: "sec0", data: REDACTED, format: "raw" },
      },
    );
    // `data` of other objects is not a secret.
    assert.deepEqual(redactJson({ "qom-type": "memory-backend-ram", id: "m", data: 1 }), {
      "qom-type": "memory-backend-ram",
      id: "m",
      data: 1,
    });
    assert.deepEqual(
      redactJson({
        execute: "blockdev-add",
        arguments: { driver: "luks", "key-secret": "sec0", file: { "password-secret": "s1" } },
      }),
      {
        execute: "blockdev-add",
        arguments: {
          driver: "luks",
          "key-secret": REDACTED,
          file: { "password-secret": REDACTED },
        },
      },
    );
  });

  test("should redact the passwords of HMP lines it recognises", () => {
    assert.equal(redactHmpLine("set_password vnc hunter2"), `set_password vnc ${REDACTED}`);
    assert.equal(
      redactHmpLine("set_password vnc hunter2 keep"),
      `set_password vnc ${REDACTED} keep`,
    );
    assert.equal(redactHmpLine("change vnc password s3cret"), `change vnc password ${REDACTED}`);
    assert.equal(
      redactHmpLine("object_add secret,id=sec0,data=letmein,format=raw"),
      `object_add secret,id=sec0,data=${REDACTED},format=raw`,
    );
    assert.equal(
      redactHmpLine("drive_add 0 file=x.qcow2,encrypt.key-secret=sec0,password=pw"),
      `drive_add 0 file=x.qcow2,encrypt.key-secret=${REDACTED},password=${REDACTED}`,
    );
    assert.equal(redactHmpLine("info status"), "info status");
    assert.deepEqual(
      redactJson({
        execute: "human-monitor-command",
        arguments: { "command-line": "set_password vnc hunter2" },
      }),
      {
        execute: "human-monitor-command",
        arguments: { "command-line": `set_password vnc ${REDACTED}` },
      },
    );
  });

  test("should keep the text of frames without secrets byte for byte, and redact the others", () => {
    const plain = '{"execute": "query-status", "id": 12345678901234567890}';
    assert.equal(redactJsonText(plain), plain);
    // Mentions a password but carries none: unchanged, original bytes.
    const mention = '{"return": {"password-protected": false}}';
    assert.equal(redactJsonText(mention), mention);
    assert.equal(
      redactJsonText('{"execute":"set_password","arguments":{"protocol":"vnc","password":"x"}}'),
      `{"execute":"set_password","arguments":{"protocol":"vnc","password":"${REDACTED}"}}`,
    );
  });

  test("should write no secret into the journal file", async () => {
    const path = fresh();
    const j = Journal.open(path);
    const vm = j.vm({ name: "vm1", address: "a" });
    j.event(vm, {
      event: "X_TEST",
      data: { password: "hunter2-event" },
      timestamp: ts(1),
    });
    const s = j.openSession(vm, "client#1");
    j.frame(
      s,
      "in",
      '{"execute":"set_password","arguments":{"protocol":"vnc","password":"hunter2-frame"}}',
    );
    j.frame(
      s,
      "in",
      '{"execute":"human-monitor-command","arguments":{"command-line":"change vnc password hunter2-hmp"}}',
    );
    j.closeSession(s);
    j.close();
    const { readFileSync, existsSync } = await import("node:fs");
    for (const file of [path, `${path}-wal`]) {
      if (existsSync(file)) assert.doesNotMatch(readFileSync(file, "latin1"), /hunter2/);
    }
    const r = Journal.open(path, { readonly: true });
    const frames = await all(r.frames());
    assert.equal(frames.length, 2);
    assert.ok(frames.every((f) => f.text.includes(REDACTED) && f.peer === "client#1"));
    assert.ok(frames[1]!.monoNs > frames[0]!.monoNs);
    r.close();
  });
});

suite("journal: timeline", () => {
  test("should cut intervals at changes, disconnects and gaps", () => {
    const b = new TimelineBuilder();
    b.add({ vm: "a", kind: "watch", name: "connected", detail: "prelaunch", atMs: 0 });
    b.add({ vm: "a", kind: "state", name: "running", detail: "RESUME", atMs: 10 });
    b.add({ vm: "b", kind: "watch", name: "connected", detail: "running", atMs: 15 });
    b.add({ vm: "a", kind: "watch", name: "disconnected", atMs: 20 });
    b.add({
      vm: "a",
      kind: "watch",
      name: "reconnected",
      atMs: 30,
      gap: { sinceMs: 20, untilMs: 30 },
    });
    b.add({ vm: "a", kind: "state", name: "paused", detail: "query-status", atMs: 31 });
    const r = b.result();
    assert.deepEqual(
      r.get("a")!.map((i) => [i.state, i.fromMs, i.untilMs, i.cause]),
      [
        ["prelaunch", 0, 10, "connected"],
        ["running", 10, 20, "RESUME"],
        ["running", 30, 31, "reconnected"],
        ["paused", 31, undefined, "query-status"],
      ],
    );
    assert.deepEqual(
      r.get("b")!.map((i) => [i.state, i.fromMs, i.untilMs, i.cause]),
      [["running", 15, undefined, "connected"]],
    );
  });
});

suite("journal: live readers", () => {
  test("should hand each commit's entries to onCommit listeners with their sequence numbers", async () => {
    const j = Journal.open(fresh());
    const vm = j.vm({ name: "vm1", address: "unix:/a", host: "h1" });
    const seen: JournalEntry[][] = [];
    const stop = j.onCommit((entries) => seen.push([...entries]));
    j.notice(vm, { kind: "connected", address: "unix:/a", qemu: "7.2.22", state: "running" });
    j.event(vm, { event: "STOP", timestamp: ts(5) });
    j.state(vm, { from: "running", to: "paused", cause: "STOP", atMs: 5000 });
    j.flush();
    j.event(vm, { event: "RESUME", timestamp: ts(6) });
    j.flush();
    stop();
    j.event(vm, { event: "STOP", timestamp: ts(7) });
    j.flush();
    assert.deepEqual(
      seen.map((batch) => batch.map((e) => e.id)),
      [[1, 2, 3], [4]],
    );
    const stored = await all(j.entries());
    assert.deepEqual(seen.flat(), stored.slice(0, 4));
    assert.equal(seen[0]![1]!.host, "h1");
    assert.equal(j.lastId(), 5);
    assert.deepEqual(
      (await all(j.entries({ afterId: 3 }))).map((e) => e.id),
      [4, 5],
    );
    assert.deepEqual(await all(j.entries({ afterId: 5 })), []);
    await assert.rejects(all(j.entries({ afterId: 1.5 })), { name: "JournalError" });
    j.close();
  });

  test("should keep the newest entry when retention empties the table, so ids keep rising", () => {
    let now = 10_000_000;
    const j = Journal.open(fresh(), { now: () => now, maxAgeMs: 1000 });
    const vm = j.vm({ name: "vm1", address: "a" });
    for (let i = 0; i < 3; i++) j.event(vm, { event: "E", timestamp: ts(i) });
    j.flush();
    now += 60_000;
    j.enforceRetention();
    assert.equal(j.lastId(), 3);
    j.event(vm, { event: "E", timestamp: ts(9) });
    j.flush();
    assert.equal(j.lastId(), 4);
    j.close();
  });
});

suite("journal: pages of recent rows and seeded timelines", () => {
  test("should read the newest first between two sequence numbers", async () => {
    const j = Journal.open(fresh());
    const vm = j.vm({ name: "vm1", address: "a" });
    for (let i = 0; i < 7; i++) j.event(vm, { event: "E", data: { i }, timestamp: ts(i) });
    j.flush();
    const ids = async (q: Parameters<Journal["entries"]>[0]) =>
      (await all(j.entries(q))).map((e) => e.id);
    assert.deepEqual(await ids({ order: "desc", pageSize: 2 }), [7, 6, 5, 4, 3, 2, 1]);
    assert.deepEqual(await ids({ order: "desc", beforeId: 6, afterId: 2, pageSize: 2 }), [5, 4, 3]);
    assert.deepEqual(await ids({ beforeId: 4, afterId: 1 }), [2, 3]);
    j.close();
  });

  test("should carry a seeded timeline on with what follows", () => {
    const b = new TimelineBuilder();
    b.seed([
      { vm: "h/vm1", state: "paused", fromMs: 0, untilMs: 10, cause: "connected" },
      { vm: "h/vm1", state: "running", fromMs: 10, untilMs: undefined, cause: "RESUME" },
    ]);
    b.add({ vm: "h/vm1", kind: "state", name: "guest-panicked", detail: "STOP", atMs: 25 });
    assert.deepEqual(b.intervalsOf("h/vm1"), [
      { vm: "h/vm1", state: "paused", fromMs: 0, untilMs: 10, cause: "connected" },
      { vm: "h/vm1", state: "running", fromMs: 10, untilMs: 25, cause: "RESUME" },
      { vm: "h/vm1", state: "guest-panicked", fromMs: 25, untilMs: undefined, cause: "STOP" },
    ]);
    assert.deepEqual(b.vms(), ["h/vm1"]);
  });
});
