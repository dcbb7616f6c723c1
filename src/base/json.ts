/**
 * JSON values as qmpkit passes them between layers.
 *
 * QEMU's parser keeps integers as int64 or uint64 (`qobject/json-parser.c`); JavaScript numbers
 * are exact only to 2^53. Integers beyond that are carried as `bigint` so that nothing is
 * rounded on the way through; everything else is plain JSON.
 *
 * @module
 */

export type JsonPrimitive = null | boolean | number | bigint | string;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
