/**
 * Incremental framing of a QMP byte stream into JSON messages, exactly as QEMU frames its input
 * (`qobject/json-lexer.c`, `json-streamer.c`, `json-parser.c`; §1.8 of the semantics reference).
 *
 * Two paths give the same results:
 *
 * - The **exact path** restates QEMU: a byte-driven lexer (with QEMU's error recovery state), a
 *   streamer that counts braces and brackets, applies the limits and hands each balanced token
 *   list to the parser (`json-parser.ts`). It produces every error item, in both dialects.
 * - The **fast path** (the default in both dialects) serves what each side normally receives: one
 *   compact message per `\n`-terminated line (QEMU's output, or a client's requests). The whole lines of a chunk are decoded in one go and each
 *   is given to the native `JSON.parse` (the unterminated tail of a chunk, which may hold a
 *   complete message since a peer need not end its lines, takes the exact path). A line goes to the exact path instead whenever `JSON.parse` could disagree with
 *   QEMU: it fails to parse, it carries an escape or a number whose value QEMU treats differently
 *   (surrogate or noncharacter `\u` escapes, integers of 16+ digits), raw UTF-8
 *   that QEMU rejects, or it is long enough to break a limit. The switch back happens at the next
 *   line end where the exact path stands between messages, so the framing never differs.
 *   The `qemu` dialect (a server reading requests) narrows the fast path further, to what
 *   `JSON.parse` and QEMU provably read alike: see `JsonStreamDecoder.serverLine`.
 *
 * Memory is bounded by the limits: a message that grows past `maxMessageBytes` is dropped as it
 * streams (QEMU's recovery), never buffered whole.
 *
 * Pure: no `node:*` imports.
 *
 * @module
 */
import { JsonStreamError } from "../base/errors.js";
import type { JsonValue } from "../base/json.js";
import { type ParseOptions, parseTokens, TokenType } from "./json-parser.js";
import { decodeQemuText, utf8Length } from "./json-utf8.js";

/** QEMU's `MAX_TOKEN_SIZE`: 64 MiB for all the tokens of one message, and for one token. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** QEMU's `MAX_NESTING`: depth 1024 is accepted, 1025 rejected. */
export const DEFAULT_MAX_NESTING = 1024;
/** QEMU's `MAX_TOKEN_COUNT`: 2 Mi tokens per message. */
export const DEFAULT_MAX_TOKENS = 2 * 1024 * 1024;

/** Which JSON the decoder reads. */
export type JsonDialect = "qemu" | "client";

/** Options of {@link JsonStreamDecoder}. */
export interface JsonStreamDecoderOptions {
  /**
   * `qemu`: what QEMU's own parser accepts, for a server (single-quoted strings, `\'`, duplicate
   * keys rejected). `client`: what a client must tolerate from QEMU: the same grammar, plus
   * `inf`, `-inf`, `nan`, `-nan` (QEMU prints non-finite doubles with `%.17g`) lexed as words so
   * that such a message gives one error item and the stream goes on; duplicate keys keep the
   * last value; `-0` is the double -0 (QEMU prints it only for -0.0).
   */
  dialect: JsonDialect;
  /** Bytes of tokens per message (whitespace not counted, as QEMU). Default 64 MiB. */
  maxMessageBytes?: number | undefined;
  /** Nesting depth of `{`/`[`. Default 1024. */
  maxNesting?: number | undefined;
  /** Tokens per message. Default 2 Mi. */
  maxTokens?: number | undefined;
  /**
   * Use the line-based `JSON.parse` fast path. Default true in both dialects; false forces the
   * exact path for every byte (tests compare both, and must find no difference).
   */
  fastPath?: boolean | undefined;
}

/** One result of the decoder: a message, or an error with QEMU's exact text in `desc`. */
export type JsonStreamItem =
  | { readonly kind: "value"; readonly value: JsonValue; readonly bytes: number }
  | JsonStreamErrorItem;

/**
 * Input the decoder rejected, as data: QEMU's exact text (`desc`, what the error reply says) and
 * the offending text when there is one. The {@link JsonStreamError} is made only when `error` is
 * read: capturing a stack trace costs far more than answering, and one megabyte of control
 * characters is a million of these (QEMU answers each one).
 */
export class JsonStreamErrorItem {
  readonly kind = "error" as const;
  #error: JsonStreamError | undefined;

  constructor(
    readonly desc: string,
    readonly raw?: unknown,
  ) {}

  /** The error as a {@link JsonStreamError}, for callers that throw or report it. */
  get error(): JsonStreamError {
    this.#error ??= new JsonStreamError(this.desc, this.raw);
    return this.#error;
  }
}

// Lexer states (json-lexer.c's `json_lexer_state`, renamed).
const S_START = 0;
const S_RECOVERY = 1;
const S_DQ = 2;
const S_DQ_ESC = 3;
const S_SQ = 4;
const S_SQ_ESC = 5;
const S_ZERO = 6;
const S_SIGN = 7;
const S_DIGITS = 8;
const S_MANTISSA = 9;
const S_MANTISSA_DIGITS = 10;
const S_EXP_E = 11;
const S_EXP_SIGN = 12;
const S_EXP_DIGITS = 13;
const S_KEYWORD = 14;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isLower(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}
/** Where the lexer's recovery state stops skipping (json-lexer.c, `IN_RECOVERY`). */
function endsRecovery(c: number): boolean {
  return (
    (c < 0x20 && c !== 0x09) ||
    c >= 0xfe ||
    c === 0x5b ||
    c === 0x5d ||
    c === 0x7b ||
    c === 0x7d ||
    c === 0x3a ||
    c === 0x2c
  );
}

function streamError(desc: string, raw?: unknown): JsonStreamItem {
  return new JsonStreamErrorItem(desc, raw);
}

/**
 * The exact path: QEMU's lexer and streamer over bytes. `out` collects the items of the
 * current `push`.
 *
 * The tokens of the message being gathered are kept back to back in one buffer (QEMU's
 * `token_size` is then simply the buffer's committed length), the token being lexed at its end.
 */
class ExactFramer {
  out: JsonStreamItem[] = [];
  private state = S_START;
  private buf = new Uint8Array(1024);
  /** Bytes in `buf`: committed tokens, then the token being lexed. */
  private len = 0;
  /** Where the token being lexed starts in `buf` (= bytes of committed tokens). */
  private tokBase = 0;
  /** The committed tokens: type, start and end in `buf`. */
  private types = new Uint8Array(256);
  private starts = new Int32Array(256);
  private ends = new Int32Array(256);
  private count = 0;
  private braces = 0;
  private brackets = 0;
  /** Absolute stream positions: start of the token being lexed, start of the message. */
  private tokStart = 0;
  private msgStart = 0;
  /** Absolute position of the next byte fed. */
  private pos = 0;
  private readonly parseOptions: ParseOptions;
  /**
   * Client dialect: a message whose tokens are plain JSON (double quotes, ASCII, no `\'`, no
   * surrogate or noncharacter escape, no 16+ digit integer, no two numbers in a row, so that the
   * tokens put back to back read the same) is given to the native `JSON.parse`, which agrees with
   * QEMU's parser on it; the restated parser runs only when `JSON.parse` rejects it, to give
   * QEMU's error text. The `qemu` dialect needs duplicate keys found: always the restated parser.
   */
  private readonly nativeParse: boolean;
  private plain = true;
  private lastWasNumber = false;
  /** The last bytes of a string were `\u`: the next byte tells whether the escape is risky. */
  private escapeU = false;
  private readonly ascii = new TextDecoder("ascii");

  constructor(
    private readonly maxBytes: number,
    private readonly maxNesting: number,
    private readonly maxTokens: number,
    /** Client dialect: `-` followed by a letter starts a word (`-inf`, `-nan`). */
    private readonly signedWords: boolean,
    parseOptions: ParseOptions,
  ) {
    this.parseOptions = parseOptions;
    this.nativeParse = parseOptions.duplicateKeys === "last-wins";
  }

  /** Between messages: nothing pending in the lexer or the streamer. */
  get clean(): boolean {
    return this.state === S_START && this.count === 0;
  }

  /** Bytes held for an unfinished message (tokens plus the token being lexed). */
  get pendingBytes(): number {
    return this.len;
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }

  private append(c: number): void {
    if (this.len === this.buf.length) this.grow(this.len + 1);
    this.buf[this.len++] = c;
  }

  private appendRange(b: Uint8Array, from: number, to: number): void {
    const need = this.len + (to - from);
    if (need > this.buf.length) this.grow(need);
    if (to - from > 32) this.buf.set(b.subarray(from, to), this.len);
    else {
      const buf = this.buf;
      let at = this.len;
      for (let i = from; i < to; i++) buf[at++] = b[i]!;
    }
    this.len = need;
  }

  private resetMessage(): void {
    this.braces = 0;
    this.brackets = 0;
    this.count = 0;
    this.len = 0;
    this.tokBase = 0;
    this.plain = true;
    this.lastWasNumber = false;
    this.escapeU = false;
    // Give back the memory of a large message.
    if (this.buf.length > 1024 * 1024) this.buf = new Uint8Array(1024);
    if (this.types.length > 65536) {
      this.types = new Uint8Array(256);
      this.starts = new Int32Array(256);
      this.ends = new Int32Array(256);
    }
  }

  /** A lexical error: the token so far (with the offending byte) is reported, then recovery. */
  private lexError(): void {
    const text = decodeQemuText(this.buf, this.tokBase, this.len);
    this.state = S_RECOVERY;
    this.resetMessage();
    this.out.push(streamError(`JSON parse error, stray '${text}'`, text));
  }

  private limitError(desc: string): void {
    this.resetMessage();
    this.out.push(streamError(desc));
  }

  /**
   * `json_message_process_token` for the token `buf[tokBase, len)`: counts, limits, and a parse
   * once the counts balance. `end` is the absolute position just after the token.
   */
  private token(type: TokenType, end: number): void {
    switch (type) {
      case TokenType.LCurly:
        this.braces++;
        break;
      case TokenType.RCurly:
        this.braces--;
        break;
      case TokenType.LSquare:
        this.brackets++;
        break;
      case TokenType.RSquare:
        this.brackets--;
        break;
    }
    // `tokBase` is the size of the tokens gathered so far, `len` adds this one.
    if (this.len + 1 > this.maxBytes) {
      this.limitError("JSON token size limit exceeded");
      return;
    }
    if (this.count + 1 > this.maxTokens) {
      this.limitError("JSON token count limit exceeded");
      return;
    }
    if (this.brackets + this.braces > this.maxNesting) {
      this.limitError("JSON nesting depth limit exceeded");
      return;
    }
    if (this.count === 0) this.msgStart = this.tokStart;
    if (type === TokenType.Integer || type === TokenType.Float) {
      if (this.lastWasNumber || this.len - this.tokBase > 15) this.plain = false;
      this.lastWasNumber = true;
    } else this.lastWasNumber = false;
    if (this.count === this.types.length) this.growTokens();
    this.types[this.count] = type;
    this.starts[this.count] = this.tokBase;
    this.ends[this.count] = this.len;
    this.count++;
    this.tokBase = this.len;
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    this.parse(end);
  }

  private growTokens(): void {
    const size = this.types.length * 2;
    const types = new Uint8Array(size);
    const starts = new Int32Array(size);
    const ends = new Int32Array(size);
    types.set(this.types);
    starts.set(this.starts);
    ends.set(this.ends);
    this.types = types;
    this.starts = starts;
    this.ends = ends;
  }

  /** Parses the tokens gathered (json_parser_parse) and emits the value or the error. */
  private parse(end: number): void {
    if (this.nativeParse && this.plain) {
      let value: JsonValue | undefined;
      try {
        value = JSON.parse(this.ascii.decode(this.buf.subarray(0, this.len))) as JsonValue;
      } catch {
        value = undefined; // not JSON: the restated parser finds QEMU's error below
      }
      if (value !== undefined) {
        const bytes = end - this.msgStart;
        this.resetMessage();
        this.out.push({ kind: "value", value, bytes });
        return;
      }
    }
    const result = parseTokens(
      {
        bytes: this.buf,
        types: this.types,
        starts: this.starts,
        ends: this.ends,
        count: this.count,
      },
      this.parseOptions,
    );
    const bytes = end - this.msgStart;
    this.resetMessage();
    this.out.push(
      result.ok ? { kind: "value", value: result.value, bytes } : streamError(result.desc),
    );
  }

  /** Ends the token being lexed as `type` and returns to the start state. */
  private finishToken(type: TokenType, end: number): void {
    this.state = S_START;
    this.token(type, end);
  }

  private structural(type: TokenType, c: number, at: number): void {
    this.tokStart = at;
    this.append(c);
    this.token(type, at + 1);
  }

  /** Feeds `b[start, end)`. */
  feed(b: Uint8Array, start: number, end: number): void {
    const offset = this.pos - start;
    const max = this.maxBytes;
    let i = start;
    while (i < end) {
      const c = b[i]!;
      switch (this.state) {
        case S_START:
          switch (c) {
            case 0x20:
            case 0x0a:
            case 0x0d:
            case 0x09:
              i++;
              continue;
            case 0x7b:
              this.structural(TokenType.LCurly, c, offset + i);
              i++;
              continue;
            case 0x7d:
              this.structural(TokenType.RCurly, c, offset + i);
              i++;
              continue;
            case 0x5b:
              this.structural(TokenType.LSquare, c, offset + i);
              i++;
              continue;
            case 0x5d:
              this.structural(TokenType.RSquare, c, offset + i);
              i++;
              continue;
            case 0x3a:
              this.structural(TokenType.Colon, c, offset + i);
              i++;
              continue;
            case 0x2c:
              this.structural(TokenType.Comma, c, offset + i);
              i++;
              continue;
            case 0x22:
              this.state = S_DQ;
              break;
            case 0x27:
              this.state = S_SQ;
              this.plain = false;
              break;
            case 0x30:
              this.state = S_ZERO;
              break;
            case 0x2d:
              this.state = S_SIGN;
              break;
            default:
              if (c >= 0x31 && c <= 0x39) this.state = S_DIGITS;
              else if (isLower(c)) this.state = S_KEYWORD;
              else {
                this.tokStart = offset + i;
                this.append(c);
                this.lexError();
                i++;
                continue;
              }
          }
          this.tokStart = offset + i;
          this.append(c);
          i++;
          break;
        case S_RECOVERY:
          if (endsRecovery(c)) {
            this.state = S_START;
            continue; // the byte starts a new token
          }
          i++;
          continue;
        case S_DQ:
        case S_SQ: {
          const quote = this.state === S_DQ ? 0x22 : 0x27;
          if (this.escapeU) {
            this.escapeU = false;
            if (c === 0x64 || c === 0x44 || c === 0x66 || c === 0x46) this.plain = false;
          }
          // Copy the run of ordinary bytes at once, stopping one byte past the size limit. While
          // the message is plain JSON, a non-ASCII byte also stops the run (it ends plainness).
          const high = this.plain ? 0x7f : 0xfd;
          let j = i;
          const stop = Math.min(end, i + (max + 1 - (this.len - this.tokBase)));
          while (j < stop) {
            const d = b[j]!;
            if (d === quote || d === 0x5c || d < 0x20 || d > high) break;
            j++;
          }
          if (j > i) {
            this.appendRange(b, i, j);
            i = j;
            break;
          }
          this.append(c);
          i++;
          if (c === quote) this.finishToken(TokenType.String, offset + i);
          else if (c === 0x5c) this.state = this.state === S_DQ ? S_DQ_ESC : S_SQ_ESC;
          else if (c >= 0x80 && c <= 0xfd) this.plain = false;
          else this.lexError();
          break;
        }
        case S_DQ_ESC:
        case S_SQ_ESC:
          this.append(c);
          i++;
          if (c === 0x27) this.plain = false;
          else if (c === 0x75) this.escapeU = true;
          if (c >= 0x20 && c <= 0xfd) this.state = this.state === S_DQ_ESC ? S_DQ : S_SQ;
          else this.lexError();
          break;
        case S_ZERO:
          if (isDigit(c)) {
            this.append(c);
            i++;
            this.lexError();
          } else if (c === 0x2e) {
            this.append(c);
            i++;
            this.state = S_MANTISSA;
          } else {
            this.finishToken(TokenType.Integer, offset + i);
            continue;
          }
          break;
        case S_SIGN:
          this.append(c);
          i++;
          if (c === 0x30) this.state = S_ZERO;
          else if (c >= 0x31 && c <= 0x39) this.state = S_DIGITS;
          else if (this.signedWords && isLower(c)) this.state = S_KEYWORD;
          else this.lexError();
          break;
        case S_DIGITS:
          if (isDigit(c)) {
            this.append(c);
            i++;
          } else if (c === 0x65 || c === 0x45) {
            this.append(c);
            i++;
            this.state = S_EXP_E;
          } else if (c === 0x2e) {
            this.append(c);
            i++;
            this.state = S_MANTISSA;
          } else {
            this.finishToken(TokenType.Integer, offset + i);
            continue;
          }
          break;
        case S_MANTISSA:
          this.append(c);
          i++;
          if (isDigit(c)) this.state = S_MANTISSA_DIGITS;
          else this.lexError();
          break;
        case S_MANTISSA_DIGITS:
          if (isDigit(c)) {
            this.append(c);
            i++;
          } else if (c === 0x65 || c === 0x45) {
            this.append(c);
            i++;
            this.state = S_EXP_E;
          } else {
            this.finishToken(TokenType.Float, offset + i);
            continue;
          }
          break;
        case S_EXP_E:
          this.append(c);
          i++;
          if (c === 0x2d || c === 0x2b) this.state = S_EXP_SIGN;
          else if (isDigit(c)) this.state = S_EXP_DIGITS;
          else this.lexError();
          break;
        case S_EXP_SIGN:
          this.append(c);
          i++;
          if (isDigit(c)) this.state = S_EXP_DIGITS;
          else this.lexError();
          break;
        case S_EXP_DIGITS:
          if (isDigit(c)) {
            this.append(c);
            i++;
          } else {
            this.finishToken(TokenType.Float, offset + i);
            continue;
          }
          break;
        case S_KEYWORD:
          if (isLower(c)) {
            this.append(c);
            i++;
          } else {
            this.finishToken(TokenType.Keyword, offset + i);
            continue;
          }
          break;
      }
      // No single token may grow past the limit (json-lexer.c): cut it off; the streamer then
      // rejects it by size and the lexer starts afresh with the next byte.
      if (this.len - this.tokBase > max) {
        this.state = S_START;
        this.limitError("JSON token size limit exceeded");
      }
    }
    this.pos += end - start;
  }

  /** End of input (`json_message_parser_flush`): finish or reject the token, parse what is left. */
  flush(): void {
    const end = this.pos;
    while (this.state !== S_START) {
      switch (this.state) {
        case S_RECOVERY:
          this.state = S_START;
          break;
        case S_ZERO:
        case S_DIGITS:
          this.finishToken(TokenType.Integer, end);
          break;
        case S_MANTISSA_DIGITS:
        case S_EXP_DIGITS:
          this.finishToken(TokenType.Float, end);
          break;
        case S_KEYWORD:
          this.finishToken(TokenType.Keyword, end);
          break;
        default:
          this.lexError();
      }
    }
    // JSON_END_OF_INPUT: whatever tokens are left are parsed (and cannot be complete).
    if (this.count > 0) this.parse(end);
  }
}

/** Which fast-path guards a line needs (see `JsonStreamDecoder.lines`). */
const CHECK_ESCAPES = 1;
const CHECK_INTEGERS = 2;
const CHECK_ALL = CHECK_ESCAPES | CHECK_INTEGERS;

/** Surrogate and noncharacter `\u` escapes, which QEMU checks and `JSON.parse` does not. */
const riskyEscape = /\\u[dDfF]/;

/**
 * Whether a line holds a run of 16+ digits not after a `.`: an integer that may need int64 or
 * uint64 precision, which `JSON.parse` would round. Every run of 16 characters covers an index
 * that is a multiple of 16 (minus one), so only those are probed; a digit there is measured
 * both ways. Strings may give false alarms, which only cost the exact path.
 */
function hasLongInteger(line: string): boolean {
  const n = line.length;
  for (let i = 15; i < n; i += 16) {
    if (!isDigit(line.charCodeAt(i))) continue;
    // A run of 16 through `i` also covers `i - 8` or `i + 8`: most short numbers stop here.
    if (!isDigit(line.charCodeAt(i - 8)) && !(i + 8 < n && isDigit(line.charCodeAt(i + 8))))
      continue;
    let a = i;
    let b = i;
    while (a > 0 && isDigit(line.charCodeAt(a - 1))) a--;
    while (b + 1 < n && isDigit(line.charCodeAt(b + 1))) b++;
    if (b - a >= 15 && (a === 0 || line.charCodeAt(a - 1) !== 0x2e)) return true;
    i = b;
  }
  return false;
}

/** Raw noncharacters, which QEMU rejects inside strings and `TextDecoder` accepts. */
const rawNoncharacter =
  /[\uFDD0-\uFDEF\uFFFE\uFFFF]|[\uD83F\uD87F\uD8BF\uD8FF\uD93F\uD97F\uD9BF\uD9FF\uDA3F\uDA7F\uDABF\uDAFF\uDB3F\uDB7F\uDBBF\uDBFF][\uDFFE\uDFFF]/;

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Incremental decoder of a QMP byte stream into JSON messages (§1.8).
 *
 * Feed it chunks as they arrive; each `push` returns the items completed by that chunk, in
 * order. Chunks may split messages, tokens and UTF-8 sequences anywhere; messages may follow
 * each other directly or with whitespace (`\r\n`) between them; a top-level scalar is a message.
 *
 * Errors carry QEMU's exact text in `desc` (`JSON parse error, stray '@'`, `JSON nesting
 * depth limit exceeded`, …) and the decoder recovers as QEMU does: the tokens of the bad message
 * are dropped and the rest of the input is lexed afresh, so one bad message can give several
 * errors, exactly as many as QEMU gives.
 *
 * @example
 * const decoder = new JsonStreamDecoder({ dialect: "client" });
 * for (const item of decoder.push(chunk)) if (item.kind === "value") handle(item.value);
 */
export class JsonStreamDecoder {
  private readonly exact: ExactFramer;
  private readonly fast: boolean;
  /** The `qemu` dialect: fast lines must also pass {@link JsonStreamDecoder.serverLine}. */
  private readonly server: boolean;
  /** In fast mode, bytes are framed by lines; in exact mode every byte goes to the exact path. */
  private exactActive = false;
  private readonly maxBytes: number;
  private readonly maxNesting: number;
  private readonly maxTokens: number;
  private readonly walkThreshold: number;
  /**
   * `ignoreBOM`: a byte-order mark stays in the text. By default `TextDecoder` drops one at the
   * start of its input, and the fast path would then read a message that QEMU's lexer rejects
   * (its bytes are no JSON token): kept, it sends the line to the exact path, which says so.
   */
  private readonly utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  private readonly walk = new ValueMeasure();
  private readonly encoder = new TextEncoder();

  constructor(options: JsonStreamDecoderOptions) {
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxNesting = options.maxNesting ?? DEFAULT_MAX_NESTING;
    this.maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
    const client = options.dialect === "client";
    this.exact = new ExactFramer(
      this.maxBytes,
      this.maxNesting,
      this.maxTokens,
      client,
      client
        ? { duplicateKeys: "last-wins", minusZero: "minus-zero" }
        : { duplicateKeys: "error", minusZero: "zero" },
    );
    this.fast = options.fastPath !== false;
    this.server = !client;
    // Below this many bytes a line can break neither the nesting nor the token-count limit.
    this.walkThreshold = Math.min(2 * this.maxNesting + 2, this.maxTokens + 1);
  }

  /** Bytes held for a message not yet complete. */
  get pendingBytes(): number {
    return this.exact.pendingBytes;
  }

  /** Decodes one chunk; returns the items it completes. */
  push(chunk: Uint8Array): JsonStreamItem[] {
    const out: JsonStreamItem[] = [];
    this.exact.out = out;
    if (!this.fast) {
      this.exact.feed(chunk, 0, chunk.length);
      return out;
    }
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      if (this.exactActive) {
        const nl = chunk.indexOf(0x0a, off);
        const stop = nl < 0 ? n : nl + 1;
        this.exact.feed(chunk, off, stop);
        off = stop;
        if (nl >= 0 && this.exact.clean) this.exactActive = false;
        continue;
      }
      // Most chunks are whole lines: then neither a search nor a view of the chunk is needed.
      const last = chunk[n - 1] === 0x0a ? n - 1 : chunk.lastIndexOf(0x0a);
      if (last >= off) {
        this.lines(off === 0 && last === n - 1 ? chunk : chunk.subarray(off, last + 1), out);
        off = last + 1;
        continue;
      }
      // The unterminated tail goes to the exact path at once: it may hold complete messages
      // (a peer need not end its lines), and its partial message is bounded by the limits there.
      this.exactLine(chunk, off, n);
      off = n;
    }
    return out;
  }

  /** End of input: completes or rejects what is pending (QEMU's flush), then starts afresh. */
  end(): JsonStreamItem[] {
    const out: JsonStreamItem[] = [];
    this.exact.out = out;
    this.exact.flush();
    this.exactActive = false;
    return out;
  }

  /** Frames a batch of whole lines (it ends with `\n`). */
  private lines(batch: Uint8Array, out: JsonStreamItem[]): void {
    let text: string;
    try {
      text = this.utf8.decode(batch);
    } catch {
      // Invalid UTF-8 somewhere: lines that decode take the fast path, the others the exact one.
      let s = 0;
      while (s < batch.length) {
        const nl = batch.indexOf(0x0a, s);
        const line = batch.subarray(s, nl + 1);
        s = nl + 1;
        let lineText: string | undefined;
        if (!this.exactActive) {
          try {
            lineText = this.utf8.decode(line);
          } catch {
            lineText = undefined;
          }
        }
        if (
          lineText === undefined ||
          !this.fastLine(lineText, 0, lineText.length - 1, false, out, CHECK_ALL)
        ) {
          this.exactLine(line, 0, line.length);
        }
      }
      return;
    }
    const ascii = text.length === batch.length;
    // The guards run once over the whole batch; lines are checked one by one only when the
    // batch as a whole raises the alarm (rare in what QEMU prints).
    const check =
      (text.includes("\\u") ? CHECK_ESCAPES : 0) | (hasLongInteger(text) ? CHECK_INTEGERS : 0);
    let s = 0;
    while (s < text.length) {
      const nl = text.indexOf("\n", s);
      if (this.exactActive || !this.fastLine(text, s, nl, ascii, out, check)) {
        if (ascii) this.exactLine(batch, s, nl + 1);
        else {
          const bytes = this.encoder.encode(text.slice(s, nl + 1));
          this.exactLine(bytes, 0, bytes.length);
        }
      }
      s = nl + 1;
    }
  }

  private exactLine(bytes: Uint8Array, from: number, to: number): void {
    this.exact.feed(bytes, from, to);
    this.exactActive = !this.exact.clean;
  }

  /**
   * Tries `text[s, nl)` (one line, without its `\n`) on the fast path; false when the line must
   * take the exact path instead.
   */
  private fastLine(
    text: string,
    s: number,
    nl: number,
    ascii: boolean,
    out: JsonStreamItem[],
    check: number,
  ): boolean {
    // Trim the line's whitespace (usually just the `\r`).
    let a = s;
    let z = nl;
    if (z > a && text.charCodeAt(z - 1) === 0x0d) z--;
    if (z > a && isJsonSpace(text.charCodeAt(z - 1)))
      while (z > a && isJsonSpace(text.charCodeAt(z - 1))) z--;
    if (isJsonSpace(text.charCodeAt(a))) while (a < z && isJsonSpace(text.charCodeAt(a))) a++;
    if (a === z) return true; // a blank line: nothing for QEMU's lexer either
    const line = a === s && z === nl ? text.slice(s, nl) : text.slice(a, z);
    const bytes = ascii ? line.length : utf8Length(line);
    if (bytes >= this.maxBytes) return false;
    if (this.server && !serverLineShape(line, ascii)) return false;
    if (check & CHECK_INTEGERS && hasLongInteger(line)) return false;
    if (check & CHECK_ESCAPES && line.includes("\\u") && riskyEscape.test(line)) return false;
    if (!ascii && rawNoncharacter.test(line)) return false;
    let value: JsonValue;
    try {
      value = JSON.parse(line) as JsonValue;
    } catch {
      return false;
    }
    if (this.server) {
      if (!this.serverLine(line, value, bytes)) return false;
    } else if (bytes >= this.walkThreshold && !this.withinLimits(value)) return false;
    out.push({ kind: "value", value, bytes });
    return true;
  }

  /**
   * The `qemu` dialect's extra proof that `JSON.parse` read `line` (an object, see
   * {@link serverLineShape}) exactly as QEMU's parser would. The shared guards above already
   * sent to the exact path what the two parsers read differently in strings and numbers:
   * integers of 16+ digits (int64/uint64 in `parse_literal`), `\u` escapes of surrogates and
   * noncharacters (checked in `parse_string`), and (via the shape check) non-ASCII bytes and
   * `-0`. `JSON.parse` itself rejects single-quoted strings, the `\'` escape and raw control
   * characters, which then take the exact path too (`json-lexer.c` accepts the first two, and
   * its error recovery must report the third). What is left is:
   *
   * - **Duplicate keys**: `parse_pair` rejects them (QEMU 4.0+), `JSON.parse` keeps the last.
   *   In valid JSON every `:` outside a string separates one member, so the line has as many
   *   members as such colons; the parsed objects together have as many own keys as *distinct*
   *   members. The two counts agree exactly when no object repeats a key.
   * - **Limits** (`json-streamer.c`): nesting depth and token count, measured on the value
   *   (the token size limit was checked on the line's length).
   *
   * Framing is the same too: a line that is one JSON object balances its braces only at its
   * last `}`, so QEMU's streamer also ends the message there and nowhere before.
   */
  private serverLine(line: string, value: JsonValue, bytes: number): boolean {
    const walk = this.walk;
    walk.keys = 0;
    walk.tokens = 0;
    if (!measure(value, 0, this.maxNesting, walk)) return false;
    if (bytes >= this.walkThreshold && walk.tokens > this.maxTokens) return false;
    // Most requests have no `:` inside their strings: counting every colon is then enough.
    return countColons(line) === walk.keys || countColonsOutsideStrings(line) === walk.keys;
  }

  /** Whether a parsed value keeps to the nesting and token-count limits. */
  private withinLimits(value: JsonValue): boolean {
    const walk = this.walk;
    walk.keys = 0;
    walk.tokens = 0;
    return measure(value, 0, this.maxNesting, walk) && walk.tokens <= this.maxTokens;
  }
}

/** What {@link measure} counts (one instance per decoder, reused: the walk allocates nothing). */
class ValueMeasure {
  /** Own keys of all the objects. */
  keys = 0;
  /** QEMU tokens the value takes when written without duplicate keys. */
  tokens = 0;
}

/**
 * Counts the keys and tokens of `v` into `m`; false as soon as the nesting passes `maxNesting`
 * (QEMU counts `{` and `[` alike). A plain function, not a closure, so a call costs no allocation.
 */
function measure(v: JsonValue, depth: number, maxNesting: number, m: ValueMeasure): boolean {
  if (v === null || typeof v !== "object") {
    m.tokens++;
    return true;
  }
  if (depth + 1 > maxNesting) return false;
  if (Array.isArray(v)) {
    m.tokens += 2 + Math.max(0, v.length - 1);
    for (let i = 0; i < v.length; i++) if (!measure(v[i]!, depth + 1, maxNesting, m)) return false;
  } else {
    const keys = Object.keys(v);
    m.keys += keys.length;
    m.tokens += 2 + Math.max(0, keys.length - 1) + 2 * keys.length;
    for (let i = 0; i < keys.length; i++) {
      if (!measure(v[keys[i]!]!, depth + 1, maxNesting, m)) return false;
    }
  }
  return true;
}

/**
 * Whether a trimmed line may take the server's fast path at all: pure ASCII (QEMU's modified
 * UTF-8 rules then never come into play), one object from its first to its last byte, and no
 * `-0` anywhere (QEMU's parser reads the integer `-0` as 0, `JSON.parse` as -0; a false alarm in
 * a string or a `-0.5` merely costs the exact path).
 */
function serverLineShape(line: string, ascii: boolean): boolean {
  return (
    ascii &&
    line.charCodeAt(0) === 0x7b &&
    line.charCodeAt(line.length - 1) === 0x7d &&
    !line.includes("-0")
  );
}

/** Every `:` of a line, in strings or not. */
function countColons(line: string): number {
  let n = 0;
  for (let i = line.indexOf(":"); i >= 0; i = line.indexOf(":", i + 1)) n++;
  return n;
}

/** The `:` of a line of valid JSON that stand outside strings (its name separators). */
function countColonsOutsideStrings(line: string): number {
  let n = 0;
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // an escape: the next character cannot end the string
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x3a) n++;
  }
  return n;
}
