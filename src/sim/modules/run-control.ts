/**
 * Run control (§5): `query-status`, `stop`, `cont`, `system_reset`, `system_powerdown`,
 * `system_wakeup`, `quit`, `set-action`; the guest's power events (shutdown, hibernate, reset,
 * suspend, pvpanic); MEMORY_FAILURE's reset; the guest's answer to the ACPI power button
 * (`acpiShutdownMs`). The state is the machine core's run state, and whether the guest is
 * already on its way down after a button press.
 *
 * @module
 */
import type { JsonObject } from "../../base/json.js";
import type { RunStateActions } from "../actions.js";
import type { ModuleHost, SimModule } from "../sim-module.js";

const info = (a: JsonObject) =>
  typeof a.info === "object" && a.info !== null && !Array.isArray(a.info) ? a.info : undefined;

/** What run control keeps beside the core: a power-button press the guest is acting on. */
interface RunControlState {
  acpiShutdownPending: boolean;
}

/**
 * The power button: POWERDOWN, then, when the guest honours ACPI, its shutdown after
 * `acpiShutdownMs` of run time (once, however often the button is pressed meanwhile; a reset
 * forgets it, as a rebooted OS would).
 */
function powerButton(host: ModuleHost, state: RunControlState): void {
  const delay = host.devices.acpiShutdownMs;
  if (delay === undefined || state.acpiShutdownPending) return;
  state.acpiShutdownPending = true;
  host.guestWork(() => {
    if (!state.acpiShutdownPending) return;
    state.acpiShutdownPending = false;
    host.core.guestShutdown();
  }, delay);
}

/** The run-control subsystem. */
export const runControl: SimModule<RunControlState> = {
  name: "run-control",
  create: (host) => {
    const state: RunControlState = { acpiShutdownPending: false };
    host.core.onReset.push(() => {
      state.acpiShutdownPending = false;
    });
    return state;
  },
  commands: {
    "query-status": { run: (host) => host.core.queryStatus(), preconfig: true },
    stop: (host) => host.core.stop(),
    cont: (host) => host.core.cont(),
    system_reset: (host, _a, ctx) => {
      host.core.systemReset();
      host.mainLoopFor(ctx);
    },
    system_powerdown: (host, _a, ctx) => {
      host.core.systemPowerdown();
      host.mainLoopFor(ctx);
      powerButton(host, host.get(runControl));
    },
    system_wakeup: (host, _a, ctx) => {
      host.core.systemWakeup();
      host.mainLoopFor(ctx);
    },
    quit: {
      run: (host, _a, ctx) => {
        host.core.quit();
        host.mainLoopFor(ctx);
      },
      preconfig: true,
    },
    "set-action": {
      run: (host, a) => host.core.setAction(a as Partial<RunStateActions>),
      preconfig: true,
      when: (profile) => profile.actionKnobs,
    },
  },
  guestActions: {
    shutdown: (host) => host.core.guestShutdown(),
    hibernate: (host) => host.core.guestHibernate(),
    reset: (host) => host.core.guestReset(),
    suspend: (host) => host.core.guestSuspend(),
    panic: (host, a) => host.core.guestPanic(info(a)),
    crashloaded: (host, a) => host.core.guestCrashLoaded(info(a)),
    pvshutdown: (host) => host.core.guestPvShutdown(),
  },
  injected: {
    MEMORY_FAILURE: (host, data) => {
      host.emit("MEMORY_FAILURE", data);
      if (data.action === "reset") {
        host.core.requestReset("guest-reset");
        host.core.runMainLoop();
      }
      return true;
    },
  },
};
