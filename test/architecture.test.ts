/**
 * The layering rule of docs/design.md, checked on the import graph of src/:
 * base → schema → generated → wire → client | server → sim | journal → fleet → web → cli, imports pointing
 * downward only; client and server never import each other, nor sim and journal; the pure core
 * imports no `node:*` module; native dependencies (better-sqlite3) stay in the layers that need
 * them, so that `import { QmpClient } from "qmpkit"` stays light; no two modules of src/ import
 * each other, directly or round a longer loop.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { suite, test } from "node:test";

const root = new URL("../src/", import.meta.url).pathname;

/** Rank of each layer: a module may import only from layers of lower or equal rank. */
const rank: Record<string, number> = {
  base: 0,
  schema: 1,
  generated: 2,
  qemu: 2,
  wire: 3,
  client: 4,
  server: 4,
  sim: 5,
  journal: 5,
  fleet: 6,
  web: 7,
  cli: 8,
  ".": 9,
};

/** Layers beside each other that must not import one another. */
const apart: ReadonlyArray<readonly [string, string]> = [
  ["client", "server"],
  ["sim", "journal"],
];

/** Packages only some layers may import (heavy or native), with the lowest layer allowed. */
const heavy: Record<string, string> = {
  "better-sqlite3": "journal",
  "@nats-io/transport-node": "fleet",
  "@nats-io/jetstream": "fleet",
  "@nats-io/kv": "fleet",
  hono: "web",
  "@hono/node-server": "web",
  "prom-client": "web",
  esbuild: "web",
  uplot: "web",
};

/** Pure modules: no `node:*` imports (docs/design.md principle 4). */
function mustBePure(file: string): boolean {
  if (file.endsWith(".test.ts") || file.endsWith("-node.ts")) return false;
  return (
    file.startsWith("base/") ||
    file.startsWith("schema/") ||
    file.startsWith("generated/") ||
    /^wire\/json-/.test(file) ||
    file === "sim/run-state.ts"
  );
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [relative(root, path)] : [];
  });
}

function layerOf(file: string): string {
  const first = file.split("/")[0]!;
  return file.includes("/") ? first : ".";
}

function importsOf(text: string): string[] {
  const found: string[] = [];
  const pattern =
    /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
  for (const match of text.matchAll(pattern)) found.push((match[1] ?? match[2])!);
  return found;
}

export function layerViolations(files: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [file, text] of files) {
    const from = layerOf(file);
    for (const spec of importsOf(text)) {
      if (spec.startsWith("node:")) {
        if (mustBePure(file)) problems.push(`${file}: pure module imports ${spec}`);
        continue;
      }
      if (!spec.startsWith(".")) {
        // `hono/streaming` is the package `hono`; `@hono/node-server/x` is `@hono/node-server`.
        const parts = spec.split("/");
        const allowed = heavy[parts.slice(0, spec.startsWith("@") ? 2 : 1).join("/")];
        if (allowed !== undefined && from !== allowed && (rank[from] ?? -1) <= rank[allowed]!)
          problems.push(`${file}: ${from} must not import ${spec} (only ${allowed} and above)`);
        continue;
      }
      const target = relative(root, join(root, file, "..", spec));
      const to = layerOf(target);
      if (file.endsWith(".test.ts")) continue;
      if (apart.some(([a, b]) => (from === a && to === b) || (from === b && to === a))) {
        problems.push(`${file}: ${from} must not import ${to} (${spec})`);
      } else if ((rank[to] ?? 99) > (rank[from] ?? -1)) {
        problems.push(`${file}: ${from} must not import the higher layer ${to} (${spec})`);
      }
    }
  }
  return problems;
}

/** The module an import specifier of `file` names, relative to src/ (`.js` read as `.ts`). */
function resolveImport(file: string, spec: string): string {
  return relative(root, join(root, file, "..", spec)).replace(/\.js$/, ".ts");
}

/**
 * Every import cycle among `files` (test files left out): each strongly connected component of
 * the import graph with more than one module, as its modules in sorted order (Tarjan's
 * algorithm), so a cycle is reported once however many loops run through it.
 */
export function importCycles(files: Map<string, string>): string[][] {
  const edges = new Map<string, string[]>();
  for (const [file, text] of files) {
    if (file.endsWith(".test.ts")) continue;
    const targets = importsOf(text)
      .filter((spec) => spec.startsWith("."))
      .map((spec) => resolveImport(file, spec))
      .filter((target) => files.has(target));
    edges.set(file, targets);
  }
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    order.set(file, order.size);
    low.set(file, order.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const next of edges.get(file) ?? []) {
      if (!edges.has(next)) continue;
      if (!order.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file)!, order.get(next)!));
      }
    }
    if (low.get(file) !== order.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || (edges.get(file) ?? []).includes(file)) {
      cycles.push(component.sort());
    }
  };
  for (const file of [...edges.keys()].sort()) if (!order.has(file)) visit(file);
  return cycles.sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

suite("architecture", () => {
  test("should keep every import of src/ pointing down the layers", () => {
    const files = new Map(sourceFiles(root).map((f) => [f, readFileSync(join(root, f), "utf8")]));
    assert.ok(files.size > 0);
    assert.deepEqual(layerViolations(files), []);
  });

  test("should have no import cycle in src/", () => {
    const files = new Map(sourceFiles(root).map((f) => [f, readFileSync(join(root, f), "utf8")]));
    assert.deepEqual(
      importCycles(files).map((c) => c.join(" ↔ ")),
      [],
    );
  });

  test("should find a two-module cycle, a longer loop and a self-import, and nothing else", () => {
    const files = new Map([
      ["schema/a.ts", 'import { b } from "./b.js";'],
      ["schema/b.ts", 'import type { A } from "./a.js";'],
      ["sim/x.ts", 'export { y } from "./y.js";'],
      ["sim/y.ts", 'import { z } from "../sim/z.js";'],
      ["sim/z.ts", 'const x = await import("./x.js");'],
      ["wire/self.ts", 'import { self } from "./self.js";'],
      ["wire/leaf.ts", 'import { a } from "../schema/a.js";\nimport { x } from "../sim/x.js";'],
      ["wire/leaf.test.ts", 'import { leaf } from "./leaf.js";'],
      ["wire/uses-test.ts", 'import { t } from "./leaf.test.js";'],
    ]);
    assert.deepEqual(importCycles(files), [
      ["schema/a.ts", "schema/b.ts"],
      ["sim/x.ts", "sim/y.ts", "sim/z.ts"],
      ["wire/self.ts"],
    ]);
  });

  test("should catch an upward import, a client/server import and node:* in the pure core", () => {
    const files = new Map([
      ["wire/framing.ts", 'import { QmpClient } from "../client/client.js";'],
      ["client/x.ts", 'import { QmpServer } from "../server/server.js";'],
      ["schema/parser.ts", 'import { readFileSync } from "node:fs";'],
      ["sim/machine.ts", 'import { QmpServer } from "../server/index.js";'],
      ["journal/recorder.ts", 'import type { QmpClient } from "../client/index.js";'],
      ["journal/x.ts", 'import { SimulatedMachine } from "../sim/index.js";'],
      ["sim/y.ts", 'import { Journal } from "../journal/index.js";'],
      ["client/db.ts", 'import Database from "better-sqlite3";'],
      ["sim/db.ts", 'import Database from "better-sqlite3";'],
      ["journal/journal.ts", 'import Database from "better-sqlite3";'],
      ["cli/record.ts", 'const { Journal } = await import("../journal/index.js");'],
    ]);
    assert.deepEqual(layerViolations(files), [
      "wire/framing.ts: wire must not import the higher layer client (../client/client.js)",
      "client/x.ts: client must not import server (../server/server.js)",
      "schema/parser.ts: pure module imports node:fs",
      "journal/x.ts: journal must not import sim (../sim/index.js)",
      "sim/y.ts: sim must not import journal (../journal/index.js)",
      "client/db.ts: client must not import better-sqlite3 (only journal and above)",
      "sim/db.ts: sim must not import better-sqlite3 (only journal and above)",
    ]);
  });

  test("should keep the root entry point free of the journal and its native SQLite", () => {
    // What `import "qmpkit"` loads: src/index.ts and everything it imports, statically.
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(join(root, file), "utf8");
      const pattern = /(?:import|export)\s(?!type\s)[^'"]*?from\s*["']([^"']+)["']/g;
      for (const [, spec] of text.matchAll(pattern)) {
        assert.ok(!spec!.includes("better-sqlite3"), `${file} imports ${spec}`);
        if (spec!.startsWith("."))
          visit(relative(root, join(root, file, "..", spec!)).replace(/\.js$/, ".ts"));
      }
    };
    visit("index.ts");
    assert.ok(seen.has("client/index.ts") && seen.has("sim/index.ts"), "the walk follows imports");
    assert.deepEqual(
      [...seen].filter((f) => f.startsWith("journal/")),
      [],
    );
  });
});
