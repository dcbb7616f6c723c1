/**
 * Interop with a peer's real QMP client: digitalocean/go-qemu's `qmp.SocketMonitor` (Debian's
 * golang-github-digitalocean-go-qemu-dev, built offline against /usr/share/gocode) talks to
 * `qmpkit sim`, run through the real CLI: greeting, negotiation, query-status, STOP and RESUME.
 *
 * Needs `golang-go` and `golang-github-digitalocean-go-qemu-dev`. In CI (`CI` set) their absence
 * is a failure; locally the test skips loudly.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import { collect, spawnCli } from "../cli/support.js";
import { waitForPath } from "../support/wait-for-path.js";

const GOPATH = "/usr/share/gocode";
const goQemu = join(GOPATH, "src/github.com/digitalocean/go-qemu/qmp");
const program = fileURLToPath(new URL("./go-qemu-client.go", import.meta.url));

function interopTest(): { skip?: string } {
  const go = spawnSync("go", ["version"], { stdio: "ignore" }).status === 0;
  if ((go && existsSync(goQemu)) || process.env.CI) return {};
  const why =
    "go or go-qemu not found: go-qemu interop test SKIPPED (apt-get install golang-go golang-github-digitalocean-go-qemu-dev)";
  process.stderr.write(`\n*** ${why} ***\n\n`);
  return { skip: why };
}

/** Runs a program to completion, with a time limit. */
function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} timed out:\n${out}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (status) => {
      clearTimeout(timer);
      resolve({ status, out });
    });
  });
}

suite("go-qemu interop", () => {
  let dir: string;
  let binary: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "qmpkit-go-"));
    binary = join(dir, "go-qemu-client");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const form of ["-qmp", "-chardev"] as const) {
    test(`should serve go-qemu's socket monitor through ${form}`, interopTest(), async () => {
      if (!existsSync(binary)) {
        // GOPATH mode, offline: the library comes from Debian's /usr/share/gocode, nothing is fetched.
        const env = {
          ...process.env,
          GO111MODULE: "off",
          GOPATH,
          GOFLAGS: "",
          GOPROXY: "off",
          GOCACHE: join(dir, "cache"),
          HOME: process.env.HOME ?? dir,
        };
        const built = await run("go", ["build", "-o", binary, program], env, 180_000);
        assert.equal(built.status, 0, `go build failed:\n${built.out}`);
      }
      const sock = join(dir, `${form.slice(1)}.sock`);
      const args =
        form === "-qmp"
          ? ["sim", "-qmp", `unix:${sock},server=on,wait=off`]
          : [
              "sim",
              "-chardev",
              `socket,id=mon0,path=${sock},server=on,wait=off`,
              "-mon",
              "chardev=mon0,mode=control",
            ];
      const sim = spawnCli([...args, "-display", "none", "-nodefaults"]);
      const simDone = collect(sim, { timeoutMs: 60_000 });
      try {
        await waitForPath(sock, { child: sim, timeoutMs: 15_000 });
        const client = await run(binary, ["-addr", sock, "-timeout", "10s"], process.env, 30_000);
        assert.equal(client.status, 0, client.out);
        assert.deepEqual(client.out.trim().split("\n"), [
          "greeting 7.2.22 capabilities=[oob]",
          'query-status {"running":true,"singlestep":false,"status":"running"}',
          "event STOP",
          "event RESUME",
          "ok",
        ]);
      } finally {
        sim.kill("SIGTERM");
        const r = await simDone;
        assert.equal(r.status, 0, `the simulator ends cleanly on SIGTERM: ${r.stderr}`);
      }
    });
  }
});
