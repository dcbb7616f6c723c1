/**
 * The catalogue against a real QEMU 7.2 (issue 3 §3): for every command and event that both the
 * catalogue (introspected for QEMU 7.2.22) and a live QEMU define, the argument, result and data
 * types must be structurally equal once QEMU's numbered type names are resolved: member names,
 * member order, optionality, member and entity features, enum values in order, union tags and
 * branches, alternates and arrays.
 *
 * The comparison below is written independently of the toolchain's `compareSchemaInfo`, so that
 * a bug there cannot hide a difference in the catalogue; the live test checks that both agree.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  compareSchemaInfo,
  createVersionQueries,
  introspect,
  loadSchema,
  type SchemaInfo,
} from "../src/schema/index.js";
import { readFileNode } from "../src/schema/read-file-node.js";
import { DEBIAN_BUILD } from "../src/sim/versions.js";
import { QEMU_10, RawQmp, realQemuTest, startQemu } from "./support/real-qemu.js";

/** One entry of a `query-qmp-schema` answer, loosely typed (the answer is JSON from a peer). */
interface SchemaInfoEntry {
  readonly name: string;
  readonly "meta-type": string;
  readonly features?: readonly string[] | undefined;
  readonly [key: string]: unknown;
}

/** A type with every reference followed; `ref` marks a type already being expanded (recursion). */
type Shape =
  | { readonly kind: "builtin"; readonly json: string }
  | { readonly kind: "enum"; readonly values: readonly string[] }
  | { readonly kind: "array"; readonly element: Shape }
  | { readonly kind: "alternate"; readonly members: readonly Shape[] }
  | {
      readonly kind: "object";
      readonly members: readonly ShapeMember[];
      readonly tag?: string | undefined;
      readonly variants?: ReadonlyMap<string, Shape> | undefined;
      readonly features: readonly string[];
    }
  | { readonly kind: "ref" };

interface ShapeMember {
  readonly name: string;
  readonly optional: boolean;
  readonly features: readonly string[];
  readonly type: Shape;
}

interface ObjectEntry {
  readonly members: readonly {
    name: string;
    type: string;
    default?: unknown;
    features?: readonly string[];
  }[];
  readonly tag?: string;
  readonly variants?: readonly { case: string; type: string }[];
}

/** Index of an answer by name; a name given twice is an error in the answer. */
function indexSchema(entries: readonly SchemaInfoEntry[]): Map<string, SchemaInfoEntry> {
  const byName = new Map<string, SchemaInfoEntry>();
  for (const e of entries) {
    if (byName.has(e.name))
      throw new Error(`query-qmp-schema answer: name ${JSON.stringify(e.name)} appears twice`);
    byName.set(e.name, e);
  }
  return byName;
}

/** The shape of the type named `name`, following references (each type once per path). */
function shapeOf(
  byName: ReadonlyMap<string, SchemaInfoEntry>,
  name: string,
  seen: ReadonlySet<string> = new Set(),
): Shape {
  const e = byName.get(name);
  if (e === undefined)
    throw new Error(
      `query-qmp-schema answer: type ${JSON.stringify(name)} is referenced but not defined`,
    );
  switch (e["meta-type"]) {
    case "builtin":
      return { kind: "builtin", json: String(e["json-type"]) };
    case "enum":
      return { kind: "enum", values: [...(e.values as string[])] };
    case "array":
      return { kind: "array", element: shapeOf(byName, String(e["element-type"]), seen) };
    case "alternate":
      return {
        kind: "alternate",
        members: (e.members as { type: string }[]).map((m) => shapeOf(byName, m.type, seen)),
      };
    case "object": {
      if (seen.has(name)) return { kind: "ref" };
      const inner = new Set(seen).add(name);
      const o = e as unknown as ObjectEntry;
      return {
        kind: "object",
        members: o.members.map((m) => ({
          name: m.name,
          // QEMU marks an optional member by a `default` of null (introspect.json).
          optional: "default" in m,
          features: [...(m.features ?? [])].sort(),
          type: shapeOf(byName, m.type, inner),
        })),
        tag: o.tag,
        variants:
          o.variants === undefined
            ? undefined
            : new Map(o.variants.map((v) => [v.case, shapeOf(byName, v.type, inner)] as const)),
        features: [...(e.features ?? [])].sort(),
      };
    }
    default:
      throw new Error(
        `query-qmp-schema answer: ${name} has unexpected meta-type ${e["meta-type"]}`,
      );
  }
}

/** Every structural difference between `a` (the catalogue) and `b` (QEMU), as "path: what". */
function diffShapes(a: Shape, b: Shape, path: string, out: string[] = []): string[] {
  if (a.kind !== b.kind) {
    out.push(`${path}: ${a.kind} in the catalogue, ${b.kind} in QEMU`);
    return out;
  }
  switch (a.kind) {
    case "builtin":
      if (b.kind === "builtin" && a.json !== b.json)
        out.push(`${path}: ${a.json} in the catalogue, ${b.json} in QEMU`);
      break;
    case "enum":
      if (b.kind === "enum" && a.values.join() !== b.values.join())
        out.push(
          `${path}: values [${a.values.join(", ")}] in the catalogue, [${b.values.join(", ")}] in QEMU`,
        );
      break;
    case "array":
      if (b.kind === "array") diffShapes(a.element, b.element, `${path}[]`, out);
      break;
    case "alternate":
      if (b.kind === "alternate") {
        if (a.members.length !== b.members.length)
          out.push(
            `${path}: alternate of ${a.members.length} in the catalogue, ${b.members.length} in QEMU`,
          );
        else
          a.members.forEach((m, i) => {
            diffShapes(m, b.members[i] as Shape, `${path}|${i}`, out);
          });
      }
      break;
    case "object":
      if (b.kind === "object") diffObjects(a, b, path, out);
      break;
    case "ref":
      break;
  }
  return out;
}

function diffObjects(
  a: Extract<Shape, { kind: "object" }>,
  b: Extract<Shape, { kind: "object" }>,
  path: string,
  out: string[],
): void {
  const bm = new Map(b.members.map((m) => [m.name, m]));
  const am = new Map(a.members.map((m) => [m.name, m]));
  for (const m of a.members)
    if (!bm.has(m.name)) out.push(`${path}.${m.name}: only in the catalogue`);
  for (const m of b.members) if (!am.has(m.name)) out.push(`${path}.${m.name}: only in QEMU`);
  for (const m of a.members) {
    const q = bm.get(m.name);
    if (q === undefined) continue;
    if (m.optional !== q.optional)
      out.push(
        `${path}.${m.name}: ${m.optional ? "optional" : "mandatory"} in the catalogue, ${q.optional ? "optional" : "mandatory"} in QEMU`,
      );
    if (m.features.join() !== q.features.join())
      out.push(
        `${path}.${m.name}: features [${m.features.join(", ")}] in the catalogue, [${q.features.join(", ")}] in QEMU`,
      );
    diffShapes(m.type, q.type, `${path}.${m.name}`, out);
  }
  if (a.features.join() !== b.features.join())
    out.push(
      `${path}: features [${a.features.join(", ")}] in the catalogue, [${b.features.join(", ")}] in QEMU`,
    );
  if (a.tag !== b.tag)
    out.push(`${path}: tag ${a.tag ?? "none"} in the catalogue, ${b.tag ?? "none"} in QEMU`);
  const av = a.variants ?? new Map<string, Shape>();
  const bv = b.variants ?? new Map<string, Shape>();
  for (const [c, s] of av) {
    const q = bv.get(c);
    if (q === undefined) out.push(`${path}: variant ${c} only in the catalogue`);
    else diffShapes(s, q, `${path}{${c}}`, out);
  }
  for (const c of bv.keys()) if (!av.has(c)) out.push(`${path}: variant ${c} only in QEMU`);
}

/**
 * Compare every command and event the two answers share: argument, result and data types
 * structurally, plus `allow-oob` and the entity's features. Returns the names compared, the
 * names only one side has, and the differences found.
 */
function compareSchemas(
  catalogue: readonly SchemaInfoEntry[],
  qemu: readonly SchemaInfoEntry[],
): { compared: string[]; onlyCatalogue: string[]; onlyQemu: string[]; differences: string[] } {
  const a = indexSchema(catalogue);
  const b = indexSchema(qemu);
  const roots = (m: Map<string, SchemaInfoEntry>) =>
    [...m.values()]
      .filter((e) => e["meta-type"] === "command" || e["meta-type"] === "event")
      .map((e) => e.name);
  const compared: string[] = [];
  const onlyCatalogue: string[] = [];
  const differences: string[] = [];
  for (const name of roots(a)) {
    const x = a.get(name) as SchemaInfoEntry;
    const y = b.get(name);
    if (y === undefined) {
      onlyCatalogue.push(name);
      continue;
    }
    compared.push(name);
    if (x["meta-type"] !== y["meta-type"]) {
      differences.push(`${name}: ${x["meta-type"]} in the catalogue, ${y["meta-type"]} in QEMU`);
      continue;
    }
    diffShapes(
      shapeOf(a, String(x["arg-type"])),
      shapeOf(b, String(y["arg-type"])),
      `${name}(${x["meta-type"] === "event" ? "data" : "arguments"})`,
      differences,
    );
    if (x["meta-type"] === "command") {
      diffShapes(
        shapeOf(a, String(x["ret-type"])),
        shapeOf(b, String(y["ret-type"])),
        `${name}(returns)`,
        differences,
      );
      if (Boolean(x["allow-oob"]) !== Boolean(y["allow-oob"]))
        differences.push(`${name}: allow-oob differs`);
    }
    const fx = [...(x.features ?? [])].sort().join();
    const fy = [...(y.features ?? [])].sort().join();
    if (fx !== fy) differences.push(`${name}: features [${fx}] in the catalogue, [${fy}] in QEMU`);
  }
  const onlyQemu = roots(b).filter((n) => !a.has(n));
  return { compared, onlyCatalogue, onlyQemu, differences };
}

// ---- the comparison, checked on small hand-made answers -------------------------------------

/** A hand-made answer: `query-status`-like command and an event, with the given numbering. */
function sampleAnswer(n: (i: number) => string, singlestepOptional = false): SchemaInfoEntry[] {
  return [
    { name: "query-status", "meta-type": "command", "arg-type": n(0), "ret-type": n(1) },
    { name: "SHUTDOWN", "meta-type": "event", "arg-type": n(2) },
    { name: n(0), "meta-type": "object", members: [] },
    {
      name: n(1),
      "meta-type": "object",
      members: [
        { name: "running", type: "bool" },
        singlestepOptional
          ? { name: "singlestep", type: "bool", default: null }
          : { name: "singlestep", type: "bool" },
        { name: "status", type: n(3) },
      ],
    },
    {
      name: n(2),
      "meta-type": "object",
      members: [
        { name: "guest", type: "bool" },
        { name: "reason", type: n(4) },
      ],
    },
    { name: n(3), "meta-type": "enum", values: ["running", "paused"] },
    { name: n(4), "meta-type": "enum", values: ["host-qmp-quit", "guest-shutdown"] },
    { name: "bool", "meta-type": "builtin", "json-type": "boolean" },
  ];
}

test("should find two answers equal when only their type numbering differs", () => {
  const r = compareSchemas(
    sampleAnswer((i) => String(i)),
    sampleAnswer((i) => String(40 - i)),
  );
  assert.deepEqual(r.compared.sort(), ["SHUTDOWN", "query-status"]);
  assert.deepEqual(r.differences, []);
});

test("should report a member whose optionality differs, with its path", () => {
  const r = compareSchemas(
    sampleAnswer((i) => String(i)),
    sampleAnswer((i) => String(i), true),
  );
  assert.deepEqual(r.differences, [
    "query-status(returns).singlestep: mandatory in the catalogue, optional in QEMU",
  ]);
});

test("should report enum values, missing members and extra entities", () => {
  const qemu = sampleAnswer((i) => `q${i}`);
  const catalogue = sampleAnswer((i) => `c${i}`).map((e) => {
    if (e.name === "c4") return { ...e, values: ["host-qmp-quit"] };
    if (e.name === "c2") return { ...e, members: [{ name: "guest", type: "bool" }] };
    return e;
  });
  catalogue.push({ name: "GUEST_PVSHUTDOWN", "meta-type": "event", "arg-type": "c0" });
  const r = compareSchemas(catalogue, qemu);
  assert.deepEqual(r.onlyCatalogue, ["GUEST_PVSHUTDOWN"]);
  assert.deepEqual(r.differences, ["SHUTDOWN(data).reason: only in QEMU"]);
  const r2 = compareSchemas(
    sampleAnswer((i) => `c${i}`).map((e) =>
      e.name === "c4" ? { ...e, values: ["host-qmp-quit"] } : e,
    ),
    qemu,
  );
  assert.deepEqual(r2.differences, [
    "SHUTDOWN(data).reason: values [host-qmp-quit] in the catalogue, [host-qmp-quit, guest-shutdown] in QEMU",
  ]);
});

// ---- the live check ------------------------------------------------------------------------

test(
  "should match a real QEMU 7.2 structurally for every command and event both define",
  realQemuTest(),
  async (t) => {
    const schemaFile = join(
      fileURLToPath(new URL("../schema/qapi/", import.meta.url)),
      "qapi-schema.json",
    );
    const { model } = loadSchema(schemaFile, { readFile: readFileNode });
    const qemu = await startQemu();
    let live: SchemaInfo[];
    let version: { major: number; minor: number; micro: number };
    try {
      const qmp = await RawQmp.connect(qemu.socketPath);
      const greeting = JSON.parse(await qmp.handshake()) as {
        QMP: { version: { qemu: { major: number; minor: number; micro: number } } };
      };
      version = greeting.QMP.version.qemu;
      qmp.send('{"execute": "query-qmp-schema", "id": "schema"}');
      const reply = await qmp.next(20_000);
      assert.ok(
        reply !== undefined && Array.isArray(reply.return),
        "query-qmp-schema should answer a list",
      );
      live = reply.return as SchemaInfo[];
      qmp.close();
    } finally {
      await qemu.stop();
    }
    if (version.major !== 7 || version.minor !== 2) {
      t.skip(
        `the catalogue is checked against QEMU 7.2; this QEMU is ${version.major}.${version.minor}.${version.micro}`,
      );
      return;
    }
    const release = `${version.major}.${version.minor}.${version.micro}`;
    const catalogue = createVersionQueries(model).introspect(release);
    const r = compareSchemas(
      catalogue as unknown as SchemaInfoEntry[],
      live as unknown as SchemaInfoEntry[],
    );
    // Everything the catalogue says 7.2 has, 7.2 has (its version marks are right for 7.2) ...
    assert.deepEqual(r.onlyCatalogue, []);
    // ... and all of it has QEMU's shape.
    assert.deepEqual(r.differences, []);
    assert.ok(r.compared.length >= 60, `only ${r.compared.length} commands and events compared`);
    for (const name of [
      "SHUTDOWN",
      "GUEST_PANICKED",
      "BLOCK_IO_ERROR",
      "query-status",
      "query-migrate",
      "query-qmp-schema",
    ]) {
      assert.ok(r.compared.includes(name), `${name} should be compared`);
    }
    // The toolchain's own comparison agrees.
    const theirs = compareSchemaInfo(catalogue, live, { features: true, enumOrder: true });
    assert.deepEqual(theirs.differences, []);
    assert.deepEqual([...theirs.compared].sort(), [...r.compared].sort());
  },
);

/**
 * The second release checked live: Debian's QEMU 10.0 (when installed, as in CI). The catalogue's
 * view of 10.0, for Debian's build (`DEBIAN_BUILD`: no QPL, UADK or QATzip, so no such
 * `MultiFDCompression` values), must equal its `query-qmp-schema`. This checks the history the
 * catalogue records between the two releases: what 8.x to 10.0 added and removed, and the
 * changes of shape (`BlockJobInfo` a union from 8.2 through `Shape-of`, `migrate`'s and
 * `migrate-incoming`'s `uri` optional from 9.0 and 8.2 through `(optional since …)`).
 */
test(
  "should match a real QEMU 10.0 structurally for every command and event both define",
  realQemuTest(QEMU_10),
  async (t) => {
    const schemaFile = join(
      fileURLToPath(new URL("../schema/qapi/", import.meta.url)),
      "qapi-schema.json",
    );
    const { model } = loadSchema(schemaFile, { readFile: readFileNode });
    const qemu = await startQemu({ qemu: QEMU_10 });
    let live: SchemaInfo[];
    let version: { major: number; minor: number; micro: number };
    try {
      const qmp = await RawQmp.connect(qemu.socketPath);
      const greeting = JSON.parse(await qmp.handshake()) as {
        QMP: { version: { qemu: { major: number; minor: number; micro: number } } };
      };
      version = greeting.QMP.version.qemu;
      qmp.send('{"execute": "query-qmp-schema", "id": "schema"}');
      const reply = await qmp.next(20_000);
      assert.ok(reply !== undefined && Array.isArray(reply.return));
      live = reply.return as SchemaInfo[];
      qmp.close();
    } finally {
      await qemu.stop();
    }
    if (version.major !== 10 || version.minor !== 0) {
      t.skip(`expected QEMU 10.0, found ${version.major}.${version.minor}.${version.micro}`);
      return;
    }
    const release = `${version.major}.${version.minor}.${version.micro}`;
    const catalogue = createVersionQueries(model).introspect(release, {
      defined: (symbol) => DEBIAN_BUILD.has(symbol),
    });
    const r = compareSchemas(
      catalogue as unknown as SchemaInfoEntry[],
      live as unknown as SchemaInfoEntry[],
    );
    assert.deepEqual(r.onlyCatalogue, []);
    assert.deepEqual(r.differences, []);
    for (const name of [
      "query-migrate",
      "migrate-set-parameters",
      "query-migrate-parameters",
      "query-block-jobs",
      "migrate",
      "migrate-incoming",
    ]) {
      assert.ok(r.compared.includes(name), `${name} should be compared`);
    }
  },
);

/**
 * `allow-preconfig` is not in `query-qmp-schema`, so probe it: during `--preconfig` QEMU refuses
 * a command without it before looking at the arguments (§1.4 step 7), and a command with it then
 * rejects the bogus argument, so nothing runs.
 */
test(
  "should mark allow-preconfig on exactly the commands QEMU 7.2 runs during --preconfig",
  realQemuTest(),
  async (t) => {
    const schemaFile = join(
      fileURLToPath(new URL("../schema/qapi/", import.meta.url)),
      "qapi-schema.json",
    );
    const { model } = loadSchema(schemaFile, { readFile: readFileNode });
    const qemu = await startQemu({ paused: false, args: ["--preconfig"] });
    try {
      const qmp = await RawQmp.connect(qemu.socketPath);
      const greeting = JSON.parse(await qmp.handshake()) as {
        QMP: { version: { qemu: { major: number; minor: number; micro: number } } };
      };
      const v = greeting.QMP.version.qemu;
      if (v.major !== 7 || v.minor !== 2) {
        t.skip(
          `the catalogue is checked against QEMU 7.2; this QEMU is ${v.major}.${v.minor}.${v.micro}`,
        );
        qmp.close();
        return;
      }
      const commands = createVersionQueries(model)
        .modelFor(`${v.major}.${v.minor}.${v.micro}`)
        .definitions.filter((d) => d.kind === "command" && d.name !== "qmp_capabilities");
      const mismatches: string[] = [];
      for (const d of commands) {
        if (d.kind !== "command") continue;
        qmp.send(JSON.stringify({ execute: d.name, arguments: { "x-bogus": 1 } }));
        const reply = await qmp.next();
        assert.ok(reply !== undefined, `${d.name}: no reply`);
        const desc = (reply.error as { desc?: string } | undefined)?.desc ?? "";
        const allowed = !desc.includes("is permitted only after machine initialization");
        if (allowed !== d.allowPreconfig) {
          mismatches.push(`${d.name}: catalogue ${d.allowPreconfig}, QEMU ${allowed} (${desc})`);
        }
      }
      qmp.close();
      assert.ok(commands.length >= 25, `only ${commands.length} commands probed`);
      assert.deepEqual(mismatches, []);
    } finally {
      await qemu.stop();
    }
  },
);

/**
 * QEMU's own schema trees, when `QMPKIT_QEMU_SRC` names some (as for the toolchain's tree tests;
 * QEMU's files are not part of the repository): the catalogue's view of each tree's release
 * must have exactly the catalogue's commands and events that release defines (its Since/Removed
 * marks are right).
 * For a 7.2 tree the shapes must also be equal; for other releases the differences are printed,
 * since the catalogue models 7.2 completely and other releases only where the doc says so. And
 * no run of eight words of the catalogue's comments may occur in the tree's comments.
 */
test("should assign to each QEMU source tree's release exactly what that release defines", async (t) => {
  const trees = (process.env.QMPKIT_QEMU_SRC ?? "").split(":").filter((x) => x !== "");
  if (trees.length === 0) {
    t.skip("QMPKIT_QEMU_SRC is not set: the catalogue is not compared with QEMU source trees");
    return;
  }
  const schemaFile = join(
    fileURLToPath(new URL("../schema/qapi/", import.meta.url)),
    "qapi-schema.json",
  );
  const catalogue = createVersionQueries(loadSchema(schemaFile, { readFile: readFileNode }).model);
  const known = new Set(
    catalogue.model.definitions
      .filter((d) => d.kind === "command" || d.kind === "event")
      .map((d) => d.name),
  );
  for (const tree of trees) {
    const version = readFileSync(join(tree, "VERSION"), "utf8").trim();
    const top = [join(tree, "qapi", "qapi-schema.json"), join(tree, "qapi-schema.json")].find((f) =>
      existsSync(f),
    );
    assert.ok(top !== undefined, `${tree}: no qapi-schema.json`);
    const qemu = introspect(loadSchema(top, { readFile: readFileNode }).model, { version });
    const r = compareSchemas(
      catalogue.introspect(version) as unknown as SchemaInfoEntry[],
      qemu as unknown as SchemaInfoEntry[],
    );
    assert.deepEqual(r.onlyCatalogue, [], `${version}: in the catalogue but not in QEMU's tree`);
    // ... and everything the catalogue knows that the release has, it assigns to the release.
    assert.deepEqual(
      r.onlyQemu.filter((n) => known.has(n)),
      [],
      `${version}: in QEMU's tree, dated elsewhere by the catalogue`,
    );
    assert.ok(r.compared.length > 40, `${version}: only ${r.compared.length} compared`);
    if (version.startsWith("7.2."))
      assert.deepEqual(r.differences, [], `${version}: shapes differ`);
    else for (const d of r.differences) t.diagnostic(`${version}: ${d}`);
    // The catalogue states QEMU's facts in its own words: no run of eight words is QEMU's.
    assert.deepEqual(
      sharedRuns(
        catalogueComments(),
        [...new Set([dirname(top), join(tree, "qapi")])]
          .filter((d) => existsSync(d))
          .flatMap(treeComments),
      ),
      [],
      `${version}: text`,
    );
  }
});

/** The `#` comment text of every `.json` file in `dir`, one string per file. */
function treeComments(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) =>
      readFileSync(join(dir, f), "utf8")
        .split("\n")
        .filter((l) => l.trimStart().startsWith("#"))
        .map((l) => l.trimStart().replace(/^#+/, ""))
        .join("\n"),
    );
}

function catalogueComments(): string[] {
  return treeComments(fileURLToPath(new URL("../schema/qapi/", import.meta.url)));
}

/** Runs of eight words (lower case, letters and digits only) that `ours` shares with `theirs`. */
function sharedRuns(ours: readonly string[], theirs: readonly string[]): string[] {
  const words = (t: string) =>
    t
      .toLowerCase()
      .replace(/[^a-z0-9\s]/g, "")
      .split(/\s+/)
      .filter((w) => w !== "");
  const haystack = ` ${theirs.flatMap(words).join(" ")} `;
  const out: string[] = [];
  for (const text of ours) {
    const w = words(text);
    for (let i = 0; i + 8 <= w.length; i++) {
      const run = w.slice(i, i + 8).join(" ");
      if (haystack.includes(` ${run} `)) out.push(run);
    }
  }
  return out;
}
