/**
 * Reading the server greeting (qmp-spec "Server Greeting"; §1.2 of the QEMU semantics reference).
 * Pure: no I/O.
 *
 * @module
 */
import { ProtocolError } from "../base/errors.js";
import { isJsonObject } from "../base/json.js";
import type { QmpGreeting } from "./types.js";

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

/**
 * The typed greeting, or a `ProtocolError` naming what is wrong with `message`.
 *
 * Strict about the members a client relies on (`version.qemu.{major,minor,micro}`, `package`,
 * `capabilities` as strings); lenient about members a future QEMU may add.
 */
export function parseGreeting(message: unknown): QmpGreeting {
  const fail = (why: string) =>
    new ProtocolError(`invalid QMP greeting: ${why}: ${describe(message)}`, message);
  if (!isJsonObject(message)) throw fail("not a JSON object");
  const qmp = message.QMP;
  if (!isJsonObject(qmp)) throw fail("member 'QMP' is missing or not an object");
  const version = qmp.version;
  if (!isJsonObject(version)) throw fail("member 'QMP.version' is missing or not an object");
  const qemu = version.qemu;
  if (!isJsonObject(qemu) || !isCount(qemu.major) || !isCount(qemu.minor) || !isCount(qemu.micro)) {
    throw fail("member 'QMP.version.qemu' needs integer 'major', 'minor' and 'micro'");
  }
  if (typeof version.package !== "string")
    throw fail("member 'QMP.version.package' is not a string");
  const capabilities = qmp.capabilities;
  if (!Array.isArray(capabilities) || !capabilities.every((c) => typeof c === "string")) {
    throw fail("member 'QMP.capabilities' is not an array of strings");
  }
  return {
    version: {
      qemu: { major: qemu.major, minor: qemu.minor, micro: qemu.micro },
      package: version.package,
    },
    capabilities: [...(capabilities as string[])],
  };
}

/** A short rendering of a received value for an error message. */
export function describe(value: unknown, max = 200): string {
  let text: string;
  try {
    text =
      JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
