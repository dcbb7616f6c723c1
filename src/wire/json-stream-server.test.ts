/**
 * The `qemu` dialect's fast path (what a server reads) against its exact path: every input must
 * give the same items, the same values (bigint, -0, `__proto__` included) and the same errors,
 * however it is chunked. The exact path is the one proven against real QEMU
 * (`test/conformance/server-*.test.ts`, `json-stream.test.ts`).
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { JsonStreamDecoder, type JsonStreamItem } from "./json-stream.js";

const enc = new TextEncoder();

/** Items in a form that keeps what `deepEqual` on values could blur (-0, bigint, key order). */
function show(item: JsonStreamItem): string {
  if (item.kind === "error") return `E:${item.error.desc}`;
  const text = JSON.stringify(item.value, (_key, v: unknown) => {
    if (typeof v === "bigint") return `${v}n`;
    if (Object.is(v, -0)) return "-0";
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    return v;
  });
  return `V:${text}/${item.bytes}`;
}

function decode(input: string | Uint8Array, fastPath: boolean, cuts: number[] = []): string[] {
  const bytes = typeof input === "string" ? enc.encode(input) : input;
  const decoder = new JsonStreamDecoder({ dialect: "qemu", fastPath });
  const out: JsonStreamItem[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...decoder.push(bytes.subarray(at, cut)));
    at = cut;
  }
  out.push(...decoder.end());
  return out.map(show);
}

/** Asserts both paths agree on `input`, whole and cut at every byte. */
function assertAgree(input: string | Uint8Array): string[] {
  const bytes = typeof input === "string" ? enc.encode(input) : input;
  const exact = decode(bytes, false);
  assert.deepEqual(decode(bytes, true), exact, `whole: ${JSON.stringify(String(input))}`);
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(decode(bytes, true, [cut]), exact, `cut ${cut}: ${String(input)}`);
  }
  return exact;
}

/** How many times `JSON.parse` runs while `fn` does. */
function countNativeParses(fn: () => void): number {
  const native = JSON.parse;
  let calls = 0;
  JSON.parse = ((
    text: string,
    reviver?: (this: unknown, key: string, value: unknown) => unknown,
  ) => {
    calls++;
    return native(text, reviver);
  }) as typeof JSON.parse;
  try {
    fn();
  } finally {
    JSON.parse = native;
  }
  return calls;
}

const adversarial: string[] = [
  // Plain requests (the fast path's business).
  '{"execute":"query-status","id":"__qmpkit#1"}\n',
  '{"execute": "query-status", "id": 1}\r\n{"execute":"stop"}\r\n',
  '{"execute":"x","arguments":{"path":"unix:/tmp/a:b","n":[1,2.5,-3e-7,1E+2,1e400,true,null]}}\n',
  // Single quotes and the \' escape: QEMU's extensions, JSON.parse refuses them.
  "{'execute': 'query-status'}\n",
  '{"execute": "it\\\'s"}\n',
  "{\"execute\": 'mixed', 'id': \"q\"}\r\n",
  '{"a": "don\'t"}\n',
  // Duplicate keys, at the top, nested, in arrays, with colons in strings to confuse counting.
  '{"execute": "a", "execute": "b"}\n',
  '{"execute": "x", "arguments": {"k": 1, "k": 2}}\n',
  '{"a": [{"x": 1}, {"y": 2, "y": 3}]}\n',
  '{"a": "1:2", "b": "3:4", "a": "5"}\n',
  '{"a:b": 1, "a:b": 2}\n',
  '{"__proto__": 1, "__proto__": 2}\n',
  '{"__proto__": {"x": 1}, "y": "\\":"}\n',
  '{"1": 1, "01": 2, "1": 3}\n',
  '{"a": 1, "b": {"a": 1}}\n',
  '{"s": "\\\\", "t": ":", "u": "\\":\\""}\n',
  // Numbers QEMU reads differently.
  '{"n": -0}\n',
  '{"n": -0.0, "m": 0, "o": -0e5}\n',
  '{"id": 18446744073709551615, "n": -9223372036854775808, "m": 9223372036854775807}\n',
  '{"id": 9007199254740993, "f": 1234567890123456789.5, "g": 123456789012345}\n',
  '{"id": 18446744073709551616, "e": 1e0000000000000000001}\n',
  // Escapes: surrogates, noncharacters, \u0000, bad escapes.
  '{"s": "\\uD83D\\uDE00"}\n',
  '{"s": "\\uD83D"}\n',
  '{"s": "\\uDE00x"}\n',
  '{"s": "\\uFFFE", "t": "\\uFDD0", "u": "\\ufdef"}\n',
  '{"s": "\\u0000\\u00e9\\u4E2D"}\n',
  '{"s": "\\q"}\n',
  '{"s": "\\x41"}\n',
  // Raw bytes: control characters, DEL, non-ASCII, invalid UTF-8.
  '{"s": "tab\there"}\n',
  '{"s": "nul\u0000"}\n{"ok": 1}\n',
  '{"s": "del\u007f"}\n',
  '{"s": "caf\u00e9 \u{1F600}"}\n',
  '{"s": "\uFDD0"}\n',
  // Not one object per line: framing must follow the braces, not the lines.
  '{"a": 1}{"b": 2}\n',
  '{"a": 1} {"b": 2}\n',
  '{"a":\n 1}\n{"b": 2}\n',
  '[1, 2]\n"x"\n3\ntrue\n',
  '{"a": 1}}\n{"b": 2}\n',
  '}{"a": 1}\n',
  '{"a": [}\n{"b": 1}\n',
  '{"a": 1\n',
  '{"a": tru}\n{"a": nul}\n{"a": TRUE}\n',
  '{"a": 01}\n{"a": 1.}\n{"a": .5}\n{"a": +1}\n',
  '{"execute": @}\r\n{"execute": "cont"}\r\n',
  '   {"a": 1}   \t\r\n\r\n\n',
  '{}\n{"":""}\n{"a":{}}\n',
];

suite("JsonStreamDecoder qemu dialect: fast path against exact path", () => {
  test("should take the fast path (JSON.parse) for a plain request, and never on the exact path", () => {
    const line = enc.encode('{"execute":"query-status","id":"__qmpkit#1"}\n');
    assert.equal(
      countNativeParses(() => new JsonStreamDecoder({ dialect: "qemu" }).push(line)),
      1,
    );
    assert.equal(
      countNativeParses(() =>
        new JsonStreamDecoder({ dialect: "qemu", fastPath: false }).push(line),
      ),
      0,
    );
  });

  test("should leave lines that cannot be proven alike to the exact path before parsing", () => {
    // Non-ASCII, -0, not an object, long integers, risky escapes: not even tried natively.
    for (const text of [
      '{"s": "caf\u00e9"}\n',
      '{"n": -0}\n',
      "[1]\n",
      '{"id": 12345678901234567}\n',
      '{"s": "\\uD800"}\n',
    ]) {
      const decoder = new JsonStreamDecoder({ dialect: "qemu" });
      assert.equal(
        countNativeParses(() => decoder.push(enc.encode(text))),
        0,
        text,
      );
    }
  });

  test("should give the same items on both paths for adversarial inputs, however chunked", () => {
    for (const input of adversarial) assertAgree(input);
  });

  test("should report duplicate keys as QEMU does, whichever path", () => {
    assert.deepEqual(assertAgree('{"execute": "a", "id": 1, "execute": "b"}\n'), [
      "E:JSON parse error, duplicate key",
    ]);
    assert.deepEqual(assertAgree('{"a": "x:y", "b": {"c": 1, "c": 1}}\n{"ok": true}\n'), [
      "E:JSON parse error, duplicate key",
      'V:{"ok":true}/12',
    ]);
  });

  test("should read -0 and big integers as QEMU does, whichever path", () => {
    assert.deepEqual(assertAgree('{"n": -0, "f": -0.0}\n'), ['V:{"n":0,"f":"-0"}/20']);
    assert.deepEqual(assertAgree('{"id": 18446744073709551615}\n'), [
      'V:{"id":"18446744073709551615n"}/28',
    ]);
  });

  test("should apply the nesting and token limits on both paths", () => {
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}\n`;
    assert.deepEqual(decode(deep(1024), true), decode(deep(1024), false));
    assert.equal(decode(deep(1024), true)[0]!.startsWith("V:"), true);
    assert.deepEqual(decode(deep(1025), true), decode(deep(1025), false));
    assert.equal(decode(deep(1025), true)[0], "E:JSON nesting depth limit exceeded");
    for (const options of [{ maxNesting: 3 }, { maxTokens: 9 }, { maxMessageBytes: 20 }]) {
      for (const text of ['{"a": {"b": {"c": 1}}}\n', '{"a": [1, 2, 3], "b": 2}\n']) {
        const run = (fastPath: boolean) => {
          const d = new JsonStreamDecoder({ dialect: "qemu", fastPath, ...options });
          return [...d.push(enc.encode(text)), ...d.end()].map(show);
        };
        assert.deepEqual(run(true), run(false), `${JSON.stringify(options)} ${text}`);
      }
    }
  });

  test("should agree with the exact path on random requests, however chunked", () => {
    // Seeded, so a failure reproduces.
    let seed = 72221;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const scalars = [
      "0",
      "-0",
      "1",
      "-12",
      "2.5",
      "1e400",
      "9007199254740993",
      "-9223372036854775809",
      "true",
      "null",
      '"x"',
      '"a:b"',
      '"\\":"',
      "'sq'",
      '"\\\'"',
      '"\\u00e9"',
      '"\\uDC00"',
      '"\\uFFFF"',
      '"\u00e9"',
      '"\\\\"',
      '"\t"',
      "@",
    ];
    const keys = ['"a"', '"b"', '"a:b"', '"__proto__"', "'a'", '"1"'];
    const value = (depth: number): string => {
      const r = random(depth > 3 ? 1 : 4);
      if (r === 0) return scalars[random(scalars.length)]!;
      const n = random(4);
      const items = Array.from({ length: n }, () =>
        r === 1 ? value(depth + 1) : `${keys[random(keys.length)]}: ${value(depth + 1)}`,
      );
      return r === 1 ? `[${items.join(", ")}]` : `{${items.join(random(2) ? ", " : ",")}}`;
    };
    for (let round = 0; round < 500; round++) {
      const lines = Array.from(
        { length: 1 + random(5) },
        () => `{"execute": "x", "arguments": ${value(1)}, "id": ${value(2)}}`,
      );
      const input = enc.encode(`${lines.join(random(2) ? "\n" : "\r\n")}\n`);
      const exact = decode(input, false);
      assert.deepEqual(decode(input, true), exact, new TextDecoder().decode(input));
      const cuts = [...new Set(Array.from({ length: random(5) }, () => random(input.length)))].sort(
        (x, y) => x - y,
      );
      assert.deepEqual(
        decode(input, true, cuts),
        exact,
        `${cuts} ${new TextDecoder().decode(input)}`,
      );
    }
  });
});
