import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isSchemaError } from "../base/errors.js";
import { buildModel, type CheckOptions } from "./check.js";
import { SchemaIndex } from "./model.js";
import { parseSchemaText } from "./parser.js";

function errorOf(text: string, options: CheckOptions = { naming: "strict" }): string {
  try {
    buildModel(parseSchemaText(text, "t.json"), options);
  } catch (e) {
    assert.ok(isSchemaError(e), String(e));
    return e.message;
  }
  assert.fail(`expected a SchemaError for ${text}`);
}

const ok = (text: string, options: CheckOptions = { naming: "strict" }) =>
  buildModel(parseSchemaText(text, "t.json"), options);

void suite("buildModel()", () => {
  test("should say which member uses an unknown type", () => {
    assert.equal(
      errorOf("\n{ 'struct': 'StatusInfo', 'data': { 'status': 'RunStat' } }"),
      "t.json:2:1: struct 'StatusInfo': member 'status' uses unknown type 'RunStat'",
    );
    assert.equal(
      errorOf("{ 'event': 'EV', 'data': { 'a': ['Nope'] } }"),
      "t.json:1:1: implicit type 'q_obj_EV-arg': member 'a' uses unknown type 'Nope'",
    );
    assert.equal(
      errorOf("{ 'command': 'c', 'returns': 'EV' }\n{ 'event': 'EV' }"),
      "t.json:1:1: command 'c': 'returns' uses 'EV', which is a event, not a type",
    );
  });

  test("should reject unknown and missing keys, and duplicate definitions", () => {
    assert.match(
      errorOf("{ 'struct': 'A', 'dta': {} }"),
      /struct 'A' has unknown key 'dta' \(valid keys: 'struct', 'data', 'base', 'if', 'features'\)/,
    );
    assert.match(errorOf("{ 'name': 'A' }"), /expression is missing a definition keyword/);
    assert.match(
      errorOf("{ 'enum': 'A', 'data': [] }\n{ 'struct': 'A' }"),
      /t.json:2:1: struct 'A' is already defined \(t.json:1\)/,
    );
    assert.match(
      errorOf("{ 'enum': 'E', 'data': [ 'a', 'a' ] }"),
      /enum 'E' has duplicate value 'a'/,
    );
  });

  test("should report member clashes with the base, naming both owners", () => {
    assert.equal(
      errorOf(
        "{ 'struct': 'B', 'data': { 'x-y': 'int' } }\n{ 'struct': 'S', 'base': 'B', 'data': { 'x_y': 'str' } }",
        {
          naming: "legacy",
        },
      ),
      "t.json:2:1: struct 'S': member 'x_y' (of 'S') collides with member 'x-y' (of 'B')",
    );
  });

  test("should check union discriminators and branches", () => {
    const e = "{ 'enum': 'K', 'data': [ 'a', 'b' ] }\n{ 'struct': 'A', 'data': {} }\n";
    assert.match(
      errorOf(`${e}{ 'union': 'U', 'base': { 'kind': 'K' }, 'discriminator': 'type', 'data': {} }`),
      /union 'U': discriminator 'type' is not a member of the base/,
    );
    assert.match(
      errorOf(
        `${e}{ 'union': 'U', 'base': { '*kind': 'K' }, 'discriminator': 'kind', 'data': {} }`,
      ),
      /discriminator member 'kind' of the base must not be optional/,
    );
    assert.match(
      errorOf(
        `${e}{ 'union': 'U', 'base': { 'kind': 'str' }, 'discriminator': 'kind', 'data': {} }`,
      ),
      /discriminator member 'kind' of the base must be of enum type, not 'str'/,
    );
    assert.match(
      errorOf(
        `${e}{ 'union': 'U', 'base': { 'kind': 'K' }, 'discriminator': 'kind', 'data': { 'c': 'A' } }`,
      ),
      /union 'U': branch 'c' is not a value of enum 'K'/,
    );
    assert.match(
      errorOf(
        `${e}{ 'union': 'U', 'base': { 'kind': 'K' }, 'discriminator': 'kind', 'data': { 'a': 'K' } }`,
      ),
      /union 'U': branch 'a' requires an object type, not enum 'K'/,
    );
    assert.match(
      errorOf(
        `${e}{ 'union': 'U', 'base': { 'kind': 'K' }, 'discriminator': 'kind', 'data': { 'a': { 'type': 'A' } } }\n{ 'struct': 'A2', 'data': { 'kind': 'str' } }\n{ 'union': 'V', 'base': { 'kind': 'K' }, 'discriminator': 'kind', 'data': { 'b': 'A2' } }`,
      ),
      /union 'V' branch 'b': member 'kind' \(of 'A2'\) collides with member 'kind' \(of the base of 'V'\)/,
    );
  });

  test("should model simple (legacy) unions as QEMU does", () => {
    const m = ok("{ 'union': 'Simple', 'data': { 'num': 'int', 'words': ['str'] } }");
    const index = new SchemaIndex(m);
    const u = index.type("Simple");
    assert.equal(u.kind, "union");
    if (u.kind !== "union") return;
    assert.equal(u.simple, true);
    assert.equal(u.discriminator, "type");
    assert.deepEqual(
      index.objectMembers(u.base).map((x) => [x.name, x.type.name]),
      [["type", "SimpleKind"]],
    );
    assert.deepEqual(
      u.branches.map((b) => b.type.name),
      ["q_obj_int-wrapper", "q_obj_strList-wrapper"],
    );
    assert.deepEqual(
      index.objectMembers("q_obj_strList-wrapper").map((x) => x.type),
      [{ name: "str", array: true }],
    );
  });

  test("should reject alternates whose branches JSON cannot tell apart", () => {
    assert.match(
      errorOf(
        "{ 'enum': 'E', 'data': [ 'a' ] }\n{ 'alternate': 'Alt', 'data': { 's': 'str', 'e': 'E' } }",
      ),
      /alternate 'Alt': branch 'e' can't be distinguished from 's'/,
    );
    assert.match(
      errorOf("{ 'alternate': 'Alt', 'data': { 'i': 'int', 'n': 'number' } }"),
      /branch 'n' can't be distinguished from 'i'/,
    );
  });

  test("should apply QEMU's naming rules in strict mode only", () => {
    assert.match(
      errorOf("{ 'event': 'Bad_event' }"),
      /event 'Bad_event': event names must be ALL_CAPS/,
    );
    assert.match(
      errorOf("{ 'command': 'do_it' }"),
      /command names must be lowercase with '-' \(or listed in pragma 'command-name-exceptions'\)/,
    );
    assert.match(errorOf("{ 'struct': 'lower', 'data': {} }"), /type names must be CamelCase/);
    assert.match(
      errorOf("{ 'struct': 'S', 'data': { 'camelCase': 'int' } }"),
      /member 'camelCase' of struct 'S': names must be lowercase/,
    );
    assert.match(
      errorOf("{ 'struct': 'FooList', 'data': {} }"),
      /type names must not end in 'List'/,
    );
    ok("{ 'pragma': { 'command-name-exceptions': [ 'do_it' ] } }\n{ 'command': 'do_it' }");
    ok("{ 'command': 'do_it', 'data': { 'some_arg': 'int' } }", { naming: "legacy" });
  });

  test("should require documentation as the pragma says", () => {
    const undocumented = "{ 'pragma': { 'doc-required': true } }\n{ 'struct': 'S', 'data': {} }";
    assert.match(errorOf(undocumented), /t.json:2:1: struct 'S': documentation comment required/);
    const partial =
      "{ 'pragma': { 'doc-required': true } }\n##\n# @S:\n#\n# @a: yes\n##\n{ 'struct': 'S', 'data': { 'a': 'int', 'b': 'int' } }";
    assert.match(
      errorOf(partial, { naming: "strict", memberDocs: "require" }),
      /struct 'S': member 'b' lacks documentation/,
    );
    ok(partial, { naming: "strict" }); // QEMU before 9.0 did not require member docs
    assert.match(
      errorOf("##\n# @S:\n#\n# @zz: no such\n##\n{ 'struct': 'S', 'data': {} }"),
      /t.json:4:1: struct 'S': documented member 'zz' does not exist/,
    );
    assert.match(
      errorOf("##\n# @T:\n##\n{ 'struct': 'S', 'data': {} }"),
      /struct 'S' follows documentation for 'T'/,
    );
  });

  test("should check command data, returns and boxed", () => {
    assert.match(
      errorOf("{ 'command': 'c', 'returns': 'int' }"),
      /command 'c': 'returns' must be an object type or an array of one, not 'int' \(or list the command in pragma 'command-returns-exceptions'\)/,
    );
    ok(
      "{ 'pragma': { 'command-returns-exceptions': [ 'c' ] } }\n{ 'command': 'c', 'returns': 'int' }",
    );
    assert.match(errorOf("{ 'command': 'c', 'boxed': true }"), /'boxed': true requires 'data'/);
    assert.match(
      errorOf("{ 'command': 'c', 'data': 'E' }\n{ 'enum': 'E', 'data': [] }"),
      /'data' requires a struct type, not enum 'E'/,
    );
  });

  test("should parse if conditions in all forms and reject bad ones", () => {
    const m = ok(
      "{ 'struct': 'S', 'data': { 'a': { 'type': 'int', 'if': { 'any': [ 'A', { 'not': 'B' } ] } } }, 'if': 'C' }",
    );
    const s = new SchemaIndex(m).type("S");
    assert.equal(s.ifcond, "C");
    assert.deepEqual(s.kind === "struct" ? s.members[0]?.ifcond : undefined, {
      any: ["A", { not: "B" }],
    });
    assert.match(
      errorOf("{ 'struct': 'S', 'data': {}, 'if': { 'xor': [] } }"),
      /'if' condition must have exactly one of|has unknown operator 'xor'/,
    );
    assert.match(
      errorOf("{ 'struct': 'S', 'data': {}, 'if': { 'all': [] } }"),
      /'all' requires a non-empty array/,
    );
  });
});

void suite("doc comment indentation", () => {
  const doc = (continuation: string, next: string) =>
    `##\n# @c:\n#\n# @a: line one\n${continuation}\n${next}\n#\n# Since: 1.0\n##\n{ 'command': 'c', 'data': { 'a': 'int' } }`;
  test("should follow QEMU 10: no de-indent right after the first continuation line", () => {
    assert.match(
      errorOf(doc("#   line two", "# line three")),
      /t.json:6:1: unexpected de-indent \(expected at least 2 spaces\)/,
    );
    ok(doc("#     aligned", "#     aligned"));
  });
  test("should follow QEMU 5.2-9.x when told the release: continuation aligned with the text", () => {
    const older = { naming: "strict", qemuVersion: "7.2.0" } as const;
    assert.match(
      errorOf(doc("#   line two", "#   three"), older),
      /t.json:5:1: unexpected de-indent \(expected at least 4 spaces\)/,
    );
    ok(doc("#     line two", "#     three"), older);
    ok(doc("#   line two", "#   three"), { naming: "strict", qemuVersion: "5.1.0" });
  });
});

void suite("buildModel(): qmpkit's history marks", () => {
  /** A documented definition: `@NAME:`, member descriptions, then sections. */
  const doc = (name: string, members: string[], sections: string[]) =>
    [
      "##",
      `# @${name}:`,
      "#",
      ...members.flatMap((m) => [`# ${m}`, "#"]),
      ...sections.map((s) => `# ${s}`),
      "##",
    ].join("\n");

  test("should read '(optional since X.Y)' on optional members and refuse it on mandatory ones", () => {
    const m = ok(
      `${doc("S", ["@a: one (optional since 2.0)", "@b: two"], ["Since: 1.0"])}\n{ 'struct': 'S', 'data': { '*a': 'int', '*b': 'int' } }`,
    );
    const s = new SchemaIndex(m).get("S");
    assert.ok(s?.kind === "struct");
    assert.deepEqual(
      s.members.map((x) => [x.name, x.optionalSince]),
      [
        ["a", "2.0"],
        ["b", undefined],
      ],
    );
    assert.equal(
      errorOf(
        `${doc("S", ["@a: one (optional since 2.0)"], ["Since: 1.0"])}\n{ 'struct': 'S', 'data': { 'a': 'int' } }`,
      ),
      "t.json:8:1: struct 'S': member 'a' says '(optional since 2.0)' but is not optional (write '*a')",
    );
  });

  test("should keep 'Shape-of' out of the sections and check what it relates", () => {
    const box = `${doc("Box", ["@w: width"], ["Since: 2.0"])}\n{ 'struct': 'Box', 'data': { 'w': 'int' } }`;
    const use = "{ 'command': 'c', 'returns': 'Box' }";
    const old = (sections: string[], name = "OldBox") =>
      `${doc(name, ["@n: size"], sections)}\n{ 'struct': '${name}', 'data': { 'n': 'int' } }`;
    const m = ok(
      [box, old(["Since: 1.0", "Removed: 2.0", "Shape-of: Box (before 2.0)"]), use].join("\n"),
    );
    const d = new SchemaIndex(m).get("OldBox");
    assert.equal(d?.shapeOf, "Box");
    assert.equal(d?.sections, undefined);
    assert.match(
      errorOf([box, old(["Since: 1.0", "Removed: 2.0", "Shape-of: Bx"]), use].join("\n")),
      /struct 'OldBox': 'Shape-of' names unknown definition 'Bx'/,
    );
    assert.match(
      errorOf([box, old(["Since: 1.0", "Removed: 2.1", "Shape-of: Box"]), use].join("\n")),
      /struct 'OldBox': present in the same releases as struct 'Box', and both are 'Box' there/,
    );
    assert.match(
      errorOf([box, old(["Since: 1.0", "Shape-of: Box"]), use].join("\n")),
      /present in the same releases as struct 'Box'/,
    );
    assert.match(
      errorOf(
        [
          box,
          old(["Since: 1.0", "Removed: 2.0", "Shape-of: Box"]),
          "{ 'command': 'd', 'returns': 'OldBox' }",
        ].join("\n"),
      ),
      /struct 'OldBox': a shape is not referred to by its own name: refer to 'Box'/,
    );
    assert.match(
      errorOf([box, old(["Since: 1.0", "Removed: 2.0", "Shape-of: c"]), use].join("\n")),
      /struct 'OldBox': 'Shape-of' relates types only, not command 'c'/,
    );
    assert.match(
      errorOf(
        [
          box,
          old(["Since: 1.0", "Removed: 1.5", "Shape-of: Box"]),
          old(["Since: 1.2", "Removed: 2.0", "Shape-of: Box"], "MidBox"),
          use,
        ].join("\n"),
      ),
      /struct 'OldBox': present in the same releases as struct 'MidBox', and both are 'Box' there/,
    );
  });
});
