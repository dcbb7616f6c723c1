/**
 * QEMU's event throttling (§2, `monitor/monitor.c`): some guest-triggerable events are limited
 * to one per second per key, globally (not per client).
 *
 * The algorithm, per (event, key) record:
 * 1. An event that is not in the table goes out at once.
 * 2. If a record exists (its timer is then armed), the new event replaces the held one, if any;
 *    nothing is sent.
 * 3. Otherwise the event goes out at once, and a record with nothing held is created with its
 *    timer armed for now + 1000 ms.
 * When the timer fires: a held event is sent (with the timestamp it was built with), the hold is
 * cleared and the timer re-armed for now + 1000 ms; with nothing held, the record is deleted, so
 * the next event of that key goes out at once again.
 *
 * The table of throttled events changed over QEMU's history, so it is chosen by version
 * ({@link throttleTableFor}); the simulator plays several versions.
 *
 * Pure: no `node:*` imports.
 *
 * @module
 */
import type { JsonObject, JsonValue } from "../base/json.js";
import { type QemuVersion, versionAtLeast } from "../schema/qemu-version.js";
import type { ClockTimer, ServerClock } from "./clock.js";

/** QEMU's throttle period: `1000 * SCALE_MS` nanoseconds, i.e. one second. */
export const THROTTLE_PERIOD_MS = 1000;

/** How one event is throttled. */
export interface ThrottleRule {
  /**
   * The `data` member whose string value separates instances (`id`, `node-name`, `qom-path`),
   * as `qapi_event_throttle_hash`/`_equal` do; absent means every instance of the event shares
   * one record ("event only").
   */
  readonly key?: string | undefined;
}

/** Event name → rule. Events not listed are not throttled. */
export type ThrottleTable = Readonly<Record<string, ThrottleRule>>;

/** The throttled events of QEMU 7.2 (`monitor_qapi_event_conf` @ v7.2.0). */
export const THROTTLE_TABLE_7_2: ThrottleTable = Object.freeze({
  RTC_CHANGE: {},
  WATCHDOG: {},
  BALLOON_CHANGE: {},
  QUORUM_REPORT_BAD: { key: "node-name" },
  QUORUM_FAILURE: {},
  VSERPORT_CHANGE: { key: "id" },
  MEMORY_DEVICE_SIZE_CHANGE: { key: "qom-path" },
});

/** The throttled events of QEMU 10.2 (`monitor_qapi_event_conf` @ v10.2.0). */
export const THROTTLE_TABLE_10_2: ThrottleTable = Object.freeze({
  ...THROTTLE_TABLE_7_2,
  HV_BALLOON_STATUS_REPORT: {},
  BLOCK_IO_ERROR: { key: "qom-path" },
});

/**
 * A QEMU version, as in the greeting's `version.qemu` (the project's one version type,
 * schema/qemu-version.ts); `micro` may be left out, it changes no throttle rule.
 */
export type QemuVersionTriple = Omit<QemuVersion, "micro"> & {
  readonly micro?: number | undefined;
};

/**
 * The throttle table of a given QEMU version (§2.1): MEMORY_DEVICE_SIZE_CHANGE is throttled
 * since 5.1 (per event) and keyed by `qom-path` since 6.2; HV_BALLOON_STATUS_REPORT since 8.2;
 * BLOCK_IO_ERROR, keyed by `qom-path`, since 9.2. The older entries predate every version
 * qmpkit plays.
 */
export function throttleTableFor(version: QemuVersionTriple): ThrottleTable {
  const atLeast = (major: number, minor: number) =>
    versionAtLeast({ ...version, micro: version.micro ?? 0 }, major, minor);
  const table: Record<string, ThrottleRule> = {
    RTC_CHANGE: {},
    WATCHDOG: {},
    BALLOON_CHANGE: {},
    QUORUM_REPORT_BAD: { key: "node-name" },
    QUORUM_FAILURE: {},
    VSERPORT_CHANGE: { key: "id" },
  };
  if (atLeast(6, 2)) table.MEMORY_DEVICE_SIZE_CHANGE = { key: "qom-path" };
  else if (atLeast(5, 1)) table.MEMORY_DEVICE_SIZE_CHANGE = {};
  if (atLeast(8, 2)) table.HV_BALLOON_STATUS_REPORT = {};
  if (atLeast(9, 2)) table.BLOCK_IO_ERROR = { key: "qom-path" };
  return Object.freeze(table);
}

interface ThrottleRecord {
  timer: ClockTimer;
  /** The latest event that arrived while the timer was armed, to be sent when it fires. */
  held: JsonObject | undefined;
}

/** Options of {@link EventThrottle}. */
export interface EventThrottleOptions {
  readonly table: ThrottleTable;
  readonly clock: ServerClock;
  /** Sends a built event to every negotiated client (called synchronously). */
  readonly deliver: (event: JsonObject) => void;
  /** Default {@link THROTTLE_PERIOD_MS}. */
  readonly periodMs?: number | undefined;
}

function keyText(value: JsonValue | undefined): string {
  // QEMU compares the member with strcmp (qdict_get_str); any other JSON type is a caller bug
  // there (an assertion), here it simply forms its own key.
  if (typeof value === "string") return `s:${value}`;
  return value === undefined
    ? "absent"
    : `j:${typeof value === "bigint" ? value.toString() : JSON.stringify(value)}`;
}

/**
 * The global throttle state. One instance per server: QEMU keeps it per process, shared by all
 * monitors (§2.2).
 */
export class EventThrottle {
  private table: ThrottleTable;
  private readonly clock: ServerClock;
  private readonly deliver: (event: JsonObject) => void;
  private readonly periodMs: number;
  private readonly records = new Map<string, ThrottleRecord>();

  constructor(options: EventThrottleOptions) {
    this.table = options.table;
    this.clock = options.clock;
    this.deliver = options.deliver;
    this.periodMs = options.periodMs ?? THROTTLE_PERIOD_MS;
  }

  /** Replaces the table (e.g. when the simulator switches QEMU version). Records stay. */
  setTable(table: ThrottleTable): void {
    this.table = table;
  }

  /** Whether `name` is throttled under the current table. */
  isThrottled(name: string): boolean {
    return Object.hasOwn(this.table, name);
  }

  /** How many (event, key) records exist, i.e. how many timers are armed. */
  get activeRecords(): number {
    return this.records.size;
  }

  /** How many records currently hold an event. */
  get heldEvents(): number {
    let n = 0;
    for (const r of this.records.values()) if (r.held !== undefined) n++;
    return n;
  }

  /**
   * Sends or holds one built event (`{event, timestamp, data?}`), as
   * `monitor_qapi_event_queue_no_reenter` does.
   */
  submit(name: string, event: JsonObject, data: JsonObject | undefined): void {
    const rule = Object.hasOwn(this.table, name) ? this.table[name] : undefined;
    if (rule === undefined) {
      this.deliver(event);
      return;
    }
    const id =
      rule.key === undefined ? `${name}\u0000` : `${name}\u0000${keyText(data?.[rule.key])}`;
    const record = this.records.get(id);
    if (record !== undefined) {
      // §2.2 step 2: replace whatever is held; the earlier held event is discarded.
      record.held = event;
      return;
    }
    this.deliver(event);
    const fresh: ThrottleRecord = {
      held: undefined,
      timer: this.clock.setTimer(() => this.expire(id, fresh), this.periodMs),
    };
    this.records.set(id, fresh);
  }

  private expire(id: string, record: ThrottleRecord): void {
    if (this.records.get(id) !== record) return;
    const held = record.held;
    if (held === undefined) {
      // §2.2 step 5: nothing arrived during the period, the record goes away.
      this.records.delete(id);
      return;
    }
    record.held = undefined;
    record.timer = this.clock.setTimer(() => this.expire(id, record), this.periodMs);
    // Delivered with the timestamp it was built with (§2.2 step 4).
    this.deliver(held);
  }

  /** Cancels every timer and forgets held events (server shutdown). */
  clear(): void {
    for (const record of this.records.values()) this.clock.clearTimer(record.timer);
    this.records.clear();
  }
}
