/**
 * The simulated VMs of `bench/dashboard.ts`, in a process of their own: N machines, each on
 * `DIR/vmNNNN.qmp`; on the line `go RATE SECONDS` on stdin, RATE run-state events a second
 * in all (each a `stop` or `cont` of the next machine in turn: STOP or RESUME, and a run-state
 * change) for SECONDS, then the line `done EVENTS` on stdout. `ready` once every machine listens.
 *
 * Run: `npx tsx bench/support/dashboard-sims.ts DIR N`.
 *
 * @module
 */
import { createInterface } from "node:readline";
import { SimulatedMachine } from "../../src/sim/index.js";

const [dir, countText] = process.argv.slice(2);
const count = Number(countText);
const machines: SimulatedMachine[] = [];
for (let i = 0; i < count; i++) {
  const machine = new SimulatedMachine();
  await machine.listen(`unix:${dir}/vm${String(i).padStart(4, "0")}.qmp`);
  machines.push(machine);
}
console.log("ready");

for await (const line of createInterface({ input: process.stdin })) {
  const [verb, rateText, secondsText] = line.split(" ");
  if (verb === "quit") break;
  if (verb !== "go") continue;
  const rate = Number(rateText);
  const until = Date.now() + Number(secondsText) * 1000;
  const started = Date.now();
  let sent = 0;
  let next = 0;
  await new Promise<void>((resolve) => {
    // Every 10 ms, as many events as the rate says should have been sent by now.
    const timer = setInterval(() => {
      const now = Date.now();
      const due = Math.floor(((Math.min(now, until) - started) / 1000) * rate);
      for (; sent < due; sent++) {
        const m = machines[next]!;
        next = (next + 1) % machines.length;
        if (m.core.state === "running") m.core.stop();
        else m.core.cont();
      }
      if (now >= until) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  console.log(`done ${sent}`);
}
await Promise.all(machines.map((m) => m.close()));
