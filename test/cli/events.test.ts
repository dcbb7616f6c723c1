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
    const lines = jsonLines(json.stdout);
    const events = lines.filter((e) => "event" in e);
    assert.deepEqual(
      events.map((e) => e.event),
      ["RESUME", "STOP", "RESUME", "GUEST_PANICKED", "STOP", "RESET", "RESUME", "SHUTDOWN"],
    );
    assert.ok(events.every((e) => e.vm === "demo"));
    assert.deepEqual(events.at(-1)!.data, { guest: true, reason: "guest-shutdown" });
    assert.match(JSON.stringify(events[0]!.timestamp), /^\{"seconds":\d+,"microseconds":\d+\}$/);
    // The rest of the stream: what the human output shows, as objects that no one can take for
    // a QMP event (no "event" member), each with "vm" and "timestamp".
    const kinds = lines.map((l) =>
      "event" in l ? l.event : "run-state" in l ? "state" : `watch:${String(l.watch)}`,
    );
    assert.deepEqual(kinds.slice(0, 2), ["watch:started", "watch:connected"]);
    assert.equal(kinds.at(-1), "watch:disconnected");
    assert.ok(lines.every((l) => l.vm === "demo" && typeof l.timestamp === "object"));
    assert.deepEqual(lines[1], {
      vm: "demo",
      watch: "connected",
      address: lines[0]!.address,
      qemu: "7.2.22",
      state: "prelaunch",
      timestamp: lines[1]!.timestamp,
    });
    assert.deepEqual(lines.at(-1), {
      vm: "demo",
      watch: "disconnected",
      reason: "QEMU exited after SHUTDOWN",
      reconnecting: false,
      timestamp: lines.at(-1)!.timestamp,
    });
    // Each run-state change follows the event that caused it and carries that event's timestamp.
    type Change = { from: string; to: string; cause: string };
    const changes = lines.flatMap((l, i) =>
      "run-state" in l ? [{ ...(l["run-state"] as Change), after: lines[i - 1]!.event }] : [],
    );
    assert.deepEqual(
      changes.map((c) => [c.from, c.to, c.cause, c.after]),
      [
        ["prelaunch", "running", "RESUME", "RESUME"],
        ["running", "paused", "STOP", "STOP"],
        ["paused", "running", "RESUME", "RESUME"],
        ["running", "guest-panicked", "STOP", "STOP"],
        ["guest-panicked", "prelaunch", "RESET", "RESET"],
        ["prelaunch", "running", "RESUME", "RESUME"],
      ],
    );
    for (const [i, l] of lines.entries())
      if ("run-state" in l) assert.deepEqual(l.timestamp, lines[i - 1]!.timestamp);
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
      await waitForOutput(child, (s) => (s.match(/"watch":"connected"/g) ?? []).length === 2);
      vms[0]!.guest.reset();
      vms[1]!.guest.rtcChange(10); // filtered out: no `guest` member
      vms[1]!.guest.reset();
      vms[0]!.guest.shutdown();
      const r = await result;
      assert.equal(r.status, 0, r.stderr);
      const events = jsonLines(r.stdout).filter((e) => "event" in e);
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

suite("events: --no-state", () => {
  test("should leave run-state objects out of the JSON stream, and only those", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-events-nostate-"));
    const vm = new SimulatedMachine();
    try {
      await vm.listen(`unix:${join(dir, "vm.qmp")}`);
      const child = spawnCli(["events", join(dir, "vm.qmp"), "--json", "--no-state", "-n", "2"]);
      const result = collect(child, { timeoutMs: 20_000 });
      await waitForOutput(child, (s) => s.includes('"watch":"connected"'));
      vm.core.stop();
      vm.core.cont();
      const r = await result;
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(
        jsonLines(r.stdout).map((l) => l.event ?? l.watch),
        ["connected", "STOP", "RESUME"],
      );
    } finally {
      await vm.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

suite("events: --follow", () => {
  test("should wait for a VM, reconnect when it restarts, and say so, in both outputs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-follow-"));
    const path = join(dir, "web.qmp");
    const child = spawnCli(["events", path, "--follow"]);
    const json = spawnCli(["events", path, "--follow", "--json"]);
    const result = collect(child, { timeoutMs: 40_000 });
    const jsonResult = collect(json, { timeoutMs: 40_000 });
    /**
     * Runs `action`, then waits for both outputs, each for its own form of the same news. The
     * waits start before the action, so that news that comes at once is not missed.
     */
    const step = async (
      action: () => unknown,
      h: (s: string) => boolean,
      j: (s: string) => boolean,
    ) => {
      const news = Promise.all([waitForOutput(child, h), waitForOutput(json, j)]);
      await action();
      await news;
    };
    let vm: SimulatedMachine | undefined;
    try {
      await step(
        () => {},
        (s) => s.includes("waiting for"),
        (s) => s.includes('{"vm":"web","watch":"waiting"'),
      );
      await step(
        () => {
          // Two watchers at once: a QEMU socket serves one client, this VM two.
          vm = new SimulatedMachine({ maxClients: 2 });
          return vm.listen(`unix:${path}`);
        },
        (s) => s.includes("connected to QEMU 7.2.22, running"),
        (s) => /"watch":"connected".*"qemu":"7\.2\.22","state":"running"/.test(s),
      );
      await step(
        () => vm!.guest.reset(),
        (s) => /web +RESET {2}guest=true reason=guest-reset/.test(s),
        (s) => s.includes('"event":"RESET"'),
      );
      await step(
        () => vm!.close(),
        (s) => s.includes("connection lost; reconnecting"),
        (s) => /"watch":"disconnected".*"reconnecting":true/.test(s),
      );
      // After the reconnection the tracker asks query-status: the new VM is in prelaunch.
      await step(
        () => {
          vm = new SimulatedMachine({ startPaused: true, maxClients: 2 });
          return vm.listen(`unix:${path}`);
        },
        (s) =>
          /reconnected to QEMU 7\.2\.22 after [\d.]+ m?s, a new QEMU process; events in between are lost\n(.*\n)*.*state running → prelaunch\n/.test(
            s,
          ),
        (s) =>
          /"watch":"reconnected".*"restarted":true.*\n(.*\n)*.*"run-state":\{"from":"running","to":"prelaunch","cause":"query-status"\}/.test(
            s,
          ),
      );
      await step(
        () => vm!.core.cont(),
        (s) => /RESUME\n.*state prelaunch → running/.test(s),
        (s) => /"event":"RESUME".*\n.*"run-state":\{"from":"prelaunch","to":"running"/.test(s),
      );
      child.kill("SIGINT");
      json.kill("SIGINT");
      const r = await result;
      assert.equal(r.status, 0, r.stderr);
      const j = await jsonResult;
      assert.equal(j.status, 0, j.stderr);
      assert.equal(j.stderr, "");
      const lines = jsonLines(j.stdout);
      assert.deepEqual(
        lines.map((l) => l.event ?? (l.watch ? `watch:${l.watch}` : "state")),
        [
          "watch:waiting",
          "watch:connected",
          "RESET",
          "watch:disconnected",
          "watch:reconnected",
          "state",
          "RESUME",
          "state",
        ],
      );
      // The gap: from the loss to the new negotiation, in QMP's timestamp form.
      const { gap } = lines[4] as { gap: Record<"since" | "until", Record<string, number>> };
      const ms = (t: Record<string, number>) => t.seconds! * 1000 + t.microseconds! / 1000;
      assert.ok(ms(gap.since) <= ms(gap.until), JSON.stringify(gap));
      assert.ok(ms(gap.since) >= ms(lines[2]!.timestamp as Record<string, number>));
    } finally {
      child.kill("SIGKILL");
      json.kill("SIGKILL");
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
      await waitForOutput(child, (s) => s.includes('{"vm":"vm-a","watch":"connected"'));
      await b.listen(`unix:${join(dir, "vm-b.qmp")}`);
      await waitForOutput(child, (s) => s.includes('{"vm":"vm-b","watch":"connected"'));
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

suite("events: real QEMU, --json", () => {
  test(
    "should stream a real QEMU's events, their run-state changes and the watch, filtered",
    realQemuTest(),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-events-qemu-json-"));
      const second = join(dir, "second.qmp");
      const qemu = await startQemu({ args: ["-qmp", `unix:${second},server=on,wait=off`] });
      try {
        // --only STOP: RESUME is filtered out, and so is the run-state change it caused.
        const child = spawnCli(["events", qemu.socketPath, "--json", "--only", "STOP", "-n", "2"]);
        const result = collect(child, { timeoutMs: 20_000 });
        await waitForOutput(child, (s) => s.includes('"watch":"connected"'));
        for (const command of ["cont", "stop", "cont", "stop"])
          assert.equal((await runCli(["exec", second, command])).status, 0);
        const r = await result;
        assert.equal(r.status, 0, r.stderr);
        const lines = jsonLines(r.stdout);
        const { timestamp: _t, address, ...connected } = lines[0]!;
        assert.equal(address, `unix:${qemu.socketPath}`);
        assert.deepEqual(connected, {
          vm: "qmp",
          watch: "connected",
          qemu: "7.2.22",
          state: "prelaunch",
        });
        // With --count, the last event's run-state change is still printed before the exit.
        assert.deepEqual(
          lines.slice(1).map((l) => l.event ?? l["run-state"]),
          [
            "STOP",
            { from: "running", to: "paused", cause: "STOP" },
            "STOP",
            { from: "running", to: "paused", cause: "STOP" },
          ],
        );
        assert.deepEqual(lines[2]!.timestamp, lines[1]!.timestamp);
      } finally {
        await qemu.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
