/**
 * Dashboard benchmark: N simulated VMs (default 1,000, in a process of their own) watched by a
 * real `qmpkit dashboard` (its own process, journal on disk), and the page in Debian's Chromium
 * (playwright-core). The VMs make RATE run-state events a second in all (default 1,000) for
 * SECONDS (default 30). Reported:
 *
 * - event-to-page latency, measured in the page: from the event's QEMU timestamp to the moment
 *   the page has put it on screen (the animation frame that updated its row), p50/p99/max, and
 *   the share of events the page got; the same for a few events on an idle fleet, side by side;
 * - the server's resident memory (RSS, from /proc) before and during the load;
 * - the page's own CPU: the main thread's busy time (Chrome's TaskDuration) over wall time.
 *
 * Goal: p99 under 500 ms with the page keeping up.
 *
 * Run: `npx tsx bench/dashboard.ts [N] [RATE] [SECONDS]`.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS } from "../test/web/support.js";

const [vms = 1000, rate = 1000, seconds = 30] = process.argv.slice(2).map(Number);
const root = fileURLToPath(new URL("../", import.meta.url));
if (!existsSync(CHROMIUM)) {
  console.log(`skipped: ${CHROMIUM} is not installed`);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), "qmpkit-bench-dashboard-"));
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

function lines(child: ChildProcess, stream: "stdout" | "stderr") {
  const out = createInterface({ input: child[stream]! });
  return (predicate: (line: string) => boolean, what: string, timeoutMs = 300_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const on = (line: string) => {
        if (!predicate(line)) return;
        clearTimeout(timer);
        out.off("line", on);
        resolve(line);
      };
      out.on("line", on);
    });
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

console.log(`${vms} simulated VMs, ${rate} events/s for ${seconds} s`);
const sims = spawn(
  process.execPath,
  ["--import", "tsx", join(root, "bench/support/dashboard-sims.ts"), dir, String(vms)],
  {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"],
  },
);
children.push(sims);
const simOut = lines(sims, "stdout");
await simOut((l) => l === "ready", "the simulated VMs");

const port = await freePort();
const server = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    join(root, "src/cli/main.ts"),
    "dashboard",
    `${dir}/*.qmp`,
    "--journal",
    join(dir, "journal.db"),
    "--listen",
    `127.0.0.1:${port}`,
  ],
  { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
);
children.push(server);
server.stderr!.on("data", (d: Buffer) => {
  if (!d.toString().startsWith("qmpkit dashboard: http://")) process.stderr.write(d);
});
server.once("exit", (code, signal) => {
  if (!done) {
    console.error(`the dashboard exited (${code ?? signal}) before the end`);
    process.exit(1);
  }
});
let done = false;
await lines(server, "stderr")((l) => l.startsWith("qmpkit dashboard: http://"), "the dashboard");
const url = `http://127.0.0.1:${port}`;
const connected = async () => {
  const body = (await (await fetch(`${url}/api/vms`)).json()) as { vms: { connection: string }[] };
  return body.vms.filter((v) => v.connection === "connected").length;
};
for (let t = Date.now(); (await connected()) < vms; ) {
  if (Date.now() - t > 300_000) throw new Error("the VMs did not all connect");
  await new Promise((r) => setTimeout(r, 500));
}
const rssIdle = rssMiB(server.pid!);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.goto(`${url}/?bench`);
await page.waitForSelector("#live.on", { timeout: 120_000 });
await page.waitForSelector("#vms tbody tr", { timeout: 120_000 });
const cdp = await page.context().newCDPSession(page);
await cdp.send("Performance.enable");
const busy = async () => {
  const { metrics } = (await cdp.send("Performance.getMetrics")) as {
    metrics: { name: string; value: number }[];
  };
  return metrics.find((m) => m.name === "TaskDuration")?.value ?? Number.NaN;
};
const take = () =>
  page.evaluate("window.qmpkitBench.take()") as Promise<{ total: number[]; toServer: number[] }>;

async function run(r: number, s: number) {
  await take();
  const busy0 = await busy();
  const t0 = Date.now();
  sims.stdin!.write(`go ${r} ${s}\n`);
  let peak = 0;
  const sampling = setInterval(() => {
    peak = Math.max(peak, rssMiB(server.pid!));
  }, 1000);
  const sent = Number(
    (await simOut((l) => l.startsWith("done "), "the load", (s + 120) * 1000)).slice(5),
  );
  // Let the last events reach the page.
  await new Promise((res) => setTimeout(res, 2000));
  clearInterval(sampling);
  const cpu = ((await busy()) - busy0) / ((Date.now() - t0) / 1000);
  const { total: latencies, toServer } = await take();
  return { sent, latencies, toServer, cpu, peak };
}

const idle = await run(5, 4);
const loaded = await run(rate, seconds);
const ms = (x: number) => `${x.toFixed(0).padStart(4)} ms`;
const row = (name: string, r: Awaited<ReturnType<typeof run>>) =>
  [
    name.padEnd(18),
    `events ${String(r.sent).padStart(6)}, on page ${String(r.latencies.length).padStart(6)}`,
    `p50 ${ms(quantile(r.latencies, 0.5))}  p99 ${ms(quantile(r.latencies, 0.99))}  max ${ms(Math.max(...r.latencies))}`,
    `(VM to server: p50 ${ms(quantile(r.toServer, 0.5))}, p99 ${ms(quantile(r.toServer, 0.99))})`,
    `page CPU ${(r.cpu * 100).toFixed(0).padStart(3)} %`,
  ].join("  ");
console.log(row("idle fleet (5/s)", idle));
console.log(row(`loaded (${rate}/s)`, loaded));
console.log(
  `latency p99 loaded / idle: ${(quantile(loaded.latencies, 0.99) / quantile(idle.latencies, 0.99)).toFixed(2)}x; goal p99 < 500 ms: ${quantile(loaded.latencies, 0.99) < 500 ? "met" : "NOT met"}`,
);
console.log(
  `server RSS: ${rssIdle.toFixed(0)} MiB with ${vms} VMs watched, peak ${loaded.peak.toFixed(0)} MiB under load`,
);
await browser.close();
done = true;
server.kill("SIGTERM");
sims.kill("SIGTERM");
await Promise.all([server, sims].map((c) => new Promise((r) => c.once("exit", r))));
process.exit(0);
