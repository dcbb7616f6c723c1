/**
 * The README's pictures of the dashboard (docs/images/dashboard*.png), taken the way the browser
 * tests work: simulated VMs (two QEMU releases, a few going through pauses, a panic, a
 * shutdown, a suspend), the real `qmpkit dashboard`, Debian's Chromium through playwright-core.
 *
 * Run: `npx tsx scripts/screenshots.ts` (about a minute: the timelines need some history).
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { SimulatedMachine } from "../src/sim/index.js";
import { CHROMIUM, CHROMIUM_ARGS } from "../test/web/support.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const images = join(root, "docs/images");
const dir = mkdtempSync(join(tmpdir(), "qmpkit-shots-"));
mkdirSync(images, { recursive: true });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const fleet: [string, string, ConstructorParameters<typeof SimulatedMachine>[0]][] = [
  ["web-1", "7.2.22", {}],
  ["web-2", "7.2.22", {}],
  ["db-1", "10.0.2", { actions: { panic: "pause" } }],
  ["ci-runner-7", "10.0.2", { actions: { shutdown: "pause" } }],
  ["build-3", "7.2.22", { machine: "pc" }],
  ["staging", "10.0.2", { startPaused: true }],
];
const machines = new Map<string, SimulatedMachine>();
for (const [name, version, options] of fleet) {
  const m = new SimulatedMachine({ qemuVersion: version, ...options });
  await m.listen(`unix:${dir}/${name}.qmp`);
  machines.set(name, m);
}
const port = await new Promise<number>((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const { port } = s.address() as { port: number };
    s.close(() => resolve(port));
  });
});
const server = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    join(root, "src/cli/main.ts"),
    "dashboard",
    `${dir}/*.qmp`,
    "--listen",
    `127.0.0.1:${port}`,
  ],
  { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
);
try {
  for await (const line of createInterface({ input: server.stderr! }))
    if (line.startsWith("qmpkit dashboard: http://")) break;
  const url = `http://127.0.0.1:${port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage({
    viewport: { width: 1280, height: 860 },
    deviceScaleFactor: 1,
  });
  await page.goto(`${url}/`);
  await page.waitForSelector("#live.on");
  // A minute of history: pauses and resumes, then the rare things.
  const m = (name: string) => machines.get(name)!;
  for (let i = 0; i < 8; i++) {
    m("web-1").core.stop();
    await sleep(1500 + i * 200);
    m("web-1").core.cont();
    if (i === 2) m("build-3").guest.suspend();
    if (i === 4) m("build-3").core.systemWakeup();
    if (i === 3) m("web-2").core.stop();
    if (i === 5) m("web-2").core.cont();
    await sleep(1500);
  }
  m("db-1").guest.panic({ type: "hyper-v", arg1: 1, arg2: 2, arg3: 3, arg4: 4, arg5: 5 });
  await sleep(3000);
  m("ci-runner-7").guest.shutdown();
  await sleep(4000);
  // The 5-minute window, narrowed to the minute of history there is.
  await page.click('#window-buttons [data-window="300000"]');
  await sleep(500);
  await page.screenshot({ path: join(images, "dashboard.png"), fullPage: true });
  await page.goto(
    `${url}/#/vm/${(await page.getAttribute('#vms tbody tr[data-key$="/db-1"]', "data-key"))!.replace("/", "/")}`,
  );
  await page.waitForSelector('#vm-intervals tbody tr[data-state="guest-panicked"]');
  await page.click('#actions [data-action="system_reset"]');
  await sleep(300);
  await page.screenshot({ path: join(images, "dashboard-vm.png") });
  await page.click("#confirm-cancel");
  await page.goto(`${url}/#/events`);
  await page.fill('#log-filters input[name="except"]', "RESUME");
  await sleep(800);
  await page.screenshot({ path: join(images, "dashboard-events.png") });
  await browser.close();
  console.log("docs/images/dashboard.png, dashboard-vm.png, dashboard-events.png");
} finally {
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  for (const machine of machines.values()) await machine.close();
  rmSync(dir, { recursive: true, force: true });
}
