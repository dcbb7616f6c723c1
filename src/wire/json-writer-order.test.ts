/**
 * The writer's shortcut for objects whose keys are already in QDict order, against the general
 * ordering (`qdictKeyOrder`), on random objects with colliding buckets.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import type { JsonObject, JsonValue } from "../base/json.js";
import { qdictBucket, qdictKeyOrder, quoteQemuString, writeQemuJson } from "./json-writer.js";

/** The compact form written the slow, obvious way: every object through `qdictKeyOrder`. */
function reference(value: JsonValue): string {
  if (typeof value === "string") return quoteQemuString(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return `[${value.map(reference).join(", ")}]`;
  const object = value as JsonObject;
  const keys = qdictKeyOrder(Object.keys(object)).filter((k) => object[k] !== undefined);
  return `{${keys.map((k) => `${quoteQemuString(k)}: ${reference(object[k]!)}`).join(", ")}}`;
}

suite("writeQemuJson member order", () => {
  test("should print same-bucket keys most recent first, and ascending buckets as inserted", () => {
    // "status" and "singlestep" share bucket 202; "running" is in 246.
    assert.equal(qdictBucket("status"), qdictBucket("singlestep"));
    assert.equal(
      writeQemuJson({ status: "running", singlestep: false, running: true }),
      '{"singlestep": false, "status": "running", "running": true}',
    );
    assert.equal(
      writeQemuJson({ singlestep: false, status: "running", running: true }),
      '{"status": "running", "singlestep": false, "running": true}',
    );
    // "return" (401) before "id" (486), whichever was inserted first.
    assert.equal(writeQemuJson({ return: {}, id: 1 }), '{"return": {}, "id": 1}');
    assert.equal(writeQemuJson({ id: 1, return: {} }), '{"return": {}, "id": 1}');
  });

  test("should order large objects (not remembered) and repeated key sets alike", () => {
    const keys = Array.from({ length: 40 }, (_, i) => `key-${(i * 7) % 40}`);
    const big: JsonObject = {};
    for (const k of keys) big[k] = k.length;
    // Twice each: the second time a remembered order (or none, past 32 keys) is used.
    for (const v of [big, big, { a: 1, b: 2 }, { a: 1, b: 2 }, { a: 1, c: 3 }, { a: 1 }, {}]) {
      assert.equal(writeQemuJson(v), reference(v));
    }
    // A member whose value is undefined is left out, whether or not the order was remembered.
    const sparse = { a: 1, b: undefined, c: 3 } as unknown as JsonObject;
    assert.equal(writeQemuJson(sparse), reference(sparse));
    assert.equal(writeQemuJson(sparse), reference(sparse));
  });

  test("should order random objects exactly as qdictKeyOrder does", () => {
    let seed = 4242;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    // Few distinct keys, so that buckets collide and orders repeat (the key cache is exercised).
    const names = ["status", "singlestep", "running", "id", "return", "a", "b", "k1", "k2", "é"];
    const value = (depth: number): JsonValue => {
      const r = random(depth > 2 ? 2 : 4);
      if (r === 0) return random(100) - 50;
      if (r === 1) return names[random(names.length)]!;
      if (r === 2) return Array.from({ length: random(3) }, () => value(depth + 1));
      const object: JsonObject = {};
      for (let i = random(6); i > 0; i--) object[names[random(names.length)]!] = value(depth + 1);
      return object;
    };
    for (let round = 0; round < 2000; round++) {
      const v = value(0);
      assert.equal(writeQemuJson(v), reference(v), JSON.stringify(v));
    }
  });
});
