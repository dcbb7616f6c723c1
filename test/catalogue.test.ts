/**
 * The catalogue (`schema/qapi/`, issue 3 §2): it parses and checks, it has every event the seeds
 * name and the commands the simulator needs, its version marks give the documented history
 * (docs/design.md principle 3), every reference resolves in every release that has it, and its
 * documentation does not copy the seeds' sentences.
 *
 * The live comparison with a real QEMU 7.2 is in `catalogue-introspection.test.ts`.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  compareQemuVersions,
  createVersionQueries,
  type Definition,
  formatQemuVersion,
  loadSchema,
  parseQemuVersion,
  presentIn,
  type QemuVersion,
  SchemaIndex,
  type SchemaModel,
  type Versioned,
} from "../src/schema/index.js";
import { readFileNode } from "../src/schema/read-file-node.js";

const schemaDir = fileURLToPath(new URL("../schema/qapi/", import.meta.url));
const { model } = loadSchema(join(schemaDir, "qapi-schema.json"), { readFile: readFileNode });
const q = createVersionQueries(model);
const index = new SchemaIndex(model);

/** The events issue 3 §2 lists: every event of the five seeds. */
const seedEvents = [
  "SHUTDOWN",
  "POWERDOWN",
  "RESET",
  "STOP",
  "RESUME",
  "SUSPEND",
  "SUSPEND_DISK",
  "WAKEUP",
  "RTC_CHANGE",
  "WATCHDOG",
  "DEVICE_DELETED",
  "NIC_RX_FILTER_CHANGED",
  "VNC_CONNECTED",
  "VNC_INITIALIZED",
  "VNC_DISCONNECTED",
  "SPICE_CONNECTED",
  "SPICE_INITIALIZED",
  "SPICE_DISCONNECTED",
  "SPICE_MIGRATE_COMPLETED",
  "MIGRATION",
  "MIGRATION_PASS",
  "ACPI_DEVICE_OST",
  "BALLOON_CHANGE",
  "GUEST_PANICKED",
  "GUEST_CRASHLOADED",
  "GUEST_PVSHUTDOWN",
  "QUORUM_FAILURE",
  "QUORUM_REPORT_BAD",
  "VSERPORT_CHANGE",
  "MEM_UNPLUG_ERROR",
  "DUMP_COMPLETED",
  "BLOCK_IO_ERROR",
  "DEVICE_TRAY_MOVED",
  "BLOCK_JOB_COMPLETED",
  "BLOCK_JOB_CANCELLED",
  "MEMORY_FAILURE",
];

/** The commands issue 3 §2 and issue 4 §1–§2 need (run control, and what causes device events). */
const simulatorCommands = [
  "qmp_capabilities",
  "query-version",
  "query-commands",
  "query-qmp-schema",
  "query-name",
  "query-status",
  "stop",
  "cont",
  "system_reset",
  "system_powerdown",
  "system_wakeup",
  "quit",
  "set-action",
  "watchdog-set-action",
  "device_del",
  "query-rx-filter",
  "eject",
  "blockdev-open-tray",
  "blockdev-close-tray",
  "balloon",
  "query-balloon",
  "migrate-set-capabilities",
  "migrate",
  "migrate-incoming",
  "query-migrate",
  "migrate_cancel",
  "dump-guest-memory",
  "query-dump",
  "block-stream",
  "block-job-cancel",
  "query-block-jobs",
];

const memberNames = (owner: string, version: string) =>
  q.members(owner, version).map((m) => m.name);

const branchNames = (union: string, version: string) => {
  const d = q.modelFor(version).definitions.find((x) => x.name === union);
  assert.ok(d !== undefined && d.kind === "union", `${union} should be a union in ${version}`);
  return d.branches.map((b) => b.name);
};

test("should parse and check the whole catalogue", () => {
  // The strictest rules the checker knows: QEMU's current naming rules, and a description for
  // every member, enum value and branch (QEMU 9.0+), beside the pragma's doc-required.
  assert.doesNotThrow(() =>
    loadSchema(join(schemaDir, "qapi-schema.json"), {
      readFile: readFileNode,
      naming: "strict",
      memberDocs: "require",
    }),
  );
  const kinds = (k: Definition["kind"]) =>
    model.definitions.filter((d) => d.kind === k && !d.implicit).length;
  assert.ok(kinds("event") >= seedEvents.length, `only ${kinds("event")} events`);
  assert.ok(kinds("command") >= simulatorCommands.length, `only ${kinds("command")} commands`);
  assert.ok(kinds("struct") > 0 && kinds("enum") > 0 && kinds("union") > 0);
});

test("should define every event the seeds name", () => {
  assert.equal(seedEvents.length, 36);
  const missing = seedEvents.filter((n) => index.get(n)?.kind !== "event");
  assert.deepEqual(missing, []);
});

test("should define the commands the simulator needs", () => {
  const missing = simulatorCommands.filter((n) => index.get(n)?.kind !== "command");
  assert.deepEqual(missing, []);
});

test("should date every definition the schema writes", () => {
  const undated = model.definitions
    // QType is predefined by the toolchain (schema.py's too), not written in the schema files.
    .filter((d) => d.info.file.endsWith(".json") && !d.implicit && d.since === undefined)
    .map((d) => d.name);
  assert.deepEqual(undated, []);
});

test("should give SHUTDOWN and RESET no data before 2.10, guest from 2.10, reason from 4.0", () => {
  for (const event of ["SHUTDOWN", "RESET"]) {
    assert.equal(q.hasEvent(event, "0.11"), false, `${event} in 0.11`);
    assert.equal(q.hasEvent(event, "0.12"), true, `${event} in 0.12`);
    assert.deepEqual(memberNames(event, "2.9"), [], `${event} in 2.9`);
    assert.deepEqual(memberNames(event, "2.10"), ["guest"], `${event} in 2.10`);
    assert.deepEqual(memberNames(event, "3.1"), ["guest"], `${event} in 3.1`);
    assert.deepEqual(memberNames(event, "4.0"), ["guest", "reason"], `${event} in 4.0`);
    assert.deepEqual(memberNames(event, "10.2"), ["guest", "reason"], `${event} in 10.2`);
  }
});

test("should have GUEST_PVSHUTDOWN from 9.1 only", () => {
  assert.equal(q.hasEvent("GUEST_PVSHUTDOWN", "9.0.4"), false);
  assert.equal(q.hasEvent("GUEST_PVSHUTDOWN", "9.1"), true);
  assert.equal(q.hasEvent("GUEST_PVSHUTDOWN", "10.2"), true);
});

test("should drop StatusInfo's singlestep in 9.0", () => {
  assert.deepEqual(memberNames("StatusInfo", "8.2"), ["running", "singlestep", "status"]);
  assert.deepEqual(memberNames("StatusInfo", "9.0"), ["running", "status"]);
  assert.equal(q.hasCommand("query-status", "9.0"), true);
});

test("should give query-block-jobs the struct BlockJobInfo before 8.2 and the union from 8.2", () => {
  const shapeIn = (version: string) => {
    const m = q.modelFor(version);
    const cmd = m.definitions.find((d) => d.name === "query-block-jobs");
    assert.ok(cmd?.kind === "command" && cmd.returns !== undefined);
    assert.equal(cmd.returns.name, "BlockJobInfo");
    const infos = m.definitions.filter((d) => d.name === "BlockJobInfo");
    assert.equal(infos.length, 1, `${version}: one BlockJobInfo`);
    // The dated shape is not there under its own name.
    assert.equal(
      m.definitions.some((d) => d.name === "LegacyBlockJobInfo"),
      false,
    );
    return infos[0]!;
  };
  for (const v of ["1.1", "7.2", "8.1"]) {
    const d = shapeIn(v);
    assert.equal(d.kind, "struct", v);
    const type = q.members("BlockJobInfo", v).find((x) => x.name === "type");
    assert.equal(type?.type.name, "str", v);
  }
  assert.deepEqual(memberNames("BlockJobInfo", "1.1"), [
    "type",
    "device",
    "len",
    "offset",
    "speed",
  ]);
  for (const v of ["8.2", "10.0"]) {
    const d = shapeIn(v);
    assert.ok(d.kind === "union", v);
    assert.equal(d.discriminator, "type");
    assert.deepEqual(
      d.branches.map((b) => `${b.name}:${b.type.name}`),
      ["mirror:BlockJobInfoMirror"],
    );
    assert.equal(q.members("BlockJobInfo", v).find((x) => x.name === "type")?.type.name, "JobType");
  }
});

test("should make migrate's uri optional from 9.0 and migrate-incoming's from 8.2", () => {
  const uri = (command: string, version: string) =>
    q.members(command, version).find((m) => m.name === "uri")?.optional;
  assert.equal(uri("migrate", "7.2"), false);
  assert.equal(uri("migrate", "8.2"), false, "8.2.0 still required it, beside channels");
  assert.equal(uri("migrate", "9.0"), true);
  assert.equal(uri("migrate", "10.0"), true);
  assert.equal(uri("migrate-incoming", "8.1"), false);
  assert.equal(uri("migrate-incoming", "8.2"), true);
  assert.ok(q.hasMember("migrate-incoming", "channels", "8.2"));
  // The newest shape is what the model (and the generated types) say without a release.
  const args = index.get("q_obj_migrate-arg");
  assert.ok(args?.kind === "struct");
  assert.deepEqual(
    args.members.filter((m) => m.name === "uri").map((m) => [m.optional, m.optionalSince]),
    [[true, "9.0"]],
  );
});

test("should have COMMAND_DROPPED from 2.12 until 4.0 removed it", () => {
  assert.equal(q.hasEvent("COMMAND_DROPPED", "2.11"), false);
  assert.equal(q.hasEvent("COMMAND_DROPPED", "2.12"), true);
  assert.equal(q.hasEvent("COMMAND_DROPPED", "3.1"), true);
  assert.equal(q.hasEvent("COMMAND_DROPPED", "4.0"), false);
});

test("should give GuestPanicInformation its branches release by release", () => {
  assert.equal(q.hasMember("GUEST_PANICKED", "info", "2.8"), false);
  assert.deepEqual(branchNames("GuestPanicInformation", "2.9"), ["hyper-v"]);
  assert.deepEqual(branchNames("GuestPanicInformation", "2.12"), ["hyper-v", "s390"]);
  assert.deepEqual(branchNames("GuestPanicInformation", "10.0"), ["hyper-v", "s390"]);
  assert.deepEqual(branchNames("GuestPanicInformation", "10.1"), ["hyper-v", "s390", "tdx"]);
});

test("should keep WATCHDOG's action through the enum's rename and grow inject-nmi in 2.4", () => {
  for (const v of ["0.13", "2.0", "2.10", "2.11", "7.2"]) {
    assert.deepEqual(memberNames("WATCHDOG", v), ["action"], `WATCHDOG in ${v}`);
  }
  const values = (v: string) => {
    const d = q.modelFor(v).definitions.find((x) => x.name === "WatchdogAction");
    assert.ok(d?.kind === "enum");
    return d.values.map((x) => x.name);
  };
  assert.deepEqual(values("2.3"), ["reset", "shutdown", "poweroff", "pause", "debug", "none"]);
  assert.ok(values("2.4").includes("inject-nmi"));
});

test("should rename x-multifd to multifd in 4.0 and drop compress and block in 9.1", () => {
  const values = (v: string) => {
    const d = q.modelFor(v).definitions.find((x) => x.name === "MigrationCapability");
    assert.ok(d?.kind === "enum", `MigrationCapability in ${v}`);
    return d.values.map((x) => x.name);
  };
  assert.deepEqual(values("1.2"), ["xbzrle"]);
  assert.ok(values("3.1").includes("x-multifd") && !values("3.1").includes("multifd"));
  assert.ok(values("4.0").includes("multifd") && !values("4.0").includes("x-multifd"));
  // QEMU 7.2's list, in its order (checked live by catalogue-introspection.test.ts too).
  assert.deepEqual(values("7.2"), [
    "xbzrle",
    "rdma-pin-all",
    "auto-converge",
    "zero-blocks",
    "compress",
    "events",
    "postcopy-ram",
    "x-colo",
    "release-ram",
    "block",
    "return-path",
    "pause-before-switchover",
    "multifd",
    "dirty-bitmaps",
    "postcopy-blocktime",
    "late-block-activate",
    "x-ignore-shared",
    "validate-uuid",
    "background-snapshot",
    "zero-copy-send",
    "postcopy-preempt",
  ]);
  const v91 = values("9.1");
  assert.equal(v91.includes("compress") || v91.includes("block"), false);
  assert.ok(v91.includes("mapped-ram"));
});

test("should list, for QEMU 7.2.22, exactly the seed events that 7.2 has", () => {
  const events = q.events("7.2.22");
  const expected = seedEvents.filter((n) => n !== "GUEST_PVSHUTDOWN");
  assert.deepEqual(
    expected.filter((n) => !events.includes(n)),
    [],
  );
  assert.equal(events.includes("GUEST_PVSHUTDOWN"), false);
  assert.equal(events.includes("COMMAND_DROPPED"), false);
});

/** Every version the catalogue mentions (definitions, members, values, branches). */
function mentionedVersions(m: SchemaModel): QemuVersion[] {
  const seen = new Map<string, QemuVersion>();
  const add = (x: Versioned) => {
    for (const v of [x.since, x.removed]) {
      if (v !== undefined) seen.set(v, parseQemuVersion(v));
    }
  };
  for (const d of m.definitions) {
    add(d);
    if (d.kind === "struct") d.members.forEach(add);
    if (d.kind === "enum") d.values.forEach(add);
    if (d.kind === "union" || d.kind === "alternate") d.branches.forEach(add);
  }
  return [...seen.values()];
}

/**
 * References that do not resolve in release `v`: a member, base or branch present in `v` whose
 * type `v` lacks (the version queries would then silently drop it), or a union branch whose tag
 * value `v` lacks. Implicit types (command arguments, event data, union bases) take their
 * owner's dates.
 */
function danglingIn(v: QemuVersion): string[] {
  const out: string[] = [];
  // A name is there when its definition is, or a shape of it (`Shape-of`) that stands in for it.
  const has = (name: string) => {
    const d = index.get(name);
    if (d !== undefined && (d.implicit === true || presentIn(d, v))) return true;
    return model.definitions.some((x) => x.shapeOf === name && presentIn(x, v));
  };
  const checkObject = (name: string, where: string) => {
    const d = index.get(name);
    if (d === undefined) return;
    if (d.kind === "struct") {
      if (d.base !== undefined && !has(d.base)) out.push(`${where}: base ${d.base}`);
      for (const m of d.members) {
        if (presentIn(m, v) && !has(m.type.name)) out.push(`${where}.${m.name}: ${m.type.name}`);
      }
    }
    if (d.kind === "union") {
      checkObject(d.base, where);
      const tag = index.objectMembers(d.base).find((m) => m.name === d.discriminator);
      const tagEnum = tag === undefined ? undefined : index.get(tag.type.name);
      for (const b of d.branches) {
        const value =
          tagEnum?.kind === "enum" ? tagEnum.values.find((x) => x.name === b.name) : undefined;
        const valuePresent = value !== undefined && presentIn(value, v);
        const typePresent = has(b.type.name);
        if (valuePresent !== typePresent) {
          out.push(
            `${where}{${b.name}}: tag value ${valuePresent ? "present" : "absent"}, type ${b.type.name} ${typePresent ? "present" : "absent"}`,
          );
        }
      }
    }
  };
  for (const d of model.definitions) {
    if (d.implicit || !presentIn(d, v)) continue;
    if (d.kind === "struct" || d.kind === "union") checkObject(d.name, d.name);
    if (d.kind === "event" && d.data !== undefined) checkObject(d.data, d.name);
    if (d.kind === "command") {
      if (d.args !== undefined) checkObject(d.args, d.name);
      if (d.returns !== undefined && !has(d.returns.name)) {
        out.push(`${d.name} returns ${d.returns.name}`);
      }
    }
  }
  return out;
}

test("should resolve every reference in every release that has it", () => {
  const versions = mentionedVersions(model);
  assert.ok(versions.length > 20, `only ${versions.length} versions mentioned`);
  const problems = versions.flatMap((v) =>
    danglingIn(v).map((p) => `${formatQemuVersion(v)}: ${p}`),
  );
  assert.deepEqual(problems, []);
});

test("should never date a member before its definition or a removal before an addition", () => {
  const problems: string[] = [];
  const older = (a: string, b: string) =>
    compareQemuVersions(parseQemuVersion(a), parseQemuVersion(b));
  const check = (owner: Versioned & { name: string }, x: Versioned & { name: string }) => {
    if (x.since !== undefined && owner.since !== undefined && older(x.since, owner.since) < 0) {
      problems.push(`${owner.name}.${x.name}: since ${x.since} before ${owner.since}`);
    }
    const since = x.since ?? owner.since;
    if (x.removed !== undefined && since !== undefined && older(x.removed, since) <= 0) {
      problems.push(`${owner.name}.${x.name}: removed ${x.removed}, since ${since}`);
    }
  };
  for (const d of model.definitions) {
    check({ name: "", since: undefined }, d);
    if (d.kind === "struct") for (const m of d.members) check(d, m);
    if (d.kind === "enum") for (const m of d.values) check(d, m);
  }
  assert.deepEqual(problems, []);
});

/**
 * Facts from the seeds carry over, their sentences do not (team brief): no run of eight words of
 * the catalogue's comments may occur in a seed. Example data counts too.
 */
test("should not copy the seeds' sentences into the documentation", (t) => {
  const seedsDir = fileURLToPath(new URL("../../shared/seeds/", import.meta.url));
  if (!existsSync(seedsDir)) {
    t.skip(`seeds not found at ${seedsDir}`);
    return;
  }
  const words = (text: string) =>
    text
      .toLowerCase()
      .replace(/[^a-z0-9\s]/g, "")
      .split(/\s+/)
      .filter((w) => w !== "");
  const seedText = readdirSync(seedsDir)
    .filter((f) => f.endsWith(".txt"))
    .map((f) =>
      readFileSync(join(seedsDir, f), "utf8")
        .split("\n")
        // Strip the mirrors' decorations: table borders, line numbers, comment marks.
        .map((l) => l.replace(/^\s*\|?\s*\d*\s*\|?\s*#?/, "").replace(/[\s|]+$/, ""))
        .join("\n"),
    )
    .join("\n");
  const seed = ` ${words(seedText).join(" ")} `;
  const copied: string[] = [];
  for (const file of readdirSync(schemaDir).filter((f) => f.endsWith(".json"))) {
    const comments = readFileSync(join(schemaDir, file), "utf8")
      .split("\n")
      .filter((l) => l.trimStart().startsWith("#"))
      .map((l) => l.trimStart().replace(/^#+/, ""))
      .join("\n");
    const w = words(comments);
    for (let i = 0; i + 8 <= w.length; i++) {
      const run = w.slice(i, i + 8).join(" ");
      if (seed.includes(` ${run} `)) copied.push(`${file}: ${run}`);
    }
  }
  assert.deepEqual(copied, []);
});
