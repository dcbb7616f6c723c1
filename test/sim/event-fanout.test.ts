/**
 * One event, one timestamp: the simulated machine raises an event once (built, stamped and
 * throttled once, as one QEMU process does, `monitor/monitor.c`) and every monitor receives the
 * same bytes, a `pretty=on` monitor the same dict pretty-printed.
 *
 * The clock here moves by one microsecond every time it is read, so an event stamped once per
 * monitor would carry a different timestamp on each: the tests fail on exactly that.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { ManualClock, type ServerClock } from "../../src/server/index.js";
import { SimulatedMachine } from "../../src/sim/index.js";
import { RawQmp } from "../support/real-qemu.js";

/** A manual clock whose reading advances by 1 µs per read (timers run on the manual time). */
class TickingClock implements ServerClock {
  reads = 0;
  constructor(readonly manual: ManualClock) {}
  nowMicros(): number {
    return this.manual.nowMicros() + this.reads++;
  }
  setTimer(fn: () => void, delayMs: number) {
    return this.manual.setTimer(fn, delayMs);
  }
  clearTimer(timer: Parameters<ServerClock["clearTimer"]>[0]): void {
    this.manual.clearTimer(timer);
  }
}

/** Reads one pretty-printed message (it ends with a line that is only `}`). */
async function nextPretty(qmp: RawQmp): Promise<string> {
  let text = "";
  for (;;) {
    const line = await qmp.nextLine();
    if (line === undefined) throw new Error(`pretty message cut short: ${text}`);
    text += line;
    if (line === "}\r\n") return text;
  }
}

/** The message's JSON text on one line, members in printed order. */
const compact = (text: string) => JSON.stringify(JSON.parse(text));

interface Monitors {
  vm: SimulatedMachine;
  plain: RawQmp[];
  pretty: RawQmp;
}

let dir = "";
let counter = 0;

/** A machine with three monitors, the third `pretty=on`, every client negotiated. */
async function threeMonitors(clock: ServerClock): Promise<Monitors> {
  const vm = new SimulatedMachine({ startPaused: true, clock, firmwareResets: 0 });
  const paths = [0, 1, 2].map(() => join(dir, `m${counter++}.sock`));
  await vm.listen(`unix:${paths[0]}`);
  await vm.listen(`unix:${paths[1]}`);
  await vm.listen(`unix:${paths[2]}`, { pretty: true });
  const [a, b, c] = await Promise.all(paths.map((p) => RawQmp.connect(p)));
  await a!.handshake();
  await b!.handshake();
  await nextPretty(c!);
  c!.send('{"execute":"qmp_capabilities"}');
  assert.equal(await nextPretty(c!), '{\r\n    "return": {\r\n    }\r\n}\r\n');
  return { vm, plain: [a!, b!], pretty: c! };
}

async function closeAll(m: Monitors): Promise<void> {
  for (const q of [...m.plain, m.pretty]) q.close();
  await m.vm.close();
}

suite("one event, one timestamp: every monitor of a simulated machine", () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "qmpkit-fanout-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("should send every monitor the same STOP and RESUME bytes, the pretty one the same dict", async () => {
    const clock = new TickingClock(new ManualClock({ startMicros: 1_000_000_000_000 }));
    const m = await threeMonitors(clock);
    try {
      const [first, second] = m.plain as [RawQmp, RawQmp];
      const commands = ["cont", "stop", "cont", "stop", "cont", "stop"];
      const seen: string[] = [];
      for (const [i, command] of commands.entries()) {
        first.send(`{"execute":"${command}","id":${i}}`);
        clock.manual.advance(1);
        // RESUME before cont's reply and STOP before stop's (7.2.22, §1.9).
        const event = await first.nextLine();
        assert.equal(await first.nextLine(), `{"return": {}, "id": ${i}}\r\n`);
        seen.push(JSON.parse(event ?? "null").event);
        assert.equal(await second.nextLine(), event, `monitor 2, ${command} #${i}`);
        assert.equal(compact(await nextPretty(m.pretty)), compact(event!), `pretty, ${command}`);
      }
      assert.deepEqual(seen, ["RESUME", "STOP", "RESUME", "STOP", "RESUME", "STOP"]);
      assert.deepEqual(await second.drain(50), []);
    } finally {
      await closeAll(m);
    }
  });

  test("should throttle once for the machine: two RTC_CHANGE per monitor, the held one with the fifth raise's stamp", async () => {
    const start = 2_000_000_000_000;
    const clock = new TickingClock(new ManualClock({ startMicros: start }));
    const m = await threeMonitors(clock);
    try {
      const [first] = m.plain as [RawQmp, RawQmp];
      first.send('{"execute":"cont","id":"go"}');
      await first.nextLine();
      assert.equal(await first.nextLine(), '{"return": {}, "id": "go"}\r\n');
      await m.plain[1]!.nextLine();
      await nextPretty(m.pretty);
      const t0 = clock.manual.nowMicros();
      // Five raises 0.1 s apart, as a guest rewriting its RTC: the first goes out, the rest are
      // held, each replacing the one before.
      for (let i = 1; i <= 5; i++) {
        m.vm.guest.rtcChange(i);
        clock.manual.advance(100);
      }
      // 0.5 s after the first: nothing more yet on any monitor.
      const early = await Promise.all(m.plain.map((q) => q.drain(50)));
      for (const lines of early) assert.equal(lines.length, 1);
      assert.equal(early[1]![0], early[0]![0]);
      clock.manual.advance(600);
      const late = await Promise.all(m.plain.map((q) => q.drain(50)));
      assert.deepEqual(late[1], late[0]);
      assert.equal(late[0]!.length, 1);
      const lines = [early[0]![0]!, late[0]![0]!];
      const events = lines.map(
        (l) =>
          JSON.parse(l) as {
            event: string;
            timestamp: { seconds: number; microseconds: number };
            data: { offset: number };
          },
      );
      assert.deepEqual(
        events.map((e) => `${e.event} ${e.data.offset}`),
        ["RTC_CHANGE 1", "RTC_CHANGE 5"],
      );
      // Which raise stamped it: raises are 100 ms apart, the clock's ticks are microseconds.
      const raise = (e: (typeof events)[number]) =>
        Math.round((e.timestamp.seconds * 1_000_000 + e.timestamp.microseconds - t0) / 100_000);
      assert.deepEqual(events.map(raise), [0, 4]);
      const pretty = [await nextPretty(m.pretty), await nextPretty(m.pretty)];
      assert.deepEqual(pretty.map(compact), lines.map(compact));
      assert.deepEqual(m.vm.servers[0]!.throttleState, { records: 1, held: 0 });
    } finally {
      await closeAll(m);
    }
  });
});
