/**
 * One call from a schema file to a checked model.
 *
 * @module
 */
import { buildModel, type CheckOptions } from "./check.js";
import type { SchemaModel } from "./model.js";
import { type ParsedSchema, parseSchema, type ReadFile } from "./parser.js";

/** Options of {@link loadSchema}. */
export interface LoadSchemaOptions extends CheckOptions {
  /** How to read files: `readFileNode` (from `qmpkit/schema` `read-file-node.ts`) or your own. */
  readonly readFile: ReadFile;
}

/** The result of {@link loadSchema}. */
export interface LoadedSchema {
  readonly parsed: ParsedSchema;
  readonly model: SchemaModel;
}

/**
 * Parse `file` with its includes and check it.
 * @throws SchemaError (`file:line:col: message`, with the include chain) on the first problem.
 */
export function loadSchema(file: string, options: LoadSchemaOptions): LoadedSchema {
  const parsed = parseSchema(file, { readFile: options.readFile });
  const model = buildModel(parsed, options);
  return { parsed, model };
}
