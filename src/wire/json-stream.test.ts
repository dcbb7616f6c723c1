import assert from "node:assert/strict";
import { suite, test } from "node:test";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  type JsonDialect,
  JsonStreamDecoder,
  type JsonStreamDecoderOptions,
  type JsonStreamItem,
} from "./json-stream.js";
import { writeQemuJson } from "./json-writer.js";

const enc = new TextEncoder();

function bytesOf(input: string | Uint8Array): Uint8Array {
  return typeof input === "string" ? enc.encode(input) : input;
}

/** `V:<value as QEMU prints it>` or `E:<desc>`. */
function show(item: JsonStreamItem): string {
  return item.kind === "value" ? `V:${writeQemuJson(item.value)}` : `E:${item.error.desc}`;
}

interface Path {
  name: string;
  options: JsonStreamDecoderOptions;
}
const qemuPath: Path = { name: "qemu", options: { dialect: "qemu" } };
const clientFast: Path = { name: "client fast", options: { dialect: "client" } };
const clientExact: Path = { name: "client exact", options: { dialect: "client", fastPath: false } };
const allPaths = [qemuPath, clientFast, clientExact];

function decode(
  input: string | Uint8Array,
  options: JsonStreamDecoderOptions = { dialect: "qemu" },
  chunks: number[] = [],
): string[] {
  const bytes = bytesOf(input);
  const decoder = new JsonStreamDecoder(options);
  const out: JsonStreamItem[] = [];
  let at = 0;
  for (const cut of [...chunks, bytes.length]) {
    out.push(...decoder.push(bytes.subarray(at, cut)));
    at = cut;
  }
  out.push(...decoder.end());
  return out.map(show);
}

function decodeAs(dialect: JsonDialect, input: string | Uint8Array): string[] {
  return decode(input, { dialect });
}

/** Inputs whose framing and errors must not depend on chunking or on the path taken. */
const corpus: (string | Uint8Array)[] = [
  '{"execute": "query-status"}\r\n{"execute":"stop","id":1}{"return": {}}',
  '{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n',
  '{"execute": @}\r\n{"execute": "cont"}\r\n',
  '"hello" 123 true null -1.5e3 []\n',
  '{"a": "caf\u00e9 \u{1F600} \u4e2d"}\r\n{"b": "\\u00e9\\uD83D\\uDE00"}\r\n',
  '{"id": 18446744073709551615, "n": -9223372036854775808, "big": 1e400, "z": -0}\r\n',
  "{'execute': 'x', 'id': 'it\\'s'}\n",
  '{"a":\r\n  [1,\r\n   2]}\r\n{"b": 3}\r\n',
  ']]\r\n{"a": 1, "a": 2}\r\n\u0001{"x": "\\q"}\r\n',
  '{"return": inf}\r\n{"return": -inf, "id": 2}\r\n{"return": nan}\r\n{"return": 1}\r\n',
  Uint8Array.from([...enc.encode('{"s": "'), 0xff, ...enc.encode('"}\r\n{"t": 1}\r\n')]),
  Uint8Array.from([
    ...enc.encode('{"s": "'),
    0xed,
    0xa0,
    0x80,
    ...enc.encode('"}\r\n{"t": 2}\r\n'),
  ]),
  Uint8Array.from([...enc.encode('{"s": "'), 0xef, 0xbf, 0xbe, ...enc.encode('"}\r\n')]),
  '{"deep": [[[[[[[[]]]]]]]], "u": "\\u0000"}\n{"x": 1}',
  '{"a": 1}\r\n{"b": \n',
  "01 -01 1. 1e 1e+ - .5 TRUE %d tru\n",
  '{"k": "tab\there"}\r\n{"ok": true}\r\n',
];

suite("JsonStreamDecoder", () => {
  test("should frame messages back to back, with or without \\r\\n between them", () => {
    for (const path of allPaths) {
      assert.deepEqual(
        decode('{"a": 1}{"b": 2}\r\n{"c": 3}\n[4]"five"', path.options),
        ['V:{"a": 1}', 'V:{"b": 2}', 'V:{"c": 3}', "V:[4]", 'V:"five"'],
        path.name,
      );
    }
  });

  test("should give the same items for every split point and for byte-by-byte input", () => {
    for (const input of corpus) {
      const bytes = bytesOf(input);
      for (const path of allPaths) {
        const whole = decode(bytes, path.options);
        for (let cut = 1; cut < bytes.length; cut++) {
          assert.deepEqual(decode(bytes, path.options, [cut]), whole, `${path.name} cut ${cut}`);
        }
        const singles = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
        assert.deepEqual(decode(bytes, path.options, singles), whole, `${path.name} bytewise`);
      }
    }
  });

  test("should give the same items on the fast and the exact client path", () => {
    // Long integers at every alignment (the fast path probes every 16th character).
    const numbers = Array.from({ length: 17 }, (_, k) => {
      const pad = " ".repeat(k);
      return `[${pad}9007199254740993, ${pad}-9223372036854775807, 0.12345678901234567890, "x${pad}12345678901234567", 123456789012345, 1e16]\r\n`;
    }).join("");
    for (const input of [...corpus, numbers]) {
      assert.deepEqual(decode(input, clientFast.options), decode(input, clientExact.options));
    }
  });

  test("should agree between the restated parser and the native one on valid messages", () => {
    // The client's exact path hands plain messages to JSON.parse; the qemu dialect always uses
    // the restated parser. Without duplicate keys or -0, both must give the same values.
    const input =
      '{"a": [1, 2.5, -3e-7, 1e400, true, false, null, "x\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\uD83D\\uDE00"], ' +
      '"b": {"c": {}, "d": []}, "e": 18446744073709551615, "f": -9223372036854775808}\n' +
      "{'sq': 'it\\'s'}\n" +
      '"caf\u00e9"\n[12, 34]\n' +
      // Plain JSON: the native path.
      '{"n": [0, -1, 2.5, -3e-7, 1E+2, 1e400, 123456789012345, true, null], ' +
      '"s": "x\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\u4E2D", "o": {"c": {}, "d": [[]]}}\n';
    const restated = decode(input, qemuPath.options);
    assert.equal(restated.length, 5);
    assert.deepEqual(decode(input, clientExact.options), restated);
    assert.deepEqual(decode(input, clientFast.options), restated);
  });

  test("should agree with itself on random input, however chunked and whichever path", () => {
    // Seeded, so a failure reproduces: fragments of valid and broken JSON glued at random.
    let seed = 20221213;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const fragments: (string | number[])[] = [
      "{",
      "}",
      "[",
      "]",
      ",",
      ":",
      " ",
      "\r\n",
      "\n",
      '"a"',
      '"key"',
      "'sq'",
      '"\\u00e9"',
      '"\\uD800"',
      '"\\uD83D\\uDE00"',
      '"\\\'"',
      '"\\x"',
      "1",
      "-0",
      "0.5",
      "1e400",
      "-7",
      "12345678901234567890",
      "9007199254740993",
      "true",
      "null",
      "nul",
      "inf",
      "-nan",
      "@",
      "01",
      "\u00e9",
      '"\u00e9"',
      [0x01],
      [0xff],
      [0x80],
      [0xc3],
      [0xa9],
      [0xef, 0xbf, 0xbe],
      '{"a": 1}',
      '{"a": 1, "a": 2}',
      '[1, [2, {"b": null}]]',
      '"tab\there"',
    ];
    const scalars = [
      "1",
      "-0",
      "0.5",
      "-2.5e-3",
      "1e400",
      "12345678901234567890",
      "9007199254740993",
      "-9223372036854775808",
      "123456789012345",
      "true",
      "false",
      "null",
      '"s"',
      "'sq'",
      '"\\u00e9\\n"',
      '"\\uD83D\\uDE00"',
      '"\\uFFFF"',
      '"\\\'"',
      '"\u00e9"',
      '"x\\"y"',
    ];
    const value = (depth: number): string => {
      const r = random(depth > 3 ? 1 : 4);
      if (r === 0) return scalars[random(scalars.length)]!;
      const n = random(4);
      const items = Array.from({ length: n }, (_, i) =>
        r === 1 ? value(depth + 1) : `"k${random(3) === 0 ? 0 : i}": ${value(depth + 1)}`,
      );
      return r === 1 ? `[${items.join(", ")}]` : `{${items.join(random(2) ? ", " : ",")}}`;
    };
    const separators = ["\r\n", "\n", "", " ", "\r\n\r\n"];
    for (let round = 0; round < 400; round++) {
      const parts: number[] = [];
      const count = 1 + random(8);
      for (let k = 0; k < count; k++) {
        if (random(4) > 0) parts.push(...enc.encode(value(0)));
        else {
          for (let j = random(4); j >= 0; j--) {
            const f = fragments[random(fragments.length)]!;
            parts.push(...(typeof f === "string" ? enc.encode(f) : f));
          }
        }
        parts.push(...enc.encode(separators[random(separators.length)]!));
      }
      const input = Uint8Array.from(parts);
      const cuts = [
        ...new Set(Array.from({ length: random(6) }, () => random(input.length + 1))),
      ].sort((x, y) => x - y);
      const qemu = decode(input, qemuPath.options);
      assert.deepEqual(decode(input, qemuPath.options, cuts), qemu, `qemu ${input}`);
      const client = decode(input, clientExact.options);
      assert.deepEqual(decode(input, clientExact.options, cuts), client, `client exact ${input}`);
      assert.deepEqual(decode(input, clientFast.options), client, `client fast ${input}`);
      assert.deepEqual(decode(input, clientFast.options, cuts), client, `client fast cut ${input}`);
    }
  });

  test("should decode UTF-8 split inside a sequence", () => {
    const bytes = enc.encode('{"s": "\u00e9\u{1F600}\u4e2d"}\r\n');
    const start = bytes.indexOf(0xc3);
    for (const path of allPaths) {
      for (let cut = start + 1; cut < start + 9; cut++) {
        assert.deepEqual(decode(bytes, path.options, [cut]), [
          'V:{"s": "\\u00E9\\uD83D\\uDE00\\u4E2D"}',
        ]);
      }
    }
  });

  test("should reject a byte-order mark at the start of a chunk on every path, as QEMU's lexer does", () => {
    const bom = Uint8Array.of(0xef, 0xbb, 0xbf);
    const line = enc.encode('{"execute": "query-status"}\n');
    const input = new Uint8Array([...bom, ...line]);
    for (const dialect of ["qemu", "client"] as const) {
      const exact = decode(input, { dialect, fastPath: false });
      assert.equal(exact.length, 2, exact.join(" | "));
      assert.match(exact[0]!, /^E:/);
      assert.deepEqual(decode(input, { dialect }), exact, dialect);
      // Also when the mark starts a later chunk, after a whole line.
      const twice = new Uint8Array([...line, ...input]);
      assert.deepEqual(decode(twice, { dialect }, [line.length]), [exact[1], ...exact], dialect);
    }
  });

  test("should deliver a number or word only once the next byte ends it", () => {
    for (const path of allPaths) {
      const decoder = new JsonStreamDecoder(path.options);
      assert.deepEqual(decoder.push(enc.encode("123")), []);
      assert.deepEqual(decoder.push(enc.encode("4")).map(show), []);
      assert.deepEqual(decoder.push(enc.encode(" tru")).map(show), ["V:1234"]);
      assert.deepEqual(decoder.push(enc.encode("e\n")).map(show), ["V:true"]);
    }
  });

  test("should report lexical errors as QEMU does, with recovery", () => {
    const cases: [string | Uint8Array, string[]][] = [
      ['{"execute": @}', ["E:JSON parse error, stray '@'", "E:JSON parse error, expecting value"]],
      ["\u0001", ["E:JSON parse error, stray '\u0001'"]],
      [Uint8Array.of(0xff), ["E:JSON parse error, stray '\ufffd'"]],
      [Uint8Array.of(0x00, 0x0a), ["E:JSON parse error, stray ''"]],
      ["01\n", ["E:JSON parse error, stray '01'"]],
      ["-01\n", ["E:JSON parse error, stray '-01'"]],
      ["1.x\n", ["E:JSON parse error, stray '1.x'"]],
      ["1e+\n", ["E:JSON parse error, stray '1e+\n'"]],
      ['"tab\there"\n', ["E:JSON parse error, stray '\"tab\t'"]],
      ["TRUE\n", ["E:JSON parse error, stray 'T'"]],
      // Recovery skips up to a structural character, which then starts afresh.
      ["@abc]\n", ["E:JSON parse error, stray '@'", "E:JSON parse error, expecting value"]],
      ["@\u0001", ["E:JSON parse error, stray '@'", "E:JSON parse error, stray '\u0001'"]],
    ];
    for (const [input, expected] of cases) {
      for (const path of allPaths)
        assert.deepEqual(decode(input, path.options), expected, String(input));
    }
  });

  test("should report parser errors with QEMU's texts, only the first per message", () => {
    const cases: [string | Uint8Array, string][] = [
      ["]", "expecting value"],
      ["}", "expecting value"],
      ["[1,]", "expecting value"],
      ['{"a":}', "expecting value"],
      ["{,}", "expecting value"],
      ['{"a" 1}', "missing : in object pair"],
      ['{"a":1 "b":2}', "expected separator in dict"],
      ["[1 2]", "expected separator in list"],
      ['{"a": [1e5 5]}', "expected separator in list"],
      ['{"a": "x" "b"}', "expected separator in dict"],
      ["{1:2}", "key is not a string in object"],
      ["[}", "expecting value"],
      ['{"a": foo}', "invalid keyword 'foo'"],
      ['{"a": "\\x"}', "invalid escape sequence in string"],
      ['{"a": "\\x", "b": foo}', "invalid escape sequence in string"],
      ['{"a": "\\uD800"}', "\\uD800 is not a valid Unicode character"],
      ['{"a": "\\uDC00"}', "\\uDC00 is not a valid Unicode character"],
      ['{"a": "\\uD800\\u0041"}', "\\uD800 is not a valid Unicode character"],
      ['{"a": "\\uDBFF\\uDFFF"}', "\\uDBFF\\uDFFF is not a valid Unicode character"],
      ['{"a": "\\uFFFF"}', "\\uFFFF is not a valid Unicode character"],
      ['{"a": "\\uFDD0"}', "\\uFDD0 is not a valid Unicode character"],
      ['{"a": "\\u12G4"}', "\\u12G4 is not a valid Unicode character"],
      ['{"a": "\\u12"}', '\\u12" is not a valid Unicode character'],
      [Uint8Array.from([0x22, 0xc3, 0x28, 0x22]), "invalid UTF-8 sequence in string"],
      [Uint8Array.from([0x22, 0x80, 0x22]), "invalid UTF-8 sequence in string"],
      [Uint8Array.from([0x22, 0xc1, 0x81, 0x22]), "invalid UTF-8 sequence in string"],
      [Uint8Array.from([0x22, 0xe0, 0x80, 0x80, 0x22]), "invalid UTF-8 sequence in string"],
      [Uint8Array.from([0x22, 0xed, 0xa0, 0x80, 0x22]), "invalid UTF-8 sequence in string"],
      [Uint8Array.from([0x22, 0xf4, 0x90, 0x80, 0x80, 0x22]), "invalid UTF-8 sequence in string"],
      [Uint8Array.from([0x22, 0xef, 0xbf, 0xbf, 0x22]), "invalid UTF-8 sequence in string"],
      [Uint8Array.from([0x22, 0xef, 0xb7, 0x90, 0x22]), "invalid UTF-8 sequence in string"],
      [Uint8Array.from([0x22, 0xf0, 0x9f, 0xbf, 0xbe, 0x22]), "invalid UTF-8 sequence in string"],
    ];
    for (const [input, desc] of cases) {
      for (const path of allPaths) {
        assert.deepEqual(
          decode(input, path.options),
          [`E:JSON parse error, ${desc}`],
          String(input),
        );
      }
    }
  });

  test("should reject duplicate keys in the qemu dialect and keep the last in the client one", () => {
    assert.deepEqual(decodeAs("qemu", '{"a": 1, "b": 2, "a": 3}'), [
      "E:JSON parse error, duplicate key",
    ]);
    for (const path of [clientFast, clientExact]) {
      const [item] = new JsonStreamDecoder(path.options).push(
        enc.encode('{"a": 1, "b": 2, "a": 3}\n'),
      );
      assert.ok(item?.kind === "value");
      assert.deepEqual(Object.entries(item.value as object), [
        ["a", 3],
        ["b", 2],
      ]);
    }
  });

  test("should accept QEMU's extensions: single quotes and \\'", () => {
    for (const path of allPaths) {
      const [item] = new JsonStreamDecoder(path.options).push(
        enc.encode(`{'execute': 'x"y', "id": 'it\\'s', "z": "\\'"}\n`),
      );
      assert.ok(item?.kind === "value");
      assert.deepEqual(item.value, { execute: 'x"y', id: "it's", z: "'" });
    }
  });

  test("should accept modified UTF-8 (C0 80 is U+0000) and the escape \\u0000", () => {
    for (const path of allPaths) {
      const items = new JsonStreamDecoder(path.options).push(
        Uint8Array.from([0x5b, 0x22, 0x61, 0xc0, 0x80, 0x22, 0x2c, ...enc.encode('"\\u0000"]\n')]),
      );
      assert.deepEqual(
        items.map((i) => (i.kind === "value" ? i.value : i.error.desc)),
        [["a\u0000", "\u0000"]],
      );
    }
  });

  test("should keep integers exact as QEMU does: int64, uint64, then double", () => {
    for (const path of allPaths) {
      const [item] = new JsonStreamDecoder(path.options).push(
        enc.encode(
          "[9007199254740991, 9007199254740993, -9223372036854775808, -9223372036854775809, " +
            "18446744073709551615, 18446744073709551616, -0, -0.0, 1.0, 2.5, 123456789012345]\n",
        ),
      );
      assert.ok(item?.kind === "value");
      assert.deepEqual(item.value, [
        9007199254740991,
        9007199254740993n,
        -9223372036854775808n,
        -(2 ** 63), // below int64: a double
        18446744073709551615n,
        2 ** 64, // beyond uint64: a double
        path === qemuPath ? 0 : -0,
        -0,
        1,
        2.5,
        123456789012345,
      ]);
      // QEMU reads `-0` as the integer 0; a client reads QEMU's `-0` as the double it printed.
      assert.ok(Object.is((item.value as number[])[6], path === qemuPath ? 0 : -0), path.name);
      assert.ok(Object.is((item.value as number[])[7], -0), `${path.name}: float -0.0 stays -0`);
    }
  });

  test("should give one error per message for QEMU's non-finite numbers in the client dialect", () => {
    const input =
      '{"return": inf}\r\n{"return": [1, -inf]}\r\n{"return": -nan, "id": 1}\r\n{"return": 7}\r\n';
    for (const path of [clientFast, clientExact]) {
      assert.deepEqual(decode(input, path.options), [
        "E:JSON parse error, invalid keyword 'inf'",
        "E:JSON parse error, invalid keyword '-inf'",
        "E:JSON parse error, invalid keyword '-nan'",
        'V:{"return": 7}',
      ]);
    }
    // QEMU's own parser splits the same bytes differently (no signed words there).
    assert.deepEqual(decodeAs("qemu", "-x\n"), ["E:JSON parse error, stray '-x'"]);
    assert.deepEqual(decodeAs("qemu", '{"return": -inf}\r\n{"return": 7}\r\n'), [
      "E:JSON parse error, stray '-i'",
      "E:JSON parse error, expecting value",
      'V:{"return": 7}',
    ]);
  });

  test("should accept nesting depth 1024 and reject 1025, then lex the rest afresh", () => {
    for (const path of allPaths) {
      const ok = decode(`${"[".repeat(1024)}${"]".repeat(1024)}\n`, path.options);
      assert.equal(ok.length, 1);
      assert.ok(ok[0]!.startsWith("V:[[["));
      const bad = decode(`${"[".repeat(1025)}${"]".repeat(1025)}\n{"a": 1}\n`, path.options);
      assert.deepEqual(bad, [
        "E:JSON nesting depth limit exceeded",
        ...Array<string>(1025).fill("E:JSON parse error, expecting value"),
        'V:{"a": 1}',
      ]);
      const objects = decode(`${'{"a":'.repeat(1025)}1${"}".repeat(1025)}\n`, path.options);
      assert.equal(objects[0], "E:JSON nesting depth limit exceeded");
    }
  });

  test("should apply the token count limit (2 Mi tokens) and recover", () => {
    // `[` + 1 Mi times `1,` + `1]` is 2 Mi + 2 tokens: the 2 Mi + 1st breaks the limit.
    const input = `[${"1,".repeat(1024 * 1024)}1]\n{"b": 1}\n`;
    for (const path of [qemuPath, clientFast]) {
      assert.deepEqual(decode(input, path.options), [
        "E:JSON token count limit exceeded",
        "V:1",
        "E:JSON parse error, expecting value",
        'V:{"b": 1}',
      ]);
    }
    const fits = `[${"1,".repeat(1024 * 1024 - 2)}[]]\n`; // exactly 2 Mi tokens
    assert.equal(decode(fits, clientFast.options)[0]?.slice(0, 5), "V:[1,");
  });

  test("should apply the message size limit to the tokens, whitespace not counted", () => {
    const options = { maxMessageBytes: 16 };
    for (const path of allPaths) {
      const o = { ...path.options, ...options };
      // 15 bytes of tokens fit (size + 1 must not exceed the limit); 16 do not.
      assert.deepEqual(decode('{"abcdefghij":1}   \n', o), ["E:JSON token size limit exceeded"]);
      assert.deepEqual(decode('{"abcdefghi":1}\n', o), ['V:{"abcdefghi": 1}']);
      assert.deepEqual(decode('{ "abcdefghi" :  1 }\n', o), ['V:{"abcdefghi": 1}']);
    }
  });

  test("should cut a token that outgrows the limit and lex what follows afresh", () => {
    for (const path of allPaths) {
      const o = { ...path.options, maxMessageBytes: 8 };
      // The string is cut after 9 bytes (`"abcdefgh`); `ij"` then lexes as a word and a new
      // string that the newline breaks.
      assert.deepEqual(decode('"abcdefghij"\n{"a":1}\n', o), [
        "E:JSON token size limit exceeded",
        "E:JSON parse error, invalid keyword 'ij'",
        "E:JSON parse error, stray '\"\n'",
        'V:{"a": 1}',
      ]);
    }
  });

  test("should drop an oversized message as it streams, holding no more than the limit", () => {
    const limit = 1024 * 1024;
    for (const path of allPaths) {
      const decoder = new JsonStreamDecoder({ ...path.options, maxMessageBytes: limit });
      const items: JsonStreamItem[] = [...decoder.push(enc.encode('{"blob": "'))];
      const piece = new Uint8Array(64 * 1024).fill(0x61);
      for (let i = 0; i < 64; i++) {
        items.push(...decoder.push(piece));
        assert.ok(
          decoder.pendingBytes <= limit + piece.length,
          `${path.name}: ${decoder.pendingBytes}`,
        );
      }
      items.push(...decoder.push(enc.encode('"}\n{"next": 1}\n')));
      const shown = items.map(show);
      assert.equal(shown[0], "E:JSON token size limit exceeded");
      assert.equal(shown.at(-1), 'V:{"next": 1}');
    }
  });

  test("should enforce QEMU's default 64 MiB limit", () => {
    const decoder = new JsonStreamDecoder({ dialect: "client" });
    const piece = new Uint8Array(4 * 1024 * 1024).fill(0x61);
    const items: JsonStreamItem[] = [...decoder.push(enc.encode('"'))];
    for (let sent = 0; sent <= DEFAULT_MAX_MESSAGE_BYTES; sent += piece.length)
      items.push(...decoder.push(piece));
    assert.equal(items.map(show)[0], "E:JSON token size limit exceeded");
    assert.ok(decoder.pendingBytes <= DEFAULT_MAX_MESSAGE_BYTES + piece.length);
  });

  test("should flush at end of input as QEMU does", () => {
    for (const path of allPaths) {
      assert.deepEqual(decode("42", path.options), ["V:42"]);
      assert.deepEqual(decode("nul", path.options), ["E:JSON parse error, invalid keyword 'nul'"]);
      assert.deepEqual(decode('{"a": 1', path.options), ["E:JSON parse error, premature EOI"]);
      assert.deepEqual(decode('{"a": "x', path.options), ["E:JSON parse error, stray '\"x'"]);
      assert.deepEqual(decode("-", path.options), ["E:JSON parse error, stray '-'"]);
    }
  });

  test("should count a message's bytes without the whitespace around it", () => {
    for (const path of allPaths) {
      const items = new JsonStreamDecoder(path.options).push(enc.encode('  {"a": "\u00e9"}\r\n7 '));
      assert.deepEqual(
        items.map((i) => (i.kind === "value" ? i.bytes : -1)),
        [11, 1],
        path.name,
      );
    }
  });

  test("should keep a __proto__ key as an own member", () => {
    for (const path of allPaths) {
      const [item] = new JsonStreamDecoder(path.options).push(
        enc.encode('{"__proto__": {"x": 1}}\n'),
      );
      assert.ok(item?.kind === "value");
      assert.deepEqual(Object.keys(item.value as object), ["__proto__"]);
      assert.equal(({} as Record<string, unknown>).x, undefined);
    }
  });
});
