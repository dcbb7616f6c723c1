import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { PeerSchema } from "../../src/cli/introspection.js";
import {
  completeLine,
  describeCommand,
  describeEvent,
  parseShellLine,
  tokenize,
} from "../../src/cli/shell-line.js";

const schema = new PeerSchema([
  { name: "set-action", "meta-type": "command", "arg-type": "0", "ret-type": "1" },
  { name: "query-status", "meta-type": "command", "arg-type": "1", "ret-type": "2" },
  { name: "query-name", "meta-type": "command", "arg-type": "1", "ret-type": "1" },
  { name: "SHUTDOWN", "meta-type": "event", "arg-type": "2" },
  { name: "STOP", "meta-type": "event", "arg-type": "1" },
  {
    name: "blockdev-add",
    "meta-type": "command",
    "arg-type": "3",
    "ret-type": "1",
    "allow-oob": true,
  },
  {
    name: "0",
    "meta-type": "object",
    members: [
      { name: "panic", type: "10", default: null },
      { name: "shutdown", type: "11", default: null },
    ],
  },
  { name: "1", "meta-type": "object", members: [] },
  {
    name: "2",
    "meta-type": "object",
    members: [
      { name: "running", type: "bool" },
      { name: "status", type: "str" },
    ],
  },
  {
    name: "3",
    "meta-type": "object",
    members: [
      { name: "driver", type: "12" },
      { name: "node-name", type: "str", default: null },
      { name: "read-only", type: "bool", default: null },
      { name: "cache", type: "4", default: null },
    ],
    tag: "driver",
    variants: [
      { case: "file", type: "5" },
      { case: "qcow2", type: "6" },
    ],
  },
  { name: "4", "meta-type": "object", members: [{ name: "direct", type: "bool", default: null }] },
  { name: "5", "meta-type": "object", members: [{ name: "filename", type: "str" }] },
  {
    name: "6",
    "meta-type": "object",
    members: [
      { name: "file", type: "str" },
      { name: "backing", type: "7", default: null },
    ],
  },
  { name: "7", "meta-type": "alternate", members: [{ type: "3" }, { type: "str" }] },
  { name: "10", "meta-type": "enum", values: ["pause", "shutdown", "exit-failure", "none"] },
  { name: "11", "meta-type": "enum", values: ["poweroff", "pause"] },
  { name: "12", "meta-type": "enum", values: ["file", "qcow2"] },
  { name: "str", "meta-type": "builtin", "json-type": "string" },
  { name: "bool", "meta-type": "builtin", "json-type": "boolean" },
]);

suite("shell line parsing", () => {
  test("should split words at unquoted spaces and drop the quotes", () => {
    assert.deepEqual(
      tokenize(`a  b="c d" 'e f' g\\ h`).map((t) => t.text),
      ["a", "b=c d", "e f", "g h"],
    );
    assert.throws(() => tokenize(`a b="c`), /unterminated double quote in 'b="c'/);
  });

  test("should read commands with typed key=value arguments", () => {
    assert.deepEqual(parseShellLine("set-action panic=pause", schema), {
      kind: "execute",
      command: "set-action",
      args: { panic: "pause" },
    });
    assert.deepEqual(
      parseShellLine("blockdev-add driver=file read-only=on cache.direct=false", schema),
      {
        kind: "execute",
        command: "blockdev-add",
        args: { driver: "file", "read-only": true, cache: { direct: false } },
      },
    );
  });

  test("should read raw JSON, shell words and empty lines", () => {
    assert.deepEqual(parseShellLine('{"execute": "query-status"}'), {
      kind: "raw",
      value: { execute: "query-status" },
    });
    assert.deepEqual(parseShellLine("help query-status"), {
      kind: "help",
      command: "query-status",
      branch: undefined,
    });
    assert.deepEqual(parseShellLine("help blockdev-add raw"), {
      kind: "help",
      command: "blockdev-add",
      branch: "raw",
    });
    assert.deepEqual(parseShellLine("events off"), { kind: "events", show: false });
    assert.deepEqual(parseShellLine("  # a comment"), { kind: "empty" });
    assert.deepEqual(parseShellLine("exit"), { kind: "exit" });
    // `quit` is QMP's command (it stops QEMU), as in QMP and qmp-shell: not a shell word.
    assert.deepEqual(parseShellLine("quit"), { kind: "execute", command: "quit", args: {} });
    assert.throws(() => parseShellLine("{nope"), /invalid JSON/);
    assert.throws(() => parseShellLine("events maybe"), /events takes 'on' or 'off', not 'maybe'/);
  });
});

suite("shell completion", () => {
  test("should complete command names and shell words", () => {
    assert.deepEqual(completeLine("query-", schema), [["query-name", "query-status"], "query-"]);
    // A unique command name is completed with a trailing space, ready for the arguments.
    assert.deepEqual(completeLine("he", schema), [["help "], "he"]);
    assert.deepEqual(completeLine("help query-s", schema), [["query-status "], "query-s"]);
    assert.deepEqual(completeLine("quer", schema), [["query-name", "query-status"], "quer"]);
  });

  test("should complete argument names, leaving out those given", () => {
    assert.deepEqual(completeLine("set-action ", schema), [["panic=", "shutdown="], ""]);
    assert.deepEqual(completeLine("set-action panic=pause ", schema), [["shutdown="], ""]);
    assert.deepEqual(completeLine("blockdev-add c", schema), [["cache."], "c"]);
    assert.deepEqual(completeLine("blockdev-add cache.", schema), [["cache.direct="], "cache."]);
  });

  test("should complete union branch members once the tag is given", () => {
    const [withFile] = completeLine("blockdev-add driver=file f", schema);
    assert.deepEqual(withFile, ["filename="]);
    const [withQcow2] = completeLine("blockdev-add driver=qcow2 f", schema);
    assert.deepEqual(withQcow2, ["file="]);
  });

  test("should complete enum and boolean values", () => {
    assert.deepEqual(completeLine("set-action panic=p", schema), [["panic=pause "], "panic=p"]);
    assert.deepEqual(completeLine("blockdev-add read-only=", schema), [
      ["read-only=false", "read-only=true"],
      "read-only=",
    ]);
  });

  test("should describe a command from the schema", () => {
    assert.equal(
      describeCommand(schema, "set-action"),
      "set-action ARGS  ->  {}\n  [panic]: 'pause'|'shutdown'|'exit-failure'|'none'\n  [shutdown]: 'poweroff'|'pause'",
    );
    assert.equal(
      describeCommand(schema, "query-status"),
      "query-status  ->  { running: bool, status: str }",
    );
    assert.equal(describeCommand(schema, "nope"), undefined);
    assert.equal(
      describeEvent(schema, "SHUTDOWN"),
      "event SHUTDOWN\n  running: bool\n  status: str",
    );
    assert.equal(describeEvent(schema, "STOP"), "event STOP (no data)");
    assert.deepEqual(completeLine("help S", schema), [["SHUTDOWN", "STOP"], "S"]);
  });

  test("should complete the members of an alternate's object branch, and its scalar", () => {
    // `file` of the qcow2 branch is a BlockdevRef-like alternate: options, or a node name.
    const [candidates] = completeLine("blockdev-add driver=qcow2 backing", schema);
    assert.deepEqual(candidates, ["backing.", "backing="]);
    // Until its driver is given, the nested options offer every branch's members.
    assert.deepEqual(completeLine("blockdev-add driver=qcow2 backing.", schema)[0], [
      "backing.backing.",
      "backing.backing=",
      "backing.cache.",
      "backing.driver=",
      "backing.file=",
      "backing.filename=",
      "backing.node-name=",
      "backing.read-only=",
    ]);
    assert.deepEqual(completeLine("blockdev-add driver=qcow2 backing.driver=f", schema)[0], [
      "backing.driver=file ",
    ]);
    assert.deepEqual(
      completeLine("blockdev-add driver=qcow2 backing.driver=file backing.f", schema)[0],
      ["backing.filename="],
    );
  });

  test("should complete a union's branches after help COMMAND", () => {
    assert.deepEqual(completeLine("help blockdev-add q", schema), [["qcow2 "], "q"]);
    assert.deepEqual(completeLine("help set-action p", schema), [[], "p"]);
  });

  test("should describe a union by its common members and one line per branch", () => {
    assert.equal(
      describeCommand(schema, "blockdev-add"),
      [
        "blockdev-add ARGS  ->  {}",
        "  driver: 'file'|'qcow2'",
        "  [node-name]: str",
        "  [read-only]: bool",
        "  [cache]: { direct?: bool }",
        "  and per driver ('help blockdev-add DRIVER' shows one):",
        "    file: filename",
        "    qcow2: file [backing]",
        "  (allow-oob)",
      ].join("\n"),
    );
    assert.equal(
      describeCommand(schema, "blockdev-add", "qcow2"),
      [
        "blockdev-add ARGS  ->  {}",
        "  driver: 'file'|'qcow2'",
        "  [node-name]: str",
        "  [read-only]: bool",
        "  [cache]: { direct?: bool }",
        "  with driver=qcow2:",
        "    file: str",
        "    [backing]: { driver: 'file'|'qcow2', node-name?: str, read-only?: bool, cache?: { direct?: bool }, … per driver } or str",
        "  (allow-oob)",
      ].join("\n"),
    );
    assert.equal(describeCommand(schema, "blockdev-add", "vmdk"), undefined);
  });
});
