/**
 * `EventStream`: one subscriber's view of the peer's events, as an async iterator with its own
 * bounded FIFO (style anchor A3 `events.py` EventListener; A2 `queued_iterator.ts`).
 *
 * Every stream gets its own copy of each matching event. The queue is bounded and what happens
 * when it is full is the caller's explicit choice (`overflow`), and is always reported: a running
 * `dropped` count, an `overflow` notice in the stream when `notices` is on, a report to the client's
 * `onNotice` hook, or, under `"error"`, the stream failing with `EventOverflowError`.
 *
 * Unlike QEMU's Python library, a stream never goes silent: it ends (or fails, with
 * `onClose: "error"`) when the client closes for good, and `break` out of `for await` unsubscribes.
 *
 * Concurrency: `offer`, `gap` and `finish` run in the connection's reader loop and never wait;
 * `next()` is the consumer's side.
 *
 * @module
 */
import { StateError } from "../base/errors.js";
import type { RunState } from "../generated/index.js";
import { EventOverflowError } from "./errors.js";
import type { QmpEvent, QmpGreeting, QmpTimestamp } from "./types.js";

/** What a full queue does with one more event. */
export type OverflowPolicy =
  /** Drop the oldest queued event to make room (the default: recent events matter most). */
  | "drop-oldest"
  /** Drop the arriving event, keeping the queue as it is. */
  | "drop-newest"
  /** End the stream with an `EventOverflowError` once the queued events have been read. */
  | "error";

/** Default bound of an event stream's queue. */
export const DEFAULT_MAX_QUEUE = 1024;
/** Default overflow policy of an event stream. */
export const DEFAULT_OVERFLOW: OverflowPolicy = "drop-oldest";

/**
 * The client lost the connection and connected again: events the peer emitted in between are
 * gone, because QEMU does not replay events (§1.3: events are dropped, never buffered).
 */
export interface GapNotice {
  readonly notice: "gap";
  /** When the old connection ended. */
  readonly since: Date;
  /** When the new connection finished negotiation. */
  readonly until: Date;
  /** Why the old connection ended. */
  readonly reason: Error | undefined;
  /** The new connection's greeting (the peer may be a different QEMU now). */
  readonly greeting: QmpGreeting;
}

/** Events were dropped from this stream's full queue at this point of the stream. */
export interface OverflowNotice {
  readonly notice: "overflow";
  /** How many events were dropped here. */
  readonly dropped: number;
}

/** What a stream opened with `notices: true` yields besides events. */
export type EventStreamNotice = GapNotice | OverflowNotice;

/**
 * A change of the tracked run state, as an item of a stream opened with `runState: true`. One an
 * event caused comes right after that event (and only if the event passed the stream's `names`
 * and `filter`); one found by `query-status` (after a STOP, a reconnection, …) comes where its
 * answer arrived.
 */
export interface RunStateItem {
  readonly kind: "run-state";
  /** The previous state (`undefined` when it was not known). */
  readonly from: RunState | undefined;
  readonly to: RunState;
  /** The name of the event that caused it, or `"query-status"`. */
  readonly cause: string;
  /** The causing event's timestamp (QEMU's clock), or when the query's answer arrived (ours). */
  readonly timestamp: QmpTimestamp;
}

/** Options for one event stream (`QmpClient.events()`). */
export interface EventStreamOptions<N extends string = string> {
  /** Only events with these names. Default: every event. */
  readonly names?: readonly N[] | undefined;
  /**
   * Only events for which this returns true. Runs in the reader loop: keep it quick and never
   * await in it. If it throws, the stream fails with that error.
   */
  readonly filter?: ((event: QmpEvent<N>) => boolean) | undefined;
  /** Queue bound (events, not notices). Default {@link DEFAULT_MAX_QUEUE}. */
  readonly maxQueue?: number | undefined;
  /** What a full queue does. Default {@link DEFAULT_OVERFLOW}. */
  readonly overflow?: OverflowPolicy | undefined;
  /** Also yield `gap` and `overflow` notices in the stream, in position. Default false. */
  readonly notices?: boolean | undefined;
  /**
   * Also yield run-state changes ({@link RunStateItem}), in order with the events that caused
   * them. Needs run-state tracking (the client's default). Default false.
   */
  readonly runState?: boolean | undefined;
  /**
   * When the client closes for good: `"end"` finishes the iteration after the queued events,
   * `"error"` then throws the reason (a `ConnectionClosedError`). Default `"end"`.
   */
  readonly onClose?: "end" | "error" | undefined;
  /** Ends the stream: a waiting `next()` rejects with the signal's reason, untouched. */
  readonly signal?: AbortSignal | undefined;
}

/** A report from a stream to its owner (the client's `onNotice` hook). */
export interface StreamDropReport {
  readonly dropped: number;
  readonly maxQueue: number;
  readonly policy: OverflowPolicy;
}

/** Private box, so a notice can never be confused with an event a peer sent. */
class NoticeEntry {
  constructor(public notice: EventStreamNotice | RunStateItem) {}
}

type Entry = QmpEvent | NoticeEntry;

interface Waiter<T> {
  resolve(result: IteratorResult<T, undefined>): void;
  reject(reason: unknown): void;
}

/**
 * An async iterator over events (and, with `notices: true`, notices). Use it with `for await`;
 * `break`, `close()` or `await using` unsubscribe. One consumer at a time.
 */
export class EventStream<T = QmpEvent> implements AsyncIterableIterator<T>, AsyncDisposable {
  /** Events dropped from this stream's queue so far (every policy counts here). */
  dropped = 0;
  /** Reconnections this stream lived through, each a span of events it could not see. */
  gaps = 0;

  readonly #names: ReadonlySet<string> | undefined;
  readonly #filter: ((event: QmpEvent) => boolean) | undefined;
  readonly #maxQueue: number;
  readonly #policy: OverflowPolicy;
  readonly #notices: boolean;
  readonly #runState: boolean;
  /** The last event that passed `names` and `filter`: its run-state changes follow it. */
  #lastPassed: QmpEvent | undefined;
  readonly #failOnClose: boolean;
  readonly #detach: (stream: EventStream<T>) => void;
  readonly #report: (report: StreamDropReport) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: (() => void) | undefined;

  #queue: Entry[] = [];
  #head = 0;
  #queuedEvents = 0;
  #waiters: Waiter<T>[] = [];
  /** Set once nothing more will be offered; the queue may still hold entries. */
  #finished = false;
  #error: unknown;
  #hasError = false;
  /** True while an overflow episode is under way (reported once per episode). */
  #overflowing = false;
  #iterating = false;

  /** @internal Created by the client (`QmpClient.events()`). */
  constructor(
    options: EventStreamOptions<string>,
    detach: (stream: EventStream<T>) => void,
    report: (report: StreamDropReport) => void,
  ) {
    this.#names = options.names === undefined ? undefined : new Set(options.names);
    this.#filter = options.filter as ((event: QmpEvent) => boolean) | undefined;
    const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    if (!Number.isInteger(maxQueue) || maxQueue < 1) {
      throw new RangeError(`invalid event stream maxQueue: ${maxQueue} (need an integer >= 1)`);
    }
    this.#maxQueue = maxQueue;
    this.#policy = options.overflow ?? DEFAULT_OVERFLOW;
    this.#notices = options.notices ?? false;
    this.#runState = options.runState ?? false;
    this.#failOnClose = options.onClose === "error";
    this.#detach = detach;
    this.#report = report;
    this.#signal = options.signal;
    if (this.#signal !== undefined) {
      const signal = this.#signal;
      this.#onAbort = () => this.#fail(signal.reason);
      if (signal.aborted) queueMicrotask(this.#onAbort);
      else signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** Events currently queued, waiting for the consumer. */
  get queued(): number {
    return this.#queuedEvents;
  }

  /**
   * Everything queued for the consumer: events, and the notices and run-state items among them.
   * A consumer that stops after some event can read what is queued behind it (a run-state item
   * that event caused is queued before the event is handed over).
   */
  get backlog(): number {
    return this.#queue.length - this.#head;
  }

  /** True once the stream has ended (closed, failed, or the client closed). */
  get done(): boolean {
    return this.#finished && this.#head === this.#queue.length;
  }

  /**
   * Offers one event. Runs in the reader loop: never waits.
   * @internal
   */
  offer(event: QmpEvent): void {
    if (this.#finished) return;
    if (this.#names !== undefined && !this.#names.has(event.event)) return;
    if (this.#filter !== undefined) {
      let keep: boolean;
      try {
        keep = this.#filter(event);
      } catch (error) {
        this.#fail(error);
        return;
      }
      if (!keep) return;
    }
    if (this.#runState) this.#lastPassed = event;
    // Fast path: a consumer is already waiting and nothing is queued ahead of it.
    if (this.#head === this.#queue.length && this.#waiters.length > 0) {
      this.#waiters.shift()!.resolve({ value: event as T, done: false });
      return;
    }
    if (this.#queuedEvents >= this.#maxQueue) {
      this.#overflow(event);
      return;
    }
    this.#queue.push(event);
    this.#queuedEvents++;
  }

  /**
   * Tells the stream the client reconnected: events in between are lost. Runs in the reader loop.
   * @internal
   */
  gap(notice: GapNotice): void {
    if (this.#finished) return;
    this.gaps++;
    if (this.#notices) this.#enqueueNotice(notice);
  }

  /**
   * Offers a run-state change: `cause` is the event that caused it (offered just before), or
   * `undefined` for a `query-status` answer. Like notices, run-state items do not count against
   * `maxQueue` and are never dropped. Runs in the reader loop.
   * @internal
   */
  offerRunState(item: RunStateItem, cause: QmpEvent | undefined): void {
    if (this.#finished || !this.#runState) return;
    if (cause !== undefined && cause !== this.#lastPassed) return;
    this.#enqueueNotice(item);
  }

  /**
   * Nothing more will arrive: the client closed for good. Queued events are still delivered.
   * @internal
   */
  finish(reason: Error | undefined): void {
    if (this.#finished) return;
    if (this.#failOnClose && reason !== undefined) {
      this.#error = reason;
      this.#hasError = true;
    }
    this.#end();
  }

  /** Unsubscribes now: queued events are discarded and a waiting `next()` gets `done`. */
  close(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queuedEvents = 0;
    this.#hasError = false;
    this.#end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    // A2 queued_iterator: a second concurrent consumer would steal half the events.
    if (this.#iterating) {
      throw new StateError(
        "cannot iterate event stream: it already has a consumer",
        "iterating",
        "idle",
      );
    }
    this.#iterating = true;
    return this;
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#head < this.#queue.length) {
      return Promise.resolve({ value: this.#take(), done: false });
    }
    if (this.#finished) {
      if (this.#hasError) {
        this.#hasError = false;
        return Promise.reject(this.#error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Called by `break` / `return` in `for await`: unsubscribes (A2: the `finally` stops it). */
  async return(): Promise<IteratorResult<T, undefined>> {
    this.close();
    this.#iterating = false;
    return { value: undefined, done: true };
  }

  #take(): T {
    const entry = this.#queue[this.#head]!;
    this.#queue[this.#head] = undefined as unknown as Entry;
    this.#head++;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
      this.#overflowing = false;
    } else if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (entry instanceof NoticeEntry) return entry.notice as T;
    this.#queuedEvents--;
    return entry as T;
  }

  #overflow(event: QmpEvent): void {
    this.dropped++;
    if (!this.#overflowing) {
      this.#overflowing = true;
      this.#report({ dropped: this.dropped, maxQueue: this.#maxQueue, policy: this.#policy });
    }
    switch (this.#policy) {
      case "drop-newest":
        if (this.#notices) this.#noteDropAtTail();
        return;
      case "drop-oldest":
        this.#dropOldest();
        this.#queue.push(event);
        this.#queuedEvents++;
        return;
      case "error":
        this.#error = new EventOverflowError(this.#maxQueue, event.event);
        this.#hasError = true;
        this.#end();
        return;
    }
  }

  /** Removes the oldest queued event; with notices, leaves an overflow notice in its place. */
  #dropOldest(): void {
    // Notices ahead of the oldest event stay where they are (they happened before it).
    const ahead: NoticeEntry[] = [];
    while (this.#queue[this.#head] instanceof NoticeEntry) {
      ahead.push(this.#queue[this.#head] as NoticeEntry);
      this.#head++;
    }
    this.#queue[this.#head] = undefined as unknown as Entry; // the oldest event goes
    this.#head++;
    this.#queuedEvents--;
    if (this.#notices) {
      const last = ahead[ahead.length - 1];
      if (last !== undefined && isOverflow(last.notice)) {
        last.notice = { notice: "overflow", dropped: last.notice.dropped + 1 };
      } else {
        ahead.push(new NoticeEntry({ notice: "overflow", dropped: 1 }));
      }
    }
    for (let i = ahead.length - 1; i >= 0; i--) this.#queue[--this.#head] = ahead[i]!;
  }

  /** Under drop-newest the dropped events are after everything queued: count them at the tail. */
  #noteDropAtTail(): void {
    const last = this.#queue[this.#queue.length - 1];
    if (this.#queue.length > this.#head && last instanceof NoticeEntry && isOverflow(last.notice)) {
      last.notice = { notice: "overflow", dropped: last.notice.dropped + 1 };
    } else {
      this.#queue.push(new NoticeEntry({ notice: "overflow", dropped: 1 }));
    }
  }

  #enqueueNotice(notice: EventStreamNotice | RunStateItem): void {
    if (this.#head === this.#queue.length && this.#waiters.length > 0) {
      this.#waiters.shift()!.resolve({ value: notice as T, done: false });
      return;
    }
    this.#queue.push(new NoticeEntry(notice));
  }

  #fail(error: unknown): void {
    if (this.#finished) return;
    this.#queue = [];
    this.#head = 0;
    this.#queuedEvents = 0;
    this.#error = error;
    this.#hasError = true;
    this.#end();
  }

  #end(): void {
    if (!this.#finished) {
      this.#finished = true;
      if (this.#signal !== undefined && this.#onAbort !== undefined) {
        this.#signal.removeEventListener("abort", this.#onAbort);
      }
      this.#detach(this);
    }
    if (this.#head < this.#queue.length) return; // the consumer drains first
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      if (this.#hasError) {
        this.#hasError = false;
        waiter.reject(this.#error);
      } else {
        waiter.resolve({ value: undefined, done: true });
      }
    }
  }
}

function isOverflow(entry: EventStreamNotice | RunStateItem): entry is OverflowNotice {
  return "notice" in entry && entry.notice === "overflow";
}
