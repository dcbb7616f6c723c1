/**
 * The simulated guest and the ACPI power button (`acpiShutdownMs`): ignored by default, as by a
 * guest without an OS; honoured after its delay of run time when configured, as an OS does.
 * Driven over QMP on a fake clock, so the delays are exact and nothing waits for real time.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { QmpClient } from "../../src/client/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { parseQemuOptions } from "../../src/sim/qemu-options.js";
import { ManualClock } from "../../src/server/clock.js";

async function machine(acpiShutdownMs: number | undefined, noShutdown = false) {
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-acpi-"));
  const clock = new ManualClock();
  const vm = new SimulatedMachine({
    clock,
    actions: noShutdown ? { shutdown: "pause" } : {},
    devices: acpiShutdownMs === undefined ? {} : { acpiShutdownMs },
  });
  await vm.listen(`unix:${join(dir, "vm.qmp")}`);
  const qmp = await QmpClient.connect(`unix:${join(dir, "vm.qmp")}`, { timeoutMs: 10_000 });
  const events: string[] = [];
  qmp.on("*", (e) => events.push(e.data ? `${e.event} ${JSON.stringify(e.data)}` : e.event));
  /** Events delivered so far: a round trip flushes those sent before its reply. */
  const seen = async () => {
    await qmp.execute("query-name");
    return [...events];
  };
  const done = async () => {
    await qmp.close();
    await vm.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { vm, qmp, clock, events, seen, done };
}

suite("the simulated guest and the ACPI power button", () => {
  test("should ignore the button by default (no OS): POWERDOWN and nothing more", async () => {
    const m = await machine(undefined);
    try {
      await m.qmp.execute("system_powerdown");
      m.clock.advance(3_600_000);
      assert.deepEqual(await m.seen(), ["POWERDOWN"]);
      assert.equal((await m.qmp.execute("query-status")).status, "running");
    } finally {
      await m.done();
    }
  });

  test("should shut down after its delay of run time when it honours ACPI, once", async () => {
    const m = await machine(2_000);
    try {
      await m.qmp.execute("system_powerdown");
      await m.qmp.execute("system_powerdown");
      m.clock.advance(1_999);
      assert.deepEqual(await m.seen(), ["POWERDOWN", "POWERDOWN"]);
      m.clock.advance(1);
      // Without -no-shutdown the simulated QEMU then exits, as QEMU does.
      await m.qmp.closed;
      assert.deepEqual(m.events, [
        "POWERDOWN",
        "POWERDOWN",
        'SHUTDOWN {"guest":true,"reason":"guest-shutdown"}',
      ]);
    } finally {
      await m.done();
    }
  });

  test("should count only the time the guest runs, and keep the machine with -no-shutdown", async () => {
    const m = await machine(500, true);
    try {
      await m.qmp.execute("stop");
      await m.qmp.execute("system_powerdown");
      m.clock.advance(60_000);
      assert.deepEqual(await m.seen(), ["STOP", "POWERDOWN"]);
      await m.qmp.execute("cont");
      m.clock.advance(500);
      assert.deepEqual(await m.seen(), [
        "STOP",
        "POWERDOWN",
        "RESUME",
        'SHUTDOWN {"guest":true,"reason":"guest-shutdown"}',
        "STOP",
      ]);
      assert.equal((await m.qmp.execute("query-status")).status, "shutdown");
    } finally {
      await m.done();
    }
  });

  test("should forget a pending press on reset, as a rebooted OS does", async () => {
    const m = await machine(1_000);
    try {
      await m.qmp.execute("system_powerdown");
      await m.qmp.execute("system_reset");
      m.clock.advance(10_000);
      assert.deepEqual(await m.seen(), [
        "POWERDOWN",
        'RESET {"guest":false,"reason":"host-qmp-system-reset"}',
      ]);
    } finally {
      await m.done();
    }
  });

  test("should be set from QEMU's command line as --guest-acpi-shutdown MS", () => {
    assert.equal(parseQemuOptions(["--guest-acpi-shutdown", "1500"]).acpiShutdownMs, 1500);
    assert.throws(
      () => parseQemuOptions(["--guest-acpi-shutdown", "soon"]),
      /expects milliseconds, not 'soon'/,
    );
  });
});
