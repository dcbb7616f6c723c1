/**
 * Against a real QEMU (`realQemuTest()`: skipped loudly without one, required in CI): the live
 * `query-qmp-schema` reply turned into a model (`modelFromIntrospection`) must introspect back to
 * the same answer, generate code, and give validators whose first issue is, word for word, the
 * error QEMU itself answers for the same bad arguments.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { RawQmp, realQemuTest, startQemu } from "../../test/support/real-qemu.js";
import { generateTypeScript } from "./codegen/generate.js";
import { compileValidators } from "./dynamic.js";
import {
  compareSchemaInfo,
  introspect,
  modelFromIntrospection,
  type SchemaInfo,
} from "./introspect.js";
import { qemuIssueMessage } from "./runtime.js";

/**
 * Bad arguments and the command they go to; the expected desc is whatever QEMU answers.
 * (Introspection shows every integer type as `int`, so a peer's model cannot know sizes or
 * signedness: range and uint64 errors are tested on schemas that say them.)
 */
const badCalls: [string, Record<string, unknown>][] = [
  ["set-action", { panic: "bogus" }],
  ["set-action", { panic: 1 }],
  ["set-action", { reboot: "reset", zzz: true }],
  ["device_del", {}],
  ["device_del", { id: ["x"] }],
  ["query-status", { extra: 1 }],
  ["chardev-add", { id: "c0", backend: { type: "null", data: { x: 1 } } }],
  [
    "chardev-add",
    {
      id: "c0",
      backend: { type: "socket", data: { addr: { type: "inet", data: { host: "h" } } } },
    },
  ],
  ["chardev-add", { id: "c0", backend: { type: "file", data: { out: 5 } } }],
  ["chardev-add", { id: "c0", backend: { type: "bogus" } }],
  ["blockdev-add", { driver: "null-co", "node-name": "n0", size: "x" }],
  ["balloon", { value: "x" }],
  ["migrate-set-parameters", { "block-incremental": "yes" }],
];

void suite("a live QEMU's query-qmp-schema", realQemuTest(), () => {
  test("should round-trip through the model and explain QEMU's own argument errors", async () => {
    const qemu = await startQemu();
    try {
      const raw = await RawQmp.connect(qemu.socketPath);
      await raw.handshake();
      raw.send('{"execute": "query-qmp-schema"}');
      const live = (await raw.next(10_000))?.return as SchemaInfo[];
      assert.ok(Array.isArray(live) && live.length > 100);

      const model = modelFromIntrospection(live);
      const again = introspect(model);
      assert.deepEqual(
        compareSchemaInfo(again, live, { features: true, enumOrder: true }).differences,
        [],
      );
      // (Entry counts differ slightly: every empty object type becomes the one empty type.)
      const types = generateTypeScript(model, { source: "query-qmp-schema" }).find(
        (f) => f.name === "types.ts",
      );
      assert.match(types!.content(), /SHUTDOWN: ShutdownEventData;/);

      const validators = compileValidators(model);
      assert.equal(
        validators.event("SHUTDOWN")?.check({ guest: false, reason: "host-qmp-quit" }),
        true,
      );
      assert.equal(validators.event("STOP")?.check(undefined), true);
      for (const [command, args] of badCalls) {
        raw.send(JSON.stringify({ execute: command, arguments: args }));
        const reply = (await raw.next(5_000)) as
          | { error?: { class: string; desc: string } }
          | undefined;
        const issues = validators.commandArgs(command)!.errors(args);
        assert.equal(reply?.error?.class, "GenericError", `${command} ${JSON.stringify(args)}`);
        assert.ok(issues.length > 0, `${command} ${JSON.stringify(args)}: no issue found`);
        assert.equal(
          qemuIssueMessage(issues[0]!),
          reply?.error?.desc,
          `${command} ${JSON.stringify(args)}`,
        );
      }
      raw.close();
    } finally {
      await qemu.stop();
    }
  });
});
