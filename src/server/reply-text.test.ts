import assert from "node:assert/strict";
import { suite, test } from "node:test";
import type { JsonObject, JsonValue } from "../base/json.js";
import { writeQemuJson } from "../wire/index.js";
import { successText } from "./reply-text.js";

/** The reply as the server wrote it before: the envelope object, written whole. */
function viaObject(value: JsonValue, id: JsonValue | undefined): string {
  const response: JsonObject = { return: value };
  if (id !== undefined) response.id = id;
  return `${writeQemuJson(response)}\r\n`;
}

suite("successText", () => {
  test("should give the same bytes as writing the reply object whole", () => {
    const values: JsonValue[] = [
      {},
      { status: "running", singlestep: false, running: true },
      [],
      [1, "two", null, { b: 1, a: 2 }],
      "caf\u00e9 \ud83d\ude00 \u0000",
      -0,
      0.1,
      18446744073709551615n,
      null,
      true,
    ];
    const ids: Array<JsonValue | undefined> = [
      undefined,
      "__qmpkit#1",
      7,
      -1.5,
      null,
      false,
      ["a", { x: "y" }],
      { id: 1, return: 2 },
      'we"ird\\\n\u00ff',
    ];
    for (const value of values) {
      for (const id of ids) {
        assert.equal(
          successText(value, id),
          viaObject(value, id),
          JSON.stringify([value, id], (_k, v) => (typeof v === "bigint" ? `${v}n` : v)),
        );
      }
    }
  });

  test("should print return before id as QEMU 7.2 does", () => {
    assert.equal(
      successText({ status: "running", singlestep: false, running: true }, "a"),
      '{"return": {"singlestep": false, "status": "running", "running": true}, "id": "a"}\r\n',
    );
  });

  test("should throw the writer's TypeError for a value that is not JSON", () => {
    assert.throws(() => successText({ f: (() => 1) as unknown as JsonValue }, 1), TypeError);
    assert.throws(() => successText({}, Symbol("x") as unknown as JsonValue), TypeError);
  });
});
