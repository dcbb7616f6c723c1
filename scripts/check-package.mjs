// After `npm run build`: the package as users get it. `import "qmpkit"` from inside the
// repository resolves through package.json "exports" to dist/ (no "source" condition here), every
// layer's subpath loads, and both bins start.
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";

const root = await import("qmpkit");
assert.equal(typeof root.QmpClient, "function", "qmpkit exports QmpClient");
assert.equal(typeof root.QmpServer, "function", "qmpkit exports QmpServer");
assert.equal(typeof root.SimulatedMachine, "function", "qmpkit exports SimulatedMachine");
for (const layer of [
  "base",
  "schema",
  "generated",
  "wire",
  "client",
  "server",
  "sim",
  "journal",
  "cli",
]) {
  const module = await import(`qmpkit/${layer}`);
  assert.ok(Object.keys(module).length > 0, `qmpkit/${layer} exports something`);
}
const help = execFileSync(process.execPath, ["bin/qmpkit.js", "--help"], { encoding: "utf8" });
assert.match(help, /^Usage: qmpkit /);
const version = execFileSync(process.execPath, ["bin/qmpkit-qemu.js", "-version"], {
  encoding: "utf8",
});
assert.match(version, /QEMU emulator version/);
console.log("package check: exports resolve to dist/, both bins start");
