/** A minimal manual clock for the simulator's unit tests (structurally a `ServerClock`). */
export class FakeClock {
  micros = 1_700_000_000_000_000;
  private timers: Array<{ due: number; seq: number; fn: () => void }> = [];
  private seq = 0;
  nowMicros(): number {
    return this.micros;
  }
  setTimer(fn: () => void, delayMs: number): unknown {
    const t = { due: this.micros + Math.round(delayMs * 1000), seq: this.seq++, fn };
    this.timers.push(t);
    return t;
  }
  clearTimer(timer: never): void {
    this.timers = this.timers.filter((t) => t !== (timer as unknown));
  }
  get pending(): number {
    return this.timers.length;
  }
  advance(ms: number): void {
    const end = this.micros + Math.round(ms * 1000);
    for (;;) {
      const due = this.timers
        .filter((t) => t.due <= end)
        .sort((a, b) => a.due - b.due || a.seq - b.seq);
      const next = due[0];
      if (next === undefined) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.micros = Math.max(this.micros, next.due);
      next.fn();
    }
    this.micros = end;
  }
}
