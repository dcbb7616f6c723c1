/**
 * Shared by `gen.ts` and `check-generated.ts`: the catalogue schema → generated files, in memory.
 * Paths are relative to the repository root so that the output does not depend on where the
 * checkout lives.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { generateTypeScript } from "../src/schema/codegen/generate.js";
import type { GeneratedFile } from "../src/schema/codegen/printer.js";
import { loadSchema } from "../src/schema/load.js";
import type { ReadFile } from "../src/schema/parser.js";
import { readFileNode } from "../src/schema/read-file-node.js";

/** Read schema files as committed at `revision` (`git show REV:PATH`), not as in the work tree. */
export function readFileAtRevision(revision: string): ReadFile {
  return (path) =>
    execFileSync("git", ["show", `${revision}:${path}`], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
}

/** The schema the project generates from. */
export const catalogueSchema = "schema/qapi/qapi-schema.json";
/** Where the generated files go. */
export const generatedDir = "src/generated";

/**
 * Generate the files for the catalogue (paths relative to the repository root). `readFile`
 * defaults to the working tree; `readFileAtRevision("HEAD")` reads the committed schema instead.
 */
export function generateFromCatalogue(readFile: ReadFile = readFileNode): GeneratedFile[] {
  process.chdir(fileURLToPath(new URL("..", import.meta.url)));
  // The catalogue is held to the strictest rules: modern names, every member documented.
  const { model } = loadSchema(catalogueSchema, {
    readFile,
    naming: "strict",
    memberDocs: "require",
  });
  return generateTypeScript(model, { source: catalogueSchema });
}
