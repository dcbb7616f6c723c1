/**
 * The capability profiles against the real binaries (QEMU 7.2.22 and 10.0.2):
 * The probe is recorded again from the installed QEMU and must give the shipped
 * profile byte for byte (a QEMU update, a module package more or less, fails here: re-record
 * with `npm run record-profile -- VERSION`).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { RECORDED_RELEASES, recordProfile } from "../../scripts/record-profile.js";
import {
  formatProfile,
  parseProfile,
  profilePath,
  requestLine,
} from "../../src/sim/recorded-profile.js";
import { realQemuTest } from "../support/real-qemu.js";

for (const [version, qemu] of RECORDED_RELEASES) {
  suite(`capability profile of QEMU ${version}`, realQemuTest(qemu), () => {
    test("should be what the installed binary answers now, byte for byte", async () => {
      const records = await recordProfile(qemu);
      const shipped = parseProfile(readFileSync(profilePath(version), "latin1")).records;
      const drifted = records
        .filter((r, i) => r.reply !== shipped[i]?.reply)
        .map((r) => requestLine(r.execute, r.arguments));
      assert.deepEqual(drifted, [], `${qemu.binary} answers differently: re-record ${version}`);
      assert.equal(formatProfile(version, records), readFileSync(profilePath(version), "latin1"));
    });
  });
}
