/**
 * QEMU's own Python client library (`qemu.qmp`, from QEMU 7.2's source tree) against a replay,
 * unchanged: the same script runs against real QEMU 7.2.22 through a recording relay (every
 * frame into a journal) and then against `replaySession` of that recording, in both modes; it
 * must print the same greeting, replies and event (with its recorded timestamp).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import type { JsonValue } from "../../src/base/json.js";
import { Journal, loadReplayScript, replaySession } from "../../src/journal/index.js";
import { JsonStreamDecoder, writeCompactJson } from "../../src/wire/index.js";
import { qemuPythonTest, runQemuPython } from "../support/qemu-python.js";
import { realQemuTest, startQemu } from "../support/real-qemu.js";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-replay-py-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The client: connect (qemu.qmp negotiates, enabling OOB), two commands, one event, disconnect. */
const SCRIPT = `
import asyncio, json, sys
from qemu.qmp import QMPClient

async def main(path):
    qmp = QMPClient("replay-test")
    await qmp.connect(path)
    out = {"version": qmp.greeting.QMP.version, "capabilities": qmp.greeting.QMP.capabilities}
    out["status"] = await qmp.execute("query-status")
    out["cont"] = await qmp.execute("cont")
    event = await asyncio.wait_for(qmp.events.get(), 10)
    out["event"] = dict(event)
    out["status-after"] = await qmp.execute("query-status")
    await qmp.disconnect()
    print(json.dumps(out, sort_keys=True))

asyncio.run(main(sys.argv[1]))
`;

/**
 * A unix-socket relay to `upstream` that journals every frame: QEMU's lines as it printed them
 * (`in`), the client's messages (`out`; qemu.qmp sends them without a line end).
 */
async function recordingRelay(upstream: string, path: string, journal: Journal): Promise<Server> {
  const vm = journal.vm({ name: "vm1", address: upstream });
  const server = createServer((client) => {
    const session = journal.openSession(vm, "qemu");
    const qemu = createConnection(upstream);
    let partial = "";
    qemu.setEncoding("utf8").on("data", (text: string) => {
      partial += text;
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== "") journal.frame(session, "in", line);
      client.write(text);
    });
    const decoder = new JsonStreamDecoder({ dialect: "qemu" });
    client.on("data", (chunk: Buffer) => {
      for (const item of decoder.push(chunk)) {
        if (item.kind === "value") journal.frame(session, "out", writeCompactJson(item.value));
      }
      qemu.write(chunk);
    });
    client.on("close", () => qemu.destroy());
    qemu.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

suite("replay: QEMU's Python library (qemu.qmp) against a replay", () => {
  const options = realQemuTest().skip === undefined ? qemuPythonTest() : realQemuTest();
  test(
    "should see the same greeting, replies and event as from real QEMU 7.2",
    options,
    async () => {
      const qemu = await startQemu();
      const journalPath = join(dir, "python.db");
      const journal = Journal.open(journalPath);
      let fromQemu: JsonValue;
      try {
        const relay = await recordingRelay(qemu.socketPath, join(dir, "relay.qmp"), journal);
        try {
          fromQemu = JSON.parse(await runQemuPython(SCRIPT, [join(dir, "relay.qmp")]));
        } finally {
          await new Promise((resolve) => relay.close(resolve));
        }
      } finally {
        journal.close();
        await qemu.stop();
      }
      const recorded = fromQemu as { event: { event: string }; capabilities: string[] };
      assert.equal(recorded.event.event, "RESUME");
      assert.deepEqual(recorded.capabilities, ["oob"]);
      const script = await loadReplayScript(journalPath);
      assert.deepEqual(
        script.exchanges.map((e) => [e.name, e.args]),
        [
          ["qmp_capabilities", { enable: ["oob"] }],
          ["query-status", {}],
          ["cont", {}],
          ["query-status", {}],
        ],
      );
      for (const mode of ["strict", "keyed"] as const) {
        const reports: string[] = [];
        const replay = await replaySession(script, {
          listen: `unix:${join(dir, `replay-${mode}.qmp`)}`,
          mode,
          report: (t) => reports.push(t),
        });
        try {
          const fromReplay = JSON.parse(
            await runQemuPython(SCRIPT, [replay.address.slice("unix:".length)]),
          );
          assert.deepEqual(fromReplay, fromQemu, `qemu.qmp against the ${mode} replay`);
          assert.deepEqual(reports, []);
        } finally {
          await replay.close();
        }
      }
    },
  );
});
