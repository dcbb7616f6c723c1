/**
 * The dashboard's HTTP side through `app.request()` (no sockets): the token (bearer, the cookie
 * `/?token=` sets, refused without), the Host check on loopback, POSTs safe against cross-site
 * requests, actions refused under read-only and without a way to act, the event log's filters
 * over the journal, bad parameters, and the SSE stream resuming after `Last-Event-ID` from the
 * journal with nothing missing. Then the real `qmpkit dashboard`: a token required off
 * loopback, an action reaching a simulated VM, and /metrics after known events.
 */
import assert from "node:assert/strict";
import { after, suite, test } from "node:test";
import { Journal, type JournalEntry } from "../../src/journal/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import {
  ActionError,
  createDashboardApp,
  createMetrics,
  LiveFeed,
  loadPageAssets,
  type VmActions,
} from "../../src/web/index.js";
import { runCli } from "../cli/support.js";
import { freePort, parseExposition, startDashboardProcess, tempDir, waitFor } from "./support.js";

const dir = tempDir("qmpkit-web-");
after(() => dir.remove());
let n = 0;
const ts = (seconds: number) => ({ seconds, microseconds: 0 });

async function rig(
  options: {
    token?: string;
    readOnly?: boolean;
    actions?: VmActions;
    allowedHosts?: Set<string>;
  } = {},
) {
  const journal = Journal.open(`${dir.path}/j${++n}.db`, { host: "h1" });
  const feed = await LiveFeed.open(journal);
  const app = createDashboardApp({
    feed,
    assets: await loadPageAssets(),
    metrics: createMetrics(),
    ...options,
  });
  const vm = journal.vm({ name: "vm1", address: "unix:/run/vm1.qmp" });
  const vm2 = journal.vm({ name: "vm2", address: "unix:/run/vm2.qmp" });
  journal.notice(vm, { kind: "connected", address: vm.address, qemu: "7.2.22", state: "running" });
  journal.notice(vm2, { kind: "connected", address: vm2.address, qemu: "10.0.2", state: "paused" });
  journal.event(vm, { event: "GUEST_PANICKED", data: { action: "pause" }, timestamp: ts(10) });
  journal.event(vm, { event: "STOP", timestamp: ts(10) });
  journal.state(vm, { from: "running", to: "guest-panicked", cause: "STOP", atMs: 10_000 });
  journal.flush();
  const close = () => {
    feed.close();
    journal.close();
  };
  return { journal, feed, app, vm, vm2, close };
}

const post = (headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "x-qmpkit-request": "action", host: "127.0.0.1:8470", ...headers },
});

/** Reads `entries` messages of an SSE response until `count` entries came; returns them and the ids. */
async function readStream(response: Response, count: number) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const entries: JournalEntry[] = [];
  const ids: string[] = [];
  while (entries.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = text.indexOf("\n\n")) >= 0) {
      const message = text.slice(0, end);
      text = text.slice(end + 2);
      const fields = Object.fromEntries(
        message.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]),
      );
      if (fields.event !== "entries") continue;
      ids.push(fields.id!);
      entries.push(...(JSON.parse(fields.data!) as JournalEntry[]));
    }
  }
  await reader.cancel();
  return { entries, ids };
}

suite("dashboard app: access", () => {
  test("should ask for the token, take it as a bearer or from the cookie /?token= sets", async () => {
    const { app, close } = await rig({ token: "s3cret-token" });
    try {
      assert.equal((await app.request("/api/vms")).status, 401);
      assert.equal((await app.request("/metrics")).status, 401);
      assert.equal((await app.request("/?token=wrong-token")).status, 401);
      const ok = await app.request("/api/vms", {
        headers: { authorization: "Bearer s3cret-token" },
      });
      assert.equal(ok.status, 200);
      const login = await app.request("/?token=s3cret-token");
      assert.equal(login.status, 303);
      assert.equal(login.headers.get("location"), "/");
      const cookie = login.headers.get("set-cookie") ?? "";
      assert.match(cookie, /^qmpkit_dashboard=s3cret-token; Path=\/; HttpOnly; SameSite=Strict$/);
      const page = await app.request("/", { headers: { cookie: cookie.split(";")[0]! } });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<script type="module" src="\/assets\/app.js">/);
    } finally {
      close();
    }
  });

  test("should refuse a Host that is not the dashboard's own (DNS rebinding)", async () => {
    const { app, close } = await rig({ allowedHosts: new Set(["127.0.0.1:8470"]) });
    try {
      assert.equal(
        (await app.request("/api/vms", { headers: { host: "127.0.0.1:8470" } })).status,
        200,
      );
      const evil = await app.request("/api/vms", { headers: { host: "evil.example:8470" } });
      assert.equal(evil.status, 403);
      assert.deepEqual(await evil.json(), {
        error: "refused: unexpected Host 'evil.example:8470'",
      });
    } finally {
      close();
    }
  });

  test("should refuse cross-site POSTs, other methods, and say why", async () => {
    let calls = 0;
    const actions: VmActions = {
      execute: async () => {
        calls++;
        return {};
      },
    };
    const { app, close } = await rig({ actions });
    const url = "/api/vms/h1/vm1/actions/stop";
    try {
      const cases: [RequestInit, number, RegExp][] = [
        [{ method: "POST", headers: { host: "127.0.0.1:8470" } }, 403, /X-Qmpkit-Request/],
        [post({ origin: "http://evil.example" }), 403, /cross-origin request from http:\/\/evil/],
        [post({ "sec-fetch-site": "cross-site" }), 403, /cross-site request/],
        [{ method: "PUT" }, 405, /PUT is not allowed/],
      ];
      for (const [init, status, message] of cases) {
        const r = await app.request(url, init);
        assert.equal(r.status, status);
        assert.match(((await r.json()) as { error: string }).error, message);
      }
      assert.equal(calls, 0);
      const ok = await app.request(
        url,
        post({ origin: "http://127.0.0.1:8470", "sec-fetch-site": "same-origin" }),
      );
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { ok: true, action: "stop", vm: "h1/vm1", result: {} });
      assert.equal(calls, 1);
      const unknown = await app.request("/api/vms/h1/vm1/actions/migrate", post());
      assert.equal(unknown.status, 404);
    } finally {
      close();
    }
  });

  test("should refuse actions under read-only, without a way to act, and pass on a refusal", async () => {
    const refusing: VmActions = {
      execute: async (vm, action) => {
        throw new ActionError(
          `${action} on ${vm.host}/${vm.name}: the agent does not allow it`,
          403,
        );
      },
    };
    const readOnly = await rig({ readOnly: true, actions: refusing });
    const none = await rig({});
    const refused = await rig({ actions: refusing });
    try {
      const r1 = await readOnly.app.request("/api/vms/h1/vm1/actions/quit", post());
      assert.equal(r1.status, 403);
      assert.deepEqual(await r1.json(), {
        error: "quit on h1/vm1 refused: the dashboard is read-only (--read-only)",
      });
      assert.deepEqual(
        ((await (await readOnly.app.request("/api/vms")).json()) as { actions: unknown }).actions,
        [],
      );
      const r2 = await none.app.request("/api/vms/h1/vm1/actions/stop", post());
      assert.equal(r2.status, 403);
      const r3 = await refused.app.request("/api/vms/h1/vm1/actions/stop", post());
      assert.equal(r3.status, 403);
      assert.deepEqual(await r3.json(), { error: "stop on h1/vm1: the agent does not allow it" });
    } finally {
      readOnly.close();
      none.close();
      refused.close();
    }
  });
});

suite("dashboard app: data", () => {
  test("should list the VMs as of a sequence number, and one VM with its intervals", async () => {
    const { app, close } = await rig();
    try {
      const body = (await (await app.request("/api/vms")).json()) as {
        lastId: number;
        vms: { key: string; state: string; cause: string; qemu: string }[];
      };
      assert.equal(body.lastId, 5);
      assert.deepEqual(
        body.vms.map((v) => [v.key, v.state, v.cause, v.qemu]),
        [
          ["h1/vm1", "guest-panicked", "STOP", "7.2.22"],
          ["h1/vm2", "paused", "connected", "10.0.2"],
        ],
      );
      const one = (await (await app.request("/api/vms/h1/vm1")).json()) as {
        intervals: { state: string; fromMs: number; untilMs?: number }[];
      };
      assert.deepEqual(
        one.intervals.map((i) => [i.state, i.untilMs === undefined ? "open" : "closed"]),
        [
          ["running", "closed"],
          ["guest-panicked", "open"],
        ],
      );
      assert.equal((await app.request("/api/vms/h1/nope")).status, 404);
    } finally {
      close();
    }
  });

  test("should page the journal newest first with the filters of events", async () => {
    const { app, close } = await rig();
    const ids = async (query: string) => {
      const r = await app.request(`/api/entries?${query}`);
      assert.equal(r.status, 200, query);
      return ((await r.json()) as { entries: JournalEntry[] }).entries.map((e) => e.id);
    };
    try {
      assert.deepEqual(await ids(""), [5, 4, 3, 2, 1]);
      assert.deepEqual(await ids("kinds=event"), [4, 3]);
      assert.deepEqual(await ids("only=guest_*&kinds=event"), [3]);
      assert.deepEqual(await ids("where=action%3Dpause"), [5, 3, 2, 1]);
      assert.deepEqual(await ids("vm=*2"), [2]);
      assert.deepEqual(await ids("upTo=3&limit=2"), [3, 2]);
      const bad = await app.request("/api/entries?where=nonsense");
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /invalid --where 'nonsense'/);
      assert.equal((await app.request("/api/entries?upTo=-1")).status, 400);
      assert.equal((await app.request("/api/entries?kinds=frames")).status, 400);
    } finally {
      close();
    }
  });

  test("should stream from after a sequence number, and resume from Last-Event-ID with nothing missing", async () => {
    const { app, journal, vm, close } = await rig();
    try {
      const first = await app.request("/api/stream?after=3");
      assert.match(first.headers.get("content-type") ?? "", /^text\/event-stream/);
      const backlog = await readStream(first, 2);
      assert.deepEqual(
        backlog.entries.map((e) => e.id),
        [4, 5],
      );
      assert.deepEqual(backlog.ids, ["5"]);
      // Live: what commits while the stream is open comes with its sequence number.
      const live = Promise.resolve(app.request("/api/stream?after=5"));
      const reading = live.then((r) => readStream(r, 2));
      await new Promise((r) => setTimeout(r, 100));
      journal.event(vm, { event: "RESUME", timestamp: ts(20) });
      journal.state(vm, { from: "guest-panicked", to: "running", cause: "RESUME", atMs: 20_000 });
      journal.flush();
      const got = await reading;
      assert.deepEqual(
        got.entries.map((e) => e.id),
        [6, 7],
      );
      // A page that saw up to 4 comes back: the header wins over ?after.
      journal.event(vm, { event: "STOP", timestamp: ts(30) });
      journal.flush();
      const resumed = await readStream(
        await app.request("/api/stream?after=0", { headers: { "last-event-id": "4" } }),
        4,
      );
      const all: number[] = [];
      for await (const e of journal.entries({ afterId: 4 })) all.push(e.id);
      assert.deepEqual(
        resumed.entries.map((e) => e.id),
        all,
      );
    } finally {
      close();
    }
  });
});

suite("qmpkit dashboard", () => {
  test("should need a token off loopback, and not print it", async () => {
    const r = await runCli(["dashboard", "x.qmp", "--listen", "0.0.0.0:0"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--listen 0\.0\.0\.0:0: not loopback, so a token is needed/);
    const none = await runCli(["dashboard"]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /nothing to show/);
    const bad = await runCli(["dashboard", "x.qmp", "--listen", "nowhere"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /invalid listen address 'nowhere'/);
  });

  test("should act on a simulated VM and count what it did in /metrics", async () => {
    const sims = tempDir("qmpkit-dash-");
    const machine = new SimulatedMachine({ actions: { panic: "pause" } });
    await machine.listen(`unix:${sims.path}/vm1.qmp`);
    const port = await freePort();
    const token = "t0ken-for-the-test";
    const dash = await startDashboardProcess(
      [`${sims.path}/*.qmp`, "--listen", `127.0.0.1:${port}`],
      { QMPKIT_DASHBOARD_TOKEN: token },
    );
    const auth = { authorization: `Bearer ${token}` };
    const metrics = async () =>
      parseExposition(await (await fetch(`${dash.url}/metrics`, { headers: auth })).text());
    try {
      assert.ok(!dash.stderr().includes(token), "the token is never printed");
      const host = await waitFor("the VM connected", async () => {
        const body = (await (await fetch(`${dash.url}/api/vms`, { headers: auth })).json()) as {
          vms: { host: string; connection: string }[];
        };
        return body.vms[0]?.connection === "connected" ? body.vms[0].host : undefined;
      });
      const stop = await fetch(`${dash.url}/api/vms/${host}/vm1/actions/stop`, {
        method: "POST",
        headers: { ...auth, "x-qmpkit-request": "action" },
      });
      assert.equal(stop.status, 200);
      assert.equal(machine.core.state, "paused");
      machine.core.cont();
      machine.guest.panic();
      const key = (state: string) =>
        `qmpkit_vm_run_state{host="${host}",state="${state}",vm="vm1"}`;
      const s = await waitFor("the panic in /metrics", async () => {
        const s = await metrics();
        return s.get(key("guest-panicked")) === 1 ? s : undefined;
      });
      const labels = `host="${host}",vm="vm1"`;
      assert.equal(s.get(`qmpkit_events_total{event="STOP",${labels}}`), 2);
      assert.equal(s.get(`qmpkit_events_total{event="RESUME",${labels}}`), 1);
      assert.equal(s.get(`qmpkit_events_total{event="GUEST_PANICKED",${labels}}`), 1);
      assert.equal(s.get(`qmpkit_vm_connected{${labels}}`), 1);
      assert.equal(s.get(`qmpkit_watch_gaps_total{${labels}}`), undefined);
      assert.equal(s.get(key("running")), 0);
    } finally {
      await dash.stop();
      await machine.close();
      sims.remove();
    }
  });
});
