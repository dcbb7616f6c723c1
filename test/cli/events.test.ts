/**
 * `qmpkit events` through the real CLI: the demo with no target, several VMs from a glob, the
 * JSON form and filters, --follow across a VM restart, and a real QEMU.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { SimulatedMachine } from "../../src/sim/index.js";
import { realQemuTest, startQemu } from "../support/real-qemu.js";
import { collect, runCli, spawnCli, waitForOutput } from "./support.js";

/** The event names of human lines (time, label, optional delta, NAME). */
function humanEvents(stdout: string): string[] {
  return stdout
    .split("\n")
    .map(
      (l) =>
        /^\d\d:\d\d:\d\d\.\d{3}\s+\S+\s+(?:[+-][\d.]+\S*\s+)?([A-Z][A-Z0-9_]+)(?:\s|$)/.exec(
          l,
        )?.[1],
    )
    .filter((x): x is string => x !== undefined);
}

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

suite("events: the demo", () => {
  test("should show a new user a whole VM life with no target, then exit cleanly", async () => {
    const [human, json] = await Promise.all([
      runCli(["events"], { timeoutMs: 40_000 }),
      runCli(["events", "--json", "--except", "RTC_*"], { timeoutMs: 40_000 }),
    ]);
    assert.equal(human.status, 0, human.stderr);
    const names = humanEvents(human.stdout);
    const rtc = names.filter((n) => n === "RTC_CHANGE").length;
    // 15 RTC changes in ~1.2 s: the first at once, then one a second (§2); timers may stretch.
    assert.ok(rtc >= 2 && rtc <= 4, `throttled RTC_CHANGE count: ${rtc}`);
    assert.deepEqual(
      names.filter((n) => n !== "RTC_CHANGE"),
      ["RESUME", "STOP", "RESUME", "GUEST_PANICKED", "STOP", "RESET", "RESUME", "SHUTDOWN"],
    );
    // The last RTC change is the one kept; run-state changes are shown after their events.
    assert.match(human.stdout, /RTC_CHANGE {2}offset=900 qom-path=/);
    assert.match(
      human.stdout,
      /GUEST_PANICKED {2}action=pause\n.*STOP\n.*state running → guest-panicked\n/,
    );
    assert.match(
      human.stdout,
      /RESET {2}guest=false reason=host-qmp-system-reset\n.*state guest-panicked → prelaunch\n/,
    );
    assert.match(
      human.stdout,
      /SHUTDOWN {2}guest=true reason=guest-shutdown\n.*disconnected \(QEMU exited after SHUTDOWN\)/,
    );
    assert.match(human.stdout, /-- started a simulated QEMU 7\.2\.22/);

    assert.equal(json.status, 0, json.stderr);
    const events = jsonLines(json.stdout);
    assert.deepEqual(
      events.map((e) => e.event),
      ["RESUME", "STOP", "RESUME", "GUEST_PANICKED", "STOP", "RESET", "RESUME", "SHUTDOWN"],
    );
    assert.ok(events.every((e) => e.vm === "demo"));
    assert.deepEqual(events.at(-1)!.data, { guest: true, reason: "guest-shutdown" });
    assert.match(JSON.stringify(events[0]!.timestamp), /^\{"seconds":\d+,"microseconds":\d+\}$/);
  });
});

suite("events: several VMs", () => {
  test("should watch every socket a glob matches, each line labelled, filtered by data", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-events-"));
    const vms = [new SimulatedMachine({ name: "vm1" }), new SimulatedMachine({ name: "vm2" })];
    try {
      await vms[0]!.listen(`unix:${join(dir, "vm1.qmp")}`);
      await vms[1]!.listen(`unix:${join(dir, "vm2.qmp")}`);
      const child = spawnCli([
        "events",
        join(dir, "*.qmp"),
        "--json",
        "--where",
        "guest=true",
        "--count",
        "3",
      ]);
      const result = collect(child, { timeoutMs: 20_000 });
      await waitForOutput(
        child,
        (s) => (s.match(/connected to QEMU/g) ?? []).length === 2,
        15_000,
        "stderr",
      );
      vms[0]!.guest.reset();
      vms[1]!.guest.rtcChange(10); // filtered out: no `guest` member
      vms[1]!.guest.reset();
      vms[0]!.guest.shutdown();
      const r = await result;
      assert.equal(r.status, 0, r.stderr);
      const events = jsonLines(r.stdout);
      assert.deepEqual(
        events.map((e) => [e.vm, e.event, (e.data as { reason?: string }).reason]).sort(),
        [
          ["vm1", "RESET", "guest-reset"],
          ["vm1", "SHUTDOWN", "guest-shutdown"],
          ["vm2", "RESET", "guest-reset"],
        ],
      );
    } finally {
      for (const vm of vms) await vm.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

suite("events: --follow", () => {
  test("should wait for a VM, reconnect when it restarts, and say so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-follow-"));
    const path = join(dir, "web.qmp");
    const child = spawnCli(["events", path, "--follow"]);
    const result = collect(child, { timeoutMs: 40_000 });
    let vm: SimulatedMachine | undefined;
    try {
      await waitForOutput(child, (s) => s.includes("waiting for"));
      vm = new SimulatedMachine();
      await vm.listen(`unix:${path}`);
      await waitForOutput(child, (s) => s.includes("connected to QEMU 7.2.22, running"));
      vm.guest.reset();
      await waitForOutput(child, (s) => /web +RESET {2}guest=true reason=guest-reset/.test(s));
      await vm.close();
      await waitForOutput(child, (s) => s.includes("connection lost; reconnecting"));
      vm = new SimulatedMachine({ startPaused: true });
      await vm.listen(`unix:${path}`);
      // After the reconnection the tracker asks query-status: the new VM is in prelaunch.
      await waitForOutput(child, (s) =>
        /reconnected to QEMU 7\.2\.22; events in between are lost\n(.*\n)*.*state running → prelaunch\n/.test(
          s,
        ),
      );
      vm.core.cont();
      await waitForOutput(child, (s) => /RESUME\n.*state prelaunch → running/.test(s));
      child.kill("SIGINT");
      const r = await result;
      assert.equal(r.status, 0, r.stderr);
    } finally {
      child.kill("SIGKILL");
      await vm?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

suite("events: --follow with a glob", () => {
  test("should pick up a VM whose socket appears after the start", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-follow-glob-"));
    const a = new SimulatedMachine();
    const b = new SimulatedMachine();
    const child = spawnCli(["events", join(dir, "vm-*.qmp"), "--follow", "--json"]);
    const result = collect(child, { timeoutMs: 40_000 });
    try {
      await a.listen(`unix:${join(dir, "vm-a.qmp")}`);
      await waitForOutput(child, (s) => s.includes("vm-a: connected"), 15_000, "stderr");
      await b.listen(`unix:${join(dir, "vm-b.qmp")}`);
      await waitForOutput(child, (s) => s.includes("vm-b: connected"), 15_000, "stderr");
      b.guest.reset();
      await waitForOutput(child, (s) => s.includes('"vm":"vm-b","event":"RESET"'));
      child.kill("SIGINT");
      const r = await result;
      assert.equal(r.status, 0, r.stderr);
    } finally {
      child.kill("SIGKILL");
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

suite("events: real QEMU", () => {
  test("should show a real QEMU's events and run-state changes", realQemuTest(), async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-events-qemu-"));
    const second = join(dir, "second.qmp");
    const qemu = await startQemu({ args: ["-qmp", `unix:${second},server=on,wait=off`] });
    try {
      const child = spawnCli(["events", qemu.socketPath, "--count", "2"]);
      const result = collect(child, { timeoutMs: 20_000 });
      await waitForOutput(child, (s) => s.includes("connected to QEMU 7.2"));
      assert.equal((await runCli(["exec", second, "cont"])).status, 0);
      assert.equal((await runCli(["exec", second, "stop"])).status, 0);
      const r = await result;
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(humanEvents(r.stdout), ["RESUME", "STOP"]);
      assert.match(r.stdout, /RESUME\n.*state prelaunch → running\n/);
    } finally {
      await qemu.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
