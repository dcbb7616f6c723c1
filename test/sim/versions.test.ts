/** The version profiles agree with the catalogue's Since/Removed facts. */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { qemuSchema } from "../../src/generated/index.js";
import { QEMU_PROFILES, qemuProfile, UnknownQemuVersionError } from "../../src/sim/versions.js";

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
    const { id: _a, version: _b, package: _c, ...switches } = p;
    const { id: _d, version: _e, package: _f, ...switches102 } = qemuProfile("10.2.0");
    assert.deepEqual(switches, switches102);
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
        "10.0.2:true",
        "10.2.0:true",
        "2.9.0:false",
      ],
    );
  });
});
