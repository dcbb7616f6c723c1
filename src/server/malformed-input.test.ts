/**
 * Malformed input is answered without building an `Error` per reply: QEMU sends one error reply
 * per rejected token (a megabyte of control characters is a million replies), and a captured
 * stack trace per reply cost far more than the reply itself (`bench/malformed.ts`).
 *
 * The count is taken by instrumenting the root of qmpkit's errors: every `QmpError` (hence every
 * `JsonStreamError`) constructed while the server answers is counted.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { QmpError } from "../base/errors.js";
import { createMemoryPair, JsonStreamDecoder } from "../wire/index.js";
import { QmpServer } from "./server.js";

/** Runs `fn` while counting `QmpError` constructions (of every subclass). */
async function countingErrors<T>(fn: () => Promise<T> | T): Promise<{ value: T; errors: number }> {
  let errors = 0;
  const base = Object.getPrototypeOf(QmpError) as ErrorConstructor;
  // A derived class's implicit constructor calls whatever its [[Prototype]] is at that moment.
  class Counting extends base {
    constructor(...args: ConstructorParameters<ErrorConstructor>) {
      super(...args);
      errors++;
    }
  }
  Object.setPrototypeOf(QmpError, Counting);
  try {
    const value = await fn();
    return { value, errors };
  } finally {
    Object.setPrototypeOf(QmpError, base);
  }
}

const CONTROL_BYTES = 2_000;
/** QEMU's reply to a control byte: the lexer's error, the byte escaped by the JSON writer. */
const REPLY = `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\\u0001'"}}\r\n`;

suite("malformed input without Error objects", () => {
  test("the instrument counts a JsonStreamError made from a decoder item", async () => {
    const [item] = new JsonStreamDecoder({ dialect: "qemu" }).push(Uint8Array.of(1));
    assert.equal(item?.kind, "error");
    const { value, errors } = await countingErrors(() =>
      item?.kind === "error" ? item.error : undefined,
    );
    assert.equal(errors, 1);
    assert.equal(value?.desc, "JSON parse error, stray '\u0001'");
    assert.equal(item?.kind === "error" ? item.error : undefined, value, "made once");
  });

  test("should decode control bytes into error items without making an Error", async () => {
    const { value: items, errors } = await countingErrors(() =>
      new JsonStreamDecoder({ dialect: "qemu" }).push(new Uint8Array(CONTROL_BYTES).fill(1)),
    );
    assert.equal(items.length, CONTROL_BYTES);
    assert.ok(
      items.every((i) => i.kind === "error" && i.desc === "JSON parse error, stray '\u0001'"),
    );
    assert.equal(errors, 0);
  });

  test("should answer every control byte with QEMU's error reply, making no Error", async () => {
    const server = new QmpServer();
    const [ours, theirs] = createMemoryPair();
    server.accept(ours);
    try {
      let text = "";
      let replies = 0;
      const want = CONTROL_BYTES + 2; // greeting, negotiation, one reply per byte
      const all = new Promise<void>((resolve) => {
        theirs.setEncoding("latin1");
        theirs.on("data", (s: string) => {
          text += s;
          replies += s.split("\n").length - 1;
          if (replies >= want) resolve();
        });
      });
      const { errors } = await countingErrors(async () => {
        theirs.write('{"execute":"qmp_capabilities"}');
        theirs.write(Buffer.alloc(CONTROL_BYTES, 0x01));
        await all;
      });
      const lines = text.split(/(?<=\n)/);
      assert.equal(lines.length, want);
      assert.equal(lines[1], '{"return": {}}\r\n');
      assert.ok(
        lines.slice(2).every((l) => l === REPLY),
        "every reply is QEMU's text",
      );
      assert.equal(errors, 0);
    } finally {
      theirs.destroy();
      await server.close();
    }
  });
});
