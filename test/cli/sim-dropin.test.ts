/**
 * `qmpkit sim` as a drop-in for qemu-system-x86_64, through the real CLI: the chardev forms test
 * harnesses use (socket path, inherited connected and listening descriptors), -pidfile,
 * -daemonize, accepted-and-ignored options, and refusals.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { qemuBinary, RawQmp, realQemuTest } from "../support/real-qemu.js";
import { waitForPath } from "../support/wait-for-path.js";
import { cliMain, collect, repoRoot, runCli } from "./support.js";

const qemuMain = join(repoRoot, "src/cli/qemu-main.ts");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const greeting7222 =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}\r\n';

/** Negotiates, runs query-status, then quit; checks the bytes. */
async function converse(qmp: RawQmp, status = "running"): Promise<void> {
  assert.equal(await qmp.nextLine(), greeting7222);
  qmp.send('{"execute":"qmp_capabilities"}{"execute":"query-status","id":1}');
  assert.equal(await qmp.nextLine(), '{"return": {}}\r\n');
  assert.equal(
    await qmp.nextLine(),
    `{"return": {"status": "${status}", "singlestep": false, "running": ${status === "running"}}, "id": 1}\r\n`,
  );
  qmp.send('{"execute":"quit"}');
  assert.match(
    (await qmp.nextLine())!,
    /"event": "SHUTDOWN", "data": \{"guest": false, "reason": "host-qmp-quit"\}\}\r\n$/,
  );
  assert.equal(await qmp.nextLine(), '{"return": {}}\r\n');
}

suite("sim as a drop-in QEMU", () => {
  test("should serve -mon on a -chardev socket path, write and remove -pidfile, ignore what does not matter", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-dropin-"));
    const sock = join(dir, "mon.sock");
    const pidfile = join(dir, "qemu.pid");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        qemuMain,
        "-machine",
        "pc",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-vga",
        "none",
        "-smp",
        "2",
        "-cpu",
        "max",
        "-serial",
        "none",
        "-monitor",
        "none",
        "-chardev",
        `socket,id=mon0,path=${sock},server=on,wait=off`,
        "-mon",
        "chardev=mon0,mode=control",
        "-pidfile",
        pidfile,
        "-S",
      ],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
    );
    const done = collect(child);
    try {
      await waitForPath(pidfile, { child, timeoutMs: 15_000 });
      assert.equal(readFileSync(pidfile, "utf8"), `${child.pid}\n`);
      await converse(await RawQmp.connect(sock), "prelaunch");
      const r = await done;
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!existsSync(pidfile), "the pid file is removed at exit");
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should serve a monitor on an inherited connected socket (fd=N), as QEMU's Python harness passes it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-dropin-fd-"));
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(join(dir, "pair.sock"), r));
    const accepted = new Promise<Socket>((r) => server.once("connection", r));
    const ours = connect(join(dir, "pair.sock"));
    const theirs = await accepted;
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        cliMain,
        "sim",
        "-display",
        "none",
        "-chardev",
        "socket,id=mon,fd=3",
        "-mon",
        "chardev=mon,mode=control",
      ],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe", theirs] },
    );
    const done = collect(child);
    theirs.destroy();
    try {
      const qmp = await new Promise<RawQmp>((resolve, reject) => {
        // RawQmp wants a path; talk over our end of the pair with the same framing instead.
        let buffer = "";
        const lines: string[] = [];
        const waiters: Array<() => void> = [];
        ours.setEncoding("latin1").on("data", (s: string) => {
          buffer += s;
          for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
            lines.push(buffer.slice(0, nl + 1));
            buffer = buffer.slice(nl + 1);
          }
          for (const w of waiters.splice(0)) w();
        });
        ours.once("error", reject);
        resolve({
          send: (t: string) => ours.write(t),
          nextLine: async () => {
            while (lines.length === 0) await new Promise<void>((w) => waiters.push(w));
            return lines.shift();
          },
        } as unknown as RawQmp);
      });
      await converse(qmp);
      const r = await done;
      assert.equal(r.status, 0, r.stderr);
    } finally {
      child.kill("SIGKILL");
      ours.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should accept on an inherited listening socket (fd=N,server=on)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-dropin-lfd-"));
    const path = join(dir, "listen.sock");
    const server: Server = createServer(() => assert.fail("the parent must not accept"));
    await new Promise<void>((r) => server.listen(path, r));
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        cliMain,
        "sim",
        "-chardev",
        "socket,id=mon,fd=3,server=on,wait=off",
        "-mon",
        "chardev=mon,mode=control",
      ],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe", fd] },
    );
    const done = collect(child);
    // The parent stops listening; the socket file stays, the child's copy accepts.
    (server as unknown as { _handle: { onconnection: unknown } })._handle.onconnection = () => {};
    try {
      await new Promise((r) => setTimeout(r, 200));
      const deadline = Date.now() + 15_000;
      let qmp: RawQmp | undefined;
      while (!qmp) {
        const attempt = await RawQmp.connect(path);
        const first = await attempt.nextLine(500);
        if (first === greeting7222) {
          qmp = attempt;
          break;
        }
        attempt.close();
        if (Date.now() > deadline) throw new Error("no greeting on the inherited listening socket");
      }
      qmp.send('{"execute":"qmp_capabilities"}{"execute":"quit"}');
      assert.equal(await qmp.nextLine(), '{"return": {}}\r\n');
      const r = await done;
      assert.equal(r.status, 0, r.stderr);
    } finally {
      child.kill("SIGKILL");
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("should return once the monitors listen with -daemonize, leaving the simulator running", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-dropin-daemon-"));
    const sock = join(dir, "qmp.sock");
    const pidfile = join(dir, "qemu.pid");
    let pid: number | undefined;
    try {
      const r = await runCli([
        "sim",
        "-qmp",
        `unix:${sock},server=on,wait=off`,
        "-daemonize",
        "-pidfile",
        pidfile,
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(existsSync(sock), "the monitor listens when the parent returns");
      pid = Number(readFileSync(pidfile, "utf8"));
      assert.ok(alive(pid), "the daemon runs");
      await converse(await RawQmp.connect(sock));
      for (let i = 0; i < 100 && alive(pid); i++) await new Promise((res) => setTimeout(res, 50));
      assert.ok(!alive(pid), "quit ends the daemon");
      assert.ok(!existsSync(pidfile));
    } finally {
      if (pid !== undefined && alive(pid)) process.kill(pid, "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(
    "should name -chardev monitors by their id in query-yank, in command-line order among -qmp ones, as QEMU 7.2 does",
    realQemuTest(),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-dropin-yank-"));
      /** query-yank on the chardev monitor of `argv` run by `command`, then quit. */
      const yankList = async (command: string[], argv: string[], sock: string) => {
        const child = spawn(command[0]!, [...command.slice(1), ...argv], {
          cwd: repoRoot,
          stdio: ["ignore", "ignore", "pipe"],
        });
        try {
          await waitForPath(sock, { child, timeoutMs: 15_000 });
          const qmp = await RawQmp.connect(sock);
          await qmp.nextLine();
          qmp.send('{"execute":"qmp_capabilities"}{"execute":"query-yank","id":1}');
          await qmp.nextLine();
          const reply = await qmp.nextLine();
          qmp.close();
          return reply;
        } finally {
          child.kill("SIGKILL");
        }
      };
      try {
        let n = 0;
        for (const chardevFirst of [true, false]) {
          const lists: Array<string | undefined> = [];
          for (const command of [[qemuBinary], [process.execPath, "--import", "tsx", qemuMain]]) {
            const mon = join(dir, `mon${n}.sock`);
            const qmp = join(dir, `qmp${n++}.sock`);
            const chardev = ["-chardev", `socket,id=mon0,path=${mon},server=on,wait=off`];
            const compat = ["-qmp", `unix:${qmp},server=on,wait=off`];
            const argv = [
              ...["-machine", "none", "-display", "none", "-nodefaults", "-S"],
              ...(chardevFirst ? [...chardev, ...compat] : [...compat, ...chardev]),
              ...["-mon", "chardev=mon0,mode=control"],
            ];
            lists.push(await yankList(command, argv, mon));
          }
          const [real, sim] = lists;
          assert.equal(
            real,
            chardevFirst
              ? '{"return": [{"type": "chardev", "id": "mon0"}, {"type": "chardev", "id": "compat_monitor0"}], "id": 1}\r\n'
              : '{"return": [{"type": "chardev", "id": "compat_monitor0"}, {"type": "chardev", "id": "mon0"}], "id": 1}\r\n',
          );
          assert.equal(sim, real);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test("should answer -version like QEMU", async () => {
    const r = await runCli(["sim", "-version"]);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, "QEMU emulator version 7.2.22 (qmpkit simulator)\n");
    const v10 = await runCli(["sim", "--qemu-version", "10.2.0", "--version"]);
    assert.equal(v10.stdout, "QEMU emulator version 10.2.0 (qmpkit simulator)\n");
  });

  const refusals: Array<[string, string[], RegExp]> = [
    [
      "the human monitor",
      ["-chardev", "socket,id=m,path=/tmp/x.sock,server=on,wait=off", "-mon", "chardev=m"],
      /-mon: mode=readline: the human monitor is not simulated/,
    ],
    [
      "a chardev backend it does not simulate",
      ["-chardev", "stdio,id=m", "-mon", "chardev=m,mode=control"],
      /-mon: chardev "m" \(stdio\): the simulator serves monitors on socket chardevs only/,
    ],
    [
      "a -mon without its chardev",
      [
        "-qmp",
        "unix:/tmp/qmpkit-never.sock,server=on,wait=off",
        "-mon",
        "chardev=nope,mode=control",
      ],
      /-mon chardev=nope,mode=control: chardev "nope" not found/,
    ],
    ["a display", ["-vga", "std"], /-vga: the simulator has no display/],
    ["an unknown option", ["-frobnicate"], /-frobnicate: invalid option/],
  ];
  for (const [what, args, message] of refusals) {
    test(`should refuse ${what} with one line and exit status 1`, async () => {
      const r = await runCli(["sim", ...args]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    });
  }
});

suite("extra options for a launched qmpkit-qemu", () => {
  test("should read QMPKIT_SIM_CONFIG's file, then QMPKIT_SIM_ARGS, before the command line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-sim-config-"));
    try {
      const file = join(dir, "sim-args");
      writeFileSync(file, "# for libvirt, which clears the environment\n--qemu-version 10.0.2\n");
      const fromFile = await runCli(["sim", "-version"], { env: { QMPKIT_SIM_CONFIG: file } });
      assert.equal(fromFile.status, 0, fromFile.stderr);
      assert.match(fromFile.stdout, /^QEMU emulator version 10\.0\.2 /);
      // QMPKIT_SIM_ARGS comes after the file, so it wins.
      const both = await runCli(["sim", "-version"], {
        env: { QMPKIT_SIM_CONFIG: file, QMPKIT_SIM_ARGS: "--qemu-version 9.1.0" },
      });
      assert.match(both.stdout, /^QEMU emulator version 9\.1\.0 /);
      const missing = await runCli(["sim", "-version"], {
        env: { QMPKIT_SIM_CONFIG: join(dir, "nope") },
      });
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /QMPKIT_SIM_CONFIG: cannot read .*nope/);
      const bad = join(dir, "bad-args");
      writeFileSync(bad, "--guest-acpi-shutdown soon\n");
      const refused = await runCli(
        ["sim", "-qmp", `unix:${join(dir, "vm.qmp")},server=on,wait=off`],
        {
          env: { QMPKIT_SIM_CONFIG: bad },
        },
      );
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /expects milliseconds, not 'soon'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
