/**
 * The QAPI schema toolchain: parser, checker, model, introspection and code generation.
 * Pure: imports no `node:*` module (file access is injected).
 * @module
 */
export type * from "./validator.js";
