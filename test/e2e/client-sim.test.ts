/**
 * The run-state tracker against the simulated QEMU: for each guest-triggered sequence of §4.3
 * (panics, watchdogs, shutdowns and resets under each action setting), the state the client
 * tracks from the events it sees must end equal to the machine's own state. Real QEMU with
 * `-machine none` cannot run a guest, so the simulator supplies these sequences.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { QmpClient, type RunState } from "../../src/client/index.js";
import type { SimulatedMachineOptions } from "../../src/sim/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { createMemoryPair } from "../../src/wire/index.js";

interface Scenario {
  readonly name: string;
  readonly options: SimulatedMachineOptions;
  /** What happens to the running machine. */
  readonly act: (vm: SimulatedMachine, client: QmpClient) => unknown;
  readonly expected: RunState;
}

const scenarios: Scenario[] = [
  {
    name: "guest power-off with shutdown=pause",
    options: { actions: { shutdown: "pause" } },
    act: (vm) => vm.guest.shutdown(),
    expected: "shutdown",
  },
  {
    name: "guest reset with reboot=reset",
    options: {},
    act: (vm) => vm.guest.reset(),
    expected: "running",
  },
  {
    name: "guest reset with reboot=shutdown, shutdown=pause",
    options: { actions: { reboot: "shutdown", shutdown: "pause" } },
    act: (vm) => vm.guest.reset(),
    expected: "shutdown",
  },
  {
    name: "panic with panic=pause",
    options: { actions: { panic: "pause" } },
    act: (vm) => vm.guest.panic(),
    expected: "guest-panicked",
  },
  {
    name: "panic with panic=shutdown and shutdown=pause (treated as pause)",
    options: { actions: { panic: "shutdown", shutdown: "pause" } },
    act: (vm) => vm.guest.panic(),
    expected: "guest-panicked",
  },
  {
    name: "panic with panic=exit-failure and shutdown=pause",
    options: { actions: { panic: "exit-failure", shutdown: "pause" } },
    act: (vm) => vm.guest.panic(),
    expected: "shutdown",
  },
  {
    name: "panic with panic=none",
    options: { actions: { panic: "none" } },
    act: (vm) => vm.guest.panic(),
    expected: "running",
  },
  {
    name: "watchdog with watchdog=pause",
    options: { actions: { watchdog: "pause" } },
    act: (vm) => vm.guest.watchdogExpire(),
    expected: "watchdog",
  },
  {
    name: "watchdog with watchdog=reset",
    options: { actions: { watchdog: "reset" } },
    act: (vm) => vm.guest.watchdogExpire(),
    expected: "running",
  },
  {
    name: "watchdog with watchdog=debug (does not enter debug)",
    options: { actions: { watchdog: "debug" } },
    act: (vm) => vm.guest.watchdogExpire(),
    expected: "running",
  },
  {
    name: "ACPI S3 suspend, then system_wakeup",
    options: { machine: "pc" },
    act: async (vm, client) => {
      vm.guest.suspend();
      await client.waitForRunState("suspended", { timeoutMs: 2_000 });
      await client.executeAndWait("system_wakeup", undefined, {
        event: "WAKEUP",
        timeoutMs: 2_000,
      });
    },
    expected: "running",
  },
  {
    name: "system_reset from guest-panicked",
    options: { actions: { panic: "pause" } },
    act: async (vm, client) => {
      vm.guest.panic();
      await client.waitForRunState("guest-panicked", { timeoutMs: 2_000 });
      await client.executeAndWait("system_reset", undefined, { event: "RESET", timeoutMs: 2_000 });
    },
    expected: "prelaunch",
  },
];

async function settled(vm: SimulatedMachine): Promise<RunState> {
  // The machine acts on main-loop requests a little later: wait until its state holds still.
  let last = vm.state;
  for (let quiet = 0; quiet < 5; ) {
    await new Promise((r) => setTimeout(r, 10));
    if (vm.state === last) quiet++;
    else {
      last = vm.state;
      quiet = 0;
    }
  }
  return last as RunState;
}

suite("run-state tracking against the simulated QEMU 7.2.22", () => {
  for (const scenario of scenarios) {
    test(`should end in the machine's state after ${scenario.name}`, async () => {
      const vm = new SimulatedMachine({ qemuVersion: "7.2.22", ...scenario.options });
      const [near, far] = createMemoryPair();
      vm.accept(far);
      const client = await QmpClient.connect(near, { timeoutMs: 5_000 });
      try {
        assert.equal(client.runState, "running");
        await scenario.act(vm, client);
        const truth = await settled(vm);
        assert.equal(truth, scenario.expected, "the simulator's own state");
        assert.equal(await client.waitForRunState(truth, { timeoutMs: 2_000 }), truth);
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(client.runState, truth, "and it stays there");
      } finally {
        await client.close();
        await vm.close();
      }
    });
  }
});
