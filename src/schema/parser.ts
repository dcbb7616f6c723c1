/**
 * The QAPI schema language, text to expressions (QEMU's `scripts/qapi/parser.py`, restated).
 *
 * The syntax is JSON with three differences: strings use single quotes, `#` starts a comment that
 * runs to the end of the line, and a block of comment lines between two `##` lines is a
 * documentation block. Every top-level expression is an object; `include` and `pragma` objects are
 * directives, everything else is a definition. Only strings, `true`/`false`, objects and arrays
 * exist (no numbers, no `null`).
 *
 * File access is injected (`readFile`), so this module stays pure.
 *
 * @module
 */
import { type DocBlock, parseDocBlock } from "./doc.js";
import { dirName, joinPath, type SourceInfo, schemaError } from "./source.js";

/** A parsed QAPI value: what the schema language can spell. */
export type QapiValue = string | boolean | QapiValue[] | QapiObject;
/** A QAPI object; keys keep their source order. */
export interface QapiObject {
  [key: string]: QapiValue;
}

/** One top-level definition with where it came from and the doc block right before it. */
export interface ParsedExpr {
  readonly expr: QapiObject;
  readonly info: SourceInfo;
  readonly doc: DocBlock | undefined;
}

/** Pragmas (`{ 'pragma': { … } }`), merged over all files. */
export interface Pragmas {
  docRequired: boolean;
  /** Commands allowed to break the naming rules (`command-name-exceptions`, formerly `name-case-whitelist`). */
  commandNameExceptions: Set<string>;
  /** Commands allowed to return a non-object (`command-returns-exceptions`, formerly `returns-whitelist`). */
  commandReturnsExceptions: Set<string>;
  /** Types whose members need no documentation (`documentation-exceptions`, QEMU 9.0+). */
  documentationExceptions: Set<string>;
  /** Types whose members may break the naming rules (`member-name-exceptions`, formerly `name-case-whitelist`). */
  memberNameExceptions: Set<string>;
  /** Whether any file used `documentation-exceptions` (QEMU added it with the member-doc rule). */
  sawDocumentationExceptions: boolean;
  /** Whether any file used the naming pragmas of QEMU 6.0+ (`command-name-exceptions`, `member-name-exceptions`). */
  sawModernNamePragmas: boolean;
}

/** The result of reading a schema with all its includes. */
export interface ParsedSchema {
  readonly exprs: readonly ParsedExpr[];
  /** Free-standing documentation blocks (section headings, module docs). */
  readonly freeDocs: readonly DocBlock[];
  readonly pragmas: Pragmas;
  /** Every file read, in include order. */
  readonly files: readonly string[];
}

/** Reads a file as text; throws (any error) when it cannot. */
export type ReadFile = (path: string) => string;

/** Options for {@link parseSchema}. */
export interface ParseOptions {
  /** How to read files (e.g. `readFileNode` from `read-file-node.ts`, or a map for tests). */
  readonly readFile: ReadFile;
}

export function emptyPragmas(): Pragmas {
  return {
    docRequired: false,
    commandNameExceptions: new Set(),
    commandReturnsExceptions: new Set(),
    documentationExceptions: new Set(),
    memberNameExceptions: new Set(),
    sawDocumentationExceptions: false,
    sawModernNamePragmas: false,
  };
}

/**
 * Parse `file` and everything it includes.
 * @throws SchemaError on the first syntax error, bad directive or unreadable include.
 */
export function parseSchema(file: string, options: ParseOptions): ParsedSchema {
  const state: LoadState = {
    exprs: [],
    freeDocs: [],
    pragmas: emptyPragmas(),
    files: [],
    seen: new Set(),
    readFile: options.readFile,
  };
  const text = readOrThrow(options.readFile, file, undefined);
  loadFile(state, file, text, []);
  return {
    exprs: state.exprs,
    freeDocs: state.freeDocs,
    pragmas: state.pragmas,
    files: state.files,
  };
}

/** Parse one schema text (no includes allowed unless `readFile` is given). */
export function parseSchemaText(
  text: string,
  file = "<input>",
  readFile?: ReadFile | undefined,
): ParsedSchema {
  const state: LoadState = {
    exprs: [],
    freeDocs: [],
    pragmas: emptyPragmas(),
    files: [],
    seen: new Set(),
    readFile:
      readFile ??
      ((path) => {
        throw new Error(`no file access to read ${path}`);
      }),
  };
  loadFile(state, file, text, []);
  return {
    exprs: state.exprs,
    freeDocs: state.freeDocs,
    pragmas: state.pragmas,
    files: state.files,
  };
}

interface LoadState {
  exprs: ParsedExpr[];
  freeDocs: DocBlock[];
  pragmas: Pragmas;
  files: string[];
  seen: Set<string>;
  readFile: ReadFile;
}

function readOrThrow(readFile: ReadFile, path: string, at: SourceInfo | undefined): string {
  try {
    return readFile(path);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const info = at ?? { file: path, line: 1, column: 1, includedFrom: [] };
    throw schemaError(`can't read ${at ? "include " : ""}file '${path}': ${why}`, info, cause);
  }
}

function loadFile(
  state: LoadState,
  file: string,
  text: string,
  includedFrom: SourceInfo["includedFrom"],
): void {
  state.seen.add(file);
  state.files.push(file);
  const lexer = new Lexer(text, file, includedFrom);
  let pendingDoc: DocBlock | undefined;
  for (;;) {
    lexer.next();
    if (lexer.tok === "EOF") break;
    if (lexer.tok === "#") {
      // A `##` line at top level starts a documentation block (parser.py get_doc).
      if (pendingDoc) {
        if (pendingDoc.symbol !== undefined) {
          throw schemaError(
            `documentation for '${pendingDoc.symbol}' is not followed by the definition`,
            pendingDoc.info,
          );
        }
        state.freeDocs.push(pendingDoc);
      }
      pendingDoc = lexer.readDocBlock();
      continue;
    }
    const info = lexer.info();
    const value = lexer.parseValue();
    if (typeof value !== "object" || Array.isArray(value)) {
      throw schemaError("top-level expression must be an object", info);
    }
    if ("include" in value) {
      flushDoc(pendingDoc, state.freeDocs);
      pendingDoc = undefined;
      onlyKey(value, "include", info);
      const target = value.include;
      if (typeof target !== "string")
        throw schemaError("value of 'include' must be a string", info);
      const path = joinPath(dirName(file), target);
      if (path === file || includedFrom.some((loc) => loc.file === path)) {
        throw schemaError(`inclusion loop for ${target}`, info);
      }
      // QEMU includes each file once; a repeated include is silently skipped.
      if (state.seen.has(path)) continue;
      const chain = [...includedFrom, { file, line: info.line, column: info.column }];
      const incText = readOrThrow(state.readFile, path, info);
      loadFile(state, path, incText, chain);
      continue;
    }
    if ("pragma" in value) {
      flushDoc(pendingDoc, state.freeDocs);
      pendingDoc = undefined;
      onlyKey(value, "pragma", info);
      applyPragmas(state.pragmas, value.pragma, info);
      continue;
    }
    let doc: DocBlock | undefined;
    if (pendingDoc) {
      // parser.py: the block right before a definition must be that definition's.
      if (pendingDoc.symbol === undefined) {
        throw schemaError(
          "definition documentation required (the block before it has no '@NAME:' line)",
          pendingDoc.info,
        );
      }
      doc = pendingDoc;
      pendingDoc = undefined;
    }
    state.exprs.push({ expr: value, info, doc });
  }
  if (pendingDoc) {
    if (pendingDoc.symbol !== undefined) {
      throw schemaError(
        `documentation for '${pendingDoc.symbol}' is not followed by the definition`,
        pendingDoc.info,
      );
    }
    state.freeDocs.push(pendingDoc);
  }
}

/** A doc block before a directive: a free-form one is kept, a definition's one is an error. */
function flushDoc(doc: DocBlock | undefined, freeDocs: DocBlock[]): void {
  if (doc === undefined) return;
  if (doc.symbol !== undefined) {
    throw schemaError(
      `documentation for '${doc.symbol}' is not followed by the definition`,
      doc.info,
    );
  }
  freeDocs.push(doc);
}

function onlyKey(value: QapiObject, key: string, info: SourceInfo): void {
  const extra = Object.keys(value).filter((k) => k !== key);
  if (extra.length > 0) {
    throw schemaError(`invalid '${key}' directive: unexpected key '${extra[0]}'`, info);
  }
}

const pragmaNameLists: Record<string, keyof Pragmas> = {
  "command-name-exceptions": "commandNameExceptions",
  "name-case-whitelist": "memberNameExceptions",
  "command-returns-exceptions": "commandReturnsExceptions",
  "returns-whitelist": "commandReturnsExceptions",
  "documentation-exceptions": "documentationExceptions",
  "member-name-exceptions": "memberNameExceptions",
};

function applyPragmas(pragmas: Pragmas, value: QapiValue | undefined, info: SourceInfo): void {
  if (typeof value !== "object" || Array.isArray(value)) {
    throw schemaError("value of 'pragma' must be an object", info);
  }
  for (const [name, v] of Object.entries(value)) {
    if (name === "doc-required") {
      if (typeof v !== "boolean") throw schemaError("pragma 'doc-required' must be boolean", info);
      pragmas.docRequired = v;
      continue;
    }
    const field = pragmaNameLists[name];
    if (field === undefined) throw schemaError(`unknown pragma '${name}'`, info);
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      throw schemaError(`pragma ${name} must be a list of strings`, info);
    }
    const set = pragmas[field] as Set<string>;
    for (const s of v as string[]) set.add(s);
    // The old whitelist named both commands and members.
    if (name === "name-case-whitelist")
      for (const s of v as string[]) pragmas.commandNameExceptions.add(s);
    if (name === "documentation-exceptions") pragmas.sawDocumentationExceptions = true;
    if (name === "command-name-exceptions" || name === "member-name-exceptions") {
      pragmas.sawModernNamePragmas = true;
    }
  }
}

type Tok = "{" | "}" | "[" | "]" | ":" | "," | "'" | "t" | "f" | "#" | "EOF";

/** The tokenizer and recursive-descent parser (parser.py `accept`, `get_members`, `get_values`). */
class Lexer {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  tok: Tok = "EOF";
  /** Start of the current token. */
  private tokPos = 0;
  private tokLine = 1;
  private tokLineStart = 0;
  /** The string value of a `'` token. */
  val = "";

  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly includedFrom: SourceInfo["includedFrom"],
  ) {}

  /** The current token (a method, so that type narrowing does not survive `next()`). */
  peek(): Tok {
    return this.tok;
  }

  info(): SourceInfo {
    return {
      file: this.file,
      line: this.tokLine,
      column: this.tokPos - this.tokLineStart + 1,
      includedFrom: this.includedFrom,
    };
  }

  private error(message: string): never {
    throw schemaError(message, this.info());
  }

  /** Advance to the next token; `#` comments are returned only when they start a `##` block at top level. */
  next(skipComments = false): void {
    for (;;) {
      this.tokPos = this.pos;
      this.tokLine = this.line;
      this.tokLineStart = this.lineStart;
      if (this.pos >= this.text.length) {
        this.tok = "EOF";
        return;
      }
      const ch = this.text[this.pos++]!;
      if (ch === "#") {
        const end = this.text.indexOf("\n", this.pos);
        const lineEnd = end < 0 ? this.text.length : end;
        const comment = this.text.slice(this.pos - 1, lineEnd);
        if (!skipComments && comment.startsWith("##")) {
          this.pos = this.tokPos;
          this.tok = "#";
          return;
        }
        this.pos = lineEnd;
        continue;
      }
      if ("{}[]:,".includes(ch)) {
        this.tok = ch as Tok;
        return;
      }
      if (ch === "'") {
        this.readString();
        this.tok = "'";
        return;
      }
      if (ch === "t" && this.text.startsWith("rue", this.pos)) {
        this.pos += 3;
        this.tok = "t";
        return;
      }
      if (ch === "f" && this.text.startsWith("alse", this.pos)) {
        this.pos += 4;
        this.tok = "f";
        return;
      }
      if (ch === "\n") {
        this.line++;
        this.lineStart = this.pos;
        continue;
      }
      if (ch === " " || ch === "\t" || ch === "\r" || ch === "\f" || ch === "\v") continue;
      this.error(`stray '${ch}'`);
    }
  }

  private readString(): void {
    let out = "";
    for (;;) {
      if (this.pos >= this.text.length || this.text[this.pos] === "\n") {
        this.error('missing terminating "\'"');
      }
      const ch = this.text[this.pos++]!;
      if (ch === "'") break;
      if (ch === "\\") {
        // QEMU 2.x accepted JSON-style escapes; later releases reject backslashes outright.
        const esc = this.text[this.pos++];
        const simple: Record<string, string> = {
          "\\": "\\",
          "'": "'",
          '"': '"',
          "/": "/",
          b: "\b",
          f: "\f",
          n: "\n",
          r: "\r",
          t: "\t",
        };
        if (esc !== undefined && esc in simple) {
          out += simple[esc];
          continue;
        }
        if (esc === "u") {
          const hex = this.text.slice(this.pos, this.pos + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.error("\\u escape needs 4 hex digits");
          this.pos += 4;
          out += String.fromCharCode(Number.parseInt(hex, 16));
          continue;
        }
        this.error(`unknown escape \\${esc ?? ""}`);
      }
      const code = ch.charCodeAt(0);
      if (code < 32 || code >= 127) {
        this.error(`funny character in string: U+${code.toString(16).padStart(4, "0")}`);
      }
      out += ch;
    }
    this.val = out;
  }

  /** Parse one value starting at the current token. */
  parseValue(depth = 0): QapiValue {
    if (depth > 64) this.error("nesting too deep");
    switch (this.tok) {
      case "{":
        return this.parseObject(depth);
      case "[":
        return this.parseArray(depth);
      case "'":
        return this.val;
      case "t":
        return true;
      case "f":
        return false;
      default:
        this.error(
          this.tok === "EOF"
            ? "expected '{', '[', string, or boolean, found end of file"
            : `expected '{', '[', string, or boolean, found '${this.tok}'`,
        );
    }
  }

  private parseObject(depth: number): QapiObject {
    const obj: QapiObject = Object.create(null);
    this.next(true);
    if (this.peek() === "}") return { ...obj };
    for (;;) {
      if (this.peek() !== "'") this.error("expected string or '}'");
      const key = this.val;
      if (Object.hasOwn(obj, key)) this.error(`duplicate key '${key}'`);
      this.next(true);
      if (this.peek() !== ":") this.error("expected ':'");
      this.next(true);
      obj[key] = this.parseValue(depth + 1);
      this.next(true);
      if (this.peek() === "}") return { ...obj };
      if (this.peek() !== ",") this.error("expected ',' or '}'");
      this.next(true);
    }
  }

  private parseArray(depth: number): QapiValue[] {
    const out: QapiValue[] = [];
    this.next(true);
    if (this.peek() === "]") return out;
    for (;;) {
      if (
        this.peek() !== "{" &&
        this.peek() !== "[" &&
        this.peek() !== "'" &&
        this.peek() !== "t" &&
        this.peek() !== "f"
      ) {
        this.error("expected '{', '[', ']', string, or boolean");
      }
      out.push(this.parseValue(depth + 1));
      this.next(true);
      if (this.peek() === "]") return out;
      if (this.peek() !== ",") this.error("expected ',' or ']'");
      this.next(true);
    }
  }

  /** Read a `##` … `##` documentation block starting at the current position. */
  readDocBlock(): DocBlock {
    const start = this.info();
    const lines: { text: string; line: number }[] = [];
    // The opening line must be exactly `##`.
    const first = this.readLine();
    if (first.trimEnd() !== "##") this.error("junk after '##' at start of documentation comment");
    for (;;) {
      this.skipBlanks();
      if (this.pos >= this.text.length || this.text[this.pos] !== "#") {
        throw schemaError("documentation comment must end with '##'", {
          ...start,
          line: this.line,
          column: this.pos - this.lineStart + 1,
        });
      }
      const lineNo = this.line;
      const col = this.pos - this.lineStart + 1;
      const raw = this.readLine().trimEnd();
      if (raw.startsWith("##")) {
        if (raw !== "##") {
          throw schemaError("junk after '##' at end of documentation comment", {
            ...start,
            line: lineNo,
            column: col,
          });
        }
        break;
      }
      if (raw !== "#" && !raw.startsWith("# ")) {
        throw schemaError("missing space after #", { ...start, line: lineNo, column: col });
      }
      lines.push({ text: raw.slice(2), line: lineNo });
    }
    return parseDocBlock(lines, start);
  }

  private skipBlanks(): void {
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos]!;
      if (ch === "\n") {
        this.pos++;
        this.line++;
        this.lineStart = this.pos;
      } else if (ch === " " || ch === "\t" || ch === "\r") this.pos++;
      else break;
    }
  }

  /** The rest of the current line (without the newline); moves to the next line. */
  private readLine(): string {
    const end = this.text.indexOf("\n", this.pos);
    const lineEnd = end < 0 ? this.text.length : end;
    const s = this.text.slice(this.pos, lineEnd);
    this.pos = end < 0 ? lineEnd : lineEnd + 1;
    if (end >= 0) {
      this.line++;
      this.lineStart = this.pos;
    }
    return s;
  }
}
