/**
 * The run-state action knobs (qemu-behaviour §4.1; QEMU `softmmu/runstate-action.c`, `qemu-options.hx`)
 * and the shutdown causes (§6). Pure data and checks.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";

export const REBOOT_ACTIONS = ["reset", "shutdown"] as const;
export const SHUTDOWN_ACTIONS = ["poweroff", "pause"] as const;
export const PANIC_ACTIONS = ["pause", "shutdown", "exit-failure", "none"] as const;
export const WATCHDOG_ACTIONS = [
  "reset",
  "shutdown",
  "poweroff",
  "pause",
  "debug",
  "none",
  "inject-nmi",
] as const;

export type RebootAction = (typeof REBOOT_ACTIONS)[number];
export type ShutdownAction = (typeof SHUTDOWN_ACTIONS)[number];
export type PanicAction = (typeof PANIC_ACTIONS)[number];
export type WatchdogAction = (typeof WATCHDOG_ACTIONS)[number];

/** What the machine does on a guest reboot, a shutdown, a panic and a watchdog expiry. */
export interface RunStateActions {
  reboot: RebootAction;
  shutdown: ShutdownAction;
  panic: PanicAction;
  watchdog: WatchdogAction;
}

/** QEMU's defaults (§4.1). */
export const DEFAULT_ACTIONS: Readonly<RunStateActions> = Object.freeze({
  reboot: "reset",
  shutdown: "poweroff",
  panic: "shutdown",
  watchdog: "reset",
});

/**
 * `ShutdownCause`, in QEMU's order: `guest` is `cause >= guest-shutdown`
 * (`shutdown_caused_by_guest`, §6), so the order matters.
 */
export const SHUTDOWN_CAUSES = [
  "none",
  "host-error",
  "host-qmp-quit",
  "host-qmp-system-reset",
  "host-signal",
  "host-ui",
  "guest-shutdown",
  "guest-reset",
  "guest-panic",
  "subsystem-reset",
  "snapshot-load",
] as const;

export type ShutdownCause = (typeof SHUTDOWN_CAUSES)[number];

/** `shutdown_caused_by_guest()`. */
export function causedByGuest(cause: ShutdownCause): boolean {
  return SHUTDOWN_CAUSES.indexOf(cause) >= SHUTDOWN_CAUSES.indexOf("guest-shutdown");
}

/** A bad `-action` option (QEMU exits at start-up with a message). */
export class ActionOptionError extends QmpError {
  override name = "ActionOptionError";
}

const knobValues: Record<keyof RunStateActions, readonly string[]> = {
  reboot: REBOOT_ACTIONS,
  shutdown: SHUTDOWN_ACTIONS,
  panic: PANIC_ACTIONS,
  watchdog: WATCHDOG_ACTIONS,
};

/**
 * Checks a partial action set (from `-action` or the TypeScript API) and returns it typed.
 * Unknown knobs and values throw {@link ActionOptionError} naming them.
 */
export function checkActions(input: Record<string, unknown>): Partial<RunStateActions> {
  const out: Partial<Record<keyof RunStateActions, string>> = {};
  for (const [knob, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (!(knob in knobValues)) {
      throw new ActionOptionError(
        `invalid action '${knob}': expected one of reboot, shutdown, panic, watchdog`,
      );
    }
    const allowed = knobValues[knob as keyof RunStateActions];
    if (typeof value !== "string" || !allowed.includes(value)) {
      throw new ActionOptionError(
        `invalid value for action ${knob}: '${String(value)}' (expected one of ${allowed.join(", ")})`,
      );
    }
    out[knob as keyof RunStateActions] = value;
  }
  return out as Partial<RunStateActions>;
}
