/**
 * The fleet's message format: a CloudEvents 1.0 JSON envelope (structured mode,
 * https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md), one per
 * NATS message, documented in docs/fleet.md "Envelope":
 *
 * ```json
 * {"specversion":"1.0","id":"7f3a9c2e5b10-42","source":"qmpkit://web1/agent",
 *  "type":"qmp.event","subject":"web1/vm1","time":"2026-12-06T19:55:01.123456Z",
 *  "datacontenttype":"application/json","host":"web1","vm":"vm1","sequence":17,
 *  "data":{"event":"STOP","timestamp":{"seconds":1796587001,"microseconds":123456}}}
 * ```
 *
 * - `id`: the stable message id, also the `Nats-Msg-Id` header: the outbox's id (random, made
 *   once per outbox file) and the message's number in it. A resend carries the same id, so the
 *   stream drops it within its duplicate window.
 * - `type`: `qmp.event` (data: the QMP event as QEMU sent it), `qmp.state` (data: `{from, to,
 *   cause}`, cause an event name or `query-status` for a correction), `qmp.watch` (data: the
 *   watch notice, `{kind, ...}`, as `qmpkit events --json` has it).
 * - `time`: the one stamp of the message: for an event QEMU's own timestamp (microseconds); for
 *   a state change the causing event's (or the `query-status` answer's local time); for a notice
 *   the agent's clock.
 * - `subject` is the fleet label `HOST/VM`; `host` and `vm` the plain names; `sequence` counts
 *   the VM's messages in the agent's outbox from 1, with no gap unless the outbox dropped some
 *   (then a `dropped` notice names them).
 *
 * Pure: no I/O.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";
import { isJsonObject, type JsonObject } from "../base/json.js";
import type { JournalEvent, JournalNotice, JournalStateChange } from "../journal/index.js";

/**
 * What the watch hands over, as the journal has it: a QMP event as QEMU sent it, a run-state
 * change and its cause (`atMs`: the causing event's timestamp, or the local time of the
 * `query-status` answer), a notice about the watch (`{kind: "connected", address, qemu, …}`).
 */
export type FleetQmpEvent = JournalEvent;
export type FleetStateChange = JournalStateChange;
export type FleetNotice = JournalNotice;

/** The `type` attribute of each kind of message. */
export const FLEET_TYPES = {
  event: "qmp.event",
  state: "qmp.state",
  watch: "qmp.watch",
} as const;

/** One fleet message, decoded. */
export type FleetMessage = {
  readonly id: string;
  readonly host: string;
  readonly vm: string;
  /** The VM's message number in its agent's outbox (from 1). */
  readonly sequence: number;
  /** The stamp, ms since the epoch (see the module comment). */
  readonly timeMs: number;
} & (
  | { readonly kind: "event"; readonly event: FleetQmpEvent }
  | { readonly kind: "state"; readonly change: FleetStateChange }
  | { readonly kind: "watch"; readonly notice: FleetNotice }
);

/** A message that is not a fleet envelope. */
export class EnvelopeError extends QmpError {
  override name = "EnvelopeError";
}

/** RFC 3339 UTC time with microseconds, from seconds and microseconds. */
export function rfc3339(seconds: number, microseconds: number): string {
  const iso = new Date(seconds * 1000).toISOString(); // ….000Z
  return `${iso.slice(0, 19)}.${String(microseconds).padStart(6, "0")}Z`;
}

/** RFC 3339 from milliseconds (fractions kept to the microsecond). */
export function rfc3339Ms(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return rfc3339(seconds, Math.min(999_999, Math.round((ms - seconds * 1000) * 1000)));
}

/** Milliseconds since the epoch of an RFC 3339 time (microseconds kept as fractions). */
export function parseRfc3339(text: string): number {
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  const whole = m ? Date.parse(`${m[1]}${m[3]}`) : Number.NaN;
  if (!m || Number.isNaN(whole)) throw new EnvelopeError(`invalid time '${text}'`);
  const fraction = m[2] === undefined ? 0 : Number(`0.${m[2]}`) * 1000;
  return whole + fraction;
}

/** What an envelope is built from (the id and sequence come from the outbox). */
export type EnvelopeInput = {
  readonly host: string;
  readonly vm: string;
} & (
  | { readonly kind: "event"; readonly event: FleetQmpEvent }
  | { readonly kind: "state"; readonly change: FleetStateChange }
  | { readonly kind: "watch"; readonly notice: FleetNotice; readonly atMs: number }
);

/** The envelope's JSON text. */
export function encodeEnvelope(input: EnvelopeInput, id: string, sequence: number): string {
  let time: string;
  let data: unknown;
  if (input.kind === "event") {
    time = rfc3339(input.event.timestamp.seconds, input.event.timestamp.microseconds);
    data = input.event;
  } else if (input.kind === "state") {
    time = rfc3339Ms(input.change.atMs);
    data = { from: input.change.from, to: input.change.to, cause: input.change.cause };
  } else {
    time = rfc3339Ms(input.atMs);
    data = input.notice;
  }
  return JSON.stringify({
    specversion: "1.0",
    id,
    source: `qmpkit://${input.host}/agent`,
    type: FLEET_TYPES[input.kind],
    subject: `${input.host}/${input.vm}`,
    time,
    datacontenttype: "application/json",
    host: input.host,
    vm: input.vm,
    sequence,
    data,
  });
}

function str(o: JsonObject, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new EnvelopeError(`the envelope's '${key}' is not a string`);
  return v;
}

/** Decodes an envelope's text; throws `EnvelopeError` when it is not one. */
export function decodeEnvelope(text: string): FleetMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new EnvelopeError(`not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!isJsonObject(parsed)) throw new EnvelopeError("not a JSON object");
  const o = parsed as JsonObject;
  if (o.specversion !== "1.0") throw new EnvelopeError("not a CloudEvents 1.0 envelope");
  const base = {
    id: str(o, "id"),
    host: str(o, "host"),
    vm: str(o, "vm"),
    sequence: typeof o.sequence === "number" ? o.sequence : 0,
    timeMs: parseRfc3339(str(o, "time")),
  };
  const data = o.data;
  if (!isJsonObject(data)) throw new EnvelopeError("the envelope has no data object");
  const d = data as JsonObject;
  switch (o.type) {
    case FLEET_TYPES.event:
      return { ...base, kind: "event", event: d as unknown as FleetQmpEvent };
    case FLEET_TYPES.state:
      return {
        ...base,
        kind: "state",
        change: {
          from: String(d.from),
          to: String(d.to),
          cause: String(d.cause),
          atMs: base.timeMs,
        },
      };
    case FLEET_TYPES.watch:
      return { ...base, kind: "watch", notice: d as unknown as FleetNotice };
    default:
      throw new EnvelopeError(`unknown type '${String(o.type)}'`);
  }
}
