/**
 * Time for the server: the wall clock that stamps events and the timers that drive event
 * throttling, behind one small interface so tests (and the simulator) can run them by hand.
 *
 * QEMU stamps an event with `g_get_real_time()` (wall clock, microseconds) when the event is
 * built (`qapi/qmp-event.c`), and runs its throttle timers on `QEMU_CLOCK_REALTIME` (§1.6, §2.2).
 * {@link systemClock} is the real thing; {@link ManualClock} moves only when told to and fires
 * its timers in due order, so every throttling rule can be tested exactly.
 *
 * Pure: no `node:*` imports (timers and `performance` are globals).
 *
 * @module
 */

/** An opaque handle for a timer created by a {@link ServerClock}. */
export interface ClockTimer {
  readonly __clockTimer?: never;
}

/** The clock a {@link QmpServer} uses. */
export interface ServerClock {
  /** Wall-clock time in whole microseconds since the Unix epoch (QEMU's `g_get_real_time()`). */
  nowMicros(): number;
  /** Runs `fn` once after `delayMs` milliseconds. */
  setTimer(fn: () => void, delayMs: number): ClockTimer;
  /** Cancels a timer; a timer that already fired or was cleared is ignored. */
  clearTimer(timer: ClockTimer): void;
}

/**
 * The real clock: `performance.timeOrigin + performance.now()` for microsecond wall time (Date
 * has only milliseconds), and `setTimeout` timers that do not keep the process alive on their own.
 */
export const systemClock: ServerClock = {
  nowMicros: () => Math.floor((performance.timeOrigin + performance.now()) * 1000),
  setTimer(fn, delayMs) {
    const timer = setTimeout(fn, delayMs);
    // A held throttled event must not keep a process alive whose sockets are all closed.
    if (typeof timer === "object" && timer !== null && "unref" in timer) timer.unref();
    return timer as unknown as ClockTimer;
  },
  clearTimer(timer) {
    clearTimeout(timer as unknown as ReturnType<typeof setTimeout>);
  },
};

interface ManualTimer extends ClockTimer {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
  cleared: boolean;
}

/** Options of {@link ManualClock}. */
export interface ManualClockOptions {
  /** Start time in microseconds since the epoch. Default `1_700_000_000_000_000`. */
  startMicros?: number | undefined;
}

/**
 * A clock that stands still until {@link ManualClock.advance} moves it. Timers fire during
 * `advance`, in order of due time (ties in the order they were set), with the clock set to each
 * timer's due time while it runs; timers set by a running timer fire in the same `advance` if
 * they fall due within it.
 *
 * @example
 * const clock = new ManualClock();
 * const server = new QmpServer({ clock });
 * server.emit("RTC_CHANGE", { offset: 1, "qom-path": "/machine/unattached/device[0]" });
 * clock.advance(1000); // the held RTC_CHANGE, if any, goes out now
 */
export class ManualClock implements ServerClock {
  private micros: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(options: ManualClockOptions = {}) {
    this.micros = options.startMicros ?? 1_700_000_000_000_000;
  }

  nowMicros(): number {
    return this.micros;
  }

  setTimer(fn: () => void, delayMs: number): ClockTimer {
    const timer: ManualTimer = {
      due: this.micros + Math.max(0, Math.round(delayMs * 1000)),
      seq: this.seq++,
      fn,
      cleared: false,
    };
    this.timers.push(timer);
    return timer;
  }

  clearTimer(timer: ClockTimer): void {
    const t = timer as ManualTimer;
    t.cleared = true;
    this.timers = this.timers.filter((x) => x !== t);
  }

  /** How many timers are armed. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves the clock forward by `ms` milliseconds (fractions allowed), firing due timers. */
  advance(ms: number): void {
    const end = this.micros + Math.round(ms * 1000);
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.timers) {
        if (
          t.due <= end &&
          (next === undefined || t.due < next.due || (t.due === next.due && t.seq < next.seq))
        ) {
          next = t;
        }
      }
      if (next === undefined) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.micros = Math.max(this.micros, next.due);
      next.fn();
    }
    this.micros = end;
  }
}
