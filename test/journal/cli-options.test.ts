/**
 * The option values of `record` and `history` (durations, sizes, points in time), and bad input
 * through the real CLI: one line naming the value, exit status 2 (usage) or 1 (no journal).
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { durationOption, sizeOption, timeOption } from "../../src/cli/journal-options.js";
import { runCli } from "../cli/support.js";

suite("record and history options", () => {
  test("should read durations, sizes and times, and name a bad value", () => {
    const age = durationOption("--max-age");
    assert.equal(age("500ms"), 500);
    assert.equal(age("30s"), 30_000);
    assert.equal(age("15m"), 900_000);
    assert.equal(age("7d"), 7 * 86_400_000);
    assert.equal(age("1.5h"), 5_400_000);
    assert.throws(() => age("7 days"), {
      name: "UsageError",
      message: /invalid --max-age '7 days'/,
    });
    assert.throws(() => age("0s"), { name: "UsageError" });
    const size = sizeOption("--max-size");
    assert.equal(size("1048576"), 1_048_576);
    assert.equal(size("512K"), 512 * 1024);
    assert.equal(size("100MiB"), 100 * 1024 ** 2);
    assert.equal(size("2g"), 2 * 1024 ** 3);
    assert.throws(() => size("lots"), { name: "UsageError", message: /invalid --max-size 'lots'/ });
    const since = timeOption("--since", () => 1_000_000_000);
    assert.equal(since("10m"), 1_000_000_000 - 600_000);
    assert.equal(since("2026-12-06T16:50:00Z"), Date.UTC(2026, 11, 6, 16, 50));
    assert.throws(() => since("yesterday"), {
      name: "UsageError",
      message: /invalid --since 'yesterday'/,
    });
  });

  test("should refuse bad usage with status 2 and a missing journal with status 1, in one line", async () => {
    const [usage, missing] = await Promise.all([
      runCli(["history", "--journal", "x.db", "--since", "soon"], { timeoutMs: 60_000 }),
      runCli(["history", "--journal", "/nonexistent/qmpkit-journal.db"], { timeoutMs: 60_000 }),
    ]);
    assert.equal(usage.status, 2);
    assert.equal(
      usage.stderr,
      "qmpkit: invalid --since 'soon': expected a duration ago (10m, 2h, 1d) or a date and time (2026-12-06T16:50:00)\n",
    );
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /^qmpkit: cannot open the journal \/nonexistent\/qmpkit-journal\.db: [^\n]+\n$/,
    );
  });
});
