/**
 * What the catalogue's history marks change in behaviour, differential: the same requests against
 * real QEMU 7.2.22 and Debian's 10.0.2 and against the simulator as that release, every reply
 * compared byte for byte. `migrate`'s and `migrate-incoming`'s `uri` is mandatory in 7.2 and
 * optional in 10.0 (`(optional since …)`), where exactly one of `uri` and `channels` is
 * required; `MultiFDCompression`'s `qpl` and `qatzip` are missing from both (7.2 predates them,
 * Debian's 10.0 build leaves them out: the profile's build); `query-block-jobs` answers in its
 * release's shape (empty here: no job).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { SimulatedMachine } from "../../src/sim/index.js";
import { QEMU_10, RawQmp, realQemuTest, SYSTEM_QEMU, startQemu } from "../support/real-qemu.js";

const MAIN = '{"channel-type": "main", "addr": {"transport": "exec", "args": ["cat"]}}';

const REQUESTS: readonly string[] = [
  '{"execute": "migrate", "arguments": {}}',
  `{"execute": "migrate", "arguments": {"uri": "exec:cat", "channels": [${MAIN}]}}`,
  `{"execute": "migrate", "arguments": {"channels": [${MAIN}, ${MAIN}]}}`,
  '{"execute": "migrate", "arguments": {"channels": []}}',
  '{"execute": "migrate-incoming", "arguments": {}}',
  '{"execute": "migrate-incoming", "arguments": {"channels": []}}',
  `{"execute": "migrate-incoming", "arguments": {"channels": [${MAIN}, ${MAIN}]}}`,
  `{"execute": "migrate-incoming", "arguments": {"uri": "tcp:127.0.0.1:0", "channels": [${MAIN}]}}`,
  '{"execute": "migrate-set-parameters", "arguments": {"multifd-compression": "qpl"}}',
  '{"execute": "migrate-set-parameters", "arguments": {"multifd-compression": "uadk"}}',
  '{"execute": "migrate-set-parameters", "arguments": {"multifd-compression": "qatzip"}}',
  '{"execute": "migrate-set-parameters", "arguments": {"multifd-compression": "zstd"}}',
  '{"execute": "query-migrate-parameters"}',
  '{"execute": "query-block-jobs"}',
  '{"execute": "query-migrate"}',
];

async function transcript(path: string): Promise<string[]> {
  const raw = await RawQmp.connect(path);
  try {
    await raw.handshake();
    const out: string[] = [];
    for (const request of REQUESTS) {
      raw.send(request);
      out.push(`${request} -> ${(await raw.nextLine()) ?? "<eof>"}`);
    }
    return out;
  } finally {
    raw.close();
  }
}

for (const [label, qemu, version] of [
  ["QEMU 7.2.22", SYSTEM_QEMU, "7.2.22"],
  ["QEMU 10.0.2", QEMU_10, "10.0.2"],
] as const) {
  suite(`changes of shape: the simulator against ${label}`, realQemuTest(qemu), () => {
    test(`should check migrate's and migrate-incoming's arguments and the build's values as ${label} does`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-history-"));
      const vm = new SimulatedMachine({
        qemuVersion: version,
        startPaused: true,
        incoming: "defer",
      });
      const p = await startQemu({ qemu, args: ["-incoming", "defer"] });
      try {
        const expected = await transcript(p.socketPath);
        await vm.listen(`unix:${join(dir, "sim.sock")}`);
        const actual = await transcript(join(dir, "sim.sock"));
        assert.deepEqual(actual, expected);
        // What the scenario is about shows in QEMU's answers.
        const joined = expected.join("\n");
        if (version.startsWith("7.")) assert.match(joined, /"Parameter 'uri' is missing"/);
        else assert.match(joined, /"need either 'uri' or 'channels' argument"/);
        assert.match(joined, /does not accept value 'qpl'/);
      } finally {
        await vm.close();
        await p.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
