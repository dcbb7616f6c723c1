/**
 * The layering rule of DESIGN.md, checked on the import graph of src/:
 * base → schema → generated → wire → client | server → sim → cli, imports pointing downward only;
 * client and server never import each other; the pure core imports no `node:*` module.
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
  cli: 6,
  ".": 7,
};

/** Pure modules: no `node:*` imports (DESIGN.md principle 4). */
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
      if (!spec.startsWith(".")) continue;
      const target = relative(root, join(root, file, "..", spec));
      const to = layerOf(target);
      if (file.endsWith(".test.ts")) continue;
      if ((from === "client" && to === "server") || (from === "server" && to === "client")) {
        problems.push(`${file}: ${from} must not import ${to} (${spec})`);
      } else if ((rank[to] ?? 99) > (rank[from] ?? -1)) {
        problems.push(`${file}: ${from} must not import the higher layer ${to} (${spec})`);
      }
    }
  }
  return problems;
}

suite("architecture", () => {
  test("should keep every import of src/ pointing down the layers", () => {
    const files = new Map(sourceFiles(root).map((f) => [f, readFileSync(join(root, f), "utf8")]));
    assert.ok(files.size > 0);
    assert.deepEqual(layerViolations(files), []);
  });

  test("should catch an upward import, a client/server import and node:* in the pure core", () => {
    const files = new Map([
      ["wire/framing.ts", 'import { QmpClient } from "../client/client.js";'],
      ["client/x.ts", 'import { QmpServer } from "../server/server.js";'],
      ["schema/parser.ts", 'import { readFileSync } from "node:fs";'],
      ["sim/machine.ts", 'import { QmpServer } from "../server/index.js";'],
    ]);
    assert.deepEqual(layerViolations(files), [
      "wire/framing.ts: wire must not import the higher layer client (../client/client.js)",
      "client/x.ts: client must not import server (../server/server.js)",
      "schema/parser.ts: pure module imports node:fs",
    ]);
  });
});
