/**
 * `npm run gen`: regenerate `src/generated/` from `schema/qapi/qapi-schema.json`.
 * `npm run gen -- --from-git REV` reads the schema as committed at REV (e.g. `HEAD`) instead of
 * the work tree, so that uncommitted schema edits do not leak into committed output.
 * The work is `generateFromCatalogue()` (also used by `check-generated.ts`); this file writes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isSchemaError } from "../src/base/errors.js";
import { formatSchemaError } from "../src/schema/source.js";
import { generatedDir, generateFromCatalogue, readFileAtRevision } from "./generate-catalogue.js";
import { generateReleaseTypes } from "./release-schemas.js";

const at = process.argv.indexOf("--from-git");
const revision = at >= 0 ? process.argv[at + 1] : undefined;
if (at >= 0 && revision === undefined) throw new Error("--from-git needs a revision, e.g. HEAD");

try {
  const files = [
    ...generateFromCatalogue(revision === undefined ? undefined : readFileAtRevision(revision)),
    // Every command and event of the recorded QEMU releases (schema/releases/).
    ...generateReleaseTypes(),
  ];
  for (const f of files) {
    mkdirSync(dirname(join(generatedDir, f.name)), { recursive: true });
    writeFileSync(join(generatedDir, f.name), f.content());
  }
  console.log(`generated ${files.map((f) => join(generatedDir, f.name)).join(", ")}`);
} catch (e) {
  if (!isSchemaError(e)) throw e;
  console.error(formatSchemaError(e));
  process.exitCode = 1;
}
