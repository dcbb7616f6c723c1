/**
 * The simulator's `query-qmp-schema` for its `10.0.2` profile (the catalogue's view of release
 * 10.0.2) against real QEMU 10.0's, for every command and event the simulator has: argument,
 * result and data types structurally equal (member names and order, optionality, features, enum
 * values in order, union tags and branches), by the schema toolchain's `compareSchemaInfo`.
 *
 * The differences known today are listed in {@link KNOWN}: they belong to the catalogue
 * (`schema/qapi/**`), and are reported as a `todo` check while they last. Any other difference
 * fails.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { compareSchemaInfo, type SchemaInfo } from "../../src/schema/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import {
  QEMU_10,
  type QemuProcess,
  RawQmp,
  realQemuTest,
  startQemu,
} from "../support/real-qemu.js";

/**
 * Differences seen between the catalogue's 10.0.2 view and QEMU 10.0.2 (path :: message, as
 * `compareSchemaInfo` words them, simulator first):
 * - `BlockJobInfo` is a union on 10.0, tagged by `type` (a `JobType`) with a branch per job type;
 *   the catalogue has `type` as a plain string and no branches.
 * - `migrate`'s and `migrate-incoming`'s `uri` are optional on 10.0 (they may give `channels`
 *   instead); the catalogue has them mandatory for 10.0.
 */
const KNOWN: ReadonlySet<string> = new Set([
  "query-block-jobs.return[].type :: builtin vs enum",
  "query-block-jobs.return[] :: union tag '(none)' vs 'type'",
  ...[
    "mirror",
    "commit",
    "stream",
    "backup",
    "create",
    "amend",
    "snapshot-load",
    "snapshot-save",
    "snapshot-delete",
  ].map((branch) => `query-block-jobs.return[]{${branch}} :: branch missing in the first list`),
  "migrate.arguments.uri :: mandatory vs optional",
  "migrate-incoming.arguments.uri :: mandatory vs optional",
]);

async function schemaOf(path: string): Promise<SchemaInfo[]> {
  const raw = await RawQmp.connect(path);
  try {
    await raw.handshake();
    raw.send('{"execute": "query-qmp-schema"}');
    const reply = (await raw.next(10_000))?.return;
    assert.ok(Array.isArray(reply), `no query-qmp-schema answer from ${path}`);
    return reply as SchemaInfo[];
  } finally {
    raw.close();
  }
}

suite(
  "the simulator's 10.0.2 schema against QEMU 10.0's query-qmp-schema",
  realQemuTest(QEMU_10),
  () => {
    let qemu: QemuProcess | undefined;
    let vm: SimulatedMachine | undefined;
    let dir = "";
    let differences: string[] = [];
    let compared = 0;

    before(async () => {
      qemu = await startQemu({ qemu: QEMU_10 });
      dir = mkdtempSync(join(tmpdir(), "qmpkit-schema10-"));
      vm = new SimulatedMachine({ qemuVersion: "10.0.2", startPaused: true });
      await vm.listen(`unix:${join(dir, "qmp.sock")}`);
      const live = await schemaOf(qemu.socketPath);
      // The simulator's own x-sim-* experiments are not QEMU's.
      const sim = (await schemaOf(join(dir, "qmp.sock"))).filter(
        (i) => !i.name.startsWith("x-sim-"),
      );
      const comparison = compareSchemaInfo(sim, live, { features: true, enumOrder: true });
      compared = comparison.compared.length;
      differences = [
        ...comparison.onlyInFirst.map((n) => `${n} :: only in the simulator`),
        ...comparison.differences.map((d) => `${d.path} :: ${d.message}`),
      ];
    });

    after(async () => {
      await vm?.close();
      await qemu?.stop();
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    test("should compare every command and event the simulator has", () => {
      assert.ok(compared > 50, `only ${compared} entities compared`);
    });

    test("should show no difference beyond the known ones", () => {
      assert.deepEqual(
        differences.filter((d) => !KNOWN.has(d)),
        [],
      );
    });

    test("should show no difference at all", {
      todo: "the catalogue's 10.0 view of BlockJobInfo and migrate(-incoming).uri (see KNOWN)",
    }, () => {
      assert.deepEqual(differences, []);
    });
  },
);
