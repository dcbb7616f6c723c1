import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { armDeadline, startBudget, withDeadline } from "./deadline.js";
import { isTimeoutError, TimeoutError } from "./errors.js";

suite("armDeadline", () => {
  test("should expire once with the timeout's error and clear its listener", async () => {
    const controller = new AbortController();
    const seen: unknown[] = [];
    armDeadline(
      { timeoutMs: 1, signal: controller.signal },
      (r) => seen.push(r),
      () => new TimeoutError("late", "op", 1, false),
    );
    await new Promise((r) => setTimeout(r, 20));
    controller.abort(new Error("after"));
    assert.equal(seen.length, 1);
    assert.ok(isTimeoutError(seen[0]));
  });

  test("should expire with the signal's own reason, at once when already aborted", () => {
    const reason = new Error("stop");
    const seen: unknown[] = [];
    armDeadline({ signal: AbortSignal.abort(reason) }, (r) => seen.push(r));
    assert.equal(seen.length, 1);
    assert.equal(seen[0], reason);
    const controller = new AbortController();
    armDeadline({ timeoutMs: 60_000, signal: controller.signal }, (r) => seen.push(r))();
    controller.abort(reason);
    assert.equal(seen.length, 1, "a disarmed deadline never expires");
  });

  test("should name a default TimeoutError when the caller gives none", async () => {
    const seen: unknown[] = [];
    armDeadline({ timeoutMs: 1 }, (r) => seen.push(r));
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(isTimeoutError(seen[0]));
    assert.equal((seen[0] as TimeoutError).timeoutMs, 1);
  });
});

suite("withDeadline", () => {
  test("should settle with the promise when it comes first", async () => {
    assert.equal(await withDeadline(Promise.resolve(7), { timeoutMs: 60_000 }), 7);
  });

  test("should reject with the signal's reason when it aborts first", async () => {
    const controller = new AbortController();
    const reason = new Error("stop");
    const waiting = withDeadline(new Promise(() => {}), { signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(waiting, (e) => e === reason);
  });
});

suite("startBudget", () => {
  test("should cut each part to what is left of the whole", () => {
    assert.equal(startBudget(undefined)(500), 500);
    const left = startBudget(100);
    assert.ok(left(1_000) <= 100);
    assert.equal(left(10), 10);
  });
});
