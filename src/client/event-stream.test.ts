import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isStateError } from "../base/errors.js";
import { isEventOverflowError } from "./errors.js";
import { EventHub, type HubReport } from "./event-hub.js";
import {
  EventStream,
  type EventStreamNotice,
  type EventStreamOptions,
  type GapNotice,
} from "./event-stream.js";
import type { QmpEvent, QmpGreeting } from "./types.js";

function ev(event: string, data?: Record<string, unknown>): QmpEvent {
  return { event, data, timestamp: { seconds: 1, microseconds: 2 } } as QmpEvent;
}

function setup<T = QmpEvent>(options: EventStreamOptions<string> = {}, historySize = 10) {
  const reports: HubReport[] = [];
  const hub = new EventHub({ historySize, report: (r) => reports.push(r) });
  const stream = new EventStream<T>(
    options,
    (s) => hub.removeStream(s as EventStream<unknown>),
    (r) => reports.push({ kind: "events-dropped", ...r }),
  );
  hub.addStream(stream as EventStream<unknown>);
  return { hub, stream, reports };
}

async function drain<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

const greeting: QmpGreeting = {
  version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "" },
  capabilities: ["oob"],
};

suite("EventStream", () => {
  test("should deliver matching events in order and end when the hub ends", async () => {
    const { hub, stream } = setup({ names: ["STOP", "RESUME"] });
    hub.dispatch(ev("STOP"));
    hub.dispatch(ev("POWERDOWN"));
    hub.dispatch(ev("RESUME"));
    hub.end(undefined, new Error("closed"));
    const got = await drain(stream);
    assert.deepEqual(
      got.map((e) => e.event),
      ["STOP", "RESUME"],
    );
    assert.equal(hub.streamCount, 0);
  });

  test("should hand an event straight to a waiting consumer", async () => {
    const { hub, stream } = setup();
    const next = stream.next();
    hub.dispatch(ev("RESET", { guest: false, reason: "host-qmp-system-reset" }));
    const result = await next;
    assert.equal(result.done, false);
    assert.deepEqual((result.value as QmpEvent).data, {
      guest: false,
      reason: "host-qmp-system-reset",
    });
  });

  test("should apply the filter and fail the stream when the filter throws", async () => {
    const boom = new Error("filter bug");
    const { hub, stream } = setup({
      filter: (e) => {
        if (e.event === "BAD") throw boom;
        return (e.data as { id?: string } | undefined)?.id === "a";
      },
    });
    hub.dispatch(ev("X", { id: "b" }));
    hub.dispatch(ev("X", { id: "a" }));
    hub.dispatch(ev("BAD"));
    await assert.rejects(stream.next(), (e) => e === boom);
    assert.equal(hub.streamCount, 0);
  });

  test("should drop the oldest events when full and count them", async () => {
    const { hub, stream, reports } = setup({ maxQueue: 3 });
    for (let i = 0; i < 10; i++) hub.dispatch(ev(`E${i}`));
    assert.equal(stream.dropped, 7);
    assert.equal(stream.queued, 3);
    hub.end(undefined, new Error("closed"));
    assert.deepEqual(
      (await drain(stream)).map((e) => e.event),
      ["E7", "E8", "E9"],
    );
    assert.deepEqual(reports, [
      { kind: "events-dropped", dropped: 1, maxQueue: 3, policy: "drop-oldest" },
    ]);
  });

  test("should drop the newest events when full under drop-newest", async () => {
    const { hub, stream } = setup({ maxQueue: 2, overflow: "drop-newest" });
    for (let i = 0; i < 5; i++) hub.dispatch(ev(`E${i}`));
    hub.end(undefined, new Error("closed"));
    assert.deepEqual(
      (await drain(stream)).map((e) => e.event),
      ["E0", "E1"],
    );
    assert.equal(stream.dropped, 3);
  });

  test("should report one overflow per episode, a new one after the queue drained", async () => {
    const { hub, stream, reports } = setup({ maxQueue: 1 });
    hub.dispatch(ev("A"));
    hub.dispatch(ev("B"));
    hub.dispatch(ev("C"));
    assert.equal(reports.length, 1);
    await stream.next();
    hub.dispatch(ev("D"));
    hub.dispatch(ev("E"));
    assert.equal(reports.length, 2);
    assert.equal(stream.dropped, 3);
  });

  test("should place overflow notices where the events were lost", async () => {
    const { hub, stream } = setup<QmpEvent | EventStreamNotice>({ maxQueue: 2, notices: true });
    for (let i = 0; i < 5; i++) hub.dispatch(ev(`E${i}`));
    hub.end(undefined, new Error("closed"));
    const got = await drain(stream);
    assert.deepEqual(got.slice(1), [ev("E3"), ev("E4")]);
    assert.deepEqual(got[0], { notice: "overflow", dropped: 3 });
  });

  test("should place drop-newest overflow notices after the kept events", async () => {
    const { hub, stream } = setup<QmpEvent | EventStreamNotice>({
      maxQueue: 2,
      notices: true,
      overflow: "drop-newest",
    });
    for (let i = 0; i < 4; i++) hub.dispatch(ev(`E${i}`));
    assert.deepEqual((await stream.next()).value, ev("E0"));
    hub.dispatch(ev("E4")); // fits again: after the notice
    hub.end(undefined, new Error("closed"));
    const rest = await drain(stream);
    assert.deepEqual(rest, [ev("E1"), { notice: "overflow", dropped: 2 }, ev("E4")]);
  });

  test("should fail with EventOverflowError after the queued events under overflow error", async () => {
    const { hub, stream } = setup({ maxQueue: 2, overflow: "error" });
    hub.dispatch(ev("A"));
    hub.dispatch(ev("B"));
    hub.dispatch(ev("C"));
    assert.equal(hub.streamCount, 0, "an overflowed stream unsubscribes");
    assert.equal((await stream.next()).value?.event, "A");
    assert.equal((await stream.next()).value?.event, "B");
    await assert.rejects(stream.next(), (e) => {
      assert.ok(isEventOverflowError(e));
      assert.equal(e.maxQueue, 2);
      assert.equal(e.event, "C");
      return true;
    });
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  test("should yield a gap notice only with notices on, and count gaps either way", async () => {
    const quiet = setup();
    const loud = setup<QmpEvent | EventStreamNotice>({ notices: true });
    const gap: GapNotice = {
      notice: "gap",
      since: new Date(0),
      until: new Date(1),
      reason: new Error("peer went away"),
      greeting,
    };
    for (const { hub } of [quiet, loud]) {
      hub.dispatch(ev("A"));
      hub.gap(gap);
      hub.dispatch(ev("B"));
      hub.end(undefined, new Error("closed"));
    }
    assert.deepEqual(
      (await drain(quiet.stream)).map((e) => e.event),
      ["A", "B"],
    );
    assert.equal(quiet.stream.gaps, 1);
    assert.deepEqual(await drain(loud.stream), [ev("A"), gap, ev("B")]);
    assert.equal(loud.stream.gaps, 1);
  });

  test("should end on break and unsubscribe", async () => {
    const { hub, stream } = setup();
    hub.dispatch(ev("A"));
    hub.dispatch(ev("B"));
    for await (const e of stream) {
      assert.equal(e.event, "A");
      break;
    }
    assert.equal(hub.streamCount, 0);
    hub.dispatch(ev("C"));
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  test("should throw the close reason with onClose error, after the queued events", async () => {
    const { hub, stream } = setup({ onClose: "error" });
    const reason = new Error("peer gone");
    hub.dispatch(ev("A"));
    hub.end(reason, new Error("closed"));
    assert.equal((await stream.next()).value?.event, "A");
    await assert.rejects(stream.next(), (e) => e === reason);
  });

  test("should end cleanly with onClose error when the client was closed by its owner", async () => {
    const { hub, stream } = setup({ onClose: "error" });
    hub.end(undefined, new Error("closed"));
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  test("should reject a waiting next() with the signal's reason when aborted", async () => {
    const controller = new AbortController();
    const { hub, stream } = setup({ signal: controller.signal });
    const next = stream.next();
    const reason = new Error("stop it");
    controller.abort(reason);
    await assert.rejects(next, (e) => e === reason);
    assert.equal(hub.streamCount, 0);
  });

  test("should refuse a second concurrent consumer", () => {
    const { stream } = setup();
    stream[Symbol.asyncIterator]();
    assert.throws(() => stream[Symbol.asyncIterator](), isStateError);
  });

  test("should keep memory bounded through a burst of 100000 events", async () => {
    const { hub, stream } = setup({ maxQueue: 100 }, 50);
    for (let i = 0; i < 100_000; i++) hub.dispatch(ev("BURST", { i }));
    assert.equal(stream.queued, 100);
    assert.equal(stream.dropped, 99_900);
    assert.equal(hub.history.length, 50);
    assert.deepEqual(hub.history[49]?.data, { i: 99_999 });
    assert.deepEqual(hub.history[0]?.data, { i: 99_950 });
    hub.end(undefined, new Error("closed"));
    const got = await drain(stream);
    assert.equal(got.length, 100);
    assert.deepEqual(got[0]?.data, { i: 99_900 });
  });
});

suite("EventHub", () => {
  test("should call callbacks by name and for every event, and report a throwing one", () => {
    const reports: HubReport[] = [];
    const hub = new EventHub({ historySize: 0, report: (r) => reports.push(r) });
    const seen: string[] = [];
    const offStop = hub.on("STOP", (e) => seen.push(`stop:${e.event}`));
    hub.on("*", (e) => seen.push(`any:${e.event}`));
    const bug = new Error("callback bug");
    hub.on("STOP", () => {
      throw bug;
    });
    hub.dispatch(ev("STOP"));
    hub.dispatch(ev("RESUME"));
    offStop();
    hub.dispatch(ev("STOP"));
    assert.deepEqual(seen, ["stop:STOP", "any:STOP", "any:RESUME", "any:STOP"]);
    assert.deepEqual(reports, [
      { kind: "callback-error", event: "STOP", error: bug },
      { kind: "callback-error", event: "STOP", error: bug },
    ]);
    assert.deepEqual(hub.history, []);
  });

  test("should resolve a one-shot waiter on the first match only", async () => {
    const hub = new EventHub({ historySize: 5, report: () => {} });
    const got = new Promise<QmpEvent>((resolve, reject) =>
      hub.addWaiter({
        name: "DEVICE_DELETED",
        match: (e) => (e.data as { device?: string }).device === "nic1",
        resolve,
        reject,
      }),
    );
    hub.dispatch(ev("DEVICE_DELETED", { device: "nic0", path: "/a" }));
    hub.dispatch(ev("DEVICE_DELETED", { device: "nic1", path: "/b" }));
    assert.deepEqual((await got).data, { device: "nic1", path: "/b" });
    assert.equal(hub.waiterCount, 0);
  });

  test("should keep a bounded history, oldest first, and clear it", () => {
    const hub = new EventHub({ historySize: 3, report: () => {} });
    for (const name of ["A", "B", "C", "D"]) hub.dispatch(ev(name));
    assert.deepEqual(
      hub.history.map((e) => e.event),
      ["B", "C", "D"],
    );
    assert.deepEqual(
      hub.clearHistory().map((e) => e.event),
      ["B", "C", "D"],
    );
    assert.deepEqual(hub.history, []);
  });
});
