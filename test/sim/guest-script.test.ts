/** Guest scripts: parsing, and steps at guest run time on a manual clock. */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import {
  GuestScriptError,
  GuestScriptRunner,
  type GuestScriptStep,
  parseGuestScript,
  parseGuestTime,
} from "../../src/sim/guest-script.js";
import { FakeClock } from "./fake-clock.js";

suite("parseGuestScript", () => {
  test("should parse actions and injections, skip comments and sort by time", () => {
    const steps = parseGuestScript(
      [
        "# a script",
        '{"at": "2.5s", "action": "panic"}',
        "",
        '{"at": 1, "action": "rtc-change", "offset": 5}',
        '{"at": "250ms", "inject": "VSERPORT_CHANGE", "data": {"id": "p", "open": true}}',
      ].join("\n"),
    );
    assert.deepEqual(
      steps.map((s) => [s.atMs, s.kind, s.name, s.args, s.line]),
      [
        [250, "inject", "VSERPORT_CHANGE", { id: "p", open: true }, 5],
        [1000, "action", "rtc-change", { offset: 5 }, 4],
        [2500, "action", "panic", {}, 2],
      ],
    );
  });

  test("should name the file and line of a bad step", () => {
    assert.throws(
      () => parseGuestScript('{"at": "soon", "action": "panic"}', "g.jsonl"),
      (e: unknown) =>
        e instanceof GuestScriptError && e.message.startsWith("g.jsonl:1: 'at' must be"),
    );
    assert.throws(
      () => parseGuestScript('\n{"at": 1}', "g.jsonl"),
      /g\.jsonl:2: a step needs exactly one of 'action'/,
    );
    assert.throws(() => parseGuestScript("{nope", "g.jsonl"), /g\.jsonl:1: not JSON/);
  });

  test("should read durations", () => {
    assert.equal(parseGuestTime("1m"), 60_000);
    assert.equal(parseGuestTime(0.5), 500);
    assert.equal(parseGuestTime("-1s"), undefined);
  });
});

suite("GuestScriptRunner", () => {
  test("should count only the time the guest runs", () => {
    const clock = new FakeClock();
    let running = false;
    const listeners: Array<() => void> = [];
    const done: string[] = [];
    const setRunning = (r: boolean) => {
      running = r;
      for (const l of listeners) l();
    };
    const steps: GuestScriptStep[] = parseGuestScript(
      '{"at": 1, "action": "a"}\n{"at": 3, "action": "b"}',
    );
    const runner = new GuestScriptRunner(steps, {
      clock,
      isRunning: () => running,
      onRunningChange: (fn) => {
        listeners.push(fn);
        return () => {};
      },
      perform: (s) => done.push(`${s.name}@${Math.round(runner.guestTimeMs)}`),
      report: () => {},
    });
    clock.advance(5000); // prelaunch: guest time stands still
    assert.deepEqual(done, []);
    setRunning(true);
    clock.advance(1000);
    assert.deepEqual(done, ["a@1000"]);
    clock.advance(500);
    setRunning(false);
    clock.advance(10_000);
    assert.deepEqual(done, ["a@1000"]);
    setRunning(true);
    clock.advance(1499);
    assert.deepEqual(done, ["a@1000"]);
    clock.advance(1);
    assert.deepEqual(done, ["a@1000", "b@3000"]);
    assert.equal(runner.done, true);
  });

  test("should report a failing step and go on", () => {
    const clock = new FakeClock();
    const reported: string[] = [];
    const done: string[] = [];
    new GuestScriptRunner(
      parseGuestScript('{"at": 0, "action": "bad"}\n{"at": 0, "action": "good"}'),
      {
        clock,
        isRunning: () => true,
        onRunningChange: () => () => {},
        perform: (s) => {
          if (s.name === "bad") throw new Error("nope");
          done.push(s.name);
        },
        report: (s, e) => reported.push(`${s.line}: ${(e as Error).message}`),
      },
    );
    clock.advance(0);
    assert.deepEqual(reported, ["1: nope"]);
    assert.deepEqual(done, ["good"]);
  });
});
