/**
 * `FleetAgent` in a program (`qmpkit/fleet`) against a real nats-server: the numbers it gives
 * for metrics (`stats()`, the `observer` callbacks) and the KV entry it writes; and the other
 * credentials of the command line, a token and an nkey, with servers that require them.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { Kvm } from "@nats-io/kv";
import { connect, nkeys } from "@nats-io/transport-node";
import { QmpClient } from "../../src/client/index.js";
import { FleetAgent } from "../../src/fleet/index.js";
import { Journal } from "../../src/journal/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { runCli } from "../cli/support.js";
import { natsServerTest, startNatsServer } from "../support/nats-server.js";
import { readStream, startAgent, tempRoot, until } from "./support.js";

const temp = tempRoot("fleet-api");
after(() => temp.dispose());

suite("FleetAgent", natsServerTest(), () => {
  test("should count what it takes in and publishes, for metrics, and keep the VM's KV entry", async () => {
    const nats = await startNatsServer();
    const journal = Journal.open(join(temp.dir(), "agent.db"));
    const calls: string[] = [];
    const agent = new FleetAgent({
      host: "api",
      nats: { servers: nats.url },
      journal,
      observer: {
        event: (vm, name) => calls.push(`event ${vm} ${name}`),
        gap: (vm, gap) => calls.push(`gap ${vm} ${gap.untilMs - gap.sinceMs}`),
        published: (vm, duplicate) => calls.push(`published ${vm} ${duplicate}`),
        connection: (up) => calls.push(`connection ${up}`),
        dropped: (vm, n) => calls.push(`dropped ${vm} ${n}`),
      },
    });
    try {
      agent.start();
      await until("connected", () => agent.stats().connected);
      const t = { seconds: 1796587001, microseconds: 250 };
      agent.notice(
        "vm1",
        { kind: "connected", address: "unix:/x/vm1.qmp", qemu: "7.2.22", state: "running" },
        1796587000000,
      );
      agent.event("vm1", { event: "STOP", timestamp: t });
      agent.state("vm1", { from: "running", to: "paused", cause: "STOP", atMs: 1796587001000.25 });
      agent.notice(
        "vm1",
        { kind: "reconnected", qemu: "7.2.22", sinceMs: 1796587002000, untilMs: 1796587003500 },
        1796587003500,
      );
      await agent.drained();
      const stats = agent.stats();
      assert.deepEqual(
        { ...stats, vms: Object.fromEntries(stats.vms) },
        {
          connected: true,
          outboxDepth: 0,
          outboxBytes: 0,
          published: 4,
          duplicates: 0,
          dropped: 0,
          vms: { vm1: { events: 1, gaps: 1, connected: true, runState: "paused" } },
        },
      );
      assert.deepEqual(calls, [
        "connection true",
        "event vm1 STOP",
        "gap vm1 1500",
        "published vm1 false",
        "published vm1 false",
        "published vm1 false",
        "published vm1 false",
      ]);
      const stored = await readStream(nats.url);
      assert.deepEqual(
        stored.map((m) => [m.subject, m.message.sequence, m.message.timeMs]),
        [
          ["qmp.api.vm1.watch", 1, 1796587000000],
          ["qmp.api.vm1.event.STOP", 2, 1796587001000.25],
          ["qmp.api.vm1.state", 3, 1796587001000.25],
          ["qmp.api.vm1.watch", 4, 1796587003500],
        ],
      );
      const nc = await connect({ servers: nats.url });
      try {
        const kv = await new Kvm(nc).open("qmp-vms");
        await until(
          "the KV entry",
          async () => (await kv.get("api.vm1"))?.json<{ state: string }>()?.state === "paused",
        );
        const entry = (await kv.get("api.vm1"))!.json<Record<string, unknown>>();
        assert.deepEqual(
          { ...entry, updated: typeof entry.updated },
          {
            host: "api",
            vm: "vm1",
            address: "unix:/x/vm1.qmp",
            qemu: "7.2.22",
            state: "paused",
            since: "2026-12-06T19:56:41.000250Z",
            connection: "connected",
            lastEvent: { event: "STOP", time: "2026-12-06T19:56:41.000250Z" },
            updated: "string",
          },
        );
      } finally {
        await nc.close();
      }
    } finally {
      await agent.close();
      journal.close();
      await nats.dispose();
    }
  });

  test("should serve Prometheus metrics with --metrics, fed by the agent", async () => {
    const nats = await startNatsServer();
    const dir = temp.dir();
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    const ctl = await QmpClient.connect(await vm.listen(`unix:${join(dir, "ctl.qmp")}`));
    const agent = startAgent(nats.url, dir, "hm", ["--metrics", "127.0.0.1:0"]);
    try {
      await agent.waitFor("metrics on http://127.0.0.1:", "watching hm/vm1", "connected to NATS");
      const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(agent.log())![1]!;
      await ctl.execute("stop");
      let text = "";
      await until("the STOP in the metrics", async () => {
        text = await (await fetch(url)).text();
        return text.includes('qmpkit_events_total{host="hm",vm="vm1",event="STOP"} 1');
      });
      assert.match(text, /qmpkit_vm_run_state\{host="hm",vm="vm1",state="paused"\} 1/);
      assert.match(text, /qmpkit_vm_run_state\{host="hm",vm="vm1",state="running"\} 0/);
      assert.match(text, /qmpkit_vm_connected\{host="hm",vm="vm1"\} 1/);
      await until("an empty outbox in the metrics", async () =>
        (await (await fetch(url)).text()).includes('qmpkit_outbox_depth{host="hm"} 0'),
      );
    } finally {
      const result = await agent.stop();
      assert.equal(result.status, 0, agent.log());
      await ctl.close();
      await vm.close();
      await nats.dispose();
    }
  });

  test("should connect over TLS with --tls-ca, and refuse a server it cannot verify", async (t) => {
    const dir = temp.dir();
    const openssl = (...args: string[]) =>
      spawnSync("openssl", args, {
        cwd: dir,
        stdio: ["ignore", "ignore", "pipe"],
        encoding: "utf8",
      });
    if (openssl("version").status !== 0) {
      if (process.env.CI) assert.fail("openssl is needed to make the test certificates");
      t.skip("openssl not found: TLS test SKIPPED");
      return;
    }
    // A private CA and a server certificate for 127.0.0.1.
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    for (const step of [
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=qmpkit test CA",
      ],
      ["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
    ])
      assert.equal(openssl(...step).status, 0, step.join(" "));
    writeFileSync(join(dir, "ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    const sign = openssl(
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "1",
      "-extfile",
      "ext",
    );
    assert.equal(sign.status, 0, sign.stderr);
    const nats = await startNatsServer({
      config: `tls { cert_file: "${join(dir, "server.pem")}", key_file: "${join(dir, "server.key")}" }`,
    });
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    const agent = startAgent(nats.url, dir, "htls", ["--tls-ca", join(dir, "ca.pem")]);
    try {
      await agent.waitFor("watching htls/vm1", "connected to NATS");
      await until("the VM in fleet status over TLS", async () => {
        const r = await runCli(
          [
            "fleet",
            "status",
            "--json",
            "--nats",
            `tls://127.0.0.1:${nats.port}`,
            "--tls-ca",
            join(dir, "ca.pem"),
          ],
          { timeoutMs: 60_000 },
        );
        return r.status === 0 && r.stdout.includes('"host": "htls"');
      });
      // Without the CA the server's certificate is not trusted: a clear error, no hang.
      const untrusted = await runCli(
        ["fleet", "status", "--nats", `tls://127.0.0.1:${nats.port}`],
        { timeoutMs: 60_000 },
      );
      assert.equal(untrusted.status, 1);
      assert.match(
        untrusted.stderr,
        /^qmpkit: cannot connect to NATS at tls:\/\/127\.0\.0\.1:\d+: .*(certificate|self.signed|issuer)/i,
      );
    } finally {
      const result = await agent.stop();
      assert.equal(result.status, 0, agent.log());
      await vm.close();
      await nats.dispose();
    }
  });

  test("should connect with a token or an nkey, from files and the environment", async () => {
    const dir = temp.dir();
    const vm = new SimulatedMachine();
    await vm.listen(`unix:${join(dir, "vms", "vm1.qmp")}`);
    writeFileSync(join(dir, "token"), "tok-s3cret\n", { mode: 0o600 });
    const user = nkeys.createUser();
    writeFileSync(join(dir, "seed"), `${new TextDecoder().decode(user.getSeed())}\n`, {
      mode: 0o600,
    });
    for (const [name, config, agentArgs, env] of [
      [
        "token",
        'authorization { token: "tok-s3cret" }',
        ["--token-file", join(dir, "token")],
        { QMPKIT_NATS_TOKEN: "tok-s3cret" },
      ],
      [
        "nkey",
        `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }`,
        ["--nkey", join(dir, "seed")],
        {},
      ],
    ] as const) {
      const nats = await startNatsServer({ config });
      const agent = startAgent(nats.url, dir, `h-${name}`, agentArgs);
      try {
        await agent.waitFor(`watching h-${name}/vm1`, "connected to NATS");
        const args = name === "nkey" ? ["--nkey", join(dir, "seed")] : [];
        await until(`${name}: the VM in fleet status`, async () => {
          const r = await runCli(["fleet", "status", "--nats", nats.url, "--json", ...args], {
            env,
            timeoutMs: 60_000,
          });
          return r.status === 0 && r.stdout.includes(`"host": "h-${name}"`);
        });
        const refused = await runCli(["fleet", "status", "--nats", nats.url], {
          env: { QMPKIT_NATS_TOKEN: undefined },
          timeoutMs: 60_000,
        });
        assert.equal(refused.status, 1, name);
        assert.match(refused.stderr, /Authorization Violation/i);
        assert.doesNotMatch(agent.log(), /s3cret|SU[A-Z0-9]{20}/);
      } finally {
        const result = await agent.stop();
        assert.equal(result.status, 0, agent.log());
        await nats.dispose();
      }
    }
    await vm.close();
  });
});
