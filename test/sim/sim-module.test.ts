/** The subsystem modules: each x-sim-guest action of the schema has exactly one module's handler. */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { SIM_MODULES } from "../../src/sim/modules/index.js";
import { guestActionNames } from "../../src/sim/sim-schema.js";

suite("subsystem modules", () => {
  test("should perform every x-sim-guest action of the schema in exactly one module", () => {
    const owners = new Map<string, string[]>();
    for (const m of SIM_MODULES) {
      for (const action of Object.keys(m.guestActions ?? {})) {
        owners.set(action, [...(owners.get(action) ?? []), m.name]);
      }
    }
    assert.deepEqual([...owners.keys()].sort(), [...guestActionNames()].sort());
    for (const [action, modules] of owners) assert.equal(modules.length, 1, action);
  });

  test("should name each module once and register no command twice", () => {
    const names = SIM_MODULES.map((m) => m.name);
    assert.equal(new Set(names).size, names.length);
    const commands = SIM_MODULES.flatMap((m) => Object.keys(m.commands ?? {}));
    assert.equal(new Set(commands).size, commands.length);
    assert.ok(commands.includes("dump-guest-memory") && commands.includes("query-yank"));
  });
});

suite("help x-sim-guest", () => {
  test("should list every action and each action's members, from the simulator schema", async () => {
    const { PeerSchema } = await import("../../src/cli/introspection.js");
    const { describeCommand } = await import("../../src/cli/shell-line.js");
    const { introspectionWithSimCommands } = await import("../../src/sim/schema-info.js");
    const schema = new PeerSchema(introspectionWithSimCommands("7.2.22"));
    const text = describeCommand(schema, "x-sim-guest") ?? "";
    const actionLine = text.split("\n").find((l) => l.startsWith("  action: ")) ?? "";
    for (const action of guestActionNames()) assert.ok(actionLine.includes(`'${action}'`), action);
    // One line per action naming its members; `help x-sim-guest ACTION` gives their types.
    for (const line of [
      "    rtc-change: [offset]",
      "    balloon-change: actual",
      "    io-error: device [operation] [nospace] [reason]",
      "    rx-filter-change: nic",
    ]) {
      assert.ok(text.split("\n").includes(line), `${line} in\n${text}`);
    }
    for (const [action, member] of [
      ["rtc-change", "[offset]: int"],
      ["balloon-change", "actual: int"],
      ["io-error", "[operation]: 'read'|'write'"],
      ["rx-filter-change", "nic: str"],
    ] as const) {
      const branch = describeCommand(schema, "x-sim-guest", action) ?? "";
      assert.ok(branch.includes(`    ${member}`), `${member} in\n${branch}`);
    }
  });
});
