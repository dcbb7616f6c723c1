/**
 * The CLI as a user meets it: help with examples on every command, and bad input answered by
 * one clear line on stderr, a non-zero exit and no stack trace.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { type CliResult, collect, runCli, spawnCli, waitForOutput } from "./support.js";

/** Exactly one line on stderr, no stack trace, the given status. */
function assertOneLineError(result: CliResult, status: number, pattern: RegExp): void {
  assert.equal(result.status, status, `exit status; stderr: ${result.stderr}`);
  const lines = result.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, /^qmpkit: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
}

suite("help", () => {
  test("should list every command with examples", async () => {
    const r = await runCli(["--help"]);
    assert.equal(r.status, 0);
    for (const c of ["events", "exec", "shell", "proxy", "sim", "schema"])
      assert.match(r.stdout, new RegExp(`\\n  ${c}\\b`));
    assert.match(r.stdout, /Examples:\n {2}\$ qmpkit events/);
  });

  for (const command of ["events", "exec", "shell", "proxy"]) {
    test(`should document ${command} with examples`, async () => {
      const r = await runCli([command, "--help"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: qmpkit ${command} `));
      assert.match(r.stdout, /Examples:\n {2}\$ qmpkit /);
    });
  }

  test("should say up front in events --help that a -qmp socket serves one client, with the recipe", async () => {
    const r = await runCli(["events", "--help"]);
    assert.match(r.stdout, /A QEMU -qmp socket serves one client at a time/);
    assert.match(r.stdout, /qmpkit proxy vm1\.qmp --listen /);
  });

  for (const command of [
    ["schema"],
    ["schema", "check"],
    ["schema", "introspect"],
    ["schema", "gen"],
  ]) {
    test(`should document ${command.join(" ")} with examples`, async () => {
      const r = await runCli([...command, "--help"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Examples:\n {2}\$ qmpkit /);
    });
  }

  test("should document sim with QEMU's option spelling, drop-in options included", async () => {
    const r = await runCli(["sim", "--help"]);
    assert.equal(r.status, 0, r.stderr);
    for (const option of ["-qmp", "-chardev", "-mon", "-pidfile", "-daemonize", "-S"]) {
      assert.match(r.stdout, new RegExp(`\\n {2}${option} `), option);
    }
    assert.match(r.stdout, /Examples:\n {2}\$ qmpkit sim /);
  });
});

suite("bad input", () => {
  let dir: string;
  const servers: Server[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "qmpkit-cli-bad-"));
    const serve = (name: string, greeting: string) =>
      new Promise<void>((resolve) => {
        const s = createServer((socket) => socket.end(greeting));
        servers.push(s);
        s.listen(join(dir, name), resolve);
      });
    await serve("ssh.sock", "SSH-2.0-OpenSSH_9.2\r\n");
    await serve("json.sock", '{"hello": "world"}\r\n');
    await new Promise<void>((resolve) => {
      // Accepts and says nothing, as a QEMU monitor busy with another client does.
      const s = createServer(() => {});
      servers.push(s);
      s.listen(join(dir, "silent.sock"), resolve);
    });
  });
  after(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test("should refuse an unknown command", async () => {
    assertOneLineError(await runCli(["frobnicate"]), 2, /unknown command 'frobnicate'/);
  });

  test("should refuse a malformed key=value before connecting", async () => {
    assertOneLineError(
      await runCli(["exec", join(dir, "absent.sock"), "set-action", "panic"]),
      2,
      /invalid argument 'panic': expected key=value/,
    );
  });

  test("should refuse a malformed target", async () => {
    assertOneLineError(
      await runCli(["exec", "tcp:localhost", "query-status"]),
      2,
      /invalid target 'tcp:localhost'/,
    );
  });

  test("should say when a target cannot be reached", async () => {
    const path = join(dir, "absent.sock");
    for (const args of [
      ["exec", path, "query-status"],
      ["events", path],
      ["shell", path],
    ]) {
      assertOneLineError(await runCli(args), 1, new RegExp(`unix:${path}.*ENOENT`));
    }
  });

  test("should say when a target does not speak QMP", async () => {
    assertOneLineError(
      await runCli(["exec", join(dir, "ssh.sock"), "query-status"]),
      1,
      /unix:.*ssh\.sock is not a QMP server: .*stray 'S'/,
    );
    assertOneLineError(
      await runCli(["events", join(dir, "json.sock")]),
      1,
      /unix:.*json\.sock is not a QMP server: .*'QMP' is missing/,
    );
  });

  test("should suggest a busy monitor when no greeting comes", async () => {
    assertOneLineError(
      await runCli(["exec", join(dir, "silent.sock"), "query-status", "--timeout", "500"]),
      1,
      /no greeting within \d+ ms \(a QEMU monitor serves one client at a time: .*qmpkit proxy/,
    );
  });

  test("should fail (status 1, not usage) for a glob that matches no socket yet", async () => {
    assertOneLineError(
      await runCli(["events", join(dir, "vm*.qmp")]),
      1,
      /no socket matches '.*vm\*\.qmp' \(with --follow, qmpkit waits for one to appear\)/,
    );
  });

  test("should say that a glob matches nothing yet when following", async () => {
    const child = spawnCli(["events", "--follow", join(dir, "later*.qmp")]);
    const done = collect(child, { timeoutMs: 30_000 });
    await waitForOutput(child, (s) => s.includes("no socket matches it yet"), 20_000);
    child.kill("SIGINT");
    const r = await done;
    assert.match(
      r.stdout,
      /later\*\.qmp .*waiting for .*later\*\.qmp \(no socket matches it yet; new ones are picked up as they appear\)/,
    );
  });

  test("should refuse bad event filters", async () => {
    assertOneLineError(
      await runCli(["events", "--where", "guest", join(dir, "x.sock")]),
      2,
      /invalid --where 'guest'/,
    );
  });

  test("should refuse an unknown QEMU option in sim, naming it", async () => {
    const r = await runCli([
      "sim",
      "-qmp",
      `unix:${join(dir, "s.sock")},server=on,wait=off`,
      "-frobnicate",
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^qmpkit sim: -frobnicate: invalid option/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });

  test("should end quietly when the reader of its output goes away", async () => {
    const child = spawnCli(["events"]);
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    await waitForOutput(child, (t) => t.includes("connected to QEMU"));
    child.stdout?.destroy();
    const r = await collect(child, { timeoutMs: 30_000 });
    assert.equal(r.status, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Unhandled|\n\s+at /);
  });
});
