/**
 * The page's assets: `index.html`, `app.js` (the page's TypeScript under `page/` with uPlot,
 * bundled by esbuild) and `app.css` (uPlot's and the page's). `npm run build` writes them to
 * `dist/web/page/` (`scripts/build-page.ts`); run from source (tsx, the tests), they are built in
 * memory on first use, from the same files, by the same function. Nothing is fetched from the
 * network, at build time or at run time.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One asset: its bytes and content type. */
export interface PageAsset {
  readonly body: Uint8Array;
  readonly type: string;
}

/** The assets by file name (`index.html`, `app.js`, `app.css`). */
export type PageAssets = ReadonlyMap<string, PageAsset>;

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

const typeOf = (file: string) =>
  TYPES[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream";

/** The directory of the page's sources (or of the built page, under dist/). */
export const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "page");

/**
 * Bundles the page with esbuild: `{ "app.js", "app.css" }` (minified, ES2022). esbuild is a
 * build-time dependency, loaded only here.
 */
export async function bundlePage(pageDir: string = PAGE_DIR): Promise<Map<string, Uint8Array>> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: { app: join(pageDir, "main.ts") },
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    outdir: "/",
    logLevel: "silent",
    legalComments: "none",
  });
  const out = new Map<string, Uint8Array>();
  for (const file of result.outputFiles)
    out.set(file.path.slice(file.path.lastIndexOf("/") + 1), file.contents);
  return out;
}

let cached: Promise<PageAssets> | undefined;

/**
 * The page's assets: the built ones next to this module when there are (`dist/`), else bundled
 * from the sources now (once per process).
 */
export function loadPageAssets(pageDir: string = PAGE_DIR): Promise<PageAssets> {
  if (pageDir === PAGE_DIR && cached) return cached;
  const load = async (): Promise<PageAssets> => {
    const html = readFileSync(join(pageDir, "index.html"));
    const assets = new Map<string, PageAsset>([
      ["index.html", { body: html, type: typeOf(".html") }],
    ]);
    const built = ["app.js", "app.css"].every((f) => existsSync(join(pageDir, f)));
    const files = built
      ? new Map(
          ["app.js", "app.css"].map((f) => [f, new Uint8Array(readFileSync(join(pageDir, f)))]),
        )
      : await bundlePage(pageDir);
    for (const [name, body] of files) assets.set(name, { body, type: typeOf(name) });
    return assets;
  };
  const promise = load();
  if (pageDir === PAGE_DIR)
    cached = promise.catch((error) => {
      cached = undefined;
      throw error;
    });
  return promise;
}
