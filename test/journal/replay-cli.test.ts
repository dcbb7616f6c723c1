/**
 * `qmpkit replay` as a subprocess: a libvirt `.replies` recording served on a unix socket,
 * driven by `QmpClient`; a strict mismatch answered and reported on stderr as a diff; bad
 * usage and an unreadable file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { isCommandError } from "../../src/base/errors.js";
import { QmpClient } from "../../src/client/index.js";
import { collect, runCli, spawnCli, waitForOutput } from "../cli/support.js";
import { realQemuTest, startQemu } from "../support/real-qemu.js";
import { DRIVE_MACHINE, drive, SAMPLE_REPLIES } from "./support.js";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-replay-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

suite("replay command", () => {
  test("should serve a .replies recording until interrupted, and report a strict mismatch on stderr", async () => {
    const file = join(dir, "caps.replies");
    writeFileSync(file, SAMPLE_REPLIES);
    const socket = join(dir, "caps.qmp");
    const child = spawnCli(["replay", file, "--listen", `unix:${socket}`, "--speed", "0"]);
    const done = collect(child, { timeoutMs: 60_000 });
    let client: QmpClient | undefined;
    try {
      await waitForOutput(child, (s) => s.includes("qmpkit replay:"), 15_000, "stderr");
      client = await QmpClient.connect(`unix:${socket}`, { trackRunState: false });
      assert.deepEqual(client.greeting.version.qemu, { major: 8, minor: 2, micro: 2 });
      assert.deepEqual(await client.execute("query-version"), {
        qemu: { major: 8, minor: 2, micro: 2 },
        package: "v8.2.2",
      });
      await assert.rejects(client.execute("query-status"), (e) => {
        assert.ok(isCommandError(e));
        assert.equal(e.errorClass, "GenericError");
        assert.equal(
          e.desc,
          "replay: expected query-kvm (recorded command 3), received query-status",
        );
        return true;
      });
      assert.deepEqual(await client.execute("query-kvm"), { enabled: true, present: true });
    } finally {
      await client?.close();
      child.kill("SIGINT");
    }
    const r = await done;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /qmpkit replay: .*caps\.replies \(3 commands, strict\) on unix:/);
    assert.match(
      r.stderr,
      /qmpkit replay: GenericError: replay: expected query-kvm .*\n--- expected \(recorded command 3\)\n\+\+\+ received\n {2}\{\n- {3}"execute": "query-kvm"\n\+ {3}"execute": "query-status"\n {2}\}\n/,
    );
  });

  test(
    "should replay what qmpkit proxy --record journaled from real QEMU 7.2, to the same client code",
    realQemuTest(),
    async () => {
      const qemu = await startQemu(DRIVE_MACHINE);
      const journal = join(dir, "proxy.db");
      const shared = join(dir, "shared.qmp");
      let original: Awaited<ReturnType<typeof drive>>;
      try {
        const proxy = spawnCli([
          "proxy",
          qemu.socketPath,
          "--listen",
          `unix:${shared}`,
          "--record",
          journal,
        ]);
        const proxyDone = collect(proxy, { timeoutMs: 60_000 });
        try {
          await waitForOutput(proxy, (s) => s.includes("sharing"), 15_000, "stderr");
          original = await drive(`unix:${shared}`);
        } finally {
          proxy.kill("SIGINT");
        }
        const p = await proxyDone;
        assert.equal(p.status, 0, p.stderr);
      } finally {
        await qemu.stop();
      }
      const socket = join(dir, "fake.qmp");
      for (const mode of ["strict", "keyed"]) {
        const replay = spawnCli(["replay", journal, "--listen", `unix:${socket}`, "--mode", mode]);
        const done = collect(replay, { timeoutMs: 60_000 });
        try {
          await waitForOutput(replay, (s) => s.includes("qmpkit replay:"), 15_000, "stderr");
          const run = await drive(`unix:${socket}`);
          assert.deepEqual(run.replies, original.replies, mode);
          assert.deepEqual(run.events, original.events, mode);
        } finally {
          replay.kill("SIGINT");
        }
        const r = await done;
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`session \\d+ \\(9 commands, ${mode}\\)`));
        assert.doesNotMatch(r.stderr, /GenericError|CommandNotFound/);
      }
    },
  );

  test("should refuse bad options (status 2) and a file it cannot read (status 1)", async () => {
    const bad = await runCli(["replay", "x.db", "--listen", "unix:/tmp/x.qmp", "--mode", "loose"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /invalid --mode 'loose': expected strict or keyed/);
    const missing = await runCli(["replay", join(dir, "none.db"), "--listen", "unix:/tmp/x.qmp"]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read .*none\.db/);
    const help = await runCli(["replay", "--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Examples:\n {2}\$ qmpkit proxy/);
  });
});
