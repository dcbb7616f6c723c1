/**
 * The libvirt comparison as `node:test` suites (docs/libvirt.md): one private libvirtd per
 * emulator, the scenario (`scenario.ts`) run on real QEMU and on qmpkit-qemu side by side, then
 * what libvirt saw compared. A step that fails on either side fails the test that covers it.
 */
import assert from "node:assert/strict";
import { after, before, suite, test } from "node:test";
import { GuestImages } from "../support/guests.js";
import { type LibvirtDaemon, libvirtTest, startLibvirtd } from "../support/libvirt.js";
import { type QemuInstallation, realQemuTest } from "../support/real-qemu.js";
import { deterministicEvents, runScenario, type ScenarioRecord } from "./scenario.js";

/**
 * Differences in `virsh domcapabilities` that are known and explained (docs/libvirt.md
 * "domcapabilities"): each a line present on one side only, with the reason. Empty: equal.
 */
export interface KnownDomcapsDifference {
  readonly line: string;
  readonly side: "real" | "sim";
  readonly why: string;
}

/** The lines of `a` missing from `b` (as multisets), in order. */
function missing(a: readonly string[], b: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const l of b) left.set(l, (left.get(l) ?? 0) + 1);
  return a.filter((l) => {
    const n = left.get(l) ?? 0;
    if (n === 0) return true;
    left.set(l, n - 1);
    return false;
  });
}

/** Where two long lines first differ, with some characters of each around that place. */
function lineDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const around = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 120), i + 200));
  return `  first differing character at ${i}:\n  qmpkit-qemu: …${around(a)}…\n  real QEMU:   …${around(b)}…`;
}

/** Asserts two line lists equal, reporting the first difference with context (not 2 000 lines). */
function assertSameLines(
  actual: readonly string[],
  expected: readonly string[],
  what: string,
): void {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      const context = (lines: readonly string[]) =>
        lines
          .slice(Math.max(0, i - 3), i + 3)
          .map(
            (l, k) => `  ${Math.max(0, i - 3) + k}: ${l.length > 300 ? `${l.slice(0, 300)}…` : l}`,
          )
          .join("\n");
      const both = actual[i] !== undefined && expected[i] !== undefined;
      // Beyond the first difference, an overview: the lines each side has and the other lacks.
      const cut = (l: string) => (l.length > 160 ? `${l.slice(0, 160)}…` : l);
      const summary = (name: string, lines: string[]) =>
        `${lines.length} line(s) only in ${name}'s${lines.length === 0 ? "" : ", e.g.:"}\n${lines
          .slice(0, 12)
          .map((l) => `  ${cut(l)}`)
          .join("\n")}`;
      const overview = `${summary("qmpkit-qemu", missing(actual, expected))}\n${summary("real QEMU", missing(expected, actual))}`;
      assert.fail(
        `${what}: first difference at line ${i} of ${actual.length} (qmpkit-qemu) / ${expected.length} (real QEMU)\n` +
          `qmpkit-qemu:\n${context(actual)}\nreal QEMU:\n${context(expected)}` +
          (both ? `\n${lineDifference(actual[i]!, expected[i]!)}` : "") +
          `\n${overview}`,
      );
    }
  }
}

/** Registers the comparison of `real` with qmpkit-qemu's `simVersion` profile. */
export function libvirtComparison(
  real: QemuInstallation,
  simVersion: string,
  knownDomcaps: readonly KnownDomcapsDifference[],
): void {
  const options = { ...realQemuTest(real), ...libvirtTest() };
  const skip = options.skip;
  suite(`libvirt 9.0 drives ${real.label} and qmpkit-qemu ${simVersion} the same way`, {
    skip,
  }, () => {
    let guests: GuestImages;
    const daemons: LibvirtDaemon[] = [];
    let realRun: ScenarioRecord;
    let simRun: ScenarioRecord;

    before(async () => {
      guests = new GuestImages();
      // One daemon each, so that the two logs and capability caches stay apart; run one after
      // the other: a busy 2-core machine is busy enough.
      const realDaemon = await startLibvirtd();
      daemons.push(realDaemon);
      realRun = await runScenario(realDaemon, realDaemon.realQemu(real, "qemu"), guests);
      const simDaemon = await startLibvirtd();
      daemons.push(simDaemon);
      simRun = await runScenario(
        simDaemon,
        // As a versioned program name (qmpkit-qemu-7.2.22) would: the real binary's schema for
        // libvirt's probe; and no x-sim-* commands, which QEMU does not have.
        simDaemon.simQemu(simVersion, "qmpkit-qemu", ["--advertise", "recorded", "--strict"]),
        guests,
      );
    });
    after(async () => {
      for (const d of daemons) await d.stop();
      guests?.dispose();
    });

    test(`every step runs on ${real.label} (the harness itself)`, () => {
      assert.deepEqual(realRun.failures, []);
    });

    test("every step runs on qmpkit-qemu", () => {
      assert.deepEqual(simRun.failures, []);
    });

    test("virsh domstate --reason after each step is the same", () => {
      assert.deepEqual(simRun.states, realRun.states);
    });

    test("virsh event --all --loop prints the same lines", () => {
      assert.deepEqual(deterministicEvents(simRun.events), deterministicEvents(realRun.events));
    });

    test("virsh domcapabilities is the same, but for the differences listed and explained", () => {
      const real = realRun.domcapabilities.split("\n");
      const sim = simRun.domcapabilities.split("\n");
      const onlyReal = missing(real, sim);
      const onlySim = missing(sim, real);
      const known = (side: "real" | "sim", line: string) =>
        knownDomcaps.some((k) => k.side === side && k.line === line.trim());
      assert.deepEqual(
        {
          onlyReal: onlyReal.filter((l) => !known("real", l)),
          onlySim: onlySim.filter((l) => !known("sim", l)),
        },
        { onlyReal: [], onlySim: [] },
      );
      // A listed difference that no longer shows is stale: drop it from the list and the docs.
      for (const k of knownDomcaps) {
        const lines = k.side === "real" ? onlyReal : onlySim;
        assert.ok(
          lines.some((l) => l.trim() === k.line),
          `listed difference gone: ${k.line}`,
        );
      }
    });

    test("the capability probe exchanges the same QMP messages", () => {
      assertSameLines(simRun.probe, realRun.probe, "probe transcript");
    });

    test("the domains exchange the same QMP messages at every step", () => {
      assertSameLines(simRun.transcript, realRun.transcript, "domain transcript");
    });
  });
}
