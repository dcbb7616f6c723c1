/**
 * Records one QEMU release's complete QMP schema into `schema/releases/qemu-X.Y.Z.json`, from
 * which `npm run gen` types every command and event of that release
 * (`src/generated/releases/`).
 *
 * What it takes: the release's QEMU source tree (its `qapi/` schema, parsed by qmpkit's own
 * QAPI front end) and, to check against, the installed binary of that release. What it writes:
 * facts only, no documentation text:
 * - `schema`: the binary's `query-qmp-schema` answer itself (QEMU masks type names as numbers);
 * - `names`: each masked number → QEMU's type name, found by introspecting the source tree
 *   for the build's configuration and pairing the numbered and unmasked answers entry by entry;
 * - `since`: the release that added each command, event and named type (the schema's `Since:`).
 *
 * The source tree's introspection must equal the binary's answer entry for entry (numbers
 * included), or the script stops: the names are then exactly those of the binary's types. CI
 * compares the recorded `schema` with the live binary on every run
 * (`test/conformance/release-schemas.test.ts`), so drift is caught without the source tree.
 *
 * Usage (Debian's source: `apt-get source qemu` with deb-src lines):
 *   npx tsx scripts/record-release-schema.ts --release 7.2.22 --qemu-src ~/src/qemu-7.2+dfsg \
 *     --binary /usr/bin/qemu-system-x86_64
 *   npx tsx scripts/record-release-schema.ts --release 10.0.2 --qemu-src ~/src/qemu-10.0.2 \
 *     --binary /opt/qemu-10.0/usr/bin/qemu-system-x86_64
 */
import { isDeepStrictEqual } from "node:util";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { JsonValue } from "../src/base/json.js";
import { introspect } from "../src/schema/introspect.js";
import { loadSchema } from "../src/schema/load.js";
import { readFileNode } from "../src/schema/read-file-node.js";
import { liveQmpSchema, QEMU_10, type QemuInstallation } from "../test/support/real-qemu.js";
import { releaseBuilds, releaseSchemaPath, type ReleaseSchemaFile } from "./release-schemas.js";

const { values } = parseArgs({
  options: {
    release: { type: "string" },
    "qemu-src": { type: "string" },
    binary: { type: "string" },
  },
});
const release = values.release;
const tree = values["qemu-src"];
const binary = values.binary;
if (release === undefined || tree === undefined || binary === undefined) {
  console.error("usage: record-release-schema.ts --release X.Y.Z --qemu-src DIR --binary PATH");
  process.exit(2);
}
const build = releaseBuilds[release];
if (build === undefined) {
  console.error(`no build configuration for ${release} in scripts/release-schemas.ts`);
  process.exit(2);
}

const { model } = loadSchema(join(tree, "qapi", "qapi-schema.json"), { readFile: readFileNode });
const options = { version: release, defined: build.defined };
const masked = introspect(model, options);
const unmasked = introspect(model, { ...options, unmask: true });

// The backported 10.0 is unpacked away from its prefix and needs its data directory.
const installation: QemuInstallation =
  binary === QEMU_10.binary ? QEMU_10 : { binary, label: `QEMU ${release}`, installHint: "" };
const live = (await liveQmpSchema(installation)) as JsonValue[];
if (live.length !== masked.length) {
  console.error(
    `the source tree's schema has ${masked.length} entries, the binary's ${live.length}`,
  );
  process.exit(1);
}
for (let i = 0; i < masked.length; i++) {
  if (!isDeepStrictEqual(masked[i], live[i])) {
    console.error(
      `entry ${i} differs:\n  source: ${JSON.stringify(masked[i])}\n  binary: ${JSON.stringify(live[i])}`,
    );
    process.exit(1);
  }
}

// The same walk numbered and unmasked: entry i has the same place in both.
const names: Record<string, string> = {};
for (let i = 0; i < masked.length; i++) {
  const n = masked[i]!.name;
  if (/^\d+$/.test(n)) names[n] = unmasked[i]!.name;
}
const since: Record<string, string> = {};
for (const d of model.definitions) {
  if (d.since !== undefined) since[d.name] = d.since;
}
const file: ReleaseSchemaFile = {
  release,
  build: build.description,
  schema: live,
  names,
  since,
};
writeFileSync(releaseSchemaPath(release), `${JSON.stringify(file, null, 1)}\n`);
console.log(
  `${releaseSchemaPath(release)}: ${live.length} entries, ${Object.keys(names).length} type names, equal to ${binary}`,
);
