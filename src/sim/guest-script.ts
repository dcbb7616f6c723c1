/**
 * Guest scripts: what the guest does, and when, counted in guest run time (time during which
 * its vCPUs run; QEMU's virtual clock stops while the VM is stopped).
 *
 * The format is JSON lines. Blank lines and lines starting with `#` are ignored. Each step is
 * an object with `at` and either `action` (an `x-sim-guest` action, with its arguments as
 * further members) or `inject` (an `x-sim-inject` event name, with `data`):
 *
 * ```
 * # boot, then an RTC change, then a panic
 * {"at": "500ms", "action": "rtc-change", "offset": 3600}
 * {"at": 2.5, "action": "panic"}
 * {"at": "3s", "inject": "VNC_CONNECTED", "data": {"server": {...}, "client": {...}}}
 * ```
 *
 * `at` is a number of seconds or a string with a unit (`ms`, `s`, `m`). Steps run in `at`
 * order (file order for equal times). A step that fails is reported and the script goes on.
 *
 * Pure: parsing only; {@link GuestScriptRunner} takes its clock and actions from the caller.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";
import { isJsonObject, type JsonObject } from "../base/json.js";

/** One step of a guest script. */
export interface GuestScriptStep {
  /** Guest run time in milliseconds. */
  readonly atMs: number;
  /** `action` steps: the x-sim-guest action and its arguments; `inject` steps: event and data. */
  readonly kind: "action" | "inject";
  readonly name: string;
  readonly args: JsonObject;
  /** 1-based line number, for messages. */
  readonly line: number;
}

/** A guest script that cannot be parsed. */
export class GuestScriptError extends QmpError {
  override name = "GuestScriptError";
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${file}:${line}: ${reason}`, options);
  }
}

/** Parses a duration: seconds as a number, or `250ms`, `2.5s`, `1m`. */
export function parseGuestTime(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value * 1000;
  if (typeof value !== "string") return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
}

/** Parses a guest script's text into steps sorted by time. */
export function parseGuestScript(text: string, file = "guest script"): GuestScriptStep[] {
  const steps: GuestScriptStep[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (e) {
      throw new GuestScriptError(file, line, `not JSON: ${(e as Error).message}`, { cause: e });
    }
    if (!isJsonObject(value))
      throw new GuestScriptError(file, line, "a step must be a JSON object");
    const atMs = parseGuestTime(value.at);
    if (atMs === undefined) {
      throw new GuestScriptError(
        file,
        line,
        `'at' must be seconds or a duration like "2.5s", not ${JSON.stringify(value.at ?? null)}`,
      );
    }
    const { at: _at, action, inject, ...rest } = value;
    if (typeof action === "string" && inject === undefined) {
      steps.push({ atMs, kind: "action", name: action, args: rest, line });
    } else if (typeof inject === "string" && action === undefined) {
      const data = rest.data ?? {};
      if (!isJsonObject(data)) throw new GuestScriptError(file, line, "'data' must be an object");
      steps.push({ atMs, kind: "inject", name: inject, args: data, line });
    } else {
      throw new GuestScriptError(
        file,
        line,
        "a step needs exactly one of 'action' (string) and 'inject' (string)",
      );
    }
  });
  return steps.sort((a, b) => a.atMs - b.atMs || a.line - b.line);
}

/** What the runner needs from the machine. */
export interface GuestScriptHost {
  /** Wall clock in microseconds and timers (the server's clock). */
  readonly clock: {
    nowMicros(): number;
    setTimer(fn: () => void, delayMs: number): unknown;
    clearTimer(timer: never): void;
  };
  /** Whether the vCPUs run now. */
  isRunning(): boolean;
  /** Subscribes to run-state changes; returns an unsubscribe function. */
  onRunningChange(fn: () => void): () => void;
  /** Performs one step. */
  perform(step: GuestScriptStep): void;
  /** Reports a failed step. */
  report(step: GuestScriptStep, error: unknown): void;
}

/** Plays a guest script against a machine, in guest run time. */
export class GuestScriptRunner {
  #next = 0;
  #guestMs = 0;
  #runningSince: number | undefined;
  #timer: unknown;
  #unsubscribe: () => void;
  #stopped = false;

  constructor(
    readonly steps: readonly GuestScriptStep[],
    private readonly host: GuestScriptHost,
  ) {
    this.#unsubscribe = host.onRunningChange(() => this.#sync());
    this.#sync();
  }

  /** Guest run time so far, in milliseconds. */
  get guestTimeMs(): number {
    const since = this.#runningSince;
    return this.#guestMs + (since === undefined ? 0 : (this.host.clock.nowMicros() - since) / 1000);
  }

  /** Whether every step has run. */
  get done(): boolean {
    return this.#next >= this.steps.length;
  }

  /** Stops the script (the machine ended). */
  stop(): void {
    this.#stopped = true;
    this.#clear();
    this.#unsubscribe();
  }

  #clear(): void {
    if (this.#timer !== undefined) this.host.clock.clearTimer(this.#timer as never);
    this.#timer = undefined;
  }

  #sync(): void {
    if (this.#stopped) return;
    const running = this.host.isRunning();
    if (running && this.#runningSince === undefined) {
      this.#runningSince = this.host.clock.nowMicros();
    } else if (!running && this.#runningSince !== undefined) {
      this.#guestMs += (this.host.clock.nowMicros() - this.#runningSince) / 1000;
      this.#runningSince = undefined;
    }
    this.#clear();
    const step = this.steps[this.#next];
    if (!running || step === undefined) return;
    const delay = Math.max(0, step.atMs - this.guestTimeMs);
    this.#timer = this.host.clock.setTimer(() => this.#fire(), delay);
  }

  #fire(): void {
    this.#timer = undefined;
    while (!this.#stopped && this.host.isRunning()) {
      const step = this.steps[this.#next];
      if (step === undefined || step.atMs > this.guestTimeMs + 1e-6) break;
      this.#next++;
      try {
        this.host.perform(step);
      } catch (error) {
        this.host.report(step, error);
      }
    }
    this.#sync();
  }
}
