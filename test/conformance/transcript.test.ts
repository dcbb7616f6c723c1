/**
 * The normalisation the differential suite compares through (test/support/transcript.ts): it
 * must hide only what varies from run to run (timestamps, RTC offsets, signal senders) and keep
 * every other byte, including line ends and what timestamps say about order and throttling.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { WireEntry } from "../support/qmp-recorder.js";
import {
  FIRMWARE_RESETS_DROPPED,
  normaliseTranscript,
  type RunRecord,
} from "../support/transcript.js";

const T0 = 1_795_356_000_000; // ms

function event(atMs: number, stampMs: number, rest: string): WireEntry {
  const seconds = Math.floor(stampMs / 1000);
  const micros = Math.round((stampMs - seconds * 1000) * 1000);
  return {
    kind: "received",
    text: `{"timestamp": {"seconds": ${seconds}, "microseconds": ${micros}}, ${rest}}\r\n`,
    at: atMs,
  };
}

function run(wire: WireEntry[], extra: Partial<RunRecord> = {}): RunRecord {
  return { wire, stderr: "", ...extra };
}

describe("normaliseTranscript", () => {
  test("should replace plausible timestamps and keep every other byte", () => {
    const lines = normaliseTranscript(
      run([
        { kind: "sent", text: '{"execute": "cont"}', at: T0 },
        event(T0 + 1, T0, '"event": "RESUME"'),
        { kind: "received", text: '{"return": {}}\r\n', at: T0 + 1 },
        { kind: "eof", at: T0 + 2 },
      ]),
    );
    assert.deepEqual(lines, [
      '>>> {"execute": "cont"}',
      '<<< {"timestamp": <ts>, "event": "RESUME"}',
      '<<< {"return": {}}',
      "EOF",
    ]);
  });

  test("should show a line without CRLF or with control characters quoted", () => {
    const lines = normaliseTranscript(
      run([
        { kind: "received", text: '{"return": {}}\n', at: T0 },
        { kind: "received", text: '{"return": "\t"}\r\n', at: T0 },
      ]),
    );
    assert.deepEqual(lines, [
      '<<< "{\\"return\\": {}}\\n" (no CRLF)',
      '<<< "{\\"return\\": \\"\\t\\"}\\r\\n"',
    ]);
  });

  test("should flag an implausible timestamp instead of hiding it", () => {
    const [line] = normaliseTranscript(run([event(T0, T0 - 3_600_000, '"event": "STOP"')]));
    assert.match(line ?? "", /^<<< \{"timestamp": <bad-ts \d+\.\d+>, "event": "STOP"\}$/);
  });

  test("should note delivery seconds, held events and out-of-order stamps of throttled events", () => {
    const wd = '"event": "WATCHDOG", "data": {"action": "none"}';
    const lines = normaliseTranscript(
      run([
        event(T0, T0, wd),
        event(T0 + 1000, T0 + 999, wd),
        event(T0 + 1500, T0 + 1500, '"event": "STOP"'),
        event(T0 + 2000, T0 + 1400, wd),
      ]),
    );
    assert.deepEqual(lines, [
      '<<< {"timestamp": <ts>, "event": "WATCHDOG", "data": {"action": "none"}} [+0s]',
      '<<< {"timestamp": <ts>, "event": "WATCHDOG", "data": {"action": "none"}} [+1s]',
      '<<< {"timestamp": <ts>, "event": "STOP"}',
      '<<< {"timestamp": <ts>, "event": "WATCHDOG", "data": {"action": "none"}} [+2s] [held] [stamped before the previous event]',
    ]);
  });

  test("should hide RTC_CHANGE's offset only", () => {
    const [line] = normaliseTranscript(
      run([event(T0, T0, '"event": "RTC_CHANGE", "data": {"offset": -2, "qom-path": "/x"}')]),
    );
    assert.equal(
      line,
      '<<< {"timestamp": <ts>, "event": "RTC_CHANGE", "data": {"offset": <offset>, "qom-path": "/x"}} [+0s]',
    );
  });

  test("should add the exit status and stderr lines, with a signal's sender hidden", () => {
    const lines = normaliseTranscript(
      run([{ kind: "eof", at: T0 }], {
        exit: 0,
        stderr: "qemu-system-x86_64: terminating on signal 15 from pid 42 (/usr/bin/node)\n",
      }),
    );
    assert.deepEqual(lines, [
      "EOF",
      "exit 0",
      "stderr: qemu-system-x86_64: terminating on signal 15 from pid <pid> (<sender>)",
    ]);
  });

  test("should drop SeaBIOS guest resets only when asked, noting them once", () => {
    const wire = [
      event(
        T0,
        T0,
        '"event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}',
      ),
      event(T0, T0, '"event": "RESET", "data": {"guest": true, "reason": "guest-reset"}'),
      event(T0, T0, '"event": "RESET", "data": {"guest": true, "reason": "guest-reset"}'),
    ];
    assert.equal(normaliseTranscript(run(wire)).length, 3);
    assert.deepEqual(normaliseTranscript(run(wire), { dropFirmwareResets: true }), [
      '<<< {"timestamp": <ts>, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}',
      FIRMWARE_RESETS_DROPPED,
    ]);
  });
});
