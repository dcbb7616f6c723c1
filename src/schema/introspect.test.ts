import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  compareSchemaInfo,
  describeSchemaType,
  introspect,
  modelFromIntrospection,
  type SchemaInfo,
} from "./introspect.js";
import { buildModel } from "./check.js";
import { loadSchema } from "./load.js";
import { parseSchemaText } from "./parser.js";
import { createVersionQueries, filterModel, parseQemuVersion } from "./version.js";

const fixtures = fileURLToPath(new URL("./__fixtures__/", import.meta.url));
const demo = () =>
  loadSchema("demo.json", {
    readFile: (p) => readFileSync(`${fixtures}${p}`, "utf8"),
    naming: "strict",
  }).model;

const byName = (infos: readonly SchemaInfo[], name: string) => infos.find((i) => i.name === name);

void suite("introspect()", () => {
  test("should number types in order of first use, commands and events first", () => {
    const infos = introspect(demo());
    assert.deepEqual(
      infos.map((i) => `${i.name}:${i["meta-type"]}`),
      [
        "draw:command",
        "demo_reset:command",
        "DRAWN:event",
        "CLEARED:event",
        "0:object", // draw's arguments
        "1:object", // Point, draw's reply
        "2:object", // the empty object
        "3:object", // DRAWN's data
        "4:object", // Shape
        "5:alternate", // Size
        "str:builtin",
        "int:builtin", // int64 and uint8 both appear as int
        "[str]:array",
        "6:enum", // ShapeKind
        "7:enum", // Colour
        "8:object", // Box
        "9:enum", // SizeName, used by Size
        "[1]:array",
      ],
    );
    assert.deepEqual(byName(infos, "draw"), {
      name: "draw",
      "meta-type": "command",
      "arg-type": "0",
      "ret-type": "1",
      "allow-oob": true,
    });
    assert.deepEqual(byName(infos, "demo_reset"), {
      name: "demo_reset",
      "meta-type": "command",
      "arg-type": "2",
      "ret-type": "2",
      features: ["deprecated"],
    });
  });

  test("should flatten base members, mark optional ones with default null, and list every union branch", () => {
    const infos = introspect(demo());
    assert.deepEqual(byName(infos, "1"), {
      name: "1",
      "meta-type": "object",
      members: [
        { name: "name", type: "str" },
        { name: "x", type: "int" },
        { name: "y", type: "int" },
        { name: "label", type: "str", default: null },
        { name: "tags", type: "[str]", default: null },
      ],
    });
    const shape = byName(infos, "4");
    assert.equal(shape?.["meta-type"], "object");
    if (shape?.["meta-type"] !== "object") return;
    assert.equal(shape.tag, "kind");
    // The branch the schema leaves out ('none') appears with the empty object type.
    assert.deepEqual(shape.variants, [
      { case: "dot", type: "1" },
      { case: "box", type: "8" },
      { case: "none", type: "2" },
    ]);
    assert.deepEqual(byName(infos, "7"), {
      name: "7",
      "meta-type": "enum",
      members: [{ name: "red" }, { name: "green" }, { name: "blue", features: ["unstable"] }],
      values: ["red", "green", "blue"],
    });
  });

  test("should follow the version: filtered model, and enum members only from 6.2", () => {
    const model = demo();
    const v1 = introspect(filterModel(model, "1.0"), { version: "1.0" });
    assert.deepEqual(
      v1.filter((i) => i["meta-type"] === "event").map((i) => i.name),
      ["DRAWN", "CLEARED"],
    );
    const colour = v1.find((i) => i["meta-type"] === "enum" && i.values.includes("red"));
    assert.deepEqual(
      colour?.["meta-type"] === "enum" ? [colour.values, colour.members] : undefined,
      [["red", "green"], undefined],
    );
    const v3 = introspect(filterModel(model, "3.0"), { version: "3.0" });
    assert.equal(byName(v3, "CLEARED"), undefined);
    const drawn = byName(v3, "DRAWN");
    const data = drawn?.["meta-type"] === "event" ? byName(v3, drawn["arg-type"]) : undefined;
    assert.deepEqual(
      data?.["meta-type"] === "object" ? data.members.map((m) => m.name) : undefined,
      ["shape"],
    );
  });
});

void suite("modelFromIntrospection()", () => {
  test("should rebuild a model whose introspection is the same", () => {
    const infos = introspect(demo());
    const rebuilt = modelFromIntrospection(infos);
    const again = introspect(rebuilt);
    assert.deepEqual(
      compareSchemaInfo(again, infos, { features: true, enumOrder: true }).differences,
      [],
    );
    assert.equal(again.length, infos.length);
    const names = rebuilt.definitions.map((d) => d.name);
    assert.ok(
      names.includes("q_obj_draw-arg"),
      "a command's private argument type becomes q_obj_NAME-arg",
    );
  });

  test("should reject what is not a SchemaInfo list", () => {
    assert.throws(() => modelFromIntrospection({ return: [] }), /expected an array of SchemaInfo/);
    assert.throws(
      () => modelFromIntrospection([{ name: "e", "meta-type": "event", "arg-type": "99" }]),
      /unknown type '99'/,
    );
  });
});

void suite("compareSchemaInfo()", () => {
  test("should find member, optionality, enum and branch differences through numbered names", () => {
    const model = demo();
    const a = introspect(model);
    const b = introspect(filterModel(model, "1.0"));
    const result = compareSchemaInfo(a, b);
    assert.deepEqual(result.onlyInFirst, []);
    assert.deepEqual(
      result.differences.map((d) => `${d.path}: ${d.message}`),
      [
        "draw.arguments.shape.colour: enum has value(s) 'blue' the second list lacks",
        "draw.arguments.shape{dot}.label: member missing in the second list",
        "draw.arguments.size: member missing in the second list", // the alternate Size is 1.1
        "DRAWN.data.when: member missing in the second list",
      ],
    );
    assert.equal(
      describeSchemaType(a, "1", 1),
      "{ name: str; x: int; y: int; label?: str; tags?: str[] }",
    );
  });

  test("should report nothing for identical lists and list names only one side has", () => {
    const a = introspect(demo());
    const b = a.filter((i) => i.name !== "CLEARED");
    const r = compareSchemaInfo(a, b);
    assert.deepEqual(r.differences, []);
    assert.deepEqual(r.onlyInFirst, ["CLEARED"]);
  });
});

void suite("version queries", () => {
  test("should parse versions and answer presence by Since/Removed", () => {
    assert.deepEqual(parseQemuVersion("7.2"), { major: 7, minor: 2, micro: 0 });
    assert.deepEqual(parseQemuVersion({ major: 10, minor: 2, micro: 1 }), {
      major: 10,
      minor: 2,
      micro: 1,
    });
    assert.throws(() => parseQemuVersion("seven"), /invalid QEMU version: 'seven'/);
    const q = createVersionQueries(demo());
    assert.deepEqual(q.events("1.9.9"), ["DRAWN", "CLEARED"]);
    assert.deepEqual(q.events("2.0"), ["DRAWN"]);
    assert.equal(q.hasMember("DRAWN", "when", "1.1"), false);
    assert.equal(q.hasMember("DRAWN", "when", "1.2"), true);
    assert.equal(q.hasMember("DRAWN", "when", "3.0"), false);
    assert.equal(q.hasMember("Point", "name", "1.0"), true, "base members count");
    assert.equal(q.hasCommand("draw", "0.9"), false);
  });
});

void suite("introspect() with build conditions", () => {
  test("should number the whole schema and drop what false conditions compile out", () => {
    const text =
      "{ 'command': 'a', 'data': { 'x': 'int', '*y': { 'type': 'str', 'if': 'CONFIG_Y' } }, 'if': { 'not': 'CONFIG_OFF' } }\n" +
      "{ 'command': 'b', 'if': 'CONFIG_B' }\n" +
      "{ 'command': 'c', 'returns': 'R' }\n{ 'struct': 'R', 'data': { 'k': 'K' } }\n" +
      "{ 'enum': 'K', 'data': [ 'p', { 'name': 'q', 'if': { 'all': [ 'CONFIG_Q', 'CONFIG_B' ] } } ] }";
    const model = buildModel(parseSchemaText(text));
    const all = introspect(model);
    const some = introspect(model, { defined: (s) => s === "CONFIG_B" });
    assert.deepEqual(
      all.map((i) => i.name),
      ["a", "b", "c", "0", "1", "2", "int", "str", "3"],
    );
    // Without CONFIG_Y and CONFIG_Q: numbers stay, the member, the value go; 'b' stays (CONFIG_B).
    assert.deepEqual(
      some.find((i) => i.name === "c"),
      { "arg-type": "1", "meta-type": "command", name: "c", "ret-type": "2" },
    );
    const a = some.find((i) => i.name === "0");
    assert.deepEqual(a?.["meta-type"] === "object" ? a.members.map((m) => m.name) : [], ["x"]);
    const k = some.find((i) => i.name === "3");
    assert.deepEqual(k?.["meta-type"] === "enum" ? k.values : [], ["p"]);
    // A built-in type has no condition: listed once anything used it, even compiled-out code.
    assert.deepEqual(
      some.find((i) => i.name === "str"),
      { "json-type": "string", "meta-type": "builtin", name: "str" },
    );
    assert.deepEqual(
      introspect(model, { defined: () => false }).map((i) => i.name),
      ["a", "c", "0", "1", "2", "int", "str", "3"],
    );
  });
});

void suite("filterModel()", () => {
  test("should drop union branches whose tag value the release lacks", () => {
    const model = buildModel(
      parseSchemaText(
        "##\n# @K:\n#\n# @a: one\n#\n# @b: two (since 2.0)\n#\n# Since: 1.0\n##\n{ 'enum': 'K', 'data': [ 'a', 'b' ] }\n" +
          "{ 'struct': 'B', 'data': { 'n': 'int' } }\n" +
          "{ 'union': 'U', 'base': { 'kind': 'K' }, 'discriminator': 'kind', 'data': { 'a': 'B', 'b': 'B' } }\n" +
          "{ 'event': 'E', 'data': 'U', 'boxed': true }",
      ),
    );
    const u = (version: string) => {
      const infos = introspect(filterModel(model, version));
      const e = infos.find((i) => i.name === "E");
      const t =
        e?.["meta-type"] === "event" ? infos.find((i) => i.name === e["arg-type"]) : undefined;
      return t?.["meta-type"] === "object" ? t.variants?.map((v) => v.case) : undefined;
    };
    assert.deepEqual(u("1.0"), ["a"]);
    assert.deepEqual(u("2.0"), ["a", "b"]);
  });
});

void suite("filterModel(): changes of shape", () => {
  const model = buildModel(
    parseSchemaText(
      [
        "##\n# @Box:\n#\n# @w: width\n#\n# @h: height (optional since 3.0)\n#\n# Since: 2.0\n##",
        "{ 'struct': 'Box', 'data': { 'w': 'int', '*h': 'int' } }",
        "##\n# @OldBox:\n#\n# @n: size\n#\n# Since: 1.0\n#\n# Removed: 2.0\n#\n# Shape-of: Box\n##",
        "{ 'struct': 'OldBox', 'data': { 'n': 'str' } }",
        "{ 'command': 'get', 'returns': ['Box'] }",
      ].join("\n"),
    ),
  );
  const box = (version: string) => {
    const m = filterModel(model, version);
    assert.equal(
      m.definitions.some((d) => d.name === "OldBox"),
      false,
    );
    const d = m.definitions.find((x) => x.name === "Box");
    return d?.kind === "struct"
      ? d.members.map((x) => `${x.name}${x.optional ? "?" : ""}:${x.type.name}`)
      : d?.kind;
  };

  test("should put the release's shape in the place of the name", () => {
    assert.deepEqual(box("1.5"), ["n:str"]);
    assert.deepEqual(box("2.0"), ["w:int", "h:int"]);
    assert.equal(box("0.9"), undefined);
    // Introspection follows: the command returns the old shape in 1.5.
    const infos = introspect(filterModel(model, "1.5"));
    const get = infos.find((i) => i.name === "get");
    const arr = infos.find((i) => get?.["meta-type"] === "command" && i.name === get["ret-type"]);
    const el = infos.find((i) => arr?.["meta-type"] === "array" && i.name === arr["element-type"]);
    assert.deepEqual(el?.["meta-type"] === "object" ? el.members : undefined, [
      { name: "n", type: "str" },
    ]);
  });

  test("should make a member mandatory before its '(optional since X.Y)'", () => {
    assert.deepEqual(box("2.9"), ["w:int", "h:int"]);
    assert.deepEqual(box("3.0"), ["w:int", "h?:int"]);
    assert.deepEqual(
      createVersionQueries(model)
        .members("Box", "3.1")
        .map((m) => m.optional),
      [false, true],
    );
  });
});
