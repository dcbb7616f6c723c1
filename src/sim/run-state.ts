/**
 * QEMU's run-state machine, per QEMU version: the states, the table of allowed transitions and
 * `runstate_set` semantics (qemu-behaviour §3; QEMU `softmmu/runstate.c` @ v7.2, `system/runstate.c`
 * @ v10.2).
 *
 * Pure: no `node:*` import. The simulator drives its state through {@link RunStateMachine}; an
 * invalid transition is an internal error (QEMU prints "invalid runstate transition" and aborts
 * the whole process), never silently accepted.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";
import { RunStateValues } from "../generated/types.js";
import { changedIn, type QemuVersionNumber } from "./versions.js";

/** Every QEMU run state, in the catalogue's order (the `RunState` enum of `qapi/run-state.json`). */
export const RUN_STATES = RunStateValues;

/** One QEMU run state, as `query-status` spells it. */
export type RunState = (typeof RUN_STATES)[number];

/** True when `value` names a run state. */
export function isRunState(value: unknown): value is RunState {
  return typeof value === "string" && (RUN_STATES as readonly string[]).includes(value);
}

type Table = Readonly<Partial<Record<RunState, readonly RunState[]>>>;

/**
 * The v7.2.0 table (qemu-behaviour §3.2). QEMU's source lists `prelaunch → inmigrate` twice; the
 * distinct pairs number 71. Older versions are modelled with this table as well: the pre-4.0
 * profile only needs the rows that QMP commands and guest triggers reach, and those did not change.
 */
const BASE_TABLE: Table = {
  debug: ["running", "finish-migrate", "prelaunch", "suspended"],
  inmigrate: [
    "internal-error",
    "io-error",
    "paused",
    "running",
    "shutdown",
    "suspended",
    "watchdog",
    "guest-panicked",
    "finish-migrate",
    "prelaunch",
    "postmigrate",
    "colo",
  ],
  "internal-error": ["paused", "finish-migrate", "prelaunch"],
  "io-error": ["running", "finish-migrate", "prelaunch"],
  paused: ["running", "finish-migrate", "postmigrate", "prelaunch", "colo"],
  postmigrate: ["running", "finish-migrate", "prelaunch"],
  prelaunch: ["inmigrate", "running", "finish-migrate"],
  "finish-migrate": ["running", "paused", "postmigrate", "prelaunch", "colo"],
  "restore-vm": ["running", "prelaunch"],
  colo: ["running", "prelaunch", "shutdown"],
  running: [
    "debug",
    "internal-error",
    "io-error",
    "paused",
    "finish-migrate",
    "restore-vm",
    "save-vm",
    "shutdown",
    "watchdog",
    "guest-panicked",
    "colo",
    "suspended",
  ],
  "save-vm": ["running"],
  shutdown: ["paused", "finish-migrate", "prelaunch", "colo"],
  suspended: ["running", "finish-migrate", "prelaunch", "colo"],
  watchdog: ["running", "finish-migrate", "prelaunch", "colo"],
  "guest-panicked": ["running", "finish-migrate", "prelaunch"],
};

/** 8.1 (commit a4c6275aa1): migration can now end in the state the VM was stopped in. */
const ADDED_8_1: Table = {
  "finish-migrate": [
    "internal-error",
    "io-error",
    "shutdown",
    "suspended",
    "watchdog",
    "guest-panicked",
  ],
};

/** 9.0 (the suspended-runstate series b9ae473d80, 58b105703e, 49a5020697). */
const ADDED_9_0: Table = {
  paused: ["suspended"],
  prelaunch: ["suspended"],
  "restore-vm": ["suspended"],
  "save-vm": ["suspended"],
  suspended: ["paused", "save-vm", "restore-vm", "shutdown"],
};

/** A transition as `[from, to]`. */
export type RunStateTransition = readonly [from: RunState, to: RunState];

const cache = new Map<string, ReadonlySet<string>>();

function key(from: RunState, to: RunState): string {
  return `${from}>${to}`;
}

function tableFor(version: QemuVersionNumber): ReadonlySet<string> {
  const tag = changedIn(version, "suspended-is-live")
    ? "9.0"
    : changedIn(version, "runstate-finish-migrate-pairs")
      ? "8.1"
      : "7.2";
  let set = cache.get(tag);
  if (set === undefined) {
    const tables = [BASE_TABLE];
    if (tag !== "7.2") tables.push(ADDED_8_1);
    if (tag === "9.0") tables.push(ADDED_9_0);
    const pairs = new Set<string>();
    for (const table of tables) {
      for (const from of RUN_STATES) {
        for (const to of table[from] ?? []) pairs.add(key(from, to));
      }
    }
    set = pairs;
    cache.set(tag, set);
  }
  return set;
}

/** Every allowed transition of `version`, in table order (71 in 7.2, 77 in 8.1, 85 from 9.0). */
export function runStateTransitions(version: QemuVersionNumber): RunStateTransition[] {
  const set = tableFor(version);
  const out: RunStateTransition[] = [];
  for (const from of RUN_STATES) {
    for (const to of RUN_STATES) if (set.has(key(from, to))) out.push([from, to]);
  }
  return out;
}

/** Whether QEMU `version` allows `from → to` (`runstate_set` would not abort). Same state: true. */
export function isTransitionAllowed(
  from: RunState,
  to: RunState,
  version: QemuVersionNumber,
): boolean {
  return from === to || tableFor(version).has(key(from, to));
}

/** `runstate_is_running()`. */
export function isRunning(state: RunState): boolean {
  return state === "running";
}

/** `runstate_needs_reset()`: `cont` is refused until a `system_reset`. */
export function needsReset(state: RunState): boolean {
  return state === "internal-error" || state === "shutdown";
}

/**
 * `runstate_is_live()` (9.0+): running or suspended. Before 9.0 the function did not exist and
 * `vm_stop` acted on `running` only, so for older versions only `running` counts (§3.4).
 */
export function isLive(state: RunState, version: QemuVersionNumber): boolean {
  if (state === "running") return true;
  return state === "suspended" && changedIn(version, "suspended-is-live");
}

/**
 * A transition QEMU would refuse. In QEMU this aborts the process; in the simulator it is an
 * internal error: a bug in the simulator, never a reply to a client.
 */
export class RunStateTransitionError extends QmpError {
  override name = "RunStateTransitionError";
  constructor(
    readonly from: RunState,
    readonly to: RunState,
    readonly version: string,
    options?: ErrorOptions,
  ) {
    super(`invalid runstate transition: '${from}' -> '${to}' (QEMU ${version})`, options);
  }
}

/** A listener told of each real state change (never of a same-state set). */
export type RunStateListener = (from: RunState, to: RunState) => void;

/** The current run state with `runstate_set` semantics. */
export class RunStateMachine {
  #state: RunState;
  readonly #listeners: RunStateListener[] = [];

  constructor(
    readonly version: QemuVersionNumber,
    initial: RunState = "prelaunch",
  ) {
    this.#state = initial;
  }

  get state(): RunState {
    return this.#state;
  }

  /** `runstate_check(s)`. */
  is(state: RunState): boolean {
    return this.#state === state;
  }

  /**
   * `runstate_set(next)`: the same state returns at once with no check at all; a pair outside the
   * table throws {@link RunStateTransitionError}. Returns whether the state changed.
   */
  set(next: RunState): boolean {
    const from = this.#state;
    if (next === from) return false;
    if (!tableFor(this.version).has(key(from, next))) {
      const v = this.version;
      throw new RunStateTransitionError(from, next, `${v.major}.${v.minor}.${v.micro}`);
    }
    this.#state = next;
    for (const listener of this.#listeners) listener(from, next);
    return true;
  }

  /** Calls `listener` after each change; returns a function that removes it. */
  onChange(listener: RunStateListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }
}
