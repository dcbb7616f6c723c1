/**
 * `FleetAgent`: one host's VMs on NATS JetStream (docs/fleet.md). The watch itself (targets,
 * globs, new VMs, restarts, gaps) is `qmpkit events --follow`'s, which hands the agent each
 * item as a sink does: `event`, `state`, `notice`. The agent
 *
 * 1. writes each as a CloudEvents envelope (`envelope.ts`) to the outbox of its journal first
 *    (`qmpkit/journal`'s `Outbox`), and
 * 2. publishes from the outbox (`publisher.ts`), in order per VM, each message with its stable
 *    id as `Nats-Msg-Id`, marking what the stream acknowledged; after an outage of the broker or
 *    a `kill -9` of the agent it goes on from the first unacknowledged message.
 *
 * A VM the outbox knows from an earlier run gets, on its first connection in this run, a
 * `reconnected` notice whose gap spans the time the agent did not watch (`agent: "restarted"`),
 * as the journal does for `record`. Messages the outbox drops to keep its bounds are said on
 * stderr (`onWarning`) and by a `dropped` notice on the VM's watch subject, naming the sequence
 * numbers lost.
 *
 * Numbers for metrics: `stats()` (a snapshot) and the `observer` callbacks.
 *
 * @module
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Journal, Outbox, OutboxDrop, OutboxOptions } from "../journal/index.js";
import {
  connectNats,
  describeNatsError,
  type FleetConnectOptions,
  FleetError,
  parseServers,
  serversText,
} from "./connection.js";
import {
  type EnvelopeInput,
  encodeEnvelope,
  type FleetNotice,
  type FleetQmpEvent,
  type FleetStateChange,
} from "./envelope.js";
import { OutboxPublisher } from "./publisher.js";
import { DEFAULT_SUBJECT_PREFIX, streamSubjects, type VmSubjects, vmSubjects } from "./subjects.js";

/** The default stream name. */
export const DEFAULT_STREAM = "QMP";

/** Callbacks for metrics (all optional; called synchronously, keep them cheap). */
export interface FleetAgentObserver {
  /** A QMP event of `vm` was taken in (written to the outbox). */
  event?(vm: string, name: string): void;
  /** A gap in watching `vm`: QEMU's events between `sinceMs` and `untilMs` are lost. */
  gap?(vm: string, gap: { readonly sinceMs: number; readonly untilMs: number }): void;
  /** The stream acknowledged a message (`duplicate`: it had it already). */
  published?(vm: string, duplicate: boolean): void;
  /** The NATS connection came up (true) or went down (false). */
  connection?(connected: boolean): void;
  /** The outbox dropped messages of `vm` to keep its bounds. */
  dropped?(vm: string, count: number): void;
}

/** Per VM numbers of {@link FleetAgentStats}. */
export interface FleetVmStats {
  /** QMP events taken in since the agent started. */
  readonly events: number;
  /** Gaps in watching since the agent started (reconnections, agent restarts). */
  readonly gaps: number;
  /** Whether the VM's monitor is connected now. */
  readonly connected: boolean;
  /** Its run state, when known. */
  readonly runState: string | undefined;
}

/** A snapshot of the agent's numbers (for `/metrics`). */
export interface FleetAgentStats {
  /** Whether the NATS connection is up. */
  readonly connected: boolean;
  /** Messages in the outbox not yet acknowledged by the stream. */
  readonly outboxDepth: number;
  /** Their payload bytes. */
  readonly outboxBytes: number;
  /** Messages the stream acknowledged since the agent started (duplicates included). */
  readonly published: number;
  /** Of those, acknowledged as duplicates (the stream had them: a resend). */
  readonly duplicates: number;
  /** Messages the outbox dropped to keep its bounds since it was made. */
  readonly dropped: number;
  /** Per VM (by its label). */
  readonly vms: ReadonlyMap<string, FleetVmStats>;
}

/** Options of {@link FleetAgent}. */
export interface FleetAgentOptions {
  /** This host's name in subjects and labels (`HOST/VM`). */
  readonly host: string;
  /** Where NATS is and who to be there. */
  readonly nats: FleetConnectOptions;
  /** The journal holding the outbox (opened for writing by the caller, closed by it too). */
  readonly journal: Journal;
  /** Outbox bounds. */
  readonly outbox?: Pick<OutboxOptions, "maxMessages" | "maxBytes" | "maxAgeMs"> | undefined;
  /** The stream's name. Default `QMP`. */
  readonly stream?: string | undefined;
  /** The subjects' first token. Default `qmp`. */
  readonly subjectPrefix?: string | undefined;
  /** The stream's duplicate window, when the agent creates it (ms). Default 2 minutes. */
  readonly duplicateWindowMs?: number | undefined;
  /** Time for the stream to acknowledge one message (ms). Default 5 000. */
  readonly ackTimeoutMs?: number | undefined;
  readonly observer?: FleetAgentObserver | undefined;
  /** Lines for people about the agent itself (connected, lost, dropping). Default: none. */
  readonly onWarning?: ((line: string) => void) | undefined;
  /** The wall clock (ms). */
  readonly now?: (() => number) | undefined;
}

interface VmRecord {
  readonly label: string;
  readonly subjects: VmSubjects;
  events: number;
  gaps: number;
  connected: boolean;
  runState: string | undefined;
  /** The outbox knew it from an earlier run and this run has not connected to it yet. */
  restartGap: { readonly sinceMs: number } | undefined;
}

/** The fleet agent of one host (see the module comment). */
export class FleetAgent {
  readonly host: string;
  readonly stream: string;
  readonly prefix: string;
  readonly #options: FleetAgentOptions;
  readonly #outbox: Outbox;
  readonly #publisher: OutboxPublisher;
  readonly #vms = new Map<string, VmRecord>();
  readonly #keyToVm = new Map<string, string>();
  readonly #now: () => number;
  readonly #stop = new AbortController();
  #nc: NatsConnection | undefined;
  #connected = false;
  #running: Promise<void> | undefined;

  constructor(options: FleetAgentOptions) {
    this.host = options.host;
    if (this.host === "") throw new FleetError("the agent's host name must not be empty");
    this.stream = options.stream ?? DEFAULT_STREAM;
    this.prefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#outbox = options.journal.outbox({
      ...options.outbox,
      now: this.#now,
      onCommit: (messages) => this.#publisher.enqueue(messages),
      onDrop: (drops) => this.#dropped(drops),
      onError: (error) => this.#warn(`cannot write the outbox: ${error.message}; messages lost`),
    });
    this.#publisher = new OutboxPublisher(this.#outbox, {
      ackTimeoutMs: options.ackTimeoutMs,
      onAck: (m) => {
        const vm = this.#keyToVm.get(m.key);
        if (vm !== undefined) options.observer?.published?.(vm, false);
      },
      onPause: (error) => {
        if (error !== undefined)
          this.#warn(
            `publishing paused: ${error}; ${this.#outbox.waiting} message(s) wait in the outbox`,
          );
        else this.#warn("publishing resumed");
      },
    });
  }

  /**
   * Starts: hands the outbox's waiting messages to the publisher, then connects to NATS in the
   * background (retrying until `close()`; the watch runs and the outbox fills meanwhile).
   * Throws `FleetError` at once for options that can never work (a malformed URL).
   */
  start(): void {
    if (this.#running !== undefined) return;
    // Checked now: a malformed URL is the caller's mistake, not an outage to wait out.
    parseServers(this.#options.nats.servers);
    const waiting = this.#outbox.waitingMessages();
    if (waiting.length > 0) {
      this.#warn(`${waiting.length} message(s) from an earlier run wait in the outbox`);
      this.#publisher.enqueue(waiting);
    }
    this.#running = this.#connectLoop();
  }

  #warn(line: string): void {
    this.#options.onWarning?.(line);
  }

  async #connectLoop(): Promise<void> {
    const signal = this.#stop.signal;
    let delay = 250;
    let said = false;
    while (!signal.aborted) {
      let nc: NatsConnection;
      try {
        nc = await connectNats({ name: `qmpkit-agent ${this.host}`, ...this.#options.nats });
      } catch (error) {
        if (!said)
          this.#warn(
            `${describeNatsError(error)}; messages wait in the outbox (${this.#outbox.waiting}), retrying`,
          );
        said = true;
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 5000);
        continue;
      }
      if (signal.aborted) {
        await nc.close().catch(() => {});
        return;
      }
      said = false;
      delay = 250;
      this.#nc = nc;
      try {
        await this.#session(nc);
      } catch (error) {
        this.#warn(`NATS: ${describeNatsError(error)}`);
      }
      this.#setConnected(false);
      this.#publisher.setClient(undefined);
      this.#nc = undefined;
      if (!nc.isClosed()) await nc.close().catch(() => {});
      if (!signal.aborted) await sleep(delay, signal);
    }
  }

  /** One NATS connection's life: the stream, publishing, until the connection closes. */
  async #session(nc: NatsConnection): Promise<void> {
    const { jetstream, jetstreamManager } = await import("@nats-io/jetstream");
    const js: JetStreamClient = jetstream(nc, { timeout: this.#options.ackTimeoutMs ?? 5000 });
    await this.#ensureStream(await jetstreamManager(nc).catch(() => undefined));
    this.#warn(
      `connected to NATS at ${serversText(this.#options.nats.servers)} (stream ${this.stream})`,
    );
    this.#setConnected(true);
    this.#publisher.setClient(js);
    const status = (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") {
          this.#setConnected(false);
          this.#warn("lost the NATS connection; messages wait in the outbox, reconnecting");
        } else if (s.type === "reconnect") {
          this.#setConnected(true);
          this.#warn(`reconnected to NATS; ${this.#outbox.waiting} message(s) to publish`);
          this.#publisher.resume();
        }
      }
    })();
    const closed = await nc.closed();
    await status.catch(() => {});
    if (closed) throw closed;
  }

  async #ensureStream(jsm: JetStreamManager | undefined): Promise<void> {
    if (jsm === undefined) return;
    try {
      await jsm.streams.info(this.stream);
      return;
    } catch (error) {
      if (!/not found/i.test(describeNatsError(error))) {
        // No permission to look (an agent user without stream rights): publish anyway.
        this.#warn(`cannot check the stream ${this.stream}: ${describeNatsError(error)}`);
        return;
      }
    }
    try {
      const { nanos } = await import("@nats-io/transport-node");
      await jsm.streams.add({
        name: this.stream,
        subjects: streamSubjects(this.prefix),
        duplicate_window: nanos(this.#options.duplicateWindowMs ?? 120_000),
      });
      this.#warn(`created the stream ${this.stream} (${streamSubjects(this.prefix).join(", ")})`);
    } catch (error) {
      this.#warn(`cannot create the stream ${this.stream}: ${describeNatsError(error)}`);
    }
  }

  #setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    this.#options.observer?.connection?.(connected);
  }

  #vm(label: string): VmRecord {
    let vm = this.#vms.get(label);
    if (vm === undefined) {
      const subjects = vmSubjects(this.host, label, this.prefix);
      const known = this.#outbox.keyInfo(subjects.key);
      vm = {
        label,
        subjects,
        events: 0,
        gaps: 0,
        connected: false,
        runState: undefined,
        restartGap: known === undefined ? undefined : { sinceMs: known.lastMs },
      };
      this.#vms.set(label, vm);
      this.#keyToVm.set(subjects.key, label);
    }
    return vm;
  }

  #add(vm: VmRecord, subject: string, input: EnvelopeInput): void {
    this.#outbox.add(vm.subjects.key, subject, ({ msgId, keySeq }) =>
      encodeEnvelope(input, msgId, keySeq),
    );
  }

  // ------------------------------------------------------------ the sink of the watch

  /** A QMP event of VM `label`, as QEMU sent it. */
  event(label: string, event: FleetQmpEvent, _receivedMs?: number): void {
    const vm = this.#vm(label);
    vm.events++;
    this.#add(vm, vm.subjects.event(event.event), {
      host: this.host,
      vm: label,
      kind: "event",
      event,
    });
    this.#options.observer?.event?.(label, event.event);
  }

  /** A run-state change of VM `label` and its cause. */
  state(label: string, change: FleetStateChange): void {
    const vm = this.#vm(label);
    vm.runState = change.to;
    this.#add(vm, vm.subjects.state, { host: this.host, vm: label, kind: "state", change });
  }

  /** A notice about the watch of VM `label` (connected, disconnected, reconnected, …). */
  notice(label: string, notice: FleetNotice, atMs: number = this.#now()): void {
    const vm = this.#vm(label);
    if (notice.kind === "connected" && vm.restartGap !== undefined) {
      const sinceMs = vm.restartGap.sinceMs;
      vm.restartGap = undefined;
      this.#gap(
        vm,
        {
          kind: "reconnected",
          qemu: notice.qemu,
          sinceMs,
          untilMs: atMs,
          agent: "restarted",
        },
        atMs,
      );
    } else if (notice.kind === "connected") vm.restartGap = undefined;
    if (notice.kind === "connected") {
      vm.connected = true;
      if (typeof notice.state === "string") vm.runState = notice.state;
    } else if (notice.kind === "disconnected") vm.connected = false;
    else if (notice.kind === "reconnected") vm.connected = true;
    if (notice.kind === "reconnected") this.#gap(vm, notice, atMs);
    else
      this.#add(vm, vm.subjects.watch, { host: this.host, vm: label, kind: "watch", notice, atMs });
  }

  #gap(vm: VmRecord, notice: FleetNotice, atMs: number): void {
    vm.gaps++;
    this.#add(vm, vm.subjects.watch, {
      host: this.host,
      vm: vm.label,
      kind: "watch",
      notice,
      atMs,
    });
    if (typeof notice.sinceMs === "number" && typeof notice.untilMs === "number")
      this.#options.observer?.gap?.(vm.label, { sinceMs: notice.sinceMs, untilMs: notice.untilMs });
  }

  #dropped(drops: readonly OutboxDrop[]): void {
    this.#publisher.forget(drops.flatMap((d) => d.seqs));
    for (const d of drops) {
      const label = this.#keyToVm.get(d.key) ?? d.key;
      this.#warn(
        `OUTBOX FULL (${d.reason}): dropped ${d.count} unpublished message(s) of ${label} (sequence ${d.firstKeySeq}..${d.lastKeySeq}, written ${new Date(d.sinceMs).toISOString()} to ${new Date(d.untilMs).toISOString()})`,
      );
      this.#options.observer?.dropped?.(label, d.count);
      const vm = this.#vm(label);
      this.#add(vm, vm.subjects.watch, {
        host: this.host,
        vm: label,
        kind: "watch",
        notice: {
          kind: "dropped",
          reason: d.reason,
          dropped: d.count,
          firstSequence: d.firstKeySeq,
          lastSequence: d.lastKeySeq,
          sinceMs: d.sinceMs,
          untilMs: d.untilMs,
        },
        atMs: this.#now(),
      });
    }
  }

  // ------------------------------------------------------------ numbers

  /** The agent's numbers now (see {@link FleetAgentStats}). */
  stats(): FleetAgentStats {
    const vms = new Map<string, FleetVmStats>();
    for (const [label, vm] of this.#vms) {
      vms.set(label, {
        events: vm.events,
        gaps: vm.gaps,
        connected: vm.connected,
        runState: vm.runState,
      });
    }
    return {
      connected: this.#connected,
      outboxDepth: this.#outbox.waiting,
      outboxBytes: this.#outbox.waitingBytes,
      published: this.#publisher.acknowledged,
      duplicates: this.#publisher.duplicates,
      dropped: this.#outbox.dropped,
      vms,
    };
  }

  /** The NATS connection, while there is one. */
  get connection(): NatsConnection | undefined {
    return this.#nc;
  }

  /**
   * Resolves once the outbox is empty (every message acknowledged) or rejects after
   * `timeoutMs` — for a clean stop, and for tests.
   */
  async drained(timeoutMs = 30_000): Promise<void> {
    const start = Date.now();
    this.#outbox.flush();
    while (this.#outbox.waiting > 0) {
      if (Date.now() - start > timeoutMs)
        throw new FleetError(`${this.#outbox.waiting} message(s) still wait in the outbox`);
      await sleep(20, this.#stop.signal);
      if (this.#stop.signal.aborted) return;
    }
  }

  /**
   * Stops: waits up to `drainMs` for the outbox to empty (what is left stays in it for the next
   * run), then closes the NATS connection. The journal stays open (the caller owns it).
   */
  async close(drainMs = 2000): Promise<void> {
    if (this.#connected) await this.drained(drainMs).catch(() => {});
    this.#stop.abort();
    this.#publisher.close();
    this.#outbox.flush();
    const nc = this.#nc;
    if (nc !== undefined && !nc.isClosed()) await nc.close().catch(() => {});
    await this.#running;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
