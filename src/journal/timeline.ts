/**
 * Run-state intervals from the journal's run-state changes and watch notices: per VM, which
 * state it was in, from when until when, and what put it there.
 *
 * - A run-state change ends the VM's current interval and starts one in the new state, with the
 *   change's cause (the event's name, or `query-status` for one found after a (re)connect).
 * - `connected` starts one in the state the client read at connect (cause `connected`).
 * - `disconnected` ends the current interval, and so does the start of a `reconnected` gap:
 *   nothing is known while no one watches. From the gap's end the last known state carries on
 *   (cause `reconnected`) until a change says otherwise (the client asks `query-status` on every
 *   reconnect, and a difference is a change).
 * - The last interval of a VM still watched has no end (`untilMs` undefined).
 *
 * Pure: no I/O.
 *
 * @module
 */

/** A run-state change or watch notice, as the timeline needs it. */
export interface TimelineInput {
  readonly vm: string;
  readonly kind: "state" | "watch";
  /** The new state (`state`) or the notice's kind (`watch`). */
  readonly name: string;
  /** `state`: the cause; `watch` `connected`: the state read at connect. */
  readonly detail?: string | undefined;
  readonly atMs: number;
  /** `watch` `reconnected`: the span whose events are lost. */
  readonly gap?: { readonly sinceMs: number; readonly untilMs: number } | undefined;
}

/** One interval of a VM's run state. */
export interface RunStateInterval {
  readonly vm: string;
  readonly state: string;
  readonly fromMs: number;
  /** Undefined: still in that state at the end of the journal (or of the query). */
  readonly untilMs: number | undefined;
  /** The event that caused it, `query-status`, `connected` or `reconnected`. */
  readonly cause: string;
}

/**
 * The timeline input of a journal entry (`JournalEntry` or the same shape sent over the wire),
 * under the lane name `vm` (default the entry's VM name); undefined for events, which change
 * no run state on their own (the state row that follows says what they did).
 */
export function timelineInput(
  entry:
    | { readonly kind: "event" }
    | {
        readonly kind: "state";
        readonly vm: string;
        readonly change: { readonly to: string; readonly cause: string; readonly atMs: number };
      }
    | {
        readonly kind: "watch";
        readonly vm: string;
        readonly notice: { readonly kind: string; readonly [member: string]: unknown };
        readonly atMs: number;
      },
  vm?: string,
): TimelineInput | undefined {
  if (entry.kind === "state") {
    const { to, cause, atMs } = entry.change;
    return { vm: vm ?? entry.vm, kind: "state", name: to, detail: cause, atMs };
  }
  if (entry.kind !== "watch") return undefined;
  const { state, sinceMs, untilMs } = entry.notice;
  return {
    vm: vm ?? entry.vm,
    kind: "watch",
    name: entry.notice.kind,
    detail: typeof state === "string" ? state : undefined,
    atMs: entry.atMs,
    gap:
      typeof sinceMs === "number" && typeof untilMs === "number" ? { sinceMs, untilMs } : undefined,
  };
}

/** Builds the intervals, per VM in the order VMs first appear, each VM's in time order. */
export class TimelineBuilder {
  private readonly open = new Map<string, { state: string; fromMs: number; cause: string }>();
  private readonly lastState = new Map<string, string>();
  private readonly done = new Map<string, RunStateInterval[]>();

  add(input: TimelineInput): void {
    const { vm } = input;
    if (!this.done.has(vm)) this.done.set(vm, []);
    if (input.kind === "state") {
      this.start(vm, input.name, input.atMs, input.detail ?? "unknown");
    } else if (input.name === "connected" && input.detail !== undefined) {
      this.start(vm, input.detail, input.atMs, "connected");
    } else if (input.name === "disconnected") {
      this.end(vm, input.atMs);
    } else if (input.name === "reconnected") {
      const since = input.gap?.sinceMs ?? input.atMs;
      const until = input.gap?.untilMs ?? input.atMs;
      const current = this.open.get(vm);
      if (current !== undefined) this.end(vm, Math.max(current.fromMs, since));
      const last = this.lastState.get(vm);
      if (last !== undefined) this.start(vm, last, until, "reconnected");
    }
  }

  private start(vm: string, state: string, atMs: number, cause: string): void {
    const current = this.open.get(vm);
    if (current?.state === state && cause === "connected") return;
    this.end(vm, atMs);
    this.open.set(vm, { state, fromMs: atMs, cause });
    this.lastState.set(vm, state);
  }

  private end(vm: string, atMs: number): void {
    const current = this.open.get(vm);
    if (current === undefined) return;
    this.open.delete(vm);
    this.done.get(vm)!.push({ vm, ...current, untilMs: atMs });
  }

  /**
   * Carries on from intervals built earlier (a page seeded with a server's answer): the closed
   * ones are kept, an open one (no end) is continued by what `add` hears next.
   */
  seed(intervals: readonly RunStateInterval[]): void {
    for (const i of intervals) {
      if (!this.done.has(i.vm)) this.done.set(i.vm, []);
      if (i.untilMs === undefined) {
        this.end(i.vm, i.fromMs);
        this.open.set(i.vm, { state: i.state, fromMs: i.fromMs, cause: i.cause });
      } else {
        this.done.get(i.vm)!.push(i);
      }
      this.lastState.set(i.vm, i.state);
    }
  }

  /** One VM's intervals so far, the open one last (without an end). */
  intervalsOf(vm: string): RunStateInterval[] {
    const done = this.done.get(vm) ?? [];
    const current = this.open.get(vm);
    return current ? [...done, { vm, ...current, untilMs: undefined }] : [...done];
  }

  /** The VMs seen, in the order they first appeared. */
  vms(): string[] {
    return [...this.done.keys()];
  }

  /** Every VM's intervals, the open ones last (without an end). */
  result(): Map<string, RunStateInterval[]> {
    const out = new Map<string, RunStateInterval[]>();
    for (const [vm, intervals] of this.done) {
      const current = this.open.get(vm);
      out.set(
        vm,
        current ? [...intervals, { vm, ...current, untilMs: undefined }] : [...intervals],
      );
    }
    return out;
  }
}
