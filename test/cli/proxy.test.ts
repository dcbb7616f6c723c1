/**
 * The proxy against real QEMU: several raw clients at once through `QmpProxy`, byte-level, and
 * the upstream going away and coming back.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { QmpProxy } from "../../src/cli/proxy.js";
import { RawQmp, realQemuTest, startQemu } from "../support/real-qemu.js";

const greetingLine =
  /^\{"QMP": \{"version": \{"qemu": \{"micro": \d+, "minor": \d+, "major": \d+\}, "package": ".*"\}, "capabilities": \[\]\}\}\r\n$/;

suite("proxy against real QEMU", () => {
  test("should serve several clients at once over one QEMU monitor", realQemuTest(), async () => {
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-"));
    const upstreamPath = join(dir, "qemu.sock");
    const proxyPath = join(dir, "proxy.sock");
    let qemu = await startQemu({ socketPath: upstreamPath });
    const logs: string[] = [];
    const proxy = await QmpProxy.start({
      upstream: `unix:${upstreamPath}`,
      listen: [`unix:${proxyPath}`],
      log: (l) => logs.push(l),
    });
    const clients: RawQmp[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await RawQmp.connect(proxyPath));
      const [a, b, c] = clients as [RawQmp, RawQmp, RawQmp];
      for (const cl of clients) assert.match((await cl.nextLine())!, greetingLine);
      // Before negotiation: QEMU's refusal, answered by the proxy.
      c.send('{"execute":"query-status","id":0}');
      assert.equal(
        await c.nextLine(),
        '{"id": 0, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n',
      );
      for (const cl of clients) {
        cl.send('{"execute":"qmp_capabilities"}');
        assert.equal(await cl.nextLine(), '{"return": {}}\r\n');
      }
      // Same ids from every client, pipelined: each gets its own answers in its own order.
      for (const cl of clients) {
        cl.send(
          '{"execute":"query-status","id":1}{"execute":"query-name","id":2}{"execute":"query-kvm","id":3}',
        );
      }
      for (const cl of clients) {
        assert.equal(
          await cl.nextLine(),
          '{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": 1}\r\n',
        );
        assert.equal(await cl.nextLine(), '{"return": {}, "id": 2}\r\n');
        assert.match(
          (await cl.nextLine())!,
          /^\{"return": \{"enabled": (true|false), "present": (true|false)\}, "id": 3\}\r\n$/,
        );
      }
      // A command's event reaches every client; the reply only the one who asked.
      a.send('{"execute":"cont","id":"go"}');
      const aLines = [await a.nextLine(), await a.nextLine()];
      assert.match(
        aLines[0]!,
        /^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "RESUME"\}\r\n$/,
      );
      assert.equal(aLines[1], '{"return": {}, "id": "go"}\r\n');
      assert.equal(await b.nextLine(), aLines[0]);
      assert.equal(await c.nextLine(), aLines[0]);
      // A malformed request is answered as QEMU answers it.
      b.send('{"execute": @}');
      assert.equal(
        await b.nextLine(),
        '{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'@\'"}}\r\n',
      );
      assert.equal(
        await b.nextLine(),
        '{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}\r\n',
      );

      // QEMU goes away: clients are disconnected; the proxy reconnects once it is back.
      await qemu.stop();
      for (const cl of clients) {
        while ((await cl.nextLine(3000)) !== undefined) {}
        assert.ok(cl.isEnded, "client should be disconnected");
      }
      rmSync(upstreamPath, { force: true });
      qemu = await startQemu({ socketPath: upstreamPath });
      const d = await RawQmp.connect(proxyPath);
      clients.push(d);
      assert.match((await d.nextLine(10_000))!, greetingLine);
      await d.nextLine(1).catch(() => undefined);
      d.send('{"execute":"qmp_capabilities"}{"execute":"query-status","id":9}');
      assert.equal(await d.nextLine(), '{"return": {}}\r\n');
      assert.equal(
        await d.nextLine(),
        '{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": 9}\r\n',
      );
      assert.ok(
        logs.some((l) => /upstream .* lost/.test(l)),
        logs.join("\n"),
      );
    } finally {
      for (const cl of clients) cl.close();
      await proxy.close();
      await qemu.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
