/** The version profiles agree with the catalogue's Since/Removed facts. */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { qemuSchema } from "../../src/generated/index.js";
import type { IfCond } from "../../src/schema/model.js";
import {
  BUILD_SYMBOLS,
  DEBIAN_BUILD,
  QEMU_PROFILES,
  qemuProfile,
  RELEASE_CHANGES,
  type ReleaseChangeName,
  UnknownQemuVersionError,
} from "../../src/sim/versions.js";

suite("version profiles", () => {
  for (const p of QEMU_PROFILES.values()) {
    test(`should match the catalogue for ${p.id}`, () => {
      const v = p.id;
      const shutdown = qemuSchema.hasMember("SHUTDOWN", "reason", v)
        ? "guest-reason"
        : qemuSchema.hasMember("SHUTDOWN", "guest", v)
          ? "guest"
          : "none";
      assert.equal(p.shutdownData, shutdown);
      assert.equal(p.statusSingleStep, qemuSchema.hasMember("StatusInfo", "singlestep", v));
      assert.equal(p.pvShutdown, qemuSchema.hasEvent("GUEST_PVSHUTDOWN", v));
      assert.equal(p.crashLoaded, qemuSchema.hasEvent("GUEST_CRASHLOADED", v));
      assert.equal(p.actionKnobs, qemuSchema.hasCommand("set-action", v));
    });
  }

  test("should accept 10.2 for 10.2.0 and refuse an unknown version with the list", () => {
    assert.equal(qemuProfile("10.2").id, "10.2.0");
    assert.equal(qemuProfile("7.2").id, "7.2.0");
    assert.throws(
      () => qemuProfile("5.0"),
      (e: unknown) =>
        e instanceof UnknownQemuVersionError &&
        e.known.includes("7.2.22") &&
        /known versions are 7\.2\.22, 7\.2\.0/.test(e.message),
    );
  });

  test("should take a two-part version without a .0 profile as the release's newest micro", () => {
    assert.equal(qemuProfile("10.0").id, "10.0.2");
    assert.throws(() => qemuProfile("10.1"), UnknownQemuVersionError);
    assert.throws(() => qemuProfile("10.0.1"), UnknownQemuVersionError);
  });

  test("should describe Debian's QEMU 10.0.2 as its greeting does, with the 9.0+ switches", () => {
    const p = qemuProfile("10.0.2");
    // The real binary's greeting: {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": …}.
    assert.deepEqual(p.version, { major: 10, minor: 0, micro: 2 });
    assert.equal(p.package, "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1");
    assert.deepEqual(p.capabilities, ["oob"]);
    const { id: _a, version: _b, package: _c, has: _g, ...switches } = p;
    const { id: _d, version: _e, package: _f, has: _h, ...switches102 } = qemuProfile("10.2.0");
    assert.deepEqual(switches, switches102);
    for (const change of Object.keys(RELEASE_CHANGES) as ReleaseChangeName[]) {
      assert.equal(p.has(change), qemuProfile("10.2.0").has(change), change);
    }
    assert.equal(p.suspendedIsLive, true);
    assert.equal(p.statusSingleStep, false);
  });

  test("should put events before the reply in 7.2.22 and 9.0+, after it in 7.2.0 and 8.x (§1.9)", () => {
    assert.deepEqual(
      [...QEMU_PROFILES.values()].map((p) => `${p.id}:${p.eventsBeforeReply}`),
      [
        "7.2.22:true",
        "7.2.0:false",
        "8.2.0:false",
        "9.1.0:true",
        "9.2.0:true",
        "10.0.2:true",
        "10.2.0:true",
        "2.9.0:false",
      ],
    );
  });
});

suite("builds", () => {
  /** Every `if` symbol the catalogue uses, anywhere (definitions, members, values, branches, features). */
  function catalogueSymbols(): Set<string> {
    const out = new Set<string>();
    const walk = (cond: IfCond | undefined) => {
      if (cond === undefined) return;
      if (typeof cond === "string") out.add(cond);
      else if ("all" in cond) cond.all.forEach(walk);
      else if ("any" in cond) cond.any.forEach(walk);
      else walk(cond.not);
    };
    for (const d of qemuSchema.model.definitions) {
      walk(d.ifcond);
      for (const f of d.features) walk(f.ifcond);
      const parts =
        d.kind === "struct"
          ? d.members
          : d.kind === "enum"
            ? d.values
            : d.kind === "union" || d.kind === "alternate"
              ? d.branches
              : [];
      for (const p of parts) {
        walk(p.ifcond);
        if ("features" in p) for (const f of p.features) walk(f.ifcond);
      }
    }
    return out;
  }

  test("should decide every if symbol of the catalogue in every profile's build", () => {
    const used = catalogueSymbols();
    assert.ok(used.has("CONFIG_QPL") && used.has("CONFIG_SPICE"), [...used].join());
    assert.deepEqual(
      [...used].filter((s) => !BUILD_SYMBOLS.includes(s)),
      [],
      "a new if symbol: add it to BUILD_SYMBOLS and say whether Debian's build has it",
    );
    for (const p of QEMU_PROFILES.values()) {
      for (const s of p.config) assert.ok(BUILD_SYMBOLS.includes(s), `${p.id}: ${s}`);
    }
  });

  test("should leave the accelerator libraries out of Debian's build", () => {
    for (const s of ["CONFIG_QPL", "CONFIG_UADK", "CONFIG_QATZIP"]) {
      assert.equal(DEBIAN_BUILD.has(s), false, s);
    }
    for (const s of ["CONFIG_SPICE", "CONFIG_VNC", "CONFIG_ZSTD"]) {
      assert.equal(DEBIAN_BUILD.has(s), true, s);
    }
    assert.equal(qemuProfile("10.0.2").config, DEBIAN_BUILD);
  });
});
