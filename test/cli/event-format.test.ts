import assert from "node:assert/strict";
import { suite, test } from "node:test";
import {
  createEventFilter,
  flattenData,
  formatDelta,
  formatEventJson,
  formatStateJson,
  formatWatchJson,
  HumanEventFormatter,
  localTime,
  type QmpEventMessage,
  qmpTimestamp,
  unknownEventNames,
  watchNoticeText,
} from "../../src/cli/event-format.js";

const ts = (seconds: number, microseconds = 0) => ({ seconds, microseconds });
const panic: QmpEventMessage = {
  event: "GUEST_PANICKED",
  data: { action: "pause", info: { type: "hyper-v", arg1: 1 } },
  timestamp: ts(1_700_000_000, 250_000),
};
const stop: QmpEventMessage = { event: "STOP", timestamp: ts(1_700_000_000, 750_000) };
const shutdown: QmpEventMessage = {
  event: "SHUTDOWN",
  data: { guest: true, reason: "guest-shutdown" },
  timestamp: ts(1_700_000_002),
};

suite("event filters", () => {
  test("should keep only the named events, with wildcards and commas", () => {
    const f = createEventFilter({ only: ["stop,guest_*"] });
    assert.deepEqual(
      [panic, stop, shutdown].filter(f).map((e) => e.event),
      ["GUEST_PANICKED", "STOP"],
    );
  });

  test("should drop excepted events", () => {
    const f = createEventFilter({ except: ["STOP"] });
    assert.deepEqual(
      [panic, stop, shutdown].filter(f).map((e) => e.event),
      ["GUEST_PANICKED", "SHUTDOWN"],
    );
  });

  test("should match data by dotted path, negation and non-string values", () => {
    const events = [panic, stop, shutdown];
    assert.deepEqual(events.filter(createEventFilter({ where: ["info.type=hyper-v"] })), [panic]);
    assert.deepEqual(events.filter(createEventFilter({ where: ["guest=true"] })), [shutdown]);
    assert.deepEqual(events.filter(createEventFilter({ where: ["action!=pause"] })), [
      stop,
      shutdown,
    ]);
    assert.deepEqual(
      events.filter(createEventFilter({ where: ["guest=true", "reason=guest-reset"] })),
      [],
    );
  });

  test("should point out filter names no event has, ignoring patterns", () => {
    const known = ["STOP", "RESUME", "SHUTDOWN"];
    assert.deepEqual(
      unknownEventNames({ only: ["stop,SHUTDWON"], except: ["RTC_*", "NOPE"] }, known),
      ["SHUTDWON", "NOPE"],
    );
    assert.deepEqual(unknownEventNames({ only: ["resume"] }, known), []);
  });

  test("should reject a malformed --where", () => {
    assert.throws(
      () => createEventFilter({ where: ["guest"] }),
      /invalid --where 'guest': expected key=value/,
    );
    assert.throws(() => createEventFilter({ where: ["a..b=1"] }), /'a\.\.b' is not a member path/);
  });
});

suite("human output", () => {
  test("should flatten data to key=value, quoting strings with spaces", () => {
    assert.deepEqual(flattenData(panic.data), ["action=pause", "info.type=hyper-v", "info.arg1=1"]);
    assert.deepEqual(flattenData({ msg: "a b", empty: {} }), ['msg="a b"', "empty={}"]);
  });

  test("should format deltas at a readable precision", () => {
    assert.equal(formatDelta(512), "+0.512s");
    assert.equal(formatDelta(-440), "-0.440s");
    assert.equal(formatDelta(12_340), "+12.3s");
    assert.equal(formatDelta(184_000), "+3m04s");
    assert.equal(formatDelta(7_500_000), "+2h05m");
  });

  test("should print time, label, delta per VM, name and data without colour", () => {
    const f = new HumanEventFormatter({ color: false });
    f.reserveLabels(["web1", "db"]);
    const at = (e: QmpEventMessage) =>
      localTime(e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000);
    assert.equal(
      f.event("web1", panic),
      `${at(panic)}  web1             GUEST_PANICKED  action=pause info.type=hyper-v info.arg1=1`,
    );
    assert.equal(f.event("db", stop), `${at(stop)}  db               STOP`);
    assert.equal(f.event("web1", stop), `${at(stop)}  web1    +0.500s  STOP`);
    assert.equal(
      f.event("web1", shutdown),
      `${at(shutdown)}  web1    +1.250s  SHUTDOWN  guest=true reason=guest-shutdown`,
    );
    assert.match(f.stateChange("web1", "running", "paused"), /web1 {13}state running → paused$/);
  });

  test("should colour only when asked", () => {
    const plain = new HumanEventFormatter({ color: false }).event("vm", panic);
    const coloured = new HumanEventFormatter({ color: true }).event("vm", panic);
    assert.doesNotMatch(plain, /\x1b\[/);
    assert.match(coloured, /\x1b\[31mGUEST_PANICKED/);
  });
});

suite("JSON output", () => {
  test("should print one object per event with the VM label and exact big integers", () => {
    assert.equal(
      formatEventJson("web1", panic),
      '{"vm":"web1","event":"GUEST_PANICKED","data":{"action":"pause","info":{"type":"hyper-v","arg1":1}},"timestamp":{"seconds":1700000000,"microseconds":250000}}',
    );
    assert.equal(
      formatEventJson("x", { event: "E", data: { n: 18446744073709551615n }, timestamp: ts(1) }),
      '{"vm":"x","event":"E","data":{"n":18446744073709551615},"timestamp":{"seconds":1,"microseconds":0}}',
    );
  });
});

suite("JSON run-state and watch objects", () => {
  test("should turn milliseconds into a QMP timestamp", () => {
    assert.deepEqual(qmpTimestamp(1_700_000_000_250), ts(1_700_000_000, 250_000));
    assert.deepEqual(qmpTimestamp(1_700_000_000_250.5), ts(1_700_000_000, 250_500));
  });

  test("should print a run-state change with its cause and no event member", () => {
    const line = formatStateJson("web1", {
      from: "running",
      to: "paused",
      cause: "STOP",
      atMs: 1_700_000_000_750,
    });
    assert.equal(
      line,
      '{"vm":"web1","run-state":{"from":"running","to":"paused","cause":"STOP"},"timestamp":{"seconds":1700000000,"microseconds":750000}}',
    );
  });

  test("should print each watch notice with its members, the kind under watch", () => {
    const at = 1_700_000_001_000;
    const t = '"timestamp":{"seconds":1700000001,"microseconds":0}';
    assert.equal(
      formatWatchJson("a", { kind: "connected", address: "unix:/x", qemu: "7.2.22" }, at),
      `{"vm":"a","watch":"connected","address":"unix:/x","qemu":"7.2.22",${t}}`,
    );
    assert.equal(
      formatWatchJson(
        "a",
        { kind: "connected", address: "unix:/x", qemu: "7.2.22", state: "paused" },
        at,
      ),
      `{"vm":"a","watch":"connected","address":"unix:/x","qemu":"7.2.22","state":"paused",${t}}`,
    );
    assert.equal(
      formatWatchJson("a", { kind: "disconnected", reconnecting: true }, at),
      `{"vm":"a","watch":"disconnected","reconnecting":true,${t}}`,
    );
    assert.equal(
      formatWatchJson(
        "a",
        { kind: "reconnected", qemu: "8.2.0", sinceMs: 1_700_000_000_000, untilMs: at },
        at,
      ),
      `{"vm":"a","watch":"reconnected","qemu":"8.2.0","gap":{"since":{"seconds":1700000000,"microseconds":0},"until":{"seconds":1700000001,"microseconds":0}},${t}}`,
    );
    assert.equal(
      formatWatchJson("a", { kind: "overflow", dropped: 3 }, at),
      `{"vm":"a","watch":"overflow","dropped":3,${t}}`,
    );
  });

  test("should say the same things to people", () => {
    assert.equal(
      watchNoticeText({ kind: "connected", address: "unix:/x", qemu: "7.2.22", state: "paused" }),
      "connected to QEMU 7.2.22, paused",
    );
    assert.equal(
      watchNoticeText({ kind: "disconnected", reason: "boom", reconnecting: false }),
      "disconnected (boom)",
    );
    assert.equal(
      watchNoticeText({ kind: "disconnected", reconnecting: true }),
      "connection lost; reconnecting",
    );
    assert.equal(
      watchNoticeText({ kind: "reconnected", qemu: "9.0.0", sinceMs: 0, untilMs: 1 }),
      "reconnected to QEMU 9.0.0 after 1 ms; events in between are lost",
    );
    assert.equal(
      watchNoticeText({
        kind: "reconnected",
        qemu: "9.0.0",
        sinceMs: 1_000,
        untilMs: 4_250,
        restarted: true,
      }),
      "reconnected to QEMU 9.0.0 after 3.3 s, a new QEMU process; events in between are lost",
    );
    assert.equal(
      watchNoticeText({
        kind: "reconnected",
        qemu: "9.0.0",
        sinceMs: 0,
        untilMs: 125_000,
        restarted: false,
      }),
      "reconnected to QEMU 9.0.0 after 2 min 5 s, the same QEMU; events in between are lost",
    );
    assert.equal(
      watchNoticeText({ kind: "overflow", dropped: 1 }),
      "1 event dropped here: the output did not keep up",
    );
  });
});
