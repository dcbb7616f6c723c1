/**
 * `qmpkit history --journal FILE`: what a journal holds, printed as `events` prints it (the
 * same human lines and `--json` objects, from `event-format.ts`, and the same filters), so that
 * one script reads both. `--timeline`: per VM, the run-state intervals (state, from, until,
 * cause).
 *
 * The journal is opened read-only: a recorder may be writing it at the same time.
 *
 * @module
 */
import type { Command } from "commander";
import type { JournalEntry, RunStateInterval } from "../journal/index.js";
import type { CommandContext } from "./context.js";
import { addFilterOptions, type EventsOptions } from "./events-command.js";
import {
  createEventFilter,
  formatDelta,
  formatEventJson,
  formatStateJson,
  formatWatchJson,
  HumanEventFormatter,
  qmpTimestamp,
  type WatchNotice,
  watchNoticeText,
} from "./event-format.js";
import { wantColor } from "./io.js";
import { stringifyJson } from "./json-text.js";
import { timeOption } from "./journal-options.js";

const examples = `
Prints events, run-state changes and watch notices as 'qmpkit events' does (same lines, same
--json objects, same --only/--except/--where rules), in the order they were recorded.
--since/--until take a duration ago (10m, 2h, 1d) or a date and time (2026-12-06T16:50:00);
they compare with each event's own timestamp (QEMU's), and the local time of other lines.

--timeline: per VM, each run-state interval: state, from, until (none: still in it), cause
(the event, query-status, connected or reconnected). Nothing is known between a disconnect
and the next connect, so intervals stop there. --json: one object per interval:
  {"vm","state","from":{"seconds","microseconds"},"until":{…}|null,"cause"}

Examples:
  $ qmpkit history --journal vms.db
  $ qmpkit history --journal vms.db --vm vm1 --since 1h --only 'BLOCK_*'
  $ qmpkit history --journal vms.db --json | jq -r 'select(.event) | .event' | sort | uniq -c
  $ qmpkit history --journal vms.db --timeline --vm 'web-*'
  $ qmpkit history --journal vms.db --timeline --json | jq 'select(.state == "paused")'`;

/** Options of `history`, as commander hands them over (filters and output as for `events`). */
export interface HistoryOptions
  extends Pick<EventsOptions, "only" | "except" | "where" | "json" | "state"> {
  readonly journal: string;
  readonly vm?: string[] | undefined;
  readonly since?: number | undefined;
  readonly until?: number | undefined;
  readonly timeline?: boolean | undefined;
}

export function registerHistoryCommand(program: Command, ctx: CommandContext): void {
  addFilterOptions(
    program
      .command("history")
      .description("print what a journal holds, as 'events' prints it (or run-state timelines)")
      .requiredOption("-j, --journal <file>", "the SQLite journal written by 'record'")
      .option(
        "--vm <name>",
        "only this VM (wildcards); repeatable",
        (v: string, p: string[] = []) => [...p, v],
      )
      .option(
        "--since <time>",
        "from this time on (10m, 2h, 1d ago, or a date and time)",
        timeOption("--since"),
      )
      .option("--until <time>", "before this time", timeOption("--until")),
  )
    .option("--json", "one JSON object per line, as 'events --json'")
    .option("--no-state", "do not print run-state changes")
    .option("--timeline", "per VM, the run-state intervals: state, from, until, cause")
    .addHelpText("after", examples)
    .action(async (opts: HistoryOptions) => {
      ctx.exitCode = await runHistory(ctx, opts);
    });
}

/** Runs `history`; resolves with the exit status. */
export async function runHistory(ctx: CommandContext, opts: HistoryOptions): Promise<number> {
  const { Journal } = await import("../journal/index.js");
  const io = ctx.io;
  const out = (line: string) => io.stdout.write(`${line}\n`);
  const filter = createEventFilter({ only: opts.only, except: opts.except, where: opts.where });
  const journal = Journal.open(opts.journal, { readonly: true });
  const query = { vm: opts.vm, sinceMs: opts.since, untilMs: opts.until };
  try {
    if (opts.timeline) {
      for await (const intervals of journal.timeline(query)) {
        if (opts.json) for (const i of intervals) out(intervalJson(i));
        else for (const line of timelineText(intervals)) out(line);
      }
      return 0;
    }
    const human = opts.json
      ? undefined
      : new HumanEventFormatter({ color: wantColor(io.stdout, io.env, ctx.color()) });
    human?.reserveLabels(journal.vms().map((v) => v.name));
    // A run-state change goes with the event that caused it (recorded right before it): shown
    // only when that event is, as `events` does; one found by query-status always.
    const shownLast = new Map<string, boolean>();
    for await (const entry of journal.entries(query)) {
      const line = entryLine(entry, human, filter, shownLast, opts.state !== false);
      if (line !== undefined) out(line);
      if (io.signal.aborted) break;
    }
    return 0;
  } finally {
    journal.close();
  }
}

function entryLine(
  entry: JournalEntry,
  human: HumanEventFormatter | undefined,
  filter: ReturnType<typeof createEventFilter>,
  shownLast: Map<string, boolean>,
  states: boolean,
): string | undefined {
  switch (entry.kind) {
    case "event": {
      const shown = filter(entry.event);
      shownLast.set(entry.vm, shown);
      if (!shown) return undefined;
      return human ? human.event(entry.vm, entry.event) : formatEventJson(entry.vm, entry.event);
    }
    case "state": {
      const change = entry.change;
      if (!states || (change.cause !== "query-status" && shownLast.get(entry.vm) !== true))
        return undefined;
      return human
        ? human.stateChange(entry.vm, change.from, change.to, change.atMs)
        : formatStateJson(entry.vm, change);
    }
    case "watch": {
      // Journal notices are the watch notices `events` made, as written.
      const notice = entry.notice as unknown as WatchNotice;
      return human
        ? human.notice(entry.vm, watchNoticeText(notice), entry.atMs)
        : formatWatchJson(entry.vm, notice, entry.atMs);
    }
  }
}

/** `{"vm","state","from","until","cause"}`, times as QMP timestamps (`until` null: still so). */
export function intervalJson(i: RunStateInterval): string {
  return stringifyJson({
    vm: i.vm,
    state: i.state,
    from: qmpTimestamp(i.fromMs),
    until: i.untilMs === undefined ? null : qmpTimestamp(i.untilMs),
    cause: i.cause,
  });
}

function dateTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
  );
}

/** A VM's heading, then one line per interval: `  running    FROM → UNTIL  (duration)  cause`. */
export function timelineText(intervals: readonly RunStateInterval[]): string[] {
  const first = intervals[0];
  if (first === undefined) return [];
  const width = Math.max(...intervals.map((i) => i.state.length));
  const lines = [first.vm];
  for (const i of intervals) {
    const until = i.untilMs === undefined ? "…".padEnd(23) : dateTime(i.untilMs);
    const length = i.untilMs === undefined ? "" : formatDelta(i.untilMs - i.fromMs).slice(1);
    lines.push(
      `  ${i.state.padEnd(width)}  ${dateTime(i.fromMs)} → ${until}  ${length.padStart(8)}  ${i.cause}`,
    );
  }
  return lines;
}
