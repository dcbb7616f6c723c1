/**
 * QEMU's JSON parser (`qobject/json-parser.c`), restated: turns the token list of one message
 * into a value, or into the text of the first error found.
 *
 * The streamer (`json-stream.ts`) hands over the tokens of a message once its braces and
 * brackets balance (or go negative). The parser is a recursive descent; the first error ends the
 * parse and is the only one reported, as QEMU keeps only the first `parse_error` (§1.8).
 *
 * Values follow `src/base/json.ts`: an integer is a `number` when it is a safe integer, a
 * `bigint` when it needs int64/uint64 precision, and a `number` (double) beyond uint64, exactly
 * where QEMU falls back from int64 to uint64 to double.
 *
 * Pure: no `node:*` imports.
 *
 * @module
 */
import type { JsonObject, JsonValue } from "../base/json.js";
import { decodeQemuText, isValidCodepoint, modUtf8Codepoint } from "./json-utf8.js";

/** Token types of the lexer (`JSONTokenType` in QEMU). */
export const TokenType = {
  LCurly: 1,
  RCurly: 2,
  LSquare: 3,
  RSquare: 4,
  Colon: 5,
  Comma: 6,
  String: 7,
  Integer: 8,
  Float: 9,
  Keyword: 10,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

/**
 * The tokens of one message: their bytes back to back in `bytes` (whitespace between tokens is
 * not kept), token `i` being `bytes[starts[i], ends[i])` of type `types[i]`.
 */
export interface TokenList {
  readonly bytes: Uint8Array;
  readonly types: ArrayLike<number>;
  readonly starts: ArrayLike<number>;
  readonly ends: ArrayLike<number>;
  /** How many tokens (the arrays may be longer). */
  readonly count: number;
}

/** The outcome of parsing one message. */
export type ParseResult = { ok: true; value: JsonValue } | { ok: false; desc: string };

/** Parser flavours of the two dialects. */
export interface ParseOptions {
  /** `error` as QEMU (4.0+) for the `qemu` dialect; the `client` dialect keeps the last value. */
  readonly duplicateKeys: "error" | "last-wins";
  /**
   * What the integer token `-0` means. QEMU's parser reads it as the integer 0 (`qemu`). QEMU's
   * writer prints `-0` only for the double -0.0 (an integer 0 prints as `0`), so a client reading
   * QEMU's output takes it as -0 (`client`), as `JSON.parse` does.
   */
  readonly minusZero: "zero" | "minus-zero";
}

class ParseFailure {
  constructor(readonly desc: string) {}
}

const int64Min = -(2n ** 63n);
const minSafe = BigInt(Number.MIN_SAFE_INTEGER);
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
const uint64Max = 2n ** 64n - 1n;

function fail(what: string): never {
  throw new ParseFailure(`JSON parse error, ${what}`);
}

const ascii = new TextDecoder("ascii");

/** Bytes below 0x80 as a string (one character per byte). */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n > 64) return ascii.decode(bytes.subarray(start, end));
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/** Whether `bytes[start, end)` spells `word` (ASCII). */
function spells(bytes: Uint8Array, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (bytes[start + i] !== word.charCodeAt(i)) return false;
  return true;
}

function hex4(text: Uint8Array, at: number, end: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const c = at + i < end ? text[at + i]! : 0;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    cp = cp * 16 + d;
  }
  return cp;
}

/**
 * Decodes a string token (with its quotes, `"` or `'`) as QEMU's `parse_string` does: the
 * escapes of JSON plus `\'`, surrogate pairs through `\uXXXX\uXXXX`, and modified UTF-8 checks.
 */
export function parseStringToken(text: Uint8Array, start = 0, end = text.length): string {
  const quote = text[start]!;
  const next = { end: 0 };
  let out = "";
  let p = start + 1;
  let runStart = p;
  while (p < end && text[p] !== quote) {
    const c = text[p]!;
    if (c >= 0x20 && c < 0x80 && c !== 0x5c) {
      p++;
      continue;
    }
    if (p > runStart) out += latin1(text, runStart, p);
    if (c === 0x5c) {
      const beg = p;
      const e = p + 1 < end ? text[p + 1]! : 0;
      p += 2;
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x27:
          out += "'";
          break;
        case 0x5c:
          out += "\\";
          break;
        case 0x2f:
          out += "/";
          break;
        case 0x62:
          out += "\b";
          break;
        case 0x66:
          out += "\f";
          break;
        case 0x6e:
          out += "\n";
          break;
        case 0x72:
          out += "\r";
          break;
        case 0x74:
          out += "\t";
          break;
        case 0x75: {
          let cp = hex4(text, p, end);
          p += 4;
          // A leading surrogate followed by `\u` must pair with a trailing one; QEMU then
          // quotes both escapes in the error text (json-parser.c, parse_string).
          if (cp >= 0xd800 && cp <= 0xdbff && text[p] === 0x5c && text[p + 1] === 0x75) {
            cp = 0x10000 + ((cp & 0x3ff) << 10);
            const trailing = hex4(text, p + 2, end);
            if (trailing >= 0xdc00 && trailing <= 0xdfff) {
              cp |= trailing & 0x3ff;
              p += 6;
            } else {
              cp = -1;
            }
          }
          if (!isValidCodepoint(cp)) {
            // The escape as typed, raw bytes included (QEMU quotes them as they are).
            const quoted = decodeQemuText(text, beg, Math.min(p, end));
            // `%.*s` stops at the token's terminating NUL; the token has none inside.
            fail(`${quoted} is not a valid Unicode character`);
          }
          out += String.fromCodePoint(cp);
          break;
        }
        default:
          fail("invalid escape sequence in string");
      }
    } else {
      const cp = modUtf8Codepoint(text, p, end, next);
      if (cp < 0) fail("invalid UTF-8 sequence in string");
      out += String.fromCodePoint(cp);
      p = next.end;
    }
    runStart = p;
  }
  if (p > runStart) out += latin1(text, runStart, p);
  return out;
}

/** QEMU's number rule: int64, else uint64 (non-negative), else double (`strtod`). */
export function parseIntegerToken(
  text: string,
  minusZero: ParseOptions["minusZero"] = "zero",
): number | bigint {
  if (text.length <= 15) {
    const n = Number(text);
    return n === 0 && minusZero === "zero" ? 0 : n;
  }
  const big = BigInt(text);
  // int64 covers the negatives, uint64 the rest of the non-negatives; both go through bigint
  // unless a double holds them exactly.
  if (big < int64Min || big > uint64Max) return Number(text);
  return big >= minSafe && big <= maxSafe ? Number(big) : big;
}

/** Parses the tokens of one message (`json_parser_parse`). */
export function parseTokens(tokens: TokenList, options: ParseOptions): ParseResult {
  const { bytes, types, starts, ends, count } = tokens;
  let index = 0;
  const rejectDuplicates = options.duplicateKeys === "error";

  /** The type of the next token, or 0 when there is none. */
  function peek(): number {
    return index < count ? types[index]! : 0;
  }
  function pop(): number {
    return index < count ? types[index++]! : 0;
  }

  function parseValue(): JsonValue {
    const type = peek();
    if (type === 0) fail("premature EOI");
    const start = starts[index]!;
    const end = ends[index]!;
    switch (type) {
      case TokenType.LCurly:
        return parseObject();
      case TokenType.LSquare:
        return parseArray();
      case TokenType.String:
        index++;
        return parseStringToken(bytes, start, end);
      case TokenType.Integer: {
        index++;
        if (end - start <= 15) {
          // Exact in a double: add the digits up directly.
          const negative = bytes[start] === 0x2d;
          let n = 0;
          for (let i = negative ? start + 1 : start; i < end; i++) n = n * 10 + (bytes[i]! - 0x30);
          if (!negative) return n;
          return n === 0 && options.minusZero === "zero" ? 0 : -n;
        }
        return parseIntegerToken(latin1(bytes, start, end), options.minusZero);
      }
      case TokenType.Float:
        index++;
        return Number(latin1(bytes, start, end));
      case TokenType.Keyword: {
        index++;
        if (spells(bytes, start, end, "true")) return true;
        if (spells(bytes, start, end, "false")) return false;
        if (spells(bytes, start, end, "null")) return null;
        return fail(`invalid keyword '${latin1(bytes, start, end)}'`);
      }
      default:
        return fail("expecting value");
    }
  }

  function parsePair(object: JsonObject): void {
    if (peek() === 0) fail("premature EOI");
    const key = parseValue();
    if (typeof key !== "string") fail("key is not a string in object");
    const colon = pop();
    if (colon === 0) fail("premature EOI");
    if (colon !== TokenType.Colon) fail("missing : in object pair");
    const value = parseValue();
    if (rejectDuplicates && Object.hasOwn(object, key)) fail("duplicate key");
    if (key === "__proto__") {
      Object.defineProperty(object, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      object[key] = value;
    }
  }

  function parseObject(): JsonObject {
    index++; // the `{`
    const object: JsonObject = {};
    const first = peek();
    if (first === 0) fail("premature EOI");
    if (first === TokenType.RCurly) {
      index++;
      return object;
    }
    parsePair(object);
    let token = pop();
    if (token === 0) fail("premature EOI");
    while (token !== TokenType.RCurly) {
      if (token !== TokenType.Comma) fail("expected separator in dict");
      parsePair(object);
      token = pop();
      if (token === 0) fail("premature EOI");
    }
    return object;
  }

  function parseArray(): JsonValue[] {
    index++; // the `[`
    const list: JsonValue[] = [];
    const first = peek();
    if (first === 0) fail("premature EOI");
    if (first === TokenType.RSquare) {
      index++;
      return list;
    }
    list.push(parseValue());
    let token = pop();
    if (token === 0) fail("premature EOI");
    while (token !== TokenType.RSquare) {
      if (token !== TokenType.Comma) fail("expected separator in list");
      list.push(parseValue());
      token = pop();
      if (token === 0) fail("premature EOI");
    }
    return list;
  }

  try {
    return { ok: true, value: parseValue() };
  } catch (e) {
    if (e instanceof ParseFailure) return { ok: false, desc: e.desc };
    throw e;
  }
}
