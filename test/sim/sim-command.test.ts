/** `qmpkit sim` in process: QEMU's option spelling, exit statuses, signals, guest scripts. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { runSim, type SimIo } from "../../src/cli/sim-command.js";
import { RawQmp } from "../support/real-qemu.js";
import { waitForPath } from "../support/wait-for-path.js";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-simcli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function fakeIo(): { io: SimIo; out: () => string; err: () => string; abort: AbortController } {
  let out = "";
  let err = "";
  const abort = new AbortController();
  const sink = (append: (s: string) => void) =>
    ({
      write: (s: string) => {
        append(s);
        return true;
      },
    }) as unknown as SimIo["stdout"];
  return {
    io: {
      stdout: sink((s) => (out += s)),
      stderr: sink((s) => (err += s)),
      signal: abort.signal,
      cwd: dir,
    },
    out: () => out,
    err: () => err,
    abort,
  };
}

suite("qmpkit sim", () => {
  test("should serve QMP on -qmp and exit 0 on quit", async () => {
    const sock = join(dir, "a.sock");
    const { io } = fakeIo();
    const run = runSim(
      [
        "-machine",
        "none",
        "-display",
        "none",
        "-nodefaults",
        "-S",
        "-qmp",
        `unix:${sock},server=on,wait=off`,
      ],
      io,
    );
    await waitForPath(sock, { timeoutMs: 2_000 });
    const qmp = await RawQmp.connect(sock);
    await qmp.handshake();
    qmp.send('{"execute":"query-status"}');
    assert.equal(
      await qmp.nextLine(),
      '{"return": {"status": "prelaunch", "singlestep": false, "running": false}}\r\n',
    );
    qmp.send('{"execute":"quit"}');
    assert.equal(await run, 0);
    qmp.close();
  });

  test("should refuse an unknown option with status 1 and a clear message", async () => {
    const { io, err } = fakeIo();
    assert.equal(await runSim(["-frobnicate"], io), 1);
    assert.match(err(), /^qmpkit sim: -frobnicate: invalid option \(supported: /);
    const second = fakeIo();
    assert.equal(await runSim(["-S"], second.io), 1);
    assert.match(second.err(), /no -qmp monitor/);
    const third = fakeIo();
    assert.equal(
      await runSim(
        ["--qemu-version", "1.0", "-qmp", `unix:${join(dir, "x.sock")},server=on,wait=off`],
        third.io,
      ),
      1,
    );
    assert.match(third.err(), /unknown QEMU version '1\.0': known versions are 7\.2\.22/);
  });

  test("should refuse -action for a QEMU older than 6.0", async () => {
    const { io, err } = fakeIo();
    const sock = `unix:${join(dir, "old.sock")},server=on,wait=off`;
    assert.equal(
      await runSim(["--qemu-version", "2.9.0", "-action", "reboot=shutdown", "-qmp", sock], io),
      1,
    );
    assert.match(err(), /-action: invalid option \(QEMU 2\.9\.0 has none/);
  });

  test("should exit 1 when a guest script panics with -action panic=exit-failure", async () => {
    const script = join(dir, "panic.jsonl");
    writeFileSync(script, '# panic soon\n{"at": "20ms", "action": "panic"}\n');
    const { io } = fakeIo();
    const status = await runSim(
      [
        "-action",
        "panic=exit-failure",
        "-qmp",
        `unix:${join(dir, "b.sock")},server=on,wait=off`,
        "--guest-script",
        script,
      ],
      io,
    );
    assert.equal(status, 1);
  });

  test("should shut down on a host signal even with -no-shutdown", async () => {
    const sock = join(dir, "c.sock");
    const { io, err, abort } = fakeIo();
    const run = runSim(["-no-shutdown", "-qmp", `unix:${sock},server=on,wait=off`], io);
    await waitForPath(sock, { timeoutMs: 2_000 });
    const qmp = await RawQmp.connect(sock);
    await qmp.handshake();
    abort.abort();
    assert.equal(await run, 0);
    assert.match(
      (await qmp.nextLine()) ?? "",
      /"event": "SHUTDOWN", "data": \{"guest": false, "reason": "host-signal"\}/,
    );
    assert.match(err(), /^qemu-system-x86_64: terminating on signal 15\n$/);
    qmp.close();
  });

  test("should print help listing the options", async () => {
    const { io, out } = fakeIo();
    assert.equal(await runSim(["--help"], io), 0);
    assert.match(out(), /-qmp unix:PATH,server=on,wait=off/);
    assert.match(out(), /--guest-script FILE/);
  });
});
