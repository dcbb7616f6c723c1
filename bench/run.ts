/**
 * Runs every benchmark in `bench/` (each `*.ts` file except this one), one after the other in
 * its own process so that they do not disturb each other, and prints what each reports (their
 * ratios, measured side by side within each run). `npm run bench`.
 *
 * Run: `npx tsx bench/run.ts [name-filter]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const self = basename(fileURLToPath(import.meta.url));
const filter = process.argv[2];

const benches = readdirSync(here)
  .filter((name) => name.endsWith(".ts") && name !== self && !name.endsWith(".d.ts"))
  .filter((name) => filter === undefined || name.includes(filter))
  .sort();

let failed = 0;
for (const name of benches) {
  console.log(`\n=== ${name} ===`);
  const started = Date.now();
  const result = spawnSync(process.execPath, ["--import", "tsx", join(here, name)], {
    stdio: "inherit",
    cwd: dirname(here),
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    failed++;
    console.log(`--- ${name} FAILED (exit ${result.status ?? result.signal}) after ${seconds} s`);
  } else {
    console.log(`--- ${name} done in ${seconds} s`);
  }
}
if (failed > 0) process.exitCode = 1;
