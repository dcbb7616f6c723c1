/**
 * Journal benchmark: events journaled per second from a flood, against the floor of plain
 * batched better-sqlite3 inserts of the same rows, measured side by side in one run. Goal: at
 * least 0.5× the floor, and at least 100,000 events/s; memory bounded while the flood runs.
 *
 * - **journal**: `Journal.event(vm, event)` for each event of the flood (what `record` calls per
 *   event: the row built, the data serialised and checked for secrets, batched, committed every
 *   1 000 rows or 50 ms, 50 rows per INSERT statement), then `flush()`. Into a fresh file each
 *   round.
 * - **floor**: the same rows, already built (data already serialised), inserted with one
 *   prepared statement in transactions of 1 000 rows, into a fresh file with the same schema
 *   and pragmas (WAL, `synchronous=NORMAL`).
 * - **memory**: the heap in use sampled every 10 000 events during a journal run ten times the
 *   size: it stays flat (rows do not pile up), reported as the growth over the run.
 *
 * Rounds alternate which side runs first; the ratio is the median of the per-round ratios.
 * The event mix is what a busy VM sends (`busyVmEvents` in `bench/support/events.ts`).
 *
 * Run: `npx tsx bench/journal.ts [events] [rounds]`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import type { JsonObject } from "../src/base/json.js";
import { Journal, type JournalEvent, MIGRATIONS } from "../src/journal/index.js";
import { busyVmEvents, median } from "./support/events.js";

function floodEvents(count: number): JournalEvent[] {
  return busyVmEvents(count)
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as JournalEvent & { data?: JsonObject });
}

const dir = mkdtempSync(join(tmpdir(), "qmpkit-bench-journal-"));
let files = 0;
const fresh = () => join(dir, `b${++files}.db`);

function journalRun(events: readonly JournalEvent[]): number {
  const journal = Journal.open(fresh());
  const vm = journal.vm({ name: "vm1", address: "unix:/run/vm1.qmp" });
  const start = performance.now();
  const now = Date.now();
  for (const e of events) journal.event(vm, e, now);
  journal.flush();
  const seconds = (performance.now() - start) / 1000;
  journal.close();
  return events.length / seconds;
}

function floorRun(rows: readonly unknown[][]): number {
  const db = new Database(fresh());
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(MIGRATIONS[0]!);
  db.prepare("INSERT INTO vms (host, name, address) VALUES ('h', 'vm1', 'a')").run();
  const insert = db.prepare(
    "INSERT INTO entries (vm, conn, kind, name, data, ts_us, received_us) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const batch = db.transaction((part: readonly unknown[][]) => {
    for (const row of part) insert.run(row);
  });
  const start = performance.now();
  for (let i = 0; i < rows.length; i += 1000) batch(rows.slice(i, i + 1000));
  const seconds = (performance.now() - start) / 1000;
  db.close();
  return rows.length / seconds;
}

function memoryRun(
  events: readonly JournalEvent[],
  times: number,
): { growthMiB: number; peakMiB: number } {
  const journal = Journal.open(fresh());
  const vm = journal.vm({ name: "vm1", address: "a" });
  globalThis.gc?.();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  let last = base;
  let n = 0;
  for (let t = 0; t < times; t++) {
    for (const e of events) {
      journal.event(vm, e);
      if (++n % 10_000 === 0) {
        last = process.memoryUsage().heapUsed;
        peak = Math.max(peak, last);
      }
    }
  }
  journal.close();
  const mib = (b: number) => b / 1024 / 1024;
  return { growthMiB: mib(last - base), peakMiB: mib(peak - base) };
}

export async function journalBench(count: number, rounds: number) {
  const events = floodEvents(count);
  const now = Date.now();
  const rows = events.map((e) => [
    1,
    null,
    "event",
    e.event,
    e.data === undefined ? null : JSON.stringify(e.data),
    e.timestamp.seconds * 1_000_000 + e.timestamp.microseconds,
    now * 1000,
  ]);
  const journal: number[] = [];
  const floor: number[] = [];
  try {
    journalRun(events.slice(0, 10_000));
    floorRun(rows.slice(0, 10_000));
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        journal.push(journalRun(events));
        floor.push(floorRun(rows));
      } else {
        floor.push(floorRun(rows));
        journal.push(journalRun(events));
      }
    }
    const memory = memoryRun(events, 10);
    return {
      events: events.length,
      rounds,
      journal: median(journal),
      floor: median(floor),
      ratio: median(journal.map((j, i) => j / floor[i]!)),
      memory,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const count = Number(process.argv[2] ?? 200_000);
  const rounds = Number(process.argv[3] ?? 5);
  const r = await journalBench(count, rounds);
  const rate = (n: number) => `${Math.round(n).toLocaleString("en")} events/s`;
  console.log(
    [
      `journal: ${r.events.toLocaleString("en")} events of a busy VM, medians of ${r.rounds} rounds (ratio: median of the per-round ratios)`,
      `  journal (Journal.event per event, batched commits): ratio ${r.ratio.toFixed(2)}x floor  [journal ${rate(r.journal)}, floor ${rate(r.floor)}]`,
      `  memory: heap growth over ${(r.events * 10).toLocaleString("en")} journaled events ${r.memory.growthMiB.toFixed(1)} MiB (peak ${r.memory.peakMiB.toFixed(1)} MiB above the start)`,
      "  goal: ratio >= 0.50 and >= 100,000 events/s (floor = prepared INSERT of the same prebuilt rows, 1 000 per transaction)",
    ].join("\n"),
  );
}
