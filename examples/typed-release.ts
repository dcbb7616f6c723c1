/**
 * A client typed for one QEMU release: every command and event of QEMU 10.0, with its
 * arguments and replies, checked by the compiler. Run it against a QEMU 10.0 monitor:
 * `npx tsx examples/typed-release.ts /path/to/qmp.sock`.
 */
import { QmpClient } from "qmpkit";
import type { BlockInfo, Qemu10_0 } from "qmpkit/qemu/10.0";

const socket = process.argv[2];
if (socket === undefined) throw new Error("usage: typed-release.ts QMP_SOCKET");

const qmp = await QmpClient.connect<Qemu10_0>(`unix:${socket}`, { timeoutMs: 5_000 });

// Typed arguments (a union on `driver`) and replies, with QEMU's own type names.
await qmp.execute("blockdev-add", { driver: "null-co", "node-name": "scratch", size: 1 << 20 });
const block: BlockInfo[] = await qmp.execute("query-block");
const machine = await qmp.execute("qom-get", { path: "/machine", property: "type" });
console.log(`block devices: ${block.length}; machine: ${String(machine)}`);

/** Only compiled: a device needs a bus, which `-machine none` has not. */
export async function plugNic(client: QmpClient<Qemu10_0>): Promise<void> {
  await client.execute("device_add", { driver: "virtio-net-pci", id: "nic1" });
}

/** What the compiler refuses: each line below fails without its @ts-expect-error. */
export async function mistakes(client: QmpClient<Qemu10_0>): Promise<void> {
  // @ts-expect-error a misspelt command: QEMU 10.0 has no "query-blok"
  await client.execute("query-blok");
  // @ts-expect-error a wrong argument type: `node-name` is a string
  await client.execute("blockdev-del", { "node-name": 42 });
  // @ts-expect-error a misspelt event
  client.on("SHUTDOWNN", () => {});
  // @ts-expect-error a command 10.0 removed (query-cpus, gone since 6.0)
  await client.execute("query-cpus");
  // Outside any typing, on purpose: the escape hatch, untyped.
  await client.executeUnchecked("x-vendor-command", { anything: true });
}

// Events are typed by the release too.
qmp.on("SHUTDOWN", (event) => console.log(`shutdown: ${event.data.reason}`));
await qmp.execute("blockdev-del", { "node-name": "scratch" });
console.log("scratch node removed");
await qmp.close();
