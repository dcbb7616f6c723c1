/**
 * `EventHub`: fans each event the peer sends out to the client's subscribers: one-shot waiters
 * (`executeAndWait`, run-state waits), callbacks (`on`), streams (`events()`), and a bounded
 * history of recent events.
 *
 * Concurrency: `dispatch`, `gap` and `end` run in the connection's reader loop. They never wait,
 * and a subscriber that throws is reported, never allowed to break the loop.
 *
 * @module
 */
import type { EventStream, GapNotice, RunStateItem, StreamDropReport } from "./event-stream.js";
import type { QmpEvent } from "./types.js";

/** Default number of recent events kept in the client's history. */
export const DEFAULT_HISTORY_SIZE = 100;

/** A one-shot wait for the first event that matches. */
export interface EventWaiter {
  readonly name: string;
  readonly match: ((event: QmpEvent) => boolean) | undefined;
  resolve(event: QmpEvent): void;
  reject(reason: unknown): void;
}

/** Something a subscriber did that the hub could not deliver to it. */
export type HubReport =
  | { readonly kind: "callback-error"; readonly event: string; readonly error: unknown }
  | ({ readonly kind: "events-dropped" } & StreamDropReport);

export interface EventHubOptions {
  /** Recent events kept (0 keeps none). */
  readonly historySize: number;
  /** Receives what could not be delivered. Must not throw. */
  readonly report: (report: HubReport) => void;
}

export class EventHub {
  readonly #streams = new Set<EventStream<unknown>>();
  readonly #callbacks = new Map<string, Set<(event: QmpEvent) => void>>();
  readonly #anyCallbacks = new Set<(event: QmpEvent) => void>();
  readonly #waiters = new Set<EventWaiter>();
  readonly #historySize: number;
  readonly #report: (report: HubReport) => void;
  /** Ring buffer of recent events; `#historyNext` is where the next one goes. */
  #history: QmpEvent[] = [];
  #historyNext = 0;
  #ended = false;

  constructor(options: EventHubOptions) {
    if (!Number.isInteger(options.historySize) || options.historySize < 0) {
      throw new RangeError(`invalid historySize: ${options.historySize} (need an integer >= 0)`);
    }
    this.#historySize = options.historySize;
    this.#report = options.report;
  }

  /** Recent events, oldest first. */
  get history(): QmpEvent[] {
    if (this.#history.length < this.#historySize) return this.#history.slice();
    return this.#history.slice(this.#historyNext).concat(this.#history.slice(0, this.#historyNext));
  }

  /** Empties the history and returns what it held, oldest first (A3 `EventListener.clear`). */
  clearHistory(): QmpEvent[] {
    const old = this.history;
    this.#history = [];
    this.#historyNext = 0;
    return old;
  }

  /** Number of live streams (for tests and diagnostics). */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Number of live one-shot waiters (for tests and diagnostics). */
  get waiterCount(): number {
    return this.#waiters.size;
  }

  get ended(): boolean {
    return this.#ended;
  }

  addStream(stream: EventStream<unknown>): void {
    this.#streams.add(stream);
  }

  removeStream(stream: EventStream<unknown>): void {
    this.#streams.delete(stream);
  }

  /** Registers a callback for one event name, or every event with `"*"`. Returns its remover. */
  on(name: string, callback: (event: QmpEvent) => void): () => void {
    if (name === "*") {
      this.#anyCallbacks.add(callback);
      return () => this.#anyCallbacks.delete(callback);
    }
    let set = this.#callbacks.get(name);
    if (set === undefined) {
      set = new Set();
      this.#callbacks.set(name, set);
    }
    set.add(callback);
    return () => {
      set.delete(callback);
      if (set.size === 0 && this.#callbacks.get(name) === set) this.#callbacks.delete(name);
    };
  }

  /** Adds a one-shot waiter; the caller removes it (`removeWaiter`) when done either way. */
  addWaiter(waiter: EventWaiter): void {
    this.#waiters.add(waiter);
  }

  removeWaiter(waiter: EventWaiter): void {
    this.#waiters.delete(waiter);
  }

  /**
   * Delivers one event to everyone interested. Runs in the reader loop.
   */
  dispatch(event: QmpEvent): void {
    if (this.#historySize > 0) {
      if (this.#history.length < this.#historySize) this.#history.push(event);
      else this.#history[this.#historyNext] = event;
      this.#historyNext = (this.#historyNext + 1) % this.#historySize;
    }
    if (this.#waiters.size > 0) {
      for (const waiter of this.#waiters) {
        if (waiter.name !== event.event) continue;
        let hit: boolean;
        try {
          hit = waiter.match === undefined || waiter.match(event);
        } catch (error) {
          this.#waiters.delete(waiter);
          waiter.reject(error);
          continue;
        }
        if (hit) {
          this.#waiters.delete(waiter);
          waiter.resolve(event);
        }
      }
    }
    const named = this.#callbacks.get(event.event);
    if (named !== undefined) this.#call(named, event);
    if (this.#anyCallbacks.size > 0) this.#call(this.#anyCallbacks, event);
    for (const stream of this.#streams) stream.offer(event);
  }

  /**
   * Rejects every one-shot waiter: the connection dropped, and the event each waits for may be
   * among those lost (QEMU does not replay events). Streams live on.
   */
  failWaiters(error: Error): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  /**
   * Hands a run-state change to every stream: `cause` is the event that caused it, dispatched
   * just before (`undefined`: a `query-status` answer). Runs in the reader loop.
   */
  runState(item: RunStateItem, cause: QmpEvent | undefined): void {
    for (const stream of this.#streams) stream.offerRunState(item, cause);
  }

  /** Tells every stream about a reconnection gap. Runs in the reader loop. */
  gap(notice: GapNotice): void {
    for (const stream of this.#streams) stream.gap(notice);
  }

  /**
   * The client closed for good: streams end (or fail with `reason`, by their option; a client
   * closed by its owner has no reason), and one-shot waiters reject with `waiterError`.
   */
  end(reason: Error | undefined, waiterError: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const stream of [...this.#streams]) stream.finish(reason);
    this.#streams.clear();
    for (const waiter of [...this.#waiters]) waiter.reject(waiterError);
    this.#waiters.clear();
  }

  #call(callbacks: Set<(event: QmpEvent) => void>, event: QmpEvent): void {
    for (const callback of callbacks) {
      try {
        callback(event);
      } catch (error) {
        this.#report({ kind: "callback-error", event: event.event, error });
      }
    }
  }
}
