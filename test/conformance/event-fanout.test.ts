/**
 * One event, one timestamp, against real QEMU 7.2.22 and 10.0.2: three QMP monitors (two
 * `-qmp`, one `-mon …,pretty=on`), host commands sent on the first. QEMU builds each event once
 * (`qmp_event_build_dict` stamps it) and hands that one dict to every monitor
 * (`monitor_qapi_event_emit`, monitor/monitor.c), so every monitor's event lines are the same
 * bytes, timestamp included; the pretty monitor prints the same dict pretty. The simulator, with
 * the same three monitors, must do the same, and print the same lines as QEMU but for the
 * timestamps' values: through its API, and as `qmpkit sim` run with QEMU's command line (two
 * `-qmp`, then the drop-in's `-chardev` and `-mon`).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { SimulatedMachine } from "../../src/sim/index.js";
import {
  QEMU_10,
  type QemuInstallation,
  RawQmp,
  realQemuTest,
  SYSTEM_QEMU,
  startQemu,
} from "../support/real-qemu.js";
import { waitForPath } from "../support/wait-for-path.js";
import { cliMain, repoRoot } from "../cli/support.js";

/** Host commands on the first monitor, each waited for; each causes one event or more. */
const COMMANDS = ["cont", "stop", "system_reset", "cont", "stop", "cont", "system_reset", "stop"];

/** Reads one message: a line, or for a pretty monitor the lines up to the closing `}`. */
async function nextMessage(qmp: RawQmp, pretty: boolean, timeoutMs?: number) {
  let text = "";
  for (;;) {
    const line = await qmp.nextLine(timeoutMs);
    if (line === undefined) return text === "" ? undefined : text;
    text += line;
    if (!pretty || line === "}\r\n") return text;
  }
}

/** Every message that arrives within `quietMs` of the previous one. */
async function drainMessages(qmp: RawQmp, pretty: boolean, quietMs = 300): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const message = await nextMessage(qmp, pretty, quietMs);
    if (message === undefined) return out;
    out.push(message);
  }
}

/** What each monitor received: its event messages, as printed, in order. */
async function run(paths: readonly [string, string, string]): Promise<string[][]> {
  const monitors = await Promise.all(paths.map((p) => RawQmp.connect(p)));
  const pretty = [false, false, true];
  const events: string[][] = [[], [], []];
  try {
    for (const [i, m] of monitors.entries()) {
      await nextMessage(m, pretty[i]!);
      m.send('{"execute":"qmp_capabilities"}');
      assert.match((await nextMessage(m, pretty[i]!)) ?? "", /"return"/);
    }
    const first = monitors[0]!;
    for (const [i, command] of COMMANDS.entries()) {
      first.send(`{"execute":"${command}","id":${i}}`);
      for (;;) {
        const message = await nextMessage(first, false);
        assert.ok(message !== undefined, `no reply to ${command}`);
        if (message.startsWith('{"return"')) break;
        events[0]!.push(message);
      }
    }
    // Events a command's request causes may come after its reply (§1.9): wait for quiet.
    const rest = await Promise.all(monitors.map((m, i) => drainMessages(m, pretty[i]!)));
    for (const [i, messages] of rest.entries()) events[i]!.push(...messages);
  } finally {
    for (const m of monitors) m.close();
  }
  return events;
}

/** The message's JSON on one line, members in printed order (a pretty one made plain). */
const compact = (text: string) => `${JSON.stringify(JSON.parse(text))}`;

/** The timestamps' values taken out. */
const unstamped = (text: string) =>
  text
    .replace(/"seconds": \d+/g, '"seconds": S')
    .replace(/"microseconds": \d+/g, '"microseconds": U');

/** Every monitor got the same bytes: the plain ones identical, the pretty one the same dicts. */
function assertSameOnEveryMonitor(events: string[][], who: string): void {
  const [a, b, pretty] = events as [string[], string[], string[]];
  assert.ok(a.length >= COMMANDS.length, `${who}: only ${a.length} events`);
  assert.deepEqual(b, a, `${who}: the second monitor's event lines`);
  assert.deepEqual(pretty.map(compact), a.map(compact), `${who}: the pretty monitor's events`);
  assert.ok(
    pretty.every((p) => p.includes("\r\n    ")),
    `${who}: the third monitor prints pretty`,
  );
}

/** The second and third monitors: a `-qmp`, and a `pretty=on` monitor on a `-chardev`. */
function monitorArgs(second: string, third: string): string[] {
  return [
    ...["-qmp", `unix:${second},server=on,wait=off`],
    ...["-chardev", `socket,id=pretty0,path=${third},server=on,wait=off`],
    ...["-mon", "chardev=pretty0,mode=control,pretty=on"],
  ];
}

/** `qmpkit sim` run with the command line QEMU got (the first monitor's `-qmp` included). */
async function runCli(version: string, paths: readonly [string, string, string]) {
  const child = spawn(
    process.execPath,
    [
      ...["--import", "tsx", cliMain, "sim", "--qemu-version", version],
      ...["-machine", "none", "-display", "none", "-nodefaults", "-S"],
      ...["-qmp", `unix:${paths[0]},server=on,wait=off`],
      ...monitorArgs(paths[1], paths[2]),
    ],
    { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] },
  );
  try {
    for (const path of paths) await waitForPath(path, { child, timeoutMs: 30_000 });
    return await run(paths);
  } finally {
    child.kill("SIGKILL");
  }
}

for (const [label, qemu, version] of [
  ["QEMU 7.2.22", SYSTEM_QEMU, "7.2.22"],
  ["QEMU 10.0.2", QEMU_10, "10.0.2"],
] as const satisfies ReadonlyArray<readonly [string, QemuInstallation, string]>) {
  suite(
    `one event, one timestamp on three monitors: the simulator against ${label}`,
    realQemuTest(qemu),
    () => {
      test(`should send every monitor the same event bytes, as ${label} does`, async () => {
        const dir = mkdtempSync(join(tmpdir(), "qmpkit-fanout-"));
        const paths = (prefix: string) =>
          [0, 1, 2].map((i) => join(dir, `${prefix}${i}.sock`)) as [string, string, string];
        try {
          const realPaths = paths("q");
          const p = await startQemu({
            qemu,
            socketPath: realPaths[0],
            args: monitorArgs(realPaths[1], realPaths[2]),
          });
          let expected: string[][];
          try {
            expected = await run(realPaths);
          } finally {
            await p.stop();
          }
          assertSameOnEveryMonitor(expected, label);

          const vm = new SimulatedMachine({
            qemuVersion: version,
            machine: "none",
            startPaused: true,
          });
          let actual: string[][];
          try {
            const simPaths = paths("s");
            await vm.listen(`unix:${simPaths[0]}`);
            await vm.listen(`unix:${simPaths[1]}`);
            await vm.listen(`unix:${simPaths[2]}`, { chardev: "pretty0", pretty: true });
            actual = await run(simPaths);
          } finally {
            await vm.close();
          }
          assertSameOnEveryMonitor(actual, "the simulator");
          const shape = (monitors: string[][]) => monitors.map((m) => m.map(unstamped));
          assert.deepEqual(shape(actual), shape(expected));

          const cli = await runCli(version, paths("c"));
          assertSameOnEveryMonitor(cli, "qmpkit sim");
          assert.deepEqual(shape(cli), shape(expected));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    },
  );
}
