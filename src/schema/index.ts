/**
 * The QAPI schema toolchain: parser, checker, model, version queries, introspection (both ways),
 * code generation and the validator runtime. Pure: imports no `node:*` module (file access is
 * injected; `read-file-node.ts` provides the Node implementation).
 * @module
 */
export type * from "./validator.js";
export {
  type CheckOptions,
  buildModel,
  cName,
  describe as describeDefinition,
} from "./check.js";
export { compileValidators, type SchemaValidators } from "./dynamic.js";
export { type DocBlock, type DocItem, type DocSection, parseDocBlock } from "./doc.js";
export * from "./introspect.js";
export { type LoadedSchema, type LoadSchemaOptions, loadSchema } from "./load.js";
export * from "./model.js";
export {
  type ParsedExpr,
  type ParsedSchema,
  type ParseOptions,
  type Pragmas,
  type QapiObject,
  type QapiValue,
  type ReadFile,
  parseSchema,
  parseSchemaText,
} from "./parser.js";
export * from "./runtime.js";
export { formatSchemaError, type SourceInfo, schemaError } from "./source.js";
export * from "./version.js";
export { GeneratedFile } from "./codegen/printer.js";
export { type GenerateOptions, generateTypeScript, pascalCase } from "./codegen/generate.js";
