/**
 * Prometheus metrics of watched VMs (prom-client), for the dashboard's `/metrics` and for the
 * fleet agent (`qmpkit agent --metrics ADDR`): {@link createMetrics} builds a registry with the
 * collectors, {@link serveMetrics} serves it on an address.
 *
 * | metric | type | labels | value |
 * |---|---|---|---|
 * | `qmpkit_vm_run_state` | gauge | host, vm, state | 1 for the VM's current run state, 0 for every other (one series per state of QEMU's `RunState`, as OpenMetrics' StateSet) |
 * | `qmpkit_events_total` | counter | host, vm, event | QMP events received since the process started |
 * | `qmpkit_vm_connected` | gauge | host, vm | 1 while the VM's monitor is connected, else 0 |
 * | `qmpkit_watch_gaps_total` | counter | host, vm | reconnections after which QEMU's events in between are lost |
 * | `qmpkit_outbox_depth` | gauge | host | messages in the agent's outbox not yet acknowledged by the stream |
 *
 * Fed one journal entry at a time ({@link QmpkitMetrics.observe}) or by hand.
 *
 * @module
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { RUN_STATES } from "../client/index.js";
import type { JournalEntry } from "../journal/index.js";
import { formatListenAddress, type ListenAddress, parseListenAddress } from "./listen.js";

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** The registry to register with (default: a new one, not prom-client's global). */
  readonly registry?: Registry | undefined;
  /** Also collect Node's process metrics (`process_*`, `nodejs_*`). Default false. */
  readonly processMetrics?: boolean | undefined;
}

/** The collectors of {@link createMetrics}, with the operations that feed them. */
export class QmpkitMetrics {
  readonly registry: Registry;
  readonly #runState: Gauge<"host" | "vm" | "state">;
  readonly #events: Counter<"host" | "vm" | "event">;
  readonly #connected: Gauge<"host" | "vm">;
  readonly #gaps: Counter<"host" | "vm">;
  readonly #outbox: Gauge<"host">;
  /** Per VM, the states it has series for (QEMU's, plus any other it was seen in). */
  readonly #states = new Map<string, Set<string>>();

  constructor(options: MetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    this.#runState = new Gauge({
      name: "qmpkit_vm_run_state",
      help: "1 for the VM's current run state, 0 for the others (one series per state)",
      labelNames: ["host", "vm", "state"],
      registers,
    });
    this.#events = new Counter({
      name: "qmpkit_events_total",
      help: "QMP events received from the VM",
      labelNames: ["host", "vm", "event"],
      registers,
    });
    this.#connected = new Gauge({
      name: "qmpkit_vm_connected",
      help: "1 while the VM's QMP monitor is connected, else 0",
      labelNames: ["host", "vm"],
      registers,
    });
    this.#gaps = new Counter({
      name: "qmpkit_watch_gaps_total",
      help: "Reconnections to the VM after which the events in between are lost",
      labelNames: ["host", "vm"],
      registers,
    });
    this.#outbox = new Gauge({
      name: "qmpkit_outbox_depth",
      help: "Messages in the agent's outbox not yet acknowledged by the stream",
      labelNames: ["host"],
      registers,
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** The VM is in `state` now: its series for `state` is 1, every other 0. */
  runState(host: string, vm: string, state: string): void {
    const key = `${host}\u0000${vm}`;
    let states = this.#states.get(key);
    if (states === undefined) this.#states.set(key, (states = new Set(RUN_STATES)));
    states.add(state);
    for (const s of states) this.#runState.set({ host, vm, state: s }, s === state ? 1 : 0);
  }

  /** Counts `count` events named `event`. */
  event(host: string, vm: string, event: string, count = 1): void {
    this.#events.inc({ host, vm, event }, count);
  }

  /** Whether the VM's monitor is connected. */
  connected(host: string, vm: string, connected: boolean): void {
    this.#connected.set({ host, vm }, connected ? 1 : 0);
  }

  /** Counts a gap in watching the VM (events lost between a disconnect and a reconnect). */
  gap(host: string, vm: string): void {
    this.#gaps.inc({ host, vm });
  }

  /** The agent's outbox depth. */
  outboxDepth(host: string, depth: number): void {
    this.#outbox.set({ host }, depth);
  }

  /**
   * Feeds one journal entry: an event counts, a run-state change sets the state, watch
   * notices set the connection (`connected` also the state read at connect), `reconnected`
   * counts a gap.
   */
  observe(entry: JournalEntry): void {
    const { host, vm } = entry;
    if (entry.kind === "event") {
      this.event(host, vm, entry.event.event);
    } else if (entry.kind === "state") {
      this.runState(host, vm, entry.change.to);
    } else {
      const { notice } = entry;
      if (notice.kind === "connected") {
        this.connected(host, vm, true);
        if (typeof notice.state === "string") this.runState(host, vm, notice.state);
      } else if (notice.kind === "reconnected") {
        this.connected(host, vm, true);
        this.gap(host, vm);
      } else if (notice.kind === "disconnected" || notice.kind === "waiting") {
        this.connected(host, vm, false);
      }
    }
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The exposition's content type. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * Builds the registry and the collectors.
 *
 * @example
 * const metrics = createMetrics();
 * metrics.observe(entry);            // each journal entry, or metrics.runState(host, vm, "paused")
 * const server = await serveMetrics(metrics, { listen: "127.0.0.1:9470" });
 */
export function createMetrics(options: MetricsOptions = {}): QmpkitMetrics {
  return new QmpkitMetrics(options);
}

/** A `/metrics` route for a Hono app (the dashboard mounts it; {@link serveMetrics} serves it alone). */
export function metricsRoute(metrics: QmpkitMetrics): Hono {
  return new Hono().get("/metrics", async (c) =>
    c.body(await metrics.text(), 200, { "content-type": metrics.contentType }),
  );
}

/** A running HTTP server (see {@link listenHttp}). */
export interface HttpServerHandle {
  /** `http://HOST:PORT` (the port chosen by the system when 0 was asked). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `fetch` (a Hono app's) on `listen` (`HOST:PORT`); resolves once listening.
 *
 * @throws when the address cannot be listened on (in use, not local), with the address.
 */
export function listenHttp(
  fetch: (request: Request) => Response | Promise<Response>,
  listen: ListenAddress,
): Promise<HttpServerHandle> {
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch, hostname: listen.host, port: listen.port },
      (info: AddressInfo) => {
        server.off("error", fail);
        const shown = formatListenAddress({ host: listen.host, port: info.port });
        resolve({
          url: `http://${shown}`,
          port: info.port,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
              // Streams (server-sent events) keep connections open: end them too.
              if ("closeAllConnections" in server) server.closeAllConnections();
            }),
        });
      },
    );
    const fail = (error: Error) =>
      reject(
        new Error(`cannot listen on ${formatListenAddress(listen)}: ${error.message}`, {
          cause: error,
        }),
      );
    server.once("error", fail);
  });
}

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  /** `HOST:PORT` (default `127.0.0.1:9470`). */
  readonly listen?: string | undefined;
}

/**
 * Serves `GET /metrics` of `metrics` on an address of its own (the agent's `--metrics ADDR`).
 *
 * @throws UsageError-like `Error` for a malformed address, or when it cannot listen.
 */
export function serveMetrics(
  metrics: QmpkitMetrics,
  options: ServeMetricsOptions = {},
): Promise<HttpServerHandle> {
  const app = metricsRoute(metrics);
  return listenHttp(app.fetch, parseListenAddress(options.listen ?? "127.0.0.1:9470"));
}
