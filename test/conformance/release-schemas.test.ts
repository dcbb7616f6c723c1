/**
 * The recorded schemas of the typed releases (`schema/releases/`, behind `qmpkit/qemu/7.2` and
 * `qmpkit/qemu/10.0`) against the live binaries: each binary's `query-qmp-schema` answer must
 * equal the recorded one entry for entry (type numbers included), and the generated types must
 * name every command and event it has. A new Debian build that changes the schema fails here:
 * re-record with `scripts/record-release-schema.ts`.
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { readReleaseSchema } from "../../scripts/release-schemas.js";
import * as qemu10 from "../../src/qemu/10.0.js";
import * as qemu72 from "../../src/qemu/7.2.js";
import { liveQmpSchema, QEMU_10, realQemuTest, SYSTEM_QEMU } from "../support/real-qemu.js";

const releases = [
  { release: "7.2.22", qemu: SYSTEM_QEMU, module: qemu72 },
  { release: "10.0.2", qemu: QEMU_10, module: qemu10 },
] as const;

suite("typed releases against the live binaries", () => {
  for (const { release, qemu, module } of releases) {
    test(
      `should record QEMU ${release}'s query-qmp-schema entry for entry`,
      realQemuTest(qemu),
      async () => {
        const recorded = readReleaseSchema(release);
        const live = await liveQmpSchema(qemu);
        const schema = recorded.schema as unknown[];
        assert.equal(live.length, schema.length, "as many entries");
        const differing = live.flatMap((entry, i) =>
          isDeepStrictEqual(entry, schema[i]) ? [] : [`entry ${i}: live ${JSON.stringify(entry)}`],
        );
        assert.deepEqual(differing.slice(0, 5), [], "every entry as recorded");
        const names = (meta: string) =>
          live
            .filter(
              (e): e is { name: string } => (e as { "meta-type"?: string })["meta-type"] === meta,
            )
            .map((e) => e.name)
            .sort();
        assert.deepEqual(
          [...module.qmpCommandNames].sort(),
          names("command"),
          "every command typed",
        );
        assert.deepEqual([...module.qmpEventNames].sort(), names("event"), "every event typed");
        process.stderr.write(
          `QEMU ${release}: ${live.length} schema entries equal; ${names("command").length} commands and ${names("event").length} events typed\n`,
        );
      },
    );
  }
});
