/**
 * The Node implementation of the schema layer's injected file access (`ReadFile`).
 * The only file of `src/schema` that touches `node:*`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import type { ReadFile } from "./parser.js";

/** Read a schema file as UTF-8 text. */
export const readFileNode: ReadFile = (path) => readFileSync(path, "utf8");
