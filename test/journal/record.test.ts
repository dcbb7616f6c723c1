/**
 * `qmpkit record` and `qmpkit history` as processes, on real sockets: what `history` prints is
 * what `events` printed for the same VM at the same time (so one script reads both); the
 * timeline; and durability: the recorder killed with SIGKILL in the middle of an event flood
 * leaves every committed row intact, and a recorder started again on the same journal goes on
 * and notes the gap.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import Database from "better-sqlite3";
import { QmpClient } from "../../src/client/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { collect, runCli, spawnCli, waitForOutput } from "../cli/support.js";

const root = mkdtempSync(join(tmpdir(), "qmpkit-record-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function freshDir(): string {
  const dir = join(root, `t${++n}`);
  mkdirSync(join(dir, "vms"), { recursive: true });
  mkdirSync(join(dir, "watch"), { recursive: true });
  return dir;
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Resolves once `check` holds (polled), or rejects after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function countRows(path: string, sql: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function startRecorder(dir: string, journal: string): ChildProcess {
  return spawnCli(["record", join(dir, "vms", "*.qmp"), "--journal", journal]);
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM") {
  const done = collect(child, { timeoutMs: 60_000 });
  child.kill(signal);
  return done;
}

suite("record and history", () => {
  test("should print from the journal what events printed live, and the run-state timeline", async () => {
    const dir = freshDir();
    const journal = join(dir, "j.db");
    const vm = new SimulatedMachine({
      devices: { blockDevices: [{ id: "drive0", werror: "stop" }] },
    });
    // Three monitors: the recorder's, the live watcher's (same file name: same label), control.
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    await vm.listen(`unix:${join(dir, "watch", "vm1.qmp")}`);
    const ctl = await QmpClient.connect(await vm.listen(`unix:${join(dir, "ctl.qmp")}`));
    const recorder = startRecorder(dir, journal);
    const live = spawnCli(["events", join(dir, "watch", "vm1.qmp"), "--json"]);
    const liveConnected = waitForOutput(live, (s) => s.includes('"watch":"connected"'), 60_000);
    const liveDone = collect(live, { timeoutMs: 60_000 });
    try {
      await waitForOutput(recorder, (s) => s.includes("recording vm1"), 60_000, "stderr");
      await liveConnected;
      await ctl.execute("stop");
      await ctl.execute("cont");
      vm.guest.ioError("drive0", { operation: "write" });
      await ctl.execute("cont");
      await until(
        "four events in the journal",
        () => countRows(journal, "SELECT count(*) AS n FROM entries WHERE kind = 'event'") >= 4,
      );
    } finally {
      await ctl.close();
    }
    const rec = await stop(recorder);
    assert.equal(rec.status, 0, rec.stderr);
    live.kill("SIGTERM");
    const liveResult = await liveDone;
    await vm.close();

    const history = await runCli(["history", "--journal", journal, "--json"], {
      timeoutMs: 60_000,
    });
    assert.equal(history.status, 0, history.stderr);
    const qmp = (lines: Array<Record<string, unknown>>) =>
      lines.filter((l) => "event" in l || "run-state" in l);
    const fromJournal = qmp(jsonLines(history.stdout));
    assert.deepEqual(
      fromJournal.map((l) => l.event ?? (l["run-state"] as { to: string }).to),
      [
        "STOP",
        "paused",
        "RESUME",
        "running",
        "BLOCK_IO_ERROR",
        "STOP",
        "io-error",
        "RESUME",
        "running",
      ],
    );
    // The same objects, member for member and in the same order, as the live watcher printed.
    // (Each monitor of the simulator stamps its own copy of an event: the times may differ by
    // microseconds between the two sockets, so they are compared by shape.)
    const shape = (l: Record<string, unknown>) =>
      JSON.stringify({ ...l, timestamp: Object.keys(l.timestamp as object) });
    assert.deepEqual(fromJournal.map(shape), qmp(jsonLines(liveResult.stdout)).map(shape));
    const watch = jsonLines(history.stdout).filter((l) => "watch" in l);
    assert.deepEqual(watch[0], {
      ...watch[0],
      vm: "vm1",
      watch: "connected",
      qemu: "7.2.22",
      state: "running",
    });

    // Human form and filters as `events` has them: --only STOP keeps STOP and its changes.
    const human = await runCli(["history", "--journal", journal, "--only", "STOP"], {
      timeoutMs: 60_000,
    });
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /vm1 +STOP\n.*state running → paused\n/);
    assert.doesNotMatch(human.stdout, /RESUME|paused → running/);

    const timeline = await runCli(["history", "--journal", journal, "--timeline", "--json"], {
      timeoutMs: 60_000,
    });
    assert.equal(timeline.status, 0, timeline.stderr);
    const intervals = jsonLines(timeline.stdout);
    assert.deepEqual(
      intervals.map((i) => [i.vm, i.state, i.cause]),
      [
        ["vm1", "running", "connected"],
        ["vm1", "paused", "STOP"],
        ["vm1", "running", "RESUME"],
        ["vm1", "io-error", "STOP"],
        ["vm1", "running", "RESUME"],
      ],
    );
    // Each interval ends where the next begins; the recorder's stop ends the last.
    for (let i = 1; i < intervals.length; i++)
      assert.deepEqual(intervals[i - 1]!.until, intervals[i]!.from);
    const text = await runCli(["history", "--journal", journal, "--timeline"], {
      timeoutMs: 60_000,
    });
    assert.match(text.stdout, /^vm1\n {2}running +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} → /);
  });

  test("should keep every committed row after kill -9 mid-flood, and note the gap on restart", async () => {
    const dir = freshDir();
    const journal = join(dir, "j.db");
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    let seq = 0;
    let flooding = true;
    // The flood: DEVICE_TRAY_MOVED (not throttled), numbered by `id`, as fast as the loop turns.
    const flood = (async () => {
      while (flooding) {
        for (let i = 0; i < 100; i++)
          vm.hostSide.inject("DEVICE_TRAY_MOVED", {
            device: "",
            id: `n${seq++}`,
            "tray-open": seq % 2 === 0,
          });
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const events = "SELECT count(*) AS n FROM entries WHERE kind = 'event'";
    let first: ChildProcess | undefined = startRecorder(dir, journal);
    let second: ChildProcess | undefined;
    try {
      await waitForOutput(first, (s) => s.includes("recording vm1"), 60_000, "stderr");
      await until("2000 journaled events", () => countRows(journal, events) >= 2000);
      // What a reader sees committed just before the kill must all be there after it.
      const before = snapshot(journal);
      const killed = await stop(first, "SIGKILL");
      first = undefined;
      assert.equal(killed.signal, "SIGKILL");
      const afterKill = snapshot(journal);
      assert.equal(integrity(journal), "ok");
      assert.ok(afterKill.length >= before.length);
      assert.deepEqual(afterKill.slice(0, before.length), before);
      // Every row is whole, and the events are the flood's, in order, none missing in between.
      const ids = afterKill.map((r) => Number(/^n(\d+)$/.exec(String(JSON.parse(r.data).id))![1]));
      assert.deepEqual(
        ids,
        ids.map((_, k) => ids[0]! + k),
      );

      second = startRecorder(dir, journal);
      await waitForOutput(second, (s) => s.includes("recording vm1"), 60_000, "stderr");
      await until(
        "events after the restart",
        () => countRows(journal, events) >= afterKill.length + 500,
      );
      flooding = false;
      await flood;
      const rec = await stop(second);
      second = undefined;
      assert.equal(rec.status, 0, rec.stderr);
    } finally {
      flooding = false;
      first?.kill("SIGKILL");
      second?.kill("SIGKILL");
      await vm.close();
    }
    const db = new Database(journal, { readonly: true });
    const watch = db
      .prepare("SELECT id, name, data FROM entries WHERE kind = 'watch' ORDER BY id")
      .all() as Array<{ id: number; name: string; data: string }>;
    db.close();
    // Nothing dropped on the way (an overflow would show as a notice), the restart noted.
    assert.deepEqual(
      watch.map((w) => w.name),
      ["connected", "reconnected", "connected", "disconnected"],
    );
    const gap = watch.find((w) => w.name === "reconnected");
    assert.ok(gap, `a gap notice among ${watch.map((w) => w.name).join(", ")}`);
    const g = JSON.parse(gap.data) as { sinceMs: number; untilMs: number; recorder: string };
    assert.equal(g.recorder, "restarted");
    assert.ok(g.untilMs > g.sinceMs, JSON.stringify(g));
    const history = await runCli(["history", "--journal", journal, "--json", "--except", "*"], {
      timeoutMs: 60_000,
    });
    assert.equal(history.status, 0, history.stderr);
    const notices = jsonLines(history.stdout).filter((l) => "watch" in l);
    assert.deepEqual(
      notices.map((l) => l.watch),
      watch.map((w) => w.name),
    );
    const reconnected = notices.find((l) => l.watch === "reconnected")!;
    assert.ok((reconnected.gap as { since: unknown }).since);
  });
});

function snapshot(path: string): Array<{ id: number; name: string; data: string; ts_us: number }> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare("SELECT id, name, data, ts_us FROM entries WHERE kind = 'event' ORDER BY id")
      .all() as Array<{ id: number; name: string; data: string; ts_us: number }>;
  } finally {
    db.close();
  }
}

function integrity(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.pragma("integrity_check", { simple: true }) as string;
  } finally {
    db.close();
  }
}
