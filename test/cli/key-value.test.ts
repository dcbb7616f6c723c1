import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { PeerSchema } from "../../src/cli/introspection.js";
import { parseJsonText, parseKeyValues, parseSize } from "../../src/cli/key-value.js";

/** A small introspection answer shaped like QEMU's (masked type names, builtins by name). */
const schema = new PeerSchema([
  { name: "set-action", "meta-type": "command", "arg-type": "0", "ret-type": "1" },
  { name: "x-blob", "meta-type": "command", "arg-type": "2", "ret-type": "1" },
  { name: "query-status", "meta-type": "command", "arg-type": "1", "ret-type": "1" },
  {
    name: "0",
    "meta-type": "object",
    members: [
      { name: "panic", type: "10", default: null },
      { name: "watchdog", type: "str", default: null },
    ],
  },
  { name: "1", "meta-type": "object", members: [] },
  {
    name: "2",
    "meta-type": "object",
    members: [
      { name: "level", type: "int" },
      { name: "ratio", type: "number", default: null },
      { name: "on", type: "bool", default: null },
      { name: "id", type: "str", default: null },
      { name: "either", type: "11", default: null },
      { name: "list", type: "[int]", default: null },
      { name: "opts", type: "3", default: null },
      { name: "blob", type: "any", default: null },
    ],
  },
  {
    name: "3",
    "meta-type": "object",
    members: [{ name: "depth", type: "int" }],
    tag: "kind",
    variants: [],
  },
  { name: "10", "meta-type": "enum", values: ["pause", "shutdown", "none"] },
  { name: "11", "meta-type": "alternate", members: [{ type: "int" }, { type: "str" }] },
  { name: "[int]", "meta-type": "array", "element-type": "int" },
  { name: "int", "meta-type": "builtin", "json-type": "int" },
  { name: "str", "meta-type": "builtin", "json-type": "string" },
  { name: "number", "meta-type": "builtin", "json-type": "number" },
  { name: "bool", "meta-type": "builtin", "json-type": "boolean" },
  { name: "any", "meta-type": "builtin", "json-type": "value" },
]);
const typing = { schema, command: "x-blob" };

suite("key=value arguments", () => {
  test("should type values by the schema", () => {
    assert.deepEqual(
      parseKeyValues(
        [
          "level=12",
          "ratio=0.5",
          "on=off",
          "id=0042",
          "either=7",
          "list=[1,2]",
          "opts.depth=3",
          'blob={"a":1}',
        ],
        typing,
      ),
      {
        level: 12,
        ratio: 0.5,
        on: false,
        id: "0042",
        either: 7,
        list: [1, 2],
        opts: { depth: 3 },
        blob: { a: 1 },
      },
    );
    assert.deepEqual(parseKeyValues(["either=ide0"], typing), { either: "ide0" });
    assert.deepEqual(
      parseKeyValues(["panic=pause", "watchdog=true"], { schema, command: "set-action" }),
      {
        panic: "pause",
        watchdog: "true",
      },
    );
  });

  test("should guess types without a schema, like qmp-shell", () => {
    assert.deepEqual(parseKeyValues(["a=1", "b=true", "c=hello", "d=null", "e.f=[1]", "g=1.5"]), {
      a: 1,
      b: true,
      c: "hello",
      d: null,
      e: { f: [1] },
      g: 1.5,
    });
  });

  test("should take key:=JSON literally", () => {
    assert.deepEqual(parseKeyValues(['id:="12"', 'opts:={"depth":1}'], typing), {
      id: "12",
      opts: { depth: 1 },
    });
    assert.throws(
      () => parseKeyValues(["id:={"], typing),
      /invalid argument 'id:=\{': the value after ':=' is not JSON/,
    );
  });

  test("should reject malformed and mistyped arguments naming them", () => {
    assert.throws(
      () => parseKeyValues(["level"], typing),
      /invalid argument 'level': expected key=value/,
    );
    assert.throws(
      () => parseKeyValues(["=1"], typing),
      /invalid argument '=1': expected key=value/,
    );
    assert.throws(() => parseKeyValues(["a..b=1"]), /'a\.\.b' is not a member name/);
    assert.throws(
      () => parseKeyValues(["level=abc"], typing),
      /invalid argument 'level=abc': 'level' expects an integer/,
    );
    assert.throws(() => parseKeyValues(["on=maybe"], typing), /'on' expects a boolean/);
    assert.throws(() => parseKeyValues(["a=1", "a=2"]), /'a' is given twice/);
    assert.throws(
      () => parseKeyValues(["a=1", "a.b=2"]),
      /'a' already has a value that is not an object/,
    );
  });

  test("should keep integers beyond 2^53 exact", () => {
    assert.deepEqual(parseKeyValues(["level=18446744073709551615"], typing), {
      level: 18446744073709551615n,
    });
    assert.deepEqual(parseJsonText('{"a": 9007199254740993, "b": "9007199254740993"}'), {
      a: 9007199254740993n,
      b: "9007199254740993",
    });
  });
});

suite("key=value conveniences", () => {
  test("should read QEMU's size suffixes for integer members", () => {
    assert.deepEqual(parseKeyValues(["level=1G"], typing), { level: 1073741824 });
    assert.deepEqual(parseKeyValues(["level=1.5k"], typing), { level: 1536 });
    assert.deepEqual(parseKeyValues(["level=512B"], typing), { level: 512 });
    assert.deepEqual(parseKeyValues(["level=8E"], typing), { level: 2n ** 63n });
    // The alternate of int and str keeps a suffixed word as the integer it spells.
    assert.deepEqual(parseKeyValues(["either=4M"], typing), { either: 4194304 });
    // A string member keeps the text; a fraction of a byte is no size.
    assert.deepEqual(parseKeyValues(["id=1G"], typing), { id: "1G" });
    assert.throws(() => parseKeyValues(["level=0.3b"], typing), /'level' expects an integer/);
  });

  test("should make a one-element list of a single word", () => {
    assert.deepEqual(parseKeyValues(["list=7"], typing), { list: [7] });
    assert.deepEqual(parseKeyValues(["list=[1,2]"], typing), { list: [1, 2] });
    assert.throws(() => parseKeyValues(["list=x"], typing), /'list' expects an integer/);
  });

  test("should parse sizes as qemu_strtosz does", () => {
    assert.equal(parseSize("0k"), 0);
    assert.equal(parseSize("2T"), 2 * 1024 ** 4);
    assert.equal(parseSize("12"), undefined, "a bare number is an integer, not a size here");
    assert.equal(parseSize("1.5"), undefined);
    assert.equal(parseSize("17E"), undefined, "above UINT64_MAX");
    assert.equal(parseSize("1Q"), undefined);
  });
});
