/**
 * A QMP server of your own: `npx tsx examples/server.ts`. It answers as QEMU 7.2.22 does (greeting,
 * negotiation, QEMU's error texts for bad requests and arguments), with your command handlers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient, QmpReplyError, QmpServer } from "qmpkit";
import type { StatusInfo } from "qmpkit/generated";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-example-"));
const target = `unix:${join(dir, "qmp.sock")}`;

const server = new QmpServer(); // greets as Debian's QEMU 7.2.22 by default
let running = false;
server.command(
  "query-status",
  (): StatusInfo => ({ running, singlestep: false, status: running ? "running" : "paused" }),
);
server.command("cont", () => {
  if (running) throw new QmpReplyError("GenericError", "already running");
  running = true;
  server.emit("RESUME"); // stamped, throttled as QEMU throttles, sent to every negotiated client
});
await server.listen(target);

const qmp = await QmpClient.connect(target);
await qmp.executeAndWait("cont", {}, { event: "RESUME", timeoutMs: 1_000 });
console.log(await qmp.execute("query-status"));
await qmp.execute("cont").catch((error: Error) => console.log(error.message));
// Arguments are checked against the schema, with QEMU's own wording:
await qmp
  .execute("query-status", { verbose: true } as never)
  .catch((error: Error) => console.log(error.message));

await qmp.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
