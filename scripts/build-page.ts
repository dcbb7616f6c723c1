/**
 * `npm run build`'s second step: the dashboard's page into dist/web/page/ (index.html, app.js,
 * app.css), bundled by esbuild from src/web/page/ with uPlot from node_modules. The served
 * package then needs neither esbuild nor the network (src/web/assets.ts reads these files).
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bundlePage } from "../src/web/assets.js";

const source = new URL("../src/web/page/", import.meta.url).pathname;
const out = new URL("../dist/web/page/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
copyFileSync(join(source, "index.html"), join(out, "index.html"));
for (const [name, body] of await bundlePage(source)) {
  writeFileSync(join(out, name), body);
  console.log(`dist/web/page/${name}: ${body.length} bytes`);
}
