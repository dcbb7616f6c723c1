/**
 * The demo behind `qmpkit events` with no target: an embedded simulated QEMU 7.2.22 on a
 * temporary unix socket, and a short script played against it once a watcher is connected, so
 * that a new user sees real QMP events within seconds and without a QEMU.
 *
 * The script ({@link DEMO_SCRIPT}) mixes what the host does (QMP commands, sent on a second
 * monitor as a management tool would) and what the guest does (`x-sim-guest`, the simulator's
 * guest triggers): boot, a pause, a storm of RTC changes (throttled to one a second, the last one
 * kept, §2), a panic under `panic=pause`, a reset, and an ACPI power-off, after which the
 * simulated QEMU exits as a real one does and the watch ends.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonObject } from "../base/json.js";
import { QmpClient } from "../client/index.js";
import { SimulatedMachine } from "../sim/index.js";
import { sleep } from "./io.js";

/** One step: after `afterMs`, the host runs a command or the guest does something. */
export interface DemoStep {
  readonly afterMs: number;
  readonly who: "host" | "guest";
  /** A QMP command (host) or an `x-sim-guest` action (guest). */
  readonly what: string;
  readonly args?: JsonObject | undefined;
  /** Repeat this many times, `afterMs` apart (the RTC storm). */
  readonly repeat?: number | undefined;
}

/** The demo guest script. */
export const DEMO_SCRIPT: readonly DemoStep[] = [
  // Boot: QEMU started with -S; the management tool starts the vCPUs.
  { afterMs: 300, who: "host", what: "cont" },
  // A pause and a resume.
  { afterMs: 800, who: "host", what: "stop" },
  { afterMs: 700, who: "host", what: "cont" },
  // The guest sets its clock 15 times in 1.2 s: QEMU sends the first at once, then one a second.
  { afterMs: 600, who: "guest", what: "rtc-change", args: { offset: 1 }, repeat: 15 },
  // A panic with the panic action set to pause: GUEST_PANICKED, then STOP.
  { afterMs: 2_200, who: "host", what: "set-action", args: { panic: "pause" } },
  { afterMs: 200, who: "guest", what: "panic" },
  // The host resets the VM and starts it again.
  { afterMs: 1_000, who: "host", what: "system_reset" },
  { afterMs: 300, who: "host", what: "cont" },
  // The guest powers off through ACPI: SHUTDOWN, and QEMU exits.
  { afterMs: 900, who: "guest", what: "shutdown" },
];

/** A running demo. */
export interface Demo {
  /** The QEMU version the simulator plays. */
  readonly version: string;
  /** Where to watch: `unix:PATH`. */
  readonly address: string;
  readonly path: string;
  /** Starts the script once a watcher has negotiated on {@link address} (returns at once). */
  run(): void;
  /** Resolves when the script has finished (or failed: see {@link error}). */
  readonly done: Promise<void>;
  /** Why the script failed, if it did. */
  readonly error: Error | undefined;
  /** Stops the script and the machine, removes the socket directory. Idempotent. */
  close(): Promise<void>;
}

/** Starts the demo machine (paused, as with `-S`) and its two monitors. */
export async function startDemo(
  options: { signal?: AbortSignal | undefined; script?: readonly DemoStep[] } = {},
): Promise<Demo> {
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-demo-"));
  const path = join(dir, "demo.qmp");
  const operatorPath = join(dir, "operator.qmp");
  const vm = new SimulatedMachine({ name: "demo", startPaused: true, machine: "pc" });
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const watchMonitor = vm.addMonitor();
  let error: Error | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  let closed = false;
  let started = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    stop.abort();
    if (!started) resolveDone();
    options.signal?.removeEventListener("abort", onAbort);
    await vm.close();
    await done;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await watchMonitor.listen(`unix:${path}`);
    await vm.listen(`unix:${operatorPath}`);
  } catch (e) {
    resolveDone();
    await close();
    throw e;
  }
  const v = vm.profile.version;

  const play = async () => {
    // Wait for the watcher: events reach only negotiated clients (§1.3).
    for (let waited = 0; !watchMonitor.clients.some((c) => c.state === "command"); waited += 20) {
      if (stop.signal.aborted) return;
      if (waited > 10_000) throw new Error("demo: no watcher connected within 10 s");
      await sleep(20, stop.signal);
    }
    // Let the watcher's first query-status settle before the first event.
    await sleep(100, stop.signal);
    const operator = await QmpClient.connect(`unix:${operatorPath}`, {
      trackRunState: false,
      timeoutMs: 5_000,
    });
    try {
      for (const step of options.script ?? DEMO_SCRIPT) {
        for (let i = 0; i < (step.repeat ?? 1); i++) {
          await sleep(i === 0 ? step.afterMs : 80, stop.signal);
          if (stop.signal.aborted || vm.exitStatus !== undefined) return;
          if (step.who === "host") {
            await operator.execute(step.what, step.args);
          } else {
            const args = step.what === "rtc-change" ? { offset: (i + 1) * 60 } : (step.args ?? {});
            await operator.execute("x-sim-guest", { action: step.what, ...args });
          }
        }
      }
    } catch (e) {
      // The last step makes QEMU exit: a reply lost with it is expected (qmp-spec on quit).
      if (vm.exitStatus === undefined && !stop.signal.aborted) throw e;
    } finally {
      await operator.close();
    }
  };

  return {
    version: `${v.major}.${v.minor}.${v.micro}`,
    address: `unix:${path}`,
    path,
    run() {
      if (started || closed) return;
      started = true;
      play()
        .catch((e: unknown) => {
          error = e instanceof Error ? e : new Error(String(e));
          // Without its script the demo would never end: stop the machine.
          void vm.close();
        })
        .finally(resolveDone);
    },
    done,
    get error() {
      return error;
    },
    close,
  };
}
