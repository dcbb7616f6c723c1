/**
 * A child process hosting simulated VMs for the fleet's chaos and scale tests: one process plays
 * a host's QEMUs (`SimulatedMachine`s on unix sockets `DIR/NAME.qmp`), floods them with numbered
 * events on command, restarts one's QEMU, and keeps the ground truth: every event each VM
 * emitted, appended to `DIR/NAME.truth.jsonl` as it is emitted, with whether a monitor client
 * had negotiated (`qmp_capabilities`) at that moment, i.e. whether QEMU wrote it to a watcher.
 *
 * The event is DEVICE_TRAY_MOVED, which QEMU does not throttle (`monitor_qapi_event_conf` in
 * QEMU's monitor/monitor.c lists the throttled ones: RTC_CHANGE, BALLOON_CHANGE, WATCHDOG, …;
 * qemu-behaviour §2), so every emission is one event on the wire. Its `id` is `N` (a per-VM
 * number, counting on across QEMU restarts) so that order and identity can be checked.
 *
 * Driven over the IPC channel of `fork()` (`VmHostRequest` in, `VmHostReply` out). Run by
 * `test/fleet/chaos.test.ts` and `bench/fleet-scale.ts`; never on its own.
 *
 * @module
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ServerClock, systemClock } from "../../src/server/clock.js";
import { SimulatedMachine } from "../../src/sim/index.js";

/** One line of a VM's ground-truth file. */
export interface TruthRecord {
  /** The event's number (its `data.id`). */
  readonly n: number;
  /** Whether a negotiated monitor client was connected when QEMU wrote it. */
  readonly watched: boolean;
  /** The event's own timestamp, µs since the epoch (as QEMU stamped it). */
  readonly us: number;
  /** Which QEMU process of the VM emitted it (0, then 1 after a restart, …). */
  readonly gen: number;
}

/** What the VM host is asked. */
export type VmHostRequest =
  | { readonly op: "start"; readonly dir: string; readonly vms: readonly string[] }
  /** Floods `perTick` events per VM per turn (about every `tickMs`), or pauses. */
  | {
      readonly op: "flood";
      readonly vms: readonly string[] | "all";
      readonly on: boolean;
      readonly perTick?: number;
      readonly tickMs?: number;
      /**
       * Spread the VMs over this many turns of `tickMs / slices` each (VM i emits in turn
       * i mod slices), so that they do not all emit at the same instant. Default 1.
       */
      readonly slices?: number;
    }
  /** Emits `count` events per VM as fast as it can (`perTick` per VM per turn of the loop). */
  | { readonly op: "burst"; readonly count: number; readonly perTick?: number }
  /** Each VM's numbers. */
  | { readonly op: "status" }
  /** Kills the VM's QEMU (sockets closed, no event) and starts a new one on the same path. */
  | { readonly op: "kill-qemu"; readonly vm: string }
  | { readonly op: "start-qemu"; readonly vm: string }
  | { readonly op: "close" };

/** Each VM's numbers: emitted so far, of which watched; negotiated clients now; last `n`. */
export interface VmStatus {
  readonly emitted: number;
  readonly watched: number;
  readonly clients: number;
  readonly flooding: boolean;
  readonly alive: boolean;
}

export type VmHostReply = { readonly id: number } & (
  | { readonly ok: true; readonly status?: Record<string, VmStatus> }
  | { readonly ok: false; readonly error: string }
);

interface Vm {
  readonly name: string;
  readonly path: string;
  readonly truthPath: string;
  machine: SimulatedMachine | undefined;
  gen: number;
  next: number;
  watched: number;
  flooding: boolean;
  pending: string[];
}

/** The stamp of the last event built: the clock is asked once per event (`EventBus.build`). */
let lastMicros = 0;
const clock: ServerClock = {
  nowMicros() {
    lastMicros = systemClock.nowMicros();
    return lastMicros;
  },
  setTimer: (fn, ms) => systemClock.setTimer(fn, ms),
  clearTimer: (t) => systemClock.clearTimer(t),
};

const vms = new Map<string, Vm>();
let perTick = 1;
let tickMs = 10;
let slices = 1;
let turn = 0;
let timer: NodeJS.Timeout | undefined;

function negotiated(m: SimulatedMachine): number {
  let n = 0;
  for (const s of m.servers) for (const c of s.clients) if (c.state === "command") n++;
  return n;
}

async function startQemu(vm: Vm): Promise<void> {
  const machine = new SimulatedMachine({ clock, name: vm.name });
  await machine.listen(`unix:${vm.path}`);
  vm.machine = machine;
}

function emitOne(vm: Vm): void {
  const m = vm.machine!;
  const watched = negotiated(m) > 0;
  const n = vm.next++;
  m.hostSide.inject("DEVICE_TRAY_MOVED", { device: "", id: String(n), "tray-open": n % 2 === 0 });
  if (watched) vm.watched++;
  const record: TruthRecord = { n, watched, us: lastMicros, gen: vm.gen };
  vm.pending.push(JSON.stringify(record));
}

function flushTruth(): void {
  for (const vm of vms.values()) {
    if (vm.pending.length === 0) continue;
    appendFileSync(vm.truthPath, `${vm.pending.join("\n")}\n`);
    vm.pending = [];
  }
}

function tick(): void {
  timer = undefined;
  const slice = turn++ % slices;
  let index = 0;
  for (const vm of vms.values()) {
    if (index++ % slices !== slice || !vm.flooding || vm.machine === undefined) continue;
    for (let i = 0; i < perTick; i++) emitOne(vm);
  }
  flushTruth();
  schedule();
}

function schedule(): void {
  if (timer === undefined && [...vms.values()].some((v) => v.flooding))
    timer = setTimeout(tick, tickMs / slices);
}

function status(): Record<string, VmStatus> {
  const out: Record<string, VmStatus> = {};
  for (const vm of vms.values()) {
    out[vm.name] = {
      emitted: vm.next,
      watched: vm.watched,
      clients: vm.machine === undefined ? 0 : negotiated(vm.machine),
      flooding: vm.flooding,
      alive: vm.machine !== undefined,
    };
  }
  return out;
}

function get(name: string): Vm {
  const vm = vms.get(name);
  if (vm === undefined) throw new Error(`no VM ${name}`);
  return vm;
}

async function handle(request: VmHostRequest): Promise<Record<string, VmStatus> | undefined> {
  switch (request.op) {
    case "start": {
      for (const name of request.vms) {
        const vm: Vm = {
          name,
          path: join(request.dir, `${name}.qmp`),
          truthPath: join(request.dir, `${name}.truth.jsonl`),
          machine: undefined,
          gen: 0,
          next: 0,
          watched: 0,
          flooding: false,
          pending: [],
        };
        writeFileSync(vm.truthPath, "");
        vms.set(name, vm);
      }
      // One at a time: a thousand listens at once would only queue in the kernel anyway.
      for (const name of request.vms) await startQemu(get(name));
      return undefined;
    }
    case "flood": {
      if (request.perTick !== undefined) perTick = request.perTick;
      if (request.tickMs !== undefined) tickMs = request.tickMs;
      if (request.slices !== undefined) slices = request.slices;
      const names = request.vms === "all" ? [...vms.keys()] : request.vms;
      for (const name of names) get(name).flooding = request.on;
      // Whatever a paused VM emitted is on disk before the caller acts on the pause.
      flushTruth();
      schedule();
      return undefined;
    }
    case "burst": {
      const chunk = request.perTick ?? 10;
      for (let left = request.count; left > 0; left -= chunk) {
        for (const vm of vms.values())
          if (vm.machine !== undefined) for (let i = 0; i < Math.min(chunk, left); i++) emitOne(vm);
        flushTruth();
        // Let the monitors write (and everything else run) between chunks.
        await new Promise((r) => setImmediate(r));
      }
      return undefined;
    }
    case "status":
      return status();
    case "kill-qemu": {
      const vm = get(request.vm);
      flushTruth();
      const m = vm.machine;
      vm.machine = undefined;
      await m?.close();
      return undefined;
    }
    case "start-qemu": {
      const vm = get(request.vm);
      if (vm.machine !== undefined) throw new Error(`${vm.name}'s QEMU runs`);
      vm.gen++;
      await startQemu(vm);
      return undefined;
    }
    case "close": {
      for (const vm of vms.values()) vm.flooding = false;
      if (timer !== undefined) clearTimeout(timer);
      flushTruth();
      await Promise.all([...vms.values()].map((vm) => vm.machine?.close()));
      return undefined;
    }
  }
}

process.on("message", (message: { id: number; request: VmHostRequest }) => {
  handle(message.request).then(
    (s) => {
      const reply: VmHostReply =
        s === undefined ? { id: message.id, ok: true } : { id: message.id, ok: true, status: s };
      process.send?.(reply);
      if (message.request.op === "close") process.disconnect();
    },
    (error: unknown) =>
      process.send?.({
        id: message.id,
        ok: false,
        error: String((error as Error)?.stack ?? error),
      }),
  );
});
// The parent went away (a failed test): end, leaving no simulated QEMU behind.
process.on("disconnect", () => process.exit(0));
