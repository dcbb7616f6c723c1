/**
 * The README's journal example, runnable as it stands: `npx tsx examples/journal.ts`.
 * A simulated QEMU, a client whose events are recorded into an SQLite journal, then the journal
 * read back: the events, and the run-state timeline.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient } from "qmpkit";
import { Journal, recordClient } from "qmpkit/journal";
import { SimulatedMachine } from "qmpkit/sim";

const dir = mkdtempSync(join(tmpdir(), "qmpkit-journal-example-"));
const vm = new SimulatedMachine({ startPaused: true });
const address = await vm.listen(`unix:${join(dir, "vm1.qmp")}`);

// Record: everything the client sees goes into the journal, until the client closes.
const journal = Journal.open(join(dir, "vms.db"), { maxAgeMs: 7 * 86_400_000 });
const qmp = await QmpClient.connect(address);
const recording = recordClient(journal, qmp, { name: "vm1", address });
await qmp.execute("cont");
await qmp.execute("stop");
await qmp.close();
await recording.done;
journal.close();
await vm.close();

// Read back (a reader may run while a recorder writes): queries are async iterators.
const reader = Journal.open(join(dir, "vms.db"), { readonly: true });
for await (const entry of reader.entries({ vm: "vm1", kinds: ["event"] })) {
  if (entry.kind === "event") console.log(`event ${entry.event.event}`);
}
for await (const intervals of reader.timeline({ vm: "vm1" })) {
  for (const i of intervals)
    console.log(`${i.vm}: ${i.state} (${i.cause})${i.untilMs ? "" : " …"}`);
}
reader.close();
rmSync(dir, { recursive: true, force: true });
