/**
 * The simulator's `query-qmp-schema` for its `10.0.2` profile (the catalogue's view of release
 * 10.0.2, for Debian's build) against real QEMU 10.0's, for every command and event the
 * simulator has: argument, result and data types structurally equal (member names and order,
 * optionality, features, enum values in order, union tags and branches), by the schema
 * toolchain's `compareSchemaInfo`. Strict for all of them: any difference fails, including the
 * history the catalogue records with its own marks (`BlockJobInfo`'s union shape from 8.2,
 * `migrate`'s and `migrate-incoming`'s `uri` optional from 9.0 and 8.2) and the build options
 * Debian's binary lacks (`MultiFDCompression`'s `qpl`, `uadk`, `qatzip`).
 *
 * The scenarios of the 10.0 differential suite use the entities in {@link SCENARIO_ENTITIES};
 * the check that they are compared guards against a catalogue that loses one.
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

/** The entities the 10.0 scenarios exercise (all of them must be compared). */
const SCENARIO_ENTITIES: readonly string[] = [
  "qmp_capabilities",
  "query-status",
  "query-name",
  "query-version",
  "stop",
  "cont",
  "system_reset",
  "system_powerdown",
  "system_wakeup",
  "quit",
  "set-action",
  "watchdog-set-action",
  "eject",
  "device_del",
  "STOP",
  "RESUME",
  "SHUTDOWN",
  "RESET",
  "POWERDOWN",
  "SUSPEND",
  "SUSPEND_DISK",
  "WAKEUP",
  "GUEST_PANICKED",
  "GUEST_CRASHLOADED",
  "GUEST_PVSHUTDOWN",
  "WATCHDOG",
  "RTC_CHANGE",
  "BLOCK_IO_ERROR",
  "DEVICE_TRAY_MOVED",
  "DEVICE_DELETED",
];

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
    let compared: readonly string[] = [];

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
      const all = compareSchemaInfo(sim, live, { features: true, enumOrder: true });
      compared = all.compared;
      // (QEMU has hundreds of commands the simulator lacks: only the other way round counts.)
      differences = [
        ...all.onlyInFirst.map((n) => `${n} :: only in the simulator`),
        ...all.differences.map((d) => `${d.path} :: ${d.message}`),
      ];
    });

    after(async () => {
      await vm?.close();
      await qemu?.stop();
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    test("should compare every command and event the simulator has", () => {
      assert.ok(compared.length > 70, `only ${compared.length} entities compared`);
      const missing = SCENARIO_ENTITIES.filter((n) => !compared.includes(n));
      assert.deepEqual(missing, []);
      for (const name of ["query-block-jobs", "migrate", "migrate-incoming", "yank"]) {
        assert.ok(compared.includes(name), `${name} should be compared`);
      }
    });

    test("should match QEMU 10.0 exactly for every command and event the simulator has", () => {
      assert.deepEqual(differences, []);
    });
  },
);
