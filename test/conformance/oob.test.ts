/**
 * The out-of-band commands (§1.7: `yank`, `query-yank`, `migrate-pause`, `migrate-recover`),
 * differential: the same requests, in band and with `exec-oob`, against real QEMU 7.2.22 and
 * Debian's 10.0.2 and against the simulator with the same command line; every reply compared
 * byte for byte. What varies with the machine (`-machine none` and `pc`, a second `-qmp`
 * monitor, a listening `-incoming`) is part of the scenario, so that `query-yank`'s list is
 * compared too. Then `yank` of a monitor's own chardev (QEMU drops that client without a
 * reply), and the simulator's OOB dispatch: an `exec-oob` reply overtakes in-band commands
 * queued before it.
 */
import assert from "node:assert/strict";
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

/** The requests, one at a time, after `qmp_capabilities` with OOB enabled. */
const REQUESTS: readonly string[] = [
  '{"execute": "query-yank"}',
  '{"exec-oob": "query-yank", "id": 1}',
  '{"execute": "yank", "arguments": {"instances": []}}',
  '{"exec-oob": "yank", "arguments": {"instances": []}, "id": "e"}',
  '{"execute": "yank", "arguments": {"instances": [{"type": "migration"}]}}',
  '{"execute": "yank", "arguments": {"instances": [{"type": "chardev", "id": "nope"}]}}',
  '{"exec-oob": "yank", "arguments": {"instances": [{"type": "block-node", "node-name": "n"}]}, "id": 3}',
  '{"execute": "yank", "arguments": {"instances": [{"type": "chardev", "id": "compat_monitor0"}, {"type": "chardev", "id": "nope"}]}}',
  '{"execute": "yank", "arguments": {"instances": [{"type": "bogus"}]}}',
  '{"execute": "yank", "arguments": {"instances": [{"type": "chardev"}]}}',
  '{"execute": "yank", "arguments": {}}',
  '{"execute": "yank", "arguments": {"instances": [{"type": "migration", "id": "x"}]}}',
  '{"execute": "migrate-pause"}',
  '{"exec-oob": "migrate-pause", "id": 2}',
  '{"execute": "migrate-recover", "arguments": {"uri": "tcp:127.0.0.1:0"}}',
  '{"exec-oob": "migrate-recover", "arguments": {"uri": "tcp:127.0.0.1:0"}, "id": 4}',
  '{"execute": "migrate-recover"}',
  '{"exec-oob": "query-status", "id": 5}',
  '{"execute": "query-yank", "id": "last"}',
];

interface Scenario {
  readonly name: string;
  readonly machine: "none" | "pc";
  /** A second `-qmp` monitor (QEMU's chardev `compat_monitor1`). */
  readonly second?: boolean;
  /** `-incoming tcp:127.0.0.1:0`: a listening destination, whose migration can be yanked. */
  readonly incoming?: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { name: "-machine none", machine: "none" },
  { name: "-machine pc, two monitors", machine: "pc", second: true },
  { name: "-machine none, listening -incoming", machine: "none", incoming: true },
];

/** Negotiates OOB, sends each request and records its reply line (or the end of the stream). */
async function transcript(path: string): Promise<string[]> {
  const raw = await RawQmp.connect(path);
  try {
    const out: string[] = [];
    const greeting = await raw.nextLine();
    assert.ok(greeting !== undefined, `no greeting on ${path}`);
    raw.send('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}');
    out.push((await raw.nextLine()) ?? "<eof>");
    for (const request of REQUESTS) {
      raw.send(request);
      out.push(`${request} -> ${(await raw.nextLine()) ?? "<eof>"}`);
    }
    return out;
  } finally {
    raw.close();
  }
}

async function real(qemu: QemuInstallation, s: Scenario, dir: string): Promise<string[]> {
  const args: string[] = [];
  if (s.second) args.push("-qmp", `unix:${join(dir, "second.sock")},server=on,wait=off`);
  if (s.incoming) args.push("-incoming", "tcp:127.0.0.1:0");
  const p = await startQemu({ qemu, machine: s.machine, args });
  try {
    return await transcript(p.socketPath);
  } finally {
    await p.stop();
  }
}

async function simulated(version: string, s: Scenario, dir: string): Promise<string[]> {
  const vm = new SimulatedMachine({
    qemuVersion: version,
    machine: s.machine,
    startPaused: true,
    ...(s.incoming ? { incoming: "tcp:127.0.0.1:0" } : {}),
  });
  try {
    const path = join(dir, "sim.sock");
    await vm.listen(`unix:${path}`);
    if (s.second) await vm.listen(`unix:${join(dir, "sim-second.sock")}`);
    return await transcript(path);
  } finally {
    await vm.close();
  }
}

for (const [label, qemu, version] of [
  ["QEMU 7.2.22", SYSTEM_QEMU, "7.2.22"],
  ["QEMU 10.0.2", QEMU_10, "10.0.2"],
] as const) {
  suite(`OOB commands: the simulator against ${label}`, realQemuTest(qemu), () => {
    for (const s of SCENARIOS) {
      test(`should answer as ${label} does, byte for byte (${s.name})`, async () => {
        const dir = mkdtempSync(join(tmpdir(), "qmpkit-oob-"));
        try {
          const expected = await real(qemu, s, dir);
          const actual = await simulated(version, s, dir);
          assert.deepEqual(actual, expected);
          // The scenario reaches what it is about (not only refusals).
          const listed = expected.at(-1) ?? "";
          assert.match(listed, /"id": "compat_monitor0"/);
          if (s.second) assert.match(listed, /"id": "compat_monitor1"/);
          if (s.incoming) assert.match(listed, /\{"type": "migration"\}/);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }

    test(`should drop the client that yanks its own monitor, without a reply, as ${label} does`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-oob-"));
      const yankSelf =
        '{"exec-oob": "yank", "arguments": {"instances": [{"type": "chardev", "id": "compat_monitor0"}]}, "id": 9}';
      const run = async (path: string): Promise<string[]> => {
        const raw = await RawQmp.connect(path);
        try {
          await raw.nextLine();
          raw.send('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}');
          await raw.nextLine();
          raw.send(yankSelf);
          const after = (await raw.nextLine(3_000)) ?? "<eof>";
          // The monitor itself lives on: a new client gets a greeting.
          const again = await RawQmp.connect(path);
          try {
            const greeting = (await again.nextLine()) ?? "<eof>";
            return [after, greeting.startsWith('{"QMP": ') ? "greeting" : greeting];
          } finally {
            again.close();
          }
        } finally {
          raw.close();
        }
      };
      const vm = new SimulatedMachine({ qemuVersion: version, startPaused: true });
      const p = await startQemu({ qemu });
      try {
        const expected = await run(p.socketPath);
        await vm.listen(`unix:${join(dir, "sim.sock")}`);
        const actual = await run(join(dir, "sim.sock"));
        assert.deepEqual(actual, expected);
        assert.deepEqual(expected, ["<eof>", "greeting"]);
      } finally {
        await vm.close();
        await p.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

test("should answer an exec-oob command ahead of in-band commands queued before it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-oob-"));
  const vm = new SimulatedMachine({ startPaused: true });
  try {
    const path = join(dir, "sim.sock");
    await vm.listen(`unix:${path}`);
    const raw = await RawQmp.connect(path);
    try {
      await raw.nextLine();
      raw.send('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}');
      await raw.nextLine();
      // One write: the in-band commands are queued while the reader goes on, and the OOB
      // command runs as soon as it is read (§1.7).
      raw.send(
        '{"execute": "query-status", "id": 1}{"execute": "query-name", "id": 2}' +
          '{"exec-oob": "query-yank", "id": "oob"}',
      );
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await raw.next())?.id);
      assert.deepEqual(ids, ["oob", 1, 2]);
      // Without exec-oob the same command keeps its place.
      raw.send('{"execute": "query-status", "id": 1}{"execute": "query-yank", "id": "ib"}');
      assert.deepEqual([(await raw.next())?.id, (await raw.next())?.id], [1, "ib"]);
    } finally {
      raw.close();
    }
  } finally {
    await vm.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
