/**
 * The capability profiles against the real binaries (QEMU 7.2.22 and 10.0.2):
 * - drift: the probe is recorded again from the installed QEMU and must give the shipped
 *   profile byte for byte (a QEMU update, a module package more or less, fails here: re-record
 *   with `npm run record-profile -- VERSION`);
 * - the simulator of that release answers every request of the fresh recording as QEMU just did;
 * - arguments nobody recorded: QEMU's errors for unknown and unsuitable type names and malformed
 *   arguments, compared byte for byte.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import {
  PROFILE_QEMU_OPTIONS,
  RECORDED_RELEASES,
  recordProfile,
} from "../../scripts/record-profile.js";
import {
  formatProfile,
  parseProfile,
  profilePath,
  requestLine,
} from "../../src/sim/recorded-profile.js";
import { type QmpRequest, realReplies, simReplies } from "../support/ask-each.js";
import { realQemuTest } from "../support/real-qemu.js";

/** Requests whose arguments no profile holds, answered with errors QEMU's code decides. */
const UNRECORDED: readonly QmpRequest[] = [
  { execute: "device-list-properties", arguments: { typename: "no-such-device" } },
  { execute: "device-list-properties", arguments: { typename: "device" } },
  { execute: "device-list-properties", arguments: { typename: "memory-backend-ram" } },
  { execute: "device-list-properties", arguments: { typename: "pci-device" } },
  { execute: "qom-list-properties", arguments: { typename: "no-such-type" } },
  { execute: "device-list-properties", arguments: {} },
  { execute: "device-list-properties", arguments: { typename: 1 } },
  { execute: "qom-list-properties", arguments: { typename: "x", extra: true } },
  { execute: "query-target", arguments: { x: 1 } },
  { execute: "query-cpu-model-expansion", arguments: { type: "static" } },
];

for (const [version, qemu] of RECORDED_RELEASES) {
  suite(`capability profile of QEMU ${version}`, realQemuTest(qemu), () => {
    test("should be what the installed binary answers now, byte for byte, and what the simulator answers", async () => {
      const records = await recordProfile(qemu);
      const shipped = parseProfile(readFileSync(profilePath(version), "latin1")).records;
      const drifted = records
        .filter((r, i) => r.reply !== shipped[i]?.reply)
        .map((r) => requestLine(r.execute, r.arguments));
      assert.deepEqual(drifted, [], `${qemu.binary} answers differently: re-record ${version}`);
      assert.equal(formatProfile(version, records), readFileSync(profilePath(version), "latin1"));

      const sim = await simReplies({ qemuVersion: version, advertise: "recorded" }, records);
      records.forEach((r, i) => {
        assert.equal(sim[i], r.reply, requestLine(r.execute, r.arguments));
      });
    });

    test("should refuse arguments nobody recorded as QEMU does", async () => {
      const real = await realReplies(qemu, UNRECORDED, PROFILE_QEMU_OPTIONS);
      assert.match(real[0]!, /DeviceNotFound/, "the oracle refuses an unknown device");
      assert.deepEqual(
        await simReplies({ qemuVersion: version, advertise: "recorded" }, UNRECORDED),
        real,
      );
    });
  });
}
