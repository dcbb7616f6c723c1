/**
 * The built-in `qmp_capabilities` command (§1.3; `monitor/qmp-cmds-control.c`,
 * `qapi/control.json`): its argument check, with the input visitor's exact texts, and the
 * capability check.
 *
 * Pure: no `node:*` imports.
 *
 * @module
 */
import type { JsonObject } from "../base/json.js";
import { firstUnvisitedKey } from "./glib-hash.js";
import type { KeyOrder } from "./request.js";

/** The values of QEMU's `QMPCapability` enum (7.2 and 10.2: only `oob`). */
export const QMP_CAPABILITY_VALUES = ["oob"] as const;
export type QmpCapability = (typeof QMP_CAPABILITY_VALUES)[number];

/**
 * Checks `qmp_capabilities`'s arguments as its generated marshaller would: the optional member
 * `enable: [QMPCapability]` first, then any other member is unexpected (the one QEMU's GLib
 * hash table yields first, given the keys' QDict order `orderKeys`). Returns the GenericError
 * desc of the first problem, or the requested capabilities.
 */
export function checkCapabilitiesArguments(
  args: JsonObject,
  orderKeys: KeyOrder = (keys) => keys,
): { readonly desc: string } | { readonly enable: readonly string[] } {
  const enable: string[] = [];
  if (Object.hasOwn(args, "enable")) {
    const list = args.enable;
    if (!Array.isArray(list)) {
      return { desc: "Invalid parameter type for 'enable', expected: array" };
    }
    for (const [i, item] of list.entries()) {
      if (typeof item !== "string") {
        return { desc: `Invalid parameter type for 'enable[${i}]', expected: string` };
      }
      if (!(QMP_CAPABILITY_VALUES as readonly string[]).includes(item)) {
        // A list element has no name, and QEMU 7.2's enum visitor prints the missing name as
        // 'null' (§1.3, observed).
        return { desc: `Parameter 'null' does not accept value '${item}'` };
      }
      enable.push(item);
    }
  }
  const keys = Object.keys(args);
  const visited = keys.filter((k) => k === "enable");
  const unexpected =
    keys.length > visited.length ? firstUnvisitedKey(orderKeys(keys), visited) : undefined;
  if (unexpected !== undefined) return { desc: `Parameter '${unexpected}' is unexpected` };
  return { enable };
}

/**
 * `qmp_caps_accept`: every requested capability must have been offered in the greeting;
 * otherwise GenericError `Capability a, b not available`, naming each one that was not, in
 * request order.
 */
export function checkCapabilitiesOffered(
  enable: readonly string[],
  offered: readonly string[],
): string | undefined {
  const missing = enable.filter((c) => !offered.includes(c));
  return missing.length === 0 ? undefined : `Capability ${missing.join(", ")} not available`;
}
