/**
 * Version behaviour is data: every behaviour that differs between releases is a named entry of
 * RELEASE_CHANGES, asked for by name; no module of the simulator compares versions itself.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { suite, test } from "node:test";
import { ManualClock } from "../../src/server/index.js";
import { SimulatedMachine } from "../../src/sim/simulated-machine.js";
import {
  changedIn,
  QEMU_PROFILES,
  RELEASE_CHANGES,
  type ReleaseChangeName,
} from "../../src/sim/versions.js";

const simDir = new URL("../../src/sim/", import.meta.url).pathname;

/**
 * The modules allowed to compare versions: the profiles themselves, and the schema facts, which
 * evaluate the catalogue's `Since:` marks.
 */
const ALLOWED = new Set(["versions.ts", "schema-info.ts"]);

/** Raw comparisons: of a version's parts, or through a comparison helper. */
const RAW_COMPARISON = [
  /\.(major|minor|micro)\s*(<=?|>=?|[!=]==?)/,
  /(<=?|>=?|[!=]==?)\s*[\w.]*\.(major|minor|micro)\b/,
  /\b(versionAtLeast|compareQemuVersions|atLeast|compareVersions)\s*\(/,
  /\bat\(\s*\d+\s*,\s*\d+/,
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path).map((f) => join(e.name, f));
    return e.name.endsWith(".ts") ? [e.name] : [];
  });
}

/** The lines of `text` that compare versions raw, as `N: line`. */
export function rawComparisons(text: string): string[] {
  return text
    .split("\n")
    .map((line, k) => ({ line, k }))
    .filter(({ line }) => !/^\s*(\/\/|\*|\/\*)/.test(line))
    .filter(({ line }) => RAW_COMPARISON.some((re) => re.test(line)))
    .map(({ line, k }) => `${k + 1}: ${line.trim()}`);
}

suite("release changes", () => {
  test("should find no raw version comparison in src/sim outside the profile module", () => {
    const found: string[] = [];
    for (const file of sources(simDir)) {
      if (ALLOWED.has(file)) continue;
      const text = readFileSync(join(simDir, file), "utf8");
      for (const hit of rawComparisons(text)) found.push(`src/sim/${file}:${hit}`);
    }
    assert.deepEqual(found, []);
  });

  test("should catch the comparisons the simulator used to make", () => {
    for (const line of [
      "    const withPath = v.major > 7 || (v.major === 7 && v.minor >= 1);",
      "    const levelsIgnored = v.major < 9;",
      "  if (!versionAtLeast(version, 9, 0)) {",
      "    return 9 <= this.profile.version.major;",
      "  const r = compareQemuVersions(a, b);",
    ]) {
      assert.equal(rawComparisons(line).length, 1, line);
    }
    assert.deepEqual(rawComparisons("  const text = [v.major, v.minor, v.micro].join('.');"), []);
  });

  test("should date and cite every entry", () => {
    for (const [name, entry] of Object.entries(RELEASE_CHANGES)) {
      assert.match(entry.since, /^\d+\.\d+(\.\d+)?$/, name);
      assert.ok(entry.upstream.length > 0 && entry.what.length > 0, name);
    }
  });

  test("should take a backport from its stable release on, in that release line only", () => {
    const v = (major: number, minor: number, micro: number) => ({ major, minor, micro });
    const change: ReleaseChangeName = "events-before-reply";
    assert.equal(changedIn(v(7, 2, 8), change), false);
    assert.equal(changedIn(v(7, 2, 9), change), true);
    assert.equal(changedIn(v(8, 2, 9), change), false);
    assert.equal(changedIn(v(9, 0, 0), change), true);
  });

  test("should give each profile the changes of its release", () => {
    const has = (id: string) =>
      (Object.keys(RELEASE_CHANGES) as ReleaseChangeName[]).filter((c) =>
        QEMU_PROFILES.get(id)?.has(c),
      );
    assert.deepEqual(has("2.9.0"), []);
    assert.deepEqual(has("7.2.22"), ["events-before-reply"]);
    assert.deepEqual(has("8.2.0"), [
      "runstate-finish-migrate-pairs",
      "pc-rtc-in-south-bridge",
      "migrate-pause-names-postcopy-recover",
      "file-node-format-specific",
    ]);
    assert.deepEqual(has("9.2.0"), [
      "events-before-reply",
      "runstate-finish-migrate-pairs",
      "suspended-is-live",
      "pc-rtc-in-south-bridge",
      "migrate-pause-names-postcopy-recover",
      "migrate-channels-checks-reworded",
      "multifd-compression-levels-applied",
      "file-node-format-specific",
      "smp-modules",
    ]);
    assert.deepEqual(has("10.0.2"), Object.keys(RELEASE_CHANGES));
  });
});

suite("the 9.2 profile", () => {
  test("should send BLOCK_IO_ERROR with qom-path, as the catalogue's Since: 9.2 says, and 9.1 without", () => {
    const dataOf = (qemuVersion: string) => {
      const vm = new SimulatedMachine({
        qemuVersion,
        clock: new ManualClock(),
        devices: { blockDevices: [{ id: "disk0", werror: "report" }] },
      });
      const events: Array<{ name: string; data: unknown }> = [];
      const emit = vm.emit.bind(vm);
      vm.emit = (name, data) => {
        events.push({ name, data });
        emit(name, data);
      };
      vm.guest.ioError("disk0");
      void vm.close();
      return events.find((e) => e.name === "BLOCK_IO_ERROR")?.data as Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(dataOf("9.2.0")), [
      "qom-path",
      "device",
      "node-name",
      "operation",
      "action",
      "nospace",
      "reason",
    ]);
    assert.equal(dataOf("9.2")["qom-path"], "/machine/peripheral/disk0-dev");
    assert.equal(Object.hasOwn(dataOf("9.1.0"), "qom-path"), false);
  });
});
