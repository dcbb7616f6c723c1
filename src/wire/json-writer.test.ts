import assert from "node:assert/strict";
import { suite, test } from "node:test";
import {
  formatDouble,
  qdictBucket,
  qdictKeyOrder,
  quoteQemuString,
  restoreQdictOrder,
  writeCompactJson,
  writeQemuJson,
} from "./json-writer.js";

suite("writeQemuJson()", () => {
  test("should order keys as QEMU's QDict does (the observed orders of §1.1)", () => {
    // Keys inserted in schema order; QEMU printed them in the order on the right.
    const table: [string[], string[]][] = [
      [["QMP"], ["QMP"]],
      [
        ["version", "capabilities"],
        ["version", "capabilities"],
      ],
      [
        ["qemu", "package"],
        ["qemu", "package"],
      ],
      [
        ["major", "minor", "micro"],
        ["micro", "minor", "major"],
      ],
      [
        ["return", "id"],
        ["return", "id"],
      ],
      [
        ["error", "id"],
        ["id", "error"],
      ],
      [
        ["class", "desc"],
        ["class", "desc"],
      ],
      [
        ["event", "data", "timestamp"],
        ["timestamp", "event", "data"],
      ],
      [
        ["seconds", "microseconds"],
        ["seconds", "microseconds"],
      ],
      [
        ["running", "singlestep", "status"],
        ["status", "singlestep", "running"],
      ],
      [
        ["running", "status"],
        ["status", "running"],
      ],
      [
        ["guest", "reason"],
        ["guest", "reason"],
      ],
      [
        ["action", "info"],
        ["action", "info"],
      ],
      [
        ["offset", "qom-path"],
        ["offset", "qom-path"],
      ],
    ];
    for (const [inserted, printed] of table) {
      assert.deepEqual(qdictKeyOrder(inserted), printed, inserted.join(","));
    }
  });

  test("should put the most recently inserted key first within a bucket", () => {
    // "micro" and "minor" share a bucket; "major" is in a later one.
    assert.equal(qdictBucket("micro"), qdictBucket("minor"));
    assert.ok(qdictBucket("major") > qdictBucket("minor"));
    assert.deepEqual(qdictKeyOrder(["micro", "minor"]), ["minor", "micro"]);
    assert.deepEqual(qdictKeyOrder(["minor", "micro"]), ["micro", "minor"]);
  });

  test("should hash with tdb_hash modulo 512 over modified UTF-8", () => {
    // Values from the C definition, computed independently: see the §1.1 formula.
    const tdb = (bytes: number[]): number => {
      let v = (0x238f13af * bytes.length) % 2 ** 32;
      bytes.forEach((b, i) => {
        v = (v + b * 2 ** ((i * 5) % 24)) % 2 ** 32;
      });
      return Number((1103515243n * BigInt(v) + 12345n) % 2n ** 32n) % 512;
    };
    for (const key of ["", "a", "execute", "arguments", "id", "qom-path", "x".repeat(40)]) {
      assert.equal(qdictBucket(key), tdb([...key].map((c) => c.charCodeAt(0))), key);
    }
    assert.equal(qdictBucket("\u00e9"), tdb([0xc3, 0xa9]));
    assert.equal(qdictBucket("a\u0000b"), tdb([0x61, 0xc0, 0x80, 0x62]));
    assert.equal(qdictBucket("\u{1F600}"), tdb([0xf0, 0x9f, 0x98, 0x80]));
  });

  test("should print QEMU's greeting and event forms byte for byte", () => {
    assert.equal(
      writeQemuJson({
        QMP: {
          version: {
            qemu: { major: 7, minor: 2, micro: 22 },
            package: "Debian 1:7.2+dfsg-7+deb12u18+b3",
          },
          capabilities: ["oob"],
        },
      }),
      '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}',
    );
    assert.equal(
      writeQemuJson({
        event: "SHUTDOWN",
        data: { guest: false, reason: "host-qmp-quit" },
        timestamp: { seconds: 1700000000, microseconds: 5 },
      }),
      '{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}',
    );
    assert.equal(writeQemuJson({ return: {}, id: 6 }), '{"return": {}, "id": 6}');
    assert.equal(writeQemuJson({ return: [] }), '{"return": []}');
    assert.equal(
      writeQemuJson({ error: { class: "GenericError", desc: "x" }, id: null }),
      '{"id": null, "error": {"class": "GenericError", "desc": "x"}}',
    );
  });

  test("should escape strings as QEMU: ASCII only, uppercase \\uXXXX, surrogate pairs", () => {
    assert.equal(quoteQemuString('a"b\\c/'), '"a\\"b\\\\c/"');
    assert.equal(
      quoteQemuString("\b\f\n\r\t\u0000\u0001\u001f\u007f"),
      '"\\b\\f\\n\\r\\t\\u0000\\u0001\\u001F\\u007F"',
    );
    assert.equal(quoteQemuString("\u00e9\u4e2d\u{1F600}"), '"\\u00E9\\u4E2D\\uD83D\\uDE00"');
    // What modified UTF-8 cannot hold prints as U+FFFD: lone surrogates, noncharacters.
    assert.equal(
      quoteQemuString("\ud800x\udc00\ufffe\ufdd0\u{10FFFF}"),
      '"\\uFFFDx\\uFFFD\\uFFFD\\uFFFD\\uFFFD"',
    );
  });

  test("should print numbers as int64, uint64 and %.17g doubles", () => {
    const cases: [number | bigint, string][] = [
      [0, "0"],
      [-0, "-0"],
      [1.0, "1"],
      [2.5, "2.5"],
      [-7, "-7"],
      [0.1, "0.10000000000000001"],
      [1 / 3, "0.33333333333333331"],
      [1e-5, "1.0000000000000001e-05"],
      [1.5e300, "1.5000000000000001e+300"],
      [1e17, "1e+17"],
      [1e16, "10000000000000000"],
      [2 ** 56, "72057594037927936"],
      [2 ** 64, "1.8446744073709552e+19"],
      [1 + 2 ** -17, "1.0000076293945312"], // a tie: glibc rounds half to even
      [5e-324, "4.9406564584124654e-324"],
      [Number.MAX_SAFE_INTEGER, "9007199254740991"],
      [Number.POSITIVE_INFINITY, "inf"],
      [Number.NEGATIVE_INFINITY, "-inf"],
      [Number.NaN, "nan"],
      [18446744073709551615n, "18446744073709551615"],
      [-9223372036854775808n, "-9223372036854775808"],
    ];
    for (const [value, text] of cases) {
      assert.equal(writeQemuJson(value), text, String(value));
      if (typeof value === "number") assert.equal(formatDouble(value), text);
    }
  });

  test("should pretty-print with 4-space indents, empty containers included", () => {
    assert.equal(
      writeQemuJson({ return: { a: [1, {}], b: [] }, id: "x" }, { pretty: true }),
      [
        "{",
        '    "return": {',
        '        "a": [',
        "            1,",
        "            {",
        "            }",
        "        ],",
        '        "b": [',
        "        ]",
        "    },",
        '    "id": "x"',
        "}",
      ].join("\n"),
    );
    assert.equal(writeQemuJson({}, { pretty: true }), "{\n}");
    assert.equal(writeQemuJson(1, { pretty: true }), "1");
  });

  test("should skip members whose value is undefined", () => {
    const value = { a: 1, b: undefined } as unknown as Record<string, number>;
    assert.equal(writeQemuJson(value), '{"a": 1}');
    assert.equal(writeCompactJson(value), '{"a":1}');
  });

  test("should let restoreQdictOrder undo the in-bucket reversal of parsed output", () => {
    const parsed = { micro: 22, minor: 2, major: 7 }; // as read from QEMU's output
    assert.equal(writeQemuJson(parsed), '{"minor": 2, "micro": 22, "major": 7}');
    assert.equal(writeQemuJson(restoreQdictOrder(parsed)), '{"micro": 22, "minor": 2, "major": 7}');
    assert.deepEqual(restoreQdictOrder([{ a: { micro: 1, minor: 2 } }]), [
      { a: { minor: 2, micro: 1 } },
    ]);
  });
});

suite("writeCompactJson()", () => {
  test("should write compact JSON and keep bigints exact", () => {
    assert.equal(
      writeCompactJson({ execute: "x", arguments: { n: 1 } }),
      '{"execute":"x","arguments":{"n":1}}',
    );
    assert.equal(
      writeCompactJson({ id: 18446744073709551615n, list: [1n, "\u00e9", null, true] }),
      '{"id":18446744073709551615,"list":[1,"\u00e9",null,true]}',
    );
  });
});
