/**
 * Proxy benchmark (issue 5 §3): what `qmpkit proxy` costs a client. One QEMU with two monitors
 * (the simulator, `qmpkit sim`, in its own process; or with `--qemu` a real
 * `qemu-system-x86_64 -machine none`), `qmpkit proxy` in its own process in front of the second
 * monitor, and two QmpClients here: one on the first monitor (direct), one through the proxy.
 * Rounds alternate direct and proxied, and the order within a round, so that machine noise hits
 * both alike; ratios (proxied throughput / direct throughput) are taken from the medians:
 *
 * - sequential `query-status`: one command at a time, the extra hop in full;
 * - pipelined `query-status`, 8 in flight: what the proxy's own pipelining recovers;
 * - `query-qmp-schema` (a large reply), sequential.
 *
 * There is no goal in the issue; the figures go into the closing notes. On a 2-core machine
 * the three processes (QEMU, proxy, this client) compete for the cores, which is part of what
 * a proxy costs.
 *
 * Run: `npx tsx bench/proxy.ts [commands-per-round] [rounds] [--qemu]`.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { QmpClient } from "../src/client/index.js";
import { waitForPath } from "../test/support/wait-for-path.js";
import { median } from "./support/events.js";

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const argv = process.argv.slice(2);
const numbers = argv.filter((a) => /^\d+$/.test(a)).map(Number);
const perRound = numbers[0] ?? 1000;
const rounds = numbers[1] ?? 9;
const useQemu = argv.includes("--qemu");
const depth = 8;

/** Commands per second: `n` commands, at most `inFlight` at a time. */
async function rate(client: QmpClient, command: string, n: number, inFlight = 1): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < n) await client.execute(command);
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

const dir = mkdtempSync(join(tmpdir(), "qmpkit-bench-proxy-"));
const children: ChildProcess[] = [];
const cli = (args: string[]): ChildProcess => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(repo, "src/cli/main.ts"), ...args],
    {
      cwd: repo,
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  children.push(child);
  return child;
};

try {
  const first = join(dir, "direct.qmp");
  const second = join(dir, "upstream.qmp");
  const listen = join(dir, "proxy.qmp");
  const monitors = [
    "-qmp",
    `unix:${first},server=on,wait=off`,
    "-qmp",
    `unix:${second},server=on,wait=off`,
  ];
  let qemu: ChildProcess;
  if (useQemu) {
    if (spawnSync("qemu-system-x86_64", ["--version"]).status !== 0) {
      throw new Error("--qemu: qemu-system-x86_64 not found");
    }
    qemu = spawn(
      "qemu-system-x86_64",
      ["-machine", "none", "-display", "none", "-nodefaults", "-S", ...monitors],
      { stdio: "ignore" },
    );
    children.push(qemu);
  } else {
    qemu = cli(["sim", "-S", ...monitors]);
  }
  await waitForPath(first, { child: qemu, timeoutMs: 30_000 });
  await waitForPath(second, { child: qemu, timeoutMs: 30_000 });
  const proxy = cli(["proxy", `unix:${second}`, "--listen", `unix:${listen}`, "-q"]);
  await waitForPath(listen, { child: proxy, timeoutMs: 30_000 });

  const direct = await QmpClient.connect(`unix:${first}`, { trackRunState: false });
  const proxied = await QmpClient.connect(`unix:${listen}`, { trackRunState: false });
  const greeting = direct.greeting.version.qemu;
  console.log(
    `proxy benchmark: ${useQemu ? "real QEMU" : "simulated QEMU"} ${greeting.major}.${greeting.minor}.${greeting.micro}, ` +
      `${rounds} rounds of ${perRound} commands, alternating direct and through qmpkit proxy`,
  );
  await rate(direct, "query-status", 300);
  await rate(proxied, "query-status", 300);

  const cases: Array<{ label: string; command: string; n: number; inFlight: number }> = [
    { label: "sequential query-status", command: "query-status", n: perRound, inFlight: 1 },
    {
      label: `query-status, ${depth} in flight`,
      command: "query-status",
      n: perRound,
      inFlight: depth,
    },
    {
      label: "sequential query-qmp-schema",
      command: "query-qmp-schema",
      n: Math.max(10, Math.floor(perRound / 40)),
      inFlight: 1,
    },
  ];
  for (const c of cases) {
    const d: number[] = [];
    const p: number[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        d.push(await rate(direct, c.command, c.n, c.inFlight));
        p.push(await rate(proxied, c.command, c.n, c.inFlight));
      } else {
        p.push(await rate(proxied, c.command, c.n, c.inFlight));
        d.push(await rate(direct, c.command, c.n, c.inFlight));
      }
    }
    const f = (x: number) => x.toFixed(0).padStart(7);
    console.log(
      `${c.label.padEnd(30)} direct ${f(median(d))}/s  proxied ${f(median(p))}/s  ratio ${(median(p) / median(d)).toFixed(2)}x`,
    );
  }
  await direct.close();
  await proxied.close();
} finally {
  for (const child of children) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
