/**
 * QAPI documentation blocks (QEMU's `QAPIDoc` in `scripts/qapi/parser.py`, restated).
 *
 * A block documents a definition when its first line is `@NAME:`; otherwise it is free-form
 * (a `= Heading` or prose). After the symbol line come the body, then `@member:` descriptions,
 * an optional `Features:` line followed by `@feature:` descriptions, and tagged sections such as
 * `Since:`, `Returns:`, `Errors:`, `Note:`/`Notes:`, `Example:`/`Examples:`, `TODO:`. The newer
 * reStructuredText forms `.. note::` and `.. qmp-example::` open sections too.
 *
 * qmpkit's own convention adds `Removed: X.Y` (a definition QEMU dropped) and `(removed in X.Y)`
 * in a member description, beside QEMU's `Since: X.Y` and `(since X.Y)`; `(optional since X.Y)`
 * in the description of an optional member that QEMU required before X.Y; and `Shape-of: NAME`
 * on a definition that, in the releases it is present in, stands in the place of definition NAME
 * (an earlier shape of a type that QEMU changed: `BlockJobInfo` became a union in 8.2).
 *
 * @module
 */
import { type SourceInfo, schemaError } from "./source.js";

/** A `@name:` description of a member or feature. */
export interface DocItem {
  readonly name: string;
  readonly text: string;
  readonly line: number;
}

/** A tagged section (`Since`, `Returns`, `Note`, `Example`, …). */
export interface DocSection {
  readonly tag: string;
  readonly text: string;
}

/** One parsed `##` block. */
export interface DocBlock {
  readonly info: SourceInfo;
  /** The documented definition's name, or undefined for a free-form block. */
  readonly symbol: string | undefined;
  readonly body: string;
  readonly members: readonly DocItem[];
  readonly features: readonly DocItem[];
  readonly sections: readonly DocSection[];
  /** The line of a `=` heading that is not the block's first line (an error from QEMU 10). */
  readonly lateHeadingLine?: number | undefined;
  /**
   * The first continuation line of a `@name:` description indented less than QEMU requires,
   * by the rule of QEMU 5.2–9.x (`legacy`: as far as the text after `@name: `) and by the rule of
   * QEMU 10 (`modern`: as far as the first continuation line). The checker picks the rule.
   */
  readonly deindent?:
    | { readonly rule: "legacy" | "modern"; readonly line: number; readonly expected: number }[]
    | undefined;
}

/** The first de-indented continuation line after each `@name:` line, by both of QEMU's rules. */
function findDeindents(
  lines: readonly { text: string; line: number }[],
  start: number,
): { rule: "legacy" | "modern"; line: number; expected: number }[] {
  const out: { rule: "legacy" | "modern"; line: number; expected: number }[] = [];
  const indentOf = (t: string) => /^ */.exec(t)![0].length;
  const ends = (t: string) => itemLine.test(t) || (sectionTag.test(t) && !t.startsWith(" "));
  for (let i = start; i < lines.length; i++) {
    const head = /^@\S*:\s*/.exec(lines[i]!.text);
    if (!head) continue;
    // QEMU 5.2-9.x: continuation lines align with the text after "@name: " (parser.py
    // `_append_args_line`); the description ends at a blank line followed by unindented text.
    const col = head[0].length === lines[i]!.text.length ? 0 : head[0].length;
    let blank = false;
    for (let j = i + 1; j < lines.length && !out.some((o) => o.rule === "legacy"); j++) {
      const t = lines[j]!.text;
      if (t.trim() === "") {
        blank = true;
        continue;
      }
      if (ends(t) || (blank && indentOf(t) === 0)) break;
      if (indentOf(t) < col) out.push({ rule: "legacy", line: lines[j]!.line, expected: col });
      blank = false;
    }
    // QEMU 10: the first continuation line sets the indentation, and the line right after it
    // may not have less (parser.py `get_doc_indented`).
    if (!out.some((o) => o.rule === "modern")) {
      let j = i + 1;
      while (j < lines.length && lines[j]!.text.trim() === "") j++;
      const first = lines[j];
      const next = lines[j + 1];
      if (
        first !== undefined &&
        !itemLine.test(first.text) &&
        indentOf(first.text) > 0 &&
        next !== undefined
      ) {
        const t = next.text;
        if (t.trim() !== "" && !itemLine.test(t) && indentOf(t) < indentOf(first.text)) {
          out.push({ rule: "modern", line: next.line, expected: indentOf(first.text) });
        }
      }
    }
  }
  return out;
}

const sectionTag =
  /^(Returns|Errors|Since|Removed|Shape-of|Notes?|Examples?|TODO|See also|Use instead|Features)\s*:\s*(.*)$/;
const directive =
  /^\.\. (note|qmp-example|admonition|warning|caution|important|code-block)::\s*(.*)$/;
const itemLine = /^@([^:\s]+):\s?(.*)$/;

/** Turn the text lines of a block (without their `# ` prefix) into a {@link DocBlock}. */
export function parseDocBlock(
  lines: readonly { text: string; line: number }[],
  info: SourceInfo,
): DocBlock {
  const fail = (message: string, line: number): never => {
    throw schemaError(message, { ...info, line, column: 1 });
  };
  let symbol: string | undefined;
  let i = 0;
  const firstLine = lines[0];
  if (firstLine?.text.startsWith("@")) {
    // parser.py: the symbol line is `@NAME:` and nothing else.
    const m = /^@([^:\s]*)(:?)\s*$/.exec(firstLine.text);
    if (m?.[1] === "") fail("name required after '@'", firstLine.line);
    if (m === null || m[2] !== ":") fail("line should end with ':'", firstLine.line);
    symbol = m?.[1];
    i = 1;
  }
  const body: string[] = [];
  const members: { name: string; text: string[]; line: number }[] = [];
  const features: { name: string; text: string[]; line: number }[] = [];
  const sections: { tag: string; text: string[]; line: number; directive: boolean }[] = [];
  type Target =
    | { kind: "body" }
    | { kind: "item"; text: string[] }
    | { kind: "section"; text: string[]; directive: boolean };
  let target: Target = { kind: "body" };
  let inFeatures = false;
  let featuresLine = 0;
  let lateHeadingLine: number | undefined;
  for (; i < lines.length; i++) {
    const { text, line } = lines[i]!;
    if (text.trim() === "") {
      // A blank line ends a member description; what follows is body text again.
      if (target.kind === "item") target = { kind: "body" };
      else if (target.kind === "section") target.text.push("");
      else body.push("");
      continue;
    }
    const item = itemLine.exec(text);
    if (item) {
      if (symbol === undefined) fail(`'@${item[1]}:' not allowed in free-form documentation`, line);
      // Members and features come before the tagged sections (QAPIDoc: no interleaving).
      const tagged = sections.filter((x) => !x.directive);
      const last = tagged[tagged.length - 1];
      if (last !== undefined) fail(`'@${item[1]}:' can't follow '${last.tag}' section`, line);
      const entry = { name: item[1]!, text: [item[2]!], line };
      (inFeatures ? features : members).push(entry);
      target = { kind: "item", text: entry.text };
      continue;
    }
    if (symbol !== undefined && text.startsWith("=")) {
      fail("unexpected '=' markup in definition documentation", line);
    }
    // QEMU 10 wants a heading on a block's first line; older trees had them anywhere.
    if (symbol === undefined && text.startsWith("=") && i > 0) lateHeadingLine ??= line;
    const tag = sectionTag.exec(text);
    if (tag && !text.startsWith(" ")) {
      if (tag[1] === "Features") {
        if (inFeatures) fail("duplicated 'Features:' line", line);
        if (symbol === undefined) fail("'Features:' not allowed in free-form documentation", line);
        featuresLine = line;
        inFeatures = true;
        target = { kind: "body" };
        continue;
      }
      const section = {
        tag: tag[1]!,
        text: tag[2] === "" ? [] : [tag[2]!],
        line,
        directive: false,
      };
      sections.push(section);
      target = { kind: "section", text: section.text, directive: false };
      continue;
    }
    const dir = directive.exec(text);
    if (dir) {
      // The reStructuredText forms of QEMU 9.x: text in the body, kept here as sections too.
      const name = dir[1] === "qmp-example" || dir[1] === "code-block" ? "Example" : "Note";
      const section = { tag: name, text: dir[2] === "" ? [] : [dir[2]!], line, directive: true };
      sections.push(section);
      target = { kind: "section", text: section.text, directive: true };
      continue;
    }
    if (target.kind === "body") body.push(text);
    else target.text.push(text.trim() === "" ? "" : target.kind === "item" ? text.trim() : text);
  }
  if (inFeatures && features.length === 0) fail("feature descriptions expected", featuresLine);
  for (const s of sections) {
    if (!s.directive && s.text.join("").trim() === "") fail(`empty doc section '${s.tag}'`, s.line);
  }
  return {
    info,
    symbol,
    body: body.join("\n").trim(),
    members: members.map((m) => ({ name: m.name, text: m.text.join(" ").trim(), line: m.line })),
    features: features.map((m) => ({ name: m.name, text: m.text.join(" ").trim(), line: m.line })),
    sections: sections.map((s) => ({ tag: s.tag, text: dedent(s.text) })),
    ...(lateHeadingLine !== undefined ? { lateHeadingLine } : {}),
    ...(symbol !== undefined ? deindentField(findDeindents(lines, 1)) : {}),
  };
}

function deindentField(found: { rule: "legacy" | "modern"; line: number; expected: number }[]): {
  deindent?: typeof found;
} {
  return found.length > 0 ? { deindent: found } : {};
}

/** Lines without their common indentation, leading and trailing blank lines dropped. */
function dedent(lines: readonly string[]): string {
  const indents = lines.filter((l) => l.trim() !== "").map((l) => /^ */.exec(l)![0].length);
  const cut = indents.length > 0 ? Math.min(...indents) : 0;
  return lines
    .map((l) => l.slice(cut).trimEnd())
    .join("\n")
    .replace(/^\n+|\n+$/g, "");
}

const versionPattern = /\b(\d+\.\d+(?:\.\d+)?)\b/;

/** The version of the block's first `Since:` section, e.g. `"2.10"`. */
export function docSince(doc: DocBlock | undefined): string | undefined {
  const s = doc?.sections.find((x) => x.tag === "Since");
  return s ? versionPattern.exec(s.text)?.[1] : undefined;
}

/** The version of the block's `Removed:` section (qmpkit's convention). */
export function docRemoved(doc: DocBlock | undefined): string | undefined {
  const s = doc?.sections.find((x) => x.tag === "Removed");
  return s ? versionPattern.exec(s.text)?.[1] : undefined;
}

/**
 * The definition named by the block's `Shape-of:` section (qmpkit's convention): the first word
 * of the section, the rest being free text.
 */
export function docShapeOf(doc: DocBlock | undefined): string | undefined {
  const s = doc?.sections.find((x) => x.tag === "Shape-of");
  return s ? /^\S+/.exec(s.text)?.[0] : undefined;
}

/** `(optional since X.Y)` in a member description (qmpkit's convention). */
export function textOptionalSince(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  return /\(\s*optional\s+since\s+(\d+\.\d+(?:\.\d+)?)\s*\)/i.exec(text)?.[1];
}

/** `(since X.Y)` in a member description (QEMU's convention); also `Since X.Y` at the end. */
export function textSince(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const m =
    /\(\s*since:?\s+(\d+\.\d+(?:\.\d+)?)\s*\)/i.exec(text) ??
    /\bsince:?\s+(\d+\.\d+(?:\.\d+)?)\.?\s*$/i.exec(text);
  return m?.[1];
}

/** `(removed in X.Y)` in a member description (qmpkit's convention). */
export function textRemoved(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  return /\(\s*removed\s+in\s+(\d+\.\d+(?:\.\d+)?)\s*\)/i.exec(text)?.[1];
}
