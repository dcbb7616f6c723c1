/**
 * Test support: turns what a QMP peer recorded into a normalised transcript, one string per line,
 * that can be compared byte for byte between real QEMU, the simulator and the reference (§4.3, §5).
 *
 * What the normalisation changes, and nothing else:
 * - An event's timestamp `{"seconds": S, "microseconds": U}` becomes `<ts>`: wall-clock values
 *   differ from run to run (§1.6). A timestamp that is not plausible (microseconds out of range,
 *   or more than a minute away from the time the line arrived) becomes `<bad-ts …>` instead, so
 *   it shows as a difference.
 * - What the timestamps say about order is kept as annotations after the line:
 *   `[stamped before the previous event]` when an event carries an earlier timestamp than the
 *   event delivered before it (a held, throttled event, §2.2).
 * - Throttled events (§2.1) get `[+Ns]`, the whole seconds between their delivery and the
 *   delivery of the first event of that name, and `[held]` when their timestamp is more than
 *   250 ms older than their delivery (the throttle kept them back, §2.2).
 * - RTC_CHANGE's `offset` becomes `<offset>`: it is the guest's RTC minus the host's clock in
 *   whole seconds, and on real QEMU it depends on where in its second the host clock was when
 *   QEMU started and on how long the guest kept rewriting the clock (each write restarts the
 *   RTC's second, hw/rtc/mc146818rtc.c `rtc_set_time`), so 0, -1, -2… vary from run to run.
 * - In stderr, the pid and program that sent QEMU a host signal become `<pid>` and `<sender>`.
 * - A line is shown without its `\r\n`; a line that does not end so is shown JSON-quoted with
 *   `(no CRLF)`, as is any line with another control character.
 *
 * Firmware artefacts: the tiny guests run as the firmware itself (`-bios`), so SeaBIOS's own
 * extra guest resets after a reset or a wake-up (§4.3 note) never happen there, and the simulator
 * runs with `--firmware-resets 0` to match. The one scenario that boots SeaBIOS drops them
 * explicitly ({@link NormaliseOptions.dropFirmwareResets}).
 */
import type { WireEntry } from "./qmp-recorder.js";

/** What one run of a scenario produced. */
export interface RunRecord {
  /** The connection, in order. */
  readonly wire: readonly WireEntry[];
  /** The exit status, if the process ended during the scenario. */
  readonly exit?: number | string | undefined;
  /** What the process wrote to stderr. */
  readonly stderr: string;
}

/** Events QEMU 7.2 throttles to one a second (§2.1). */
export const THROTTLED_EVENTS: ReadonlySet<string> = new Set([
  "RTC_CHANGE",
  "WATCHDOG",
  "BALLOON_CHANGE",
  "QUORUM_FAILURE",
  "QUORUM_REPORT_BAD",
  "VSERPORT_CHANGE",
  "MEMORY_DEVICE_SIZE_CHANGE",
]);

/**
 * The events QEMU `version` throttles, from the reference's table (§2.1), not from the server's
 * code under test: 7.2's, plus HV_BALLOON_STATUS_REPORT from 8.2 and BLOCK_IO_ERROR from 9.2.
 */
export function throttledEventsOf(version: {
  readonly major: number;
  readonly minor: number;
}): ReadonlySet<string> {
  const atLeast = (major: number, minor: number) =>
    version.major > major || (version.major === major && version.minor >= minor);
  const events = new Set(THROTTLED_EVENTS);
  if (atLeast(8, 2)) events.add("HV_BALLOON_STATUS_REPORT");
  if (atLeast(9, 2)) events.add("BLOCK_IO_ERROR");
  return events;
}

const EVENT_LINE =
  /^\{"timestamp": \{"seconds": (-?\d+), "microseconds": (-?\d+)\}, "event": "([^"]*)"/;

/** How long an event may wait in the throttle before it counts as held (see module doc). */
const HELD_AFTER_MS = 250;

function showLine(text: string): string {
  const body = text.endsWith("\r\n") ? text.slice(0, -2) : undefined;
  if (body === undefined || /[\x00-\x1f\x7f]/.test(body)) {
    return `${JSON.stringify(text)}${body === undefined ? " (no CRLF)" : ""}`;
  }
  return body;
}

/** Options of {@link normaliseTranscript}. */
export interface NormaliseOptions {
  /**
   * Drop the guest resets SeaBIOS makes after a reset or wake-up (RESET{guest: true,
   * reason: "guest-reset"}, §4.3 note) and note their place with {@link FIRMWARE_RESETS_DROPPED}.
   * On QEMU 7.2.22 SeaBIOS made one or two of them from run to run, depending on host timing, so
   * only their presence is compared. Only for scenarios that boot SeaBIOS.
   */
  dropFirmwareResets?: boolean | undefined;
  /**
   * The events to annotate as throttled. Default {@link THROTTLED_EVENTS} (7.2's); 9.2+ adds
   * BLOCK_IO_ERROR and 8.2+ HV_BALLOON_STATUS_REPORT ({@link throttledEventsOf}).
   */
  throttledEvents?: ReadonlySet<string> | undefined;
}

/** The line that stands for the SeaBIOS guest resets dropped by {@link NormaliseOptions}. */
export const FIRMWARE_RESETS_DROPPED = "(SeaBIOS's own guest resets dropped, §4.3 note)";

const FIRMWARE_RESET =
  /^\{"timestamp": \{[^}]*\}, "event": "RESET", "data": \{"guest": true, "reason": "guest-reset"\}\}\r\n$/;

/** Normalises a run (see the module doc). */
export function normaliseTranscript(record: RunRecord, options: NormaliseOptions = {}): string[] {
  const out: string[] = [];
  let firmwareResetsNoted = false;
  const firstDelivery = new Map<string, number>();
  let previousStampUs: number | undefined;
  for (const entry of record.wire) {
    if (entry.kind === "eof") {
      out.push("EOF");
      continue;
    }
    if (entry.kind === "sent") {
      out.push(`>>> ${entry.text}`);
      continue;
    }
    if (options.dropFirmwareResets === true && FIRMWARE_RESET.test(entry.text)) {
      if (!firmwareResetsNoted) out.push(FIRMWARE_RESETS_DROPPED);
      firmwareResetsNoted = true;
      continue;
    }
    let line = showLine(entry.text);
    const m = EVENT_LINE.exec(line);
    if (m === null) {
      out.push(`<<< ${line}`);
      continue;
    }
    const seconds = Number(m[1]);
    const micros = Number(m[2]);
    const name = m[3] as string;
    const stampUs = seconds * 1e6 + micros;
    const plausible = micros >= 0 && micros < 1e6 && Math.abs(stampUs / 1000 - entry.at) < 60_000;
    line = line.replace(
      /^\{"timestamp": \{"seconds": -?\d+, "microseconds": -?\d+\}/,
      plausible ? '{"timestamp": <ts>' : `{"timestamp": <bad-ts ${seconds}.${micros}>`,
    );
    if (name === "RTC_CHANGE") line = line.replace(/"offset": -?\d+/, '"offset": <offset>');
    const notes: string[] = [];
    if ((options.throttledEvents ?? THROTTLED_EVENTS).has(name)) {
      const first = firstDelivery.get(name) ?? entry.at;
      firstDelivery.set(name, first);
      notes.push(`+${Math.round((entry.at - first) / 1000)}s`);
      if (entry.at - stampUs / 1000 > HELD_AFTER_MS) notes.push("held");
    }
    if (previousStampUs !== undefined && stampUs < previousStampUs) {
      notes.push("stamped before the previous event");
    }
    previousStampUs = stampUs;
    out.push(`<<< ${line}${notes.map((n) => ` [${n}]`).join("")}`);
  }
  if (record.exit !== undefined) out.push(`exit ${record.exit}`);
  for (const text of record.stderr.split("\n")) {
    // QEMU names the sender of a host signal (os-posix.c `termsig_handler`): a pid and a path.
    if (text !== "")
      out.push(`stderr: ${text.replace(/from pid \d+ \([^)]*\)/, "from pid <pid> (<sender>)")}`);
  }
  return out;
}
