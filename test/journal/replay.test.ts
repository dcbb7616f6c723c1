/**
 * Replay against the oracle: a session recorded from real QEMU 7.2.22 into a journal (every
 * frame, both directions, through `QmpClient`'s `onTraffic`), then served by `replaySession` in
 * `strict` and `keyed` modes and driven by the same client code: the same replies and events,
 * byte for byte (the client's ids are the same on every connection, and the events keep their
 * recorded timestamps). Mismatches in both modes, and the pieces (id substitution, the diff).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { isCommandError } from "../../src/base/errors.js";
import type { JsonObject } from "../../src/base/json.js";
import { QmpClient, type QmpEvent } from "../../src/client/index.js";
import {
  Journal,
  lineDiff,
  loadReplayScript,
  type ReplayMode,
  type ReplayScript,
  replaySession,
  replyWithId,
  scriptFromReplies,
} from "../../src/journal/index.js";
import { RawQmp, realQemuTest, startQemu } from "../support/real-qemu.js";
import { DRIVE_MACHINE, drive, EXPECTED_EVENTS, type Run, SAMPLE_REPLIES } from "./support.js";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-replay-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const socket = () => `unix:${join(dir, `r${++n}.sock`)}`;

/** Records `drive` against a fresh real QEMU into a journal; returns the journal's path. */
async function recordRealSession(): Promise<{ path: string; run: Run }> {
  const qemu = await startQemu(DRIVE_MACHINE);
  const path = join(dir, "recorded.db");
  const journal = Journal.open(path);
  try {
    const vm = journal.vm({ name: "vm1", address: qemu.socketPath });
    const session = journal.openSession(vm, "qemu");
    let partial = "";
    const run = await drive(`unix:${qemu.socketPath}`, (direction, text) => {
      if (direction === "out") {
        journal.frame(session, "out", text);
        return;
      }
      // What arrives is chunks; QEMU ends each message with \r\n.
      partial += text;
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== "") journal.frame(session, "in", line);
    });
    journal.closeSession(session);
    return { path, run };
  } finally {
    journal.close();
    await qemu.stop();
  }
}

const stripTimestamps = (events: QmpEvent[]) => events.map(({ event, data }) => ({ event, data }));

suite("replay: a session recorded from real QEMU 7.2", () => {
  let recorded: { path: string; run: Run } | undefined;
  let script: ReplayScript;
  const real = realQemuTest();
  before(async () => {
    if (real.skip !== undefined) return;
    recorded = await recordRealSession();
    script = await loadReplayScript(recorded.path);
  });

  test("should have recorded the drive's replies and events from QEMU", real, () => {
    const { run } = recorded!;
    assert.deepEqual(
      run.events.map((e) => e.event).sort(),
      [...EXPECTED_EVENTS].sort(),
      "QEMU's events",
    );
    assert.deepEqual(run.replies.at(-2), {
      class: "DeviceNotFound",
      desc: "Device 'no-such-device' not found",
    });
    assert.equal(script.exchanges[0]!.name, "qmp_capabilities");
    assert.deepEqual(
      script.exchanges.slice(1).map((e) => e.name),
      [
        "query-status",
        "cont",
        "stop",
        "system_reset",
        "eject",
        "set-action",
        "device_del",
        "query-status",
      ],
    );
  });

  for (const mode of ["strict", "keyed"] as ReplayMode[]) {
    for (const speed of [1, 0]) {
      test(
        `should answer the same client code as QEMU did, byte for byte (${mode}, speed ${speed})`,
        real,
        async () => {
          const reports: string[] = [];
          const replay = await replaySession(script, {
            listen: socket(),
            mode,
            speed,
            report: (t) => reports.push(t),
          });
          try {
            const run = await drive(replay.address);
            const { run: original } = recorded!;
            assert.deepEqual(run.replies, original.replies);
            assert.deepEqual(stripTimestamps(run.events), stripTimestamps(original.events));
            // Events keep their recorded timestamps; the ids are the client's, the same as then.
            assert.deepEqual(run.events, original.events);
            assert.equal(run.received, original.received);
            assert.deepEqual(reports, []);
            assert.deepEqual(replay.mismatches, []);
          } finally {
            await replay.close();
          }
        },
      );
    }
  }

  test(
    "strict: a command out of order gets a GenericError saying expected and received, and a diff report",
    real,
    async () => {
      const reports: string[] = [];
      const replay = await replaySession(script, {
        listen: socket(),
        mode: "strict",
        speed: 0,
        report: (t) => reports.push(t),
      });
      try {
        const client = await QmpClient.connect(replay.address, { trackRunState: false });
        try {
          await client.execute("query-status");
          await assert.rejects(client.execute("stop"), (e) => {
            assert.ok(isCommandError(e));
            assert.equal(e.errorClass, "GenericError");
            assert.equal(e.desc, "replay: expected cont (recorded command 3), received stop");
            return true;
          });
          assert.equal(reports.length, 1);
          assert.match(reports[0]!, /^qmpkit replay: GenericError: replay: expected cont/);
          assert.match(reports[0]!, /--- expected \(recorded command 3\)\n\+\+\+ received\n/);
          assert.match(reports[0]!, /^- {3}"execute": "cont"$/m);
          assert.match(reports[0]!, /^\+ {3}"execute": "stop"$/m);
          // The position stays: the recorded command is still answered.
          assert.deepEqual(await client.execute("cont"), {});
          // Equal arguments in another order (and spelling) match; other values do not.
          await client.execute("stop");
          await client.execute("system_reset");
          await assert.rejects(client.execute("eject", { id: "cd", force: false }), (e) => {
            assert.ok(isCommandError(e));
            assert.match(
              e.desc,
              /expected eject \{"force":true,"id":"cd"\}.*received eject \{"force":false,"id":"cd"\}/,
            );
            return true;
          });
          assert.match(reports[1]!, /^- {5}"force": true,$/m);
          assert.match(reports[1]!, /^\+ {5}"force": false,$/m);
          assert.deepEqual(await client.execute("eject", { force: true, id: "cd" }), {});
          assert.equal(replay.mismatches.length, 2);
        } finally {
          await client.close();
        }
      } finally {
        await replay.close();
      }
    },
  );

  test(
    "keyed: any order; an unrecorded name gets CommandNotFound, other arguments a GenericError, never a hang",
    real,
    async () => {
      const reports: string[] = [];
      const replay = await replaySession(script, {
        listen: socket(),
        mode: "keyed",
        speed: 0,
        report: (t) => reports.push(t),
      });
      try {
        const client = await QmpClient.connect(replay.address, { trackRunState: false });
        try {
          const stream = client.events();
          // stop before cont: both recorded, so both answered, each with its recorded event.
          assert.deepEqual(await client.execute("stop"), {});
          assert.deepEqual(await client.execute("cont"), {});
          const first = await stream.next();
          const second = await stream.next();
          assert.deepEqual(
            [first.value?.event, second.value?.event],
            ["STOP", "RESUME"],
            "each command's own events, in the order the commands came",
          );
          await assert.rejects(client.execute("query-name"), (e) => {
            assert.ok(isCommandError(e));
            assert.equal(e.errorClass, "CommandNotFound");
            assert.equal(e.desc, "The command query-name has not been found");
            return true;
          });
          await assert.rejects(client.execute("set-action", { reboot: "reset" }), (e) => {
            assert.ok(isCommandError(e));
            assert.equal(e.errorClass, "GenericError");
            assert.equal(
              e.desc,
              'replay: set-action was not recorded with these arguments ({"reboot":"reset"})',
            );
            return true;
          });
          // Occurrences: the two recorded query-status answers, then the last one again.
          const statuses = [
            await client.execute("query-status"),
            await client.execute("query-status"),
            await client.execute("query-status"),
          ];
          assert.deepEqual(statuses[0], { status: "prelaunch", singlestep: false, running: false });
          assert.deepEqual(statuses[1], statuses[2]);
          assert.equal(reports.length, 2);
          stream.close();
        } finally {
          await client.close();
        }
      } finally {
        await replay.close();
      }
    },
  );
});

suite("replay: recordings without QEMU", () => {
  test("should serve a libvirt .replies recording, greeting with its query-version answer", async () => {
    const script = scriptFromReplies(SAMPLE_REPLIES, "caps.replies");
    assert.equal(
      script.greeting,
      '{"QMP": {"version": {"qemu": {"micro": 2, "minor": 2, "major": 8}, "package": "v8.2.2"}, "capabilities": ["oob"]}}',
    );
    const replay = await replaySession(script, { listen: socket(), mode: "keyed" });
    try {
      const client = await QmpClient.connect(replay.address, { trackRunState: false });
      try {
        assert.deepEqual(client.greeting.version.qemu, { major: 8, minor: 2, micro: 2 });
        assert.deepEqual(await client.execute("query-kvm"), { enabled: true, present: true });
        assert.deepEqual(await client.execute("query-version"), {
          qemu: { major: 8, minor: 2, micro: 2 },
          package: "v8.2.2",
        });
      } finally {
        await client.close();
      }
    } finally {
      await replay.close();
    }
  });

  test("should answer malformed input and commands before negotiation as QEMU does", async () => {
    const script = scriptFromReplies(SAMPLE_REPLIES);
    const replay = await replaySession(script, { listen: socket(), report: () => {} });
    const raw = await RawQmp.connect(replay.address.slice("unix:".length));
    try {
      await raw.nextLine();
      raw.send('{"execute": "query-kvm", "id": 1}\n');
      // strict: query-kvm is not the next recorded command.
      assert.match(
        (await raw.nextLine()) ?? "",
        /"class": "GenericError".*expected qmp_capabilities/,
      );
      raw.send("[]\n");
      assert.equal(
        await raw.nextLine(),
        '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}\r\n',
      );
      raw.send('{"execute": "qmp_capabilities", "id": {"a": [1]}}\n');
      assert.equal(await raw.nextLine(), '{"return": {}, "id": {"a": [1]}}\r\n');
    } finally {
      raw.close();
      await replay.close();
    }
  });

  test("should replace only the id of a recorded reply, and print a diff", () => {
    const text = '{"return": {"id": "inner"}, "id": "libvirt-1"}';
    const value = JSON.parse(text) as JsonObject;
    assert.equal(replyWithId(text, value, 7), '{"return": {"id": "inner"}, "id": 7}');
    assert.equal(replyWithId(text, value, undefined), '{"return": {"id": "inner"}}');
    assert.equal(replyWithId('{"return": {}}', { return: {} }, "x"), '{"return": {}, "id": "x"}');
    assert.equal(lineDiff("a\nb\nc", "a\nx\nc"), "  a\n- b\n+ x\n  c");
  });
});
