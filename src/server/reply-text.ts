/**
 * The text of a success reply, `{"return": …, "id": …}` and its `\r\n`, as QEMU prints it (§1.1),
 * put together without building the envelope object: only the `return` value and the `id` go
 * through the QEMU writer. Every reply takes this path, so it counts on the round trip (issue 2
 * §6). The bytes are exactly those of writing `{ return, id }` whole (a test compares them).
 *
 * Pure: no `node:*` imports.
 *
 * @module
 */
import type { JsonValue } from "../base/json.js";
import { qdictKeyOrder, writeQemuJson } from "../wire/index.js";

/**
 * Whether QEMU prints a reply's `return` before its `id`: their QDict buckets decide (QEMU
 * inserts `return` first, `qmp_dispatch`), worked out once rather than assumed.
 */
const RETURN_BEFORE_ID = qdictKeyOrder(["return", "id"])[0] === "return";

/**
 * A success reply in QEMU's compact form with its line end; `id` left out when `undefined`.
 * @throws TypeError when `value` or `id` holds something that is not JSON (as the writer does).
 */
export function successText(value: JsonValue, id: JsonValue | undefined): string {
  const body = writeQemuJson(value);
  if (id === undefined) return `{"return": ${body}}\r\n`;
  const idText = writeQemuJson(id);
  return RETURN_BEFORE_ID
    ? `{"return": ${body}, "id": ${idText}}\r\n`
    : `{"id": ${idText}, "return": ${body}}\r\n`;
}
