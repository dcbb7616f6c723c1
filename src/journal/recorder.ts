/**
 * Recorders: what feeds a {@link Journal}.
 *
 * - {@link recordClient}: everything a connected `QmpClient` sees (events, run-state changes,
 *   reconnections with their gap, drops), until the client closes or the recording stops.
 * - {@link SessionRecorder}: every frame of a proxy's sessions, both directions, with QEMU and
 *   with each client (`qmpkit proxy --record`; `QmpProxy`'s `tap` option takes it as is).
 *
 * @module
 */
import type { JsonValue } from "../base/json.js";
import type { QmpClient } from "../client/index.js";
import { writeCompactJson } from "../wire/index.js";
import type { Journal, JournalEvent, JournalVm } from "./journal.js";

/** Options of {@link recordClient}. */
export interface RecordClientOptions {
  /** The VM's name in the journal. */
  readonly name: string;
  /** Its address (default `name`). */
  readonly address?: string | undefined;
  /** Stops the recording (the client stays open). */
  readonly signal?: AbortSignal | undefined;
}

/** A running recording of a client. */
export interface ClientRecording {
  /** The VM's row. */
  readonly vm: JournalVm;
  /** Resolves when the recording has ended (client closed, or stopped) and its rows are committed. */
  readonly done: Promise<void>;
  /** Stops recording. */
  stop(): void;
}

function version(client: QmpClient): string {
  const { major, minor, micro } = client.greeting.version.qemu;
  return `${major}.${minor}.${micro}`;
}

function eventKey(e: JournalEvent): string {
  return `${e.event}|${e.timestamp.seconds}|${e.timestamp.microseconds}`;
}

/**
 * Journals everything `client` sees from now on. A run-state change is written right after the
 * event that caused it (the client's tracker hears an event before its stream hands it over);
 * one found by `query-status` at once.
 *
 * @example
 * const journal = Journal.open("vms.db");
 * const qmp = await QmpClient.connect("unix:/run/vm1.qmp", { reconnect: true });
 * const recording = recordClient(journal, qmp, { name: "vm1" });
 * // … later
 * recording.stop(); await recording.done; journal.close();
 */
export function recordClient(
  journal: Journal,
  client: QmpClient,
  options: RecordClientOptions,
): ClientRecording {
  const vm = journal.vm({ name: options.name, address: options.address ?? options.name });
  const controller = new AbortController();
  const stop = () => controller.abort();
  options.signal?.addEventListener("abort", stop, { once: true });
  journal.notice(vm, {
    kind: "connected",
    address: vm.address,
    qemu: version(client),
    ...(client.runState === undefined ? {} : { state: client.runState }),
  });
  const waiting = new Map<string, { from: string; to: string; cause: string; atMs: number }[]>();
  const removeState = client.onRunStateChange((change) => {
    if (change.from === undefined) return;
    if (change.cause === "query-status") {
      journal.state(vm, {
        from: change.from,
        to: change.to,
        cause: "query-status",
        atMs: Date.now(),
      });
      return;
    }
    const cause = change.cause as JournalEvent;
    const key = eventKey(cause);
    const line = {
      from: change.from,
      to: change.to,
      cause: cause.event,
      atMs: cause.timestamp.seconds * 1000 + cause.timestamp.microseconds / 1000,
    };
    waiting.set(key, [...(waiting.get(key) ?? []), line]);
  });
  const run = async () => {
    const stream = client.events({ signal: controller.signal, notices: true, maxQueue: 10_000 });
    try {
      for await (const item of stream) {
        if ("notice" in item && !("event" in item)) {
          if (item.notice === "gap") {
            journal.notice(vm, {
              kind: "reconnected",
              qemu: version(client),
              sinceMs: item.since.getTime(),
              untilMs: item.until.getTime(),
            });
          } else {
            journal.notice(vm, { kind: "overflow", dropped: item.dropped });
          }
          continue;
        }
        const event = item as JournalEvent;
        journal.event(vm, event);
        const key = eventKey(event);
        for (const change of waiting.get(key) ?? []) journal.state(vm, change);
        waiting.delete(key);
      }
      if (!controller.signal.aborted) {
        const reason = await client.closed;
        journal.notice(vm, { kind: "disconnected", reason: reason?.message, reconnecting: false });
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    } finally {
      removeState();
      options.signal?.removeEventListener("abort", stop);
      journal.flush();
    }
  };
  return { vm, done: run(), stop };
}

/**
 * The tap a proxy calls for each peer it talks to (`qemu` for the upstream connection,
 * `client#N` for each client): opened, every frame in (`in`: received by the proxy) and out
 * (`out`: written by the proxy), closed. A frame is its JSON text, or the parsed value.
 */
export interface FrameTap {
  open(peer: string): void;
  frame(peer: string, direction: "in" | "out", message: JsonValue | string): void;
  close(peer: string): void;
}

/** Options of {@link SessionRecorder}. */
export interface SessionRecorderOptions {
  /** The name of the VM behind the proxy. */
  readonly name: string;
  /** Its address (the proxy's upstream). */
  readonly address: string;
}

/**
 * Journals a proxy's sessions: one session per peer connection, every frame with a monotonic
 * time. Pass it as `QmpProxy`'s `tap`.
 */
export class SessionRecorder implements FrameTap {
  readonly vm: JournalVm;
  readonly #sessions = new Map<string, number>();

  constructor(
    private readonly journal: Journal,
    options: SessionRecorderOptions,
  ) {
    this.vm = journal.vm({ name: options.name, address: options.address });
  }

  open(peer: string): void {
    const previous = this.#sessions.get(peer);
    if (previous !== undefined) this.journal.closeSession(previous);
    this.#sessions.set(peer, this.journal.openSession(this.vm, peer));
  }

  frame(peer: string, direction: "in" | "out", message: JsonValue | string): void {
    let session = this.#sessions.get(peer);
    if (session === undefined) {
      session = this.journal.openSession(this.vm, peer);
      this.#sessions.set(peer, session);
    }
    this.journal.frame(
      session,
      direction,
      typeof message === "string" ? message : writeCompactJson(message),
    );
  }

  close(peer: string): void {
    const session = this.#sessions.get(peer);
    if (session === undefined) return;
    this.#sessions.delete(peer);
    this.journal.closeSession(session);
  }

  /** Closes every open session. */
  closeAll(): void {
    for (const peer of [...this.#sessions.keys()]) this.close(peer);
  }
}
