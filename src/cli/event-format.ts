/**
 * What `qmpkit events` prints, and which events it prints.
 *
 * - Filters: `--only` / `--except` take event names (comma-separated, `*` and `?` wildcards,
 *   case-insensitive); `--where key=value` matches event data by dotted path (`--where
 *   action=pause`, `--where info.type=hyper-v`), `key!=value` negates; several filters must all hold.
 * - Human lines: local time (ms), the VM's label, the time since that VM's previous event, the
 *   event name (coloured by what it means), its data flattened to `key=value`; run-state changes
 *   on a line of their own. Colour only when asked (a terminal, `--color`).
 * - JSON lines: the event as QEMU sent it plus `"vm"` (the label), one object per line, for `jq`.
 *
 * Pure: no I/O; the caller writes the strings.
 *
 * @module
 */
import pc from "picocolors";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { stringifyJson } from "./json-text.js";
import { UsageError } from "./usage-error.js";

/** A QMP event as it arrives (`data` absent for events without arguments, §1.6). */
export interface QmpEventMessage {
  readonly event: string;
  readonly data?: JsonObject | undefined;
  readonly timestamp: { readonly seconds: number; readonly microseconds: number };
}

/** Event selection: names to keep or drop, and conditions on the data. */
export interface EventFilterOptions {
  readonly only?: readonly string[] | undefined;
  readonly except?: readonly string[] | undefined;
  readonly where?: readonly string[] | undefined;
}

type Condition = {
  readonly path: string[];
  readonly value: string;
  readonly negate: boolean;
  readonly text: string;
};

function namePatterns(items: readonly string[] | undefined): RegExp[] | undefined {
  if (!items || items.length === 0) return undefined;
  return items
    .flatMap((item) => item.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(
      (s) =>
        new RegExp(
          `^${s
            .replace(/[.+^${}()|[\]\\]/g, "\\$&")
            .replace(/\*/g, ".*")
            .replace(/\?/g, ".")}$`,
          "i",
        ),
    );
}

/** Renders a data value the way `--where` compares it: strings bare, the rest as JSON. */
export function scalarText(value: JsonValue): string {
  if (typeof value === "string") return value;
  if (typeof value === "bigint") return value.toString();
  return stringifyJson(value);
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

/** Compiles the filter options; throws `UsageError` for a malformed `--where`. */
export function createEventFilter(
  options: EventFilterOptions,
): (event: QmpEventMessage) => boolean {
  const only = namePatterns(options.only);
  const except = namePatterns(options.except);
  const conditions: Condition[] = (options.where ?? []).map((text) => {
    const m = /^([^=!]+)(!?)=(.*)$/s.exec(text);
    if (!m) throw new UsageError(`invalid --where '${text}': expected key=value or key!=value`);
    const path = m[1]!.split(".");
    if (path.some((p) => p.trim() === ""))
      throw new UsageError(`invalid --where '${text}': '${m[1]}' is not a member path`);
    return { path, value: m[3]!, negate: m[2] === "!", text };
  });
  return (event) => {
    if (only && !only.some((re) => re.test(event.event))) return false;
    if (except?.some((re) => re.test(event.event))) return false;
    for (const c of conditions) {
      let v: JsonValue | undefined = event.data;
      for (const step of c.path) v = isJsonObject(v) ? v[step] : undefined;
      const matches = v !== undefined && scalarText(v) === c.value;
      if (matches === c.negate) return false;
    }
    return true;
  };
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
