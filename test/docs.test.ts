/**
 * The documentation holds together: every relative link in the repository's Markdown files
 * reaches an existing file (and, with a `#fragment`, a heading of that file), and every section
 * of docs/qemu-behaviour.md that code, tests, benchmarks or READMEs cite as `§N` or `§N.M` is a
 * heading there. A citation `issue N §M` names a section of a project issue and is left out.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const BEHAVIOUR = "docs/qemu-behaviour.md";

/** Directories never searched: dependencies, build output, version control. */
const SKIPPED = new Set(["node_modules", "dist", ".git"]);

/** Files under `dir` (relative to the repository) whose names end with one of `endings`. */
function filesUnder(dir: string, endings: readonly string[]): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    for (const entry of readdirSync(join(root, path), { withFileTypes: true })) {
      const child = path === "" ? entry.name : `${path}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIPPED.has(entry.name)) walk(child);
      } else if (entry.isFile() && endings.some((e) => entry.name.endsWith(e))) {
        found.push(child);
      }
    }
  };
  walk(dir);
  return found.sort();
}

/** Markdown text without fenced code blocks and HTML comments (a `#` there is no heading). */
function withoutBlocks(markdown: string): string {
  return markdown
    .replace(/^ {0,3}(`{3,}|~{3,})[^\n]*\n[\s\S]*?^ {0,3}\1[^\n]*$/gm, "")
    .replace(/<!--[\s\S]*?-->/g, "");
}

/** Markdown text without code of any kind (brackets inside code spans are not links). */
function proseOf(markdown: string): string {
  return withoutBlocks(markdown).replace(/(`+)[^`\n]*?\1/g, "");
}

/** The targets of inline links and images, and of reference definitions (`[x]: target`). */
export function linkTargets(markdown: string): string[] {
  const prose = proseOf(markdown);
  const targets: string[] = [];
  for (const m of prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    targets.push(m[1]!);
  }
  for (const m of prose.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) targets.push(m[1]!);
  return targets;
}

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to `-`. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of withoutBlocks(markdown).matchAll(/^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, "$1");
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** What is wrong with the relative links of the Markdown file `file` (repository path). */
export function brokenLinks(
  file: string,
  markdown: string,
  read: (path: string) => string | undefined,
  exists: (path: string) => boolean,
): string[] {
  const problems: string[] = [];
  for (const target of linkTargets(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
    const [pathPart = "", fragment] = target.split("#", 2);
    const path = pathPart === "" ? file : join(dirname(file), decodeURIComponent(pathPart));
    if (pathPart !== "" && (path.startsWith("..") || !exists(path))) {
      problems.push(`${file}: link to ${target}: no such file in the repository`);
      continue;
    }
    if (fragment !== undefined && path.endsWith(".md")) {
      const anchors = headingAnchors(read(path) ?? "");
      if (!anchors.has(fragment)) problems.push(`${file}: link to ${target}: no such heading`);
    }
  }
  return problems;
}

/** The section numbers cited in `text` as `§N` or `§N.M…`, leaving out `issue N §M` citations. */
export function citedSections(text: string): string[] {
  const cited: string[] = [];
  for (const m of text.matchAll(/§(\d+(?:\.\d+)*)/g)) {
    const before = text.slice(Math.max(0, m.index - 30), m.index);
    if (/\bissues? \d+ (?:§[\d.]+\s*[–-]\s*)?$/.test(before)) continue;
    cited.push(m[1]!);
  }
  return cited;
}

/** The section numbers of the headings of `markdown` (`## §N Title`, `### §N.M Title`), in order. */
export function sectionHeadings(markdown: string): string[] {
  const found = withoutBlocks(markdown).matchAll(/^ {0,3}#{1,6}\s+§(\d+(?:\.\d+)*)\s/gm);
  return [...found].map((m) => m[1]!);
}

const readRepo = (path: string): string | undefined => {
  const full = join(root, path);
  return existsSync(full) && statSync(full).isFile() ? readFileSync(full, "utf8") : undefined;
};
const existsInRepo = (path: string): boolean => {
  const full = resolve(root, path);
  return !relative(root, full).startsWith("..") && existsSync(full);
};

suite("documentation", () => {
  test("should resolve every relative link of every Markdown file, headings included", () => {
    const files = filesUnder("", [".md"]);
    assert.ok(
      files.includes("README.md") && files.includes(BEHAVIOUR),
      `found ${files.join(", ")}`,
    );
    const problems = files.flatMap((f) => brokenLinks(f, readRepo(f)!, readRepo, existsInRepo));
    assert.deepEqual(problems, []);
  });

  test("should have a heading in docs/qemu-behaviour.md for every section cited", () => {
    const headings = new Set(sectionHeadings(readRepo(BEHAVIOUR)!));
    const sources = [
      ...["src", "test", "bench"].flatMap((d) => filesUnder(d, [".ts", ".md", ".json", ".asm"])),
      "README.md",
    ];
    const missing: string[] = [];
    let citations = 0;
    for (const file of sources) {
      for (const section of citedSections(readRepo(file)!)) {
        citations++;
        if (!headings.has(section)) missing.push(`${file}: §${section}`);
      }
    }
    assert.ok(citations > 100, `only ${citations} citations found: is the search looking?`);
    assert.deepEqual(missing, []);
  });

  test("should number every section of docs/qemu-behaviour.md once", () => {
    const seen = new Set<string>();
    const repeated = sectionHeadings(readRepo(BEHAVIOUR)!).filter(
      (n) => seen.has(n) || !seen.add(n),
    );
    assert.deepEqual(repeated, []);
  });

  suite("the checks themselves", () => {
    const files: Record<string, string> = {
      "docs/a.md": "# §1 One\n\n### §1.2 Two, `and` more\n\n## Same\n\n## Same\n",
    };
    const read = (p: string) => files[p];
    const exists = (p: string) => p in files || p === "docs";

    test("should find links outside code, with titles, images and reference definitions", () => {
      const md =
        'See [a](x.md) and ![i](img/p.png "t") and `[no](code.md)`.\n```\n[no](fence.md)\n```\n[r]: ref.md\n';
      assert.deepEqual(linkTargets(md), ["x.md", "img/p.png", "ref.md"]);
    });

    test("should report a missing file, a missing heading and a link out of the repository", () => {
      const md =
        "[ok](a.md#12-two-and-more) [ok](a.md#same-1) [ok](#1-one) [ok](../docs) [web](https://x.y/z)\n" +
        "[bad](b.md) [bad](a.md#3-three) [bad](../../etc/passwd)\n";
      assert.deepEqual(brokenLinks("docs/a.md", md, read, exists), [
        "docs/a.md: link to b.md: no such file in the repository",
        "docs/a.md: link to a.md#3-three: no such heading",
        "docs/a.md: link to ../../etc/passwd: no such file in the repository",
      ]);
    });

    test("should read section citations and leave issue sections out", () => {
      const text = "(§4.3, §1.7) see §3–§5 and §1.8. But issue 2 §6, issue 4 §1–§2, issues 3 §5.";
      assert.deepEqual(citedSections(text), ["4.3", "1.7", "3", "5", "1.8"]);
      assert.deepEqual(sectionHeadings(files["docs/a.md"]!), ["1", "1.2"]);
    });
  });
});
