import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import {
  expandGlob,
  globSegmentToRegExp,
  labelEndpoints,
  parseTargetArg,
  resolveTargets,
} from "../../src/cli/targets.js";

suite("target arguments", () => {
  test("should parse unix:, tcp: and plain paths", () => {
    assert.deepEqual(parseTargetArg("unix:/run/vm.qmp"), {
      kind: "endpoint",
      endpoint: { kind: "unix", path: "/run/vm.qmp", spec: "unix:/run/vm.qmp" },
    });
    assert.deepEqual(parseTargetArg("./vm.sock"), {
      kind: "endpoint",
      endpoint: { kind: "unix", path: "./vm.sock", spec: "unix:./vm.sock" },
    });
    assert.deepEqual(parseTargetArg("tcp:127.0.0.1:4444"), {
      kind: "endpoint",
      endpoint: { kind: "tcp", host: "127.0.0.1", port: 4444, spec: "tcp:127.0.0.1:4444" },
    });
    assert.deepEqual(parseTargetArg("tcp:[::1]:4444"), {
      kind: "endpoint",
      endpoint: { kind: "tcp", host: "::1", port: 4444, spec: "tcp:[::1]:4444" },
    });
    assert.deepEqual(parseTargetArg("/run/vms/*.qmp"), { kind: "glob", pattern: "/run/vms/*.qmp" });
  });

  test("should reject malformed targets naming the value", () => {
    assert.throws(
      () => parseTargetArg("tcp:localhost"),
      /invalid target 'tcp:localhost': expected tcp:HOST:PORT/,
    );
    assert.throws(() => parseTargetArg("tcp:h:70000"), /port 70000 is not in 1\.\.65535/);
    assert.throws(() => parseTargetArg("unix:"), /the socket path is empty/);
    assert.throws(() => parseTargetArg(""), /invalid target ''/);
  });

  test("should translate glob segments as a shell does", () => {
    assert.ok(globSegmentToRegExp("vm*.qmp").test("vm12.qmp"));
    assert.ok(!globSegmentToRegExp("vm*.qmp").test("vm12.qmpx"));
    assert.ok(globSegmentToRegExp("vm?.qmp").test("vm1.qmp"));
    assert.ok(!globSegmentToRegExp("vm?.qmp").test("vm12.qmp"));
    assert.ok(globSegmentToRegExp("vm[12].q").test("vm2.q"));
    assert.ok(!globSegmentToRegExp("vm[!12].q").test("vm2.q"));
    assert.ok(!globSegmentToRegExp("*").test(".hidden"));
    assert.ok(globSegmentToRegExp("a+b(c)").test("a+b(c)"));
  });

  test("should label endpoints by file name and disambiguate with directories", () => {
    const eps = ["/a/web.qmp", "/b/web.qmp", "/a/db.sock", "/a/db.qmp"].map((p) => {
      const s = parseTargetArg(p);
      assert.equal(s.kind, "endpoint");
      return s.endpoint;
    });
    const tcp = parseTargetArg("tcp:h:1");
    assert.equal(tcp.kind, "endpoint");
    const labels = labelEndpoints([...eps, tcp.endpoint]);
    assert.deepEqual(
      [...labels.values()].sort(),
      ["a/web.qmp", "b/web.qmp", "db.qmp", "db.sock", "h:1"].sort(),
    );
  });
});

suite("globs over real sockets", () => {
  let dir: string;
  const servers: Server[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "qmpkit-targets-"));
    mkdirSync(join(dir, "sub"));
    for (const name of ["vm1.qmp", "vm2.qmp", "sub/vm3.qmp"]) {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(join(dir, name), resolve));
      servers.push(server);
    }
    writeFileSync(join(dir, "vm9.qmp"), "not a socket");
  });
  after(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test("should expand a glob to matching paths, sorted", () => {
    assert.deepEqual(expandGlob(join(dir, "vm*.qmp")), [
      join(dir, "vm1.qmp"),
      join(dir, "vm2.qmp"),
      join(dir, "vm9.qmp"),
    ]);
    assert.deepEqual(expandGlob(join(dir, "*/vm*.qmp")), [join(dir, "sub/vm3.qmp")]);
    assert.deepEqual(expandGlob("vm?.qmp", dir), ["vm1.qmp", "vm2.qmp", "vm9.qmp"]);
  });

  test("should keep only sockets and drop duplicates when resolving", () => {
    const specs = [
      parseTargetArg(join(dir, "vm*.qmp")),
      parseTargetArg(`unix:${join(dir, "vm1.qmp")}`),
    ];
    assert.deepEqual(
      resolveTargets(specs).map((e) => e.spec),
      [`unix:${join(dir, "vm1.qmp")}`, `unix:${join(dir, "vm2.qmp")}`],
    );
  });

  test("should fail on a glob matching no socket unless empty globs are allowed", () => {
    const spec = [parseTargetArg(join(dir, "none*.qmp"))];
    assert.throws(() => resolveTargets(spec), /no socket matches '.*none\*\.qmp'/);
    assert.deepEqual(resolveTargets(spec, { allowEmptyGlobs: true }), []);
  });
});
