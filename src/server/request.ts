/**
 * Checking one request object as QEMU does, before any command runs (§1.4;
 * `qapi/qmp-dispatch.c` `qmp_dispatch` and `qmp_dispatch_check_obj`, `monitor/qmp.c`
 * `qmp_is_oob`), and turning the QAPI input visitor's findings into QEMU's exact texts
 * (`qapi/qobject-input-visitor.c`, `qapi/qapi-visit-core.c`).
 *
 * Pure: no `node:*` imports. The member walk follows QEMU's QDict hash-bucket order, which the
 * caller passes in as `orderKeys` (the wire layer computes it).
 *
 * @module
 */
import type { ValidationIssue } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { qemuIssueMessage } from "../schema/runtime.js";
import { firstUnvisitedKey } from "./glib-hash.js";

/** Orders an object's keys as QEMU's QDict iterates them (hash bucket, newest first in a bucket). */
export type KeyOrder = (keys: readonly string[]) => readonly string[];

/** The result of {@link checkRequest}. `id` is `undefined` when the request carried none. */
export type CheckedRequest =
  | {
      readonly kind: "command";
      readonly name: string;
      /** `arguments`, or a fresh empty object when absent (QEMU passes an empty QDict). */
      readonly args: JsonObject;
      readonly id: JsonValue | undefined;
      /** Sent with `exec-oob` (only possible when OOB was negotiated). */
      readonly oob: boolean;
    }
  | {
      readonly kind: "error";
      /** Always GenericError at this stage. */
      readonly desc: string;
      readonly id: JsonValue | undefined;
    };

/**
 * Whether a parsed request is an out-of-band one (`qmp_is_oob`): an object with `exec-oob` and
 * without `execute`. Such requests skip the in-band queue, even when OOB was not negotiated
 * (they then fail with "member 'exec-oob' is unexpected", §1.7).
 */
export function isOobRequest(value: JsonValue): boolean {
  return (
    isJsonObject(value) && Object.hasOwn(value, "exec-oob") && !Object.hasOwn(value, "execute")
  );
}

/** The request's `id`, verbatim, or `undefined` when there is none or it is not an object. */
export function requestId(value: JsonValue): JsonValue | undefined {
  return isJsonObject(value) && Object.hasOwn(value, "id") ? value.id : undefined;
}

/**
 * Checks the envelope of one request, steps 2–4 of §1.4: an object; then the members in QDict
 * order, the first problem winning (`execute`/`exec-oob` must be strings and may not both be
 * present, `arguments` must be an object, `id` is anything, every other member — including
 * `exec-oob` when OOB is not enabled — is unexpected); then `execute` must be there.
 */
export function checkRequest(
  value: JsonValue,
  options: { readonly oobEnabled: boolean; readonly orderKeys: KeyOrder },
): CheckedRequest {
  if (!isJsonObject(value)) {
    return { kind: "error", desc: "QMP input must be a JSON object", id: undefined };
  }
  const keys = Object.keys(value);
  // Whether the walk finds a problem does not depend on the order, only which one it names:
  // a well-formed request (the common case) is checked without computing QDict order.
  const quick = walkRequest(value, keys, options.oobEnabled);
  return quick.kind === "command"
    ? quick
    : walkRequest(value, options.orderKeys(keys), options.oobEnabled);
}

function walkRequest(
  value: JsonObject,
  keys: readonly string[],
  oobEnabled: boolean,
): CheckedRequest {
  const id = requestId(value);
  let execKey: "execute" | "exec-oob" | undefined;
  for (const key of keys) {
    const member = value[key] as JsonValue;
    if (key === "execute" || (key === "exec-oob" && oobEnabled)) {
      if (typeof member !== "string") {
        return { kind: "error", desc: `QMP input member '${key}' must be a string`, id };
      }
      if (execKey !== undefined) {
        return { kind: "error", desc: `QMP input member '${key}' clashes with '${execKey}'`, id };
      }
      execKey = key;
    } else if (key === "arguments") {
      if (!isJsonObject(member)) {
        return { kind: "error", desc: "QMP input member 'arguments' must be an object", id };
      }
    } else if (key !== "id") {
      return { kind: "error", desc: `QMP input member '${key}' is unexpected`, id };
    }
  }
  if (execKey === undefined) {
    return { kind: "error", desc: "QMP input lacks member 'execute'", id };
  }
  const args = Object.hasOwn(value, "arguments") ? (value.arguments as JsonObject) : {};
  return { kind: "command", name: value[execKey] as string, args, id, oob: execKey === "exec-oob" };
}

/** The object at a QEMU-style path inside `root`, if there is one. */
function objectAt(
  root: JsonObject,
  segments: ReadonlyArray<string | number>,
): JsonObject | undefined {
  let node: JsonValue | undefined = root;
  for (const segment of segments) {
    if (typeof segment === "number") node = Array.isArray(node) ? node[segment] : undefined;
    else node = isJsonObject(node) && Object.hasOwn(node, segment) ? node[segment] : undefined;
  }
  return isJsonObject(node) ? node : undefined;
}

/** Splits an issue path into the containing object's path and the member name. */
function splitMember(
  root: JsonObject,
  path: string,
): { readonly parent: ReadonlyArray<string | number>; readonly name: string } {
  // A top-level key may itself contain '.' or '[': it is named as is.
  if (Object.hasOwn(root, path)) return { parent: [], name: path };
  const segments = pathSegments(path);
  const last = segments.at(-1);
  return { parent: segments.slice(0, -1), name: typeof last === "string" ? last : path };
}

/**
 * The issue QEMU reports among those a validator found (in QEMU's visiting order). When the
 * first is an unexpected member, QEMU names the first unvisited key in the GLib hash table of
 * that object (see `glib-hash.ts`), which is not necessarily the first one written.
 */
export function selectArgumentIssue(
  issues: readonly ValidationIssue[],
  args: JsonObject,
  orderKeys: KeyOrder,
): ValidationIssue | undefined {
  const first = issues[0];
  if (first === undefined || first.kind !== "unexpected") return first;
  const { parent } = splitMember(args, first.path);
  const container = objectAt(args, parent);
  if (container === undefined) return first;
  const parentKey = JSON.stringify(parent);
  const siblings = new Map<string, ValidationIssue>();
  for (const issue of issues) {
    if (issue.kind !== "unexpected") continue;
    const where = splitMember(args, issue.path);
    if (JSON.stringify(where.parent) === parentKey) siblings.set(where.name, issue);
  }
  const keys = Object.keys(container);
  // Members the schema knows were visited (and removed from the table) in the order given;
  // the text order stands in for schema order, which only matters if removals shrink the table.
  const visited = keys.filter((k) => !siblings.has(k));
  const name = firstUnvisitedKey(orderKeys(keys), visited);
  return (name === undefined ? undefined : siblings.get(name)) ?? first;
}

/** The segments of a QEMU-style path: `a.b[2].c` → `["a", "b", 2, "c"]`. */
function pathSegments(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  const pattern = /\[(\d+)\]|([^.[\]]+)/g;
  for (const m of path.matchAll(pattern)) {
    if (m[1] !== undefined) out.push(Number(m[1]));
    else if (m[2] !== undefined) out.push(m[2]);
  }
  return out;
}

/**
 * QEMU's `desc` for one argument problem found by a generated validator (§1.4 step 8): the
 * schema layer's {@link qemuIssueMessage}, so that validators and server share one wording
 * (`Parameter 'a.b' is missing` / `is unexpected`, `Invalid parameter type for 'a.b', expected:
 * string`, `Parameter 'b' does not accept value 'x'` with the member's own name or `'null'` in a
 * list, `Parameter 'b' expects uint8_t`, `Parameter 'a.b' expects uint64`).
 */
export function describeArgumentIssue(issue: ValidationIssue): string {
  return qemuIssueMessage(issue);
}
