/**
 * A seeded random differential comparison of `qmpkit sim --strict` with real QEMU 7.2.22 and
 * 10.0.2: random sessions of the commands the simulator implements, with valid, odd and malformed
 * arguments (see `test/support/command-fuzz.ts`), run on both with the same command line
 * (`-machine none -m 16`, or `-machine pc -m 64` with SeaBIOS, a CD-ROM, a virtio NIC, a balloon
 * and a null-co disk; the scenario runners of `test/support/scenario.ts`). Each command's part of
 * the normalised transcripts (replies, events with `<ts>` for timestamps, end of stream, exit
 * status, stderr at the end) must be identical byte for byte. The seeds are fixed: the same
 * sessions every run. The tally (sessions, commands compared, matches) goes to stderr.
 *
 * What is not drawn, because its outcome depends on timing or on the host rather than on the
 * checks compared here:
 * - `migrate` to a URI that starts a migration (`exec:`, a parseable socket address, a `file:`
 *   in an existing directory): how far it gets before the next command, and its passes, depend
 *   on the host's speed (those are compared by shape in `migration.test.ts`);
 * - `rdma:` with a parseable address (the answer depends on the host's RDMA devices), and any
 *   `rdma:` URI on 10.0.2, which aborts in `migrate_uri_parse` ("free(): invalid pointer": it
 *   frees the address it failed to parse twice), so nothing would be left to compare;
 * - `dump-guest-memory` with `detach: true`: DUMP_COMPLETED then follows the reply at a time
 *   that depends on the host;
 * - `yank` of the monitor's own chardev: it cuts the connection the reply travels on;
 * - `query-commands` and `query-qmp-schema`: they list what the simulator has, a subset of QEMU
 *   (compared by the schema tests);
 * - SeaBIOS's own guest resets after a `system_reset`: whether it got that far before the
 *   session ended depends on timing (they are dropped from both transcripts).
 *
 * Left out too, each with its reason where `command-fuzz.ts` leaves it out: what the simulated
 * guest does that SeaBIOS does not (it acks PCI unplugs, runs a balloon driver), divergences of
 * the device and block models outside the checks compared here (an empty id, an empty CD-ROM,
 * `backing-file` and `base`), a negative dump `begin`, and integral floats (`1e3`), which
 * qmpkit's JSON decoder turns into integers.
 */
import assert from "node:assert/strict";
import { after, suite, test } from "node:test";
import { qemuProfile } from "../../src/sim/index.js";
import {
  FUZZED_COMMANDS,
  type FuzzMachine,
  fuzzMachineOptions,
  fuzzSession,
  SeededRandom,
} from "../support/command-fuzz.js";
import { GuestImages } from "../support/guests.js";
import { QEMU_10, type QemuInstallation, realQemuTest, SYSTEM_QEMU } from "../support/real-qemu.js";
import {
  realQemuPackage,
  runOnRealQemu,
  runOnSimulator,
  type Scenario,
} from "../support/scenario.js";
import {
  FIRMWARE_RESETS_DROPPED,
  normaliseTranscript,
  type RunRecord,
  throttledEventsOf,
} from "../support/transcript.js";

/** Sessions per QEMU version, and commands per session. */
const SESSIONS = Number(process.env.QMPKIT_FUZZ_SESSIONS ?? 24);
const COMMANDS_PER_SESSION = 24;
/** How many sessions run at once (each is one real QEMU and one simulator). */
const PARALLEL = 2;

const images = new GuestImages();
after(() => images.dispose());

/** A session's transcript cut at each command: the command line and what followed it. */
function byCommand(lines: readonly string[]): string[][] {
  const out: string[][] = [];
  for (const line of lines) {
    if (line.startsWith(">>> ") || out.length === 0) out.push([line]);
    else out[out.length - 1]?.push(line);
  }
  return out;
}

interface Tally {
  sessions: number;
  commands: number;
  matches: number;
  differing: string[];
}

async function runSession(
  qemu: QemuInstallation,
  qemuVersion: string | undefined,
  packageString: string,
  seed: number,
  tally: Tally,
): Promise<void> {
  const random = new SeededRandom(seed);
  const machine: FuzzMachine = seed % 2 === 0 ? "none" : "pc";
  const scenario: Scenario = {
    name: `fuzz session ${seed}`,
    reference: "differential fuzz",
    machine,
    options: fuzzMachineOptions(machine),
    // SeaBIOS, not a tiny guest: the simulator's dump sizes are those of SeaBIOS's 256 KiB ROM.
    firmware: "seabios",
    steps: fuzzSession(random, COMMANDS_PER_SESSION, { withoutRdma: qemuVersion === "10.0.2" }),
    expect: [],
  };
  const [real, sim] = await Promise.all([
    runOnRealQemu(scenario, images, { qemu }),
    runOnSimulator(scenario, { package: packageString, qemuVersion, strict: true }),
  ]);
  const options = {
    throttledEvents: throttledEventsOf(qemuProfile(qemuVersion).version),
    // After a reset SeaBIOS resets the guest once or twice, as host timing goes (§4.3 note).
    dropFirmwareResets: true,
  };
  // Whether SeaBIOS got as far as its resets before the session ended depends on timing too.
  const lines = (run: RunRecord) =>
    normaliseTranscript(run, options).filter((l) => l !== FIRMWARE_RESETS_DROPPED);
  const realParts = byCommand(lines(real));
  const simParts = byCommand(lines(sim));
  // The greeting and negotiation come first; each command after them counts once.
  let firstDifference: string | undefined;
  for (let i = 1; i < Math.max(realParts.length, simParts.length); i++) {
    const r = realParts[i] ?? ["(nothing)"];
    const s = simParts[i] ?? ["(nothing)"];
    if (i >= 2) tally.commands += 1;
    if (JSON.stringify(r) === JSON.stringify(s)) {
      if (i >= 2) tally.matches += 1;
    } else {
      firstDifference ??= `session ${seed} (${machine}), command ${i - 1}:\n  QEMU: ${r.join("\n        ")}\n  sim:  ${s.join("\n        ")}`;
    }
  }
  tally.sessions += 1;
  if (firstDifference !== undefined) tally.differing.push(firstDifference);
}

for (const [label, qemu, qemuVersion, firstSeed] of [
  ["QEMU 7.2.22", SYSTEM_QEMU, undefined, 7_220_000],
  ["QEMU 10.0.2", QEMU_10, "10.0.2", 10_020_000],
] as const) {
  suite(`seeded random differential comparison with ${label}`, realQemuTest(qemu), () => {
    test(`should answer ${SESSIONS} random sessions of ${FUZZED_COMMANDS.length} commands as ${label} does`, async () => {
      const packageString =
        (await realQemuPackage(qemu)) ?? assert.fail(`${qemu.binary} does not run`);
      const tally: Tally = { sessions: 0, commands: 0, matches: 0, differing: [] };
      const seeds = Array.from({ length: SESSIONS }, (_, i) => firstSeed + i);
      const workers = Array.from({ length: PARALLEL }, async () => {
        for (let seed = seeds.shift(); seed !== undefined; seed = seeds.shift()) {
          await runSession(qemu, qemuVersion, packageString, seed, tally);
        }
      });
      await Promise.all(workers);
      process.stderr.write(
        `differential fuzz with ${label}: ${tally.sessions} sessions, ${tally.commands} commands compared, ${tally.matches} match\n`,
      );
      assert.deepEqual(tally.differing, []);
    });
  });
}
