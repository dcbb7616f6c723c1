/**
 * The heart of the simulated QEMU: run state, actions, the main loop's request flags, vm_stop /
 * vm_start, the run-control commands and the guest triggers. No I/O: events, the process end and
 * stderr go through an injected {@link MachineHost}, so every sequence is testable on its own.
 *
 * How QEMU is mirrored (qemu-behaviour §3–§5; QEMU `softmmu/runstate.c`, `softmmu/cpus.c`,
 * `monitor/qmp-cmds.c`, `hw/watchdog/watchdog.c`, `hw/misc/pvpanic.c` @ v7.2):
 *
 * - Things that QEMU only *requests* (shutdown, reset, suspend, wakeup, powerdown, debug, a stop
 *   from a vCPU thread) set flags here; {@link MachineCore.runMainLoop} then handles them in
 *   `main_loop_should_exit`'s fixed order (§4.2). Guest triggers run the loop at once (the guest
 *   returns and the main loop wakes). Commands leave the loop to the caller, which runs it before
 *   or after writing the reply depending on the version (§1.9).
 * - Guest triggers come from a vCPU thread, so a `vm_stop` they cause is deferred to the end of the
 *   pass (§4.3 notes): that is why a default panic exits before any STOP.
 * - A guest trigger needs running vCPUs; otherwise it is refused with a {@link StateError}.
 *
 * @module
 */
import { StateError } from "../base/errors.js";
import type { JsonObject } from "../base/json.js";
import {
  ActionOptionError,
  causedByGuest,
  checkActions,
  DEFAULT_ACTIONS,
  type RunStateActions,
  type ShutdownCause,
} from "./actions.js";
import { QmpReplyError } from "../server/reply-error.js";
import { isLive, type RunState, RunStateMachine } from "./run-state.js";
import type { QemuProfile } from "./versions.js";

/** Where the machine's effects go. */
export interface MachineHost {
  /** Emit a QMP event (`data` undefined for events without data). */
  emit(name: string, data?: JsonObject): void;
  /** The QEMU process ends with `status`, after its last events. Called once. */
  exit(status: number): void;
  /** Text QEMU writes to its stderr (e.g. `watchdog: timer fired`). */
  stderr(text: string): void;
}

/** Who signalled the QEMU process (for the message QEMU prints on stderr). */
export interface HostSignal {
  /** The signal number: 15 (SIGTERM, default), 2 (SIGINT) or 1 (SIGHUP). */
  signal?: number | undefined;
  /** The sender's pid, when known. */
  pid?: number | undefined;
  /** The sender's name (QEMU reads `/proc/PID/cmdline`). */
  sender?: string | undefined;
}

/** How a machine starts. */
export interface MachineCoreOptions {
  /** `-S`: stay in `prelaunch` until `cont`. Default false. */
  startPaused?: boolean | undefined;
  /** `-incoming`: start in `inmigrate`. Default false. */
  incoming?: boolean | undefined;
  /** Initial actions (after `-no-reboot`/`-no-shutdown`/`-action`). */
  actions?: Partial<RunStateActions> | undefined;
  /** `-machine`: `none` has no ACPI, so no suspend/wakeup support. Default `none`. */
  machine?: "none" | "pc" | undefined;
}

/** Pending requests of the main loop (QEMU's `*_requested` globals). */
interface Requests {
  debug: boolean;
  suspend: boolean;
  shutdown: ShutdownCause | undefined;
  reset: ShutdownCause | undefined;
  wakeup: boolean;
  powerdown: boolean;
  vmstop: RunState | undefined;
}

const DUMP_BUSY = "There is a dump in process, please wait.";

/** The simulated machine's state and behaviour, without I/O. */
export class MachineCore {
  readonly runState: RunStateMachine;
  readonly actions: RunStateActions;
  readonly machine: "none" | "pc";
  /** `autostart`: whether an incoming migration starts the VM (`cont`/`stop` in `inmigrate`). */
  autostart: boolean;
  /** Set by a host command (dump-guest-memory with detach) while it runs. */
  dumpInProgress = false;
  /** Hooks the device layer adds: run by `cont` before starting (blk_iostatus_reset). */
  readonly beforeCont: Array<() => void> = [];
  /** Hooks run by every `qemu_system_reset`. */
  readonly onReset: Array<(cause: ShutdownCause) => void> = [];
  /** Hooks run after WAKEUP. */
  readonly onWakeup: Array<() => void> = [];

  #exitStatus: number | undefined;
  #vmWasSuspended = false;
  #inLoop = false;
  readonly #requests: Requests = {
    debug: false,
    suspend: false,
    shutdown: undefined,
    reset: undefined,
    wakeup: false,
    powerdown: false,
    vmstop: undefined,
  };

  constructor(
    readonly profile: QemuProfile,
    readonly host: MachineHost,
    options: MachineCoreOptions = {},
  ) {
    this.machine = options.machine ?? "none";
    const requested = checkActions(options.actions ?? {});
    if (requested.panic === "exit-failure" && !profile.panicExitFailure) {
      throw new ActionOptionError(
        `panic action 'exit-failure' needs QEMU 7.1 or later (simulating ${profile.id})`,
      );
    }
    if (requested.panic !== undefined && !profile.actionKnobs) {
      // Before 6.0 a panic always pauses, then powers off unless -no-shutdown.
      throw new ActionOptionError(
        `a panic action needs QEMU 6.0 or later (simulating ${profile.id})`,
      );
    }
    this.actions = { ...DEFAULT_ACTIONS, ...requested };
    this.runState = new RunStateMachine(profile.version, "prelaunch");
    this.autostart = !options.startPaused;
    if (options.incoming) {
      this.runState.set("inmigrate");
    } else if (this.autostart) {
      // vl.c starts the VM before the main loop runs: its RESUME reaches no negotiated monitor.
      this.vmStart();
    }
  }

  /** The current run state. */
  get state(): RunState {
    return this.runState.state;
  }

  /** The exit status once the process has ended, else undefined. */
  get exitStatus(): number | undefined {
    return this.#exitStatus;
  }

  get hasExited(): boolean {
    return this.#exitStatus !== undefined;
  }

  /** Whether any main-loop request is pending. */
  get hasPendingRequests(): boolean {
    const r = this.#requests;
    return (
      r.debug ||
      r.suspend ||
      r.shutdown !== undefined ||
      r.reset !== undefined ||
      r.wakeup ||
      r.powerdown ||
      r.vmstop !== undefined
    );
  }

  // ---------------------------------------------------------------- primitives (cpus.c, runstate.c)

  /** Throws when the process has ended: nothing happens in a dead QEMU. */
  assertAlive(what: string): void {
    if (this.#exitStatus !== undefined) {
      throw new StateError(
        `${what} failed: the simulated QEMU has exited with status ${this.#exitStatus}`,
        "exited",
        "alive",
      );
    }
  }

  /** `do_vm_stop(state, sendStop)` from the main thread (§3.4). */
  vmStop(state: RunState, sendStop = true): void {
    const current = this.runState.state;
    if (!isLive(current, this.profile.version)) return; // only drains the block layer
    if (this.profile.suspendedIsLive) this.#vmWasSuspended = current === "suspended";
    this.runState.set(state);
    if (sendStop) this.host.emit("STOP");
  }

  /** `vm_stop(state)` called from a vCPU thread: only requested, done at the end of the pass. */
  requestVmStop(state: RunState): void {
    this.#requests.vmstop = state;
  }

  /** `vm_start()` through `vm_prepare_start` (§3.4). */
  vmStart(): void {
    const pending = this.#requests.vmstop;
    this.#requests.vmstop = undefined; // qemu_vmstop_requested consumes it
    if (this.runState.is("running")) {
      if (pending === undefined) return;
      // A stop was pending: keep the documented STOP-then-RESUME pair (e.g. after BLOCK_IO_ERROR).
      this.host.emit("STOP");
      this.host.emit("RESUME");
      return;
    }
    this.host.emit("RESUME");
    this.runState.set(this.#vmWasSuspended ? "suspended" : "running");
    this.#vmWasSuspended = false;
  }

  /** `qemu_system_reset(cause)`: device reset hooks, then RESET unless the cause is silent. */
  systemResetNow(cause: ShutdownCause): void {
    if (this.profile.suspendedIsLive) this.#vmWasSuspended = false;
    for (const hook of this.onReset) hook(cause);
    if (cause === "none" || cause === "subsystem-reset" || cause === "snapshot-load") return;
    this.host.emit("RESET", this.#shutdownData(cause));
  }

  /** `qemu_system_shutdown_request(cause)`. */
  requestShutdown(cause: ShutdownCause): void {
    this.#requests.shutdown = cause;
  }

  /** `qemu_system_reset_request(cause)`: becomes a shutdown when reboot=shutdown (§4.2). */
  requestReset(cause: ShutdownCause): void {
    if (this.actions.reboot === "shutdown" && cause !== "subsystem-reset") {
      this.#requests.shutdown = cause;
    } else {
      this.#requests.reset = cause;
    }
  }

  /** `qemu_system_suspend_request()`: ignored when already suspended. */
  requestSuspend(): void {
    if (this.runState.is("suspended")) return;
    this.#requests.suspend = true;
  }

  /** `qemu_system_powerdown_request()`. */
  requestPowerdown(): void {
    this.#requests.powerdown = true;
  }

  /** `qemu_system_debug_request()` (a gdbstub breakpoint). */
  requestDebug(): void {
    this.#requests.debug = true;
  }

  /**
   * One pass of `main_loop_should_exit` (§4.2). Returns the exit status when the process must
   * end, else undefined.
   */
  mainLoopPass(): number | undefined {
    const r = this.#requests;
    if (r.debug) {
      r.debug = false;
      this.vmStop("debug");
    }
    if (r.suspend) {
      r.suspend = false;
      // qemu_system_suspend: vCPUs paused, no STOP.
      this.runState.set("suspended");
      this.host.emit("SUSPEND");
    }
    if (r.shutdown !== undefined) {
      const cause = r.shutdown;
      r.shutdown = undefined;
      this.host.emit("SHUTDOWN", this.#shutdownData(cause));
      if (this.actions.shutdown === "pause") {
        this.vmStop("shutdown");
      } else {
        return cause === "guest-panic" && this.actions.panic === "exit-failure" ? 1 : 0;
      }
    }
    if (r.reset !== undefined) {
      const cause = r.reset;
      r.reset = undefined;
      this.systemResetNow(cause);
      const s = this.runState.state;
      if (s !== "running" && s !== "inmigrate" && s !== "finish-migrate") {
        this.runState.set("prelaunch");
      }
    }
    if (r.wakeup) {
      r.wakeup = false;
      this.host.emit("WAKEUP");
      for (const hook of this.onWakeup) hook();
    }
    if (r.powerdown) {
      r.powerdown = false;
      this.host.emit("POWERDOWN");
    }
    if (r.vmstop !== undefined) {
      const state = r.vmstop;
      r.vmstop = undefined;
      this.vmStop(state);
    }
    return undefined;
  }

  /** Runs main-loop passes until no request is left or the process ends. Not re-entrant. */
  runMainLoop(): void {
    if (this.#inLoop || this.#exitStatus !== undefined) return;
    this.#inLoop = true;
    try {
      while (this.hasPendingRequests && this.#exitStatus === undefined) {
        const status = this.mainLoopPass();
        if (status !== undefined) {
          // qemu_cleanup → vm_shutdown(): stops a running VM without a STOP event.
          this.vmStop("shutdown", false);
          this.#exit(status);
        }
      }
    } finally {
      this.#inLoop = false;
    }
  }

  /** The process ends now (main-loop exit, watchdog `poweroff`'s `exit(0)`). */
  #exit(status: number): void {
    if (this.#exitStatus !== undefined) return;
    this.#exitStatus = status;
    this.host.exit(status);
  }

  #shutdownData(cause: ShutdownCause): JsonObject | undefined {
    switch (this.profile.shutdownData) {
      case "none":
        return undefined;
      case "guest":
        return { guest: causedByGuest(cause) };
      case "guest-reason":
        return { guest: causedByGuest(cause), reason: cause };
    }
  }

  // ---------------------------------------------------------------- QMP run-control commands (§5)

  /** `query-status`. */
  queryStatus(): JsonObject {
    // Members in schema order (running, singlestep, status): QEMU's output visitor inserts
    // them so, and that decides the printed order of keys sharing a hash bucket (§1.1).
    const status = this.runState.state;
    const running = status === "running";
    return this.profile.statusSingleStep
      ? { running, singlestep: false, status }
      : { running, status };
  }

  /** `stop`: STOP is emitted before the reply returns. */
  stop(): void {
    if (this.dumpInProgress) throw new QmpReplyError("GenericError", DUMP_BUSY);
    if (this.runState.is("inmigrate")) {
      this.autostart = false;
    } else {
      this.vmStop("paused");
    }
  }

  /** `cont`. */
  cont(): void {
    if (this.dumpInProgress) throw new QmpReplyError("GenericError", DUMP_BUSY);
    const s = this.runState.state;
    if (s === "internal-error" || s === "shutdown") {
      throw new QmpReplyError("GenericError", "Resetting the Virtual Machine is required");
    }
    if (s === "suspended") return;
    if (s === "finish-migrate") {
      throw new QmpReplyError("GenericError", "Migration is not finalized yet");
    }
    for (const hook of this.beforeCont) hook();
    if (s === "inmigrate") {
      this.autostart = true;
    } else {
      this.vmStart();
    }
  }

  /** `system_reset`: a request; the caller runs the loop (§1.9). */
  systemReset(): void {
    this.requestReset("host-qmp-system-reset");
  }

  /** `system_powerdown`: a request, in any state. */
  systemPowerdown(): void {
    this.requestPowerdown();
  }

  /** `system_wakeup`: the state becomes running at once; WAKEUP comes from the loop. */
  systemWakeup(): void {
    if (this.machine === "none") {
      throw new QmpReplyError(
        "GenericError",
        "wake-up from suspend is not supported by this guest",
      );
    }
    if (!this.runState.is("suspended")) {
      throw new QmpReplyError("GenericError", "Unable to wake up: guest is not in suspended state");
    }
    this.runState.set("running");
    this.#requests.wakeup = true;
  }

  /** `quit`: forces shutdown=poweroff, then a shutdown request (host-qmp-quit). */
  quit(): void {
    this.actions.shutdown = "poweroff";
    this.requestShutdown("host-qmp-quit");
  }

  /** `set-action`: reboot, panic, watchdog, then shutdown (§4.1). Arguments already validated. */
  setAction(args: Partial<RunStateActions>): void {
    const checked = checkActions(args);
    if (checked.reboot !== undefined) this.actions.reboot = checked.reboot;
    if (checked.panic !== undefined) this.actions.panic = checked.panic;
    if (checked.watchdog !== undefined) this.actions.watchdog = checked.watchdog;
    if (checked.shutdown !== undefined) this.actions.shutdown = checked.shutdown;
  }

  /** A host signal (SIGTERM, SIGINT, SIGHUP): exits even with `-no-shutdown` (§4.3). */
  hostSignal(from: HostSignal = {}): void {
    this.assertAlive("host signal");
    this.actions.shutdown = "poweroff";
    this.requestShutdown("host-signal");
    // qemu_kill_report (runstate.c), just before SHUTDOWN: without a sender pid (a terminal's
    // ^C) QEMU leaves out the "from pid" part.
    const signal = from.signal ?? 15;
    this.host.stderr(
      from.pid === undefined
        ? `qemu-system-x86_64: terminating on signal ${signal}\n`
        : `qemu-system-x86_64: terminating on signal ${signal} from pid ${from.pid} (${from.sender ?? "<unknown process>"})\n`,
    );
    this.runMainLoop();
  }

  // ---------------------------------------------------------------- guest triggers (§4.3)

  /** Throws unless the guest's vCPUs are running (a paused guest cannot do anything). */
  assertGuestRunning(what: string): void {
    this.assertAlive(`guest ${what}`);
    const s = this.runState.state;
    if (s !== "running") {
      throw new StateError(
        `guest ${what} failed: the guest's vCPUs are not running (run state '${s}')`,
        s,
        "running",
      );
    }
  }

  /** ACPI S5 power-off. */
  guestShutdown(): void {
    this.assertGuestRunning("shutdown");
    this.requestShutdown("guest-shutdown");
    this.runMainLoop();
  }

  /** ACPI S4 (hw/acpi/core.c): SUSPEND_DISK, then as S5. */
  guestHibernate(): void {
    this.assertGuestRunning("hibernate");
    this.host.emit("SUSPEND_DISK");
    this.requestShutdown("guest-shutdown");
    this.runMainLoop();
  }

  /** Keyboard-controller / 0xCF9 / triple-fault reset. */
  guestReset(): void {
    this.assertGuestRunning("reset");
    this.requestReset("guest-reset");
    this.runMainLoop();
  }

  /** ACPI S3: SUSPEND, state `suspended`. Needs ACPI, so not on `-machine none`. */
  guestSuspend(): void {
    this.assertGuestRunning("suspend");
    if (this.machine === "none") {
      throw new StateError(
        "guest suspend failed: machine 'none' has no ACPI (use -machine pc)",
        this.machine,
        "pc",
      );
    }
    this.requestSuspend();
    this.runMainLoop();
  }

  /** `qemu_system_guest_panicked` from a vCPU thread (pvpanic bit 0). */
  guestPanic(info?: JsonObject): void {
    this.assertGuestRunning("panic");
    const event = (action: string): JsonObject =>
      info === undefined ? { action } : { action, info };
    if (!this.profile.actionKnobs) {
      // Before 6.0: always pause first, then power off unless -no-shutdown (two events).
      this.host.emit("GUEST_PANICKED", event("pause"));
      this.requestVmStop("guest-panicked");
      if (this.actions.shutdown === "poweroff") {
        this.host.emit("GUEST_PANICKED", event("poweroff"));
        this.requestShutdown("guest-panic");
      }
    } else {
      const { panic, shutdown } = this.actions;
      if (panic === "pause" || (panic === "shutdown" && shutdown === "pause")) {
        this.host.emit("GUEST_PANICKED", event("pause"));
        this.requestVmStop("guest-panicked");
      } else if (panic === "shutdown" || panic === "exit-failure") {
        this.host.emit("GUEST_PANICKED", event("poweroff"));
        this.requestVmStop("guest-panicked");
        this.requestShutdown("guest-panic");
      } else {
        this.host.emit("GUEST_PANICKED", event("run"));
      }
    }
    this.runMainLoop();
  }

  /** pvpanic bit 1: the guest loaded a crash kernel. GUEST_CRASHLOADED{run}, nothing else (5.0+). */
  guestCrashLoaded(info?: JsonObject): void {
    this.assertGuestRunning("crashloaded");
    this.#requireFeature(this.profile.crashLoaded, "GUEST_CRASHLOADED", "5.0");
    this.host.emit(
      "GUEST_CRASHLOADED",
      info === undefined ? { action: "run" } : { action: "run", info },
    );
  }

  /** pvpanic bit 2 (9.1+): GUEST_PVSHUTDOWN, then as S5. */
  guestPvShutdown(): void {
    this.assertGuestRunning("pvshutdown");
    this.#requireFeature(this.profile.pvShutdown, "GUEST_PVSHUTDOWN", "9.1");
    this.host.emit("GUEST_PVSHUTDOWN");
    this.requestShutdown("guest-shutdown");
    this.runMainLoop();
  }

  /** `watchdog_perform_action` (hw/watchdog/watchdog.c): WATCHDOG{action}, then the action. */
  watchdogExpire(): void {
    this.assertGuestRunning("watchdog expiry");
    const action = this.actions.watchdog;
    this.host.emit("WATCHDOG", { action });
    switch (action) {
      case "reset":
        this.requestReset("guest-reset");
        break;
      case "shutdown":
        this.requestPowerdown(); // the ACPI button only: POWERDOWN, not SHUTDOWN (§4.3)
        break;
      case "poweroff":
        this.#exit(0); // exit(0) on the spot: no SHUTDOWN
        return;
      case "pause":
        this.requestVmStop("watchdog");
        break;
      case "debug":
        this.host.stderr("watchdog: timer fired\n");
        break;
      case "none":
      case "inject-nmi":
        break;
    }
    this.runMainLoop();
  }

  #requireFeature(present: boolean, what: string, since: string): void {
    if (!present) {
      throw new StateError(
        `${what} needs QEMU ${since} or later (simulating ${this.profile.id})`,
        this.profile.id,
        since,
      );
    }
  }
}
