import assert from "node:assert/strict";
import { suite, test } from "node:test";
import type { JsonObject } from "../base/json.js";
import { writeCompactJson } from "../wire/index.js";
import { ID_PREFIX } from "./options.js";
import { requestText } from "./request-text.js";

/** What the client sent before the envelope was put together by hand. */
function viaObject(name: string, args: JsonObject | undefined, seq: number, oob: boolean): string {
  const message: JsonObject = oob ? { "exec-oob": name } : { execute: name };
  if (args !== undefined) message.arguments = args;
  message.id = `${ID_PREFIX}${seq}`;
  return `${writeCompactJson(message)}\n`;
}

suite("requestText", () => {
  test("should give the same bytes as serializing the request object whole", () => {
    const cases: Array<[string, JsonObject | undefined, number, boolean]> = [
      ["query-status", undefined, 1, false],
      ["query-status", undefined, 2, false],
      ["qmp_capabilities", { enable: ["oob"] }, 0, false],
      ["migrate-pause", {}, 17, true],
      ['we"ird\\name\u00e9\n', { "k\u0000": "\ud800", n: -0, f: 1.5 }, 123456789, false],
      ["big", { size: 18446744073709551615n, list: [1n, null, "x"], o: { a: 2n } }, 3, false],
      ["skip", { gone: undefined, kept: 1 } as unknown as JsonObject, 4, false],
    ];
    for (const [name, args, seq, oob] of cases) {
      assert.equal(requestText(name, args, seq, oob), viaObject(name, args, seq, oob), name);
    }
  });
});
