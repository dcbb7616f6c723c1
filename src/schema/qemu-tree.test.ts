/**
 * QEMU's own schema trees: set `QMPKIT_QEMU_SRC` to one or more QEMU source trees (separated by
 * `:`), e.g. `QMPKIT_QEMU_SRC=/src/qemu-2.9.0:/src/qemu-7.2.0`. Each tree's complete
 * `qapi-schema.json` must parse and check; its introspection must survive the round trip through
 * `modelFromIntrospection`; code generation must run. When a tree has the version of the
 * installed `qemu-system-x86_64` (Debian's 7.2 here), its introspection must equal the live
 * `query-qmp-schema` answer entry for entry, numbers included.
 *
 * Skipped (with a message) when `QMPKIT_QEMU_SRC` is not set: QEMU's files are not part of the
 * repository.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { suite, test } from "node:test";
import { isSchemaError } from "../base/errors.js";
import { liveQmpSchema, qemuAvailable, qemuBinary } from "../../test/support/real-qemu.js";
import { generateTypeScript } from "./codegen/generate.js";
import { compareSchemaInfo, introspect, modelFromIntrospection } from "./introspect.js";
import { loadSchema } from "./load.js";
import { readFileNode } from "./read-file-node.js";

const trees = (process.env.QMPKIT_QEMU_SRC ?? "").split(":").filter((t) => t !== "");
const skip =
  trees.length === 0
    ? {
        skip: "QMPKIT_QEMU_SRC is not set (a QEMU source tree, or several separated by ':'): QEMU qapi trees not tested",
      }
    : {};
if (skip.skip) process.stderr.write(`\n*** ${skip.skip} ***\n\n`);

function schemaFile(tree: string): string {
  for (const f of [join(tree, "qapi", "qapi-schema.json"), join(tree, "qapi-schema.json")]) {
    if (existsSync(f)) return f;
  }
  assert.fail(`${tree}: no qapi/qapi-schema.json (QEMU 3.0+) or qapi-schema.json (QEMU 2.x)`);
}

function treeVersion(tree: string): string | undefined {
  const f = join(tree, "VERSION");
  return existsSync(f) ? readFileSync(f, "utf8").trim() : undefined;
}

function installedQemuVersion(): string | undefined {
  if (!qemuAvailable()) return undefined;
  const out = execFileSync(qemuBinary, ["--version"], { encoding: "utf8" });
  return /version (\d+\.\d+)/.exec(out)?.[1];
}

/** The configuration of Debian's qemu-system-x86_64 7.2 as far as the schema's conditions go. */
const debian72 = (symbol: string): boolean => {
  if (symbol.startsWith("TARGET_")) return symbol === "TARGET_I386";
  return !["CONFIG_BLKIO", "CONFIG_VMNET", "CONFIG_COCOA"].includes(symbol);
};

void suite("QEMU qapi trees (QMPKIT_QEMU_SRC)", () => {
  for (const tree of trees.length > 0 ? trees : ["(none)"]) {
    test(`should parse, check, introspect and generate ${tree}`, skip, () => {
      const { model, parsed } = loadSchema(schemaFile(tree), {
        readFile: readFileNode,
        qemuVersion: treeVersion(tree),
      });
      const commands = model.definitions.filter((d) => d.kind === "command").length;
      const events = model.definitions.filter((d) => d.kind === "event").length;
      process.stderr.write(
        `${tree} (QEMU ${treeVersion(tree) ?? "?"}): ${parsed.files.length} files, ${commands} commands, ${events} events\n`,
      );
      assert.ok(commands > 100 && events > 20, `${commands} commands, ${events} events`);
      const infos = introspect(model);
      const again = introspect(modelFromIntrospection(infos));
      assert.deepEqual(
        compareSchemaInfo(infos, again, { features: true, enumOrder: true }).differences,
        [],
      );
      const files = generateTypeScript(model, { source: "qapi-schema.json" });
      assert.match(
        files.find((f) => f.name === "types.ts")!.content(),
        /"query-status": \{ args: /,
      );
    });
  }

  test(
    "should accept and reject the cases of QEMU's own tests/qapi-schema as QEMU does",
    skip,
    (t) => {
      const withTests = trees.filter((x) => existsSync(join(x, "tests", "qapi-schema")));
      if (withTests.length === 0) {
        t.skip("no tree in QMPKIT_QEMU_SRC has tests/qapi-schema");
        return;
      }
      // The one rule not implemented: rST indentation of continuation lines in doc comments.
      const notImplemented = new Set(["doc-bad-indent.json"]);
      for (const tree of withTests) {
        const dir = join(tree, "tests", "qapi-schema");
        const modern = Number(treeVersion(tree)?.split(".")[0] ?? 0) >= 10;
        let cases = 0;
        for (const f of readdirSync(dir)
          .filter((x) => x.endsWith(".json"))
          .sort()) {
          const errFile = join(dir, f.replace(/\.json$/, ".err"));
          if (!existsSync(errFile) || notImplemented.has(f)) continue;
          const expected = readFileSync(errFile, "utf8").trim();
          let got: string | undefined;
          try {
            // QEMU's test cases use no naming pragmas, yet expect the release's naming rules;
            // from 10.0 on they also expect the rules qmpkit applies with strict documentation.
            loadSchema(join(dir, f), {
              readFile: readFileNode,
              naming: "strict",
              qemuVersion: treeVersion(tree),
              ...(modern ? { memberDocs: "require" as const } : {}),
            });
          } catch (e) {
            assert.ok(isSchemaError(e), `${f}: ${String(e)}`);
            got = e.message;
          }
          if (expected === "") assert.equal(got, undefined, `${f} is valid for QEMU`);
          else assert.notEqual(got, undefined, `${f}: QEMU says ${expected.split("\n").pop()}`);
          cases++;
        }
        process.stderr.write(`${dir}: ${cases} cases as QEMU\n`);
      }
    },
  );

  test("should equal the installed QEMU's query-qmp-schema, entry for entry", skip, async (t) => {
    const installed = installedQemuVersion();
    const tree = trees.find((x) => treeVersion(x)?.startsWith(`${installed}.`));
    if (installed === undefined || tree === undefined) {
      t.skip(
        `no tree in QMPKIT_QEMU_SRC has the installed QEMU's version (${installed ?? "no QEMU"})`,
      );
      return;
    }
    if (installed !== "7.2") {
      t.skip(`the build configuration is known for Debian's 7.2 only, not ${installed}`);
      return;
    }
    const { model } = loadSchema(schemaFile(tree), { readFile: readFileNode });
    const live = await liveQmpSchema();
    const ours = introspect(model, { version: treeVersion(tree), defined: debian72 });
    assert.ok(Array.isArray(live));
    assert.equal(ours.length, live.length);
    for (let i = 0; i < ours.length; i++) assert.deepEqual(ours[i], live[i], `entry ${i}`);
  });
});
