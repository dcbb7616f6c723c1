/**
 * The simulator's `query-qmp-schema` for its `10.0.2` profile (the catalogue's view of release
 * 10.0.2) against real QEMU 10.0's, for every command and event the simulator has: argument,
 * result and data types structurally equal (member names and order, optionality, features, enum
 * values in order, union tags and branches), by the schema toolchain's `compareSchemaInfo`.
 *
 * Strict for the commands and events the 10.0 differential scenarios use (run control, the
 * run-state and guest events, the device events): any difference there fails. For everything
 * else the comparison is reported as a `todo` check: those entities are the catalogue's
 * (`schema/qapi/**`, under active work), and some differences there are build options of
 * Debian's binary rather than the release (enum values with `'if'`).
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

/** The entities the 10.0 scenarios exercise: their schema must match QEMU 10.0 exactly. */
const STRICT: readonly string[] = [
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
    let strictDifferences: string[] = [];
    let compared = 0;
    let strictCompared: readonly string[] = [];

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
      const options = { features: true, enumOrder: true } as const;
      const all = compareSchemaInfo(sim, live, options);
      compared = all.compared.length;
      // (QEMU has hundreds of commands the simulator lacks: only the other way round counts.)
      differences = [
        ...all.onlyInFirst.map((n) => `${n} :: only in the simulator`),
        ...all.differences.map((d) => `${d.path} :: ${d.message}`),
      ];
      const strict = compareSchemaInfo(sim, live, { ...options, names: STRICT });
      strictCompared = strict.compared;
      strictDifferences = [
        ...strict.onlyInFirst.map((n) => `${n} :: only in the simulator`),
        ...strict.onlyInSecond.map((n) => `${n} :: only in QEMU 10.0`),
        ...strict.differences.map((d) => `${d.path} :: ${d.message}`),
      ];
    });

    after(async () => {
      await vm?.close();
      await qemu?.stop();
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    test("should compare every command and event the simulator has", () => {
      assert.ok(compared > 50, `only ${compared} entities compared`);
      assert.deepEqual([...strictCompared].sort(), [...STRICT].sort());
    });

    test("should match QEMU 10.0 exactly for the commands and events the scenarios use", () => {
      assert.deepEqual(strictDifferences, []);
    });

    test("should match QEMU 10.0 for every other command and event the simulator has", {
      todo: "the catalogue's 10.0 view (seen: BlockJobInfo not a union, migrate and migrate-incoming uri mandatory, MultiFDCompression values Debian's build lacks)",
    }, () => {
      assert.deepEqual(differences, []);
    });
  },
);
