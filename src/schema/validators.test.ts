/**
 * The generated validators at run time: the demo schema's golden output (every kind of type)
 * and the project's catalogue in `src/generated`.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import { isValidationError, type ValidationIssue } from "../base/errors.js";
import {
  commandValidators as catalogueCommands,
  eventValidators as catalogueEvents,
  qemuSchema,
} from "../generated/index.js";
import { commandValidators, eventValidators, validators } from "./__fixtures__/golden/index.js";
import { compileValidators } from "./dynamic.js";
import { introspect, modelFromIntrospection } from "./introspect.js";
import { loadSchema } from "./load.js";
import { qemuIssueMessage, qemuParameterName, vUint8, vUint64 } from "./runtime.js";

const kinds = (issues: readonly ValidationIssue[]) => issues.map((i) => `${i.kind}:${i.path}`);

void suite("generated validators (demo schema)", () => {
  const draw = commandValidators.draw.args;

  test("should report issues in QEMU's visiting order: members in schema order, then unexpected ones", () => {
    const issues = draw.errors({
      zzz: 1,
      size: true,
      shape: { kind: "dot", name: 3, x: "a", extra: 0 },
    });
    assert.deepEqual(kinds(issues), [
      "type:shape.name",
      "type:shape.x",
      "missing:shape.y",
      "unexpected:shape.extra",
      "type:size",
      "unexpected:zzz",
    ]);
    assert.deepEqual(issues[0], {
      kind: "type",
      path: "shape.name",
      expected: "string",
      actual: "integer",
    });
    assert.deepEqual(issues[4], {
      kind: "type",
      path: "size",
      expected: "Size",
      actual: "boolean",
    });
  });

  test("should visit base members first and then the branch the tag selects", () => {
    assert.deepEqual(kinds(draw.errors({ shape: { kind: "box" } })), ["missing:shape.corners"]);
    assert.deepEqual(kinds(draw.errors({ shape: { kind: "none", corners: [] } })), [
      "unexpected:shape.corners",
    ]);
    assert.deepEqual(draw.errors({ shape: { kind: "circle" } }), [
      { kind: "enum", path: "shape.kind", value: "circle", allowed: ["dot", "box", "none"] },
    ]);
    assert.deepEqual(kinds(draw.errors({ shape: {} })), ["missing:shape.kind"]);
  });

  test("should spell list elements as QEMU does: name[i]", () => {
    const issues = draw.errors({
      shape: { kind: "box", corners: [{ name: "a", x: 1, y: 2 }, { name: "b", x: 1, y: 300 }, 7] },
    });
    assert.deepEqual(issues, [
      { kind: "range", path: "shape.corners[1].y", value: 300, expected: "uint8_t" },
      { kind: "type", path: "shape.corners[2]", expected: "object", actual: "integer" },
    ]);
    assert.equal(qemuParameterName(issues[0]!), "y");
    assert.equal(qemuParameterName(issues[1]!), "null");
  });

  test("should check integer types: int64 bounds as type errors, sized ranges as range errors", () => {
    const point = validators.Point;
    const base = { name: "p", y: 1 };
    assert.equal(point.check({ ...base, x: 2n ** 62n }), true);
    assert.deepEqual(point.errors({ ...base, x: 2n ** 63n }), [
      { kind: "type", path: "x", expected: "integer", actual: "integer" },
    ]);
    assert.deepEqual(point.errors({ ...base, x: 1.5 }), [
      { kind: "type", path: "x", expected: "integer", actual: "number" },
    ]);
    assert.deepEqual(point.errors({ ...base, x: 0, y: -1 }), [
      { kind: "range", path: "y", value: -1, expected: "uint8_t" },
    ]);
  });

  test("should pick an alternate's branch by JSON type", () => {
    const shape = { kind: "none" };
    assert.equal(draw.check({ shape, size: 4096 }), true);
    assert.equal(draw.check({ shape, size: "small" }), true);
    assert.deepEqual(kinds(draw.errors({ shape, size: "4k" })), ["enum:size"]);
    assert.deepEqual(kinds(draw.errors({ shape, size: -1.5 })), ["type:size"]);
    assert.deepEqual(kinds(draw.errors({ shape, size: null })), ["type:size"]);
  });

  test("should fail unexpected members in strict mode and only report them in lenient mode", () => {
    const value = { shape: { kind: "none" }, newer: true };
    assert.equal(draw.check(value), false);
    assert.equal(draw.check(value, { mode: "lenient" }), true);
    assert.deepEqual(kinds(draw.errors(value, { mode: "lenient" })), ["unexpected:newer"]);
    assert.deepEqual(draw.parse(value, { mode: "lenient" }), value);
    assert.throws(
      () => draw.parse(value),
      (e) => isValidationError(e) && e.subject === "arguments of draw" && e.issues.length === 1,
    );
    assert.throws(
      () => draw.parse({ newer: 1 }, { mode: "lenient" }),
      (e) => isValidationError(e) && e.issues.length === 1 && e.issues[0]?.kind === "missing",
    );
  });

  test("should treat absent arguments as {} and absent event data as valid for data-less events", () => {
    assert.equal(commandValidators.demo_reset.args.check(undefined), true);
    assert.deepEqual(kinds(commandValidators.draw.args.errors(undefined)), ["missing:shape"]);
    assert.equal(eventValidators.CLEARED.check(undefined), true);
    assert.deepEqual(kinds(eventValidators.CLEARED.errors({ x: 1 })), ["unexpected:x"]);
    assert.deepEqual(kinds(eventValidators.DRAWN.errors("no")), ["type:"]);
  });
});

void suite("generated validators (catalogue)", () => {
  test("should validate SHUTDOWN data and set-action arguments", () => {
    assert.equal(catalogueEvents.SHUTDOWN.check({ guest: false, reason: "host-qmp-quit" }), true);
    assert.deepEqual(kinds(catalogueEvents.SHUTDOWN.errors({ guest: "no", reason: "bogus" })), [
      "type:guest",
      "enum:reason",
    ]);
    assert.equal(catalogueEvents.STOP.check(undefined), true);
    assert.equal(catalogueCommands["set-action"].args.check({ panic: "pause" }), true);
    assert.deepEqual(kinds(catalogueCommands["set-action"].args.errors({ panic: "bogus", x: 1 })), [
      "enum:panic",
      "unexpected:x",
    ]);
    assert.equal(
      catalogueCommands["query-status"].returns.check({
        running: true,
        status: "running",
        singlestep: false,
      }),
      true,
    );
  });

  test("should know when members and events appeared", () => {
    assert.equal(qemuSchema.hasMember("SHUTDOWN", "guest", "2.9"), false);
    assert.equal(qemuSchema.hasMember("SHUTDOWN", "guest", "2.10"), true);
    assert.equal(qemuSchema.hasMember("SHUTDOWN", "reason", "3.1.1"), false);
    assert.equal(qemuSchema.hasMember("SHUTDOWN", "reason", "4.0.0"), true);
    assert.equal(qemuSchema.hasEvent("GUEST_PVSHUTDOWN", "9.0"), false);
    assert.equal(qemuSchema.hasEvent("GUEST_PVSHUTDOWN", "9.1"), true);
    assert.equal(
      qemuSchema.hasMember("query-status", "singlestep", "8.2"),
      false,
      "query-status takes no arguments",
    );
    assert.equal(qemuSchema.hasMember("StatusInfo", "singlestep", "8.2"), true);
    assert.equal(qemuSchema.hasMember("StatusInfo", "singlestep", "9.0"), false);
  });
});

void suite("compileValidators()", () => {
  const { model } = loadSchema("demo.json", {
    readFile: (p) =>
      readFileSync(fileURLToPath(new URL(`./__fixtures__/${p}`, import.meta.url)), "utf8"),
  });
  const dynamic = compileValidators(model);
  const samples: unknown[] = [
    undefined,
    null,
    {},
    { shape: { kind: "dot", name: "p", x: 1, y: 2 } },
    { zzz: 1, size: true, shape: { kind: "dot", name: 3, x: "a", extra: 0 } },
    {
      shape: { kind: "box", corners: [{ name: "a", x: 1, y: 2 }, { name: "b", x: 1, y: 300 }, 7] },
      size: "4k",
    },
    { shape: { kind: "circle", colour: "mauve" }, size: [1] },
    { shape: { kind: "none", corners: [] }, size: 2n ** 70n },
  ];

  test("should find exactly the issues the generated validators find", () => {
    for (const value of samples) {
      assert.deepEqual(
        dynamic.commandArgs("draw")?.errors(value),
        commandValidators.draw.args.errors(value),
        JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)),
      );
      assert.deepEqual(dynamic.event("DRAWN")?.errors(value), eventValidators.DRAWN.errors(value));
      assert.deepEqual(
        dynamic.event("CLEARED")?.errors(value),
        eventValidators.CLEARED.errors(value),
      );
      assert.deepEqual(dynamic.type("Point")?.errors(value), validators.Point.errors(value));
    }
    assert.equal(dynamic.commandArgs("nope"), undefined);
    assert.equal(dynamic.type("draw"), undefined);
  });

  test("should validate against a model rebuilt from introspection (integer sizes aside)", () => {
    const peer = compileValidators(modelFromIntrospection(introspect(model)));
    // Introspection says `int` for every integer type: values out of int64 (a uint64 would take
    // them) are left out.
    for (const value of samples.filter(
      (x) => !JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? "BIG" : v))?.includes("BIG"),
    )) {
      // Introspection shows every integer type as `int`: a peer's model cannot know ranges.
      const expected = commandValidators.draw.args
        .errors(value)
        .filter((i) => i.kind !== "range")
        .map((i) => `${i.kind}:${i.path}`);
      const actual = peer.commandArgs("draw")?.errors(value);
      assert.deepEqual(
        actual?.map((i) => `${i.kind}:${i.path}`),
        expected,
      );
    }
  });
});

void suite("qemuIssueMessage()", () => {
  test("should word each issue as QEMU's input visitor does", () => {
    const issues = (fn: typeof vUint64, v: unknown) => {
      const is: ValidationIssue[] = [];
      fn(v, "a", "b", is);
      return is.map(qemuIssueMessage);
    };
    assert.deepEqual(issues(vUint64, "x"), ["Parameter 'a.b' expects uint64"]);
    assert.deepEqual(issues(vUint64, 2n ** 64n), ["Parameter 'a.b' expects uint64"]);
    assert.deepEqual(issues(vUint64, -1), []);
    assert.deepEqual(issues(vUint8, "x"), ["Parameter 'a.b' expects uint64"]);
    assert.deepEqual(issues(vUint8, 256), ["Parameter 'b' expects uint8_t"]);
    assert.deepEqual(issues(vUint8, -1), ["Parameter 'b' expects uint8_t"]);
    assert.equal(qemuIssueMessage({ kind: "missing", path: "a.b" }), "Parameter 'a.b' is missing");
    assert.equal(
      qemuIssueMessage({ kind: "unexpected", path: "x" }),
      "Parameter 'x' is unexpected",
    );
    assert.equal(
      qemuIssueMessage({ kind: "type", path: "a[1]", expected: "string", actual: "integer" }),
      "Invalid parameter type for 'a[1]', expected: string",
    );
    assert.equal(
      qemuIssueMessage({ kind: "enum", path: "a[0]", value: "v", allowed: [] }),
      "Parameter 'null' does not accept value 'v'",
    );
  });
});
