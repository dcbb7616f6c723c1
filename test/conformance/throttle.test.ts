/**
 * The differential conformance suite for event throttling (§2): RTC_CHANGE and WATCHDOG storms
 * made by tiny guests on real QEMU 7.2.22 and replayed on the simulator. How many events, one a
 * second, the latest kept, and the held one stamped before a later unthrottled event. These
 * depend on host timing, so they run one at a time (see `scenarios.ts`, `storm`).
 */
import { after, describe, test } from "node:test";
import { DifferentialHarness } from "../support/differential.js";
import { THROTTLE_SCENARIOS } from "./scenarios.js";

const harness = await DifferentialHarness.create();
after(() => harness.finish("conformance (§2 throttling)"));

describe("differential conformance with QEMU 7.2.22: throttling (§2)", { concurrency: 1 }, () => {
  for (const scenario of THROTTLE_SCENARIOS) {
    test(`should agree on: ${scenario.name} [${scenario.reference}]`, (t) =>
      harness.check(t, scenario));
  }
});
