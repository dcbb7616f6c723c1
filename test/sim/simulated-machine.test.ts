/**
 * SimulatedMachine end to end over unix sockets, byte for byte with `RawQmp`; and, where real
 * QEMU 7.2.22 is installed, the same transcript from both.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { machineOptionsFrom } from "../../src/cli/sim-command.js";
import { qemuSchema } from "../../src/generated/index.js";
import { compareSchemaInfo, type SchemaInfo } from "../../src/schema/introspect.js";
import { ManualClock } from "../../src/server/index.js";
import { createMemoryPair } from "../../src/wire/index.js";
import { guestActionNames } from "../../src/sim/sim-schema.js";
import {
  parseQemuOptions,
  SimulatedMachine,
  type SimulatedMachineOptions,
} from "../../src/sim/index.js";
import { PC_DEVICE_OPTIONS } from "../support/command-fuzz.js";
import { RawQmp, realQemuTest, type StartQemuOptions, startQemu } from "../support/real-qemu.js";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-sim-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

const TS = /"seconds": \d+, "microseconds": \d+/g;
const norm = (lines: string[]) => lines.map((l) => l.replace(TS, "TS"));

async function start(
  options: SimulatedMachineOptions = {},
): Promise<{ vm: SimulatedMachine; qmp: RawQmp; path: string }> {
  const vm = new SimulatedMachine(options);
  const path = join(dir, `vm${counter++}.sock`);
  await vm.listen(`unix:${path}`);
  const qmp = await RawQmp.connect(path);
  await qmp.handshake();
  return { vm, qmp, path };
}

/**
 * Sends each command, collects what arrives up to its reply (however long a loaded machine
 * takes), then, if `until` gives a pattern for the command, every line up to one that matches
 * it (a migration's `completed`, however long a loaded host takes to get there), then whatever
 * follows until `quietMs` of quiet (events that come after the reply).
 */
async function transcript(
  qmp: RawQmp,
  commands: string[],
  quietMs = 50,
  until: (command: string) => RegExp | undefined = () => undefined,
): Promise<string[]> {
  const out: string[] = [];
  for (const c of commands) {
    qmp.send(c);
    out.push(`>> ${c}\n`);
    for (;;) {
      const line = await qmp.nextLine(10_000);
      if (line === undefined) break;
      out.push(line);
      if (line.startsWith('{"return"') || line.startsWith('{"error"') || line.startsWith('{"id"'))
        break;
    }
    const awaited = until(c);
    if (awaited !== undefined && !out.at(-1)?.startsWith('{"error"')) {
      for (;;) {
        const line = await qmp.nextLine(30_000);
        if (line === undefined) break;
        out.push(line);
        if (awaited.test(line)) break;
      }
    }
    out.push(...(await qmp.drain(quietMs)));
  }
  return norm(out);
}

const PASS = /^\{"timestamp": \{TS\}, "event": "MIGRATION_PASS", "data": \{"pass": (\d+)\}\}\r\n$/;

/**
 * `lines` without its MIGRATION_PASS events, once their shape is checked. How many passes real
 * QEMU makes over the RAM of a running machine depends on the host (each ends at a dirty-bitmap
 * sync, migration/ram.c `migration_bitmap_sync`, and whether another is needed depends on how
 * long the previous one took: on a loaded machine 7.2.22 made 2 where it usually makes 3), so
 * only the shape is compared: numbered from 1 without a gap, the VM's STOP (the switch-over)
 * before the last one, MIGRATION `completed` after it.
 */
function withoutPasses(lines: readonly string[], side: string): string[] {
  const at = lines.flatMap((l, i) => (PASS.test(l) ? [i] : []));
  assert.deepEqual(
    at.map((i) => Number(PASS.exec(lines[i] ?? "")?.[1])),
    at.map((_, k) => k + 1),
    `${side}'s passes`,
  );
  const last = at.at(-1);
  assert.ok(last !== undefined && at.length >= 2, `${side}: fewer than two passes`);
  const stop = lines.findLastIndex((l, i) => i < last && l.includes('"event": "STOP"'));
  assert.ok(stop > (at[0] ?? 0), `${side}: no STOP between the first and the last pass`);
  assert.match(lines[last + 1] ?? "", /"event": "MIGRATION", "data": \{"status": "completed"\}/);
  return lines.filter((l) => !PASS.test(l));
}

/** What real QEMU started with `options` answers to `session` ({@link transcript}); it is stopped after. */
async function realTranscript(
  options: StartQemuOptions,
  session: string[],
  quietMs: number,
  until?: (command: string) => RegExp | undefined,
): Promise<string[]> {
  const real = await startQemu(options);
  try {
    const qmp = await RawQmp.connect(real.socketPath);
    await qmp.handshake();
    return await transcript(qmp, session, quietMs, until);
  } finally {
    await real.stop();
  }
}

suite("SimulatedMachine over QMP", () => {
  test("should greet exactly as Debian's QEMU 7.2.22 by default", async () => {
    const vm = new SimulatedMachine();
    const path = join(dir, `g${counter++}.sock`);
    await vm.listen(`unix:${path}`);
    const qmp = await RawQmp.connect(path);
    try {
      assert.equal(
        await qmp.nextLine(),
        '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}\r\n',
      );
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should send RESET before the reply in 7.2.22 and after it in 7.2.0", async () => {
    for (const [version, first] of [
      ["7.2.22", "event"],
      ["7.2.0", "return"],
    ] as const) {
      const { vm, qmp } = await start({ qemuVersion: version, startPaused: true });
      try {
        const lines = await transcript(qmp, ['{"execute":"system_reset"}']);
        assert.deepEqual(
          lines.slice(1),
          first === "event"
            ? [
                '{"timestamp": {TS}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}\r\n',
                '{"return": {}}\r\n',
              ]
            : [
                '{"return": {}}\r\n',
                '{"timestamp": {TS}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}\r\n',
              ],
        );
      } finally {
        qmp.close();
        await vm.close();
      }
    }
  });

  test("should answer quit and system_wakeup before their events in 8.2.0 (§1.9)", async () => {
    const { vm, qmp } = await start({ qemuVersion: "8.2.0", machine: "pc", firmwareResets: 0 });
    vm.guest.suspend();
    const lines = await transcript(qmp, ['{"execute":"system_wakeup"}', '{"execute":"quit"}']);
    assert.deepEqual(lines, [
      '>> {"execute":"system_wakeup"}\n',
      '{"timestamp": {TS}, "event": "SUSPEND"}\r\n',
      '{"return": {}}\r\n',
      '{"timestamp": {TS}, "event": "WAKEUP"}\r\n',
      '>> {"execute":"quit"}\n',
      '{"return": {}}\r\n',
      '{"timestamp": {TS}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}\r\n',
    ]);
    assert.equal(await vm.exited, 0);
    assert.equal(qmp.isEnded, true);
  });

  test("should check arguments against the simulated release's view of the catalogue", async () => {
    const caps = (name: string) =>
      `{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"${name}","state":false}]}}`;
    const refused = (name: string) =>
      `{"error": {"class": "GenericError", "desc": "Parameter 'capability' does not accept value '${name}'"}}\r\n`;
    const ok = '{"return": {}}\r\n';
    const stream =
      '{"execute":"block-stream","arguments":{"device":"nope","backing-mask-protocol":true}}';
    const cases: Array<[string, string[], string[]]> = [
      // 9.1 dropped compress and has switchover-ack (8.1) and backing-mask-protocol (9.0).
      [
        "9.1.0",
        [caps("compress"), caps("switchover-ack"), stream],
        [
          refused("compress"),
          ok,
          `{"error": {"class": "GenericError", "desc": "Cannot find device='nope' nor node-name='nope'"}}\r\n`,
        ],
      ],
      // 2.9 has release-ram (2.9) but not return-path (2.10), nor backing-mask-protocol.
      [
        "2.9.0",
        [caps("release-ram"), caps("return-path"), stream],
        [
          ok,
          refused("return-path"),
          `{"error": {"class": "GenericError", "desc": "Parameter 'backing-mask-protocol' is unexpected"}}\r\n`,
        ],
      ],
    ];
    for (const [version, commands, replies] of cases) {
      const { vm, qmp } = await start({ qemuVersion: version, startPaused: true });
      try {
        const lines = await transcript(qmp, commands);
        assert.deepEqual(
          lines.filter((l) => !l.startsWith(">>")),
          replies,
          version,
        );
      } finally {
        qmp.close();
        await vm.close();
      }
    }
  });

  test("should end on quit: SHUTDOWN, the reply, then EOF and exit status 0", async () => {
    const { vm, qmp } = await start({ startPaused: true, actions: { shutdown: "pause" } });
    const lines = await transcript(qmp, ['{"execute":"quit"}']);
    assert.deepEqual(lines.slice(1), [
      '{"timestamp": {TS}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}\r\n',
      '{"return": {}}\r\n',
    ]);
    assert.equal(await vm.exited, 0);
    assert.equal(await qmp.nextLine(500), undefined);
    assert.equal(qmp.isEnded, true);
  });

  test("should exit with status 1 on a guest panic with panic=exit-failure, driven by x-sim-guest", async () => {
    const { vm, qmp } = await start({ actions: { panic: "exit-failure" } });
    const lines = await transcript(qmp, [
      '{"execute":"x-sim-guest","arguments":{"action":"panic"}}',
    ]);
    assert.deepEqual(lines.slice(1), [
      '{"timestamp": {TS}, "event": "GUEST_PANICKED", "data": {"action": "poweroff"}}\r\n',
      '{"timestamp": {TS}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-panic"}}\r\n',
      '{"return": {}}\r\n',
    ]);
    assert.equal(await vm.exited, 1);
  });

  test("should refuse guest actions without running vCPUs, and bad x-sim-guest arguments", async () => {
    const { vm, qmp } = await start({ startPaused: true });
    try {
      const lines = await transcript(qmp, [
        '{"execute":"x-sim-guest","arguments":{"action":"reset"}}',
        '{"execute":"x-sim-guest","arguments":{"action":"explode"}}',
        '{"execute":"x-sim-guest","arguments":{"action":"rtc-change","offset":"x"}}',
        '{"execute":"x-sim-guest","arguments":{}}',
      ]);
      assert.deepEqual(
        lines.filter((l) => !l.startsWith(">>")),
        [
          `{"error": {"class": "GenericError", "desc": "guest reset failed: the guest's vCPUs are not running (run state 'prelaunch')"}}\r\n`,
          `{"error": {"class": "GenericError", "desc": "Parameter 'action' does not accept value 'explode'"}}\r\n`,
          `{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'offset', expected: integer"}}\r\n`,
          `{"error": {"class": "GenericError", "desc": "Parameter 'action' is missing"}}\r\n`,
        ],
      );
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should have no x-sim commands under strict", async () => {
    const { vm, qmp } = await start({ strict: true });
    try {
      const lines = await transcript(qmp, [
        '{"execute":"x-sim-guest","arguments":{"action":"reset"}}',
        '{"execute":"query-commands"}',
      ]);
      assert.equal(
        lines[1],
        '{"error": {"class": "CommandNotFound", "desc": "The command x-sim-guest has not been found"}}\r\n',
      );
      assert.doesNotMatch(lines[3] ?? "", /x-sim/);
      assert.match(lines[3] ?? "", /\{"name": "query-status"\}/);
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should apply an injected BLOCK_IO_ERROR's follow-up and refuse unknown or run-state events", async () => {
    const { vm, qmp } = await start();
    try {
      const lines = await transcript(qmp, [
        '{"execute":"x-sim-inject","arguments":{"event":"BLOCK_IO_ERROR","data":{"device":"d0","operation":"write","action":"stop","reason":"Input/output error"}}}',
        '{"execute":"query-status"}',
        '{"execute":"x-sim-inject","arguments":{"event":"NO_SUCH_EVENT"}}',
        '{"execute":"x-sim-inject","arguments":{"event":"STOP"}}',
      ]);
      assert.deepEqual(lines.slice(1, 4), [
        '{"timestamp": {TS}, "event": "BLOCK_IO_ERROR", "data": {"device": "d0", "reason": "Input/output error", "operation": "write", "action": "stop"}}\r\n',
        '{"timestamp": {TS}, "event": "STOP"}\r\n',
        '{"return": {}}\r\n',
      ]);
      assert.match(lines[5] ?? "", /"status": "io-error"/);
      assert.match(lines[7] ?? "", /Event NO_SUCH_EVENT does not exist in QEMU 7\.2\.22/);
      assert.match(lines[9] ?? "", /Event STOP follows from the run state/);
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should describe x-sim-guest and x-sim-inject in query-qmp-schema and query-commands, unstable, except under strict", async () => {
    const schemaOf = async (options: SimulatedMachineOptions) => {
      const { vm, qmp } = await start(options);
      try {
        const [, line, , commands] = await transcript(qmp, [
          '{"execute":"query-qmp-schema"}',
          '{"execute":"query-commands"}',
        ]);
        const listed = (JSON.parse(commands ?? "null") as { return: Array<{ name: string }> })
          .return;
        assert.equal(
          listed.filter((c) => c.name.startsWith("x-sim-")).length,
          options.strict ? 0 : 2,
        );
        return (JSON.parse(line ?? "null") as { return: SchemaInfo[] }).return;
      } finally {
        qmp.close();
        await vm.close();
      }
    };
    const loose = await schemaOf({});
    const strict = await schemaOf({ strict: true });
    const comparison = compareSchemaInfo(strict, loose, { features: true });
    assert.deepEqual(comparison.onlyInFirst, []);
    assert.deepEqual(comparison.onlyInSecond, ["x-sim-guest", "x-sim-inject"]);
    assert.deepEqual(comparison.differences, []);
    const byName = new Map(loose.map((i) => [i.name, i]));
    const argsOf = (command: string) => {
      const c = byName.get(command);
      assert.ok(c !== undefined && c["meta-type"] === "command", `${command} is listed`);
      assert.deepEqual(c.features, ["unstable"]);
      const args = byName.get(c["arg-type"]);
      assert.ok(args !== undefined && args["meta-type"] === "object");
      return args.members;
    };
    // x-sim-guest's arguments are the simulator schema's union: every action, and each one's own
    // members in its branch.
    const [action, ...others] = argsOf("x-sim-guest");
    assert.deepEqual(others, []);
    assert.equal(action?.name, "action");
    const actions = byName.get(action?.type ?? "");
    assert.ok(actions !== undefined && actions["meta-type"] === "enum");
    assert.deepEqual(actions.values, [...guestActionNames()]);
    assert.equal(actions.values.length, 15);
    const guestCommand = byName.get("x-sim-guest");
    assert.ok(guestCommand !== undefined && guestCommand["meta-type"] === "command");
    const guestArgs = byName.get(guestCommand["arg-type"]);
    assert.ok(guestArgs !== undefined && guestArgs["meta-type"] === "object");
    // One branch per action (QEMU's introspection lists the implicit empty ones too).
    assert.deepEqual(guestArgs.variants?.map((v) => v.case).sort(), [...guestActionNames()].sort());
    assert.deepEqual(argsOf("x-sim-inject"), [
      { name: "event", type: "str" },
      { name: "data", type: "any", default: null },
    ]);
    assert.equal(
      strict.some((i) => i.name.startsWith("x-sim")),
      false,
    );
  });

  test("should check an injected JOB_STATUS_CHANGE against the catalogue's JobStatus", async () => {
    const { vm, qmp } = await start();
    try {
      const lines = await transcript(qmp, [
        '{"execute":"x-sim-inject","arguments":{"event":"JOB_STATUS_CHANGE","data":{"id":"j0","status":"ready"}}}',
        '{"execute":"x-sim-inject","arguments":{"event":"JOB_STATUS_CHANGE","data":{"id":"j0","status":"bogus"}}}',
      ]);
      assert.deepEqual(lines.slice(1, 3), [
        '{"timestamp": {TS}, "event": "JOB_STATUS_CHANGE", "data": {"status": "ready", "id": "j0"}}\r\n',
        '{"return": {}}\r\n',
      ]);
      assert.match(lines[4] ?? "", /Invalid data for JOB_STATUS_CHANGE: .*status/);
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should throttle RTC_CHANGE storms to one a second, the last one kept with its own timestamp", async () => {
    const clock = new ManualClock({ startMicros: 1_000_000_000_000 });
    const { vm, qmp } = await start({ clock });
    try {
      for (let i = 1; i <= 5; i++) {
        vm.guest.rtcChange(i);
        clock.advance(100);
      }
      clock.advance(1000);
      const lines = await qmp.drain(50);
      assert.deepEqual(lines, [
        '{"timestamp": {"seconds": 1000000, "microseconds": 0}, "event": "RTC_CHANGE", "data": {"offset": 1, "qom-path": "/machine/unattached/device[9]"}}\r\n',
        '{"timestamp": {"seconds": 1000000, "microseconds": 400000}, "event": "RTC_CHANGE", "data": {"offset": 5, "qom-path": "/machine/unattached/device[9]"}}\r\n',
      ]);
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should throttle WATCHDOG storms while each RESET goes out at once", async () => {
    const clock = new ManualClock({ startMicros: 2_000_000_000_000 });
    const { vm, qmp } = await start({ clock });
    try {
      for (let i = 0; i < 3; i++) {
        vm.guest.watchdogExpire();
        clock.advance(200);
      }
      clock.advance(1000);
      const lines = (await qmp.drain(50)).map(
        (l) => JSON.parse(l) as { event: string; timestamp: { microseconds: number } },
      );
      assert.deepEqual(
        lines.map((e) => `${e.event}@${e.timestamp.microseconds / 1000}`),
        ["WATCHDOG@0", "RESET@0", "RESET@200", "RESET@400", "WATCHDOG@400"],
      );
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should throttle injected VSERPORT_CHANGE per id and QUORUM_REPORT_BAD per node-name", async () => {
    const clock = new ManualClock({ startMicros: 3_000_000_000_000 });
    const { vm, qmp } = await start({ clock });
    try {
      for (const id of ["a", "a", "b", "a"])
        vm.hostSide.inject("VSERPORT_CHANGE", { id, open: true });
      for (const node of ["n1", "n2", "n1"]) {
        vm.hostSide.inject("QUORUM_REPORT_BAD", {
          type: "read",
          "node-name": node,
          "sector-num": 0,
          "sectors-count": 1,
        });
      }
      const now = (await qmp.drain(50)).map(
        (l) => JSON.parse(l) as { event: string; data: Record<string, unknown> },
      );
      assert.deepEqual(
        now.map((e) => `${e.event}:${String(e.data.id ?? e.data["node-name"])}`),
        ["VSERPORT_CHANGE:a", "VSERPORT_CHANGE:b", "QUORUM_REPORT_BAD:n1", "QUORUM_REPORT_BAD:n2"],
      );
      clock.advance(1000);
      const held = (await qmp.drain(50)).map(
        (l) => JSON.parse(l) as { event: string; data: Record<string, unknown> },
      );
      assert.deepEqual(
        held.map((e) => `${e.event}:${String(e.data.id ?? e.data["node-name"])}`),
        ["VSERPORT_CHANGE:a", "QUORUM_REPORT_BAD:n1"],
      );
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should inject VNC and SPICE events checked against the catalogue", async () => {
    const { vm, qmp } = await start();
    try {
      const basic = { host: "127.0.0.1", service: "5900", family: "ipv4", websocket: false };
      vm.hostSide.inject("VNC_CONNECTED", {
        server: { ...basic, auth: "none" },
        client: { ...basic, service: "41000" },
      });
      assert.match((await qmp.nextLine()) ?? "", /"event": "VNC_CONNECTED"/);
      assert.throws(
        () => vm.hostSide.inject("VNC_CONNECTED", { server: basic }),
        /Invalid data for VNC_CONNECTED: Parameter 'client' is missing/,
      );
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should finish an incoming migration on an injected MIGRATION completed", async () => {
    const { vm, qmp } = await start({ incoming: "defer" });
    try {
      const lines = await transcript(qmp, [
        '{"execute":"migrate-incoming","arguments":{"uri":"tcp:127.0.0.1:0"}}',
        '{"execute":"x-sim-inject","arguments":{"event":"MIGRATION","data":{"status":"completed"}}}',
        '{"execute":"query-status"}',
      ]);
      assert.deepEqual(lines.slice(3, 6), [
        '{"timestamp": {TS}, "event": "MIGRATION", "data": {"status": "completed"}}\r\n',
        '{"timestamp": {TS}, "event": "RESUME"}\r\n',
        '{"return": {}}\r\n',
      ]);
      assert.match(lines[7] ?? "", /"status": "running"/);
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should model SeaBIOS on -machine pc: two guest resets after a reset of a running VM", async () => {
    const clock = new ManualClock();
    const { vm, qmp } = await start({ clock, machine: "pc" });
    try {
      const lines = await transcript(qmp, ['{"execute":"system_reset"}']);
      clock.advance(5);
      lines.push(...norm(await qmp.drain(50)));
      assert.deepEqual(lines.slice(1), [
        '{"timestamp": {TS}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}\r\n',
        '{"return": {}}\r\n',
        '{"timestamp": {TS}, "event": "RESET", "data": {"guest": true, "reason": "guest-reset"}}\r\n',
        '{"timestamp": {TS}, "event": "RESET", "data": {"guest": true, "reason": "guest-reset"}}\r\n',
      ]);
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should broadcast events to every monitor", async () => {
    const vm = new SimulatedMachine({ startPaused: true });
    const paths = [join(dir, `m${counter++}.sock`), join(dir, `m${counter++}.sock`)];
    for (const p of paths) await vm.listen(`unix:${p}`);
    const clients = await Promise.all(paths.map((p) => RawQmp.connect(p)));
    try {
      for (const c of clients) await c.handshake();
      clients[0]?.send('{"execute":"cont"}');
      for (const c of clients) assert.match((await c.nextLine()) ?? "", /"event": "RESUME"/);
    } finally {
      for (const c of clients) c.close();
      await vm.close();
    }
  });

  test("should play the pre-4.0 profile: no capabilities, SHUTDOWN without data", async () => {
    const vm = new SimulatedMachine({ qemuVersion: "2.9.0", actions: { shutdown: "pause" } });
    const path = join(dir, `o${counter++}.sock`);
    await vm.listen(`unix:${path}`);
    const qmp = await RawQmp.connect(path);
    try {
      assert.equal(
        await qmp.nextLine(),
        '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 9, "major": 2}, "package": ""}, "capabilities": []}}\r\n',
      );
      qmp.send('{"execute":"qmp_capabilities"}');
      await qmp.nextLine();
      vm.guest.shutdown();
      assert.deepEqual(norm(await qmp.drain(50)), [
        '{"timestamp": {TS}, "event": "SHUTDOWN"}\r\n',
        '{"timestamp": {TS}, "event": "STOP"}\r\n',
      ]);
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should refuse an unknown version with the list of known ones", () => {
    assert.throws(
      () => new SimulatedMachine({ qemuVersion: "6.6.6" }),
      /unknown QEMU version '6\.6\.6': known versions are 7\.2\.22, /,
    );
  });

  test("should run a guest script at guest run time", async () => {
    const clock = new ManualClock();
    const { vm, qmp } = await start({ clock, startPaused: true, actions: { panic: "pause" } });
    try {
      const { parseGuestScript } = await import("../../src/sim/index.js");
      vm.runGuestScript(parseGuestScript('{"at": "1s", "action": "panic"}'));
      clock.advance(5000);
      assert.equal(vm.state, "prelaunch");
      qmp.send('{"execute":"cont"}');
      await qmp.drain(50);
      clock.advance(1000);
      assert.equal(vm.state, "guest-panicked");
    } finally {
      qmp.close();
      await vm.close();
    }
  });
});

suite("SimulatedMachine against real QEMU 7.2.22", () => {
  const commands = [
    '{"execute":"query-status"}',
    '{"execute":"query-name"}',
    '{"execute":"cont","id":1}',
    '{"execute":"stop"}',
    '{"execute":"system_reset"}',
    '{"execute":"query-status"}',
    '{"execute":"system_powerdown"}',
    '{"execute":"system_wakeup"}',
    '{"execute":"set-action","arguments":{"panic":"bogus"}}',
    '{"execute":"set-action","arguments":{"shutdown":"pause","bogus":1}}',
    '{"execute":"watchdog-set-action","arguments":{"action":"debug"}}',
    '{"execute":"query-version"}',
    '{"execute":"stop","arguments":{"x":1}}',
    '{"execute":"cont"}',
    '{"execute":"quit"}',
  ];

  test(
    "should answer a run-control session byte for byte like the real one",
    realQemuTest(),
    async () => {
      const real = await startQemu({});
      let expected: string[];
      try {
        const qmp = await RawQmp.connect(real.socketPath);
        await qmp.handshake();
        expected = await transcript(qmp, commands);
        assert.equal(await real.exited, 0);
      } finally {
        await real.stop();
      }
      const { vm, qmp } = await start({ startPaused: true });
      const got = await transcript(qmp, commands);
      assert.equal(await vm.exited, 0);
      assert.deepEqual(got, expected);
    },
  );

  test(
    "should match a running -machine pc session with devices (tray, rx-filter, dump, migration)",
    realQemuTest(),
    async () => {
      const args = [...PC_DEVICE_OPTIONS];
      const session = [
        // No system_reset here: how many resets SeaBIOS then does (1 or 2) depends on how far it
        // had got, so real QEMU is not deterministic; the model is checked on its own below.
        '{"execute":"query-status"}',
        '{"execute":"stop"}',
        '{"execute":"cont"}',
        '{"execute":"query-balloon"}',
        '{"execute":"eject","arguments":{"device":"cd0"}}',
        '{"execute":"eject","arguments":{"id":"cdrom0"}}',
        '{"execute":"eject","arguments":{"device":"nope"}}',
        '{"execute":"query-rx-filter","arguments":{"name":"net0"}}',
        '{"execute":"query-rx-filter","arguments":{"name":"n0"}}',
        '{"execute":"device_del","arguments":{"id":"cdrom0"}}',
        '{"execute":"balloon","arguments":{"value":0}}',
        '{"execute":"dump-guest-memory","arguments":{"paging":false,"protocol":"file:/dev/null"}}',
        '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"events","state":true}]}}',
        '{"execute":"migrate","arguments":{"uri":"bogus:x"}}',
        '{"execute":"migrate","arguments":{"uri":"exec:cat >/dev/null"}}',
        '{"execute":"query-status"}',
        '{"execute":"cont"}',
        '{"execute":"quit"}',
      ];
      // The migration completes when it completes (a loaded host takes seconds): wait for it.
      const untilCompleted = (c: string) =>
        c.includes('"exec:')
          ? /"event": "MIGRATION", "data": \{"status": "completed"\}/
          : undefined;
      const expected = await realTranscript(
        { machine: "pc", paused: false, args },
        session,
        400,
        untilCompleted,
      );
      const line = parseQemuOptions(["-machine", "pc", ...args]);
      const { vm, qmp } = await start(machineOptionsFrom(line));
      const got = await transcript(qmp, session, 100, untilCompleted);
      assert.equal(await vm.exited, 0);
      assert.deepEqual(withoutPasses(got, "the simulator"), withoutPasses(expected, "QEMU"));
    },
  );

  test(
    "should list query-commands in QEMU 7.2's order (registration order, reversed)",
    realQemuTest(),
    async () => {
      const names = (line: string | undefined) =>
        (JSON.parse(line ?? "null") as { return: Array<{ name: string }> }).return.map(
          (c) => c.name,
        );
      const real = await startQemu({});
      let expected: string[];
      try {
        const qmp = await RawQmp.connect(real.socketPath);
        await qmp.handshake();
        expected = names((await transcript(qmp, ['{"execute":"query-commands"}']))[1]);
        qmp.close();
      } finally {
        await real.stop();
      }
      const { vm, qmp } = await start({ strict: true });
      try {
        const got = names((await transcript(qmp, ['{"execute":"query-commands"}']))[1]);
        // The commands both have and the catalogue describes (under strict, every command the
        // simulator answers is the catalogue's).
        const catalogue = new Set(qemuSchema.commands("7.2.22"));
        const both = new Set(got.filter((n) => expected.includes(n) && catalogue.has(n)));
        // Sanity: most of the simulator's commands are QEMU's (the comparison means something).
        assert.ok(both.size >= 25, `only ${both.size} commands in common`);
        for (const name of ["block-stream", "migrate-incoming", "migrate-set-capabilities"]) {
          assert.ok(both.has(name), `${name} should be placed by the catalogue's order`);
        }
        assert.deepEqual(
          got.filter((n) => both.has(n)),
          expected.filter((n) => both.has(n)),
        );
        // QEMU registers query-status first (run-state.json): it is printed last by both.
        assert.equal(got.at(-1), "query-status");
        assert.equal(expected.at(-1), "query-status");
      } finally {
        qmp.close();
        await vm.close();
      }
    },
  );

  test("should match an -incoming defer session", realQemuTest(), async () => {
    const session = [
      '{"execute":"query-status"}',
      '{"execute":"migrate-set-capabilities","arguments":{}}',
      '{"execute":"migrate-set-capabilities","arguments":{"capabilities":{}}}',
      '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"events"}]}}',
      '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"bogus","state":true}]}}',
      '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"switchover-ack","state":true}]}}',
      '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"compress","state":false},{"capability":"events","state":"yes"}]}}',
      '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"events","state":true}]}}',
      '{"execute":"migrate-incoming","arguments":{}}',
      '{"execute":"migrate-incoming","arguments":{"uri":1}}',
      '{"execute":"migrate-incoming","arguments":{"uri":"tcp:127.0.0.1:0","exit-on-error":false}}',
      '{"execute":"migrate-incoming","arguments":{"uri":"bogus:1"}}',
      '{"execute":"migrate-incoming","arguments":{"uri":"tcp:127.0.0.1:0"}}',
      '{"execute":"migrate-incoming","arguments":{"uri":"tcp:127.0.0.1:0"}}',
      '{"execute":"cont"}',
      '{"execute":"stop"}',
      '{"execute":"system_reset"}',
      '{"execute":"query-status"}',
    ];
    const expected = await realTranscript({ args: ["-incoming", "defer"] }, session, 200);
    const { vm, qmp } = await start({ startPaused: true, incoming: "defer" });
    try {
      assert.deepEqual(await transcript(qmp, session), expected);
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test(
    "should match device_del of USB devices and virtio-serial ports (no guest needed)",
    realQemuTest(),
    async () => {
      const args = [
        "-device",
        "qemu-xhci,id=xhci",
        "-device",
        "usb-kbd,id=kbd1",
        "-device",
        "virtio-serial-pci,id=vs",
        "-device",
        "virtserialport,id=port1,name=org.example.0",
      ];
      const session = [
        '{"execute":"device_del","arguments":{"id":"kbd1"}}',
        '{"execute":"device_del","arguments":{"id":"port1"}}',
        '{"execute":"device_del","arguments":{"id":"vs"}}',
        '{"execute":"device_del","arguments":{"id":"vs"}}',
        '{"execute":"device_del","arguments":{"id":"kbd1"}}',
      ];
      const expected = await realTranscript({ machine: "pc", args }, session, 200);
      const { vm, qmp } = await start(
        machineOptionsFrom(parseQemuOptions(["-machine", "pc", "-S", ...args])),
      );
      try {
        assert.deepEqual(await transcript(qmp, session), expected);
      } finally {
        qmp.close();
        await vm.close();
      }
    },
  );

  test(
    "should match block-stream and block-job-cancel on a drive without a backing file",
    realQemuTest(),
    async () => {
      const args = [
        "-drive",
        "driver=null-co,if=none,id=d0,size=16M",
        "-device",
        "virtio-blk-pci,drive=d0,id=disk0",
      ];
      const session = [
        '{"execute":"block-stream","arguments":{"device":"d0"}}',
        '{"execute":"query-block-jobs"}',
        '{"execute":"block-stream","arguments":{"device":"d0","speed":1}}',
        '{"execute":"block-job-cancel","arguments":{"device":"d0"}}',
        '{"execute":"block-stream","arguments":{"device":"nope"}}',
        // Argument errors, checked by the catalogue's validator with QEMU 7.2's words; the
        // members later releases added are unknown to 7.2.
        '{"execute":"block-stream","arguments":{}}',
        '{"execute":"block-stream","arguments":{"device":1}}',
        '{"execute":"block-stream","arguments":{"device":"d0","speed":"x"}}',
        '{"execute":"block-stream","arguments":{"device":"d0","on-error":"bogus"}}',
        '{"execute":"block-stream","arguments":{"device":"d0","bogus":1}}',
        '{"execute":"block-stream","arguments":{"device":"d0","backing-mask-protocol":true}}',
        '{"execute":"block-stream","arguments":{"device":"d0","job-id":"j1","on-error":"stop","auto-finalize":true}}',
      ];
      const expected = await realTranscript({ machine: "pc", args }, session, 200);
      const { vm, qmp } = await start(
        machineOptionsFrom(parseQemuOptions(["-machine", "pc", "-S", ...args])),
      );
      try {
        assert.deepEqual(await transcript(qmp, session), expected);
      } finally {
        qmp.close();
        await vm.close();
      }
    },
  );
});

suite("yank and the monitors' chardevs", () => {
  test("should list each listening monitor as a chardev, named as QEMU names -qmp's or as given", async () => {
    const { vm, qmp } = await start({ startPaused: true });
    try {
      await vm.listen(`unix:${join(dir, `vm${counter++}.sock`)}`, { chardev: "mon1" });
      vm.accept(createMemoryPair()[0]); // compat_monitor1, not a socket chardev: not listed
      await vm.listen(`unix:${join(dir, `vm${counter++}.sock`)}`);
      const [a, b] = createMemoryPair();
      vm.addChardevMonitor("fdmon").accept(a);
      assert.deepEqual(await transcript(qmp, ['{"execute": "query-yank"}']), [
        '>> {"execute": "query-yank"}\n',
        '{"return": [{"type": "chardev", "id": "compat_monitor0"}, {"type": "chardev", "id": "mon1"}, {"type": "chardev", "id": "compat_monitor2"}, {"type": "chardev", "id": "fdmon"}]}\r\n',
      ]);
      // Yanking the caller-connected chardev ends its stream.
      const closed = new Promise<void>((resolve) => b.once("close", () => resolve()));
      b.resume();
      assert.deepEqual(
        await transcript(qmp, [
          '{"execute": "yank", "arguments": {"instances": [{"type": "chardev", "id": "fdmon"}]}}',
        ]),
        [
          '>> {"execute": "yank", "arguments": {"instances": [{"type": "chardev", "id": "fdmon"}]}}\n',
          '{"return": {}}\r\n',
        ],
      );
      await closed;
    } finally {
      qmp.close();
      await vm.close();
    }
  });

  test("should drop the other monitor's client, answer the one that asked, and refuse unknown instances", async () => {
    const { vm, qmp } = await start({ startPaused: true });
    const second = join(dir, `vm${counter++}.sock`);
    try {
      await vm.listen(`unix:${second}`);
      const other = await RawQmp.connect(second);
      await other.handshake();
      assert.deepEqual(
        await transcript(qmp, [
          '{"execute": "yank", "arguments": {"instances": [{"type": "chardev", "id": "compat_monitor1"}, {"type": "migration"}]}}',
          '{"execute": "yank", "arguments": {"instances": [{"type": "chardev", "id": "compat_monitor1"}]}}',
        ]),
        [
          '>> {"execute": "yank", "arguments": {"instances": [{"type": "chardev", "id": "compat_monitor1"}, {"type": "migration"}]}}\n',
          '{"error": {"class": "DeviceNotFound", "desc": "Instance not found"}}\r\n',
          '>> {"execute": "yank", "arguments": {"instances": [{"type": "chardev", "id": "compat_monitor1"}]}}\n',
          '{"return": {}}\r\n',
        ],
      );
      assert.equal(await other.nextLine(2_000), undefined);
      assert.equal(other.isEnded, true);
      other.close();
      // The monitor still listens: the next client gets a greeting.
      const again = await RawQmp.connect(second);
      assert.match((await again.nextLine()) ?? "", /^\{"QMP": /);
      again.close();
    } finally {
      qmp.close();
      await vm.close();
    }
  });
});
