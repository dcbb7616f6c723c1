/**
 * `SimulatedMachine`: a QEMU process as seen over QMP, built from the machine core, the
 * subsystem modules ({@link SIM_MODULES}, wired through a {@link ModuleHost}) and one
 * {@link QmpServer} per monitor, all on one {@link EventBus} (an event is built, stamped and
 * throttled once, and every monitor gets the same bytes, as in one QEMU process).
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
import { isJsonObject, type JsonObject } from "../base/json.js";
import type { Validator } from "../schema/validator.js";
import {
  type CommandContext,
  type CommandOptions,
  describeArgumentIssue,
  EventBus,
  noArguments,
  QmpReplyError,
  QmpServer,
  type ServerClock,
  systemClock,
  throttleTableFor,
} from "../server/index.js";
import type { RunStateActions } from "./actions.js";
import type { SimDevicesOptions } from "./devices.js";
import { type GuestScriptStep, GuestScriptRunner } from "./guest-script.js";
import { type HostSignal, MachineCore } from "./machine-core.js";
import {
  balloon,
  block,
  chardevs,
  migration,
  nics,
  qdev,
  rtc,
  SIM_MODULES,
  serialPorts,
} from "./modules/index.js";
import { incomingMigrationDone } from "./modules/migration.js";
import { type AdvertisedCommands, checkAdvertise, recordedCommands } from "./recorded-profile.js";
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
import { ModuleHost, type SimCommandRun } from "./sim-module.js";
import { simCommandValidators } from "./sim-schema.js";
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
   * command's reply; qemu-behaviour §4.3 notes). Default: 2 for `pc`, 0 for `none` (no firmware).
   * Only with reboot=reset.
   */
  firmwareResets?: number | undefined;
  /** Unexpected handler errors (simulator bugs). Default: written through `onStderr`. */
  onInternalError?: ((error: unknown) => void) | undefined;
  /**
   * What `query-qmp-schema` and `query-commands` advertise: `implemented` (default), what the
   * simulator answers; `recorded`, the real binary's answers from the release's capability
   * profile (7.2.22, 10.0.2; see `recorded-profile.ts`), as a capability probe sees them.
   */
  advertise?: AdvertisedCommands | undefined;
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

/** How the arguments of the simulator's own commands are checked (as the server checks them). */
const STRICT = { mode: "strict" } as const;

/** Each `x-sim-guest` action's module and handler, from every module's `guestActions`. */
const GUEST_ACTION_HANDLERS: ReadonlyMap<string, (host: ModuleHost, args: JsonObject) => void> =
  new Map(SIM_MODULES.flatMap((m) => Object.entries(m.guestActions ?? {})));

/** Each injectable event's follow-up, from every module's `injected`. */
const INJECTED_HANDLERS: ReadonlyMap<
  string,
  (host: ModuleHost, data: JsonObject) => boolean | undefined
> = new Map(SIM_MODULES.flatMap((m) => Object.entries(m.injected ?? {})));

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
 * with (one object shared by every machine of the release and build, `commandOptions`).
 */
interface SimCommand {
  readonly fn: (args: JsonObject, ctx: CommandContext) => unknown;
  readonly options: CommandOptions;
}

/** A simulated QEMU. */
export class SimulatedMachine {
  readonly profile: QemuProfile;
  readonly core: MachineCore;
  /** The subsystem modules' host: their states (`modules.get(block)`, …) and the guest's clock. */
  readonly modules: ModuleHost;
  readonly name: string | undefined;
  readonly strict: boolean;
  /** Resolves with the exit status when the simulated QEMU exits; `undefined` if closed first. */
  readonly exited: Promise<number | undefined>;
  readonly guest: GuestControls;
  readonly hostSide: HostControls;

  readonly #clock: ServerClock;
  readonly #servers: QmpServer[] = [];
  /** The machine's events, shared by every monitor's server. */
  readonly #events: EventBus;
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
  #handlers: Map<string, SimCommand> | undefined;

  constructor(options: SimulatedMachineOptions = {}) {
    this.#options = options;
    this.profile = qemuProfile(options.qemuVersion);
    this.#package = options.package ?? this.profile.package;
    this.#config = options.config === undefined ? this.profile.config : new Set(options.config);
    this.#clock = options.clock ?? systemClock;
    this.#events = new EventBus({
      throttle: throttleTableFor(this.profile.version),
      clock: this.#clock,
    });
    this.name = options.name;
    this.strict = options.strict ?? false;
    checkAdvertise(this.profile.id, options.advertise);
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
    this.modules = new ModuleHost(
      this.core,
      this.#clock,
      { emit: (name, data) => this.emit(name, data), stderr: (text) => this.#stderr(text) },
      { devices: options.devices, incoming: options.incoming },
    );
    const core = this.core;
    const host = this.modules;
    // A bad bandwidth is refused when the machine is made, not at its first migration command.
    if (options.devices?.migrationBandwidth !== undefined) host.get(migration);
    // `-incoming URI` listens from the start (`-incoming defer` waits for migrate-incoming).
    if (typeof options.incoming === "string" && options.incoming !== "defer") {
      host.get(migration).listen(options.incoming);
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
      rtcChange: (offset) => host.get(rtc).guestRtcChange(offset),
      balloonChange: (actual) => host.get(balloon).guestBalloonChange(actual),
      ioError: (device, o) => host.get(block).guestIoError(device, o),
      trayMoved: (device, open) => host.get(block).guestOpenTray(device, open),
      serialPort: (id, open) => host.get(serialPorts).guestSerialPort(id, open),
      rxFilterChange: (nic) => host.get(nics).guestRxFilterChange(nic),
      ackUnplug: (id) => {
        core.assertGuestRunning("unplug acknowledgement");
        host.get(qdev).guestAckUnplug(id);
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
      incomingMigrationDone: () => incomingMigrationDone(host),
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
      events: this.#events,
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
    const chardev = this.modules.get(chardevs).add(id);
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
      this.modules.dispose();
      this.#resolveExited(this.core.exitStatus);
    }
    this.#events.close();
    await Promise.all([
      ...this.#servers.map((s) => s.close()),
      ...this.#listeners.map((l) => l.close()),
    ]);
  }

  // ------------------------------------------------------------------ events and triggers

  /**
   * Raises an event once: built, stamped and throttled once, the same event written to every
   * monitor's negotiated clients (`monitor_qapi_event_emit`).
   */
  emit(name: string, data?: JsonObject): void {
    this.#events.emit(name, data);
  }

  /**
   * Performs an `x-sim-guest` action with its arguments (checked here: unknown or mistyped
   * arguments throw {@link QmpReplyError} with QEMU's texts).
   */
  guestAction(action: string, args: JsonObject = {}): void {
    const issue = simCommandValidators().guest.errors({ ...args, action }, STRICT)[0];
    if (issue !== undefined) throw new QmpReplyError("GenericError", describeArgumentIssue(issue));
    const info = isJsonObject(args.info) ? args.info : undefined;
    if (args.info !== undefined && info === undefined) {
      throw new QmpReplyError(
        "GenericError",
        "Invalid parameter type for 'info', expected: object",
      );
    }
    if (info !== undefined) {
      // Panic information must be a GuestPanicInformation of this version (hyper-v, s390, …).
      this.#checkEventData(action === "panic" ? "GUEST_PANICKED" : "GUEST_CRASHLOADED", {
        action: "run",
        info,
      });
    }
    GUEST_ACTION_HANDLERS.get(action)?.(this.modules, args);
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
    const followUp = INJECTED_HANDLERS.get(event);
    if (followUp?.(this.modules, data) === true) return;
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
    this.modules.dispose();
    this.#closed = true;
    this.#events.close();
    void Promise.all([
      ...this.#servers.map((s) => s.close()),
      ...this.#listeners.map((l) => l.close()),
    ]).then(() => this.#resolveExited(status));
  }

  /**
   * A command as the machine's monitors call it: the one closure per command and machine, which
   * tracks the request's context and answers every error in one place (a StateError, a guest
   * trigger without running vCPUs, becomes a GenericError; modules throw QmpReplyError).
   */
  #wrap(run: SimCommandRun): (args: JsonObject, ctx: CommandContext) => unknown {
    return (args, ctx) => {
      this.#ctx = ctx;
      try {
        return run(this.modules, args, ctx);
      } catch (error) {
        if (error instanceof StateError)
          throw new QmpReplyError("GenericError", error.message, { cause: error });
        throw error;
      } finally {
        this.#ctx = undefined;
      }
    };
  }

  /** The commands this machine answers, for its version (built once, shared by its monitors). */
  #commandTable(): Map<string, SimCommand> {
    if (this.#handlers !== undefined) return this.#handlers;
    const version = this.profile.id;
    const config = this.#config;
    const table = new Map<string, SimCommand>();
    const add = (
      name: string,
      run: SimCommandRun,
      opts: { preconfig?: boolean; validator?: Validator<unknown>; always?: boolean } = {},
    ) => {
      if (!opts.always && !versionHasCommand(name, version)) return;
      table.set(name, {
        fn: this.#wrap(run),
        options: commandOptions(name, version, config, opts),
      });
    };

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
            ? introspection(version, config)
            : introspectionWithSimCommands(version, config),
        { preconfig: true },
      );
    add("query-name", () => (this.name === undefined ? {} : { name: this.name }), {
      preconfig: true,
    });
    // Every subsystem's commands.
    for (const module of SIM_MODULES) {
      for (const [name, spec] of Object.entries(module.commands ?? {})) {
        if (typeof spec === "function") add(name, spec);
        else if (spec.when?.(this.profile) ?? true)
          add(name, spec.run, spec.preconfig ? { preconfig: true } : {});
      }
    }

    // The simulator's own commands, QEMU's x- style for experiments (absent under strict).
    if (!this.strict) {
      const { guest, inject } = simCommandValidators();
      add("x-sim-guest", (_h, a) => this.guestAction(String(a.action), a), {
        always: true,
        validator: guest,
      });
      add(
        "x-sim-inject",
        (_h, a) => {
          if (a.data !== undefined && !isJsonObject(a.data)) {
            throw new QmpReplyError(
              "GenericError",
              "Invalid parameter type for 'data', expected: object",
            );
          }
          this.inject(String(a.event), isJsonObject(a.data) ? a.data : {});
        },
        { always: true, validator: inject },
      );
    }
    // Facts of the binary (query-machines, device-list-properties, …): the recorded profile's.
    for (const [name, c] of recordedCommands(version, table, this.#options.advertise))
      table.set(name, c);
    this.#handlers = table;
    return table;
  }
}

/**
 * The server options of each command, by build, release and name: the same object for every
 * machine of that release and build (a command's options follow from its name there).
 */
const optionsByBuild = new WeakMap<ReadonlySet<string>, Map<string, CommandOptions>>();

function commandOptions(
  name: string,
  version: string,
  config: ReadonlySet<string>,
  opts: { preconfig?: boolean; validator?: Validator<unknown> },
): CommandOptions {
  let byName = optionsByBuild.get(config);
  if (byName === undefined) {
    byName = new Map();
    optionsByBuild.set(config, byName);
  }
  const key = `${version}\n${name}`;
  let options = byName.get(key);
  if (options === undefined) {
    options = {
      args:
        opts.validator ??
        commandArgsValidatorFor(name, version, config) ??
        (NO_ARGUMENTS.has(name) ? noArguments : undefined),
      allowPreconfig: opts.preconfig ?? false,
      allowOob: commandAllowsOob(name),
    };
    byName.set(key, options);
  }
  return options;
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
