/**
 * JSON writers: QEMU's exact output form, and a plain compact form for clients.
 *
 * `writeQemuJson` restates `qobject/json-writer.c` and `qobject/qjson.c` (§1.1): ASCII only,
 * `\uXXXX` with uppercase hex (surrogate pairs beyond the BMP, U+FFFD for what QEMU cannot
 * hold), `", "` and `": "` separators, doubles as C's `%.17g`, pretty form with 4-space indent,
 * and object members in the order QEMU's QDict iterates them (`qobject/qdict.c`): 512 buckets by
 * `tdb_hash`, ascending bucket, and within a bucket the most recently inserted key first.
 * JavaScript objects keep insertion order (except integer-like keys, which JavaScript always
 * lists first in ascending order), and that order plays QEMU's insertion order.
 *
 * Pure: no `node:*` imports.
 *
 * @module
 */
import type { JsonValue } from "../base/json.js";
import { isValidCodepoint } from "./json-utf8.js";

/** Options of {@link writeQemuJson}. */
export interface WriteQemuJsonOptions {
  /** QEMU's pretty form (`-mon …,pretty=on`): newlines and 4-space indentation. Default false. */
  pretty?: boolean | undefined;
}

/** QEMU's `QDICT_BUCKET_MAX`. */
const bucketCount = 512;

/** A key's bytes as QEMU holds them: modified UTF-8 (U+0000 as C0 80, lone surrogates as U+FFFD). */
function modUtf8Bytes(key: string): number[] {
  const out: number[] = [];
  for (const ch of key) {
    let cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp > 0 && cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000)
      out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else {
      out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f));
      out.push(0x80 | (cp & 0x3f));
    }
  }
  return out;
}

/**
 * The QDict bucket of a key: `tdb_hash` (qobject/qdict.c) of its modified-UTF-8 bytes, modulo
 * 512. All arithmetic is uint32.
 */
export function qdictBucket(key: string): number {
  const ascii = /^[\x01-\x7f]*$/.test(key);
  const bytes = ascii ? undefined : modUtf8Bytes(key);
  const length = bytes === undefined ? key.length : bytes.length;
  let v = Math.imul(0x238f13af, length) >>> 0;
  for (let i = 0; i < length; i++) {
    const b = bytes === undefined ? key.charCodeAt(i) : bytes[i]!;
    v = (v + (b << ((i * 5) % 24))) >>> 0;
  }
  return ((Math.imul(1103515243, v) + 12345) >>> 0) % bucketCount;
}

/** What the writer needs to know about an object key: its QDict bucket and its printed form. */
interface KeyInfo {
  readonly key: string;
  readonly bucket: number;
  readonly quoted: string;
  /** The member's head as the first member (`"key": `) and as a later one (`, "key": `). */
  readonly first: string;
  readonly next: string;
}

/** Keys recur from message to message (`return`, `id`, `status`, …): both are worked out once. */
const keyCache = new Map<string, KeyInfo>();

function keyInfo(key: string): KeyInfo {
  let info = keyCache.get(key);
  if (info === undefined) {
    if (keyCache.size >= 4096) keyCache.clear();
    const quoted = quoteQemuString(key);
    info = { key, bucket: qdictBucket(key), quoted, first: `${quoted}: `, next: `, ${quoted}: ` };
    keyCache.set(key, info);
  }
  return info;
}

function cachedBucket(key: string): number {
  return keyInfo(key).bucket;
}

/**
 * Whether `keys`, in this insertion order, are already in the order QEMU prints them: strictly
 * ascending buckets (then {@link qdictKeyOrder} would return them unchanged, and needs not run).
 */
function inQdictOrder(keys: readonly string[]): boolean {
  let previous = -1;
  for (let i = 0; i < keys.length; i++) {
    const bucket = keyInfo(keys[i]!).bucket;
    if (bucket <= previous) return false;
    previous = bucket;
  }
  return true;
}

/** A key set's print order, remembered (see {@link printOrder}). */
interface Shape {
  /** The keys in insertion order (an `Object.keys` result, never changed). */
  readonly keys: readonly string[];
  /** The same keys in QEMU's print order. */
  readonly order: readonly KeyInfo[];
}

/** Objects with more keys than this are ordered afresh each time (their shape is not kept). */
const maxShapeKeys = 32;
/** The last shape seen for each first key: messages of one kind share their key sets. */
const shapeCache = new Map<string, Shape>();

/**
 * The keys of an object (`Object.keys(value)`, insertion order) in the order QEMU prints them.
 * The writer asks this for every object it prints, and the replies and events of a session
 * repeat a handful of key sets, so the answer for a key set is remembered: then one lookup and
 * a comparison of the keys replace the bucket lookups and the sort.
 */
function printOrder(keys: string[]): readonly KeyInfo[] {
  const n = keys.length;
  if (n > maxShapeKeys) return (inQdictOrder(keys) ? keys : qdictKeyOrder(keys)).map(keyInfo);
  const first = keys[0]!;
  const shape = shapeCache.get(first);
  if (shape !== undefined && shape.keys.length === n) {
    let same = true;
    for (let i = 1; i < n; i++) {
      if (shape.keys[i] !== keys[i]) {
        same = false;
        break;
      }
    }
    if (same) return shape.order;
  }
  const order = (inQdictOrder(keys) ? keys : qdictKeyOrder(keys)).map(keyInfo);
  if (shapeCache.size >= 4096) shapeCache.clear();
  shapeCache.set(first, { keys, order });
  return order;
}

/** The order in which QEMU prints the members of an object built by inserting `keys` in order. */
export function qdictKeyOrder(keys: readonly string[]): string[] {
  const n = keys.length;
  const ordered: string[] = [];
  const buckets: number[] = [];
  // Insertion sort by ascending bucket; a key goes before the keys of its own bucket, which were
  // all inserted earlier (QLIST_INSERT_HEAD). Objects are small, so this beats a general sort.
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    const bucket = cachedBucket(key);
    ordered.push(key);
    buckets.push(bucket);
    let j = i;
    for (; j > 0 && buckets[j - 1]! >= bucket; j--) {
      ordered[j] = ordered[j - 1]!;
      buckets[j] = buckets[j - 1]!;
    }
    ordered[j] = key;
    buckets[j] = bucket;
  }
  return ordered;
}

/**
 * Rebuilds the objects of a value parsed from QEMU's output so that `writeQemuJson` prints them
 * as QEMU did. QEMU prints the keys of one bucket most recent first, so parsing its output
 * yields them in reverse insertion order, and printing that again would swap them (QEMU itself
 * does the same when it echoes an `id` it parsed). Reversing each run of same-bucket keys
 * restores an insertion order that prints identically. Useful to replay recorded QEMU output.
 */
export function restoreQdictOrder(value: JsonValue): JsonValue {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(restoreQdictOrder);
  const keys = Object.keys(value);
  const ordered: string[] = [];
  let run: string[] = [];
  let runBucket = -1;
  for (const key of keys) {
    const bucket = cachedBucket(key);
    if (bucket !== runBucket && run.length > 0) {
      ordered.push(...run.reverse());
      run = [];
    }
    runBucket = bucket;
    run.push(key);
  }
  ordered.push(...run.reverse());
  const out: Record<string, JsonValue> = {};
  for (const key of ordered) {
    const v = restoreQdictOrder(value[key]!);
    if (key === "__proto__") {
      Object.defineProperty(out, key, {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else out[key] = v;
  }
  return out;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}

const plainAscii = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A string as QEMU's `quoted_str` prints it. */
export function quoteQemuString(text: string): string {
  if (plainAscii.test(text)) return `"${text}"`;
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    switch (cp) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += "\\\\";
        continue;
      case 0x08:
        out += "\\b";
        continue;
      case 0x0c:
        out += "\\f";
        continue;
      case 0x0a:
        out += "\\n";
        continue;
      case 0x0d:
        out += "\\r";
        continue;
      case 0x09:
        out += "\\t";
        continue;
    }
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) {
      const lo = text.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    // What QEMU's modified UTF-8 cannot hold (lone surrogates, noncharacters) prints as U+FFFD.
    if (!isValidCodepoint(cp)) cp = 0xfffd;
    if (cp > 0xffff) {
      out += `\\u${hex4(0xd800 + ((cp - 0x10000) >> 10))}\\u${hex4(0xdc00 + ((cp - 0x10000) & 0x3ff))}`;
    } else if (cp < 0x20 || cp >= 0x7f) {
      out += `\\u${hex4(cp)}`;
    } else {
      out += String.fromCharCode(cp);
    }
  }
  return `${out}"`;
}

/** The exact decimal value of a finite positive double: `digits × 10^exp10`. */
function exactDecimal(x: number): { digits: string; exp10: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp2: number;
  if (biased === 0) exp2 = -1074;
  else {
    mantissa |= 1n << 52n;
    exp2 = biased - 1075;
  }
  if (exp2 >= 0) return { digits: (mantissa << BigInt(exp2)).toString(), exp10: 0 };
  // m / 2^k = m * 5^k / 10^k
  return { digits: (mantissa * 5n ** BigInt(-exp2)).toString(), exp10: exp2 };
}

/**
 * A double as C's `printf("%.17g")` prints it (glibc): the exact binary value rounded to 17
 * significant digits (ties to even), trailing zeros dropped, exponent form when the decimal
 * exponent is below -4 or at least 17, and `inf`, `-inf`, `nan`.
 */
export function formatDouble(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Number.POSITIVE_INFINITY) return "inf";
  if (x === Number.NEGATIVE_INFINITY) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  if (Number.isSafeInteger(x)) return String(x);
  const negative = x < 0;
  const exact = exactDecimal(Math.abs(x));
  let digits = exact.digits;
  let exp = digits.length - 1 + exact.exp10; // decimal exponent of the first digit
  if (digits.length > 17) {
    const rest = digits.slice(17);
    let keep = digits.slice(0, 17);
    const above = rest[0]! > "5" || (rest[0] === "5" && /[1-9]/.test(rest.slice(1)));
    const tie = rest[0] === "5" && !/[1-9]/.test(rest.slice(1));
    const odd = (keep.charCodeAt(16) - 48) % 2 === 1;
    if (above || (tie && odd)) {
      const up = (BigInt(keep) + 1n).toString();
      if (up.length > 17) {
        keep = up.slice(0, 17);
        exp++;
      } else keep = up;
    }
    digits = keep;
  }
  digits = digits.replace(/0+$/, "");
  let body: string;
  if (exp < -4 || exp >= 17) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : "";
    const e = Math.abs(exp);
    body = `${digits[0]}${frac}e${exp < 0 ? "-" : "+"}${e < 10 ? "0" : ""}${e}`;
  } else if (exp >= 0) {
    const int = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
    const frac = digits.slice(exp + 1);
    body = frac === "" ? int : `${int}.${frac}`;
  } else {
    body = `0.${"0".repeat(-exp - 1)}${digits}`;
  }
  return negative ? `-${body}` : body;
}

function writeNumber(x: number): string {
  return formatDouble(x);
}

function writeCompactQemu(value: JsonValue): string {
  switch (typeof value) {
    case "string":
      return quoteQemuString(value);
    case "number":
      return writeNumber(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        if (value.length === 0) return "[]";
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ", ";
          out += writeCompactQemu(value[i]!);
        }
        return `${out}]`;
      }
      const keys = Object.keys(value);
      if (keys.length === 0) return "{}";
      const order = printOrder(keys);
      let out = "{";
      let first = true;
      for (let i = 0; i < order.length; i++) {
        const info = order[i]!;
        const member = value[info.key];
        if (member === undefined) continue;
        out += first ? info.first : info.next;
        out += writeCompactQemu(member);
        first = false;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`cannot write ${typeof value} as JSON`);
  }
}

function writePrettyQemu(value: JsonValue, depth: number): string {
  if (value === null || typeof value !== "object") return writeCompactQemu(value);
  const inner = `\n${" ".repeat((depth + 1) * 4)}`;
  const close = `\n${" ".repeat(depth * 4)}`;
  // json-writer.c puts a newline before the first member and before the closing bracket
  // even when there is no member: an empty object prints as "{\n}".
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      out += (i > 0 ? "," : "") + inner + writePrettyQemu(value[i]!, depth + 1);
    }
    return `${out}${close}]`;
  }
  const keys = qdictKeyOrder(Object.keys(value).filter((k) => value[k] !== undefined));
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    out += `${i > 0 ? "," : ""}${inner}${quoteQemuString(key)}: ${writePrettyQemu(value[key]!, depth + 1)}`;
  }
  return `${out}${close}}`;
}

/**
 * Writes `value` exactly as QEMU prints it (§1.1), without a line end. A server sends it
 * followed by `\r\n` (and with every `\n` of the pretty form turned into `\r\n`, as QEMU's
 * monitor does).
 *
 * @example
 * writeQemuJson({ id: 6, return: {} }); // '{"return": {}, "id": 6}'
 */
export function writeQemuJson(value: JsonValue, options?: WriteQemuJsonOptions): string {
  return options?.pretty === true ? writePrettyQemu(value, 0) : writeCompactQemu(value);
}

function writeCompactSlow(value: JsonValue): string {
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(writeCompactSlow).join(",")}]`;
  const parts: string[] = [];
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${writeCompactSlow(v)}`);
  }
  return `{${parts.join(",")}}`;
}

/**
 * Compact JSON for a client to send: `JSON.stringify`, except that `bigint` values are written
 * as exact integers. As with `JSON.stringify`, non-finite numbers become `null` and members
 * whose value is `undefined` are left out. No line end.
 */
export function writeCompactJson(value: JsonValue): string {
  try {
    return JSON.stringify(value);
  } catch (e) {
    if (e instanceof TypeError) return writeCompactSlow(value);
    throw e;
  }
}
