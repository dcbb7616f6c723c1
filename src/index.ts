/**
 * qmpkit: the QEMU Machine Protocol for TypeScript.
 * @module
 */
export * from "./base/index.js";
