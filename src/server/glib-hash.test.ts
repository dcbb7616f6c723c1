import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { qdictKeyOrder } from "../wire/index.js";
import { firstUnvisitedKey, gStrHash } from "./glib-hash.js";

/**
 * Argument sets sent to real QEMU 7.2.22 (`query-status` with only unexpected members, and
 * `set-action` with some of its members present), with the key QEMU named in
 * `Parameter '…' is unexpected`: [keys as written, members visited, QEMU's answer].
 */
const observed: Array<[string[], string[], string]> = [
  [["s42qz3", "x7s2rk5_", "ho1000z", "ww_6", "hz7fyc", "bg64wg"], [], "hz7fyc"],
  [["a-6xy6g", "iibywk", "d_", "2c", "qwg", "m5mp", "6sl-jeq"], [], "iibywk"],
  [
    [
      "x1dyaa",
      "ha6j",
      "oo",
      "xkmfp",
      "bpx83mzt",
      "bzvkz-",
      "v692c2ou",
      "bi6",
      "watchdog",
      "cjlej",
      "oluz7",
      "7gniw_9",
      "w23t1pes",
      "wzmrl",
      "shutdown",
      "7-b2z",
      "reboot",
      "panic",
    ],
    ["reboot", "shutdown", "panic", "watchdog"],
    "7gniw_9",
  ],
  [["l", "c", "_m0xgr_7"], [], "l"],
  [
    ["wm0x4", "panic", "shutdown", "watchdog", "7iz3a", "reboot"],
    ["reboot", "shutdown", "panic", "watchdog"],
    "7iz3a",
  ],
  [
    [
      "_qrysl",
      "alua0",
      "e41--vkf",
      "r5b",
      "a70zg2",
      "3bkvljak",
      "s9n3fm",
      "xjzzx",
      "8mbg-lm1",
      "usl7",
      "4kyvcuhy",
      "q-shs1u",
      "mvkc0",
      "wc3hggi",
    ],
    [],
    "q-shs1u",
  ],
  [
    [
      "p5",
      "3xqjds",
      "mqke_b8h",
      "6c6ct63u",
      "gpluqv68",
      "fl81_9b",
      "36sds_",
      "r3lvt8o7",
      "i7wtin",
      "e7swk",
      "a",
      "zv_g",
      "598fe97",
      "e",
      "n_",
      "b8_k",
      "_e",
      "pjss",
    ],
    [],
    "fl81_9b",
  ],
  [["reboot", "y", "shutdown", "panic", "t"], ["reboot", "shutdown", "panic"], "y"],
  [
    [
      "pn",
      "3-",
      "rx8v2l_b",
      "32k",
      "2_bgom",
      "kpqkrt-",
      "--xsrnk4",
      "zagh5cxp",
      "kkh",
      "-80fx0",
      "r34vyev",
      "px1",
      "_rn7",
      "9hex",
      "2r0_p_",
      "0v13898",
      "anb",
      "-2_h-",
      "8j41",
      "bcya",
      "be5v34",
      "52opqd",
      "v05-cfj",
      "rljd6sg",
    ],
    [],
    "8j41",
  ],
  [
    ["reboot", "ve", "watchdog", "panic", "2qsfl", "shutdown"],
    ["reboot", "shutdown", "panic", "watchdog"],
    "ve",
  ],
  [
    [
      "watchdog",
      "l",
      "35lqzier",
      "_o",
      "0tnguq5",
      "pbejjtj",
      "1kj",
      "-zm",
      "agkai",
      "x6",
      "2s11cy1",
      "pp",
      "n-1a31",
      "shutdown",
      "mq8rvlb",
      "reboot",
      "panic",
      "z",
      "lctskj6",
    ],
    ["reboot", "shutdown", "panic", "watchdog"],
    "mq8rvlb",
  ],
  [["yq", "9dvkcs-", "qhu831", "3pa9_"], [], "yq"],
  [["b", "a", "c", "zz"], [], "b"],
];

suite("firstUnvisitedKey()", () => {
  test("should name the same unexpected member as QEMU 7.2.22 on every observed argument set", () => {
    for (const [keys, visited, qemu] of observed) {
      assert.equal(firstUnvisitedKey(qdictKeyOrder(keys), visited), qemu, JSON.stringify(keys));
    }
  });

  test("should return undefined when every key was visited", () => {
    assert.equal(firstUnvisitedKey(["a", "b"], ["b", "a"]), undefined);
    assert.equal(firstUnvisitedKey([], []), undefined);
  });

  test("should compute g_str_hash over signed bytes", () => {
    assert.equal(gStrHash(""), 5381);
    assert.equal(gStrHash("a"), (5381 * 33 + 97) >>> 0);
    // 'é' is C3 A9 in UTF-8; as signed chars -61 and -87.
    assert.equal(gStrHash("é"), (((5381 * 33 - 61) >>> 0) * 33 - 87) >>> 0);
  });
});
