/**
 * Test helper: the schema text inside a seed document, without the web mirror's decorations
 * (the page header, `|` separator lines, `| … |` table borders).
 *
 * @module
 */

/** The QAPI source a mirrored page shows. */
export function stripMirror(page: string): string {
  const lines = page.split("\n");
  // The schema starts at the Emacs mode line QEMU's schema files begin with.
  const start = lines.findIndex((l) => l.includes("# -*- Mode: Python -*-"));
  const out: string[] = [];
  for (const raw of lines.slice(Math.max(start, 0))) {
    const line = raw.trimEnd();
    if (line === "|") continue; // a separator between the mirror's table rows
    const bordered = /^\| ?(.*?) ?\|$/.exec(line);
    out.push(bordered ? bordered[1]!.trimEnd() : line);
  }
  return `${out.join("\n")}\n`;
}
