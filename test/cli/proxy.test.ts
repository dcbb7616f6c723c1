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
  /^\{"QMP": \{"version": \{"qemu": \{"micro": \d+, "minor": \d+, "major": \d+\}, "package": ".*"\}, "capabilities": \["oob"\]\}\}\r\n$/;

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
      // A client that came now would be told QEMU is away: wait until the proxy is back.
      for (let i = 0; !proxy.upstreamReady && i < 200; i++)
        await new Promise((r) => setTimeout(r, 50));
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

  test(
    "should pass exec-oob through to QEMU, answered as QEMU answers it, ahead of in-band commands",
    realQemuTest(),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-proxy-oob-"));
      const upstreamPath = join(dir, "qemu.sock");
      const directPath = join(dir, "direct.sock");
      const proxyPath = join(dir, "proxy.sock");
      // A second monitor on the same QEMU, to ask it directly what the proxy's clients ask.
      const qemu = await startQemu({
        socketPath: upstreamPath,
        args: ["-qmp", `unix:${directPath},server=on,wait=off`],
      });
      const clients: RawQmp[] = [];
      let proxy: QmpProxy | undefined;
      try {
        // QEMU's own greeting, read before the proxy takes the monitor: the proxy's is the same.
        const first = await RawQmp.connect(upstreamPath);
        const qemuGreeting = await first.nextLine();
        first.close();
        proxy = await QmpProxy.start({
          upstream: `unix:${upstreamPath}`,
          listen: [`unix:${proxyPath}`],
        });
        const direct = await RawQmp.connect(directPath);
        clients.push(direct);
        const a = await RawQmp.connect(proxyPath);
        const b = await RawQmp.connect(proxyPath);
        clients.push(a, b);
        assert.equal(await a.nextLine(), qemuGreeting);
        assert.match(qemuGreeting!, /"capabilities": \["oob"\]/);
        await direct.nextLine();
        await b.nextLine();
        for (const cl of [direct, a]) {
          cl.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
          assert.equal(await cl.nextLine(), '{"return": {}}\r\n');
        }
        b.send('{"execute":"qmp_capabilities"}');
        assert.equal(await b.nextLine(), '{"return": {}}\r\n');

        // Out-of-band requests QEMU refuses or fails (none of 7.2's allow-oob commands can act
        // on a VM with no migration), and one it runs: byte for byte what QEMU says directly.
        const requests = [
          '{"exec-oob":"migrate-pause","id":"p"}',
          '{"exec-oob":"query-status","id":"s"}',
          '{"exec-oob":"no-such-command","id":"n"}',
          '{"exec-oob":"qmp_capabilities","id":"c"}',
          '{"exec-oob":"yank","arguments":{"instances":[]},"id":"y"}',
          '{"exec-oob":"migrate-recover","arguments":{"uri":"unix:/nonexistent"},"id":"r"}',
          '{"exec-oob":"yank","execute":"query-status","id":"x"}',
        ];
        for (const request of requests) {
          direct.send(request);
          a.send(request);
          const expected = await direct.nextLine();
          assert.equal(await a.nextLine(), expected, request);
        }
        assert.equal(await a.nextLine(1), undefined, "one reply per request, and no event");
        // A client that did not enable OOB gets QEMU's refusal.
        b.send('{"exec-oob":"query-yank","id":1}');
        assert.equal(
          await b.nextLine(),
          '{"id": 1, "error": {"class": "GenericError", "desc": "QMP input member \'exec-oob\' is unexpected"}}\r\n',
        );

        // exec-oob is not serialised behind in-band commands: b and a queue 20 in-band commands
        // each, a then asks out of band; its answer comes long before a's in-band ones end.
        // Behind it at most the ones of a's the proxy had sent already (half of its 8 in
        // flight; QEMU reads a byte at a time, §1.7, and may answer them first), never 20.
        const inBand = (n: number) =>
          Array.from({ length: n }, (_, i) => `{"execute":"query-status","id":${i}}`).join("");
        b.send(inBand(20));
        a.send(`${inBand(20)}{"exec-oob":"query-yank","id":"fast"}`);
        const aLines: string[] = [];
        for (let i = 0; i < 21; i++) aLines.push((await a.nextLine())!);
        const at = aLines.findIndex((l) => l.endsWith('"id": "fast"}\r\n'));
        assert.ok(at >= 0 && at <= 8, `the out-of-band reply came at ${at}:\n${aLines.join("")}`);
        assert.match(aLines[at]!, /^\{"return": \[.*\], "id": "fast"\}\r\n$/);
        // The in-band replies keep their order and ids.
        assert.deepEqual(
          aLines.filter((_, i) => i !== at).map((l) => (JSON.parse(l) as { id: number }).id),
          Array.from({ length: 20 }, (_, i) => i),
        );
        for (let i = 0; i < 20; i++) assert.match((await b.nextLine())!, new RegExp(`"id": ${i}}`));
      } finally {
        for (const cl of clients) cl.close();
        await proxy?.close();
        await qemu.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
