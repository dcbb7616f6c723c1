/**
 * What `qmpkit events` prints, and which events it prints.
 *
 * - Filters: `--only` / `--except` take event names (comma-separated, `*` and `?` wildcards,
 *   case-insensitive); `--where key=value` matches event data by dotted path (`--where
 *   action=pause`, `--where info.type=hyper-v`), `key!=value` negates; several filters must all hold.
 * - Human lines: local time (ms), the VM's label, the time since that VM's previous event, the
 *   event name (coloured by what it means), its data flattened to `key=value`; run-state changes
 *   on a line of their own. Colour only when asked (a terminal, `--color`).
 * - JSON lines, one object per line for `jq`, each with `"vm"` (the label) and `"timestamp"`: the
 *   event as QEMU sent it; a run-state change (`"run-state"`); a notice about the watch itself
 *   (`"watch"`: connected, disconnected, reconnected with the gap, …). Only events have `"event"`.
 *
 * Pure: no I/O; the caller writes the strings.
 *
 * @module
 */
import pc from "picocolors";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import {
  createEventFilter as compileEventFilter,
  EventFilterError,
  type EventFilterOptions,
  scalarText,
} from "../client/event-filter.js";
import { stringifyJson } from "./json-text.js";
import { UsageError } from "./usage-error.js";

export { type EventFilterOptions, scalarText };

/** A QMP event as it arrives (`data` absent for events without arguments, §1.6). */
export interface QmpEventMessage {
  readonly event: string;
  readonly data?: JsonObject | undefined;
  readonly timestamp: { readonly seconds: number; readonly microseconds: number };
}

/**
 * Names in `--only` / `--except` (without wildcards) that are not in `known`: most likely typos,
 * since a filter on a name no QEMU sends silently matches nothing.
 */
export function unknownEventNames(options: EventFilterOptions, known: readonly string[]): string[] {
  const set = new Set(known.map((k) => k.toUpperCase()));
  return [...(options.only ?? []), ...(options.except ?? [])]
    .flatMap((item) => item.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "" && !/[*?]/.test(s) && !set.has(s.toUpperCase()));
}

/** Compiles the filter options (`client/event-filter.ts`); throws `UsageError` for a malformed `--where`. */
export function createEventFilter(
  options: EventFilterOptions,
): (event: QmpEventMessage) => boolean {
  try {
    return compileEventFilter(options);
  } catch (error) {
    if (error instanceof EventFilterError) throw new UsageError(error.message, { cause: error });
    throw error;
  }
}

/** Flattens event data to `key=value` pairs (`info.type=hyper-v`), arrays as JSON. */
export function flattenData(data: JsonValue | undefined, prefix = ""): string[] {
  if (!isJsonObject(data))
    return data === undefined ? [] : [`${prefix || "data"}=${scalarText(data)}`];
  const out: string[] = [];
  for (const [k, v] of Object.entries(data)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isJsonObject(v) && Object.keys(v).length > 0) out.push(...flattenData(v, key));
    else {
      const text = scalarText(v);
      out.push(
        `${key}=${typeof v === "string" && /[\s"]/.test(text) ? JSON.stringify(text) : text}`,
      );
    }
  }
  return out;
}

/** Milliseconds since the epoch of a QMP timestamp. */
export function timestampMs(ts: QmpEventMessage["timestamp"]): number {
  return ts.seconds * 1000 + ts.microseconds / 1000;
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** `HH:MM:SS.mmm` in local time. */
export function localTime(ms: number): string {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/** `+0.512s`, `+12.0s`, `+3m04s`, `-0.440s` (a throttled event delivered late, §2.2). */
export function formatDelta(ms: number): string {
  const sign = ms < 0 ? "-" : "+";
  const a = Math.abs(ms);
  if (a < 10_000) return `${sign}${(a / 1000).toFixed(3)}s`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(1)}s`;
  const s = Math.round(a / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  return `${sign}${Math.floor(s / 3600)}h${pad2(Math.floor((s % 3600) / 60))}m`;
}

type Paint = (s: string) => string;

/** The colour of an event name: red for failures, yellow for stops, green for resumption. */
function eventPaint(colors: ReturnType<typeof pc.createColors>, name: string): Paint {
  if (/PANIC|ERROR|FAILURE|WATCHDOG|CRASH|BAD/.test(name)) return (s) => colors.bold(colors.red(s));
  if (/^(STOP|SHUTDOWN|POWERDOWN|SUSPEND|SUSPEND_DISK|RESET|GUEST_PVSHUTDOWN)$/.test(name))
    return colors.yellow;
  if (/^(RESUME|WAKEUP)$/.test(name)) return colors.green;
  return colors.cyan;
}

const labelColours = ["blue", "magenta", "cyan", "green", "yellow"] as const;

/** Options of the human formatter. */
export interface HumanFormatOptions {
  /** Use ANSI colours. */
  readonly color: boolean;
  /** Show the VM label column (off when watching a single VM). Default true. */
  readonly showLabel?: boolean | undefined;
}

/**
 * Formats events for people. Keeps, per VM, the time of its previous event so that each line can
 * say how long after it came, and the width of the label column so that columns line up.
 */
export class HumanEventFormatter {
  private readonly colors: ReturnType<typeof pc.createColors>;
  private readonly previous = new Map<string, number>();
  private readonly labelColour = new Map<string, Paint>();
  private labelWidth = 0;

  constructor(private readonly options: HumanFormatOptions) {
    this.colors = pc.createColors(options.color);
  }

  /** Makes the label column at least as wide as every label given. */
  reserveLabels(labels: Iterable<string>): void {
    for (const l of labels) this.labelWidth = Math.max(this.labelWidth, l.length);
  }

  private label(vm: string): string {
    if (this.options.showLabel === false) return "";
    this.labelWidth = Math.max(this.labelWidth, vm.length);
    let paint = this.labelColour.get(vm);
    if (!paint) {
      const name = labelColours[this.labelColour.size % labelColours.length]!;
      paint = this.colors[name];
      this.labelColour.set(vm, paint);
    }
    return `${paint(vm.padEnd(this.labelWidth))}  `;
  }

  /** One line (no line end) for an event from the VM labelled `vm`. */
  event(vm: string, event: QmpEventMessage): string {
    const c = this.colors;
    const at = timestampMs(event.timestamp);
    const before = this.previous.get(vm);
    this.previous.set(vm, at);
    const delta = before === undefined ? "" : formatDelta(at - before);
    const data = flattenData(event.data).join(" ");
    return (
      `${c.dim(localTime(at))}  ${this.label(vm)}${c.dim(delta.padStart(9))}  ` +
      `${eventPaint(c, event.event)(event.event)}${data ? `  ${data}` : ""}`
    );
  }

  /** A run-state change line: `state running → paused`. */
  stateChange(vm: string, from: string | undefined, to: string, atMs: number = Date.now()): string {
    const c = this.colors;
    const change = from === undefined ? c.bold(to) : `${from} → ${c.bold(to)}`;
    return `${c.dim(localTime(atMs))}  ${this.label(vm)}${" ".repeat(9)}  ${c.magenta("state")} ${change}`;
  }

  /** A notice about the watch itself (connected, lost, reconnecting), dimmed. */
  notice(vm: string, text: string, atMs: number = Date.now()): string {
    const c = this.colors;
    return `${c.dim(localTime(atMs))}  ${this.label(vm)}${" ".repeat(9)}  ${c.dim(`-- ${text}`)}`;
  }
}

/** One JSON line (no line end): the event as QEMU sent it, with `"vm"` first. */
export function formatEventJson(vm: string, event: QmpEventMessage): string {
  const out: Record<string, unknown> = { vm, event: event.event };
  if (event.data !== undefined) out.data = event.data;
  out.timestamp = event.timestamp;
  return stringifyJson(out);
}

/** A QMP-style timestamp (`{seconds, microseconds}`) of a time in milliseconds since the epoch. */
export function qmpTimestamp(ms: number): QmpEventMessage["timestamp"] {
  const seconds = Math.floor(ms / 1000);
  return { seconds, microseconds: Math.round((ms - seconds * 1000) * 1000) };
}

/** A run-state change as `qmpkit events` reports it. */
export interface RunStateLine {
  readonly from: string;
  readonly to: string;
  /** The event that caused it, or `query-status` (found after a connect or reconnect). */
  readonly cause: string;
  /** When: the causing event's timestamp, or the local time of the `query-status` answer. */
  readonly atMs: number;
}

/**
 * One JSON line (no line end) for a run-state change:
 * `{"vm", "run-state": {"from", "to", "cause"}, "timestamp"}`. It has no `"event"` member, so
 * it cannot be taken for a QMP event (`jq 'select(.event)'` keeps only those).
 */
export function formatStateJson(vm: string, change: RunStateLine): string {
  return stringifyJson({
    vm,
    "run-state": { from: change.from, to: change.to, cause: change.cause },
    timestamp: qmpTimestamp(change.atMs),
  });
}

/** Something about the watch itself, not sent by QEMU: connects, losses, gaps, drops. */
export type WatchNotice =
  /** The demo's simulated QEMU is up (no target given). */
  | { readonly kind: "started"; readonly address: string; readonly qemu: string }
  /** With `--follow`: the VM is not there (yet); the watch keeps trying. */
  | { readonly kind: "waiting"; readonly address: string; readonly error: string }
  /** Connected and negotiated; `state` is the run state when already known. */
  | {
      readonly kind: "connected";
      readonly address: string;
      readonly qemu: string;
      readonly state?: string | undefined;
    }
  /** The connection ended; with `--follow` the watch reconnects. */
  | {
      readonly kind: "disconnected";
      readonly reason?: string | undefined;
      readonly reconnecting: boolean;
    }
  /** Connected again; QEMU's events between `sinceMs` and `untilMs` are lost (§1.3: no replay). */
  | {
      readonly kind: "reconnected";
      readonly qemu: string;
      readonly sinceMs: number;
      readonly untilMs: number;
      /** Whether a new QEMU process answers (undefined: cannot be told, e.g. over TCP). */
      readonly restarted?: boolean | undefined;
      /** `"restarted"`: the fleet agent (or recorder) itself was not running in the gap. */
      readonly agent?: string | undefined;
    }
  /** The output did not keep up: this many events were dropped at this point. */
  | { readonly kind: "overflow"; readonly dropped: number }
  | {
      /** The fleet agent's outbox dropped unpublished messages to keep its bounds. */
      readonly kind: "dropped";
      readonly dropped: number;
      readonly reason?: string | undefined;
      readonly firstSequence?: number | undefined;
      readonly lastSequence?: number | undefined;
    };

/** The human text of a watch notice (the formatter adds time and label). */
/** A gap's length for people: `850 ms`, `3.2 s`, `2 min 5 s`. */
export function gapText(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function watchNoticeText(notice: WatchNotice): string {
  switch (notice.kind) {
    case "started":
      return `started a simulated QEMU ${notice.qemu} at ${notice.address}, running a demo guest script`;
    case "waiting":
      return `waiting for ${notice.address} (${notice.error})`;
    case "connected":
      return `connected to QEMU ${notice.qemu}${notice.state ? `, ${notice.state}` : ""}`;
    case "disconnected":
      if (notice.reconnecting) return "connection lost; reconnecting";
      return `disconnected${notice.reason ? ` (${notice.reason})` : ""}`;
    case "reconnected":
      return `reconnected to QEMU ${notice.qemu} after ${gapText(notice.untilMs - notice.sinceMs)}${notice.restarted === true ? ", a new QEMU process" : notice.restarted === false ? ", the same QEMU" : ""}${notice.agent === "restarted" ? " (the agent restarted)" : ""}; events in between are lost`;
    case "overflow":
      return `${notice.dropped} event${notice.dropped === 1 ? "" : "s"} dropped here: the output did not keep up`;
    case "dropped":
      return `${notice.dropped} message${notice.dropped === 1 ? "" : "s"} (sequence ${notice.firstSequence}..${notice.lastSequence}) dropped by the agent's full outbox (${notice.reason ?? "bound"})`;
  }
}

/**
 * One JSON line (no line end) for a watch notice: `{"vm", "watch": KIND, …, "timestamp"}`, the
 * notice's members beside `"watch"` (`reconnected` carries `"gap": {"since", "until"}`, the span
 * whose events are lost), the local time as a QMP-style timestamp. No `"event"` member.
 */
export function formatWatchJson(vm: string, notice: WatchNotice, atMs: number): string {
  const out: Record<string, unknown> = { vm, watch: notice.kind };
  switch (notice.kind) {
    case "started":
    case "waiting":
    case "connected":
      Object.assign(out, notice);
      break;
    case "disconnected":
      if (notice.reason !== undefined) out.reason = notice.reason;
      out.reconnecting = notice.reconnecting;
      break;
    case "reconnected":
      out.qemu = notice.qemu;
      out.gap = { since: qmpTimestamp(notice.sinceMs), until: qmpTimestamp(notice.untilMs) };
      if (notice.restarted !== undefined) out.restarted = notice.restarted;
      if (notice.agent !== undefined) out.agent = notice.agent;
      break;
    case "overflow":
      out.dropped = notice.dropped;
      break;
    case "dropped":
      Object.assign(out, notice);
      break;
  }
  delete out.kind;
  if (out.state === undefined) delete out.state;
  out.timestamp = qmpTimestamp(atMs);
  return stringifyJson(out);
}
