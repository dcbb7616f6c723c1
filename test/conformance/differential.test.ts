/**
 * The differential conformance suite (issue 4 §5) for the guest-triggered sequences (§4.3) and
 * the run-control commands (§5): real QEMU 7.2.22 with tiny guests versus the simulator, each
 * checked against the reference and against each other (see `test/support/differential.ts`).
 * Throttling storms are in `throttle.test.ts`.
 */
import { after, describe, test } from "node:test";
import { DifferentialHarness } from "../support/differential.js";
import { SCENARIOS } from "./scenarios.js";

const harness = await DifferentialHarness.create();
after(() => harness.finish("conformance (§4.3, §5)"));

describe("differential conformance with QEMU 7.2.22 (§4.3, §5)", { concurrency: 2 }, () => {
  for (const scenario of SCENARIOS) {
    test(`should agree on: ${scenario.name} [${scenario.reference}]`, (t) =>
      harness.check(t, scenario));
  }
});
