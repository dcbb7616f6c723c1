/**
 * The simulator answers the static commands of a release from its recorded capability profile
 * (`profiles/qemu-VERSION.jsonl`), byte for byte; arguments nobody recorded get QEMU's errors
 * or a clear one of the simulator's. Over real unix sockets, compared as raw lines. Whether the
 * profiles still match the real binaries: `test/conformance/profiles.test.ts`.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import {
  parseProfile,
  ProfileError,
  profilePath,
  recordedProfile,
  recordedVersions,
  requestLine,
} from "../../src/sim/recorded-profile.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { simReplies } from "../support/ask-each.js";

const RELEASES = ["7.2.22", "10.0.2"] as const;

suite("recorded capability profiles", () => {
  test("should ship a profile for 7.2.22 and 10.0.2", () => {
    assert.deepEqual([...recordedVersions()].sort(), [...RELEASES].sort());
  });

  for (const version of RELEASES) {
    test(`should answer every request of the ${version} profile with the recorded bytes`, async () => {
      const { records } = parseProfile(readFileSync(profilePath(version), "latin1"));
      assert.ok(records.length > 40, "the profile holds libvirt's probe");
      const replies = await simReplies({ qemuVersion: version, advertise: "recorded" }, records);
      records.forEach((r, i) => {
        assert.equal(replies[i], r.reply, `${requestLine(r.execute, r.arguments)} on ${version}`);
      });
    });

    test(`should print each ${version} reply as recorded after parsing it (writeQemuJson)`, () => {
      const profile = recordedProfile(version)!;
      for (const r of profile.records) {
        assert.equal(profile.answerText(r), r.reply, requestLine(r.execute, r.arguments));
      }
    });
  }

  test("should answer recorded commands by default, and advertise only what it implements", async () => {
    const [target, commands, schema] = await simReplies({ qemuVersion: "7.2.22" }, [
      { execute: "query-target" },
      { execute: "query-commands" },
      { execute: "query-qmp-schema" },
    ]);
    assert.equal(target, '{"return": {"arch": "x86_64"}}');
    const recorded = recordedProfile("7.2.22")!;
    assert.notEqual(commands, recorded.records.find((r) => r.execute === "query-commands")!.reply);
    assert.match(commands!, /\{"name": "query-machines"\}/);
    assert.match(commands!, /\{"name": "x-sim-guest"\}/);
    assert.notEqual(schema, recorded.records.find((r) => r.execute === "query-qmp-schema")!.reply);
  });

  test("should match arguments whatever the order of their keys", async () => {
    const [reply] = await simReplies({ qemuVersion: "10.0.2" }, [
      {
        execute: "query-cpu-model-expansion",
        arguments: { model: { props: { migratable: false }, name: "host" }, type: "static" },
      },
    ]);
    const wanted = requestLine("query-cpu-model-expansion", {
      type: "static",
      model: { name: "host", props: { migratable: false } },
    });
    const recorded = recordedProfile("10.0.2")!.records.find(
      (r) => requestLine(r.execute, r.arguments) === wanted,
    );
    assert.equal(reply, recorded!.reply);
  });

  test("should answer arguments nobody recorded with QEMU's errors, or say it has no answer", async () => {
    const replies = await simReplies({ qemuVersion: "7.2.22" }, [
      { execute: "device-list-properties", arguments: { typename: "no-such-device" } },
      { execute: "device-list-properties", arguments: { typename: "device" } },
      { execute: "device-list-properties", arguments: { typename: "memory-backend-ram" } },
      { execute: "qom-list-properties", arguments: { typename: "no-such-type" } },
      { execute: "device-list-properties", arguments: { typename: "e1000" } },
      { execute: "device-list-properties", arguments: {} },
      { execute: "device-list-properties", arguments: { typename: 1 } },
      { execute: "query-target", arguments: { x: 1 } },
      { execute: "query-cpu-model-expansion", arguments: { type: "full", model: { name: "max" } } },
    ]);
    assert.deepEqual(replies, [
      '{"error": {"class": "DeviceNotFound", "desc": "Device \'no-such-device\' not found"}}',
      '{"error": {"class": "GenericError", "desc": "Parameter \'typename\' expects a non-abstract device type"}}',
      '{"error": {"class": "GenericError", "desc": "Parameter \'typename\' expects a non-abstract device type"}}',
      '{"error": {"class": "DeviceNotFound", "desc": "Class \'no-such-type\' not found"}}',
      '{"error": {"class": "GenericError", "desc": "qmpkit sim: the QEMU 7.2.22 profile has no recorded answer to {\\"execute\\":\\"device-list-properties\\",\\"arguments\\":{\\"typename\\":\\"e1000\\"}}"}}',
      '{"error": {"class": "GenericError", "desc": "Parameter \'typename\' is missing"}}',
      '{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'typename\', expected: string"}}',
      '{"error": {"class": "GenericError", "desc": "Parameter \'x\' is unexpected"}}',
      '{"error": {"class": "GenericError", "desc": "qmpkit sim: the QEMU 7.2.22 profile has no recorded answer to {\\"execute\\":\\"query-cpu-model-expansion\\",\\"arguments\\":{\\"model\\":{\\"name\\":\\"max\\"},\\"type\\":\\"full\\"}}"}}',
    ]);
  });

  test("should leave a command neither implemented nor recorded CommandNotFound", async () => {
    const [reply] = await simReplies({ qemuVersion: "7.2.22", advertise: "recorded" }, [
      { execute: "query-pci" },
    ]);
    assert.equal(
      reply,
      '{"error": {"class": "CommandNotFound", "desc": "The command query-pci has not been found"}}',
    );
  });

  test("should answer from no profile where none was recorded", async () => {
    const [reply] = await simReplies({ qemuVersion: "9.1.0" }, [{ execute: "query-target" }]);
    assert.equal(
      reply,
      '{"error": {"class": "CommandNotFound", "desc": "The command query-target has not been found"}}',
    );
    assert.throws(
      () => new SimulatedMachine({ qemuVersion: "9.1.0", advertise: "recorded" }),
      (e: unknown) => e instanceof ProfileError && /QEMU 9\.1\.0: recorded are/.test(e.message),
    );
  });

  test("should refuse an advertise option it does not know", () => {
    assert.throws(
      () => new SimulatedMachine({ advertise: "everything" as "recorded" }),
      (e: unknown) => e instanceof ProfileError && /not "everything"/.test(e.message),
    );
  });

  test("should refuse a text that is not a profile", () => {
    assert.throws(() => parseProfile('{"qmpkit-profile": 1}\n{"execute": "x"}\n'), ProfileError);
    assert.throws(
      () => parseProfile('{"qmpkit-profile": 1}\n{"execute": "x"}\n[]\n'),
      ProfileError,
    );
    assert.throws(() => parseProfile('{"something": "else"}\n'), ProfileError);
  });
});
