import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isTimeoutError } from "../base/errors.js";
import {
  type RunState,
  type RunStateChange,
  RunStateTracker,
  stepRunState,
  type TrackerReport,
} from "./run-state-tracker.js";
import type { QmpEvent } from "./types.js";

function ev(event: string, data?: Record<string, unknown>): QmpEvent {
  return { event, data, timestamp: { seconds: 0, microseconds: 0 } } as QmpEvent;
}

/** Runs the pure step over a sequence; returns every state and whether each asked to re-query. */
function walk(start: RunState | undefined, events: QmpEvent[], major = 7) {
  let prev = { state: start, stopReason: undefined as RunState | undefined };
  const out: Array<[RunState | undefined, boolean]> = [];
  for (const e of events) {
    const step = stepRunState(prev, e, major);
    out.push([step.state, step.requery]);
    prev = step;
  }
  return out;
}

suite("stepRunState()", () => {
  test("should follow stop and cont (§5)", () => {
    assert.deepEqual(walk("running", [ev("STOP"), ev("RESUME")]), [
      ["paused", true],
      ["running", false],
    ]);
  });

  test("should re-query RESUME from QEMU 9.0 on, where cont may go back to suspended", () => {
    assert.deepEqual(walk("paused", [ev("RESUME")], 9), [["running", true]]);
  });

  test("should read STOP after SHUTDOWN as the shutdown state (shutdown=pause, §4.3)", () => {
    const steps = walk("running", [
      ev("SHUTDOWN", { guest: true, reason: "guest-shutdown" }),
      ev("STOP"),
    ]);
    assert.deepEqual(steps, [
      ["running", true],
      ["shutdown", true],
    ]);
  });

  test("should not re-query after SHUTDOWN from quit or a signal: the process is exiting", () => {
    for (const reason of ["host-qmp-quit", "host-signal"]) {
      assert.deepEqual(walk("paused", [ev("SHUTDOWN", { guest: false, reason })]), [
        ["paused", false],
      ]);
    }
  });

  test("should read STOP after GUEST_PANICKED{pause} as guest-panicked", () => {
    assert.deepEqual(walk("running", [ev("GUEST_PANICKED", { action: "pause" }), ev("STOP")]), [
      ["running", true],
      ["guest-panicked", true],
    ]);
  });

  test("should let SHUTDOWN after GUEST_PANICKED{poweroff} win (exit-failure + shutdown=pause)", () => {
    const steps = walk("running", [
      ev("GUEST_PANICKED", { action: "poweroff" }),
      ev("SHUTDOWN", { guest: true, reason: "guest-panic" }),
      ev("STOP"),
    ]);
    assert.deepEqual(steps.at(-1), ["shutdown", true]);
  });

  test("should read STOP after WATCHDOG{pause} and BLOCK_IO_ERROR{stop}", () => {
    assert.deepEqual(walk("running", [ev("WATCHDOG", { action: "pause" }), ev("STOP")]).at(-1), [
      "watchdog",
      true,
    ]);
    const io = ev("BLOCK_IO_ERROR", { device: "d", operation: "write", action: "stop" });
    assert.deepEqual(walk("running", [io, ev("STOP")]).at(-1), ["io-error", true]);
  });

  test("should ignore WATCHDOG actions that change nothing, and BLOCK_IO_ERROR{report}", () => {
    for (const action of ["debug", "none", "inject-nmi"]) {
      assert.deepEqual(walk("running", [ev("WATCHDOG", { action })]), [["running", false]]);
    }
    const step = stepRunState(
      { state: "running", stopReason: undefined },
      ev("BLOCK_IO_ERROR", { action: "report" }),
      7,
    );
    assert.equal(step.relevant, false);
  });

  test("should move to prelaunch on RESET unless running, inmigrate or finish-migrate (§4.2)", () => {
    const reset = ev("RESET", { guest: false, reason: "host-qmp-system-reset" });
    for (const from of ["paused", "shutdown", "suspended", "guest-panicked", "watchdog"] as const) {
      assert.deepEqual(walk(from, [reset]), [["prelaunch", false]], from);
    }
    for (const from of ["running", "inmigrate", "finish-migrate"] as const) {
      assert.deepEqual(walk(from, [reset]), [[from, false]], from);
    }
    assert.deepEqual(walk(undefined, [reset]), [[undefined, true]]);
  });

  test("should follow SUSPEND and WAKEUP", () => {
    assert.deepEqual(walk("running", [ev("SUSPEND"), ev("WAKEUP")]), [
      ["suspended", false],
      ["running", false],
    ]);
  });

  test("should re-query when a migration ends, and ignore unrelated events", () => {
    assert.deepEqual(walk("running", [ev("MIGRATION", { status: "completed" })]), [
      ["running", true],
    ]);
    const step = stepRunState({ state: "running", stopReason: undefined }, ev("POWERDOWN"), 7);
    assert.equal(step.relevant, false);
  });
});

/** A tracker over a scripted query: each call takes the next answer (a promise we control). */
function scripted() {
  const answers: Array<{ resolve(v: unknown): void; reject(e: unknown): void }> = [];
  const reports: TrackerReport[] = [];
  const tracker = new RunStateTracker({
    query: () => new Promise((resolve, reject) => answers.push({ resolve, reject })),
    isClosing: () => false,
    report: (r) => reports.push(r),
  });
  const changes: RunStateChange[] = [];
  tracker.onChange((c) => changes.push(c));
  const tick = () => new Promise((r) => setImmediate(r));
  return { tracker, answers, reports, changes, tick };
}

suite("RunStateTracker", () => {
  test("should take the state from query-status and notify the change", async () => {
    const { tracker, answers, changes, tick } = scripted();
    const done = tracker.refresh();
    await tick();
    answers[0]!.resolve({ status: "prelaunch", singlestep: false, running: false });
    await done;
    assert.equal(tracker.state, "prelaunch");
    assert.deepEqual(changes, [{ from: undefined, to: "prelaunch", cause: "query-status" }]);
  });

  test("should guess from STOP at once, then confirm with one query", async () => {
    const { tracker, answers, changes, tick } = scripted();
    const first = tracker.refresh();
    answers[0]!.resolve({ status: "running", running: true });
    await first;
    const stop = ev("STOP");
    tracker.onEvent(stop);
    assert.equal(tracker.state, "paused");
    await tick();
    assert.equal(answers.length, 2);
    answers[1]!.resolve({ status: "paused", running: false });
    await tick();
    assert.deepEqual(
      changes.map((c) => [c.from, c.to]),
      [
        [undefined, "running"],
        ["running", "paused"],
      ],
    );
    assert.equal(changes[1]!.cause, stop);
  });

  test("should drop an answer that a later event made stale, and ask again", async () => {
    const { tracker, answers, tick } = scripted();
    const first = tracker.refresh();
    answers[0]!.resolve({ status: "running", running: true });
    await first;
    tracker.onEvent(ev("SHUTDOWN", { guest: true, reason: "guest-shutdown" }));
    await tick();
    assert.equal(answers.length, 2);
    tracker.onEvent(ev("STOP")); // arrives while the query is out
    assert.equal(tracker.state, "shutdown");
    answers[1]!.resolve({ status: "running", running: true }); // computed before the STOP
    await tick();
    assert.equal(tracker.state, "shutdown", "the stale answer was dropped");
    assert.equal(answers.length, 3, "one more query, shared by both needs");
    answers[2]!.resolve({ status: "shutdown", running: false });
    await tick();
    assert.equal(tracker.state, "shutdown");
  });

  test("should report a failed query and keep the last state", async () => {
    const { tracker, answers, reports } = scripted();
    const done = tracker.refresh();
    const failure = new Error("no such command");
    answers[0]!.reject(failure);
    await done;
    assert.equal(tracker.state, undefined);
    assert.deepEqual(reports, [{ kind: "run-state-query-failed", error: failure }]);
  });

  test("should report a status it does not know", async () => {
    const { tracker, answers, reports } = scripted();
    const done = tracker.refresh();
    answers[0]!.resolve({ status: "hibernating" });
    await done;
    assert.deepEqual(reports, [{ kind: "run-state-unknown", status: "hibernating" }]);
  });

  test("should resolve waitFor when the state arrives, and time out otherwise", async () => {
    const { tracker, answers } = scripted();
    const first = tracker.refresh();
    answers[0]!.resolve({ status: "running" });
    await first;
    assert.equal(await tracker.waitFor("running"), "running");
    const paused = tracker.waitFor("paused", { timeoutMs: 1_000 });
    tracker.onEvent(ev("STOP"));
    assert.equal(await paused, "paused");
    await assert.rejects(tracker.waitFor("shutdown", { timeoutMs: 10 }), (e) => {
      assert.ok(isTimeoutError(e));
      assert.equal(e.sent, false);
      assert.match(e.message, /still paused/);
      return true;
    });
    const controller = new AbortController();
    const aborted = tracker.waitFor((s) => s === "suspended", { signal: controller.signal });
    const reason = new Error("no longer needed");
    controller.abort(reason);
    await assert.rejects(aborted, (e) => e === reason);
  });
});
