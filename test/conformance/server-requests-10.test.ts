/**
 * The simulator's `10.0.2` profile against real QEMU 10.0 (`-machine none -S`) on the protocol
 * level: the greeting, negotiation errors, the request-object errors of §1.4, argument errors,
 * ids of every JSON type, the JSON parser's errors (§1.8) and pipelining. The same bytes go to
 * both; the answers must be identical byte for byte. The reference says none of this changed
 * between 7.2 and 10.2 (§7.7); this checks it on a real 10.x binary.
 *
 * Each case runs on a fresh connection and ends with a sentinel request whose reply
 * (`"id": "__end"`) marks the end of its output. Cases with `exec-oob` of an allow-oob command are
 * left out: the simulator has none of QEMU's three (migrate-pause, migrate-recover, x-oob-test).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { SimulatedMachine } from "../../src/sim/index.js";
import {
  QEMU_10,
  type QemuProcess,
  RawQmp,
  realQemuTest,
  startQemu,
} from "../support/real-qemu.js";
import { type RequestCase, runRequestCase } from "../support/request-cases.js";

const bytes = (...b: number[]) => Uint8Array.from(b);

const cases: RequestCase[] = [
  // Negotiation mode (§1.3).
  {
    name: "commands before negotiation",
    mode: "negotiating",
    send: ['{"execute":"query-status"}', '{"execute":"no-such","id":1}'],
  },
  {
    name: "bad qmp_capabilities arguments",
    mode: "negotiating",
    send: [
      '{"execute":"qmp_capabilities","arguments":{"enable":["foo"]},"id":1}',
      '{"execute":"qmp_capabilities","arguments":{"enable":"oob"},"id":2}',
      '{"execute":"qmp_capabilities","arguments":{"enable":null},"id":3}',
      '{"execute":"qmp_capabilities","arguments":{"enable":["oob",1]},"id":4}',
      '{"execute":"qmp_capabilities","arguments":{"foo":1},"id":5}',
      '{"execute":"qmp_capabilities","arguments":{"enable":[],"zeta":1,"alpha":2,"mid":3},"id":6}',
    ],
  },
  {
    name: "envelope problems before negotiation",
    mode: "negotiating",
    send: [
      '{"arguments":{},"id":"n"}',
      '{"execute":"qmp_capabilities","id":1,"extra":2}',
      '{"exec-oob":"qmp_capabilities","id":1}',
      '{"execute":@}',
      "[]",
      '"x"',
      "1 ",
    ],
  },
  {
    name: "negotiation with oob, then again",
    mode: "negotiating",
    send: [
      '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":1}',
      '{"execute":"qmp_capabilities","id":2}',
    ],
  },
  {
    name: "a second negotiation, with good and bad arguments",
    mode: "command",
    send: [
      '{"execute":"qmp_capabilities","id":"again"}',
      '{"execute":"qmp_capabilities","arguments":{"enable":["x"]},"id":3}',
    ],
  },

  // Request objects (§1.4).
  {
    name: "query-status, query-name, query-version and an unknown command",
    mode: "command",
    send: [
      '{"execute":"query-status","id":1}',
      '{"execute":"query-name","id":2}',
      '{"execute":"query-version","id":3}',
      '{"execute":"no-such-command","id":"u"}',
    ],
  },
  {
    name: "execute that is not a string, arguments that are not an object",
    mode: "command",
    send: [
      '{"execute":1,"id":1}',
      '{"execute":null}',
      '{"execute":{},"id":[]}',
      '{"execute":true}',
      '{"execute":"query-status","arguments":[]}',
      '{"execute":"query-status","arguments":1,"id":2}',
      '{"execute":"query-status","arguments":null}',
    ],
  },
  {
    name: "unexpected members, several problems at once, execute missing",
    mode: "command",
    send: [
      '{"execute":"query-status","foo":1,"id":1}',
      '{"a":1,"b":2,"c":3,"execute":"query-status"}',
      '{"arguments":[],"execute":5,"zz":1,"id":9}',
      '{"id":1,"arguments":7}',
      '{"id":1}',
      "{}",
    ],
  },
  {
    name: "exec-oob without OOB, and beside execute",
    mode: "command",
    send: [
      '{"exec-oob":"query-status","id":"o"}',
      '{"execute":"query-status","exec-oob":"query-name","id":1}',
    ],
  },
  {
    name: "exec-oob with OOB of commands without allow-oob, unknown, and clashing",
    mode: "oob",
    send: [
      '{"exec-oob":"query-status","id":"q"}',
      '{"exec-oob":"qmp_capabilities","id":"c"}',
      '{"exec-oob":"no-such","id":"r"}',
      '{"exec-oob":7,"id":"s"}',
      '{"execute":"query-status","exec-oob":"query-name","id":1}',
      '{"execute":"query-status","id":2}{"execute":"query-name","id":3}',
    ],
  },
  {
    name: "unexpected arguments (GLib hash order)",
    mode: "command",
    send: [
      '{"execute":"query-status","arguments":{"foo":1},"id":1}',
      '{"execute":"query-status","arguments":{"b":1,"a":2,"c":3,"zz":4}}',
      '{"execute":"query-name","arguments":{"one":1,"two":2,"three":3,"four":4,"five":5,"six":6,"seven":7,"eight":8,"nine":9}}',
    ],
  },

  // Argument checking (§1.4 step 8).
  {
    name: "watchdog-set-action arguments",
    mode: "command",
    send: [
      '{"execute":"watchdog-set-action","id":1}',
      '{"execute":"watchdog-set-action","arguments":{"action":"bogus"},"id":3}',
      '{"execute":"watchdog-set-action","arguments":{"action":1},"id":4}',
      '{"execute":"watchdog-set-action","arguments":{"action":null},"id":5}',
      '{"execute":"watchdog-set-action","arguments":{"action":"none","x":1},"id":7}',
      '{"execute":"watchdog-set-action","arguments":{"action":"inject-nmi"},"id":9}',
    ],
  },
  {
    name: "set-action arguments",
    mode: "command",
    send: [
      '{"execute":"set-action","arguments":{"panic":"x"},"id":1}',
      '{"execute":"set-action","arguments":{"watchdog":"bad","reboot":"worse","panic":false},"id":3}',
      '{"execute":"set-action","arguments":{"shutdown":"pause","zzz":1,"aaa":2,"panic":"pause","mmm":3},"id":4}',
      '{"execute":"set-action","arguments":{"reboot":{}},"id":5}',
      '{"execute":"set-action","arguments":{"panic":"exit-failure","shutdown":"poweroff"},"id":6}',
      '{"execute":"set-action","id":8}',
    ],
  },
  {
    name: "run-control commands on -machine none in prelaunch",
    mode: "command",
    send: [
      '{"execute":"stop","id":1}',
      '{"execute":"system_wakeup","id":2}',
      '{"execute":"system_powerdown","id":3}',
      '{"execute":"system_reset","id":4}',
      '{"execute":"stop","arguments":{"x":1},"id":5}',
      '{"execute":"query-status","id":6}',
    ],
  },

  // ids of every JSON type (§1.4 step 3).
  {
    name: "ids of every JSON type",
    mode: "command",
    send: [
      '{"execute":"query-name","id":-17}',
      '{"execute":"query-name","id":2.5}',
      '{"execute":"query-name","id":1.0}',
      '{"execute":"query-name","id":1e3}',
      '{"execute":"query-name","id":null}',
      '{"execute":"query-name","id":false}',
      '{"execute":"query-name","id":[]}',
      '{"execute":"query-name","id":{"z":[1,{"y":null}],"a":"b","m":{"n":[true,false]}}}',
      '{"execute":"query-name","id":9223372036854775808}',
      '{"execute":"query-name","id":18446744073709551616}',
      '{"execute":"query-name","id":-9223372036854775809}',
      '{"execute":"query-name","id":1e400}',
      '{"execute":"query-name","id":"caf\\u00e9 \\ud83d\\ude00 \\t\\n\\"\\\\/"}',
      '{"execute":"query-name","id":"\u00e9\u{1F600}"}',
      "{'execute':'query-name','id':'sq\\'x \"dq\"'}",
    ],
  },

  // The JSON parser (§1.8).
  {
    name: "parse errors",
    mode: "command",
    send: [
      '{"execute": @}',
      "@",
      "}",
      "{}}",
      '{"execute":"query-name","id":1,"id":2}',
      '{"execute":"query-name" "id":1}',
      "{1:2}",
      '{"execute" "query-name"}',
      "[1 2]",
      '{"execute":"query-name","id":"\\x"}',
      '{"execute":"query-name","id":"\\u00zz"}',
      '{"execute":"query-name","id":"\\u0000"}',
      '{"execute":"query-name","id":"\\udc00"}',
    ],
  },
  {
    name: "bad bytes, raw control characters, bad keywords and numbers",
    mode: "command",
    send: [
      bytes(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d),
      bytes(0xff),
      bytes(0x01),
      '{"execute":"query-name","id":"a\tb"}',
      '{"execute":"query-name","id":01}',
      '{"execute":"query-name","id":nul}',
      '{"execute":"query-name","id":nan}',
      "123 ",
      "null ",
    ],
  },
  {
    name: "unterminated messages reset by a bad byte",
    mode: "command",
    send: ['{"execute":"query-name"', bytes(0x01), '{"execute":"query-na', bytes(0xff)],
  },
  {
    name: "nesting depth 1024 and 1025",
    mode: "command",
    send: [`${"[".repeat(1024)}${"]".repeat(1024)}`, `${"[".repeat(1025)}${"]".repeat(1025)}`],
  },
  {
    name: "pipelined requests in one write, split bytes, whitespace",
    mode: "command",
    send: [
      '{"execute":"query-status","id":1}{"execute":"nope","id":2}[]{"execute":"query-name","id":3}@{"id":4}{"execute":"query-name","arguments":{"x":1},"id":5}{"exec-oob":"query-name","id":6}{"execute":"query-status","id":7}',
      ...'{"execute":"query-status","id":"split"}',
      '\r\n\t {"execute":"query-name","id":8}\r\n\r\n  {"execute":"query-name","id":9}\n',
    ],
  },
];

suite(
  "the simulator's 10.0.2 profile conforms to QEMU 10.0 on requests and bad input",
  realQemuTest(QEMU_10),
  () => {
    let qemu: QemuProcess | undefined;
    let vm: SimulatedMachine | undefined;
    let dir = "";
    let simPath = "";

    before(async () => {
      qemu = await startQemu({ qemu: QEMU_10 });
      dir = mkdtempSync(join(tmpdir(), "qmpkit-sim10-"));
      simPath = join(dir, "qmp.sock");
      vm = new SimulatedMachine({ qemuVersion: "10.0.2", startPaused: true, machine: "none" });
      await vm.listen(`unix:${simPath}`);
    });

    after(async () => {
      await vm?.close();
      await qemu?.stop();
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    test("should greet exactly as QEMU 10.0 does", async () => {
      const greeting = async (path: string) => {
        const qmp = await RawQmp.connect(path);
        try {
          return await qmp.nextLine();
        } finally {
          qmp.close();
        }
      };
      const real = await greeting(qemu!.socketPath);
      assert.match(real ?? "", /"major": 10\}/);
      assert.equal(await greeting(simPath), real);
    });

    for (const c of cases) {
      test(`should answer ${c.name} exactly as QEMU 10.0 does`, async () => {
        const expected = await runRequestCase(qemu!.socketPath, c);
        const actual = await runRequestCase(simPath, c);
        assert.deepEqual(actual, expected);
        assert.ok(
          expected.at(-1)?.includes("__end"),
          `QEMU did not reach the sentinel: ${expected.at(-1)}`,
        );
      });
    }
  },
);
