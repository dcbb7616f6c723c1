/**
 * `key=value` arguments, as `qmpkit exec` and the shell take them (the shorthand of QEMU's
 * qmp-shell, typed by the peer's schema):
 *
 * - `key=value`: the value is typed by the member's schema type when the schema is known
 *   (`int`/`number` → a number, `bool` → true/false/on/off/yes/no, `str` and enums → the text as
 *   is, arrays/objects/`any` → JSON); without a schema, text that reads as a JSON number, boolean,
 *   null, array or object is taken as JSON and anything else as a string.
 * - `a.b=value`: a member of a nested object (`a` becomes `{ "b": value }`).
 * - `key:=JSON`: the value is JSON, whatever the schema says (for an array or an object in one go).
 * - An integer member takes QEMU's size suffixes as its command line does (`size=1G`, `1.5k`;
 *   see {@link parseSize}): a peer's introspection reports QAPI `size` as `int`, so every integer
 *   member accepts them (a suffixed number means nothing else). A list member given a single
 *   word is a one-element list (`devices=vda` → `["vda"]`).
 *
 * Every failure is a `UsageError` naming the argument, e.g.
 * `invalid argument 'level=abc': 'level' expects an integer`.
 *
 * @module
 */
import type { JsonObject, JsonValue } from "../base/json.js";
import { isJsonObject } from "../base/json.js";
import type { PeerSchema } from "./introspection.js";
import { UsageError } from "./usage-error.js";

/** The schema context for typing: the peer's index and the command's argument type. */
export interface ArgumentTyping {
  readonly schema: PeerSchema;
  readonly command: string;
}

const booleanWords: Record<string, boolean> = {
  true: true,
  false: false,
  on: true,
  off: false,
  yes: true,
  no: false,
};

/** Parses JSON text, keeping integers beyond 2^53 exact as `bigint` (as the wire layer does). */
export function parseJsonText(text: string): JsonValue {
  const bigints = new Map<string, bigint>();
  let n = 0;
  // Integers too large for a double are replaced by a marker string before JSON.parse.
  const marked = text.replace(
    /("(?:[^"\\]|\\.)*")|(-?\d{16,})(?![.\deE])/g,
    (m, s: string | undefined, digits: string | undefined) => {
      if (s !== undefined || digits === undefined) return m;
      const value = BigInt(digits);
      if (value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER))
        return m;
      const key = `\u0000bigint${n++}`;
      bigints.set(key, value);
      return JSON.stringify(key);
    },
  );
  return JSON.parse(marked, (_k, v: unknown) =>
    typeof v === "string" && bigints.has(v) ? bigints.get(v)! : v,
  ) as JsonValue;
}

function tryJson(text: string): { ok: true; value: JsonValue } | { ok: false } {
  try {
    return { ok: true, value: parseJsonText(text) };
  } catch {
    return { ok: false };
  }
}

const integerText = /^[-+]?(?:0x[0-9a-f]+|\d+)$/i;

function toInteger(text: string): number | bigint | undefined {
  if (!integerText.test(text)) return undefined;
  const negative = text.startsWith("-");
  const digits = text.replace(/^[-+]/, "");
  const big = BigInt(digits);
  const value = negative ? -big : big;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/**
 * Converts one value by the JSON types its member accepts, trying them in a fixed order so that
 * an alternate of `int` and `str` reads `12` as a number and `ide0` as a string.
 */
function typedValue(
  arg: string,
  key: string,
  text: string,
  jsonTypes: readonly string[],
): JsonValue {
  const accepts = (t: string) => jsonTypes.includes(t) || jsonTypes.includes("value");
  if (jsonTypes.includes("value")) {
    const parsed = tryJson(text);
    return parsed.ok ? parsed.value : text;
  }
  if (accepts("null") && text === "null") return null;
  if (accepts("boolean") && text.toLowerCase() in booleanWords)
    return booleanWords[text.toLowerCase()]!;
  if (accepts("int")) {
    const i = toInteger(text);
    if (i !== undefined) return i;
  }
  if (accepts("number") && text.trim() !== "" && Number.isFinite(Number(text))) return Number(text);
  if (accepts("array") || accepts("object")) {
    const parsed = tryJson(text);
    if (
      parsed.ok &&
      (Array.isArray(parsed.value)
        ? accepts("array")
        : isJsonObject(parsed.value) && accepts("object"))
    ) {
      return parsed.value;
    }
  }
  if (accepts("string")) return text;
  const words: Record<string, string> = {
    int: "an integer",
    number: "a number",
    boolean: "a boolean (true/false, on/off, yes/no)",
    array: "a JSON array",
    object: "a JSON object",
    null: "null",
  };
  throw new UsageError(
    `invalid argument '${arg}': '${key}' expects ${jsonTypes.map((t) => words[t] ?? t).join(" or ")}`,
  );
}

const sizeUnits: Record<string, number> = { b: 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };

/**
 * A byte count with QEMU's suffixes (util/cutils.c qemu_strtosz: B, K, M, G, T, P, E, in powers
 * of 1024, either case; a fraction only with a suffix, as `1.5G`), or undefined when the text is
 * not one. Beyond 2^53 the count is a bigint, as the wire layer keeps such integers.
 */
export function parseSize(text: string): number | bigint | undefined {
  const m = /^(\d+)(?:\.(\d+))?([bkmgtpe])$/i.exec(text);
  if (!m) return undefined;
  const unit = 1024n ** BigInt(sizeUnits[m[3]!.toLowerCase()]!);
  const fraction = m[2] ?? "";
  const scale = 10n ** BigInt(fraction.length);
  const bytes = (BigInt(m[1]!) * scale + BigInt(fraction === "" ? "0" : fraction)) * unit;
  // QEMU refuses a count that is not a whole number of bytes, or above UINT64_MAX.
  if (bytes % scale !== 0n || bytes / scale > 2n ** 64n - 1n) return undefined;
  const value = bytes / scale;
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/**
 * A `key=value` value typed by its member's schema type: a `size` with its suffixes, a list
 * from one word, else by the JSON types the member accepts.
 */
function valueOfType(
  schema: PeerSchema,
  typeName: string,
  arg: string,
  key: string,
  text: string,
): JsonValue {
  const jsonTypes = schema.jsonTypesOf(typeName);
  const info = schema.type(typeName);
  if (jsonTypes.includes("int")) {
    const bytes = parseSize(text);
    if (bytes !== undefined) return bytes;
  }
  if (info?.meta === "array" && !text.trimStart().startsWith("[")) {
    return [valueOfType(schema, info.elementType, arg, key, text)];
  }
  return typedValue(arg, key, text, jsonTypes);
}

function untypedValue(text: string): JsonValue {
  const parsed = tryJson(text);
  return parsed.ok ? parsed.value : text;
}

/** Splits `a.b=value` / `a.b:=json` into its path and value text. */
export function splitKeyValue(arg: string): { path: string[]; text: string; json: boolean } {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new UsageError(`invalid argument '${arg}': expected key=value`);
  const json = arg[eq - 1] === ":";
  const key = arg.slice(0, json ? eq - 1 : eq);
  const path = key.split(".");
  if (key === "" || path.some((p) => p === "")) {
    throw new UsageError(`invalid argument '${arg}': '${key}' is not a member name`);
  }
  return { path, text: arg.slice(eq + 1), json };
}

/**
 * Builds an arguments object from `key=value` items, typed by the schema when `typing` is given.
 * Members the schema does not know are kept, typed heuristically: the peer reports them itself
 * with QEMU's own error ("Parameter 'x' is unexpected").
 */
export function parseKeyValues(
  items: readonly string[],
  typing?: ArgumentTyping | undefined,
): JsonObject {
  const out: JsonObject = {};
  const seen = new Set<string>();
  const argType = typing ? typing.schema.commands.get(typing.command)?.argType : undefined;
  // Values given so far by dotted key: a union's tag selects the branch for later members.
  const given = new Map<string, JsonValue>();
  for (const item of items) {
    const { path, text, json } = splitKeyValue(item);
    const key = path.join(".");
    if (seen.has(key)) throw new UsageError(`invalid argument '${item}': '${key}' is given twice`);
    seen.add(key);
    let value: JsonValue;
    if (json) {
      const parsed = tryJson(text);
      if (!parsed.ok)
        throw new UsageError(`invalid argument '${item}': the value after ':=' is not JSON`);
      value = parsed.value;
    } else if (typing && argType !== undefined) {
      const memberType = typing.schema.typeAtPath(argType, path, given);
      value =
        memberType === undefined
          ? untypedValue(text)
          : valueOfType(typing.schema, memberType, item, key, text);
    } else {
      value = untypedValue(text);
    }
    given.set(key, value);
    let target: JsonObject = out;
    for (let i = 0; i < path.length - 1; i++) {
      const step = path[i]!;
      const existing = target[step];
      if (existing === undefined) target = target[step] = {};
      else if (isJsonObject(existing)) target = existing;
      else
        throw new UsageError(
          `invalid argument '${item}': '${path.slice(0, i + 1).join(".")}' already has a value that is not an object`,
        );
    }
    const last = path[path.length - 1]!;
    if (last in target) throw new UsageError(`invalid argument '${item}': '${key}' is given twice`);
    target[last] = value;
  }
  return out;
}
