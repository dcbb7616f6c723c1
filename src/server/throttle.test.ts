import assert from "node:assert/strict";
import { suite, test } from "node:test";
import type { JsonObject } from "../base/json.js";
import { ManualClock } from "./clock.js";
import {
  EventThrottle,
  THROTTLE_TABLE_7_2,
  THROTTLE_TABLE_10_2,
  type ThrottleTable,
  throttleTableFor,
} from "./throttle.js";

/** A throttle on a manual clock that records what it delivers, with the clock time of delivery. */
function setup(table: ThrottleTable = THROTTLE_TABLE_7_2) {
  const clock = new ManualClock({ startMicros: 0 });
  const delivered: Array<{ at: number; event: JsonObject }> = [];
  const throttle = new EventThrottle({
    table,
    clock,
    deliver: (event) => delivered.push({ at: clock.nowMicros() / 1000, event }),
  });
  /** Builds an event stamped now, as the server does, and submits it. */
  const submit = (name: string, data?: JsonObject) => {
    const event: JsonObject = { event: name, timestamp: clock.nowMicros() };
    if (data !== undefined) event.data = data;
    throttle.submit(name, event, data);
    return event;
  };
  const names = () => delivered.map((d) => `${d.at}:${d.event.event}@${d.event.timestamp}`);
  return { clock, throttle, delivered, submit, names };
}

suite("EventThrottle", () => {
  test("should deliver an event that is not throttled at once, every time, with no record", () => {
    const { clock, throttle, submit, names } = setup();
    submit("STOP");
    submit("STOP");
    clock.advance(10);
    submit("RESUME");
    assert.deepEqual(names(), ["0:STOP@0", "0:STOP@0", "10:RESUME@10000"]);
    assert.equal(throttle.activeRecords, 0);
    assert.equal(clock.pendingTimers, 0);
  });

  test("should deliver the first throttled event at once and arm a 1000 ms timer", () => {
    const { clock, throttle, submit, names } = setup();
    submit("RTC_CHANGE", { offset: 1, "qom-path": "/rtc" });
    assert.deepEqual(names(), ["0:RTC_CHANGE@0"]);
    assert.equal(throttle.activeRecords, 1);
    assert.equal(throttle.heldEvents, 0);
    assert.equal(clock.pendingTimers, 1);
  });

  test("should hold later events and send only the latest when the timer fires, with its own timestamp", () => {
    const { clock, throttle, submit, delivered } = setup();
    submit("WATCHDOG", { action: "none" });
    clock.advance(200);
    submit("WATCHDOG", { action: "reset" });
    clock.advance(300);
    const latest = submit("WATCHDOG", { action: "debug" });
    assert.equal(delivered.length, 1, "nothing more is sent during the period");
    assert.equal(throttle.heldEvents, 1);
    clock.advance(499.999);
    assert.equal(delivered.length, 1, "the timer fires at exactly first + 1000 ms");
    clock.advance(0.001);
    assert.equal(delivered.length, 2);
    assert.equal(delivered[1]!.at, 1000);
    assert.equal(delivered[1]!.event, latest, "the held event is the last one, unchanged");
    assert.equal(
      delivered[1]!.event.timestamp,
      500_000,
      "stamped when it was built, not when sent",
    );
    assert.deepEqual(delivered[1]!.event.data, { action: "debug" });
    assert.equal(throttle.heldEvents, 0);
    assert.equal(throttle.activeRecords, 1, "the timer is re-armed after sending a held event");
  });

  test("should delete the record when the timer fires with nothing held, so the next event goes out at once", () => {
    const { clock, throttle, submit, names } = setup();
    submit("BALLOON_CHANGE", { actual: 1 });
    clock.advance(1000);
    assert.equal(throttle.activeRecords, 0);
    assert.equal(clock.pendingTimers, 0);
    clock.advance(5);
    submit("BALLOON_CHANGE", { actual: 2 });
    assert.deepEqual(names(), ["0:BALLOON_CHANGE@0", "1005:BALLOON_CHANGE@1005000"]);
  });

  test("should re-arm after a held event and drop the record one period later if nothing came", () => {
    const { clock, throttle, submit, names } = setup();
    submit("RTC_CHANGE", { offset: 0, "qom-path": "/rtc" });
    clock.advance(100);
    submit("RTC_CHANGE", { offset: 1, "qom-path": "/rtc" });
    clock.advance(900); // t=1000: held one sent, timer re-armed for 2000
    assert.equal(throttle.activeRecords, 1);
    clock.advance(999);
    submit("RTC_CHANGE", { offset: 2, "qom-path": "/rtc" }); // t=1999: held
    clock.advance(1); // t=2000: sent
    clock.advance(1000); // t=3000: nothing held, record deleted
    assert.equal(throttle.activeRecords, 0);
    submit("RTC_CHANGE", { offset: 3, "qom-path": "/rtc" }); // sent at once
    assert.deepEqual(names(), [
      "0:RTC_CHANGE@0",
      "1000:RTC_CHANGE@100000",
      "2000:RTC_CHANGE@1999000",
      "3000:RTC_CHANGE@3000000",
    ]);
  });

  test("should let exactly one event a second through a flood, always the latest", () => {
    const { clock, submit, delivered } = setup();
    // A guest flooding WATCHDOG every 100 ms from t=50 to t=3450 (35 events).
    clock.advance(50);
    for (let i = 0; i < 35; i++) {
      submit("WATCHDOG", { action: "none", n: i });
      clock.advance(100);
    }
    clock.advance(5000);
    assert.deepEqual(
      delivered.map((d) => [d.at, (d.event.data as JsonObject).n]),
      [
        [50, 0],
        [1050, 9],
        [2050, 19],
        [3050, 29],
        [4050, 34],
      ],
    );
  });

  test("should treat every instance of an event-only entry alike, whatever its data", () => {
    const { submit, names } = setup();
    submit("RTC_CHANGE", { offset: 1, "qom-path": "/a" });
    submit("RTC_CHANGE", { offset: 2, "qom-path": "/b" });
    submit("QUORUM_FAILURE", { reference: "x", "sector-num": 0, "sectors-count": 1 });
    submit("QUORUM_FAILURE", { reference: "y", "sector-num": 0, "sectors-count": 1 });
    assert.deepEqual(names(), ["0:RTC_CHANGE@0", "0:QUORUM_FAILURE@0"]);
  });

  test("should throttle VSERPORT_CHANGE per id, QUORUM_REPORT_BAD per node-name, MEMORY_DEVICE_SIZE_CHANGE per qom-path", () => {
    const { clock, throttle, submit, delivered } = setup();
    submit("VSERPORT_CHANGE", { id: "a", open: true });
    submit("VSERPORT_CHANGE", { id: "b", open: true });
    submit("VSERPORT_CHANGE", { id: "a", open: false });
    submit("QUORUM_REPORT_BAD", {
      type: "read",
      "node-name": "n1",
      "sector-num": 0,
      "sectors-count": 1,
    });
    submit("QUORUM_REPORT_BAD", {
      type: "read",
      "node-name": "n2",
      "sector-num": 0,
      "sectors-count": 1,
    });
    submit("QUORUM_REPORT_BAD", {
      type: "read",
      "node-name": "n1",
      "sector-num": 5,
      "sectors-count": 1,
    });
    submit("MEMORY_DEVICE_SIZE_CHANGE", { id: "m", size: 1, "qom-path": "/m1" });
    submit("MEMORY_DEVICE_SIZE_CHANGE", { id: "m", size: 1, "qom-path": "/m2" });
    submit("MEMORY_DEVICE_SIZE_CHANGE", { id: "m", size: 2, "qom-path": "/m1" });
    assert.deepEqual(
      delivered.map((d) => JSON.stringify(d.event.data)),
      [
        '{"id":"a","open":true}',
        '{"id":"b","open":true}',
        '{"type":"read","node-name":"n1","sector-num":0,"sectors-count":1}',
        '{"type":"read","node-name":"n2","sector-num":0,"sectors-count":1}',
        '{"id":"m","size":1,"qom-path":"/m1"}',
        '{"id":"m","size":1,"qom-path":"/m2"}',
      ],
    );
    assert.equal(throttle.activeRecords, 6);
    assert.equal(throttle.heldEvents, 3);
    clock.advance(1000);
    assert.deepEqual(
      delivered.slice(6).map((d) => JSON.stringify(d.event.data)),
      [
        '{"id":"a","open":false}',
        '{"type":"read","node-name":"n1","sector-num":5,"sectors-count":1}',
        '{"id":"m","size":2,"qom-path":"/m1"}',
      ],
    );
  });

  test("should keep records of different events apart", () => {
    const { submit, names } = setup();
    submit("RTC_CHANGE", { offset: 1, "qom-path": "/a" });
    submit("WATCHDOG", { action: "none" });
    submit("BALLOON_CHANGE", { actual: 1 });
    assert.equal(names().length, 3);
  });

  test("should not throttle BLOCK_IO_ERROR or HV_BALLOON_STATUS_REPORT in 7.2, but key BLOCK_IO_ERROR by qom-path in 10.2", () => {
    const old = setup(THROTTLE_TABLE_7_2);
    for (let i = 0; i < 3; i++) old.submit("BLOCK_IO_ERROR", { "qom-path": "/d", n: i });
    old.submit("HV_BALLOON_STATUS_REPORT", { committed: 1, available: 2 });
    old.submit("HV_BALLOON_STATUS_REPORT", { committed: 1, available: 2 });
    assert.equal(old.delivered.length, 5);

    const now = setup(THROTTLE_TABLE_10_2);
    now.submit("BLOCK_IO_ERROR", { "qom-path": "/d1", n: 0 });
    now.submit("BLOCK_IO_ERROR", { "qom-path": "/d2", n: 1 });
    now.submit("BLOCK_IO_ERROR", { "qom-path": "/d1", n: 2 });
    now.submit("HV_BALLOON_STATUS_REPORT", { committed: 1, available: 2 });
    now.submit("HV_BALLOON_STATUS_REPORT", { committed: 3, available: 4 });
    assert.deepEqual(
      now.delivered.map((d) => d.event.event),
      ["BLOCK_IO_ERROR", "BLOCK_IO_ERROR", "HV_BALLOON_STATUS_REPORT"],
    );
  });

  test("should cancel every timer and forget held events on clear()", () => {
    const { clock, throttle, submit, delivered } = setup();
    submit("WATCHDOG", { action: "none" });
    submit("WATCHDOG", { action: "none" });
    throttle.clear();
    assert.equal(clock.pendingTimers, 0);
    clock.advance(2000);
    assert.equal(delivered.length, 1);
  });

  test("should apply a new table to later events after setTable()", () => {
    const { throttle, submit, delivered } = setup(THROTTLE_TABLE_7_2);
    throttle.setTable(THROTTLE_TABLE_10_2);
    submit("BLOCK_IO_ERROR", { "qom-path": "/d" });
    submit("BLOCK_IO_ERROR", { "qom-path": "/d" });
    assert.equal(delivered.length, 1);
  });
});

suite("throttleTableFor()", () => {
  test("should give the 7.2 and 10.2 tables for those versions", () => {
    assert.deepEqual(throttleTableFor({ major: 7, minor: 2, micro: 22 }), THROTTLE_TABLE_7_2);
    assert.deepEqual(throttleTableFor({ major: 10, minor: 2 }), THROTTLE_TABLE_10_2);
  });

  test("should follow the history of MEMORY_DEVICE_SIZE_CHANGE, HV_BALLOON_STATUS_REPORT and BLOCK_IO_ERROR", () => {
    assert.equal(throttleTableFor({ major: 5, minor: 0 }).MEMORY_DEVICE_SIZE_CHANGE, undefined);
    assert.deepEqual(throttleTableFor({ major: 5, minor: 1 }).MEMORY_DEVICE_SIZE_CHANGE, {});
    assert.deepEqual(throttleTableFor({ major: 6, minor: 2 }).MEMORY_DEVICE_SIZE_CHANGE, {
      key: "qom-path",
    });
    assert.equal(throttleTableFor({ major: 8, minor: 1 }).HV_BALLOON_STATUS_REPORT, undefined);
    assert.deepEqual(throttleTableFor({ major: 8, minor: 2 }).HV_BALLOON_STATUS_REPORT, {});
    assert.equal(throttleTableFor({ major: 9, minor: 1 }).BLOCK_IO_ERROR, undefined);
    assert.deepEqual(throttleTableFor({ major: 9, minor: 2 }).BLOCK_IO_ERROR, { key: "qom-path" });
  });
});
