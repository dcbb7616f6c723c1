/**
 * QmpServer's pretty output (`-mon …,pretty=on`) against real QEMU 7.2: the same requests on a
 * pretty monitor of QEMU and on a QmpServer with `pretty: true` must give the same bytes
 * (4-space indentation, empty objects and arrays split over two lines, `\r\n` on every line).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { noArguments, QmpServer, type QmpVersionInfo } from "../../src/server/index.js";
import { type QemuProcess, RawQmp, realQemuTest, startQemu } from "../support/real-qemu.js";
import { waitForPath } from "../support/wait-for-path.js";

/** Everything the server sends for `input` (after the greeting), up to the `__end` reply. */
async function exchange(
  path: string,
  input: string,
): Promise<{ greeting: string[]; replies: string[] }> {
  const qmp = await RawQmp.connect(path);
  try {
    const greeting: string[] = [];
    for (let line = await qmp.nextLine(); line !== undefined; line = await qmp.nextLine()) {
      greeting.push(line);
      if (line === "}\r\n") break;
    }
    qmp.send(`${input}{"execute":"query-name","id":"__end"}`);
    const replies: string[] = [];
    for (let line = await qmp.nextLine(); line !== undefined; line = await qmp.nextLine()) {
      replies.push(line);
      if (line === "}\r\n" && replies.some((l) => l.includes('"__end"'))) break;
    }
    return { greeting, replies };
  } finally {
    qmp.close();
  }
}

suite("QmpServer pretty output conforms to QEMU 7.2", realQemuTest(), () => {
  let qemu: QemuProcess | undefined;
  let server: QmpServer | undefined;
  let qemuPath = "";
  let serverPath = "";
  let dir = "";

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "qmpkit-pretty-"));
    qemuPath = join(dir, "qemu-pretty.sock");
    qemu = await startQemu({
      args: [
        "-chardev",
        `socket,id=pretty,path=${qemuPath},server=on,wait=off`,
        "-mon",
        "chardev=pretty,mode=control,pretty=on",
      ],
    });
    await waitForPath(qemuPath, { timeoutMs: 5_000 });
    const plain = await RawQmp.connect(qemu.socketPath);
    const version = (JSON.parse((await plain.nextLine())!) as { QMP: { version: QmpVersionInfo } })
      .QMP.version;
    plain.close();
    server = new QmpServer({ pretty: true, greeting: { version } });
    server.command(
      "query-status",
      () => ({ running: false, singlestep: false, status: "prelaunch" as const }),
      {
        args: noArguments,
      },
    );
    server.command("query-name", () => ({}), { args: noArguments });
    serverPath = join(dir, "qmpkit-pretty.sock");
    await server.listen(`unix:${serverPath}`);
  });

  after(async () => {
    await server?.close();
    await qemu?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("should print the greeting, replies, nested ids and errors exactly as QEMU", async () => {
    const input =
      '{"execute":"qmp_capabilities"}{"execute":"query-status","id":[1,{"a":[],"b":{}},"x"]}' +
      '{"execute":"nope","id":null}[]{"execute":"query-name","arguments":{"z":1}}';
    const expected = await exchange(qemuPath, input);
    const actual = await exchange(serverPath, input);
    assert.ok(expected.greeting.length > 10, "QEMU's greeting is pretty-printed");
    assert.deepEqual(actual.greeting, expected.greeting);
    assert.deepEqual(actual.replies, expected.replies);
  });
});
