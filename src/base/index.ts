/**
 * The leaf layer: errors, JSON value types and small async helpers. Imports nothing.
 * @module
 */
export * from "./deadline.js";
export * from "./deferred.js";
export * from "./errors.js";
export * from "./json.js";
export * from "./unreachable.js";
export * from "./wildcard.js";
