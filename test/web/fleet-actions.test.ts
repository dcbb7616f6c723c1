/**
 * The dashboard's actions on fleet VMs, all real: a nats-server with the documented permissions
 * (docs/fleet-server.conf), a `qmpkit agent` process (user agent-web1, `--allow query-*,stop,cont`)
 * watching a simulated VM, and `qmpkit dashboard --nats` processes with the operator's
 * credentials. An allowed action goes through the agent and changes the VM, and the page's table
 * (from the dashboard's journal, fed by the stream) shows it; one the agent does not allow is
 * refused with HTTP 403 and the agent's own words, the VM untouched; `--read-only` refuses before
 * asking anyone; a viewer's dashboard is refused by NATS itself (502, the server's words).
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { Journal } from "../../src/journal/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { ActionError, FleetSource } from "../../src/web/index.js";
import { type Agent, startAgent, tempRoot } from "../fleet/support.js";
import { type NatsServer, natsServerTest, startNatsServer } from "../support/nats-server.js";
import { type DashboardProcess, startDashboardProcess, waitFor } from "./support.js";

const config = readFileSync(new URL("../../docs/fleet-server.conf", import.meta.url), "utf8");
const temp = tempRoot("fleet-actions");
after(() => temp.dispose());

interface VmRow {
  host: string;
  name: string;
  state: string;
  connection: string;
}

suite("dashboard: actions on fleet VMs through their agent", natsServerTest(), () => {
  let nats: NatsServer;
  let dir: string;
  let agent: Agent;
  let dash: DashboardProcess;
  let readOnly: DashboardProcess;
  const vm = new SimulatedMachine();
  const password = (user: string) => join(dir, `${user}.password`);
  const as = (user: string) => ["--user", user, "--password-file", password(user)];

  async function rows(d: DashboardProcess): Promise<VmRow[]> {
    return ((await (await fetch(`${d.url}/api/vms`)).json()) as { vms: VmRow[] }).vms;
  }

  function act(d: DashboardProcess, action: string) {
    return fetch(`${d.url}/api/vms/web1/vm1/actions/${action}`, {
      method: "POST",
      headers: { "x-qmpkit-request": "action" },
    });
  }

  before(async () => {
    nats = await startNatsServer({ config });
    dir = temp.dir();
    for (const user of ["agent-web1", "viewer", "operator"])
      writeFileSync(password(user), `change-me-${user}\n`, { mode: 0o600 });
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    agent = startAgent(nats.url, dir, "web1", [
      ...as("agent-web1"),
      "--allow",
      "query-*,stop,cont",
    ]);
    await agent.waitFor("watching web1/vm1", "connected to NATS");
    const args = ["--nats", nats.url, ...as("operator"), "--listen", "127.0.0.1:0"];
    dash = await startDashboardProcess([...args, "--journal", join(dir, "dashboard.db")]);
    readOnly = await startDashboardProcess([...args, "--read-only"]);
    for (const d of [dash, readOnly])
      await waitFor("web1/vm1 running on the page", async () =>
        (await rows(d)).some((r) => r.name === "vm1" && r.state === "running"),
      );
  });

  after(async () => {
    await dash?.stop();
    await readOnly?.stop();
    const result = await agent?.stop();
    await vm.close();
    const log = nats ? readFileSync(nats.logPath, "utf8") : "";
    await nats?.dispose();
    assert.equal(result?.status, 0, agent?.log());
    assert.doesNotMatch(
      `${agent?.log()}${dash?.stderr()}${readOnly?.stderr()}${log}`,
      /change-me/,
      "no password in any output",
    );
  });

  test("should run an allowed action through the agent, and the page see its effect", async () => {
    const stop = await act(dash, "stop");
    assert.equal(stop.status, 200, await stop.clone().text());
    assert.deepEqual(await stop.json(), { ok: true, action: "stop", vm: "web1/vm1", result: {} });
    assert.equal(vm.core.state, "paused");
    // The VM's STOP went VM → agent → stream → the dashboard's journal → its table.
    await waitFor("web1/vm1 paused on the page", async () =>
      (await rows(dash)).some((r) => r.host === "web1" && r.name === "vm1" && r.state === "paused"),
    );
    const entries = (await (
      await fetch(`${dash.url}/api/entries?vm=web1/vm1&kinds=event`)
    ).json()) as {
      entries: { event?: { event: string } }[];
    };
    assert.ok(
      entries.entries.some((e) => e.event?.event === "STOP"),
      JSON.stringify(entries),
    );
    const cont = await act(dash, "cont");
    assert.equal(cont.status, 200, await cont.clone().text());
    assert.equal(vm.core.state, "running");
    await waitFor("web1/vm1 running again on the page", async () =>
      (await rows(dash)).some((r) => r.name === "vm1" && r.state === "running"),
    );
  });

  test("should refuse an action the agent does not allow, with the agent's message", async () => {
    for (const action of ["system_reset", "quit"]) {
      const r = await act(dash, action);
      assert.equal(r.status, 403);
      const { error } = (await r.json()) as { error: string };
      assert.match(
        error,
        new RegExp(
          `^${action} on web1/vm1 refused by its agent: the agent on web1 does not run '${action}' for the fleet \\(allowed: query-\\*, stop, cont; widen with qmpkit agent --allow\\)$`,
        ),
      );
    }
    assert.equal(vm.core.state, "running");
    assert.equal(vm.core.hasExited, false, "quit was not run");
  });

  test("should refuse every action under --read-only before asking the agent", async () => {
    for (const action of ["stop", "system_reset"]) {
      const r = await act(readOnly, action);
      assert.equal(r.status, 403);
      assert.deepEqual(await r.json(), {
        error: `${action} on web1/vm1 refused: the dashboard is read-only (--read-only)`,
      });
    }
    assert.equal(vm.core.state, "running");
    const page = (await (await fetch(`${readOnly.url}/api/vms`)).json()) as {
      readOnly: boolean;
      actions: string[];
    };
    assert.equal(page.readOnly, true);
    assert.deepEqual(page.actions, []);
  });

  test("should pass on NATS's refusal of a viewer, and a VM its agent does not have", async () => {
    const journal = Journal.open(":memory:", { restartGaps: false });
    const controller = new AbortController();
    const source = new FleetSource({
      nats: { servers: nats.url, user: "viewer", password: "change-me-viewer" },
      journal,
    });
    const running = source.run(controller.signal);
    try {
      await waitFor("the viewer's source reading the stream", () => source.received > 0);
      await assert.rejects(source.actions.execute({ host: "web1", name: "vm1" }, "stop"), (e) => {
        assert.ok(e instanceof ActionError);
        assert.equal(e.status, 502);
        assert.match(
          e.message,
          /^stop on web1\/vm1 failed: stop on web1\/vm1: Permissions Violation for Publish to "qmp-exec\.web1\.vm1"/,
        );
        return true;
      });
      assert.equal(vm.core.state, "running");
    } finally {
      controller.abort();
      assert.equal(await running, 0);
      journal.close();
    }
    const missing = await fetch(`${dash.url}/api/vms/web1/vm9/actions/stop`, {
      method: "POST",
      headers: { "x-qmpkit-request": "action" },
    });
    assert.equal(missing.status, 409);
    assert.deepEqual(await missing.json(), {
      error: "stop on web1/vm9: web1/vm9 is not connected to its agent",
    });
    const nobody = await fetch(`${dash.url}/api/vms/web7/vm1/actions/stop`, {
      method: "POST",
      headers: { "x-qmpkit-request": "action" },
    });
    assert.equal(nobody.status, 502);
    assert.match(
      ((await nobody.json()) as { error: string }).error,
      /^stop on web7\/vm1 failed: no agent answers for web7\/vm1 \(qmp-exec\.web7\.vm1\)/,
    );
  });
});
