/**
 * The differential conformance suite on a second real QEMU: Debian's QEMU 10.0.2 (unpacked by
 * `.ci/install-qemu-10`, `QMPKIT_QEMU_10`) with the tiny guests, against the simulator's
 * `10.0.2` profile (see `scenarios-10.ts` and `test/support/differential.ts`). The 7.2 scenarios
 * carried over to 10.0, the 9.0+ sequences 7.2 cannot show (the suspended rework, pvpanic
 * shutdown), and the throttling storms, the latter one at a time.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { DifferentialHarness } from "../support/differential.js";
import { QEMU_10 } from "../support/real-qemu.js";
import { SCENARIOS } from "./scenarios.js";
import { REPLACED_ON_10, SCENARIOS_10, THROTTLE_SCENARIOS_10 } from "./scenarios-10.js";

const harness = await DifferentialHarness.create({ qemu: QEMU_10, qemuVersion: "10.0.2" });
after(() => harness.finish("conformance on QEMU 10.0 (§4.3, §5, §2)"));

test("should replace exactly one 7.2 scenario (stop/cont while suspended changed in 9.0)", () => {
  assert.ok(
    SCENARIOS.some((s) => s.name === REPLACED_ON_10),
    `scenarios.ts no longer has "${REPLACED_ON_10}": update scenarios-10.ts`,
  );
  assert.equal(SCENARIOS_10.filter((s) => s.name === REPLACED_ON_10).length, 0);
});

describe("differential conformance with QEMU 10.0.2 (§4.3, §5, 9.0+)", { concurrency: 2 }, () => {
  for (const scenario of SCENARIOS_10) {
    test(`should agree on: ${scenario.name} [${scenario.reference}]`, (t) =>
      harness.check(t, scenario));
  }
});

describe("differential conformance with QEMU 10.0.2: throttling (§2)", { concurrency: 1 }, () => {
  for (const scenario of THROTTLE_SCENARIOS_10) {
    test(`should agree on: ${scenario.name} [${scenario.reference}]`, (t) =>
      harness.check(t, scenario));
  }
});
