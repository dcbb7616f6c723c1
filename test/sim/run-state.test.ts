/**
 * The run-state table, row by row, against qemu-behaviour §3.2 (written here independently, as the
 * reference prints it), and `runstate_set` semantics.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import {
  isLive,
  isRunning,
  isTransitionAllowed,
  needsReset,
  RUN_STATES,
  type RunState,
  RunStateMachine,
  RunStateTransitionError,
  runStateTransitions,
} from "../../src/sim/run-state.js";

const v72 = { major: 7, minor: 2, micro: 22 };
const v81 = { major: 8, minor: 1, micro: 0 };
const v90 = { major: 9, minor: 0, micro: 0 };
const v100 = { major: 10, minor: 0, micro: 2 };
const v102 = { major: 10, minor: 2, micro: 0 };

/** §3.2, column v7.2.0: "from: to, to, …". */
const rows72 = `
debug: running, finish-migrate, prelaunch, suspended
inmigrate: internal-error, io-error, paused, running, shutdown, suspended, watchdog, guest-panicked, finish-migrate, prelaunch, postmigrate, colo
internal-error: paused, finish-migrate, prelaunch
io-error: running, finish-migrate, prelaunch
paused: running, finish-migrate, postmigrate, prelaunch, colo
postmigrate: running, finish-migrate, prelaunch
prelaunch: inmigrate, running, finish-migrate
finish-migrate: running, paused, postmigrate, prelaunch, colo
restore-vm: running, prelaunch
colo: running, prelaunch, shutdown
running: debug, internal-error, io-error, paused, finish-migrate, restore-vm, save-vm, shutdown, watchdog, guest-panicked, colo, suspended
save-vm: running
shutdown: paused, finish-migrate, prelaunch, colo
suspended: running, finish-migrate, prelaunch, colo
watchdog: running, finish-migrate, prelaunch, colo
guest-panicked: running, finish-migrate, prelaunch`;
const rows81 =
  "finish-migrate: internal-error, io-error, shutdown, suspended, watchdog, guest-panicked";
const rows90 = `
paused: suspended
prelaunch: suspended
restore-vm: suspended
save-vm: suspended
suspended: paused, save-vm, restore-vm, shutdown`;

function pairs(text: string): Array<[RunState, RunState]> {
  return text
    .trim()
    .split("\n")
    .flatMap((line) => {
      const [from, tos] = line.split(": ") as [RunState, string];
      return tos.split(", ").map((to) => [from, to as RunState] as [RunState, RunState]);
    });
}

function expected(version: "7.2" | "8.1" | "9.0"): Set<string> {
  const list = [...pairs(rows72)];
  if (version !== "7.2") list.push(...pairs(rows81));
  if (version === "9.0") list.push(...pairs(rows90));
  return new Set(list.map(([a, b]) => `${a}>${b}`));
}

suite("run-state table", () => {
  test("should have 71 pairs in 7.2, 77 in 8.1 and 85 in 9.0, 10.0 and 10.2", () => {
    assert.equal(runStateTransitions(v72).length, 71);
    assert.equal(runStateTransitions(v81).length, 77);
    assert.equal(runStateTransitions(v90).length, 85);
    assert.equal(runStateTransitions(v100).length, 85);
    assert.equal(runStateTransitions(v102).length, 85);
    assert.equal(runStateTransitions({ major: 8, minor: 0, micro: 5 }).length, 71);
  });

  for (const [name, version, tag] of [
    ["7.2.22", v72, "7.2"],
    ["8.1.0", v81, "8.1"],
    // 10.0.2: the stop-from-suspended (suspended → paused → suspended) and reset paths are
    // exercised on the real binary by test/conformance/differential-10.test.ts.
    ["10.0.2", v100, "9.0"],
    ["10.2.0", v102, "9.0"],
  ] as const) {
    const allowed = expected(tag);
    for (const from of RUN_STATES) {
      test(`should allow exactly the §3.2 row of '${from}' in ${name}`, () => {
        const got = RUN_STATES.filter(
          (to) => to !== from && isTransitionAllowed(from, to, version),
        );
        const want = RUN_STATES.filter((to) => allowed.has(`${from}>${to}`));
        assert.deepEqual(got, want);
      });
    }
  }

  test("should list prelaunch -> inmigrate once although QEMU's source has it twice", () => {
    const found = runStateTransitions(v72).filter(
      ([a, b]) => a === "prelaunch" && b === "inmigrate",
    );
    assert.equal(found.length, 1);
  });
});

suite("RunStateMachine", () => {
  test("should start in prelaunch and change state along an allowed pair", () => {
    const m = new RunStateMachine(v72);
    assert.equal(m.state, "prelaunch");
    assert.equal(m.set("running"), true);
    assert.equal(m.state, "running");
  });

  test("should accept a set to the current state without any check", () => {
    const m = new RunStateMachine(v72, "shutdown");
    const seen: string[] = [];
    m.onChange((a, b) => seen.push(`${a}>${b}`));
    assert.equal(m.set("shutdown"), false);
    assert.deepEqual(seen, []);
  });

  test("should throw an internal error on every pair outside the table, leaving the state", () => {
    for (const version of [v72, v102]) {
      for (const from of RUN_STATES) {
        for (const to of RUN_STATES) {
          if (from === to || isTransitionAllowed(from, to, version)) continue;
          const m = new RunStateMachine(version, from);
          assert.throws(
            () => m.set(to),
            (e: unknown) =>
              e instanceof RunStateTransitionError &&
              e.from === from &&
              e.to === to &&
              e.message.startsWith(`invalid runstate transition: '${from}' -> '${to}'`),
          );
          assert.equal(m.state, from);
        }
      }
    }
  });

  test("should refuse shutdown -> running (cont needs a reset) and allow suspended -> paused only from 9.0", () => {
    assert.throws(
      () => new RunStateMachine(v102, "shutdown").set("running"),
      RunStateTransitionError,
    );
    assert.throws(
      () => new RunStateMachine(v72, "suspended").set("paused"),
      RunStateTransitionError,
    );
    assert.equal(new RunStateMachine(v102, "suspended").set("paused"), true);
  });

  test("should notify listeners of changes with from and to", () => {
    const m = new RunStateMachine(v72);
    const seen: string[] = [];
    const off = m.onChange((a, b) => seen.push(`${a}>${b}`));
    m.set("running");
    off();
    m.set("paused");
    assert.deepEqual(seen, ["prelaunch>running"]);
  });
});

suite("run-state helpers", () => {
  test("should say running only for running", () => {
    assert.deepEqual(
      RUN_STATES.filter((s) => isRunning(s)),
      ["running"],
    );
  });
  test("should need a reset in internal-error and shutdown only", () => {
    assert.deepEqual(
      RUN_STATES.filter((s) => needsReset(s)),
      ["internal-error", "shutdown"],
    );
  });
  test("should count suspended as live from 9.0 only", () => {
    assert.deepEqual(
      RUN_STATES.filter((s) => isLive(s, v102)),
      ["running", "suspended"],
    );
    assert.deepEqual(
      RUN_STATES.filter((s) => isLive(s, v72)),
      ["running"],
    );
  });
});
