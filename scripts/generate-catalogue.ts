/**
 * Shared by `gen.ts` and `check-generated.ts`: the catalogue schema → generated files, in memory.
 * Paths are relative to the repository root so that the output does not depend on where the
 * checkout lives.
 */
import { fileURLToPath } from "node:url";
import { generateTypeScript } from "../src/schema/codegen/generate.js";
import type { GeneratedFile } from "../src/schema/codegen/printer.js";
import { loadSchema } from "../src/schema/load.js";
import { readFileNode } from "../src/schema/read-file-node.js";

/** The schema the project generates from. */
export const catalogueSchema = "schema/qapi/qapi-schema.json";
/** Where the generated files go. */
export const generatedDir = "src/generated";

/** Generate the files for the catalogue; run from the repository root. */
export function generateFromCatalogue(): GeneratedFile[] {
  process.chdir(fileURLToPath(new URL("..", import.meta.url)));
  // The catalogue is held to the strictest rules: modern names, every member documented.
  const { model } = loadSchema(catalogueSchema, {
    readFile: readFileNode,
    naming: "strict",
    memberDocs: "require",
  });
  return generateTypeScript(model, { source: catalogueSchema });
}
