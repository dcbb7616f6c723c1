import assert from "node:assert/strict";
import { test } from "node:test";
import { RawQmp, realQemuTest, startQemu } from "./support/real-qemu.js";

test("real QEMU should greet, negotiate and answer query-status", realQemuTest(), async () => {
  const qemu = await startQemu();
  try {
    const qmp = await RawQmp.connect(qemu.socketPath);
    const greeting = await qmp.handshake();
    assert.match(
      greeting,
      /^\{"QMP": \{"version": \{"qemu": \{"micro": \d+, "minor": \d+, "major": \d+\}, "package": ".*"\}, "capabilities": \["oob"\]\}\}\r\n$/,
    );
    qmp.send('{"execute":"query-status","id":1}');
    assert.equal(
      await qmp.nextLine(),
      '{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": 1}\r\n',
    );
    qmp.close();
  } finally {
    await qemu.stop();
  }
});
