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
  "web",
  "cli",
]) {
  const module = await import(`qmpkit/${layer}`);
  assert.ok(Object.keys(module).length > 0, `qmpkit/${layer} exports something`);
}
for (const release of ["7.2", "10.0"]) {
  const module = await import(`qmpkit/qemu/${release}`);
  assert.ok(Array.isArray(module.qmpCommandNames), `qmpkit/qemu/${release} lists its commands`);
}
const sim = await import("qmpkit/sim");
assert.deepEqual(sim.recordedVersions().sort(), ["10.0.2", "7.2.22"], "the profiles ship");
assert.ok(sim.recordedProfile("7.2.22").records.length > 40, "a shipped profile loads from dist/");
const web = await import("qmpkit/web");
const assets = await web.loadPageAssets();
assert.ok(
  ["index.html", "app.js", "app.css"].every((f) => assets.get(f)?.body.length > 0),
  "the dashboard's page ships built (dist/web/page/)",
);
const help = execFileSync(process.execPath, ["bin/qmpkit.js", "--help"], { encoding: "utf8" });
assert.match(help, /^Usage: qmpkit /);
const version = execFileSync(process.execPath, ["bin/qmpkit-qemu.js", "-version"], {
  encoding: "utf8",
});
assert.match(version, /QEMU emulator version/);
console.log("package check: exports resolve to dist/, the page ships built, both bins start");
