/**
 * `SimulatedMachine`: a QEMU process as seen over QMP, built from the machine core, the device
 * layer and one {@link QmpServer} per monitor.
 *
 * - Commands answer with QEMU's effects, events, errors and event/reply order (§1.9: events a
 *   command's request causes come before the reply in 7.2.22 and 9.0+, after it in 7.2.0–7.2.8
 *   and 8.x); arguments are checked by the generated validators, so errors carry QEMU's texts.
 * - Guest and host triggers: the TypeScript API ({@link SimulatedMachine.guest},
 *   {@link SimulatedMachine.hostSide}), the experimental `x-sim-guest` / `x-sim-inject` QMP
 *   commands (absent under `strict`), and guest scripts.
 * - The process end: the last events go out, every socket closes, {@link SimulatedMachine.exited}
 *   resolves with the exit status (0, or 1 for `panic=exit-failure`).
 *
 * @example
 * const vm = new SimulatedMachine({ qemuVersion: "7.2.22", startPaused: true, actions: { shutdown: "pause" } });
 * const endpoint = await vm.listen("unix:./vm.sock");
 * vm.guest.panic(); // fails: prelaunch has no running vCPUs; `cont` first
 * await vm.close();
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { StateError } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import type { QmpCommandMap } from "../generated/index.js";
import { jsonTypeOf } from "../schema/runtime.js";
import type { Validator } from "../schema/validator.js";
import {
  type CommandContext,
  type CommandOptions,
  describeArgumentIssue,
  noArguments,
  QmpReplyError,
  QmpServer,
  type ServerClock,
  systemClock,
} from "../server/index.js";
import type { RunStateActions } from "./actions.js";
import { SimDevices, type SimDevicesOptions } from "./devices.js";
import { type GuestScriptStep, GuestScriptRunner } from "./guest-script.js";
import { migrationTarget } from "./migration.js";
import { type HostSignal, MachineCore } from "./machine-core.js";
import type { RunState } from "./run-state.js";
import { type Listener, listen } from "../wire/index.js";
import {
  commandAllowsOob,
  commandArgsValidatorFor,
  commandRegistrationRanks,
  eventDataValidator,
  hasIntrospection,
  inSchemaOrder,
  introspection,
  introspectionWithSimCommands,
  versionHasCommand,
  versionHasEvent,
  versionHasMember,
} from "./schema-info.js";
import { type QemuProfile, qemuProfile } from "./versions.js";

/** Options of {@link SimulatedMachine}. */
export interface SimulatedMachineOptions {
  /** The QEMU version to impersonate (see `QEMU_PROFILES`). Default `7.2.22`. */
  qemuVersion?: string | undefined;
  /** `query-version`'s `package`. Default: the profile's (`Debian 1:7.2+dfsg-7+deb12u18+b3` for 7.2.22). */
  package?: string | undefined;
  /**
   * The build imitated: the catalogue's `if` symbols that are on (`CONFIG_QPL`, …; see
   * `BUILD_SYMBOLS`). What a symbol that is off guards is missing from `query-qmp-schema` and
   * refused in arguments, as QEMU compiles it out. Default: the profile's (Debian's build).
   */
  config?: Iterable<string> | undefined;
  /** `-S`: start in `prelaunch`. Default false (running). */
  startPaused?: boolean | undefined;
  /** `-action …` (and `-no-reboot` = reboot:shutdown, `-no-shutdown` = shutdown:pause). */
  actions?: Partial<RunStateActions> | undefined;
  /** `-name`: what `query-name` answers. */
  name?: string | undefined;
  /** `-machine`: `pc` has ACPI (suspend, wakeup); `none` does not. Default `none`. */
  machine?: "none" | "pc" | undefined;
  /** `-incoming defer|URI`: start in `inmigrate`. */
  incoming?: string | boolean | undefined;
  /** No `x-sim-*` commands: only what QEMU has. Default false. */
  strict?: boolean | undefined;
  /** Devices (none by default, as `-nodefaults`). */
  devices?: SimDevicesOptions | undefined;
  /** Clock for timestamps, throttling and timers. Default: the system clock. */
  clock?: ServerClock | undefined;
  /** Clients served at once per monitor (a QEMU socket chardev serves 1). Default 1. */
  maxClients?: number | undefined;
  /** Where QEMU's stderr text goes (`watchdog: timer fired`). Default: dropped. */
  onStderr?: ((text: string) => void) | undefined;
  /**
   * Guest resets the firmware performs after every reset and wakeup of a running VM: SeaBIOS on
   * `-machine pc` does 2 (RESET{guest: true, reason: "guest-reset"} twice, just after the
   * command's reply; reference §4.3 notes). Default: 2 for `pc`, 0 for `none` (no firmware).
   * Only with reboot=reset.
   */
  firmwareResets?: number | undefined;
  /** Unexpected handler errors (simulator bugs). Default: written through `onStderr`. */
  onInternalError?: ((error: unknown) => void) | undefined;
}

/** The guest side: what a guest OS or its devices would do. Each needs running vCPUs. */
export interface GuestControls {
  /** ACPI S5 power-off. */
  shutdown(): void;
  /** ACPI S4: SUSPEND_DISK, then as S5. */
  hibernate(): void;
  /** A guest reset (keyboard controller, 0xCF9, triple fault). */
  reset(): void;
  /** ACPI S3 (needs `machine: "pc"`). */
  suspend(): void;
  /** A pvpanic panic (bit 0); optional panic information (Hyper-V, s390…). */
  panic(info?: JsonObject): void;
  /** pvpanic crash-loaded (bit 1). */
  crashLoaded(info?: JsonObject): void;
  /** pvpanic shutdown (bit 2, QEMU 9.1+). */
  pvShutdown(): void;
  /** The watchdog expires: WATCHDOG, then the watchdog action. */
  watchdogExpire(): void;
  /** The guest sets its RTC: RTC_CHANGE{offset, qom-path} (throttled). */
  rtcChange(offset: number): void;
  /** The balloon driver reports its size (BALLOON_CHANGE, throttled). */
  balloonChange(actualBytes: number): void;
  /** An I/O error on a drive: BLOCK_IO_ERROR, then its action (stop → STOP, `io-error`). */
  ioError(
    device: string,
    options?: { operation?: "read" | "write"; nospace?: boolean; reason?: string },
  ): void;
  /** The guest opens or closes a drive's tray: DEVICE_TRAY_MOVED. */
  trayMoved(device: string, open: boolean): void;
  /** A virtio-serial port opens or closes: VSERPORT_CHANGE (throttled per id). */
  serialPort(id: string, open: boolean): void;
  /** The guest reprograms a NIC's receive filter: NIC_RX_FILTER_CHANGED (once per query-rx-filter). */
  rxFilterChange(nic: string): void;
  /**
   * The guest ejects a hot-pluggable PCI device (its answer to `device_del`, or on its own, as
   * the PIIX4 eject register allows): DEVICE_DELETED.
   */
  ackUnplug(id: string): void;
}

/** The host side: signals and arbitrary device/host events. */
export interface HostControls {
  /**
   * SIGTERM/SIGINT/SIGHUP: `qemu-system-x86_64: terminating on signal N from pid P (NAME)` on
   * stderr, SHUTDOWN{false, host-signal}, then exit 0, even with -no-shutdown. The sender
   * defaults to this process (as when a test runner sends the signal); pass `pid: undefined`
   * explicitly via `{ anonymous: true }` for a terminal's ^C, which QEMU prints without it.
   */
  signal(from?: (HostSignal & { anonymous?: boolean | undefined }) | undefined): void;
  /**
   * Emits a device or host event (checked against the catalogue for this version) and applies
   * its follow-up: BLOCK_IO_ERROR with action stop stops the VM, DEVICE_DELETED removes the
   * device, DEVICE_TRAY_MOVED moves the tray, BALLOON_CHANGE sets the balloon size,
   * MEMORY_FAILURE with action reset resets the guest.
   */
  inject(event: string, data?: JsonObject): void;
  /** An incoming migration finished: `running` (RESUME) if autostart is set, else `paused`. */
  incomingMigrationDone(): void;
}

/** The `x-sim-guest` actions. */
export const GUEST_ACTIONS = [
  "shutdown",
  "hibernate",
  "reset",
  "suspend",
  "panic",
  "crashloaded",
  "pvshutdown",
  "watchdog-expire",
  "rtc-change",
  "balloon-change",
  "io-error",
  "tray-move",
  "serial-port",
  "rx-filter-change",
  "unplug-ack",
] as const;

/** One of {@link GUEST_ACTIONS}. */
export type GuestAction = (typeof GUEST_ACTIONS)[number];

/** Arguments each guest action takes (besides `action`), with their JSON types. */
const GUEST_ACTION_ARGS: Readonly<
  Record<GuestAction, Readonly<Record<string, "string" | "integer" | "boolean" | "object">>>
> = {
  shutdown: {},
  hibernate: {},
  reset: {},
  suspend: {},
  panic: { info: "object" },
  crashloaded: { info: "object" },
  pvshutdown: {},
  "watchdog-expire": {},
  "rtc-change": { offset: "integer" },
  "balloon-change": { actual: "integer" },
  "io-error": { device: "string", operation: "string", nospace: "boolean", reason: "string" },
  "tray-move": { device: "string", open: "boolean" },
  "serial-port": { id: "string", open: "boolean" },
  "rx-filter-change": { nic: "string" },
  "unplug-ack": { id: "string" },
};

/** Required arguments per action. */
const GUEST_ACTION_REQUIRED: Readonly<Partial<Record<GuestAction, readonly string[]>>> = {
  "balloon-change": ["actual"],
  "io-error": ["device"],
  "tray-move": ["device", "open"],
  "serial-port": ["id", "open"],
  "rx-filter-change": ["nic"],
  "unplug-ack": ["id"],
};

/** Run-state events whose injection would bypass the machine: use `x-sim-guest` instead. */
const NOT_INJECTABLE = new Set([
  "SHUTDOWN",
  "RESET",
  "STOP",
  "RESUME",
  "SUSPEND",
  "SUSPEND_DISK",
  "WAKEUP",
  "POWERDOWN",
  "GUEST_PANICKED",
  "GUEST_CRASHLOADED",
  "GUEST_PVSHUTDOWN",
  "WATCHDOG",
]);

/** Commands without arguments: checked even when the catalogue does not describe them. */
const NO_ARGUMENTS = new Set([
  "query-version",
  "query-commands",
  "query-qmp-schema",
  "query-name",
  "query-status",
  "stop",
  "cont",
  "system_reset",
  "system_powerdown",
  "system_wakeup",
  "quit",
  "query-balloon",
  "migrate_cancel",
  "query-migrate",
  "query-migrate-capabilities",
  "query-migrate-parameters",
  "query-dump",
  "query-block-jobs",
]);

/**
 * One command of a machine's table: its handler, and the options every monitor registers it
 * with (one object shared by all the machine's monitors).
 */
interface SimCommand {
  readonly fn: (args: JsonObject, ctx: CommandContext) => unknown;
  readonly options: CommandOptions;
}

/** A simulated QEMU. */
export class SimulatedMachine {
  readonly profile: QemuProfile;
  readonly core: MachineCore;
  readonly devices: SimDevices;
  readonly name: string | undefined;
  readonly strict: boolean;
  /** Resolves with the exit status when the simulated QEMU exits; `undefined` if closed first. */
  readonly exited: Promise<number | undefined>;
  readonly guest: GuestControls;
  readonly hostSide: HostControls;

  readonly #clock: ServerClock;
  readonly #servers: QmpServer[] = [];
  readonly #options: SimulatedMachineOptions;
  readonly #package: string;
  readonly #config: ReadonlySet<string>;
  #resolveExited!: (status: number | undefined) => void;
  #ctx: CommandContext | undefined;
  #closed = false;
  #script: GuestScriptRunner | undefined;
  /** Monitors made so far by `listen` and `accept` (QEMU numbers `-qmp` options the same way). */
  #monitorCount = 0;
  /** The listening sockets of `listen` (the machine's own, so that it can reach the streams). */
  readonly #listeners: Listener[] = [];
  /** Socket chardevs (`query-yank`), in registration order, with their connected streams. */
  readonly #chardevs: Array<{ readonly id: string; readonly streams: Set<Duplex> }> = [];
  #handlers: Map<string, SimCommand> | undefined;

  constructor(options: SimulatedMachineOptions = {}) {
    this.#options = options;
    this.profile = qemuProfile(options.qemuVersion);
    this.#package = options.package ?? this.profile.package;
    this.#config = options.config === undefined ? this.profile.config : new Set(options.config);
    this.#clock = options.clock ?? systemClock;
    this.name = options.name;
    this.strict = options.strict ?? false;
    this.exited = new Promise((resolve) => {
      this.#resolveExited = resolve;
    });
    this.core = new MachineCore(
      this.profile,
      {
        emit: (name, data) => this.emit(name, data),
        exit: (status) => this.#onExit(status),
        stderr: (text) => this.#stderr(text),
      },
      {
        startPaused: options.startPaused,
        incoming: options.incoming !== undefined && options.incoming !== false,
        actions: options.actions,
        machine: options.machine,
      },
    );
    this.devices = new SimDevices(
      {
        core: this.core,
        clock: this.#clock,
        emit: (name, data) => this.emit(name, data),
        stderr: (text) => this.#stderr(text),
      },
      options.devices,
    );
    const core = this.core;
    const dev = this.devices;
    // `-incoming URI` listens from the start (`-incoming defer` waits for migrate-incoming).
    if (typeof options.incoming === "string" && options.incoming !== "defer") {
      dev.migration.listen(options.incoming);
    }
    const firmwareResets = options.firmwareResets ?? (core.machine === "pc" ? 2 : 0);
    if (firmwareResets > 0) {
      let resetting = false;
      const firmware = () => {
        if (resetting) return;
        this.#clock.setTimer(() => {
          if (this.#closed || core.hasExited) return;
          if (core.state !== "running" || core.actions.reboot !== "reset") return;
          resetting = true;
          try {
            for (
              let i = 0;
              i < firmwareResets && core.state === "running" && !core.hasExited;
              i++
            ) {
              core.requestReset("guest-reset");
              core.runMainLoop();
            }
          } finally {
            resetting = false;
          }
        }, 1);
      };
      core.onReset.push(firmware);
      core.onWakeup.push(firmware);
    }
    this.guest = {
      shutdown: () => core.guestShutdown(),
      hibernate: () => core.guestHibernate(),
      reset: () => core.guestReset(),
      suspend: () => core.guestSuspend(),
      panic: (info) => core.guestPanic(info),
      crashLoaded: (info) => core.guestCrashLoaded(info),
      pvShutdown: () => core.guestPvShutdown(),
      watchdogExpire: () => core.watchdogExpire(),
      rtcChange: (offset) => core.rtcChange(offset, dev.rtcQomPath),
      balloonChange: (actual) => dev.guestBalloonChange(actual),
      ioError: (device, o) => dev.guestIoError(device, o),
      trayMoved: (device, open) => dev.guestOpenTray(device, open),
      serialPort: (id, open) => dev.guestSerialPort(id, open),
      rxFilterChange: (nic) => dev.guestRxFilterChange(nic),
      ackUnplug: (id) => {
        core.assertGuestRunning("unplug acknowledgement");
        dev.guestAckUnplug(id);
      },
    };
    this.hostSide = {
      signal: (from = {}) =>
        core.hostSignal(
          from.anonymous
            ? { signal: from.signal }
            : {
                signal: from.signal,
                pid: from.pid ?? process.pid,
                sender: from.sender ?? process.title,
              },
        ),
      inject: (event, data) => this.inject(event, data),
      incomingMigrationDone: () => {
        core.assertAlive("incoming migration");
        if (!core.runState.is("inmigrate")) {
          throw new StateError(
            `incoming migration failed: the machine is in '${core.state}', not 'inmigrate'`,
            core.state,
            "inmigrate",
          );
        }
        dev.migration.incomingStatus("completed");
        if (core.autostart) core.vmStart();
        else core.runState.set("paused");
      },
    };
  }

  /** The current run state. */
  get state(): RunState {
    return this.core.state;
  }

  /** The exit status, once exited. */
  get exitStatus(): number | undefined {
    return this.core.exitStatus;
  }

  /** The clock the machine runs on. */
  get clock(): ServerClock {
    return this.#clock;
  }

  /** The monitors' servers (one per `listen`/`addMonitor`). */
  get servers(): readonly QmpServer[] {
    return this.#servers;
  }

  // ------------------------------------------------------------------ monitors

  /**
   * Adds a QMP monitor (a {@link QmpServer} with this machine's commands). Every monitor sees
   * every event; each serves `maxClients` clients at a time.
   */
  addMonitor(options: { pretty?: boolean | undefined } = {}): QmpServer {
    if (this.#closed || this.core.hasExited) {
      throw new StateError("add monitor failed: the simulated QEMU has ended", "exited", "alive");
    }
    const server = new QmpServer({
      greeting: {
        version: { qemu: { ...this.profile.version }, package: this.#package },
        capabilities: this.profile.capabilities,
      },
      clock: this.#clock,
      maxClients: this.#options.maxClients ?? 1,
      pretty: options.pretty,
      onHandlerError: (error) => this.#internalError(error),
    });
    for (const [name, h] of this.#commandTable()) {
      server.command(name, h.fn, h.options);
    }
    this.#servers.push(server);
    return server;
  }

  /**
   * Listens on `unix:PATH` or `tcp:HOST:PORT` as a new monitor; resolves with the address. The
   * monitor is a socket chardev, so `query-yank` lists it and `yank` drops its client: its id
   * is `chardev` (as `-chardev socket,id=… -mon chardev=…` names it), by default
   * `compat_monitorN` as QEMU names the chardev of the N-th `-qmp` (counting from 0 the monitors
   * of this machine made by `listen` without `chardev` and by `accept`; vl.c `monitor_parse`).
   */
  async listen(
    target: string,
    options: {
      pretty?: boolean | undefined;
      signal?: AbortSignal | undefined;
      chardev?: string | undefined;
    } = {},
  ): Promise<string> {
    options.signal?.throwIfAborted();
    const id = options.chardev ?? `compat_monitor${this.#monitorCount++}`;
    const monitor = this.addChardevMonitor(id, { pretty: options.pretty });
    const listener = await listen(target, (stream) => monitor.accept(stream));
    if (this.#closed || options.signal?.aborted) {
      await listener.close();
      options.signal?.throwIfAborted();
      throw new StateError(
        `listen on ${target} failed: the simulated QEMU has ended`,
        "exited",
        "alive",
      );
    }
    this.#listeners.push(listener);
    return listener.address;
  }

  /**
   * A new monitor on a socket chardev named `id` whose connections the caller makes (a socket
   * it accepted or inherited, as for `-chardev socket,id=ID,fd=N -mon chardev=ID`): every stream
   * given to `accept` is served there, `maxClients` at a time; `query-yank` lists the chardev and
   * `yank` drops its connected client, as QEMU does for any socket chardev.
   */
  addChardevMonitor(
    id: string,
    options: { pretty?: boolean | undefined } = {},
  ): { accept(stream: Duplex): void } {
    const server = this.addMonitor({ pretty: options.pretty });
    const monitor = server.addMonitor({ maxClients: this.#options.maxClients ?? 1 });
    const chardev = { id, streams: new Set<Duplex>() };
    this.#chardevs.push(chardev);
    return {
      accept: (stream) => {
        chardev.streams.add(stream);
        stream.once("close", () => chardev.streams.delete(stream));
        monitor.accept(stream);
      },
    };
  }

  /** Serves one connected stream (e.g. one end of `createMemoryPair()`) on a new monitor. */
  accept(stream: Duplex): void {
    this.addMonitor().accept(stream);
    this.#monitorCount++;
  }

  /** Plays a guest script (see `guest-script.ts`) from now on. */
  runGuestScript(steps: readonly GuestScriptStep[]): GuestScriptRunner {
    this.#script?.stop();
    const runner = new GuestScriptRunner(steps, {
      clock: this.#clock,
      isRunning: () => !this.core.hasExited && this.core.state === "running",
      onRunningChange: (fn) => this.core.runState.onChange(fn),
      perform: (step) => {
        if (step.kind === "action") this.guestAction(step.name, step.args);
        else this.inject(step.name, step.args);
      },
      report: (step, error) =>
        this.#stderr(
          `guest script line ${step.line} (${step.name}): ${error instanceof Error ? error.message : String(error)}\n`,
        ),
    });
    this.#script = runner;
    return runner;
  }

  /**
   * Tears the machine down without a QEMU exit (like killing the process): no events, sockets
   * closed. `exited` resolves with `undefined` if the machine had not exited. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#script?.stop();
      this.devices.dispose();
      this.#resolveExited(this.core.exitStatus);
    }
    await Promise.all([
      ...this.#servers.map((s) => s.close()),
      ...this.#listeners.map((l) => l.close()),
    ]);
  }

  // ------------------------------------------------------------------ events and triggers

  /** Emits an event on every monitor (timestamped, throttled, to negotiated clients). */
  emit(name: string, data?: JsonObject): void {
    for (const server of this.#servers) server.emit(name, data);
  }

  /**
   * Performs an `x-sim-guest` action with its arguments (checked here: unknown or mistyped
   * arguments throw {@link QmpReplyError} with QEMU's texts).
   */
  guestAction(action: string, args: JsonObject = {}): void {
    if (!(GUEST_ACTIONS as readonly string[]).includes(action)) {
      throw new QmpReplyError(
        "GenericError",
        `Parameter 'action' does not accept value '${action}'`,
      );
    }
    const a = action as GuestAction;
    const spec = GUEST_ACTION_ARGS[a];
    for (const [key, value] of Object.entries(args)) {
      if (key === "action") continue;
      const want = spec[key];
      if (want === undefined)
        throw new QmpReplyError("GenericError", `Parameter '${key}' is unexpected`);
      const got = jsonTypeOf(value);
      if (got !== want) {
        throw new QmpReplyError(
          "GenericError",
          `Invalid parameter type for '${key}', expected: ${want}`,
        );
      }
    }
    for (const key of GUEST_ACTION_REQUIRED[a] ?? []) {
      if (args[key] === undefined)
        throw new QmpReplyError("GenericError", `Parameter '${key}' is missing`);
    }
    const g = this.guest;
    const info = isJsonObject(args.info) ? args.info : undefined;
    if (info !== undefined) {
      // Panic information must be a GuestPanicInformation of this version (hyper-v, s390, …).
      this.#checkEventData(a === "panic" ? "GUEST_PANICKED" : "GUEST_CRASHLOADED", {
        action: "run",
        info,
      });
    }
    switch (a) {
      case "shutdown":
        g.shutdown();
        return;
      case "hibernate":
        g.hibernate();
        return;
      case "reset":
        g.reset();
        return;
      case "suspend":
        g.suspend();
        return;
      case "panic":
        g.panic(info);
        return;
      case "crashloaded":
        g.crashLoaded(info);
        return;
      case "pvshutdown":
        g.pvShutdown();
        return;
      case "watchdog-expire":
        g.watchdogExpire();
        return;
      case "rtc-change":
        g.rtcChange(Number(args.offset ?? 0));
        return;
      case "balloon-change":
        g.balloonChange(Number(args.actual));
        return;
      case "io-error": {
        const o: { operation?: "read" | "write"; nospace?: boolean; reason?: string } = {};
        if (args.operation !== undefined) {
          if (args.operation !== "read" && args.operation !== "write") {
            throw new QmpReplyError(
              "GenericError",
              `Parameter 'operation' does not accept value '${String(args.operation)}'`,
            );
          }
          o.operation = args.operation;
        }
        if (args.nospace !== undefined) o.nospace = args.nospace === true;
        if (typeof args.reason === "string") o.reason = args.reason;
        g.ioError(String(args.device), o);
        return;
      }
      case "tray-move":
        g.trayMoved(String(args.device), args.open === true);
        return;
      case "serial-port":
        g.serialPort(String(args.id), args.open === true);
        return;
      case "rx-filter-change":
        g.rxFilterChange(String(args.nic));
        return;
      case "unplug-ack":
        g.ackUnplug(String(args.id));
        return;
    }
  }

  /** See {@link HostControls.inject}. */
  inject(event: string, data: JsonObject = {}): void {
    this.core.assertAlive(`inject ${event}`);
    if (NOT_INJECTABLE.has(event)) {
      throw new QmpReplyError(
        "GenericError",
        `Event ${event} follows from the run state: use x-sim-guest (or a run-control command) instead`,
      );
    }
    this.#checkEventData(event, data);
    const version = this.profile.id;
    data = inSchemaOrder(event, data, version);
    const dev = this.devices;
    switch (event) {
      case "BLOCK_IO_ERROR":
        dev.applyBlockIoError(data);
        return;
      case "DEVICE_DELETED":
        if (typeof data.device === "string" && dev.qdevs.has(data.device)) {
          dev.removeDevice(data.device, typeof data.path === "string" ? data.path : undefined);
          return;
        }
        break;
      case "DEVICE_TRAY_MOVED": {
        const b = typeof data.device === "string" ? dev.blocks.get(data.device) : undefined;
        if (b !== undefined) b.trayOpen = data["tray-open"] === true;
        break;
      }
      case "BALLOON_CHANGE":
        if (typeof data.actual === "number") dev.balloonActual = data.actual;
        break;
      case "VSERPORT_CHANGE":
        if (typeof data.id === "string") dev.serialPorts.set(data.id, data.open === true);
        break;
      case "MEMORY_FAILURE":
        this.emit(event, data);
        if (data.action === "reset") {
          this.core.requestReset("guest-reset");
          this.core.runMainLoop();
        }
        return;
      case "MIGRATION":
        // On a source with a running migration, `failed` fails it (the event then follows the
        // `events` capability, as the migration's own events do; no error-desc).
        if (data.status === "failed" && dev.migration.running) {
          dev.migration.failNow();
          return;
        }
        // On a destination, `completed` ends the incoming migration: the VM then starts
        // (RESUME) if autostart is set, else it stays paused (process_incoming_migration_bh).
        this.emit(event, data);
        if (this.core.runState.is("inmigrate") && typeof data.status === "string") {
          if (data.status === "completed") this.hostSide.incomingMigrationDone();
          else if (data.status !== "setup") dev.migration.incomingStatus(data.status);
        }
        return;
    }
    this.emit(event, data);
  }

  // ------------------------------------------------------------------ internals

  /**
   * Checks event data against the catalogue as the simulated version has it; throws a
   * {@link QmpReplyError} naming the first problem.
   */
  #checkEventData(event: string, data: JsonObject): void {
    const version = this.profile.id;
    const validator = eventDataValidator(event);
    if (validator === undefined || !versionHasEvent(event, version)) {
      throw new QmpReplyError("GenericError", `Event ${event} does not exist in QEMU ${version}`);
    }
    // The generated validators describe the newest schema: members of a later release are
    // neither required nor allowed in an older one.
    const absent = (member: string) => versionHasMember(event, member, version) === false;
    const issue =
      validator
        .errors(data, { mode: "strict" })
        .find((i) => !(i.kind === "missing" && !i.path.includes(".") && absent(i.path))) ??
      Object.keys(data)
        .filter(absent)
        .map((path) => ({ kind: "unexpected" as const, path }))[0];
    if (issue !== undefined) {
      throw new QmpReplyError(
        "GenericError",
        `Invalid data for ${event}: ${describeArgumentIssue(issue)}`,
      );
    }
  }

  #incomingStarted = false;

  /**
   * `migrate-incoming {uri}`, as 7.2.22 answers: only with `-incoming` on the command line, once
   * (`-incoming URI` has already started it); MIGRATION setup (with the `events` capability)
   * even for a URI it then refuses.
   */
  #migrateIncoming(a: QmpCommandMap["migrate-incoming"]["args"]): void {
    const incoming = this.#options.incoming;
    if (incoming === undefined || incoming === false) {
      throw new QmpReplyError("GenericError", "'-incoming' was not specified on the command line");
    }
    if (incoming !== "defer" || this.#incomingStarted) {
      throw new QmpReplyError("GenericError", "The incoming migration has already been started");
    }
    const uri = migrationTarget("migrate-incoming", a, this.profile.version);
    if (this.devices.migrationEvents) this.emit("MIGRATION", { status: "setup" });
    if (!/^(tcp|unix|exec|fd|rdma|vsock):/.test(uri)) {
      throw new QmpReplyError("GenericError", `unknown migration protocol: ${uri}`);
    }
    this.#incomingStarted = true;
    this.devices.migration.listen(uri);
  }

  #stderr(text: string): void {
    this.#options.onStderr?.(text);
  }

  #internalError(error: unknown): void {
    if (this.#options.onInternalError !== undefined) this.#options.onInternalError(error);
    else
      this.#stderr(
        `qmpkit sim: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
  }

  /** The process ends: after the current reply if a command caused it, else at once. */
  #onExit(status: number): void {
    const ctx = this.#ctx;
    if (ctx !== undefined) ctx.afterReply(() => this.#terminate(status));
    else this.#terminate(status);
  }

  #terminate(status: number): void {
    this.#script?.stop();
    this.devices.dispose();
    this.#closed = true;
    void Promise.all([
      ...this.#servers.map((s) => s.close()),
      ...this.#listeners.map((l) => l.close()),
    ]).then(() => this.#resolveExited(status));
  }

  /**
   * Runs the main loop for a command's requests: before the reply (7.2.22, 9.0+) or after it
   * (7.2.0–7.2.8, 8.x), §1.9.
   */
  #mainLoopFor(ctx: CommandContext): void {
    if (this.profile.eventsBeforeReply) this.core.runMainLoop();
    else ctx.afterReply(() => this.core.runMainLoop());
  }

  /** Wraps a handler: tracks the context, maps simulator errors to QMP replies. */
  #wrap(
    fn: (args: JsonObject, ctx: CommandContext) => unknown,
  ): (args: JsonObject, ctx: CommandContext) => unknown {
    return (args, ctx) => {
      this.#ctx = ctx;
      try {
        return fn(args, ctx);
      } catch (error) {
        if (error instanceof StateError)
          throw new QmpReplyError("GenericError", error.message, { cause: error });
        throw error;
      } finally {
        this.#ctx = undefined;
      }
    };
  }

  /**
   * `query-yank` (util/yank.c): the yank instances in registration order: the socket chardevs
   * of the monitors (QEMU creates the chardevs at start-up), then the migration while one is
   * under way (registered when `migrate` or `migrate-incoming` starts, gone at its end).
   */
  #yankInstances(): JsonObject[] {
    const out: JsonObject[] = this.#chardevs.map((c) => ({ type: "chardev", id: c.id }));
    if (this.devices.migration.yankable) out.push({ type: "migration" });
    return out;
  }

  /**
   * `yank` (util/yank.c `qmp_yank`): every instance must exist, else DeviceNotFound and nothing
   * happens; then each is yanked. A chardev's connected client is dropped (shut down, no reply
   * if it asked itself; observed on 7.2.22), a migration over a socket breaks.
   */
  #yank(instances: readonly { type: string; id?: string; "node-name"?: string }[]): void {
    const found = instances.map((i) => {
      if (i.type === "chardev") return this.#chardevs.find((c) => c.id === i.id);
      if (i.type === "migration") return this.devices.migration.yankable ? "migration" : undefined;
      return undefined; // block nodes: the simulator has no network block devices
    });
    if (found.some((f) => f === undefined)) {
      throw new QmpReplyError("DeviceNotFound", "Instance not found");
    }
    for (const f of found) {
      if (f === "migration") this.devices.migration.yank();
      else if (f !== undefined) {
        // A socket chardev has one client at a time: the oldest open connection is served.
        const [stream] = f.streams;
        stream?.destroy();
      }
    }
  }

  /** The commands this machine answers, for its version (built once, shared by its monitors). */
  #commandTable(): Map<string, SimCommand> {
    if (this.#handlers !== undefined) return this.#handlers;
    const core = this.core;
    const dev = this.devices;
    const version = this.profile.id;
    const table = new Map<string, SimCommand>();
    const add = (
      name: string,
      fn: (args: JsonObject, ctx: CommandContext) => unknown,
      opts: { preconfig?: boolean; validator?: Validator<unknown>; always?: boolean } = {},
    ) => {
      if (!opts.always && !versionHasCommand(name, version)) return;
      table.set(name, {
        fn: this.#wrap(fn),
        options: {
          args:
            opts.validator ??
            commandArgsValidatorFor(name, version, this.#config) ??
            (NO_ARGUMENTS.has(name) ? noArguments : undefined),
          allowPreconfig: opts.preconfig ?? false,
          allowOob: commandAllowsOob(name),
        },
      });
    };
    const str = (v: JsonValue | undefined) => (typeof v === "string" ? v : undefined);

    // Session and introspection (§1, monitor/qmp-cmds-control.c, qmp-cmds.c).
    add("query-version", () => ({ qemu: { ...this.profile.version }, package: this.#package }), {
      preconfig: true,
    });
    add("query-commands", () => queryCommandsOrder(table.keys()).map((name) => ({ name })), {
      preconfig: true,
    });
    if (hasIntrospection())
      add(
        "query-qmp-schema",
        () =>
          this.strict
            ? introspection(version, this.#config)
            : introspectionWithSimCommands(version, this.#config),
        { preconfig: true },
      );
    add("query-name", () => (this.name === undefined ? {} : { name: this.name }), {
      preconfig: true,
    });
    add("query-status", () => core.queryStatus(), { preconfig: true });

    // Run control (§5).
    add("stop", () => core.stop());
    add("cont", () => core.cont());
    add("system_reset", (_a, ctx) => {
      core.systemReset();
      this.#mainLoopFor(ctx);
    });
    add("system_powerdown", (_a, ctx) => {
      core.systemPowerdown();
      this.#mainLoopFor(ctx);
    });
    add("system_wakeup", (_a, ctx) => {
      core.systemWakeup();
      this.#mainLoopFor(ctx);
    });
    add(
      "quit",
      (_a, ctx) => {
        core.quit();
        this.#mainLoopFor(ctx);
      },
      { preconfig: true },
    );
    if (this.profile.actionKnobs) {
      add("set-action", (a) => core.setAction(a as Partial<RunStateActions>), { preconfig: true });
    }
    add("watchdog-set-action", (a) =>
      core.setAction({ watchdog: a.action as RunStateActions["watchdog"] }),
    );

    // Devices and host subsystems.
    add("eject", (a) => dev.eject(a));
    add("device_del", (a) => dev.deviceDel(String(a.id)));
    add("query-rx-filter", (a) => dev.queryRxFilter(str(a.name)));
    add("balloon", (a) => dev.balloon(Number(a.value)));
    add("query-balloon", () => dev.queryBalloon());
    // The arguments of these reach the handlers checked by the catalogue's validators (`add`).
    add("migrate-set-capabilities", (a) =>
      dev.setMigrationCapabilities(args<"migrate-set-capabilities">(a).capabilities),
    );
    add("migrate", (a) => {
      const m = args<"migrate">(a);
      dev.migrate(migrationTarget("migrate", m, this.profile.version), { resume: m.resume });
    });
    add("migrate-continue", (a) => dev.migration.continue(args<"migrate-continue">(a).state));
    add("migrate_cancel", () => dev.migrateCancel());
    add("migrate-incoming", (a) => this.#migrateIncoming(args<"migrate-incoming">(a)));
    add("query-migrate", () => dev.queryMigrate());
    add("query-migrate-capabilities", () => dev.queryMigrationCapabilities());
    add("migrate-set-parameters", (a) => dev.migration.setParameters(a));
    add("query-migrate-parameters", () => dev.migration.queryParameters());
    add("dump-guest-memory", (a) => dev.dumpGuestMemory(a));
    add("query-dump", () => dev.queryDump());
    add("block-stream", (a) => dev.blockStream(args<"block-stream">(a)));
    add("block-job-cancel", (a) => dev.blockJobCancel(String(a.device)));
    add("query-block-jobs", () => dev.queryBlockJobs());
    // Out of band (allow-oob in the catalogue): answered at once, ahead of queued commands.
    add("query-yank", () => this.#yankInstances());
    add("yank", (a) => this.#yank(args<"yank">(a).instances));
    add("migrate-pause", () => {
      // Only a post-copy migration can pause, and the simulator never enters post-copy
      // (7.2 qmp_migrate_pause; from 8.2 postcopy-recover also qualifies, and says so).
      const states = this.profile.has("migrate-pause-names-postcopy-recover")
        ? "postcopy-active or postcopy-recover state"
        : "postcopy-active state";
      throw new QmpReplyError(
        "GenericError",
        `migrate-pause is currently only supported during ${states}`,
      );
    });
    add("migrate-recover", () => {
      // qmp_migrate_recover: only on a destination whose post-copy stream broke.
      throw new QmpReplyError(
        "GenericError",
        "Migrate recover can only be run when postcopy is paused.",
      );
    });

    // The simulator's own commands, QEMU's x- style for experiments (absent under strict).
    if (!this.strict) {
      add("x-sim-guest", (a) => this.guestAction(String(a.action), a), {
        always: true,
        validator: xSimGuestValidator,
      });
      add("x-sim-inject", (a) => this.inject(String(a.event), isJsonObject(a.data) ? a.data : {}), {
        always: true,
        validator: xSimInjectValidator,
      });
    }
    this.#handlers = table;
    return table;
  }
}

/**
 * The `query-commands` order of `names` (plus `qmp_capabilities`, which QEMU's table has too).
 * QEMU appends to its command table as it registers (`qmp_register_command`, QTAILQ_INSERT_TAIL
 * in qapi/qmp-registry.c) and `qmp_query_commands` prepends each entry while walking it
 * (QAPI_LIST_PREPEND in monitor/qmp-cmds-control.c), so the answer is the registration order
 * reversed. Catalogue commands register in schema order ({@link commandRegistrationRanks});
 * the others after them in the simulator's own order, as QEMU registers `device_add` by hand
 * after the generated ones, so they come first.
 */
function queryCommandsOrder(names: Iterable<string>): string[] {
  const ranks = commandRegistrationRanks();
  const all = [...new Set([...names, "qmp_capabilities"])];
  const rank = (name: string, k: number) => ranks.get(name) ?? ranks.size + k;
  return all
    .map((name, k) => ({ name, r: rank(name, k) }))
    .sort((a, b) => b.r - a.r)
    .map((x) => x.name);
}

/**
 * A command's arguments as the catalogue types them. Only for commands registered with the
 * catalogue's validator ({@link commandArgsValidatorFor}): the server has checked them.
 */
function args<K extends keyof QmpCommandMap>(a: JsonObject): QmpCommandMap[K]["args"] {
  return a as unknown as QmpCommandMap[K]["args"];
}

/** `x-sim-guest {action: str, ...}`: `action` is checked here; the rest by {@link SimulatedMachine.guestAction}. */
const xSimGuestValidator: Validator<unknown> = {
  name: "x-sim-guest arguments",
  check: (v): v is unknown => isJsonObject(v) && typeof v.action === "string",
  errors(v) {
    if (!isJsonObject(v))
      return [{ kind: "type", path: "", expected: "object", actual: jsonTypeOf(v) }];
    if (v.action === undefined) return [{ kind: "missing", path: "action" }];
    if (typeof v.action !== "string")
      return [{ kind: "type", path: "action", expected: "string", actual: jsonTypeOf(v.action) }];
    return [];
  },
  parse: (v) => v,
};

/** `x-sim-inject {event: str, data?: object}`. */
const xSimInjectValidator: Validator<unknown> = {
  name: "x-sim-inject arguments",
  check: (v): v is unknown => xSimInjectValidator.errors(v).length === 0,
  errors(v) {
    if (!isJsonObject(v))
      return [{ kind: "type", path: "", expected: "object", actual: jsonTypeOf(v) }];
    if (v.event === undefined) return [{ kind: "missing", path: "event" }];
    if (typeof v.event !== "string")
      return [{ kind: "type", path: "event", expected: "string", actual: jsonTypeOf(v.event) }];
    if (v.data !== undefined && !isJsonObject(v.data)) {
      return [{ kind: "type", path: "data", expected: "object", actual: jsonTypeOf(v.data) }];
    }
    for (const key of Object.keys(v)) {
      if (key !== "event" && key !== "data") return [{ kind: "unexpected", path: key }];
    }
    return [];
  },
  parse: (v) => v,
};
