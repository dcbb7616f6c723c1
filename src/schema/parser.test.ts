import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isSchemaError, type SchemaError } from "../base/errors.js";
import { buildModel } from "./check.js";
import { generateTypeScript } from "./codegen/generate.js";
import { introspect } from "./introspect.js";
import { parseSchema, parseSchemaText } from "./parser.js";
import { formatSchemaError } from "./source.js";

/** The SchemaError `fn` throws (fails when it throws nothing or something else). */
function schemaErrorOf(fn: () => unknown): SchemaError {
  try {
    fn();
  } catch (e) {
    assert.ok(isSchemaError(e), `expected a SchemaError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected a SchemaError, nothing was thrown");
}

const files = (map: Record<string, string>) => (path: string) => {
  const text = map[path];
  if (text === undefined) throw new Error("ENOENT: no such file");
  return text;
};

void suite("parseSchemaText()", () => {
  test("should read single quotes, # comments, true/false, nested arrays and objects", () => {
    const parsed = parseSchemaText(
      "# comment\n{ 'command': 'x', # trailing\n  'data': { 'a': ['str'], '*b': { 'type': 'int' } }, 'allow-oob': true }\n",
    );
    assert.deepEqual(parsed.exprs[0]?.expr, {
      command: "x",
      data: { a: ["str"], "*b": { type: "int" } },
      "allow-oob": true,
    });
    assert.deepEqual(
      { line: parsed.exprs[0]?.info.line, column: parsed.exprs[0]?.info.column },
      { line: 2, column: 1 },
    );
  });

  test("should report syntax errors at file:line:col with what was expected", () => {
    const cases: [string, string][] = [
      ["{ 'a': 'b' ", "<input>:1:12: expected ',' or '}'"],
      ["{ 'a' 'b' }", "<input>:1:7: expected ':'"],
      ["\n  { 'a': \"b\" }", "<input>:2:10: stray '\"'"],
      ["{ 'a': 'b\n' }", '<input>:1:8: missing terminating "\'"'],
      ["{ 'a': 1 }", "<input>:1:8: stray '1'"],
      ["{ 'a': 'x', 'a': 'y' }", "<input>:1:13: duplicate key 'a'"],
      ["[ 'a' ]", "<input>:1:1: top-level expression must be an object"],
      ["{ 'a': [ 'x' 'y' ] }", "<input>:1:14: expected ',' or ']'"],
    ];
    for (const [text, message] of cases) {
      const e = schemaErrorOf(() => parseSchemaText(text));
      assert.equal(e.message.startsWith(message), true, `${JSON.stringify(text)}: ${e.message}`);
    }
  });

  test("should parse a doc block into symbol, body, members, features and sections", () => {
    const parsed = parseSchemaText(
      [
        "##",
        "# @EV:",
        "#",
        "# Something happened.",
        "#",
        "# @a: the first",
        "#     continued (since 2.10)",
        "#",
        "# @b: the second (removed in 9.0)",
        "#",
        "# Features:",
        "#",
        "# @deprecated: do not use",
        "#",
        "# .. note:: take care",
        "#",
        "# Since: 1.2",
        "#",
        "# .. qmp-example::",
        "#",
        '#     <- { "event": "EV" }',
        "##",
        "{ 'event': 'EV', 'data': { 'a': 'int', 'b': 'str' }, 'features': [ 'deprecated' ] }",
      ].join("\n"),
    );
    const doc = parsed.exprs[0]?.doc;
    assert.equal(doc?.symbol, "EV");
    assert.equal(doc?.body, "Something happened.");
    assert.deepEqual(
      doc?.members.map((m) => [m.name, m.text]),
      [
        ["a", "the first continued (since 2.10)"],
        ["b", "the second (removed in 9.0)"],
      ],
    );
    assert.deepEqual(
      doc?.features.map((f) => f.name),
      ["deprecated"],
    );
    assert.deepEqual(
      doc?.sections.map((s) => s.tag),
      ["Note", "Since", "Example"],
    );
    const model = buildModel(parsed);
    const ev = model.definitions.find((d) => d.name === "q_obj_EV-arg");
    assert.equal(ev?.kind, "struct");
    if (ev?.kind !== "struct") return;
    assert.deepEqual(
      ev.members.map((m) => [m.name, m.since, m.removed]),
      [
        ["a", "2.10", undefined],
        ["b", undefined, "9.0"],
      ],
    );
    assert.equal(model.definitions.find((d) => d.name === "EV")?.since, "1.2");
  });

  test("should reject malformed doc blocks", () => {
    assert.match(
      schemaErrorOf(() => parseSchemaText("##\n#x\n##\n")).message,
      /:2:1: missing space after #/,
    );
    assert.match(
      schemaErrorOf(() => parseSchemaText("##\n# @A:\n##\n{ 'include': 'x.json' }\n")).message,
      /documentation for 'A' is not followed by the definition/,
    );
    assert.match(
      schemaErrorOf(() => parseSchemaText("##\n# text\n")).message,
      /must end with '##'/,
    );
  });

  test("should apply pragmas, old and new names", () => {
    const p = parseSchemaText(
      "{ 'pragma': { 'doc-required': true, 'returns-whitelist': [ 'a' ], 'member-name-exceptions': [ 'B' ] } }",
    );
    assert.equal(p.pragmas.docRequired, true);
    assert.deepEqual([...p.pragmas.commandReturnsExceptions], ["a"]);
    assert.deepEqual([...p.pragmas.memberNameExceptions], ["B"]);
    assert.match(
      schemaErrorOf(() => parseSchemaText("{ 'pragma': { 'bogus': true } }")).message,
      /unknown pragma 'bogus'/,
    );
  });

  test("should never throw anything but SchemaError on mangled input", () => {
    const base =
      "##\n# @A:\n#\n# @x: y\n#\n# Since: 1.0\n##\n{ 'struct': 'A', 'data': { 'x': 'int', '*y': ['A'] }, 'if': { 'all': [ 'X', { 'not': 'Y' } ] } }\n{ 'union': 'U', 'base': { 'k': 'E' }, 'discriminator': 'k', 'data': { 'a': 'A' } }\n{ 'enum': 'E', 'data': [ 'a', { 'name': 'b' } ] }\n";
    const alphabet = "{}[]:,'#@\n *aqtrue";
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let failures = 0;
    for (let i = 0; i < 2000; i++) {
      const chars = [...base];
      for (let k = 0; k < 1 + rand(4); k++) {
        const at = rand(chars.length);
        const op = rand(3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, alphabet[rand(alphabet.length)]!);
        else chars[at] = alphabet[rand(alphabet.length)]!;
      }
      try {
        // Whatever passes the checker must also go through introspection and code generation.
        const model = buildModel(parseSchemaText(chars.join("")));
        introspect(model);
        generateTypeScript(model, { source: "fuzz" });
      } catch (e) {
        if (!isSchemaError(e)) {
          failures++;
          assert.fail(`non-SchemaError for input ${JSON.stringify(chars.join(""))}: ${String(e)}`);
        }
      }
    }
    assert.equal(failures, 0);
  });
});

void suite("parseSchema()", () => {
  test("should follow includes relative to the including file, once each", () => {
    const parsed = parseSchema("top/main.json", {
      readFile: files({
        "top/main.json":
          "{ 'include': 'sub/a.json' }\n{ 'include': 'sub/a.json' }\n{ 'enum': 'M', 'data': [] }",
        "top/sub/a.json": "{ 'include': '../b.json' }\n{ 'enum': 'A', 'data': [] }",
        "top/b.json": "{ 'enum': 'B', 'data': [] }",
      }),
    });
    assert.deepEqual(parsed.files, ["top/main.json", "top/sub/a.json", "top/b.json"]);
    assert.deepEqual(
      parsed.exprs.map((e) => e.expr.enum),
      ["B", "A", "M"],
    );
  });

  test("should name the include chain in errors", () => {
    const e = schemaErrorOf(() =>
      parseSchema("main.json", {
        readFile: files({
          "main.json": "\n{ 'include': 'a.json' }",
          "a.json": "{ 'include': 'b.json' }",
          "b.json": "{ 'enum': 'X', 'data': [ } ",
        }),
      }),
    );
    assert.equal(e.message, "b.json:1:26: expected '{', '[', ']', string, or boolean");
    assert.deepEqual(
      e.includedFrom.map((l) => `${l.file}:${l.line}`),
      ["main.json:2", "a.json:1"],
    );
    assert.equal(
      formatSchemaError(e),
      "In file included from main.json:2:\n                 from a.json:1:\nb.json:1:26: expected '{', '[', ']', string, or boolean",
    );
  });

  test("should report unreadable includes and inclusion loops", () => {
    const missing = schemaErrorOf(() =>
      parseSchema("main.json", { readFile: files({ "main.json": "{ 'include': 'nope.json' }" }) }),
    );
    assert.match(missing.message, /^main.json:1:1: can't read include file 'nope.json': ENOENT/);
    const loop = schemaErrorOf(() =>
      parseSchema("a.json", {
        readFile: files({
          "a.json": "{ 'include': 'b.json' }",
          "b.json": "{ 'include': 'a.json' }",
        }),
      }),
    );
    assert.match(loop.message, /^b.json:1:1: inclusion loop for a.json/);
  });
});
