/**
 * Who may do what, with the documented server config (docs/fleet-server.conf) on a real
 * nats-server: an agent publishes its own host's VMs and answers commands; a viewer reads the
 * stream and the KV table but cannot run a command (its publish to qmp-exec.> is denied by the
 * server) nor forge an event; an operator can run what the agent allows; an agent cannot
 * publish for another host; a wrong password is a clear error; no secret reaches any output.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { QmpClient } from "../../src/client/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { runCli } from "../cli/support.js";
import { type NatsServer, natsServerTest, startNatsServer } from "../support/nats-server.js";
import { type Agent, readStream, startAgent, tempRoot, until } from "./support.js";

const config = readFileSync(new URL("../../docs/fleet-server.conf", import.meta.url), "utf8");
const temp = tempRoot("fleet-perm");
const viewer = { user: "viewer", pass: "change-me-viewer" };
after(() => temp.dispose());

suite("fleet permissions (docs/fleet-server.conf)", natsServerTest(), () => {
  let nats: NatsServer;
  let dir: string;
  let agent: Agent;
  const vm = new SimulatedMachine();
  let ctl: QmpClient;
  const password = (user: string) => join(dir, `${user}.password`);
  const as = (user: string, ...args: string[]) =>
    runCli([...args, "--nats", nats.url, "--user", user, "--password-file", password(user)], {
      timeoutMs: 60_000,
    });

  before(async () => {
    nats = await startNatsServer({ config });
    dir = temp.dir();
    for (const user of ["agent-web1", "viewer", "operator"])
      writeFileSync(password(user), `change-me-${user}\n`, { mode: 0o600 });
    writeFileSync(password("wrong"), "not-the-password\n", { mode: 0o600 });
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    ctl = await QmpClient.connect(await vm.listen(`unix:${join(dir, "ctl.qmp")}`));
    agent = startAgent(nats.url, dir, "web1", [
      "--user",
      "agent-web1",
      "--password-file",
      password("agent-web1"),
      "--allow",
      "query-*,stop,cont",
    ]);
    await agent.waitFor("watching web1/vm1", "connected to NATS");
  });

  after(async () => {
    const result = await agent.stop();
    await ctl.close();
    await vm.close();
    const log = readFileSync(nats.logPath, "utf8");
    await nats.dispose();
    assert.equal(result.status, 0, agent.log());
    assert.doesNotMatch(agent.log() + log, /change-me|not-the-password/, "no secret in any log");
  });

  test("should let a viewer read the fleet and refuse it a command", async () => {
    await until("web1/vm1 in the KV bucket", async () => {
      const r = await as("viewer", "fleet", "status", "--json");
      return r.status === 0 && r.stdout.includes('"vm": "vm1"');
    });
    const events = await as("viewer", "fleet", "events", "--since", "1h", "--no-follow", "--json");
    assert.equal(events.status, 0, events.stderr);
    assert.match(events.stdout, /"vm":"web1\/vm1","watch":"connected"/);
    // The agent would run stop (--allow), but the server never lets the viewer ask.
    const stop = await as("viewer", "fleet", "exec", "web1/vm1", "stop");
    assert.equal(stop.status, 1);
    assert.match(
      stop.stderr,
      /^qmpkit: stop on web1\/vm1: Permissions Violation for Publish to "qmp-exec\.web1\.vm1"/,
    );
    const query = await as("viewer", "fleet", "exec", "web1/vm1", "query-status");
    assert.equal(query.status, 1);
    assert.match(query.stderr, /Permissions Violation for Publish to "qmp-exec\.web1\.vm1"/);
    assert.equal((await ctl.execute("query-status")).status, "running");
    assert.match(
      readFileSync(nats.logPath, "utf8"),
      /Publish Violation - User "viewer", Subject "qmp-exec\.web1\.vm1"/,
    );
  });

  test("should refuse a viewer publishing on the fleet's subjects", async () => {
    const before = (await readStream(nats.url, "QMP", viewer)).length;
    const nc = await connect({ servers: nats.url, user: "viewer", pass: "change-me-viewer" });
    try {
      await assert.rejects(
        jetstream(nc).publish("qmp.web1.vm1.event.STOP", "{}", { timeout: 5000 }),
        /Permissions Violation for Publish to "qmp\.web1\.vm1\.event\.STOP"/,
      );
    } finally {
      await nc.close();
    }
    assert.equal((await readStream(nats.url, "QMP", viewer)).length, before);
  });

  test("should let an operator run what the agent allows, and the agent refuse the rest", async () => {
    const stop = await as("operator", "fleet", "exec", "web1/vm1", "stop");
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal((await ctl.execute("query-status")).status, "paused");
    const cont = await as("operator", "fleet", "exec", "web1/vm1", "cont");
    assert.equal(cont.status, 0, cont.stderr);
    // Allowed by the server, refused by the agent: system_reset is not in its --allow.
    const reset = await as("operator", "fleet", "exec", "web1/vm1", "system_reset");
    assert.equal(reset.status, 1);
    assert.match(
      reset.stderr,
      /^qmpkit: system_reset: GenericError: the agent on web1 does not run 'system_reset'/,
    );
    assert.equal((await ctl.execute("query-status")).status, "running");
  });

  test("should keep an agent to its own host, and say when the password is wrong", async () => {
    const other = temp.dir();
    const vm2 = new SimulatedMachine();
    await vm2.listen(`unix:${join(other, "vms", "vm2.qmp")}`);
    // agent-web1's credentials, claiming to be web2: every publish is denied, nothing is lost.
    const impostor = startAgent(nats.url, other, "web2", [
      "--user",
      "agent-web1",
      "--password-file",
      password("agent-web1"),
    ]);
    try {
      await impostor.waitFor(
        "watching web2/vm2",
        'Permissions Violation for Publish to "qmp.web2.vm2.watch"',
      );
      assert.ok(
        (await readStream(nats.url, "QMP", viewer)).every((m) => m.message.host === "web1"),
      );
    } finally {
      await impostor.stop();
      await vm2.close();
    }
    const wrong = await runCli(
      [
        "fleet",
        "status",
        "--nats",
        nats.url,
        "--user",
        "viewer",
        "--password-file",
        password("wrong"),
      ],
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(wrong.status, 1);
    assert.match(
      wrong.stderr,
      /^qmpkit: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*Authorization Violation/i,
    );
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /not-the-password/);
  });
});
