/**
 * The run-state tracker: knows the peer's current `RunState` by asking `query-status` once and then
 * following the events that change it (§3, §4 of the QEMU semantics reference).
 *
 * Events fall in two groups:
 * - events that determine the new state on their own: RESUME → running, SUSPEND → suspended,
 *   WAKEUP → running (`system_wakeup` sets it synchronously, §5), RESET → prelaunch unless the VM
 *   was running, inmigrate or finish-migrate (§4.2 step 4);
 * - events that do not: STOP means "left running" for one of several reasons. The tracker guesses
 *   from what came just before (SHUTDOWN → shutdown, GUEST_PANICKED{pause} → guest-panicked,
 *   WATCHDOG{pause} → watchdog, BLOCK_IO_ERROR{stop} → io-error, else paused: §4.3) and then
 *   re-queries to be sure. SHUTDOWN and GUEST_PANICKED re-query too (with `shutdown=pause` the VM
 *   may not have been running, so no STOP follows), as do MIGRATION end states (postmigrate comes
 *   without an event) and, from QEMU 9.0, RESUME (`cont` may go back to suspended, §3.4).
 *
 * A `query-status` answer is stale if a state-changing event arrived after the query was sent (the
 * answer may have been computed before the event, §1.9): it is dropped and the query repeated.
 * Concurrent needs share one query in flight.
 *
 * `stepRunState` is the pure transition function; `RunStateTracker` adds the queries and the
 * change notifications. Nothing here touches I/O: the query is injected.
 *
 * @module
 */
import { armDeadline } from "../base/deadline.js";
import { TimeoutError } from "../base/errors.js";
import { type RunState, RunStateValues } from "../generated/index.js";
import type { QmpEvent } from "./types.js";

/** QEMU's `RunState` enum (`qapi/run-state.json`, the same in 7.2 and 10.2; §3), from the schema. */
export const RUN_STATES: readonly RunState[] = RunStateValues;

export type { RunState };

const runStates: ReadonlySet<string> = new Set(RUN_STATES);

/** Whether `value` is one of QEMU's run states. */
export function isRunState(value: unknown): value is RunState {
  return typeof value === "string" && runStates.has(value);
}

/** The tracker's memory between events. */
export interface TrackerState {
  /** The current run state, `undefined` until known. */
  readonly state: RunState | undefined;
  /** What the next STOP most likely means, learnt from the event before it. */
  readonly stopReason: RunState | undefined;
}

/** What one event does to the tracker. */
export interface TrackerStep extends TrackerState {
  /** The event does not determine the state on its own: ask `query-status`. */
  readonly requery: boolean;
  /** The event matters to the run state at all (a pending query's answer is now stale). */
  readonly relevant: boolean;
}

/** Runs where RESET leaves the state alone (§4.2 step 4, `qemu_system_reset` caller). */
const keptByReset: ReadonlySet<RunState | undefined> = new Set<RunState | undefined>([
  "running",
  "inmigrate",
  "finish-migrate",
]);

function actionOf(event: QmpEvent): unknown {
  const data = event.data as { action?: unknown } | undefined;
  return data?.action;
}

/**
 * The pure transition function: the tracker state after `event`.
 * `peerMajor` is the peer's QEMU major version (behaviour of RESUME changed in 9.0).
 */
export function stepRunState(prev: TrackerState, event: QmpEvent, peerMajor: number): TrackerStep {
  const { state, stopReason } = prev;
  switch (event.event) {
    case "STOP":
      return {
        state: stopReason ?? "paused",
        stopReason: undefined,
        requery: true,
        relevant: true,
      };
    case "RESUME":
      // 9.0+: `cont` after `stop` from suspended emits RESUME but goes back to suspended (§3.4).
      return { state: "running", stopReason: undefined, requery: peerMajor >= 9, relevant: true };
    case "SUSPEND":
      return { state: "suspended", stopReason: undefined, requery: false, relevant: true };
    case "WAKEUP":
      return { state: "running", stopReason: undefined, requery: false, relevant: true };
    case "RESET":
      if (state === undefined) return { state, stopReason, requery: true, relevant: true };
      return {
        state: keptByReset.has(state) ? state : "prelaunch",
        stopReason,
        requery: false,
        relevant: true,
      };
    case "SHUTDOWN": {
      // `quit` and host signals force the poweroff action (§4.1): the process is exiting, and a
      // query would only meet a closing socket.
      const reason = (event.data as { reason?: unknown } | undefined)?.reason;
      const exiting = reason === "host-qmp-quit" || reason === "host-signal";
      // Otherwise, with shutdown=pause a STOP follows if the VM was running; with poweroff the
      // process exits (the query then fails with the connection, which is fine); and if the VM
      // was not running nothing follows at all, hence the query.
      return { state, stopReason: "shutdown", requery: !exiting, relevant: true };
    }
    case "GUEST_PANICKED": {
      const action = actionOf(event);
      // "pause": STOP follows; "poweroff": SHUTDOWN follows (and sets its own reason); "run": no
      // change (§4.3).
      const reason = action === "pause" || action === "poweroff" ? "guest-panicked" : stopReason;
      return { state, stopReason: reason, requery: true, relevant: true };
    }
    case "WATCHDOG": {
      // pause → STOP follows into `watchdog`; reset/shutdown/poweroff are followed by their own
      // events; debug, none and inject-nmi change nothing (§4.3).
      const action = actionOf(event);
      if (action === "pause")
        return { state, stopReason: "watchdog", requery: false, relevant: true };
      const known = ["reset", "shutdown", "poweroff", "debug", "none", "inject-nmi"];
      return { state, stopReason, requery: !known.includes(action as string), relevant: true };
    }
    case "BLOCK_IO_ERROR": {
      // action "stop": the VM stops into io-error and STOP follows; report/ignore change nothing.
      const action = actionOf(event);
      if (action === "stop")
        return { state, stopReason: "io-error", requery: false, relevant: true };
      return { state, stopReason, requery: false, relevant: false };
    }
    case "MIGRATION": {
      const status = (event.data as { status?: unknown } | undefined)?.status;
      const ended = status === "completed" || status === "failed" || status === "cancelled";
      return { state, stopReason, requery: ended, relevant: ended };
    }
    default:
      return { state, stopReason, requery: false, relevant: false };
  }
}

/** A change of the tracked run state. */
export interface RunStateChange {
  /** The previous state (`undefined` when it was not known). */
  readonly from: RunState | undefined;
  readonly to: RunState;
  /** What told us: the event, or the `query-status` answer. */
  readonly cause: QmpEvent | "query-status";
}

/** What the tracker cannot handle itself. */
export type TrackerReport =
  | { readonly kind: "run-state-query-failed"; readonly error: unknown }
  | { readonly kind: "run-state-unknown"; readonly status: unknown }
  | { readonly kind: "callback-error"; readonly event: "run-state"; readonly error: unknown };

export interface RunStateTrackerOptions {
  /** Sends `query-status` and resolves with its answer. */
  readonly query: () => Promise<unknown>;
  /** Whether a failed query is expected (the connection is going away): then it is not reported. */
  readonly isClosing: () => boolean;
  readonly report: (report: TrackerReport) => void;
}

/** Options of `waitFor` (every awaitable call takes these). */
export interface WaitOptions {
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Follows the peer's run state; see the module comment. */
export class RunStateTracker {
  readonly #options: RunStateTrackerOptions;
  #state: RunState | undefined;
  #stopReason: RunState | undefined;
  #peerMajor = 0;
  #running: Promise<void> | undefined;
  #again = false;
  /** Counts state-relevant events, to tell a stale `query-status` answer. */
  #seq = 0;
  readonly #listeners = new Set<(change: RunStateChange) => void>();

  constructor(options: RunStateTrackerOptions) {
    this.#options = options;
  }

  /** The current run state, `undefined` until known. */
  get state(): RunState | undefined {
    return this.#state;
  }

  /** A new connection (first or after a reconnect): forget guesses, remember the peer's version. */
  reset(peerMajor: number): void {
    this.#peerMajor = peerMajor;
    this.#stopReason = undefined;
    this.#seq++;
  }

  /** Registers a change listener; returns its remover. Listeners run in the reader loop. */
  onChange(listener: (change: RunStateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Follows one event. Runs in the reader loop: starts a query but never waits for it. */
  onEvent(event: QmpEvent): void {
    const step = stepRunState(
      { state: this.#state, stopReason: this.#stopReason },
      event,
      this.#peerMajor,
    );
    if (!step.relevant) return;
    this.#seq++;
    this.#stopReason = step.stopReason;
    if (step.state !== undefined) this.#set(step.state, event);
    if (step.requery) void this.refresh();
  }

  /**
   * Asks `query-status` now (or after the query in flight) and applies the answer. Resolves when
   * an answer was applied or the query failed; never rejects.
   */
  refresh(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#query().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #query(): Promise<void> {
    for (;;) {
      this.#again = false;
      const seq = this.#seq;
      let answer: unknown;
      try {
        answer = await this.#options.query();
      } catch (error) {
        if (!this.#options.isClosing()) {
          this.#options.report({ kind: "run-state-query-failed", error });
        }
        return;
      }
      // An event that changed the state arrived after the query left: the answer may predate it.
      if (this.#again || seq !== this.#seq) continue;
      const status = (answer as { status?: unknown } | undefined)?.status;
      if (isRunState(status)) this.#set(status, "query-status");
      else this.#options.report({ kind: "run-state-unknown", status });
      return;
    }
  }

  /**
   * Resolves with the state once `want` holds (at once if it already does).
   * @throws TimeoutError after `timeoutMs`; the signal's reason when aborted.
   */
  waitFor(
    want: RunState | ((state: RunState) => boolean),
    options: WaitOptions = {},
  ): Promise<RunState> {
    const test = typeof want === "function" ? want : (s: RunState) => s === want;
    if (this.#state !== undefined && test(this.#state)) return Promise.resolve(this.#state);
    const { timeoutMs, signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const what = typeof want === "function" ? "a matching run state" : `run state ${want}`;
    return new Promise<RunState>((resolve, reject) => {
      const remove = this.onChange((change) => {
        if (test(change.to)) {
          remove();
          disarm();
          resolve(change.to);
        }
      });
      const disarm = armDeadline(
        { timeoutMs, signal },
        (reason) => {
          remove();
          reject(reason);
        },
        () =>
          new TimeoutError(
            `wait for ${what} timed out: still ${this.#state ?? "unknown"} after ${timeoutMs} ms`,
            `wait for ${what}`,
            timeoutMs!,
            false,
          ),
      );
    });
  }

  #set(to: RunState, cause: QmpEvent | "query-status"): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    const change: RunStateChange = { from, to, cause };
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch (error) {
        this.#options.report({ kind: "callback-error", event: "run-state", error });
      }
    }
  }
}
