import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { isSchemaError } from "../base/errors.js";
import { introspect } from "../schema/introspect.js";
import { loadSchema } from "../schema/load.js";
import { registerSchemaCommands } from "./schema-command.js";

const fixtures = fileURLToPath(new URL("../schema/__fixtures__/", import.meta.url));

/** Run `qmpkit schema …` in process; returns stdout, or throws what the command threw. */
async function run(...argv: string[]): Promise<string> {
  let out = "";
  const program = new Command("qmpkit").exitOverride().configureOutput({
    writeOut: (s) => {
      out += s;
    },
    writeErr: () => {},
  });
  registerSchemaCommands(program);
  await program.parseAsync(argv, { from: "user" });
  return out;
}

void suite("qmpkit schema", () => {
  test("should check a schema file and summarise it", async () => {
    const out = await run("schema", "check", join(fixtures, "demo.json"), "--strict");
    assert.match(out, /demo\.json: ok \(2 files, 2 commands, 2 events, \d+ types\)/);
  });

  test("should fail with file:line:col and the reason on a bad schema", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-schema-"));
    try {
      const file = join(dir, "bad.json");
      writeFileSync(file, "\n{ 'struct': 'Foo', 'data': { 'a': 'Bar' } }\n");
      await assert.rejects(
        run("schema", "check", file),
        (e) =>
          isSchemaError(e) &&
          e.message === `${file}:2:1: struct 'Foo': member 'a' uses unknown type 'Bar'`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should print the catalogue's introspection for a version", async () => {
    const infos = JSON.parse(await run("schema", "introspect", "--qemu-version", "2.9.0")) as {
      name: string;
    }[];
    assert.ok(infos.some((i) => i.name === "SHUTDOWN"));
    assert.ok(!infos.some((i) => i.name === "GUEST_PVSHUTDOWN"), "GUEST_PVSHUTDOWN is 9.1");
    const newest = JSON.parse(await run("schema", "introspect")) as { name: string }[];
    assert.ok(newest.some((i) => i.name === "GUEST_PVSHUTDOWN"));
    await assert.rejects(run("schema", "introspect", "--qemu-version", "x"), /invalid version 'x'/);
  });

  test("should generate TypeScript from a schema tree and from a saved introspection reply", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-gen-"));
    try {
      mkdirSync(join(dir, "tree", "qapi"), { recursive: true });
      writeFileSync(
        join(dir, "tree", "qapi", "qapi-schema.json"),
        "{ 'event': 'PING', 'data': { 'n': 'int' } }\n",
      );
      await run("schema", "gen", "--qapi-dir", join(dir, "tree"), "--out", join(dir, "a"));
      assert.match(readFileSync(join(dir, "a", "types.ts"), "utf8"), /PING: PingEventData;/);
      const reply = join(dir, "reply.json");
      const demo = loadSchema(join(fixtures, "demo.json"), {
        readFile: (p) => readFileSync(p, "utf8"),
      }).model;
      writeFileSync(reply, JSON.stringify({ return: introspect(demo) }));
      const out = await run(
        "schema",
        "gen",
        "--from-introspection",
        reply,
        "--out",
        join(dir, "b"),
      );
      assert.match(out, /wrote .*types\.ts/);
      const types = readFileSync(join(dir, "b", "types.ts"), "utf8");
      // Masked type names are named from their place, never `TypeN`.
      assert.match(types, /"draw": \{ args: DrawArguments; returns: DrawResult \};/);
      assert.doesNotMatch(types, /\bType\d+\b/);
      assert.match(
        types,
        /^\/\/ Do not edit: regenerate with `qmpkit schema gen --from-introspection .*reply\.json`\.$/m,
      );
      assert.match(readFileSync(join(dir, "b", "validators.ts"), "utf8"), /from "qmpkit\/schema";/);
      await assert.rejects(
        run("schema", "gen", "--out", dir),
        /give exactly one of --qapi-dir DIR and --from-introspection FILE/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
