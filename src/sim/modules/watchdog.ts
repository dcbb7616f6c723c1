/**
 * The watchdog: `watchdog-set-action`, and its expiry (WATCHDOG{action} then the action;
 * `MachineCore.watchdogExpire`, hw/watchdog/watchdog.c). It keeps no state of its own: the
 * action is the machine's (`-action watchdog=…`, `set-action`).
 *
 * @module
 */
import type { RunStateActions } from "../actions.js";
import type { SimModule } from "../sim-module.js";

/** The watchdog subsystem. */
export const watchdog: SimModule<undefined> = {
  name: "watchdog",
  create: () => undefined,
  commands: {
    "watchdog-set-action": (host, a) =>
      host.core.setAction({ watchdog: a.action as RunStateActions["watchdog"] }),
  },
  guestActions: {
    "watchdog-expire": (host) => host.core.watchdogExpire(),
  },
};
