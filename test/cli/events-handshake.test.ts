/**
 * `qmpkit events` keeps the events QEMU writes during the client's handshake: after the
 * negotiation, before the answer to the first `query-status` (which `QmpClient.connect` waits
 * for). A peer that writes an event exactly there (QEMU may: events go out whenever they
 * happen, qemu-behaviour §1.6) must see it printed, before the events that follow.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runCli } from "./support.js";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-events-handshake-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const greeting = {
  QMP: {
    version: { qemu: { micro: 22, minor: 2, major: 7 }, package: "Debian 1:7.2+dfsg-7+deb12u22" },
    capabilities: ["oob"],
  },
};

function event(id: string): string {
  const now = Date.now();
  return JSON.stringify({
    event: "DEVICE_TRAY_MOVED",
    data: { device: "", "tray-open": true, id },
    timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 },
  });
}

/**
 * A peer that answers the handshake and writes `early` events (ids early, or early-0 … when
 * more than one) right before query-status's answer, and one `late` event after it.
 */
function peer(path: string, early = 1): Promise<Server> {
  const server = createServer((socket) => {
    socket.write(`${JSON.stringify(greeting)}\r\n`);
    let buffered = "";
    socket.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line === "") continue;
        const request = JSON.parse(line) as { execute?: string; id?: unknown };
        const id = request.id === undefined ? {} : { id: request.id };
        if (request.execute === "query-status") {
          for (let i = 0; i < early; i++) {
            socket.write(`${event(early === 1 ? "early" : `early-${i}`)}\r\n`);
          }
          socket.write(
            `${JSON.stringify({ return: { status: "running", singlestep: false, running: true }, ...id })}\r\n`,
          );
          socket.write(`${event("late")}\r\n`);
        } else if (request.execute === "qmp_capabilities") {
          socket.write(`${JSON.stringify({ return: {}, ...id })}\r\n`);
        } else {
          socket.write(
            `${JSON.stringify({ error: { class: "CommandNotFound", desc: `The command ${request.execute} has not been found` }, ...id })}\r\n`,
          );
        }
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

test("events should print an event written during the handshake, before the later ones", async () => {
  const path = join(dir, "vm.qmp");
  const server = await peer(path);
  try {
    const result = await runCli(["events", "--json", "--count", "2", `unix:${path}`]);
    assert.equal(result.status, 0, result.stderr);
    const ids = result.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event?: string; data?: { id?: string } })
      .filter((o) => o.event === "DEVICE_TRAY_MOVED")
      .map((o) => o.data?.id);
    assert.deepEqual(ids, ["early", "late"]);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test("events should print every event of a handshake flood, more than the client's history holds", async () => {
  const path = join(dir, "flood.qmp");
  // 150: more than the 100 a client keeps in its history by default.
  const server = await peer(path, 150);
  try {
    const result = await runCli(["events", "--json", "--count", "151", `unix:${path}`]);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event?: string; watch?: string; data?: { id?: string } });
    assert.deepEqual(
      lines.filter((o) => o.watch !== undefined).map((o) => o.watch),
      ["connected"],
    );
    const ids = lines.filter((o) => o.event === "DEVICE_TRAY_MOVED").map((o) => o.data?.id);
    assert.deepEqual(ids, [...Array.from({ length: 150 }, (_, i) => `early-${i}`), "late"]);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
