/**
 * The simulator's subsystem modules and the host that wires them into a machine.
 *
 * A subsystem (run control, block devices, balloon, NICs, migration, dump, …) is a
 * {@link SimModule}: a static description, shared by every machine, of
 *
 * - the state it keeps for one machine (`create`, made on first use, so that the thousands of
 *   machines that never touch a subsystem do not carry it),
 * - the QMP commands it answers (`commands`, handlers shared by every machine),
 * - the `x-sim-guest` actions it performs (`guestActions`; their arguments are the simulator
 *   schema's, `sim-schema.ts`),
 * - the follow-up of the events `x-sim-inject` sends in its name (`injected`).
 *
 * {@link SIM_MODULES} (in `modules/index.ts`) lists them; adding a subsystem is one line there.
 * As Hono's `app.route()` mounts a sub-app whose routes it knows nothing of, and as QEMU's
 * devices register their own properties and handlers with the machine (`type_init`,
 * `qmp_register_command`), the machine only wires: it builds its command table from the modules
 * and answers every error in one place.
 *
 * @module
 */
import type { JsonObject } from "../base/json.js";
import type { CommandContext } from "../server/index.js";
import type { SimDevicesOptions } from "./devices.js";
import type { MachineCore } from "./machine-core.js";
import type { QemuProfile } from "./versions.js";

/** The timer interface the simulator needs (structurally the server's `ServerClock`). */
export interface SimClock {
  nowMicros(): number;
  setTimer(fn: () => void, delayMs: number): unknown;
  clearTimer(timer: never): void;
}

/** Where a subsystem sends its effects, and what it may use of its machine. */
export interface DeviceHost {
  readonly core: MachineCore;
  readonly clock: SimClock;
  emit(name: string, data?: JsonObject): void;
  /** QEMU's stderr (e.g. why a migration failed). Default: dropped. */
  stderr?(text: string): void;
}

/**
 * A command of a module, shared by every machine: `host` is the machine's, `ctx` the request's
 * (for the reply order of §1.9). The arguments are checked by the catalogue's validator for the
 * release before the handler runs.
 */
export type SimCommandRun = (host: ModuleHost, args: JsonObject, ctx: CommandContext) => unknown;

/** A command of a module, with its registration options when it has any. */
export type SimCommandSpec =
  | SimCommandRun
  | {
      readonly run: SimCommandRun;
      /** Runs before `qmp_capabilities` (QEMU's `allow-preconfig`). */
      readonly preconfig?: boolean;
      /** Registered only on the releases this says yes to (default: the catalogue's `Since:`). */
      readonly when?: (profile: QemuProfile) => boolean;
    };

/** A subsystem of the simulated machine (see the module comment). */
export interface SimModule<S = unknown> {
  /** A short name, for messages. */
  readonly name: string;
  /** The module's state on one machine, made on first use. */
  create(host: ModuleHost): S;
  /**
   * The module's commands, by name: registered on a machine when its first monitor is added, if
   * the release has them. Handlers reach the state through `host.get(module)`, so that
   * registering makes no state, and are shared by every machine (no closure per machine).
   */
  readonly commands?: Readonly<Record<string, SimCommandSpec>>;
  /** `x-sim-guest` actions: arguments already checked against the simulator schema. */
  readonly guestActions?: Readonly<Record<string, (host: ModuleHost, args: JsonObject) => void>>;
  /**
   * Follow-ups of injected events (data already checked): true when the module sent the event
   * itself, otherwise the machine sends it after the follow-up.
   */
  readonly injected?: Readonly<
    Record<string, (host: ModuleHost, data: JsonObject) => boolean | undefined>
  >;
  /** Stops the state's timers (the process ended or the machine was torn down). */
  dispose?(state: S): void;
}

/** What the machine tells its modules besides the device options. */
export interface ModuleHostOptions {
  /** The devices (none by default, as `-nodefaults`). */
  devices?: SimDevicesOptions | undefined;
  /** `-incoming defer|URI`. */
  incoming?: string | boolean | undefined;
}

/** How long the guest takes to act, in ms of run time, unless the devices say otherwise. */
const DEFAULT_GUEST_DELAY_MS = 10;

/**
 * The modules' side of one machine: its core, clock and event sink, the modules' states (made
 * on first use) and the guest's clock: work the guest does after its reaction time, counted
 * only while its vCPUs run, and QEMU_CLOCK_VIRTUAL.
 */
export class ModuleHost implements DeviceHost {
  readonly profile: QemuProfile;
  readonly devices: SimDevicesOptions;
  readonly incoming: string | boolean | undefined;
  readonly guestDelayMs: number;
  readonly #states = new Map<SimModule<unknown>, unknown>();
  readonly #sink: { emit(name: string, data?: JsonObject): void; stderr?(text: string): void };
  #disposed = false;
  /** The guest has run (its RAM then holds some data). */
  #guestRan: boolean;
  /** Guest work waiting for the vCPUs to run. */
  #waiting: Array<() => void> = [];
  /** QEMU_CLOCK_VIRTUAL: run time before the current run, and when the current run began (µs). */
  #virtualBeforeUs = 0;
  #runningSinceUs: number | undefined;

  constructor(
    readonly core: MachineCore,
    readonly clock: SimClock,
    sink: { emit(name: string, data?: JsonObject): void; stderr?(text: string): void },
    options: ModuleHostOptions = {},
  ) {
    this.profile = core.profile;
    this.devices = options.devices ?? {};
    this.incoming = options.incoming;
    this.guestDelayMs = this.devices.guestDelayMs ?? DEFAULT_GUEST_DELAY_MS;
    this.#sink = sink;
    this.#guestRan = core.state === "running";
    if (core.state === "running") this.#runningSinceUs = clock.nowMicros();
    core.runState.onChange((_from, to) => {
      if (to !== "running") {
        if (this.#runningSinceUs !== undefined) {
          this.#virtualBeforeUs += clock.nowMicros() - this.#runningSinceUs;
          this.#runningSinceUs = undefined;
        }
        return;
      }
      this.#runningSinceUs ??= clock.nowMicros();
      this.#guestRan = true;
      this.#flushGuestWork();
    });
  }

  emit(name: string, data?: JsonObject): void {
    this.#sink.emit(name, data);
  }

  stderr(text: string): void {
    this.#sink.stderr?.(text);
  }

  /** The state of `module` on this machine, made now if it was not yet. */
  get<S>(module: SimModule<S>): S {
    if (this.#states.has(module)) return this.#states.get(module) as S;
    const state = module.create(this);
    this.#states.set(module, state);
    return state;
  }

  /** The state of `module` if it has been made, without making it. */
  peek<S>(module: SimModule<S>): S | undefined {
    return this.#states.get(module) as S | undefined;
  }

  /** Whether the machine has ended or been torn down (timers then do nothing). */
  get gone(): boolean {
    return this.#disposed || this.core.hasExited;
  }

  /** Whether the guest has run (its RAM then holds some data). */
  get guestRan(): boolean {
    return this.#guestRan;
  }

  /** Stops every module's timers and the guest's pending work. */
  dispose(): void {
    this.#disposed = true;
    for (const [module, state] of this.#states) module.dispose?.(state);
    this.#waiting = [];
  }

  /**
   * Runs `fn` after the guest's reaction time (`delayMs`, default {@link guestDelayMs}), counted
   * only while its vCPUs run.
   */
  guestWork(fn: () => void, delayMs: number = this.guestDelayMs): void {
    const attempt = () => {
      if (this.gone) return;
      if (this.core.state === "running") fn();
      else this.#waiting.push(attempt);
    };
    if (this.core.state === "running") {
      this.clock.setTimer(attempt, delayMs);
    } else {
      this.#waiting.push(() => this.clock.setTimer(attempt, delayMs));
    }
  }

  /** The guest's virtual clock in whole ms: it advances only while the vCPUs run (QEMU_CLOCK_VIRTUAL). */
  virtualClockMs(): number {
    const running =
      this.#runningSinceUs === undefined ? 0 : this.clock.nowMicros() - this.#runningSinceUs;
    return Math.floor((this.#virtualBeforeUs + running) / 1000);
  }

  #flushGuestWork(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const fn of waiting) fn();
  }

  /**
   * Runs the main loop for a command's requests: before the reply (7.2.22, 9.0+) or after it
   * (7.2.0–7.2.8, 8.x), §1.9.
   */
  mainLoopFor(ctx: CommandContext): void {
    if (this.profile.eventsBeforeReply) this.core.runMainLoop();
    else ctx.afterReply(() => this.core.runMainLoop());
  }
}
