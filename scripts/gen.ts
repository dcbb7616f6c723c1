/**
 * `npm run gen`: regenerate `src/generated/` from `schema/qapi/qapi-schema.json`.
 * The work is `generateFromCatalogue()` (also used by `check-generated.ts`); this file writes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isSchemaError } from "../src/base/errors.js";
import { formatSchemaError } from "../src/schema/source.js";
import { generatedDir, generateFromCatalogue } from "./generate-catalogue.js";

try {
  const files = generateFromCatalogue();
  mkdirSync(generatedDir, { recursive: true });
  for (const f of files) writeFileSync(join(generatedDir, f.name), f.content());
  console.log(`generated ${files.map((f) => join(generatedDir, f.name)).join(", ")}`);
} catch (e) {
  if (!isSchemaError(e)) throw e;
  console.error(formatSchemaError(e));
  process.exitCode = 1;
}
