/**
 * The README's first example, runnable as it stands: `npx tsx examples/quickstart.ts`.
 * A simulated QEMU 7.2.22 on a unix socket, driven by the typed client.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient } from "qmpkit";
import { SimulatedMachine } from "qmpkit/sim";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-example-"));
const vm = new SimulatedMachine({
  qemuVersion: "7.2.22",
  startPaused: true,
  actions: { panic: "pause" },
});
await vm.listen(`unix:${join(dir, "vm.qmp")}`);

const qmp = await QmpClient.connect(`unix:${join(dir, "vm.qmp")}`, { timeoutMs: 5_000 });
const { major, minor, micro } = qmp.greeting.version.qemu;
console.log(`connected to QEMU ${major}.${minor}.${micro}`);

const status = await qmp.execute("query-status"); // typed: StatusInfo
console.log(`status: ${status.status}, running: ${status.running}`);

// Subscribe before acting, so no event can be missed; the stream ends when the connection does.
const watched = (async () => {
  const seen: string[] = [];
  for await (const event of qmp.events({ names: ["RESUME", "STOP", "GUEST_PANICKED"] })) {
    seen.push(event.event);
  }
  return seen;
})();

await qmp.execute("cont");
await qmp.execute("set-action", { panic: "pause" }, { timeoutMs: 1_000 });

// The event a command causes, without a race: subscribed before the command is sent.
const { event } = await qmp.executeAndWait("stop", {}, { event: "STOP", timeoutMs: 5_000 });
console.log(`stop caused ${event.event}`);
await qmp.execute("cont");

vm.guest.panic(); // what a guest's pvpanic write does: GUEST_PANICKED, then STOP (panic=pause)
console.log(`run state: ${await qmp.waitForRunState("guest-panicked", { timeoutMs: 5_000 })}`);

await qmp.close();
console.log(`events seen: ${(await watched).join(", ")}`);
await vm.close();
rmSync(dir, { recursive: true, force: true });
