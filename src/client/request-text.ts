/**
 * The text of one request as the client sends it: compact JSON with the members in the order
 * `execute` (or `exec-oob`), `arguments`, `id`, and a `\n`.
 *
 * The bytes are exactly `writeCompactJson({ execute, arguments, id })` plus `\n`, as a test
 * checks, but the envelope is put together as a string instead of being built as an object and
 * serialized whole: on the round-trip path that saves most of a `JSON.stringify` per command
 * (issue 2 §6). Only `arguments` goes through the general writer.
 *
 * @module
 */
import type { JsonObject } from "../base/json.js";
import { writeCompactJson } from "../wire/index.js";
import { ID_PREFIX } from "./options.js";

/** Command names seen so far, quoted (a client uses few, and uses them again and again). */
const quotedNames = new Map<string, string>();

function quoteName(name: string): string {
  let quoted = quotedNames.get(name);
  if (quoted === undefined) {
    if (quotedNames.size >= 1024) quotedNames.clear();
    quoted = JSON.stringify(name);
    quotedNames.set(name, quoted);
  }
  return quoted;
}

/**
 * The request line for command `name` with `args` (left out when `undefined`) and the id
 * `${ID_PREFIX}${seq}`, which needs no escaping (the prefix is plain ASCII, `seq` a number).
 */
export function requestText(
  name: string,
  args: JsonObject | undefined,
  seq: number,
  oob: boolean,
): string {
  const head = oob ? '{"exec-oob":' : '{"execute":';
  const body = args === undefined ? "" : `,"arguments":${writeCompactJson(args)}`;
  return `${head}${quoteName(name)}${body},"id":"${ID_PREFIX}${seq}"}\n`;
}
