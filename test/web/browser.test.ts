/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core, against the
 * real `qmpkit dashboard` watching simulated VMs. The VM list renders; a guest panic turns its
 * row to guest-panicked without a reload; the VM's timeline has the interval; an action runs
 * after its confirmation (and not when cancelled), and is refused under --read-only; the
 * server killed (SIGKILL) and started again, the page resumes its stream and has every entry
 * the journal has, each once.
 *
 * Waits are on conditions with generous deadlines (the machine is shared); nothing times the
 * page here (bench/dashboard.ts measures it).
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, suite, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { Journal } from "../../src/journal/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  chromiumMissing,
  type DashboardProcess,
  freePort,
  startDashboardProcess,
  tempDir,
  waitFor,
} from "./support.js";

const skip = chromiumMissing();
const DEADLINE = 60_000;

suite("dashboard in Chromium", { skip }, () => {
  const dir = tempDir("qmpkit-browser-");
  const machines = new Map<string, SimulatedMachine>();
  let browser: Browser;
  let dashboard: DashboardProcess;
  let readOnly: DashboardProcess | undefined;
  let page: Page;
  let port: number;
  let host = "";
  const journalPath = `${dir.path}/journal.db`;
  const args = () => [
    `${dir.path}/a/*.qmp`,
    "--journal",
    journalPath,
    "--listen",
    `127.0.0.1:${port}`,
  ];
  const row = (vm: string) => `#vms tbody tr[data-key="${host}/${vm}"]`;

  before(async () => {
    mkdirSync(`${dir.path}/a`);
    mkdirSync(`${dir.path}/b`);
    for (const name of ["vm1", "vm2"]) {
      const machine = new SimulatedMachine({ actions: { panic: "pause" } });
      // Two monitors: one for each dashboard (a QMP socket serves one client at a time).
      await machine.listen(`unix:${dir.path}/a/${name}.qmp`);
      await machine.listen(`unix:${dir.path}/b/${name}.qmp`);
      machines.set(name, machine);
    }
    port = await freePort();
    dashboard = await startDashboardProcess(args());
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${dashboard.url}/`);
    await waitFor(
      "both VMs connected on the page",
      async () => (await page.locator('#vms tbody tr[data-connection="connected"]').count()) === 2,
    );
    host = (await page.getAttribute("#vms tbody tr", "data-key"))!.split("/")[0]!;
  });

  after(async () => {
    await browser?.close();
    await dashboard?.stop();
    await readOnly?.stop();
    for (const m of machines.values()) await m.close();
    dir.remove();
  });

  test("should list every VM with its host, QEMU version, run state and connection", async () => {
    const cells = await page.$$eval("#vms tbody tr", (rows) =>
      rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent)),
    );
    assert.deepEqual(
      cells.map((c) => [c[0], c[1], c[2], c[3], c[5], c[6]]),
      [
        [host, "vm1", "7.2.22", "running", "connected", "connected"],
        [host, "vm2", "7.2.22", "running", "connected", "connected"],
      ],
    );
  });

  test("should turn a panicked VM's row to guest-panicked without a reload", async () => {
    await page.evaluate("window.marker = 42");
    machines.get("vm1")!.guest.panic();
    await page.waitForSelector(`${row("vm1")}[data-state="guest-panicked"]`, { timeout: DEADLINE });
    assert.equal(await page.textContent(`${row("vm1")} td:nth-child(6)`), "STOP");
    // The same document: no navigation happened.
    assert.equal(await page.evaluate("window.marker"), 42);
    assert.equal(await page.getAttribute(`${row("vm2")}`, "data-state"), "running");
  });

  test("should show the run-state intervals on the VM's page and its timeline", async () => {
    assert.equal(await page.locator("#timeline canvas").count(), 1);
    // Following now until a drag zooms to a range; a double-click follows again.
    assert.equal(await page.isHidden("#follow"), true);
    const box = (await page.locator("#timeline .u-over").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.2, box.y + 5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + 5, { steps: 5 });
    await page.mouse.up();
    await page.waitForSelector("#follow", { state: "visible" });
    await page.dblclick("#timeline .u-over");
    await page.waitForSelector("#follow", { state: "hidden" });
    await page.click(`${row("vm1")} a`);
    await page.waitForSelector('#vm-intervals tbody tr[data-state="guest-panicked"]', {
      timeout: DEADLINE,
    });
    const intervals = await page.$$eval("#vm-intervals tbody tr", (rows) =>
      rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent)),
    );
    // Newest first: panicked since the panic (still), running until then.
    assert.equal(intervals[0]![0], "guest-panicked");
    assert.equal(intervals[0]![2], "now");
    assert.equal(intervals[0]![4], "STOP");
    assert.equal(intervals[1]![0], "running");
    assert.equal(intervals[1]![2], intervals[0]![1]);
    assert.equal(await page.locator("#vm-timeline canvas").count(), 1);
    const events = await page.$$eval("#vm-events tbody tr td:nth-child(3)", (cells) =>
      cells.map((c) => c.textContent),
    );
    assert.ok(events.includes("GUEST_PANICKED"), events.join(" "));
    assert.match((await page.textContent("#vm-events tbody"))!, /"action": "pause"/);
  });

  test("should run an action after its confirmation, and not when cancelled", async () => {
    const vm2 = machines.get("vm2")!;
    await page.goto(`${dashboard.url}/#/vm/${host}/vm2`);
    await page.waitForSelector('#vm-info dd[data-field="run state"]', { timeout: DEADLINE });
    await page.click('#actions [data-action="quit"]');
    await page.waitForSelector("#confirm[open]");
    assert.equal(await page.textContent("#confirm-text"), `Send quit to ${host}/vm2?`);
    await page.click("#confirm-cancel");
    await page.waitForSelector("#confirm", { state: "hidden" });
    await page.click('#actions [data-action="stop"]');
    await page.click("#confirm-ok");
    await page.waitForSelector("#action-result.ok", { timeout: DEADLINE });
    assert.equal(vm2.core.state, "paused");
    assert.equal(vm2.core.hasExited, false, "the cancelled quit was not sent");
    await page
      .locator('#vm-info dd[data-field="run state"]', { hasText: /^paused$/ })
      .waitFor({ timeout: DEADLINE });
  });

  test("should refuse an action under --read-only and say so", async () => {
    const vm2 = machines.get("vm2")!;
    readOnly = await startDashboardProcess([
      `${dir.path}/b/*.qmp`,
      "--read-only",
      "--listen",
      `127.0.0.1:${await freePort()}`,
    ]);
    const other = await browser.newPage();
    try {
      await other.goto(`${readOnly.url}/#/vm/${host}/vm2`);
      await other.waitForSelector("#live.on", { timeout: DEADLINE });
      assert.equal(await other.textContent("#mode"), "read-only");
      await other.click('#actions [data-action="cont"]');
      await other.click("#confirm-ok");
      await other.waitForSelector("#action-result.refused", { timeout: DEADLINE });
      assert.equal(
        await other.textContent("#action-result"),
        `cont on ${host}/vm2 refused: the dashboard is read-only (--read-only)`,
      );
      assert.equal(vm2.core.state, "paused");
    } finally {
      await other.close();
    }
  });

  test("should resume after the server is killed and started again, missing no entry", async () => {
    await page.goto(`${dashboard.url}/#/events`);
    await page.waitForSelector("#log tbody tr", { timeout: DEADLINE });
    await dashboard.stop("SIGKILL");
    await page.waitForSelector("#live.off", { timeout: DEADLINE });
    // While nobody watches: lost for the journal too (a gap, noted when the watch comes back).
    machines.get("vm2")!.core.cont();
    dashboard = await startDashboardProcess(args());
    // After the restart: new entries, which the page gets live.
    await waitFor("the watch back", async () => {
      const body = (await (await fetch(`${dashboard.url}/api/vms`)).json()) as {
        vms: { connection: string }[];
      };
      return body.vms.every((v) => v.connection === "connected");
    });
    machines.get("vm2")!.core.stop();
    // The STOP and its run-state change are journalled (the server's table has them) before
    // the page is compared with the journal: nothing comes after them.
    await waitFor("vm2 paused on the server", async () => {
      const body = (await (await fetch(`${dashboard.url}/api/vms`)).json()) as {
        vms: { name: string; state: string }[];
      };
      return body.vms.find((v) => v.name === "vm2")?.state === "paused";
    });
    const journal = Journal.open(journalPath, { readonly: true });
    try {
      const lastId = await waitFor("the page to catch up with the journal", async () => {
        const last = journal.lastId();
        const seen = Number(await page.getAttribute("body", "data-last-id"));
        const shown = await page.locator(`#log tbody tr[data-id="${last}"]`).count();
        return seen === last && shown === 1 && last;
      });
      const ids: number[] = [];
      for await (const e of journal.entries()) ids.push(e.id);
      const shown = await page.$$eval("#log tbody tr", (rows) =>
        rows.map((r) => Number(r.getAttribute("data-id"))),
      );
      assert.deepEqual(
        [...shown].sort((a, b) => a - b),
        ids,
      );
      assert.equal(ids.at(-1), lastId);
      // The restart is in the log as a gap, and the STOP after it came live.
      const kinds = await page.$$eval("#log tbody tr", (rows) =>
        rows.map((r) => r.querySelectorAll("td")[4]?.textContent),
      );
      assert.ok(kinds.includes("reconnected"), kinds.join(" "));
      assert.equal(await page.textContent("#live"), "live");
    } finally {
      journal.close();
    }
  });
});
