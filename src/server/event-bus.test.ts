/**
 * EventBus: several servers (monitors of one process) on one bus get one built event, stamped
 * and throttled once; a server closing leaves the others served; a server of its own closes its
 * bus with it.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ManualClock } from "./clock.js";
import { type BuiltEvent, EventBus, type EventSink, monitorText } from "./event-bus.js";
import { QmpServer } from "./server.js";
import { THROTTLE_TABLE_7_2 } from "./throttle.js";

/** A clock whose reading moves by 1 µs per read: a second stamp of one event would differ. */
function tickingClock(): ManualClock {
  const clock = new ManualClock({ startMicros: 5_000_000 });
  let reads = 0;
  const now = clock.nowMicros.bind(clock);
  clock.nowMicros = () => now() + reads++;
  return clock;
}

/** A sink that records the event objects it receives and their plain and pretty texts. */
function recorder(): EventSink & { events: BuiltEvent[] } {
  const events: BuiltEvent[] = [];
  return { events, deliverEvent: (e) => void events.push(e) };
}

suite("EventBus", () => {
  test("should hand every sink the same built event, printed once per style", () => {
    const bus = new EventBus({ throttle: THROTTLE_TABLE_7_2, clock: tickingClock() });
    const a = recorder();
    const b = recorder();
    bus.attach(a);
    bus.attach(b);
    bus.attach(a); // attaching twice changes nothing
    const built = bus.emit("STOP");
    assert.equal(a.events.length, 1);
    assert.equal(b.events[0], a.events[0]);
    assert.equal(a.events[0]!.message, built);
    assert.equal(
      a.events[0]!.text(false),
      '{"timestamp": {"seconds": 5, "microseconds": 0}, "event": "STOP"}\r\n',
    );
    assert.equal(a.events[0]!.text(true), b.events[0]!.text(true));
    assert.equal(a.events[0]!.text(true), monitorText(built, true));
    bus.detach(b);
    bus.emit("RESUME");
    assert.deepEqual([a.events.length, b.events.length], [2, 1]);
  });

  test("should throttle once for all sinks and deliver the held event, stamped by its last raise, to each", () => {
    const clock = new ManualClock({ startMicros: 7_000_000 });
    const bus = new EventBus({ throttle: THROTTLE_TABLE_7_2, clock });
    const a = recorder();
    const b = recorder();
    bus.attach(a);
    bus.attach(b);
    const raised = [];
    for (let i = 1; i <= 5; i++) {
      raised.push(bus.emit("RTC_CHANGE", { offset: i, "qom-path": "/machine/rtc" }));
      clock.advance(100);
    }
    assert.deepEqual(bus.throttleState, { records: 1, held: 1 });
    clock.advance(500);
    for (const sink of [a, b]) {
      assert.deepEqual(
        sink.events.map((e) => e.message),
        [raised[0], raised[4]],
      );
    }
    assert.equal(a.events[1], b.events[1]);
    bus.close();
    assert.deepEqual(bus.throttleState, { records: 0, held: 0 });
    assert.equal(clock.pendingTimers, 0);
    bus.emit("STOP");
    assert.equal(a.events.length, 2, "a closed bus only builds");
  });

  test("should let servers share a bus: an event emitted on one reaches the clients of all, one stamp", () => {
    const clock = tickingClock();
    const bus = new EventBus({ throttle: THROTTLE_TABLE_7_2, clock });
    const one = new QmpServer({ events: bus });
    const two = new QmpServer({ events: bus });
    const spy = recorder();
    bus.attach(spy);
    const built = one.emit("STOP");
    two.emit("RTC_CHANGE", { offset: 1, "qom-path": "/machine/rtc" });
    two.emit("RTC_CHANGE", { offset: 2, "qom-path": "/machine/rtc" });
    assert.equal(spy.events[0]!.message, built);
    assert.deepEqual(one.throttleState, { records: 1, held: 1 });
    assert.deepEqual(two.throttleState, one.throttleState);
    return (async () => {
      await one.close();
      // A server leaving a shared bus does not stop it: the held event still goes out.
      clock.advance(1000);
      assert.equal(spy.events.length, 3);
      assert.equal(bus.isClosed, false);
      await two.close();
      bus.close();
    })();
  });

  test("should close a server's own bus with the server", async () => {
    const clock = new ManualClock();
    const server = new QmpServer({ clock });
    server.emit("RTC_CHANGE", { offset: 1, "qom-path": "/machine/rtc" });
    assert.equal(clock.pendingTimers, 1);
    await server.close();
    assert.equal(clock.pendingTimers, 0);
  });
});
