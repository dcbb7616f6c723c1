/**
 * The documentation of commands and events, from the project's own QAPI catalogue
 * (`schema/qapi/qapi-schema.json`, shipped with the package): what `help COMMAND` prints in the
 * shell beside the signature the peer itself reports.
 *
 * Loaded lazily, once, and optional: if the catalogue cannot be read, help shows the signature
 * alone.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { DocBlock } from "../schema/doc.js";
import { parseSchema } from "../schema/parser.js";

/** Where the catalogue is, from `src/cli/` and from `dist/cli/` alike. */
export const catalogueFile = fileURLToPath(
  new URL("../../schema/qapi/qapi-schema.json", import.meta.url),
);

let cache: Map<string, DocBlock> | undefined;

/** Doc blocks by definition name (command, event, type); empty if the catalogue is unreadable. */
export function catalogueDocs(file: string = catalogueFile): Map<string, DocBlock> {
  if (cache && file === catalogueFile) return cache;
  const docs = new Map<string, DocBlock>();
  try {
    const parsed = parseSchema(file, { readFile: (path) => readFileSync(path, "utf8") });
    for (const { expr, doc } of parsed.exprs) {
      const name =
        expr.command ?? expr.event ?? expr.struct ?? expr.enum ?? expr.union ?? expr.alternate;
      if (typeof name === "string" && doc) docs.set(name, doc);
    }
  } catch {
    // No catalogue: help falls back to the peer's signature alone.
  }
  if (file === catalogueFile) cache = docs;
  return docs;
}

/** A doc block as plain text: the body, the argument descriptions, then `Since:`, `Returns:`, notes. */
export function formatDoc(doc: DocBlock): string {
  const out: string[] = [];
  const body = doc.body.trim();
  if (body) out.push(body);
  if (doc.members.length > 0) {
    out.push("");
    for (const m of doc.members)
      out.push(`  ${m.name}: ${m.text.trim().replace(/\s*\n\s*/g, " ")}`);
  }
  for (const s of doc.sections) {
    if (/^Examples?$/.test(s.tag) || s.tag === "qmp-example" || s.tag === "TODO") continue;
    const text = s.text.trim();
    if (text) out.push("", `${s.tag}: ${text}`);
  }
  return out.join("\n");
}
