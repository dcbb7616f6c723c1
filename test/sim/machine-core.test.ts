/**
 * Every sequence of qemu-behaviour §4.3 and §5 on the pure machine core: events in order, the final
 * run state, and the process end with its status.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { QmpReplyError } from "../../src/server/index.js";
import { isStateError } from "../../src/base/errors.js";
import type { JsonObject } from "../../src/base/json.js";
import type { RunStateActions } from "../../src/sim/actions.js";
import { MachineCore, type MachineCoreOptions } from "../../src/sim/machine-core.js";
import { qemuProfile } from "../../src/sim/versions.js";

interface Rig {
  core: MachineCore;
  /** Events as `NAME` or `NAME {json}`, and `exit N`, `stderr …`, in order. */
  log: string[];
}

function rig(options: MachineCoreOptions & { version?: string } = {}): Rig {
  const log: string[] = [];
  const core = new MachineCore(
    qemuProfile(options.version ?? "7.2.22"),
    {
      emit: (name: string, data?: JsonObject) =>
        log.push(data === undefined ? name : `${name} ${JSON.stringify(data)}`),
      exit: (status: number) => log.push(`exit ${status}`),
      stderr: (text: string) => log.push(`stderr ${text}`),
    },
    options,
  );
  log.length = 0; // the start-up RESUME reaches nobody
  return { core, log };
}

const running = (
  actions: Partial<RunStateActions> = {},
  extra: MachineCoreOptions & { version?: string } = {},
) => rig({ actions, ...extra });

suite("machine start", () => {
  test("should start running without -S, in prelaunch with -S, in inmigrate with -incoming", () => {
    assert.equal(rig().core.state, "running");
    assert.equal(rig({ startPaused: true }).core.state, "prelaunch");
    assert.equal(rig({ incoming: true }).core.state, "inmigrate");
  });
});

suite("guest sequences (§4.3)", () => {
  const rows: Array<{
    name: string;
    actions?: Partial<RunStateActions>;
    machine?: "pc" | "none";
    act: (c: MachineCore) => void;
    events: string[];
    state?: string;
  }> = [
    {
      name: "ACPI S5 with shutdown=poweroff",
      act: (c) => c.guestShutdown(),
      events: ['SHUTDOWN {"guest":true,"reason":"guest-shutdown"}', "exit 0"],
    },
    {
      name: "ACPI S5 with shutdown=pause",
      actions: { shutdown: "pause" },
      act: (c) => c.guestShutdown(),
      events: ['SHUTDOWN {"guest":true,"reason":"guest-shutdown"}', "STOP"],
      state: "shutdown",
    },
    {
      name: "S4",
      act: (c) => c.guestHibernate(),
      events: ["SUSPEND_DISK", 'SHUTDOWN {"guest":true,"reason":"guest-shutdown"}', "exit 0"],
    },
    {
      name: "guest reset with reboot=reset",
      act: (c) => c.guestReset(),
      events: ['RESET {"guest":true,"reason":"guest-reset"}'],
      state: "running",
    },
    {
      name: "guest reset with reboot=shutdown",
      actions: { reboot: "shutdown" },
      act: (c) => c.guestReset(),
      events: ['SHUTDOWN {"guest":true,"reason":"guest-reset"}', "exit 0"],
    },
    {
      name: "guest reset with reboot=shutdown, shutdown=pause",
      actions: { reboot: "shutdown", shutdown: "pause" },
      act: (c) => c.guestReset(),
      events: ['SHUTDOWN {"guest":true,"reason":"guest-reset"}', "STOP"],
      state: "shutdown",
    },
    {
      name: "panic=pause",
      actions: { panic: "pause" },
      act: (c) => c.guestPanic(),
      events: ['GUEST_PANICKED {"action":"pause"}', "STOP"],
      state: "guest-panicked",
    },
    {
      name: "panic=shutdown with shutdown=pause (treated as pause)",
      actions: { shutdown: "pause" },
      act: (c) => c.guestPanic(),
      events: ['GUEST_PANICKED {"action":"pause"}', "STOP"],
      state: "guest-panicked",
    },
    {
      name: "panic=shutdown (default): exits before any STOP",
      act: (c) => c.guestPanic(),
      events: [
        'GUEST_PANICKED {"action":"poweroff"}',
        'SHUTDOWN {"guest":true,"reason":"guest-panic"}',
        "exit 0",
      ],
    },
    {
      name: "panic=exit-failure",
      actions: { panic: "exit-failure" },
      act: (c) => c.guestPanic(),
      events: [
        'GUEST_PANICKED {"action":"poweroff"}',
        'SHUTDOWN {"guest":true,"reason":"guest-panic"}',
        "exit 1",
      ],
    },
    {
      name: "panic=exit-failure with shutdown=pause",
      actions: { panic: "exit-failure", shutdown: "pause" },
      act: (c) => c.guestPanic(),
      events: [
        'GUEST_PANICKED {"action":"poweroff"}',
        'SHUTDOWN {"guest":true,"reason":"guest-panic"}',
        "STOP",
      ],
      state: "shutdown",
    },
    {
      name: "panic=none",
      actions: { panic: "none" },
      act: (c) => c.guestPanic(),
      events: ['GUEST_PANICKED {"action":"run"}'],
      state: "running",
    },
    {
      name: "crash-loaded",
      act: (c) => c.guestCrashLoaded(),
      events: ['GUEST_CRASHLOADED {"action":"run"}'],
      state: "running",
    },
    {
      name: "ACPI S3",
      machine: "pc",
      act: (c) => c.guestSuspend(),
      events: ["SUSPEND"],
      state: "suspended",
    },
    {
      name: "watchdog=reset",
      act: (c) => c.watchdogExpire(),
      events: ['WATCHDOG {"action":"reset"}', 'RESET {"guest":true,"reason":"guest-reset"}'],
      state: "running",
    },
    {
      name: "watchdog=reset with reboot=shutdown",
      actions: { reboot: "shutdown" },
      act: (c) => c.watchdogExpire(),
      events: [
        'WATCHDOG {"action":"reset"}',
        'SHUTDOWN {"guest":true,"reason":"guest-reset"}',
        "exit 0",
      ],
    },
    {
      name: "watchdog=shutdown gives POWERDOWN",
      actions: { watchdog: "shutdown" },
      act: (c) => c.watchdogExpire(),
      events: ['WATCHDOG {"action":"shutdown"}', "POWERDOWN"],
      state: "running",
    },
    {
      name: "watchdog=poweroff exits with no SHUTDOWN",
      actions: { watchdog: "poweroff" },
      act: (c) => c.watchdogExpire(),
      events: ['WATCHDOG {"action":"poweroff"}', "exit 0"],
    },
    {
      name: "watchdog=pause",
      actions: { watchdog: "pause" },
      act: (c) => c.watchdogExpire(),
      events: ['WATCHDOG {"action":"pause"}', "STOP"],
      state: "watchdog",
    },
    {
      name: "watchdog=debug writes to stderr and stays running",
      actions: { watchdog: "debug" },
      act: (c) => c.watchdogExpire(),
      events: ['WATCHDOG {"action":"debug"}', "stderr watchdog: timer fired\n"],
      state: "running",
    },
    {
      name: "watchdog=none",
      actions: { watchdog: "none" },
      act: (c) => c.watchdogExpire(),
      events: ['WATCHDOG {"action":"none"}'],
      state: "running",
    },
    {
      name: "watchdog=inject-nmi",
      actions: { watchdog: "inject-nmi" },
      act: (c) => c.watchdogExpire(),
      events: ['WATCHDOG {"action":"inject-nmi"}'],
      state: "running",
    },
    {
      name: "host signal, even with shutdown=pause",
      actions: { shutdown: "pause" },
      act: (c) => c.hostSignal(),
      events: [
        "stderr qemu-system-x86_64: terminating on signal 15\n",
        'SHUTDOWN {"guest":false,"reason":"host-signal"}',
        "exit 0",
      ],
    },
  ];
  for (const row of rows) {
    test(`should follow §4.3: ${row.name}`, () => {
      const { core, log } = running(row.actions, { machine: row.machine });
      row.act(core);
      assert.deepEqual(log, row.events);
      if (row.state !== undefined) {
        assert.equal(core.state, row.state);
        assert.equal(core.hasExited, false);
      } else {
        assert.equal(core.hasExited, true);
        // qemu_cleanup stopped the VM without a STOP event; watchdog poweroff's exit(0) skips it
        assert.equal(core.state, row.name.startsWith("watchdog=poweroff") ? "running" : "shutdown");
      }
    });
  }

  test("should emit GUEST_PVSHUTDOWN then SHUTDOWN from 9.1 and refuse it before", () => {
    const { core, log } = running({}, { version: "10.2" });
    core.guestPvShutdown();
    assert.deepEqual(log, [
      "GUEST_PVSHUTDOWN",
      'SHUTDOWN {"guest":true,"reason":"guest-shutdown"}',
      "exit 0",
    ]);
    assert.throws(() => running().core.guestPvShutdown(), /GUEST_PVSHUTDOWN needs QEMU 9.1/);
  });

  test("should carry panic info in GUEST_PANICKED when given", () => {
    const { core, log } = running({ panic: "none" });
    core.guestPanic({ type: "hyper-v", arg1: 1, arg2: 2, arg3: 3, arg4: 4, arg5: 5 });
    assert.deepEqual(log, [
      'GUEST_PANICKED {"action":"run","info":{"type":"hyper-v","arg1":1,"arg2":2,"arg3":3,"arg4":4,"arg5":5}}',
    ]);
  });

  test("should refuse every guest trigger when the vCPUs are not running", () => {
    const { core, log } = rig({ startPaused: true, machine: "pc" });
    for (const act of [
      () => core.guestShutdown(),
      () => core.guestHibernate(),
      () => core.guestReset(),
      () => core.guestSuspend(),
      () => core.guestPanic(),
      () => core.guestCrashLoaded(),
      () => core.watchdogExpire(),
    ]) {
      assert.throws(
        act,
        (e: unknown) =>
          isStateError(e) &&
          /vCPUs are not running \(run state 'prelaunch'\)/.test((e as Error).message),
      );
    }
    assert.deepEqual(log, []);
  });

  test("should refuse guest suspend on machine none (no ACPI)", () => {
    assert.throws(() => running().core.guestSuspend(), /machine 'none' has no ACPI/);
  });

  test("should refuse anything after the process has exited", () => {
    const { core } = running();
    core.guestShutdown();
    assert.throws(() => core.guestReset(), /has exited with status 0/);
  });
});

suite("pre-4.0 profile (2.9.0)", () => {
  test("should send SHUTDOWN and RESET without data", () => {
    const { core, log } = running({ shutdown: "pause" }, { version: "2.9.0" });
    core.guestReset();
    core.guestShutdown();
    assert.deepEqual(log, ["RESET", "SHUTDOWN", "STOP"]);
  });
  test("should panic the old way: pause, then poweroff and shut down", () => {
    const { core, log } = running({}, { version: "2.9.0" });
    core.guestPanic();
    assert.deepEqual(log, [
      'GUEST_PANICKED {"action":"pause"}',
      'GUEST_PANICKED {"action":"poweroff"}',
      "SHUTDOWN",
      "exit 0",
    ]);
  });
  test("should only pause on panic with -no-shutdown", () => {
    const { core, log } = running({ shutdown: "pause" }, { version: "2.9.0" });
    core.guestPanic();
    assert.deepEqual(log, ['GUEST_PANICKED {"action":"pause"}', "STOP"]);
    assert.equal(core.state, "guest-panicked");
  });
});

suite("actions per version", () => {
  test("should refuse panic actions before 6.0 and exit-failure before 7.1", () => {
    assert.throws(
      () => rig({ version: "2.9.0", actions: { panic: "pause" } }),
      /a panic action needs QEMU 6\.0/,
    );
    assert.doesNotThrow(() =>
      rig({
        version: "2.9.0",
        actions: { shutdown: "pause", reboot: "shutdown", watchdog: "pause" },
      }),
    );
    assert.doesNotThrow(() => rig({ version: "7.2.0", actions: { panic: "exit-failure" } }));
  });
});

suite("run-control commands (§5)", () => {
  test("should stop a running VM with STOP and be a no-op elsewhere", () => {
    const { core, log } = running();
    core.stop();
    assert.deepEqual(log, ["STOP"]);
    assert.equal(core.state, "paused");
    core.stop();
    assert.deepEqual(log, ["STOP"]);
    const pre = rig({ startPaused: true });
    pre.core.stop();
    assert.deepEqual(pre.log, []);
    assert.equal(pre.core.state, "prelaunch");
  });

  test("should cont with RESUME, and nothing when already running", () => {
    const { core, log } = rig({ startPaused: true });
    core.cont();
    core.cont();
    assert.deepEqual(log, ["RESUME"]);
    assert.equal(core.state, "running");
  });

  test("should refuse cont in shutdown and internal-error until a reset", () => {
    const { core, log } = running({ shutdown: "pause" });
    core.guestShutdown();
    assert.throws(
      () => core.cont(),
      (e: unknown) =>
        e instanceof QmpReplyError && e.desc === "Resetting the Virtual Machine is required",
    );
    core.systemReset();
    core.runMainLoop();
    assert.equal(core.state, "prelaunch");
    core.cont();
    assert.deepEqual(log.slice(-2), [
      'RESET {"guest":false,"reason":"host-qmp-system-reset"}',
      "RESUME",
    ]);
    assert.equal(core.state, "running");
  });

  test("should refuse stop and cont while a dump runs", () => {
    const { core } = running();
    core.dumpInProgress = true;
    for (const f of [() => core.stop(), () => core.cont()]) {
      assert.throws(
        f,
        (e: unknown) =>
          e instanceof QmpReplyError && e.desc === "There is a dump in process, please wait.",
      );
    }
  });

  test("should set autostart in inmigrate instead of changing state", () => {
    const { core, log } = rig({ incoming: true, startPaused: true });
    assert.equal(core.autostart, false);
    core.cont();
    assert.equal(core.autostart, true);
    core.stop();
    assert.equal(core.autostart, false);
    assert.equal(core.state, "inmigrate");
    assert.deepEqual(log, []);
  });

  test("should reset into prelaunch from every stopped state and stay in running and inmigrate", () => {
    for (const [setup, want] of [
      [(c: MachineCore) => c.stop(), "prelaunch"],
      [(c: MachineCore) => c.guestPanic(), "prelaunch"],
      [(c: MachineCore) => c.watchdogExpire(), "prelaunch"],
      [(_c: MachineCore) => {}, "running"],
    ] as const) {
      const { core, log } = running({ panic: "pause", watchdog: "pause" });
      setup(core);
      log.length = 0;
      core.systemReset();
      core.runMainLoop();
      assert.deepEqual(log, ['RESET {"guest":false,"reason":"host-qmp-system-reset"}']);
      assert.equal(core.state, want);
    }
    const mig = rig({ incoming: true });
    mig.core.systemReset();
    mig.core.runMainLoop();
    assert.equal(mig.core.state, "inmigrate");
  });

  test("should turn system_reset into a shutdown with reboot=shutdown", () => {
    const a = running({ reboot: "shutdown" });
    a.core.systemReset();
    a.core.runMainLoop();
    assert.deepEqual(a.log, [
      'SHUTDOWN {"guest":false,"reason":"host-qmp-system-reset"}',
      "exit 0",
    ]);
    const b = running({ reboot: "shutdown", shutdown: "pause" });
    b.core.systemReset();
    b.core.runMainLoop();
    assert.deepEqual(b.log, ['SHUTDOWN {"guest":false,"reason":"host-qmp-system-reset"}', "STOP"]);
    assert.equal(b.core.state, "shutdown");
  });

  test("should send POWERDOWN in any state without changing it", () => {
    const { core, log } = rig({ startPaused: true });
    core.systemPowerdown();
    core.runMainLoop();
    assert.deepEqual(log, ["POWERDOWN"]);
    assert.equal(core.state, "prelaunch");
  });

  test("should wake a suspended pc guest: running at once, WAKEUP from the loop, no RESUME", () => {
    const { core, log } = running({}, { machine: "pc" });
    core.guestSuspend();
    core.systemWakeup();
    assert.equal(core.state, "running");
    core.runMainLoop();
    assert.deepEqual(log, ["SUSPEND", "WAKEUP"]);
  });

  test("should refuse system_wakeup on machine none and when not suspended", () => {
    assert.throws(
      () => running().core.systemWakeup(),
      (e: unknown) =>
        e instanceof QmpReplyError &&
        e.desc === "wake-up from suspend is not supported by this guest",
    );
    assert.throws(
      () => running({}, { machine: "pc" }).core.systemWakeup(),
      (e: unknown) =>
        e instanceof QmpReplyError &&
        e.desc === "Unable to wake up: guest is not in suspended state",
    );
  });

  test("should keep 7.2's suspended quirks: stop and cont do nothing, reset gives prelaunch", () => {
    const { core, log } = running({}, { machine: "pc" });
    core.guestSuspend();
    core.stop();
    core.cont();
    assert.equal(core.state, "suspended");
    core.systemReset();
    core.runMainLoop();
    assert.deepEqual(log, ["SUSPEND", 'RESET {"guest":false,"reason":"host-qmp-system-reset"}']);
    assert.equal(core.state, "prelaunch");
  });

  test("should stop from suspended in 9.0+ and cont back into suspended", () => {
    const { core, log } = running({}, { machine: "pc", version: "10.2" });
    core.guestSuspend();
    core.stop();
    assert.equal(core.state, "paused");
    assert.throws(() => core.systemWakeup(), /not in suspended state/);
    core.cont();
    assert.equal(core.state, "suspended");
    assert.deepEqual(log, ["SUSPEND", "STOP", "RESUME"]);
  });

  test("should quit with SHUTDOWN host-qmp-quit even with shutdown=pause", () => {
    const { core, log } = running({ shutdown: "pause" });
    core.quit();
    core.runMainLoop();
    assert.deepEqual(log, ['SHUTDOWN {"guest":false,"reason":"host-qmp-quit"}', "exit 0"]);
    assert.equal(core.actions.shutdown, "poweroff");
  });

  test("should apply set-action with shutdown last", () => {
    const { core } = running();
    core.setAction({ shutdown: "pause", reboot: "shutdown", panic: "none", watchdog: "debug" });
    assert.deepEqual(core.actions, {
      reboot: "shutdown",
      shutdown: "pause",
      panic: "none",
      watchdog: "debug",
    });
  });

  test("should report query-status with singlestep up to 8.2 and without from 9.0", () => {
    // schema order, which decides the printed order of keys sharing a QDict bucket
    assert.deepEqual(Object.entries(rig({ startPaused: true }).core.queryStatus()), [
      ["running", false],
      ["singlestep", false],
      ["status", "prelaunch"],
    ]);
    assert.deepEqual(rig({ version: "10.2" }).core.queryStatus(), {
      status: "running",
      running: true,
    });
  });

  test("should emit STOP then RESUME on cont when a stop is pending while running", () => {
    const { core, log } = running();
    core.requestVmStop("io-error");
    core.cont();
    assert.deepEqual(log, ["STOP", "RESUME"]);
    assert.equal(core.state, "running");
  });

  test("should handle requests in main_loop_should_exit order", () => {
    const { core, log } = running({}, { machine: "pc" });
    core.requestPowerdown();
    core.requestReset("guest-reset");
    core.requestSuspend();
    core.requestVmStop("paused");
    core.runMainLoop();
    // suspend (2), reset (4) → prelaunch since suspended, powerdown (6), vm stop (7) no-op
    assert.deepEqual(log, ["SUSPEND", 'RESET {"guest":true,"reason":"guest-reset"}', "POWERDOWN"]);
    assert.equal(core.state, "prelaunch");
  });

  test("should enter debug on a debug request", () => {
    const { core, log } = running();
    core.requestDebug();
    core.runMainLoop();
    assert.deepEqual(log, ["STOP"]);
    assert.equal(core.state, "debug");
  });
});
