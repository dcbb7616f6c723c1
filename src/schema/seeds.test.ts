/**
 * The seed documents (QEMU's own schema files from web mirrors, `shared/seeds/`): the parser
 * reads them whole, and the checker accepts them once the types they take from other files of
 * QEMU's tree are declared.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import { isSchemaError } from "../base/errors.js";
import { stripMirror } from "./__fixtures__/mirror-text.js";
import { buildModel } from "./check.js";
import type { SchemaModel } from "./model.js";
import { parseSchemaText } from "./parser.js";

const seedsDir = fileURLToPath(new URL("../../../shared/seeds/", import.meta.url));
const seed = (prefix: string): string | undefined => {
  if (!existsSync(seedsDir)) return undefined;
  const name = readdirSync(seedsDir).find((f) => f.startsWith(prefix));
  return name === undefined ? undefined : stripMirror(readFileSync(`${seedsDir}${name}`, "utf8"));
};
const skip = existsSync(seedsDir) ? {} : { skip: `no seeds at ${seedsDir}` };

/**
 * Check `text`, declaring each type the checker reports unknown (as a struct, or an enum when it
 * is used as one) until it passes: proves every error names the missing type precisely.
 */
function checkWithStubs(text: string, file: string): { model: SchemaModel; stubs: string[] } {
  const stubs: string[] = [];
  for (let round = 0; round < 100; round++) {
    const prelude = stubs.map((s) => `{ 'struct': '${s}', 'data': {} }`).join("\n");
    try {
      return {
        model: buildModel(parseSchemaText(`${text}\n${prelude}\n`, file), { naming: "legacy" }),
        stubs,
      };
    } catch (e) {
      assert.ok(isSchemaError(e), String(e));
      const m = /uses unknown type '([^']+)'$/.exec(e.reason);
      assert.ok(m, `unexpected error: ${e.message}`);
      stubs.push(m[1]!);
    }
  }
  assert.fail("too many unknown types");
}

void suite("seed schema files", () => {
  test("should parse and check qapi/event.json (about QEMU 2.9)", skip, () => {
    const text = seed("000_")!;
    const parsed = parseSchemaText(text, "event.json");
    const events = parsed.exprs.filter((e) => "event" in e.expr);
    assert.equal(events.length, 29);
    const shutdown = events.find((e) => e.expr.event === "SHUTDOWN");
    assert.equal(shutdown?.doc?.symbol, "SHUTDOWN");
    assert.equal(shutdown?.doc?.sections.find((s) => s.tag === "Since")?.text, "0.12.0");
    const { model, stubs } = checkWithStubs(text, "event.json");
    assert.ok(stubs.includes("DumpQueryResult"), stubs.join(","));
    const dump = model.definitions.find((d) => d.name === "DUMP_COMPLETED");
    assert.equal(dump?.since, "2.6");
  });

  test("should parse and check qapi/run-state.json (QEMU 9.1)", skip, () => {
    const text = seed("003_")!;
    const { model, stubs } = checkWithStubs(text, "run-state.json");
    assert.deepEqual(stubs, []);
    const names = model.definitions.filter((d) => d.kind === "event").map((d) => d.name);
    for (const e of [
      "SHUTDOWN",
      "RESET",
      "GUEST_PANICKED",
      "GUEST_CRASHLOADED",
      "GUEST_PVSHUTDOWN",
      "MEMORY_FAILURE",
    ]) {
      assert.ok(names.includes(e), e);
    }
    const shutdownArgs = model.definitions.find((d) => d.name === "q_obj_SHUTDOWN-arg");
    assert.deepEqual(
      shutdownArgs?.kind === "struct"
        ? shutdownArgs.members.map((m) => [m.name, m.since])
        : undefined,
      [
        ["guest", "2.10"],
        ["reason", "4.0"],
      ],
    );
    const runState = model.definitions.find((d) => d.name === "RunState");
    assert.ok(
      runState?.kind === "enum" &&
        runState.values.some((v) => v.name === "colo" && v.since === "2.8"),
    );
  });
});
