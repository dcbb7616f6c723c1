/**
 * `qmpkit shell` used as a person uses it: in a terminal (tmux), typing, pressing Tab, reading
 * the screen; against a real QEMU whose other monitor makes events arrive while a line is being
 * typed. Plus the non-terminal form (lines on stdin).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { SimulatedMachine } from "../../src/sim/index.js";
import { RawQmp, realQemuTest, startQemu } from "../support/real-qemu.js";
import { waitForPath } from "../support/wait-for-path.js";
import { cliMain, repoRoot, runCli } from "./support.js";

const tmuxAvailable = spawnSync("tmux", ["-V"], { stdio: "ignore" }).status === 0;

function tmuxTest(): { skip?: string } {
  const real = realQemuTest();
  if (real.skip) return real;
  if (tmuxAvailable || process.env.CI) return {};
  const why = "tmux not found: terminal tests of the shell SKIPPED (apt-get install tmux)";
  process.stderr.write(`\n*** ${why} ***\n\n`);
  return { skip: why };
}

/** A terminal in tmux running one command, driven by keys and read from the screen. */
class Terminal {
  private readonly socket = `qmpkit-test-${process.pid}-${Math.random().toString(36).slice(2)}`;

  constructor(command: string[], env: Record<string, string>) {
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    this.tmux(
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      "110",
      "-y",
      "40",
      "env",
      ...envArgs,
      ...command,
    );
  }

  private tmux(...args: string[]): string {
    const r = spawnSync("tmux", ["-L", this.socket, ...args], {
      encoding: "utf8",
      cwd: repoRoot,
      // A CI job may have no TERM at all; tmux wants one even when detached.
      env: { ...process.env, TERM: process.env.TERM || "xterm" },
    });
    if (r.status !== 0) throw new Error(`tmux ${args[0]} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** Types text (literally), then optional keys such as `Tab`, `Enter`, `Up`. */
  type(text: string, ...keys: string[]): void {
    if (text !== "") this.tmux("send-keys", "-t", "t", "-l", text);
    for (const k of keys) this.tmux("send-keys", "-t", "t", k);
  }

  screen(): string {
    return this.tmux("capture-pane", "-p", "-t", "t");
  }

  /** The screen's last non-empty line (where the cursor is). */
  lastLine(): string {
    const lines = this.screen()
      .split("\n")
      .filter((l) => l.trim() !== "");
    return lines.at(-1) ?? "";
  }

  async waitFor(
    predicate: (screen: string) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (predicate(screen)) return screen;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Whether the command still runs (tmux ends the session when it exits). */
  alive(): boolean {
    return (
      spawnSync("tmux", ["-L", this.socket, "has-session", "-t", "t"], { stdio: "ignore" })
        .status === 0
    );
  }

  close(): void {
    spawnSync("tmux", ["-L", this.socket, "kill-server"], { stdio: "ignore" });
  }
}

suite("shell in a terminal", () => {
  test(
    "should complete from the VM's schema, print events without breaking the line, keep history",
    tmuxTest(),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-shell-"));
      const second = join(dir, "second.qmp");
      const qemu = await startQemu({ args: ["-qmp", `unix:${second},server=on,wait=off`] });
      const env = { XDG_STATE_HOME: join(dir, "state"), NO_COLOR: "1", TERM: "xterm" };
      const shell = () => [process.execPath, "--import", "tsx", cliMain, "shell", qemu.socketPath];
      let term = new Terminal(shell(), env);
      const other = await RawQmp.connect(second);
      try {
        await other.handshake();
        await term.waitFor(
          (s) => s.includes("Connected to QEMU 7.2") && s.includes("qmp[prelaunch]>"),
          "the prompt",
        );

        // A unique completion fills the command in.
        term.type("query-statu", "Tab");
        await term.waitFor(
          () => term.lastLine() === "qmp[prelaunch]> query-status",
          "query-status completed",
        );
        term.type("", "Enter");
        await term.waitFor((s) => s.includes('"status": "prelaunch"'), "the result");

        // Tab extends to the common prefix; a second Tab lists the candidates. The second Tab is
        // sent only once the first has been seen: keys that reach the shell in one read are a
        // paste to Node's readline, which inserts every Tab of a paste but the last as text.
        term.type("query-mig", "Tab");
        await term.waitFor(
          () => term.lastLine() === "qmp[prelaunch]> query-migrate",
          "the common prefix",
        );
        term.type("", "Tab");
        await term.waitFor(
          (s) => s.includes("query-migrate-capabilities") && s.includes("query-migrate-parameters"),
          "the candidates",
        );
        // Argument names and enum values complete too.
        term.type("", "C-u");
        term.type("set-action pa", "Tab");
        await term.waitFor(
          () => term.lastLine().endsWith("> set-action panic="),
          "the argument name",
        );
        term.type("pa", "Tab");
        await term.waitFor(
          () => term.lastLine().endsWith("> set-action panic=pause"),
          "the enum value",
        );
        term.type("", "Enter");
        await term.waitFor((s) => /panic=pause\n\{\}\n/.test(s), "the empty result");

        // An event arrives while a line is being typed: it is printed above, the line stays.
        term.type("query-na");
        await term.waitFor(() => term.lastLine().endsWith("> query-na"), "the typed text");
        other.send('{"execute":"cont"}');
        await term.waitFor((s) => /RESUME\n/.test(s), "the event");
        await term.waitFor(
          () => term.lastLine() === "qmp[running]> query-na",
          "the line kept, prompt updated",
        );
        term.type("me", "Enter");
        await term.waitFor((s) => /query-name\n\{\}\n/.test(s), "query-name's result");

        // help COMMAND: the VM's signature and qmpkit's documentation.
        term.type("help set-action", "Enter");
        await term.waitFor(
          (s) =>
            s.includes("[panic]: 'pause'|'shutdown'|'exit-failure'|'none'") &&
            s.includes("Since: 6.0"),
          "help",
        );

        // Errors are one line; the shell goes on.
        term.type("set-action panic=bogus", "Enter");
        await term.waitFor(
          (s) => s.includes("GenericError: Parameter 'panic' does not accept value 'bogus'"),
          "the QMP error",
        );
        // `quit` is QMP's quit: the shell asks before it stops QEMU; no keeps both running.
        term.type("quit", "Enter");
        await term.waitFor((s) => s.includes("Stop QEMU? [y/N]"), "the question");
        term.type("n", "Enter");
        await term.waitFor(() => term.lastLine() === "qmp[running]>", "the prompt again");
        term.type("exit", "Enter");
        for (let i = 0; term.alive() && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(!term.alive(), "exit should end the shell");
        await other.drain();
        other.send('{"execute":"query-status","id":"alive"}');
        assert.match((await other.nextLine()) ?? "", /"id": "alive"/, "QEMU keeps running");
        const historyPath = join(dir, "state", "qmpkit", "shell_history");
        assert.equal(statSync(historyPath).mode & 0o777, 0o600, "the history is private");
        const history = readFileSync(historyPath, "utf8");
        assert.match(
          history,
          /^query-status\n.*set-action panic=pause\nquery-name\nhelp set-action\nset-action panic=bogus\nquit\nexit\n$/s,
        );

        // History survives: a new shell recalls the previous commands with Up.
        term.close();
        term = new Terminal(shell(), env);
        await term.waitFor((s) => s.includes("qmp[running]>"), "the second prompt");
        term.type("", "Up", "Up", "Up");
        await term.waitFor(
          () => term.lastLine() === "qmp[running]> set-action panic=bogus",
          "history recall",
        );
        term.type("", "C-u");

        // Ctrl-R searches the history: newest match first, Ctrl-R again for older, Enter runs.
        term.type("", "C-r");
        await term.waitFor(() => term.lastLine() === "(reverse-i-search)'':", "the search prompt");
        term.type("panic");
        await term.waitFor(
          () => term.lastLine() === "(reverse-i-search)'panic': set-action panic=bogus",
          "the newest match",
        );
        term.type("", "C-r");
        await term.waitFor(
          () => term.lastLine() === "(reverse-i-search)'panic': set-action panic=pause",
          "the older match",
        );
        term.type("", "Enter");
        await term.waitFor((s) => /> set-action panic=pause\n\{\}\n/.test(s), "the match run");
        // A union's help: the common members and one line per driver, not every branch flattened.
        term.type("help blockdev-add", "Enter");
        await term.waitFor(
          (s) => s.includes("    raw: file [offset] [size]") && s.includes("    vvfat: dir"),
          "the union's help",
        );
      } finally {
        term.close();
        other.close();
        await qemu.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

suite("shell without a terminal", () => {
  test("should run lines from stdin, key=value and raw JSON alike", async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-shell-pipe-"));
    const vm = new SimulatedMachine({ startPaused: true, name: "piped" });
    try {
      await vm.listen(`unix:${join(dir, "vm.qmp")}`);
      const r = await runCli(["shell", join(dir, "vm.qmp")], {
        input: 'query-name\n{"execute": "cont"}\nquery-status\nset-action panic=nope\nstop extra\n',
      });
      assert.equal(r.status, 1, "two lines failed");
      assert.match(r.stdout, /"name": "piped"/);
      assert.match(r.stderr, /RESUME/, "events go to stderr when stdout is not a terminal");
      assert.match(r.stdout, /"status": "running"/);
      assert.match(r.stdout, /GenericError: Parameter 'panic' does not accept value 'nope'/);
      assert.match(r.stdout, /invalid argument 'extra': expected key=value/);
    } finally {
      await vm.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

suite("shell in a script, against real QEMU", () => {
  test(
    "should keep stdout for results, log the traffic, speak HMP, fail on a failed command, quit QEMU",
    realQemuTest(),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-shell-script-"));
      const qemu = await startQemu();
      try {
        const log = join(dir, "session.log");
        const r = await runCli(["shell", "-v", "--log", log, qemu.socketPath], {
          input: "cont\nquery-stauts\nquery-status\n",
        });
        assert.equal(r.status, 1, "a failed command makes the script fail");
        // Results alone on stdout; the event and the traffic on stderr.
        assert.doesNotMatch(r.stdout, /RESUME|>>/);
        assert.match(r.stdout, /"status": "running"/);
        assert.match(
          r.stdout,
          /CommandNotFound: The command query-stauts has not been found \(did you mean [^)]*query-status/,
        );
        assert.match(r.stderr, /RESUME/);
        assert.match(r.stderr, />> \{"execute":"cont"/);
        assert.match(r.stderr, /<< \{"return": \{\}/);
        assert.equal(statSync(log).mode & 0o777, 0o600, "the log is private");
        const logged = readFileSync(log, "utf8");
        assert.match(logged, /^<< \{"QMP": \{"version"/, "the greeting first");
        assert.match(logged, />> \{"execute":"query-status"/);

        const hmp = await runCli(["shell", "-H", qemu.socketPath], {
          input: "info status\nstop\ninfo status\n",
        });
        assert.equal(hmp.status, 0, hmp.stderr);
        assert.match(hmp.stdout, /VM status: running\n/);
        assert.match(hmp.stdout, /VM status: paused\n/);

        // Without a terminal `quit` is QMP's quit, as in qmp-shell: QEMU stops, the shell ends.
        const quit = await runCli(["shell", qemu.socketPath], { input: "quit\nquery-status\n" });
        assert.equal(quit.status, 0, quit.stderr);
        await qemu.exited;
        assert.match(quit.stderr, /QEMU quit/);
      } finally {
        await qemu.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

const qemuGa = "/usr/sbin/qemu-ga";
function guestAgentTest(): { skip?: string } {
  if (existsSync(qemuGa) || process.env.CI) return {};
  const why = `${qemuGa} not found: the shell's -N test SKIPPED (apt-get install qemu-guest-agent)`;
  process.stderr.write(`\n*** ${why} ***\n\n`);
  return { skip: why };
}

suite("shell -N, against QEMU's guest agent", () => {
  test("should talk to qemu-ga without greeting or negotiation", guestAgentTest(), async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-shell-qga-"));
    const socket = join(dir, "ga.sock");
    // The real agent, on a unix socket of its own (its state in the test's directory).
    const agent = spawn(qemuGa, ["-m", "unix-listen", "-p", socket, "-t", dir], {
      stdio: "ignore",
    });
    try {
      await waitForPath(socket);
      const r = await runCli(["shell", "-N", socket], {
        input: "guest-ping\nguest-info\nguest-pnig\n",
      });
      assert.equal(r.status, 1, "a failed command makes the script fail");
      assert.match(r.stdout, /^\{\}\n/, "guest-ping's empty return");
      assert.match(r.stdout, /"supported_commands": \[/);
      assert.match(
        r.stdout,
        /CommandNotFound: The command guest-pnig has not been found \(did you mean guest-ping\?\)/,
      );
    } finally {
      agent.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
