/**
 * The event side of a QEMU process: {@link EventBus} builds an event once, stamps it once,
 * throttles it once, and writes that one event to every attached monitor.
 *
 * QEMU has one such path per process (`qapi/qmp-event.c`, `monitor/monitor.c`):
 * `qmp_event_build_dict` makes the `{event, timestamp}` dict with `g_get_real_time()` when the
 * event is raised; `qapi_event_emit` queues it (a FIFO, so that events raised while one is being
 * delivered keep their order); `monitor_qapi_event_queue_no_reenter` consults the one throttle
 * table of the process (`monitor_qapi_event_state`); `monitor_qapi_event_emit` hands the same
 * dict to every QMP monitor in `mon_list` whose client has left negotiation mode. A held
 * throttled event is that same dict, stamped when it was raised, written when the timer fires
 * (`monitor_qapi_event_handler`). So every monitor receives the same bytes, timestamp included
 * (§1.6, §2.2).
 *
 * A {@link QmpServer} makes a bus of its own unless given one (`QmpServerOptions.events`);
 * whatever owns several servers (the simulated machine, one server per monitor) makes one bus
 * and gives it to each of them.
 *
 * Pure: no `node:*` imports.
 *
 * @module
 */
import type { JsonObject } from "../base/json.js";
import { eventValidators } from "../generated/index.js";
import type { Validator } from "../schema/validator.js";
import { writeQemuJson } from "../wire/index.js";
import { type ServerClock, systemClock } from "./clock.js";
import { EventThrottle, type ThrottleTable } from "./throttle.js";

/**
 * A message as a QEMU monitor prints it, line end included: the JSON writer's text (pretty with
 * 4-space indentation for `pretty=on`), every `\n` turned into `\r\n` by `monitor_puts` (§1.1).
 */
export function monitorText(message: JsonObject, pretty: boolean): string {
  if (pretty) return `${writeQemuJson(message, { pretty: true })}\n`.replaceAll("\n", "\r\n");
  return `${writeQemuJson(message)}\r\n`;
}

/** One built event on its way to the monitors, printed at most once per output style. */
export class BuiltEvent {
  #plain: string | undefined;
  #pretty: string | undefined;

  constructor(
    /** `{event, timestamp, data?}`, as `qmp_event_build_dict` and the generated code build it. */
    readonly message: JsonObject,
    /**
     * The one-line text when it is already known, line end included: an event forwarded as an
     * upstream QEMU printed it (the proxy) is passed on as those bytes, not printed again.
     */
    plain?: string | undefined,
  ) {
    this.#plain = plain;
  }

  /** The event as a monitor prints it (see {@link monitorText}); the same string every time. */
  text(pretty: boolean): string {
    if (pretty) return (this.#pretty ??= monitorText(this.message, true));
    return (this.#plain ??= monitorText(this.message, false));
  }
}

/** Where a bus writes events: one monitor, or a server's group of monitors. */
export interface EventSink {
  /**
   * Writes the event to every client of the sink that has finished negotiation (§1.3).
   * Called synchronously, in the order the events leave the throttle.
   */
  deliverEvent(event: BuiltEvent): void;
}

/** Options of {@link EventBus}. */
export interface EventBusOptions {
  /** The throttled events (`throttleTableFor(version)` for a QEMU version). */
  readonly throttle: ThrottleTable;
  /** Wall clock for the stamps, timers for the throttle. Default {@link systemClock}. */
  readonly clock?: ServerClock | undefined;
  /**
   * Check the data of every raised event the schema knows against its generated validator;
   * `emit` then throws a `ValidationError` instead of sending a malformed event. Default false.
   */
  readonly validate?: boolean | undefined;
}

/**
 * A process's events: raised once, stamped once, throttled once (one table for the whole
 * process, §2.2), and the same built event written to every attached sink.
 *
 * @example
 * const events = new EventBus({ throttle: throttleTableFor({ major: 7, minor: 2 }) });
 * const a = new QmpServer({ events });
 * const b = new QmpServer({ events, pretty: true });
 * events.emit("STOP"); // one timestamp, on both servers' clients
 */
export class EventBus {
  readonly #clock: ServerClock;
  readonly #throttle: EventThrottle;
  readonly #validate: boolean;
  #sinks: readonly EventSink[] = [];
  readonly #fifo: Array<{ name: string; event: JsonObject; data: JsonObject | undefined }> = [];
  #emitting = false;
  #closed = false;

  constructor(options: EventBusOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#validate = options.validate ?? false;
    this.#throttle = new EventThrottle({
      table: options.throttle,
      clock: this.#clock,
      deliver: (event) => this.#deliver(new BuiltEvent(event)),
    });
  }

  /** Adds a sink: it receives every event that leaves the throttle from now on. */
  attach(sink: EventSink): void {
    if (!this.#sinks.includes(sink)) this.#sinks = [...this.#sinks, sink];
  }

  /** Removes a sink. */
  detach(sink: EventSink): void {
    this.#sinks = this.#sinks.filter((s) => s !== sink);
  }

  /**
   * Raises an event: built and stamped now with the wall clock, throttled as QEMU does (§2),
   * then written to every sink. Events raised while one is being delivered keep their order
   * (`qapi_event_emit`'s FIFO). Returns the event as built (a held event goes out later, with
   * this timestamp). After {@link EventBus.close} the event is only built.
   *
   * `data` is printed with QEMU's key order; build it with members in schema order, as QEMU's
   * generated code inserts them.
   *
   * @throws ValidationError with `validate`, when the data does not match the schema.
   */
  emit(name: string, data?: JsonObject): JsonObject {
    if (this.#closed) return this.build(name, data);
    if (this.#validate && Object.hasOwn(eventValidators, name)) {
      (eventValidators as Record<string, Validator<unknown>>)[name]!.parse(data, {
        mode: "strict",
      });
    }
    const event = this.build(name, data);
    this.#fifo.push({ name, event, data });
    if (!this.#emitting) {
      this.#emitting = true;
      try {
        for (let next = this.#fifo.shift(); next; next = this.#fifo.shift()) {
          this.#throttle.submit(next.name, next.event, next.data);
        }
      } finally {
        this.#emitting = false;
      }
    }
    return event;
  }

  /** `qmp_event_build_dict` plus the data: inserted as event, timestamp, data (§1.6). */
  build(name: string, data?: JsonObject): JsonObject {
    const micros = this.#clock.nowMicros();
    const event: JsonObject = {
      event: name,
      timestamp: { seconds: Math.floor(micros / 1_000_000), microseconds: micros % 1_000_000 },
    };
    if (data !== undefined) event.data = data;
    return event;
  }

  /** Replaces the throttle table (records stay). */
  setThrottleTable(table: ThrottleTable): void {
    this.#throttle.setTable(table);
  }

  /** The throttle state, for tests and diagnostics. */
  get throttleState(): { readonly records: number; readonly held: number } {
    return { records: this.#throttle.activeRecords, held: this.#throttle.heldEvents };
  }

  /** Whether {@link EventBus.close} was called. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Cancels the throttle timers, forgets held events and stops delivering. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#fifo.length = 0;
    this.#throttle.clear();
  }

  #deliver(event: BuiltEvent): void {
    // QEMU walks mon_list (newest monitor first, monitor_list_append inserts at the head); the
    // order between separate sockets is not observable, so sinks are served in attach order.
    for (const sink of this.#sinks) sink.deliverEvent(event);
  }
}
