import assert from "node:assert/strict";
import { suite, test } from "node:test";
import type { JsonValue } from "../base/json.js";
import { checkCapabilitiesArguments, checkCapabilitiesOffered } from "./capabilities.js";
import { qdictKeyOrder } from "../wire/index.js";
import { firstUnvisitedKey } from "./glib-hash.js";
import {
  checkRequest,
  describeArgumentIssue,
  isOobRequest,
  type KeyOrder,
  selectArgumentIssue,
} from "./request.js";

/** Walks the keys in the order given, to test the first-problem-wins rule independently of hashing. */
const asWritten: KeyOrder = (keys) => keys;
const reversed: KeyOrder = (keys) => [...keys].reverse();

function check(value: JsonValue, oobEnabled = false, orderKeys = asWritten) {
  return checkRequest(value, { oobEnabled, orderKeys });
}

suite("checkRequest()", () => {
  test("should reject every JSON value that is not an object, without an id", () => {
    for (const value of [[], [{ execute: "x", id: 1 }], "s", 1, 1.5, true, false, null]) {
      assert.deepEqual(check(value), {
        kind: "error",
        desc: "QMP input must be a JSON object",
        id: undefined,
      });
    }
  });

  test("should accept execute with arguments and any id", () => {
    for (const id of [
      1,
      "a",
      null,
      true,
      [1, { a: 2 }],
      { nested: { x: [] } },
      2.5,
      18446744073709551616n,
    ]) {
      assert.deepEqual(check({ execute: "stop", arguments: { a: 1 }, id }), {
        kind: "command",
        name: "stop",
        args: { a: 1 },
        id,
        oob: false,
      });
    }
  });

  test("should pass an empty object when arguments are absent and no id when id is absent", () => {
    const r = check({ execute: "query-status" });
    assert.deepEqual(r, {
      kind: "command",
      name: "query-status",
      args: {},
      id: undefined,
      oob: false,
    });
  });

  test("should name each envelope problem with QEMU's text, keeping the id", () => {
    const cases: Array<[JsonValue, string]> = [
      [{ execute: 1, id: 7 }, "QMP input member 'execute' must be a string"],
      [{ execute: null, id: 7 }, "QMP input member 'execute' must be a string"],
      [{ execute: "x", arguments: [], id: 7 }, "QMP input member 'arguments' must be an object"],
      [{ execute: "x", arguments: null, id: 7 }, "QMP input member 'arguments' must be an object"],
      [{ execute: "x", foo: 1, id: 7 }, "QMP input member 'foo' is unexpected"],
      [{ arguments: {}, id: 7 }, "QMP input lacks member 'execute'"],
      [{ id: 7 }, "QMP input lacks member 'execute'"],
      [{ "exec-oob": "x", id: 7 }, "QMP input member 'exec-oob' is unexpected"],
    ];
    for (const [value, desc] of cases)
      assert.deepEqual(check(value), { kind: "error", desc, id: 7 });
  });

  test("should report the empty object as lacking execute, without id", () => {
    assert.deepEqual(check({}), {
      kind: "error",
      desc: "QMP input lacks member 'execute'",
      id: undefined,
    });
  });

  test("should report the first problem in walk order", () => {
    const value = { foo: 1, execute: 2, arguments: 3 };
    assert.equal((check(value) as { desc: string }).desc, "QMP input member 'foo' is unexpected");
    assert.equal(
      (check(value, false, reversed) as { desc: string }).desc,
      "QMP input member 'arguments' must be an object",
    );
  });

  test("should take exec-oob as the command when OOB is enabled", () => {
    assert.deepEqual(check({ "exec-oob": "yank", id: "o" }, true), {
      kind: "command",
      name: "yank",
      args: {},
      id: "o",
      oob: true,
    });
    assert.equal(
      (check({ "exec-oob": 5 }, true) as { desc: string }).desc,
      "QMP input member 'exec-oob' must be a string",
    );
  });

  test("should report execute and exec-oob together as a clash, names in walk order", () => {
    const value = { "exec-oob": "a", execute: "b" };
    assert.equal(
      (check(value, true) as { desc: string }).desc,
      "QMP input member 'execute' clashes with 'exec-oob'",
    );
    assert.equal(
      (check(value, true, reversed) as { desc: string }).desc,
      "QMP input member 'exec-oob' clashes with 'execute'",
    );
    // Without OOB, exec-oob is just an unexpected member.
    assert.equal(
      (check(value, false) as { desc: string }).desc,
      "QMP input member 'exec-oob' is unexpected",
    );
  });
});

suite("isOobRequest()", () => {
  test("should be true only for an object with exec-oob and without execute", () => {
    assert.equal(isOobRequest({ "exec-oob": "x" }), true);
    assert.equal(isOobRequest({ "exec-oob": 1, id: 2 }), true);
    assert.equal(isOobRequest({ "exec-oob": "x", execute: "y" }), false);
    assert.equal(isOobRequest({ execute: "y" }), false);
    assert.equal(isOobRequest([{ "exec-oob": "x" }]), false);
    assert.equal(isOobRequest("exec-oob"), false);
  });
});

suite("describeArgumentIssue()", () => {
  test("should use the full path for missing, unexpected and type errors", () => {
    assert.equal(
      describeArgumentIssue({ kind: "missing", path: "action" }),
      "Parameter 'action' is missing",
    );
    assert.equal(
      describeArgumentIssue({ kind: "unexpected", path: "a.b" }),
      "Parameter 'a.b' is unexpected",
    );
    assert.equal(
      describeArgumentIssue({ kind: "type", path: "a[0].b", expected: "string", actual: "number" }),
      "Invalid parameter type for 'a[0].b', expected: string",
    );
  });

  test("should use the member's own name, or 'null' in a list, for enum errors", () => {
    assert.equal(
      describeArgumentIssue({ kind: "enum", path: "action", value: "bogus", allowed: ["reset"] }),
      "Parameter 'action' does not accept value 'bogus'",
    );
    assert.equal(
      describeArgumentIssue({ kind: "enum", path: "a.b", value: "x", allowed: [] }),
      "Parameter 'b' does not accept value 'x'",
    );
    assert.equal(
      describeArgumentIssue({ kind: "enum", path: "enable[0]", value: "foo", allowed: ["oob"] }),
      "Parameter 'null' does not accept value 'foo'",
    );
  });

  test("should print the C type for sized integers and the full path for uint64", () => {
    assert.equal(
      describeArgumentIssue({ kind: "range", path: "a.port", value: 70000, expected: "uint16_t" }),
      "Parameter 'port' expects uint16_t",
    );
    assert.equal(
      describeArgumentIssue({ kind: "range", path: "x", value: -129, expected: "int8_t" }),
      "Parameter 'x' expects int8_t",
    );
    assert.equal(
      describeArgumentIssue({
        kind: "range",
        path: "a.size",
        value: 2n ** 64n,
        expected: "uint64",
      }),
      "Parameter 'a.size' expects uint64",
    );
    // qobject_input_type_uint64 words a wrong JSON type as a bad value (observed on 7.2.22:
    // migrate-set-parameters max-bandwidth "x" → "Parameter 'max-bandwidth' expects uint64").
    assert.equal(
      describeArgumentIssue({ kind: "type", path: "a.size", expected: "uint64", actual: "string" }),
      "Parameter 'a.size' expects uint64",
    );
  });
});

suite("selectArgumentIssue()", () => {
  test("should keep a first issue that is not an unexpected member", () => {
    const issues = [
      { kind: "missing", path: "action" },
      { kind: "unexpected", path: "zz" },
    ] as const;
    assert.equal(selectArgumentIssue(issues, { zz: 1 }, qdictKeyOrder), issues[0]);
  });

  test("should name the unexpected member GLib's hash table yields first, as QEMU does", () => {
    // QEMU 7.2.22 answered "Parameter 'b' is unexpected" for these four (glib-hash.test.ts).
    const args = { zz: 4, a: 2, b: 1, c: 3 };
    const issues = Object.keys(args).map((path) => ({ kind: "unexpected" as const, path }));
    assert.deepEqual(selectArgumentIssue(issues, args, qdictKeyOrder), {
      kind: "unexpected",
      path: "b",
    });
  });

  test("should look inside the object that holds the unexpected members, and keep visited members", () => {
    const args = { opts: { known: 1, x: 1, y: 2, z: 3 } };
    const issues = ["x", "y", "z"].map((k) => ({ kind: "unexpected" as const, path: `opts.${k}` }));
    const name = firstUnvisitedKey(qdictKeyOrder(["known", "x", "y", "z"]), ["known"]);
    assert.deepEqual(selectArgumentIssue(issues, args, qdictKeyOrder), {
      kind: "unexpected",
      path: `opts.${name}`,
    });
  });
});

suite("qmp_capabilities arguments", () => {
  test("should accept no arguments, an empty list and oob", () => {
    assert.deepEqual(checkCapabilitiesArguments({}), { enable: [] });
    assert.deepEqual(checkCapabilitiesArguments({ enable: [] }), { enable: [] });
    assert.deepEqual(checkCapabilitiesArguments({ enable: ["oob"] }), { enable: ["oob"] });
  });

  test("should give QEMU's texts for each bad argument", () => {
    const cases: Array<[Record<string, JsonValue>, string]> = [
      [{ enable: "oob" }, "Invalid parameter type for 'enable', expected: array"],
      [{ enable: null }, "Invalid parameter type for 'enable', expected: array"],
      [{ enable: {} }, "Invalid parameter type for 'enable', expected: array"],
      [{ enable: [1] }, "Invalid parameter type for 'enable[0]', expected: string"],
      [{ enable: ["oob", null] }, "Invalid parameter type for 'enable[1]', expected: string"],
      [{ enable: ["foo"] }, "Parameter 'null' does not accept value 'foo'"],
      [{ enable: ["oob", "OOB"] }, "Parameter 'null' does not accept value 'OOB'"],
      [{ foo: 1 }, "Parameter 'foo' is unexpected"],
      // Members are visited before unexpected ones are looked for.
      [{ foo: 1, enable: "x" }, "Invalid parameter type for 'enable', expected: array"],
    ];
    for (const [args, desc] of cases) assert.deepEqual(checkCapabilitiesArguments(args), { desc });
  });

  test("should name every capability that was not offered, in request order", () => {
    assert.equal(checkCapabilitiesOffered(["oob"], ["oob"]), undefined);
    assert.equal(checkCapabilitiesOffered([], []), undefined);
    assert.equal(checkCapabilitiesOffered(["oob"], []), "Capability oob not available");
    assert.equal(checkCapabilitiesOffered(["oob", "oob"], []), "Capability oob, oob not available");
  });
});
