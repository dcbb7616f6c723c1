/**
 * `QmpProxy` passes the upstream's text on (events verbatim, replies with the id spliced in)
 * rather than printing parsed values again: shown with a hand-written upstream whose members are
 * not in the order qmpkit's QEMU writer would print them, so that a re-printed message would
 * differ from what the upstream wrote.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import type { JsonValue } from "../../src/base/json.js";
import { QmpProxy } from "../../src/cli/proxy.js";
import { writeQemuJson } from "../../src/wire/index.js";
import { RawQmp } from "../support/real-qemu.js";

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\r\n';
/** Members in an order the QEMU writer would not print (it sorts by QDict bucket). */
const BODY = '{"zeta": 1, "alpha": {"y": true, "b": "text"}, "mid": [3, {"q": 1, "c": 2}]}';
const EVENT = `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X_EVENT", "data": ${BODY}}`;

/** Greets, accepts qmp_capabilities, answers each request with `replyLine`, then sends EVENT. */
function fakeUpstream(path: string, replyLine: (id: string) => string): Promise<Server> {
  const server = createServer((socket) => {
    socket.setEncoding("utf8");
    socket.write(GREETING);
    let buffer = "";
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        const request = JSON.parse(buffer.slice(0, nl)) as { execute: string; id: string };
        buffer = buffer.slice(nl + 1);
        if (request.execute === "qmp_capabilities") {
          socket.write(`{"return": {}, "id": "${request.id}"}\r\n`);
        } else {
          socket.write(`${replyLine(request.id)}\r\n`);
          socket.write(`${EVENT}\r\n`);
        }
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

suite("proxy: the upstream's text", () => {
  test("should pass replies and events on as the upstream wrote them, ids spliced in", async () => {
    // The premise: printed again by the QEMU writer, BODY would come out differently.
    assert.notEqual(writeQemuJson(JSON.parse(BODY)), BODY);
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-text-"));
    const upstream = await fakeUpstream(join(dir, "up.qmp"), (id) =>
      id.endsWith("#2")
        ? `{"id": "${id}", "error": {"desc": "no such thing", "class": "GenericError"}}`
        : `{"return": ${BODY}, "id": "${id}"}`,
    );
    const proxy = await QmpProxy.start({
      upstream: `unix:${join(dir, "up.qmp")}`,
      listen: [`unix:${join(dir, "proxy.qmp")}`],
    });
    const client = await RawQmp.connect(join(dir, "proxy.qmp"));
    try {
      await client.handshake();
      client.send('{"execute":"x-one","id":{"n":[1]}}');
      assert.equal(await client.nextLine(), `{"return": ${BODY}, "id": {"n": [1]}}\r\n`);
      assert.equal(await client.nextLine(), `${EVENT}\r\n`);
      client.send('{"execute":"x-two"}');
      assert.equal(
        await client.nextLine(),
        '{"error": {"desc": "no such thing", "class": "GenericError"}}\r\n',
      );
      assert.equal(await client.nextLine(), `${EVENT}\r\n`);
    } finally {
      client.close();
      await proxy.close();
      await new Promise((resolve) => upstream.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should print the parsed message again when the upstream does not write ASCII", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-utf8-"));
    // QEMU writes \uXXXX escapes; a peer that writes UTF-8 cannot be sliced by byte counts.
    const body = '{"zeta": "déjà vu", "alpha": 1}';
    const upstream = await fakeUpstream(
      join(dir, "up.qmp"),
      (id) => `{"return": ${body}, "id": "${id}"}`,
    );
    const proxy = await QmpProxy.start({
      upstream: `unix:${join(dir, "up.qmp")}`,
      listen: [`unix:${join(dir, "proxy.qmp")}`],
    });
    const client = await RawQmp.connect(join(dir, "proxy.qmp"));
    try {
      await client.handshake();
      client.send('{"execute":"x-one","id":1}');
      assert.equal(
        await client.nextLine(),
        `${writeQemuJson({ return: JSON.parse(body) as JsonValue, id: 1 })}\r\n`,
      );
      assert.equal(await client.nextLine(), `${writeQemuJson(JSON.parse(EVENT) as JsonValue)}\r\n`);
    } finally {
      client.close();
      await proxy.close();
      await new Promise((resolve) => upstream.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
