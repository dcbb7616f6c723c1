/**
 * Drift of the started-domain recordings (`profiles/qemu-V-vcpu-qemu64[-MACHINE].jsonl`,
 * qemu-behaviour §13.3): recorded again from the installed binaries, they must come out byte for
 * byte as shipped (`tsx scripts/record-vcpu.ts VERSION [MACHINE]` writes them again).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { RECORDED_RELEASES } from "../../scripts/record-profile.js";
import { recordVcpu } from "../../scripts/record-vcpu.js";
import { VCPU_BASE_MACHINE, vcpuProfilePath } from "../../src/sim/recorded-profile.js";
import { realQemuTest } from "../support/real-qemu.js";

/** The recordings shipped: each release on pc-i440fx-7.2, and 10.0.2 on its own `pc`. */
const SHIPPED: ReadonlyArray<readonly [string, string]> = [
  ["7.2.22", VCPU_BASE_MACHINE],
  ["10.0.2", VCPU_BASE_MACHINE],
  ["10.0.2", "pc-i440fx-10.0"],
];

suite("the started-domain recordings", () => {
  for (const [version, machine] of SHIPPED) {
    test(
      `should be what QEMU ${version} answers on ${machine}`,
      realQemuTest(RECORDED_RELEASES.get(version)),
      async () => {
        const shipped = readFileSync(vcpuProfilePath(version, "qemu64", machine), "latin1");
        const again = await recordVcpu(version, machine);
        assert.ok(
          shipped === again,
          `re-record with: tsx scripts/record-vcpu.ts ${version} ${machine}`,
        );
      },
    );
  }
});
