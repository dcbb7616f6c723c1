/**
 * QmpServer's client handling against real QEMU 7.2: one client at a time on a socket chardev
 * (the next waits for its greeting), and events only to negotiated monitors, every monitor
 * getting the same timestamp (QEMU with two `-qmp` sockets, QmpServer with `maxClients: 2`).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { QmpServer, type QmpVersionInfo } from "../../src/server/index.js";
import { type QemuProcess, RawQmp, realQemuTest, startQemu } from "../support/real-qemu.js";
import { waitForPath } from "../support/wait-for-path.js";

/** The shape of a line with the timestamp's numbers taken out. */
const shape = (line: string | undefined) =>
  line?.replace(/"seconds": \d+, "microseconds": \d+/, '"seconds": S, "microseconds": U');

/** Runs the same steps on two servers and returns what each client saw. */
async function oneAtATime(path: string): Promise<string[]> {
  const seen: string[] = [];
  const a = await RawQmp.connect(path);
  const b = await RawQmp.connect(path);
  try {
    seen.push(`a: ${await a.nextLine()}`);
    b.send('{"execute":"qmp_capabilities","id":"b-early"}');
    seen.push(`b while a is served: ${(await b.nextLine(300)) ?? "nothing"}`);
    a.close();
    seen.push(`b: ${await b.nextLine()}`);
    seen.push(`b: ${await b.nextLine()}`);
    b.send('{"execute":"query-name","id":1}');
    seen.push(`b: ${await b.nextLine()}`);
  } finally {
    a.close();
    b.close();
  }
  return seen;
}

async function events(pathA: string, pathB: string): Promise<string[]> {
  const seen: string[] = [];
  const a = await RawQmp.connect(pathA);
  const b = await RawQmp.connect(pathB);
  try {
    await a.handshake();
    await b.nextLine(); // b stays in negotiation mode for now
    a.send('{"execute":"cont","id":1}');
    seen.push(`a: ${shape(await a.nextLine())}`);
    seen.push(`a: ${shape(await a.nextLine())}`);
    b.send('{"execute":"qmp_capabilities"}');
    seen.push(`b: ${await b.nextLine()}`);
    seen.push(`b after negotiating: ${(await b.nextLine(300)) ?? "nothing"}`);
    a.send('{"execute":"stop","id":2}');
    const stopA = await a.nextLine();
    const stopB = await b.nextLine();
    seen.push(`a: ${shape(stopA)}`, `a: ${shape(await a.nextLine())}`, `b: ${shape(stopB)}`);
    seen.push(`same timestamp: ${stopA === stopB}`);
  } finally {
    a.close();
    b.close();
  }
  return seen;
}

suite("QmpServer clients conform to QEMU 7.2", realQemuTest(), () => {
  let qemu: QemuProcess | undefined;
  let server: QmpServer | undefined;
  let twoMonitors: QmpServer | undefined;
  let serverPath = "";
  let pairPath = "";
  let secondQemuPath = "";
  let dir = "";

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "qmpkit-clients-"));
    secondQemuPath = join(dir, "second.sock");
    qemu = await startQemu({ args: ["-qmp", `unix:${secondQemuPath},server=on,wait=off`] });
    await waitForPath(secondQemuPath);
    const probe = await RawQmp.connect(qemu.socketPath);
    const version = (JSON.parse((await probe.nextLine())!) as { QMP: { version: QmpVersionInfo } })
      .QMP.version;
    probe.close();
    server = new QmpServer({ greeting: { version } });
    server.command("query-name", () => ({}));
    serverPath = join(dir, "qmpkit.sock");
    await server.listen(`unix:${serverPath}`);

    twoMonitors = new QmpServer({ greeting: { version }, maxClients: 2 });
    // What QEMU's cont and stop do from prelaunch with no guest: cont emits RESUME before its
    // reply; stop emits STOP before its reply (§1.9).
    twoMonitors.command("cont", () => {
      twoMonitors?.emit("RESUME");
    });
    twoMonitors.command("stop", () => {
      twoMonitors?.emit("STOP");
    });
    pairPath = join(dir, "qmpkit-two.sock");
    await twoMonitors.listen(`unix:${pairPath}`);
  });

  after(async () => {
    await server?.close();
    await twoMonitors?.close();
    await qemu?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("should greet a waiting client only when the first leaves, as a socket chardev does", async () => {
    const expected = await oneAtATime(qemu!.socketPath);
    const actual = await oneAtATime(serverPath);
    assert.equal(expected[1], "b while a is served: nothing");
    assert.deepEqual(actual, expected);
  });

  test("should send events only to negotiated clients, each with the same timestamp", async () => {
    const expected = await events(qemu!.socketPath, secondQemuPath);
    const actual = await events(pairPath, pairPath);
    assert.equal(expected.at(-1), "same timestamp: true");
    assert.deepEqual(actual, expected);
  });
});
