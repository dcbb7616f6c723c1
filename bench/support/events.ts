/**
 * What the event benchmarks share: the event stream of a busy VM as QEMU prints it, and the
 * median they report. Lives in a folder of its own so that `bench/run.ts`, which runs every
 * `bench/*.ts`, does not take it for a benchmark.
 *
 * @module
 */
import type { JsonObject } from "../../src/base/json.js";
import { writeQemuJson } from "../../src/wire/index.js";

/**
 * `count` events as QEMU writes them (`writeQemuJson` + `\r\n`), cycling through a busy VM's
 * mix: run-state events without data (STOP, RESUME), SHUTDOWN with `guest`/`reason`,
 * DEVICE_DELETED with paths, BLOCK_JOB_COMPLETED with 64-bit counters, and RTC_CHANGE with a
 * negative offset. Every event is valid for the catalogue.
 */
export function busyVmEvents(count: number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const timestamp = {
      seconds: 1_700_000_000 + Math.floor(i / 1000),
      microseconds: (i * 7919) % 1_000_000,
    };
    let event: JsonObject;
    switch (i % 6) {
      case 0:
        event = { event: "STOP", timestamp };
        break;
      case 1:
        event = { event: "RESUME", timestamp };
        break;
      case 2:
        event = { event: "SHUTDOWN", data: { guest: true, reason: "guest-shutdown" }, timestamp };
        break;
      case 3:
        event = {
          event: "DEVICE_DELETED",
          data: {
            device: `virtio-disk${i % 16}`,
            path: `/machine/peripheral/virtio-disk${i % 16}`,
          },
          timestamp,
        };
        break;
      case 4:
        event = {
          event: "BLOCK_JOB_COMPLETED",
          data: {
            type: "mirror",
            device: "drive0",
            len: 10737418240,
            offset: 10737418240,
            speed: 0,
          },
          timestamp,
        };
        break;
      default:
        event = {
          event: "RTC_CHANGE",
          data: { offset: -(i % 3600), "qom-path": "/machine/unattached/device[8]" },
          timestamp,
        };
    }
    lines.push(`${writeQemuJson(event)}\r\n`);
  }
  return Buffer.from(lines.join(""));
}

/** The upper median of `values` (the middle one for the odd round counts the benchmarks use). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
