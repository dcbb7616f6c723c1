/**
 * The shell's line language and its completion, without any terminal I/O.
 *
 * A line is one of:
 * - `COMMAND [key=value | key:=JSON ...]`: qmp-shell's shorthand, typed by the peer's schema
 *   (see `key-value.ts`); values may be quoted (`id="a b"`, `id='a b'`);
 * - raw JSON: `{"execute": "...", "arguments": {...}}` (or any JSON text: the peer judges it);
 * - a shell word: `help [COMMAND [BRANCH]]`, `commands`, `events [on|off]`, `exit`.
 *
 * `quit` is QMP's `quit`, as in QMP itself and in QEMU's `qmp-shell`: it stops QEMU (the shell
 * asks first when it runs in a terminal). `exit` and Ctrl-D leave the shell and QEMU running.
 *
 * Completion offers, from the peer's own `query-qmp-schema`: command names (and shell words) for
 * the first word; then the command's argument names as `name=` (nested members as `a.b=`), and
 * after `name=` the values an enum or boolean member accepts.
 *
 * @module
 */
import type { JsonObject, JsonValue } from "../base/json.js";
import type { MemberInfo, PeerSchema } from "./introspection.js";
import { parseJsonText, parseKeyValues } from "./key-value.js";
import { UsageError } from "./usage-error.js";

/** The words the shell itself understands. */
export const shellWords = ["help", "commands", "events", "exit"] as const;

/** What a line asks for. */
export type ShellLine =
  | { readonly kind: "empty" }
  | { readonly kind: "execute"; readonly command: string; readonly args: JsonObject }
  | { readonly kind: "raw"; readonly value: JsonValue }
  | {
      readonly kind: "help";
      readonly command?: string | undefined;
      readonly branch?: string | undefined;
    }
  | { readonly kind: "commands"; readonly filter?: string | undefined }
  | { readonly kind: "events"; readonly show?: boolean | undefined }
  | { readonly kind: "exit" };

/** One word of a line, unquoted, with where it started. */
export interface Token {
  readonly text: string;
  readonly start: number;
}

/**
 * Splits a line at unquoted whitespace. Quotes (`"` or `'`) group, and are removed, anywhere in
 * a word (`id="a b"` gives `id=a b`); a backslash escapes the next character outside single
 * quotes. An unterminated quote is an error.
 */
export function tokenize(line: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    const start = i;
    let text = "";
    while (i < line.length && !/\s/.test(line[i]!)) {
      const c = line[i]!;
      if (c === '"' || c === "'") {
        const close = findClose(line, i + 1, c);
        if (close < 0)
          throw new UsageError(
            `unterminated ${c === '"' ? "double" : "single"} quote in '${line.slice(start)}'`,
          );
        const body = line.slice(i + 1, close);
        text += c === '"' ? body.replace(/\\(.)/g, "$1") : body;
        i = close + 1;
      } else if (c === "\\" && i + 1 < line.length) {
        text += line[i + 1];
        i += 2;
      } else {
        text += c;
        i++;
      }
    }
    out.push({ text, start });
  }
  return out;
}

function findClose(line: string, from: number, quote: string): number {
  for (let i = from; i < line.length; i++) {
    if (line[i] === "\\" && quote === '"') i++;
    else if (line[i] === quote) return i;
  }
  return -1;
}

/**
 * Parses one line. Throws `UsageError` for malformed input (bad `key=value`, bad JSON, a
 * stray quote), which the shell prints and moves on.
 */
export function parseShellLine(line: string, schema?: PeerSchema | undefined): ShellLine {
  const trimmed = line.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return { kind: "empty" };
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return { kind: "raw", value: parseJsonText(trimmed) };
    } catch (error) {
      throw new UsageError(`invalid JSON: ${(error as Error).message}`, { cause: error });
    }
  }
  const tokens = tokenize(trimmed).map((t) => t.text);
  const [first, ...rest] = tokens;
  if (first === undefined) return { kind: "empty" };
  switch (first) {
    case "exit":
      return { kind: "exit" };
    case "help":
    case "?":
      return { kind: "help", command: rest[0], branch: rest[1] };
    case "commands":
      return { kind: "commands", filter: rest[0] };
    case "events":
      if (rest[0] === undefined) return { kind: "events" };
      if (rest[0] === "on" || rest[0] === "off") return { kind: "events", show: rest[0] === "on" };
      throw new UsageError(`events takes 'on' or 'off', not '${rest[0]}'`);
    default: {
      const typing = schema?.commands.has(first) ? { schema, command: first } : undefined;
      return { kind: "execute", command: first, args: parseKeyValues(rest, typing) };
    }
  }
}

/** Sorted, unique completions of `word` among `candidates`. */
function matching(candidates: Iterable<string>, word: string): string[] {
  return [...new Set([...candidates].filter((c) => c.startsWith(word)))].sort();
}

/**
 * Completions of a whole word (a command, a value): a unique one gets a trailing space, as a
 * shell's does, so that the next word can be typed at once.
 */
function wholeWords(candidates: Iterable<string>, word: string): string[] {
  const found = matching(candidates, word);
  return found.length === 1 ? [`${found[0]} `] : found;
}

/** The `given` key=value map of the words before the cursor. */
function givenValues(words: readonly Token[]): Map<string, JsonValue> {
  const given = new Map<string, JsonValue>();
  for (const t of words) {
    const eq = t.text.indexOf("=");
    if (eq > 0) given.set(t.text.slice(0, eq).replace(/:$/, ""), t.text.slice(eq + 1));
  }
  return given;
}

/**
 * Completes the word under the cursor (the end of `line`), readline style: the candidates, and
 * the text they replace. Command names first; then `name=` for the command's arguments
 * (nested objects as `name.` to go on, and both for a member that takes an object or a
 * scalar, such as `file` of `blockdev-add`); after `name=`, enum values and booleans. A unique
 * command name or value is completed with a trailing space.
 */
export function completeLine(line: string, schema: PeerSchema | undefined): [string[], string] {
  let tokens: Token[];
  try {
    tokens = tokenize(line);
  } catch {
    return [[], ""];
  }
  const endsInSpace = line === "" || /\s$/.test(line);
  const current = endsInSpace ? "" : (tokens[tokens.length - 1]?.text ?? "");
  const before = endsInSpace ? tokens : tokens.slice(0, -1);
  if (line.trimStart().startsWith("{")) return [[], current];
  const commandNames = schema ? schema.commandNames() : [];
  if (before.length === 0) return [wholeWords([...commandNames, ...shellWords], current), current];
  const command = before[0]!.text;
  if (command === "help" || command === "?") {
    const names = [...commandNames, ...(schema ? schema.eventNames() : [])];
    if (before.length === 1) return [wholeWords(names, current), current];
    const info = schema?.commands.get(before[1]!.text);
    const union = info && before.length === 2 ? schema?.branchesOf(info.argType) : undefined;
    return [
      union
        ? wholeWords(
            union.branches.map(([c]) => c),
            current,
          )
        : [],
      current,
    ];
  }
  if (command === "events")
    return before.length === 1 ? [wholeWords(["on", "off"], current), current] : [[], current];
  if (!schema?.commands.has(command)) return [[], current];
  const argType = schema.commands.get(command)!.argType;
  const given = givenValues(before.slice(1));
  const eq = current.indexOf("=");
  if (eq > 0) {
    // A value: the member's enum values, or booleans.
    const key = current.slice(0, eq);
    const type = schema.typeAtPath(argType, key.split("."), given);
    if (type === undefined) return [[], current];
    const info = schema.type(type);
    const values: string[] = [];
    if (info?.meta === "enum") values.push(...info.values);
    else if (info?.meta === "alternate") {
      for (const t of info.types) {
        const sub = schema.type(t);
        if (sub?.meta === "enum") values.push(...sub.values);
      }
    }
    if (schema.jsonTypesOf(type).includes("boolean")) values.push("true", "false");
    return [
      wholeWords(
        values.map((v) => `${key}=${v}`),
        current,
      ),
      current,
    ];
  }
  // A member name, possibly dotted.
  const dot = current.lastIndexOf(".");
  const prefix = dot >= 0 ? current.slice(0, dot) : "";
  const parentType = prefix === "" ? argType : schema.typeAtPath(argType, prefix.split("."), given);
  if (parentType === undefined) return [[], current];
  const tagOf = schema.type(schema.objectBranchOf(parentType) ?? parentType);
  const tagKey =
    tagOf?.meta === "object" && tagOf.tag !== undefined
      ? prefix
        ? `${prefix}.${tagOf.tag}`
        : tagOf.tag
      : undefined;
  const tagValue = tagKey !== undefined ? given.get(tagKey) : undefined;
  const members = schema.membersOf(parentType, typeof tagValue === "string" ? tagValue : undefined);
  const candidates = members.flatMap((m) => {
    const full = prefix ? `${prefix}.${m.name}` : m.name;
    if (given.has(full)) return [];
    const types = schema.jsonTypesOf(m.type);
    const object = types.includes("object") ? [`${full}.`] : [];
    const scalar = types.some((t) => t !== "object") ? [`${full}=`] : [];
    return [...object, ...scalar];
  });
  return [matching(candidates, current), current];
}

/** The widest a branch summary line of `help` grows before it is cut with `…`. */
const BRANCH_LINE_WIDTH = 100;

function memberLine(schema: PeerSchema, m: MemberInfo): string {
  return `  ${m.optional ? `[${m.name}]` : m.name}: ${schema.describeType(m.type)}`;
}

/**
 * A command's usage from the peer's schema: `name ARGS -> <returns>`, then one argument per
 * line. A union's arguments (`blockdev-add`: `driver` selects the branch) show the common
 * members, then one line per tag value naming that branch's own members; with `branch`, that
 * branch's members in full instead. Undefined when the peer has no such command (or, with
 * `branch`, no such branch).
 */
export function describeCommand(
  schema: PeerSchema,
  command: string,
  branch?: string | undefined,
): string | undefined {
  const info = schema.commands.get(command);
  if (!info) return undefined;
  const union = schema.branchesOf(info.argType);
  const common = union
    ? (schema.type(info.argType) as { members: readonly MemberInfo[] }).members
    : schema.argumentsOf(command);
  const ret = info.retType ? schema.describeType(info.retType) : "{}";
  const lines = [`${command}${common.length === 0 && !union ? "" : " ARGS"}  ->  ${ret}`];
  for (const m of common) lines.push(memberLine(schema, m));
  if (union && branch !== undefined) {
    const members = union.branches.find(([c]) => c === branch)?.[1];
    if (members === undefined) return undefined;
    lines.push(`  with ${union.tag}=${branch}:${members.length === 0 ? " (no more members)" : ""}`);
    for (const m of members) lines.push(`  ${memberLine(schema, m)}`);
  } else if (union) {
    lines.push(`  and per ${union.tag} ('help ${command} ${union.tag.toUpperCase()}' shows one):`);
    for (const [c, members] of union.branches) {
      const names = members.map((m) => (m.optional ? `[${m.name}]` : m.name)).join(" ");
      const line = `    ${c}: ${names === "" ? "-" : names}`;
      lines.push(
        line.length > BRANCH_LINE_WIDTH ? `${line.slice(0, BRANCH_LINE_WIDTH - 1)}…` : line,
      );
    }
  }
  const flags = [info.allowOob ? "allow-oob" : "", ...info.features].filter((s) => s !== "");
  if (flags.length > 0) lines.push(`  (${flags.join(", ")})`);
  return lines.join("\n");
}

/** An event's data from the peer's schema: `EVENT NAME` and one member per line. */
export function describeEvent(schema: PeerSchema, event: string): string | undefined {
  const info = schema.events.get(event);
  if (!info) return undefined;
  const members = info.argType ? schema.membersOf(info.argType) : [];
  const lines = [`event ${event}${members.length === 0 ? " (no data)" : ""}`];
  for (const m of members)
    lines.push(`  ${m.optional ? `[${m.name}]` : m.name}: ${schema.describeType(m.type)}`);
  return lines.join("\n");
}
