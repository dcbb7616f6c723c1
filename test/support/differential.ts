/**
 * Test support: the checks of a differential scenario (issue 4 §5). Each scenario runs against a
 * real QEMU booting a tiny guest under TCG and against the simulator, and the normalised
 * transcripts (greeting, replies, events, end of stream, exit status, final `query-status`) must
 * be (1) what the reference says, for real QEMU, (2) the same for the simulator, and (3) equal to
 * each other byte for byte (timestamps aside, see `transcript.ts`). (4) The simulator gives the
 * same transcript again when its guest acts from outside, through `x-sim-guest` on a second
 * monitor, instead of through the TypeScript API.
 *
 * The real QEMU is the system's 7.2.22 against the simulator's default profile, unless
 * {@link HarnessOptions} names another pair (QEMU 10.0 and the `10.0.2` profile). The scenarios'
 * `expect` is then the caller's expectation for that version.
 *
 * Without QEMU (on a developer machine) the real-QEMU checks skip loudly and the simulator is still
 * checked against the reference; in CI a missing QEMU or nasm fails.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { qemuProfile } from "../../src/sim/index.js";
import { GuestImages, nasmAvailable } from "./guests.js";
import { type QemuInstallation, qemuAvailable, realQemuTest, SYSTEM_QEMU } from "./real-qemu.js";
import {
  handshakeLines,
  realQemuPackage,
  runOnRealQemu,
  runOnSimulator,
  type Scenario,
} from "./scenario.js";
import {
  type NormaliseOptions,
  normaliseTranscript,
  type RunRecord,
  throttledEventsOf,
} from "./transcript.js";

/** Which real QEMU and which simulator profile a harness compares. */
export interface HarnessOptions {
  /** The real QEMU. Default {@link SYSTEM_QEMU} (7.2.22). */
  qemu?: QemuInstallation | undefined;
  /** The simulator's profile (`--qemu-version`). Default the simulator's default (7.2.22). */
  qemuVersion?: string | undefined;
}

/** Runs scenarios on both sides and keeps the tally of byte-for-byte matches. */
export class DifferentialHarness {
  readonly withQemu: boolean;
  readonly realOptions: { skip?: string };
  readonly matches: string[] = [];
  readonly mismatches: string[] = [];
  readonly qemu: QemuInstallation;
  readonly qemuVersion: string | undefined;
  private readonly images = new GuestImages();

  private constructor(
    readonly packageString: string,
    options: HarnessOptions,
  ) {
    this.qemu = options.qemu ?? SYSTEM_QEMU;
    this.qemuVersion = options.qemuVersion;
    this.realOptions = realQemuTest(this.qemu);
    this.withQemu = qemuAvailable(this.qemu) && nasmAvailable();
    if (!nasmAvailable() && qemuAvailable(this.qemu) && process.env.CI) {
      throw new Error(
        "nasm not found: the conformance guests cannot be assembled (apt-get install nasm)",
      );
    }
  }

  /** The greeting's `package` is the installed QEMU's, so that the simulator can match it exactly. */
  static async create(options: HarnessOptions = {}): Promise<DifferentialHarness> {
    const qemu = options.qemu ?? SYSTEM_QEMU;
    const real = qemuAvailable(qemu) ? await realQemuPackage(qemu) : undefined;
    return new DifferentialHarness(real ?? qemuProfile(options.qemuVersion).package, options);
  }

  /** Runs `scenario` on both sides, then the checks as subtests of `t`. */
  async check(t: TestContext, scenario: Scenario): Promise<void> {
    const profile = qemuProfile(this.qemuVersion);
    const expected = [...handshakeLines(this.packageString, profile.version), ...scenario.expect];
    const sim = { package: this.packageString, qemuVersion: this.qemuVersion };
    const [real, simApi, simQmp] = await Promise.all([
      this.withQemu
        ? runOnRealQemu(scenario, this.images, { qemu: this.qemu })
        : Promise.resolve<RunRecord | undefined>(undefined),
      runOnSimulator(scenario, sim),
      runOnSimulator(scenario, { ...sim, guestVia: "x-sim-guest" }),
    ]);
    const normalise: NormaliseOptions = {
      dropFirmwareResets: scenario.firmware === "seabios",
      throttledEvents: throttledEventsOf(profile.version),
    };
    const simLines = normaliseTranscript(simApi, normalise);
    const simQmpLines = normaliseTranscript(simQmp, normalise);
    const realLines = real === undefined ? undefined : normaliseTranscript(real, normalise);
    if (realLines !== undefined) {
      const same = JSON.stringify(realLines) === JSON.stringify(simLines);
      (same ? this.matches : this.mismatches).push(scenario.name);
    }
    const ran = () => {
      if (realLines === undefined)
        assert.fail(`real QEMU did not run: ${this.qemu.binary} or nasm missing`);
      return realLines;
    };
    await t.test("real QEMU should produce the reference transcript", this.realOptions, () => {
      assert.deepEqual(ran(), expected);
    });
    await t.test("the simulator should produce the reference transcript", () => {
      assert.deepEqual(simLines, expected);
    });
    await t.test("the simulator should match real QEMU byte for byte", this.realOptions, () => {
      assert.deepEqual(simLines, ran());
    });
    await t.test("the simulator should do the same when the guest acts through x-sim-guest", () => {
      assert.deepEqual(simQmpLines, simLines);
    });
  }

  /** Removes the assembled guests and prints the tally. */
  finish(suite: string): void {
    this.images.dispose();
    if (!this.withQemu) return;
    const total = this.matches.length + this.mismatches.length;
    const differing =
      this.mismatches.length > 0 ? `; differing: ${this.mismatches.join("; ")}` : "";
    process.stderr.write(
      `${suite}: ${this.matches.length}/${total} scenarios match real QEMU byte for byte${differing}\n`,
    );
  }
}
