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
import type { KV } from "@nats-io/kv";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { QmpClient } from "../client/index.js";
import type {
  Journal,
  Outbox,
  OutboxDrop,
  OutboxMessage,
  OutboxOptions,
} from "../journal/index.js";
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
  rfc3339,
  rfc3339Ms,
} from "./envelope.js";
import { OutboxPublisher } from "./publisher.js";
import { type CommandPolicy, commandPolicy, execReply, type ExecReply } from "./exec.js";
import {
  DEFAULT_SUBJECT_PREFIX,
  decodeToken,
  execSubjects,
  streamSubjects,
  type VmSubjects,
  vmSubjects,
} from "./subjects.js";

/** The default stream name. */
export const DEFAULT_STREAM = "QMP";

/** The default KV bucket of the VMs' current state. */
export const DEFAULT_BUCKET = "qmp-vms";

/**
 * A VM's entry in the KV bucket (key `HOST.VM`), JSON. `state` is the run state as last known
 * (from events, or `query-status`), `since` when it began (RFC 3339), `connection` the watch's
 * (`connected`, `disconnected`, `waiting`), `lastEvent` the last QMP event's name and stamp.
 */
export interface FleetVmEntry {
  readonly host: string;
  readonly vm: string;
  readonly address: string | undefined;
  readonly qemu: string | undefined;
  readonly state: string | undefined;
  readonly since: string | undefined;
  readonly connection: "connected" | "disconnected" | "waiting";
  readonly lastEvent: { readonly event: string; readonly time: string } | undefined;
  /** When the agent wrote this entry (RFC 3339). */
  readonly updated: string;
}

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
  /** `vm`'s run state is now `state` (from an event, a connection, or `query-status`). */
  runState?(vm: string, state: string): void;
  /** `vm`'s monitor connection came up (true) or went down (false). */
  vmConnection?(vm: string, connected: boolean): void;
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
  /** The KV bucket of the VMs' current state. Default `qmp-vms`. */
  readonly bucket?: string | undefined;
  /** Ask every VM `query-status` this often (ms), and after every reconnection. Default 30 000. */
  readonly reconcileMs?: number | undefined;
  /**
   * Commands `qmpkit fleet exec` may run (names, `*` and `?` wildcards). Default `query-*`
   * (read-only); anything else is refused with a QMP-style error.
   */
  readonly allow?: readonly string[] | undefined;
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
  /** When the run state began (ms). */
  since: number | undefined;
  /** The run state of the last state message the stream acknowledged. */
  streamState: string | undefined;
  /** Its outbox seq (the newest acknowledged state message wins). */
  streamStateSeq: number;
  /** The seqs of state messages waiting, and the state each says. */
  readonly stateSeqs: Map<number, string>;
  connection: FleetVmEntry["connection"];
  address: string | undefined;
  qemu: string | undefined;
  lastEvent: FleetVmEntry["lastEvent"];
  client: QmpClient | undefined;
  /** The `dropped` notice waiting in the outbox, which later drops are added to. */
  dropNotice:
    | {
        message: OutboxMessage;
        keySeqs: number[];
        sinceMs: number;
        untilMs: number;
      }
    | undefined;
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
  readonly #policy: CommandPolicy;
  #nc: NatsConnection | undefined;
  #kv: KV | undefined;
  /** VMs whose KV entry changed since it was last written. */
  readonly #dirty = new Set<string>();
  #kvTimer: NodeJS.Timeout | undefined;
  /** VMs to reconcile once their messages are all acknowledged. */
  readonly #toReconcile = new Set<string>();
  #reconcileTimer: NodeJS.Timeout | undefined;
  #lastFullReconcile = 0;
  #connected = false;
  #running: Promise<void> | undefined;
  /** Corrections published (a state the stream missed, found by `query-status`). */
  corrections = 0;

  constructor(options: FleetAgentOptions) {
    this.host = options.host;
    if (this.host === "") throw new FleetError("the agent's host name must not be empty");
    this.stream = options.stream ?? DEFAULT_STREAM;
    this.prefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#policy = commandPolicy(options.allow);
    this.#outbox = options.journal.outbox({
      ...options.outbox,
      now: this.#now,
      onCommit: (messages) => this.#publisher.enqueue(messages),
      onDrop: (drops) => this.#dropped(drops),
      inFlight: (seq) => this.#publisher.isInFlight(seq),
      onError: (error) => this.#warn(`cannot write the outbox: ${error.message}; messages lost`),
    });
    this.#publisher = new OutboxPublisher(this.#outbox, {
      ackTimeoutMs: options.ackTimeoutMs,
      onAck: (m, duplicate) => {
        const label = this.#keyToVm.get(m.key);
        if (label === undefined) return;
        const vm = this.#vms.get(label)!;
        if (vm.dropNotice?.message.seq === m.seq) vm.dropNotice = undefined;
        const state = vm.stateSeqs.get(m.seq);
        if (state !== undefined) {
          vm.stateSeqs.delete(m.seq);
          if (m.seq > vm.streamStateSeq) {
            vm.streamState = state;
            vm.streamStateSeq = m.seq;
          }
        }
        options.observer?.published?.(label, duplicate);
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
    this.#startReconcile();
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
    this.#kv = await this.#openBucket(js);
    const exec = this.#serveExec(nc);
    this.#setConnected(true);
    this.#publisher.setClient(js);
    this.#afterConnect();
    const status = (async () => {
      for await (const s of nc.status()) {
        if (this.#stop.signal.aborted) break;
        if (s.type === "disconnect") {
          this.#setConnected(false);
          this.#warn("lost the NATS connection; messages wait in the outbox, reconnecting");
        } else if (s.type === "reconnect") {
          this.#setConnected(true);
          this.#warn(`reconnected to NATS; ${this.#outbox.waiting} message(s) to publish`);
          this.#publisher.resume();
          this.#afterConnect();
        }
      }
    })();
    const closed = await nc.closed();
    exec.unsubscribe();
    this.#kv = undefined;
    await status.catch(() => {});
    if (closed) throw closed;
  }

  /** After a (re)connection: every VM's KV entry written again, every VM reconciled. */
  #afterConnect(): void {
    for (const label of this.#vms.keys()) {
      this.#dirty.add(label);
      this.#toReconcile.add(label);
    }
    this.#scheduleKv();
  }

  async #openBucket(js: JetStreamClient): Promise<KV | undefined> {
    const bucket = this.#options.bucket ?? DEFAULT_BUCKET;
    const { Kvm } = await import("@nats-io/kv");
    const kvm = new Kvm(js);
    try {
      // Creates it, or opens it when it exists (an agent without the right to create opens).
      return await kvm.create(bucket, { history: 1 });
    } catch (first) {
      try {
        const kv = await kvm.open(bucket);
        await kv.status();
        return kv;
      } catch {
        this.#warn(`cannot open or create the KV bucket ${bucket}: ${describeNatsError(first)}`);
        return undefined;
      }
    }
  }

  // ------------------------------------------------------------ KV: the current state

  #touch(vm: VmRecord): void {
    this.#dirty.add(vm.label);
    this.#scheduleKv();
  }

  #scheduleKv(): void {
    if (this.#kvTimer !== undefined || this.#stop.signal.aborted) return;
    // Coalesced: a flood of events is one write per VM every 250 ms, not one per event.
    this.#kvTimer = setTimeout(() => {
      this.#kvTimer = undefined;
      void this.#writeKv();
    }, 250);
  }

  async #writeKv(): Promise<void> {
    const kv = this.#kv;
    if (kv === undefined || !this.#connected) return;
    const labels = [...this.#dirty];
    this.#dirty.clear();
    await Promise.all(
      labels.map(async (label) => {
        const vm = this.#vms.get(label);
        if (vm === undefined) return;
        try {
          await kv.put(vm.subjects.key, JSON.stringify(this.entry(label)));
        } catch (error) {
          // Written again with the next change or reconnection.
          this.#dirty.add(label);
          this.#warn(
            `cannot write ${vm.subjects.key} to the KV bucket: ${describeNatsError(error)}`,
          );
        }
      }),
    );
  }

  /** The KV entry of VM `label` as it is now. */
  entry(label: string): FleetVmEntry {
    const vm = this.#vm(label);
    return {
      host: this.host,
      vm: label,
      address: vm.address,
      qemu: vm.qemu,
      state: vm.runState,
      since: vm.since === undefined ? undefined : rfc3339Ms(vm.since),
      connection: vm.connection,
      lastEvent: vm.lastEvent,
      updated: rfc3339Ms(this.#now()),
    };
  }

  // ------------------------------------------------------------ reconcile

  #startReconcile(): void {
    const every = this.#options.reconcileMs ?? 30_000;
    this.#reconcileTimer = setInterval(
      () => {
        if (this.#stop.signal.aborted) return;
        const now = this.#now();
        if (now - this.#lastFullReconcile >= every) {
          this.#lastFullReconcile = now;
          for (const label of this.#vms.keys()) this.#toReconcile.add(label);
        }
        void this.#reconcilePending();
      },
      Math.min(every, 500),
    );
    this.#reconcileTimer.unref();
  }

  /**
   * Reconciles the VMs waiting for it whose messages are all acknowledged: asks `query-status`
   * (a change the client's tracker missed comes through the watch as a `query-status` change),
   * then publishes a correction when the stream's last state differs from the VM's (a state
   * message dropped by the outbox, or never sent).
   */
  async #reconcilePending(): Promise<void> {
    if (!this.#connected) return;
    for (const label of [...this.#toReconcile]) {
      const vm = this.#vms.get(label);
      if (vm === undefined || vm.client === undefined) {
        this.#toReconcile.delete(label);
        continue;
      }
      if (this.#publisher.queuedFor(vm.subjects.key) > 0) continue;
      this.#toReconcile.delete(label);
      let actual: string | undefined;
      try {
        actual = await vm.client.refreshRunState();
      } catch {
        continue; // the VM went away: its watch says so
      }
      if (actual === undefined || actual !== vm.runState) continue; // on its way through the watch
      if (vm.streamState === actual || vm.stateSeqs.size > 0) continue;
      this.corrections++;
      this.#warn(
        `correction: ${this.host}/${label} is ${actual}, the stream last said ${vm.streamState ?? "nothing"}`,
      );
      this.#addState(vm, {
        from: vm.streamState ?? actual,
        to: actual,
        cause: "query-status",
        atMs: this.#now(),
      });
    }
  }

  // ------------------------------------------------------------ exec

  #serveExec(nc: NatsConnection): Subscription {
    const subject = execSubjects(this.host, this.prefix);
    return nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) return;
        void this.#exec(msg).then(
          (reply) => msg.respond(JSON.stringify(reply)),
          () => {},
        );
      },
    });
  }

  async #exec(msg: Msg): Promise<ExecReply> {
    const token = msg.subject.split(".")[2] ?? ""; // PREFIX-exec.HOST.VM
    const label = decodeToken(token);
    let request: unknown;
    try {
      request = msg.json();
    } catch {
      return execReply.error("GenericError", "the request is not JSON");
    }
    return execReply.run(request, {
      policy: this.#policy,
      host: this.host,
      vm: label,
      client: this.#vms.get(label)?.client,
    });
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
        since: undefined,
        streamState: undefined,
        streamStateSeq: 0,
        stateSeqs: new Map(),
        connection: "waiting",
        address: undefined,
        qemu: undefined,
        lastEvent: undefined,
        client: undefined,
        dropNotice: undefined,
        restartGap: known === undefined ? undefined : { sinceMs: known.lastMs },
      };
      this.#vms.set(label, vm);
      this.#keyToVm.set(subjects.key, label);
    }
    return vm;
  }

  #add(vm: VmRecord, subject: string, input: EnvelopeInput): number {
    return this.#outbox.add(vm.subjects.key, subject, ({ msgId, keySeq }) =>
      encodeEnvelope(input, msgId, keySeq),
    ).seq;
  }

  #addState(vm: VmRecord, change: FleetStateChange): void {
    if (vm.runState !== change.to) vm.since = change.atMs;
    vm.runState = change.to;
    this.#options.observer?.runState?.(vm.label, change.to);
    const seq = this.#add(vm, vm.subjects.state, {
      host: this.host,
      vm: vm.label,
      kind: "state",
      change,
    });
    vm.stateSeqs.set(seq, change.to);
    this.#touch(vm);
  }

  /** The watch's client of VM `label` is connected: commands and reconciles use it. */
  attach(label: string, client: QmpClient): void {
    this.#vm(label).client = client;
  }

  /** That client is closing. */
  detach(label: string, client: QmpClient): void {
    const vm = this.#vms.get(label);
    if (vm?.client === client) vm.client = undefined;
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
    vm.lastEvent = {
      event: event.event,
      time: rfc3339(event.timestamp.seconds, event.timestamp.microseconds),
    };
    this.#touch(vm);
    this.#options.observer?.event?.(label, event.event);
  }

  /** A run-state change of VM `label` and its cause. */
  state(label: string, change: FleetStateChange): void {
    this.#addState(this.#vm(label), change);
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
      vm.connection = "connected";
      if (typeof notice.address === "string") vm.address = notice.address;
      if (typeof notice.qemu === "string") vm.qemu = notice.qemu;
      if (typeof notice.state === "string") {
        if (vm.runState !== notice.state) vm.since = atMs;
        vm.runState = notice.state;
      }
    } else if (notice.kind === "disconnected") {
      vm.connected = false;
      vm.connection = "disconnected";
    } else if (notice.kind === "reconnected") {
      vm.connected = true;
      vm.connection = "connected";
      if (typeof notice.qemu === "string") vm.qemu = notice.qemu;
    } else if (notice.kind === "waiting") {
      if (typeof notice.address === "string") vm.address = notice.address;
    }
    this.#touch(vm);
    if (notice.kind === "connected" || notice.kind === "reconnected")
      this.#options.observer?.vmConnection?.(label, true);
    else if (notice.kind === "disconnected") this.#options.observer?.vmConnection?.(label, false);
    if (notice.kind === "connected" && vm.runState !== undefined)
      this.#options.observer?.runState?.(label, vm.runState);
    if (notice.kind === "reconnected") this.#gap(vm, notice, atMs);
    else {
      const seq = this.#add(vm, vm.subjects.watch, {
        host: this.host,
        vm: label,
        kind: "watch",
        notice,
        atMs,
      });
      // A `connected` notice tells the stream the run state too.
      if (notice.kind === "connected" && typeof notice.state === "string")
        vm.stateSeqs.set(seq, notice.state);
    }
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

  /**
   * Says what the outbox dropped: on stderr, and by a `dropped` notice on the VM's watch subject.
   * The notice itself is never dropped; while it waits, later drops of the same VM are added to
   * it (so the notices stay few however long the outage): `ranges` lists the per-VM sequence
   * numbers lost, `dropped` how many.
   */
  #dropped(drops: readonly OutboxDrop[]): void {
    this.#publisher.forget(drops.flatMap((d) => d.seqs));
    for (const d of drops) {
      const label = this.#keyToVm.get(d.key) ?? d.key;
      this.#warn(
        `OUTBOX FULL (${d.reason}): dropped ${d.count} unpublished message(s) of ${label} (sequence ${d.firstKeySeq}..${d.lastKeySeq}, written ${new Date(d.sinceMs).toISOString()} to ${new Date(d.untilMs).toISOString()})`,
      );
      this.#options.observer?.dropped?.(label, d.count);
      const vm = this.#vm(label);
      // A dropped state message never reaches the stream: the reconcile corrects for it.
      for (const seq of d.seqs) vm.stateSeqs.delete(seq);
      this.#toReconcile.add(label);
      const earlier = vm.dropNotice;
      const keySeqs = [...(earlier?.keySeqs ?? []), ...d.keySeqs].sort((a, b) => a - b);
      const notice: FleetNotice = {
        kind: "dropped",
        reason: d.reason,
        dropped: keySeqs.length,
        firstSequence: keySeqs[0],
        lastSequence: keySeqs[keySeqs.length - 1],
        ranges: toRanges(keySeqs),
        sinceMs: Math.min(earlier?.sinceMs ?? d.sinceMs, d.sinceMs),
        untilMs: Math.max(earlier?.untilMs ?? d.untilMs, d.untilMs),
      };
      const input: EnvelopeInput = {
        host: this.host,
        vm: label,
        kind: "watch",
        notice,
        atMs: this.#now(),
      };
      if (earlier !== undefined) {
        const grown = this.#outbox.replace(
          earlier.message,
          encodeEnvelope(input, earlier.message.msgId, earlier.message.keySeq),
        );
        if (grown !== undefined && this.#publisher.replace(grown)) {
          vm.dropNotice = {
            ...earlier,
            message: grown,
            keySeqs,
            sinceMs: notice.sinceMs as number,
            untilMs: notice.untilMs as number,
          };
          continue;
        }
      }
      const message = this.#outbox.add(
        vm.subjects.key,
        vm.subjects.watch,
        ({ msgId, keySeq }) => encodeEnvelope(input, msgId, keySeq),
        { pinned: true },
      );
      vm.dropNotice = { message, keySeqs: [...d.keySeqs], sinceMs: d.sinceMs, untilMs: d.untilMs };
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
    if (this.#connected) await this.#writeKv().catch(() => {});
    this.#stop.abort();
    if (this.#kvTimer !== undefined) clearTimeout(this.#kvTimer);
    if (this.#reconcileTimer !== undefined) clearInterval(this.#reconcileTimer);
    this.#publisher.close();
    this.#outbox.flush();
    const nc = this.#nc;
    if (nc !== undefined && !nc.isClosed()) await nc.close().catch(() => {});
    await this.#running;
  }
}

/** `[1,2,3,7,8]` → `[[1,3],[7,8]]`. */
function toRanges(sorted: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const n of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && n === last[1] + 1) last[1] = n;
    else out.push([n, n]);
  }
  return out;
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
