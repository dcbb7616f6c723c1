/**
 * Secrets stay out of the journal: the values of members that carry them are replaced by
 * {@link REDACTED} before anything is written. What is recognised (the whole list):
 *
 * | where | what is replaced |
 * |---|---|
 * | any object, at any depth | the value of a member named `password` (`set_password`, `change-vnc-password`, `expire_password` has none) |
 * | any object, at any depth | the value of a member whose name ends in `-secret` (`key-secret`, `password-secret`: ids of secret objects, kept out as well) |
 * | `object-add` with `qom-type: "secret"` (or `secret_keyring`) | `data` (the secret itself), also in `props` (QEMU before 6.0) |
 * | `human-monitor-command` `command-line` | `set_password PROTOCOL PASSWORD`, `change vnc password PASSWORD`, `object_add secret,…,data=…`, and `password=…` / `…-secret=…` in `key=value,…` option lists |
 *
 * Everything else is written as it came. A line the patterns do not recognise (a secret typed
 * in some other HMP command) is not redacted: prefer QMP's structured commands.
 *
 * Pure: no I/O.
 *
 * @module
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";

/** What a redacted value becomes. */
export const REDACTED = "<redacted>";

/** Text worth a closer look: cheap to test on serialised JSON before parsing it. */
const SUSPECT = /password|secret|human-monitor-command/i;

/** HMP lines that carry a secret, each with the part to keep in group 1 and the secret in 2. */
const HMP_PATTERNS: readonly RegExp[] = [
  /(\bset_password\s+\S+\s+)("[^"]*"|\S+)/g,
  /(\bchange\s+vnc\s+password\s+)("[^"]*"|\S+)/g,
  /(\b(?:password|[\w.-]*-secret)=)((?:[^,\s]|,,)+)/g,
];
/** `data=` in an `object_add secret,…` (or `-object secret,…`) line. */
const HMP_SECRET_OBJECT = /\bobject_add\s+(?:qom-type=)?secret(?:_keyring)?\b/;
const HMP_DATA = /(\bdata=)((?:[^,\s]|,,)+)/g;

function isSecretKey(key: string): boolean {
  return key === "password" || key.endsWith("-secret");
}

/** The command line of an HMP command, with the secrets it recognisably carries replaced. */
export function redactHmpLine(line: string): string {
  let out = line;
  for (const re of HMP_PATTERNS) out = out.replace(re, `$1${REDACTED}`);
  if (HMP_SECRET_OBJECT.test(out)) out = out.replace(HMP_DATA, `$1${REDACTED}`);
  return out;
}

function redactDeep(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(redactDeep);
  if (!isJsonObject(value)) return value;
  const out: JsonObject = {};
  const secretObject = value["qom-type"] === "secret" || value["qom-type"] === "secret_keyring";
  for (const [key, member] of Object.entries(value)) {
    if (isSecretKey(key) || (secretObject && key === "data")) out[key] = REDACTED;
    else if (secretObject && key === "props" && isJsonObject(member))
      out[key] = redactDeep({ ...member, "qom-type": value["qom-type"] } as JsonObject);
    else out[key] = redactDeep(member);
  }
  if (secretObject && isJsonObject(out.props)) delete (out.props as JsonObject)["qom-type"];
  // `human-monitor-command` arguments (the message is `{execute, arguments}`; the arguments
  // object itself has `command-line`).
  if (typeof out["command-line"] === "string")
    out["command-line"] = redactHmpLine(out["command-line"]);
  return out;
}

/**
 * `value` with every secret the list above recognises replaced by {@link REDACTED}: a QMP
 * message (command, reply, event) or an event's data. A copy: `value` is not changed.
 */
export function redactJson<T extends JsonValue>(value: T): T {
  return redactDeep(value) as T;
}

/**
 * Redacts serialised JSON: the text itself when it cannot carry a recognised secret (the
 * common case, decided without parsing), else the redacted value written again. Text that is
 * not JSON is returned with HMP-style secrets replaced.
 */
export function redactJsonText(text: string): string {
  if (!SUSPECT.test(text)) return text;
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    return redactHmpLine(text);
  }
  const redacted = redactDeep(value);
  const again = JSON.stringify(redacted);
  // Unchanged: keep the original bytes (key order, spacing, big integers).
  return again === JSON.stringify(value) ? text : again;
}
