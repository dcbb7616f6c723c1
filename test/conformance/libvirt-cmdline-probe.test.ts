/**
 * libvirt's capability probe against `qmpkit-qemu` (qemu-behaviour §13.2): the probe's own
 * command line with `-pidfile` and `-daemonize`, the parent returning once the child serves, the
 * pid file written by the child, and the 50 answers of the recorded profile byte for byte (the
 * profiles are compared with the real binaries by `profiles.test.ts`).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { versionFromProgramName } from "../../src/cli/qemu-main.js";
import { parseProfile, profilePath } from "../../src/sim/recorded-profile.js";
import { askEach } from "../support/ask-each.js";
import { RawQmp } from "../support/real-qemu.js";
import { QEMU_MAIN } from "./libvirt-support.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

suite("libvirt's capability probe of qmpkit-qemu", () => {
  test("should take the release from a versioned program name", () => {
    assert.equal(versionFromProgramName("/usr/local/bin/qmpkit-qemu-7.2.22"), "7.2.22");
    assert.equal(versionFromProgramName("qmpkit-qemu-10.0.2"), "10.0.2");
    assert.equal(versionFromProgramName("/x/qmpkit-qemu-10.0"), "10.0");
    assert.equal(versionFromProgramName("/x/bin/qmpkit-qemu.js"), undefined);
    assert.equal(versionFromProgramName("/usr/bin/qemu-system-x86_64"), undefined);
    assert.equal(versionFromProgramName(undefined), undefined);
  });

  for (const version of ["7.2.22", "10.0.2"]) {
    test(`should daemonize as QEMU does and answer the probe as QEMU ${version}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-probe-"));
      const sock = join(dir, "capabilities.monitor.sock");
      const pidfile = join(dir, "capabilities.pidfile");
      let pid: number | undefined;
      try {
        // qemuProcessQMPLaunch's command line (libvirt 9.0), the release as a wrapper names it.
        const parent = spawn(
          process.execPath,
          [
            "--import",
            "tsx",
            QEMU_MAIN,
            "--qemu-version",
            version,
            "--advertise",
            "recorded",
            "-S",
            "-no-user-config",
            "-nodefaults",
            "-nographic",
            "-machine",
            "none,accel=kvm:tcg",
            "-qmp",
            `unix:${sock},server=on,wait=off`,
            "-pidfile",
            pidfile,
            "-daemonize",
          ],
          {
            stdio: ["ignore", "ignore", "pipe"],
            env: { ...process.env, QMPKIT_SIM_CONFIG: "/dev/null" },
          },
        );
        let stderr = "";
        parent.stderr?.setEncoding("utf8").on("data", (s: string) => {
          stderr += s;
        });
        const status = await new Promise<number | null>((done) => parent.once("exit", done));
        assert.equal(status, 0, stderr);
        // libvirt reads the pid file as soon as the parent has exited, then connects.
        assert.ok(existsSync(pidfile), "the pid file is there when the parent exits");
        pid = Number(readFileSync(pidfile, "utf8").trim());
        assert.ok(Number.isInteger(pid) && pid !== parent.pid && alive(pid), `pid ${pid}`);
        const qmp = await RawQmp.connect(sock);
        try {
          await qmp.handshake();
          const { records } = parseProfile(readFileSync(profilePath(version), "latin1"));
          const replies = await askEach(qmp, records, { server: `qmpkit-qemu as ${version}` });
          const wrong = records.flatMap((r, i) =>
            replies[i] === r.reply ? [] : [`${r.execute} ${JSON.stringify(r.arguments ?? {})}`],
          );
          assert.deepEqual(wrong, []);
          assert.equal(records.length, 51); // the probe's 50 questions and the type tree
        } finally {
          qmp.close();
        }
      } finally {
        // libvirt ends the probe with SIGKILL (virProcessKillPainfully).
        if (pid !== undefined && alive(pid)) {
          process.kill(pid, "SIGKILL");
          for (let i = 0; i < 500 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
        }
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
