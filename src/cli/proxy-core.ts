/**
 * The logic of `qmpkit proxy`: one upstream QMP connection shared by many clients. No I/O here;
 * `proxy.ts` wires it to sockets.
 *
 * QEMU serves one client per monitor socket (§1.2). The proxy plays QEMU towards each client and
 * a single client towards QEMU:
 *
 * - Each client gets its own greeting (the upstream's version, and `oob` when the upstream
 *   offered it and the proxy enabled it there) and its own negotiation, answered here with
 *   QEMU's exact replies (§1.3): anything but `qmp_capabilities` before it is refused with
 *   `Expecting capabilities negotiation with 'qmp_capabilities'`, a second one with
 *   `Capabilities negotiation is already complete, command ignored`.
 * - Requests are checked as QEMU checks them (§1.4, the server's own `checkRequest`), so a
 *   malformed request is answered here exactly as upstream would answer it; JSON errors come from
 *   the QEMU-dialect decoder with QEMU's text. Every reply keeps its place in the client's order.
 * - Commands go upstream taken round-robin across clients (QEMU's dispatcher,
 *   `monitor_qmp_requests_pop_any_with_lock`), with the id replaced by the proxy's own
 *   (`qmpkit-proxy#N`) and the client's id (or its absence) restored on the reply. Up to
 *   `maxInFlight` (default 8, the in-band queue qmp-spec asks clients to stay within) are sent
 *   without waiting for the replies: QEMU runs them one at a time, in that order, and answers in
 *   that order (§1.7: pipelined requests wait in the socket), so nothing changes but the round
 *   trips saved. With `maxInFlight: 1` a command is sent only once the previous one is answered.
 * - Replies and events are passed on as the text QEMU wrote when the transport has it
 *   (`upstreamMessage(value, text)`): events verbatim, replies with the id spliced in; the
 *   parsed value is used only to route them.
 * - Out-of-band (§1.7): a client that enabled `oob` may send `exec-oob`. As QEMU dispatches such
 *   a request at once, without queueing it (`handle_qmp_command`), the proxy sends it upstream
 *   at once, beside the in-band commands in flight and ahead of queued ones, with its own id,
 *   and hands the reply back as soon as it comes. Upstream QEMU judges it (a command without
 *   `allow-oob` is refused with `The command X does not support OOB`); only
 *   `qmp_capabilities`, which the proxy answers itself, is refused here, with the same text.
 *   QEMU stops reading a client with 8 in-band requests queued, which delays an `exec-oob`
 *   behind them; the proxy does not (qmp-spec asks clients to keep at most 8 in flight).
 * - Upstream events are sent to every negotiated client, as QEMU broadcasts (§1.6): the core is
 *   an `EventSink` (the server layer's seam for writing one built event to every monitor), and
 *   an upstream event becomes one `BuiltEvent` carrying the upstream's own text, so every client
 *   gets the bytes QEMU wrote, timestamp included.
 * - When the upstream goes away, the commands sent (outcome unknown) and the queued ones (not
 *   sent) are answered with a GenericError saying so, and the clients are disconnected: the VM
 *   they talked to is gone. A client that connects while it is away is greeted with the last
 *   greeting and may negotiate, and each command it sends is answered with a GenericError that
 *   says the upstream is not connected, since when, and that the proxy is reconnecting; once the
 *   upstream is back its commands go through again. (Left waiting for a greeting, as on a busy
 *   QEMU socket, the client would time out and suspect another client, which is not the case.)
 *
 * @module
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { checkCapabilitiesArguments, checkCapabilitiesOffered } from "../server/capabilities.js";
import { BuiltEvent, type EventSink } from "../server/event-bus.js";
import { checkRequest, isOobRequest, type KeyOrder } from "../server/request.js";
import { type JsonStreamItem, restoreQdictOrder, writeQemuJson } from "../wire/index.js";

/** What the core needs to reach one client. */
export interface ProxyClientPort {
  /** Writes one message to the client (the transport adds QEMU's `\r\n`). */
  send(message: JsonObject): void;
  /**
   * Writes one message given as QEMU's text, line end included (`{"return": {}}\r\n`). Without
   * it the core passes the message to `send`.
   */
  sendText?: ((text: string) => void) | undefined;
  /** Ends the client's connection after what was written. */
  close(): void;
}

/** What the core needs to reach the upstream. */
export interface ProxyUpstreamPort {
  send(message: JsonObject): void;
}

/** Options of {@link ProxyCore}. */
export interface ProxyCoreOptions {
  readonly upstream: ProxyUpstreamPort;
  /** QEMU's QDict member order, for the request check (§1.1). */
  readonly orderKeys: KeyOrder;
  /** The upstream's name in error texts (`unix:/run/vm1.qmp`). */
  readonly upstreamName: string;
  /** Reports what the proxy does (client connected, upstream lost, …), for a log. */
  readonly log?: ((text: string) => void) | undefined;
  /** The clock for "lost N s ago" (ms). Default `Date.now`. */
  readonly now?: (() => number) | undefined;
  /**
   * In-band commands sent upstream before their replies come back (≥ 1). Default
   * {@link DEFAULT_MAX_IN_FLIGHT}.
   */
  readonly maxInFlight?: number | undefined;
}

/** Default of {@link ProxyCoreOptions.maxInFlight}: QMP's in-band queue length (§1.7). */
export const DEFAULT_MAX_IN_FLIGHT = 8;

type QueueEntry =
  | { readonly kind: "reply"; readonly message: JsonObject | string }
  | {
      readonly kind: "forward";
      readonly request: JsonObject;
      readonly name: string;
      readonly id: JsonValue | undefined;
      readonly hasId: boolean;
      /** Set once sent upstream. */
      upstreamId?: string | undefined;
    };

interface ClientState {
  readonly number: number;
  readonly port: ProxyClientPort;
  phase: "waiting" | "negotiating" | "command" | "closed";
  /** Whether this client enabled `oob` in its negotiation. */
  oob: boolean;
  readonly queue: QueueEntry[];
  /** Input that came before the greeting, read once the client is greeted. */
  readonly early: JsonStreamItem[];
}

type ForwardEntry = Extract<QueueEntry, { kind: "forward" }>;

interface InFlight {
  readonly client: ClientState;
  readonly upstreamId: string;
  readonly entry: ForwardEntry;
}

/** Options of {@link ProxyCore.upstreamConnected}. */
export interface UpstreamSession {
  /** The proxy enabled `oob` upstream: it is offered to clients, and `exec-oob` passes. */
  readonly oob?: boolean | undefined;
}

/** `1.2 s`, `45 s`, `3 min 5 s`. */
function formatSeconds(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** The id prefix the proxy uses upstream; a client's own ids never reach QEMU. */
export const PROXY_ID_PREFIX = "qmpkit-proxy#";

function errorReply(
  id: JsonValue | undefined,
  hasId: boolean,
  errorClass: string,
  desc: string,
): JsonObject {
  const error = { class: errorClass, desc };
  return hasId ? { id: id ?? null, error } : { error };
}

/** A message parsed from QEMU's output, its objects in the order QEMU built them. */
function qemuOrdered(received: JsonObject): JsonObject {
  // Restoring the order QEMU built it in makes the writer print it to each client byte for byte
  // as QEMU printed it (§1.1, same-bucket keys).
  return restoreQdictOrder(received) as JsonObject;
}

/**
 * An upstream reply for the client: its own id (or none) in place of the proxy's. From the
 * upstream's text when there is one of QEMU's form (`{"return": R, "id": "qmpkit-proxy#N"}`,
 * `{"id": "qmpkit-proxy#N", "error": E}`): the id is spliced in as QEMU would print it, R and E
 * are passed on untouched. Otherwise rebuilt from the parsed reply, in QEMU's member order
 * (`return` then `id`, `id` then `error`, §1.1) for the writer to apply.
 */
function clientReply(
  flight: InFlight,
  received: JsonObject,
  text: string | undefined,
): JsonObject | string {
  const { entry, upstreamId } = flight;
  if (text !== undefined) {
    const idText = entry.hasId ? writeQemuJson(entry.id ?? null) : undefined;
    const tail = `, "id": "${upstreamId}"}`;
    if ("return" in received && text.startsWith('{"return": ') && text.endsWith(tail)) {
      const body = text.slice(0, text.length - tail.length);
      return idText === undefined ? `${body}}\r\n` : `${body}, "id": ${idText}}\r\n`;
    }
    const head = `{"id": "${upstreamId}", "error": `;
    if ("error" in received && text.startsWith(head)) {
      const rest = text.slice(head.length);
      return idText === undefined
        ? `{"error": ${rest}\r\n`
        : `{"id": ${idText}, "error": ${rest}\r\n`;
    }
  }
  const message = qemuOrdered(received);
  const reply: JsonObject = {};
  if ("return" in message) {
    reply.return = message.return as JsonValue;
    if (entry.hasId) reply.id = entry.id ?? null;
  } else {
    if (entry.hasId) reply.id = entry.id ?? null;
    reply.error = message.error as JsonValue;
  }
  return reply;
}

/** The proxy's state machine. */
export class ProxyCore implements EventSink {
  private readonly clients = new Map<ProxyClientPort, ClientState>();
  /** The upstream's greeting while it is connected and negotiated. */
  private greeting: JsonObject | undefined;
  /** The last greeting the upstream sent, kept while it is away to greet clients with. */
  private lastGreeting: JsonObject | undefined;
  /** When the upstream went away (ms), while it is away. */
  private lostAt: number | undefined;
  /** In-band requests sent upstream, oldest first: QEMU answers them in this order. */
  private readonly inBand: InFlight[] = [];
  private readonly maxInFlight: number;
  /** `exec-oob` requests sent upstream and not yet answered, by the proxy's id. */
  private readonly oobInFlight = new Map<string, InFlight>();
  private nextId = 1;
  private clientCount = 0;
  /** Round-robin position: the number of the client served last. */
  private lastServed = 0;

  constructor(private readonly options: ProxyCoreOptions) {
    this.maxInFlight = Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
  }

  /** Whether the upstream is negotiated and commands can go out. */
  get upstreamReady(): boolean {
    return this.greeting !== undefined;
  }

  /** The number of connected clients. */
  get clientsConnected(): number {
    return this.clients.size;
  }

  private log(text: string): void {
    this.options.log?.(text);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** A client connected: it is greeted now, or as soon as the upstream is ready. */
  addClient(port: ProxyClientPort): number {
    const state: ClientState = {
      number: ++this.clientCount,
      port,
      phase: "waiting",
      oob: false,
      queue: [],
      early: [],
    };
    this.clients.set(port, state);
    this.log(`client ${state.number} connected`);
    if (this.greeting ?? this.lastGreeting) this.greet(state);
    return state.number;
  }

  private greet(client: ClientState): void {
    client.phase = "negotiating";
    client.oob = false;
    client.port.send((this.greeting ?? this.lastGreeting)!);
    // What the client wrote before its greeting is read now, as QEMU reads a socket only once
    // it serves it; each item sees the negotiation the ones before it made.
    for (const item of client.early.splice(0)) this.clientItem(client.port, item);
  }

  /**
   * A client went away: its queued commands are dropped; those already sent upstream still run
   * there (QEMU cannot take them back), and their replies are discarded.
   */
  removeClient(port: ProxyClientPort): void {
    const client = this.clients.get(port);
    if (!client) return;
    client.phase = "closed";
    client.queue.length = 0;
    client.early.length = 0;
    this.clients.delete(port);
    this.log(`client ${client.number} disconnected`);
  }

  /**
   * One decoded item from a client (runs in the client's reader loop; never waits). Until the
   * client is greeted its input waits, as QEMU does not read a socket it has not accepted.
   */
  clientItem(port: ProxyClientPort, item: JsonStreamItem): void {
    const client = this.clients.get(port);
    if (!client || client.phase === "closed") return;
    if (client.phase === "waiting") {
      client.early.push(item);
      return;
    }
    const entry = this.classify(client, item);
    // `exec-oob` skips the queue, OOB enabled or not (§1.7): its error can overtake in-band
    // replies, and with OOB enabled the command itself goes upstream at once.
    if (item.kind === "value" && isOobRequest(item.value)) {
      if (entry.kind === "reply") {
        this.write(client, entry.message);
        return;
      }
      if (client.oob && client.phase === "command") {
        this.forwardOob(client, entry);
        return;
      }
    }
    client.queue.push(entry);
    this.pump();
  }

  /** Sends an `exec-oob` request upstream now, or answers it here (`qmp_capabilities`). */
  private forwardOob(client: ClientState, entry: ForwardEntry): void {
    if (entry.name === "qmp_capabilities") {
      // The proxy answers qmp_capabilities itself; QEMU registers it without allow-oob.
      client.port.send(
        errorReply(
          entry.id,
          entry.hasId,
          "GenericError",
          "The command qmp_capabilities does not support OOB",
        ),
      );
      return;
    }
    const upstreamId = `${PROXY_ID_PREFIX}${this.nextId++}`;
    this.oobInFlight.set(upstreamId, { client, upstreamId, entry });
    this.options.upstream.send({ ...entry.request, id: upstreamId });
  }

  /**
   * Decides what a request becomes, in the order QEMU checks (§1.3, §1.4): a JSON error, a
   * request-envelope error, negotiation (answered here), or a command to forward. The
   * negotiation phase is judged when the request reaches the head of the queue, as in QEMU,
   * because `qmp_capabilities` may still be queued ahead of it.
   */
  private classify(client: ClientState, item: JsonStreamItem): QueueEntry {
    if (item.kind === "error") {
      return {
        kind: "reply",
        message: { error: { class: "GenericError", desc: item.desc } },
      };
    }
    const value = item.value;
    const hasId = isJsonObject(value) && Object.hasOwn(value, "id");
    const checked = checkRequest(value, {
      oobEnabled: client.oob,
      orderKeys: this.options.orderKeys,
    });
    if (checked.kind === "error") {
      return {
        kind: "reply",
        message: errorReply(checked.id, hasId, "GenericError", checked.desc),
      };
    }
    return {
      kind: "forward",
      request: value as JsonObject,
      name: checked.name,
      id: checked.id,
      hasId,
    };
  }

  /** Answers negotiation-phase and `qmp_capabilities` requests; returns undefined to forward. */
  private answerLocally(
    client: ClientState,
    entry: Extract<QueueEntry, { kind: "forward" }>,
  ): JsonObject | undefined {
    const { id, hasId } = entry;
    if (client.phase === "negotiating") {
      if (entry.name !== "qmp_capabilities") {
        return errorReply(
          id,
          hasId,
          "CommandNotFound",
          "Expecting capabilities negotiation with 'qmp_capabilities'",
        );
      }
      const args = isJsonObject(entry.request.arguments) ? entry.request.arguments : {};
      const checked = checkCapabilitiesArguments(args);
      if ("desc" in checked) return errorReply(id, hasId, "GenericError", checked.desc);
      const offered = this.offeredCapabilities();
      const missing = checkCapabilitiesOffered(checked.enable, offered);
      if (missing !== undefined) return errorReply(id, hasId, "GenericError", missing);
      client.phase = "command";
      client.oob = checked.enable.includes("oob");
      this.log(`client ${client.number} negotiated${client.oob ? " (oob)" : ""}`);
      return hasId ? { return: {}, id: id ?? null } : { return: {} };
    }
    if (entry.name === "qmp_capabilities") {
      return errorReply(
        id,
        hasId,
        "CommandNotFound",
        "Capabilities negotiation is already complete, command ignored",
      );
    }
    return undefined;
  }

  private offeredCapabilities(): string[] {
    const qmp = (this.greeting ?? this.lastGreeting)?.QMP;
    const caps = isJsonObject(qmp) ? qmp.capabilities : undefined;
    return Array.isArray(caps) ? caps.filter((c): c is string => typeof c === "string") : [];
  }

  /**
   * Serves queues: local answers at once in each client's order; in-band commands upstream,
   * round-robin across clients, while fewer than `maxInFlight` await their replies.
   */
  private pump(): void {
    if (!this.greeting) this.refuseWhileAway();
    for (const client of this.clients.values()) this.drainLocal(client);
    if (!this.greeting) return;
    while (this.inBand.length < this.maxInFlight) {
      if (!this.sendNext(true) && !this.sendNext(false)) return;
    }
  }

  /**
   * Sends the next command of the first client, after the one served last (`after`) or from
   * the first, that has one. Round-robin: the clients map keeps the order they came in, which
   * is the order of their numbers.
   */
  private sendNext(after: boolean): boolean {
    for (const client of this.clients.values()) {
      if (after !== client.number > this.lastServed) continue;
      const entry = this.nextToSend(client);
      if (!entry) continue;
      const upstreamId = `${PROXY_ID_PREFIX}${this.nextId++}`;
      entry.upstreamId = upstreamId;
      this.inBand.push({ client, upstreamId, entry });
      this.lastServed = client.number;
      this.options.upstream.send({ ...entry.request, id: upstreamId });
      return true;
    }
    return false;
  }

  /**
   * A client's next command to send upstream: its first one not yet sent, in order. Only a
   * negotiated client's, and never `qmp_capabilities`, which is answered here when its turn in
   * the client's order comes.
   */
  private nextToSend(client: ClientState): ForwardEntry | undefined {
    if (client.phase !== "command") return undefined;
    for (const entry of client.queue) {
      if (entry.kind !== "forward" || entry.upstreamId !== undefined) continue;
      if (entry.name !== "qmp_capabilities") return entry;
    }
    return undefined;
  }

  /**
   * While the upstream is away, a negotiated client's commands are answered at once with an
   * error that says so (they are not kept for later: the client should know now).
   */
  private refuseWhileAway(): void {
    const away =
      this.lostAt === undefined ? "" : `, lost ${formatSeconds(this.now() - this.lostAt)} ago`;
    for (const client of this.clients.values()) {
      if (client.phase !== "command") continue;
      client.queue.forEach((entry, i) => {
        if (entry.kind !== "forward" || entry.upstreamId !== undefined) return;
        if (entry.name === "qmp_capabilities") return;
        client.queue[i] = {
          kind: "reply",
          message: errorReply(
            entry.id,
            entry.hasId,
            "GenericError",
            `qmpkit proxy: QEMU at ${this.options.upstreamName} is not connected${away}; the proxy is reconnecting; '${entry.name}' was not sent`,
          ),
        };
      });
    }
  }

  /** Writes every reply at the head of a client's queue that needs no upstream. */
  private drainLocal(client: ClientState): void {
    if (client.phase === "waiting" || client.phase === "closed") return;
    while (client.queue.length > 0) {
      const head = client.queue[0]!;
      if (head.kind === "reply") {
        client.queue.shift();
        this.write(client, head.message);
        continue;
      }
      // Sent upstream: the reply takes its place in the queue when it comes.
      if (head.upstreamId !== undefined) return;
      const local = this.answerLocally(client, head);
      if (local === undefined) return;
      client.queue.shift();
      client.port.send(local);
    }
  }

  /** Writes a message, given as an object or as QEMU's text (line end included). */
  private write(client: ClientState, message: JsonObject | string): void {
    if (typeof message !== "string") client.port.send(message);
    else if (client.port.sendText) client.port.sendText(message);
    else client.port.send(JSON.parse(message) as JsonObject);
  }

  /**
   * The upstream greeted and accepted `qmp_capabilities`: clients are greeted with its version,
   * and offered `oob` when it was enabled upstream (`session.oob`).
   */
  upstreamConnected(upstreamGreeting: JsonObject, session: UpstreamSession = {}): void {
    const greeting = restoreQdictOrder(upstreamGreeting) as JsonObject;
    const qmp = isJsonObject(greeting.QMP) ? greeting.QMP : {};
    // OOB towards clients only when it is on upstream: an exec-oob must reach QEMU as one.
    this.greeting = {
      QMP: { version: qmp.version ?? {}, capabilities: session.oob === true ? ["oob"] : [] },
    };
    this.log(
      this.lostAt === undefined
        ? `upstream ${this.options.upstreamName} connected`
        : `upstream ${this.options.upstreamName} is back after ${formatSeconds(this.now() - this.lostAt)}`,
    );
    this.lastGreeting = this.greeting;
    this.lostAt = undefined;
    for (const client of this.clients.values()) if (client.phase === "waiting") this.greet(client);
    this.pump();
  }

  /**
   * One message from the upstream: a reply to route back, or an event to fan out. `text`, when
   * the transport has it, is the message exactly as the upstream wrote it, on one line without
   * its line end: it is passed on as is (events) or with the client's id spliced in (replies),
   * instead of printing the parsed value again.
   */
  upstreamMessage(received: JsonValue, text?: string | undefined): void {
    if (!isJsonObject(received)) return;
    if (typeof received.event === "string") {
      // Passed on as QEMU printed it when the transport kept the text (§1.6), else printed in
      // QEMU's member order.
      this.deliverEvent(
        text !== undefined
          ? new BuiltEvent(received, `${text}\r\n`)
          : new BuiltEvent(qemuOrdered(received)),
      );
      return;
    }
    if (!("return" in received) && !("error" in received)) return;
    if (this.oobInFlight.size > 0 && typeof received.id === "string") {
      const oob = this.oobInFlight.get(received.id);
      if (oob) {
        // An out-of-band reply goes back at once, whatever is queued in band (§1.7).
        this.oobInFlight.delete(received.id);
        if (oob.client.phase !== "closed") this.write(oob.client, clientReply(oob, received, text));
        return;
      }
    }
    const flight = this.inBand[0];
    // QEMU answers in-band requests in order: this is the reply to the oldest one. An id-less
    // error can only be its answer (a parse error of what the proxy wrote); a reply with another
    // id is not ours and is dropped (qmp-spec 2.4).
    if (!flight || (Object.hasOwn(received, "id") && received.id !== flight.upstreamId)) {
      this.log(`dropped an upstream reply that matches no request: ${JSON.stringify(received)}`);
      return;
    }
    this.inBand.shift();
    const { client, entry } = flight;
    const at = client.phase === "closed" ? -1 : client.queue.indexOf(entry);
    if (at >= 0) {
      // The reply takes the request's place, and goes out once everything before it has.
      client.queue[at] = { kind: "reply", message: clientReply(flight, received, text) };
    }
    this.pump();
  }

  /**
   * Writes one event to every client that has finished negotiation (§1.3), the same bytes to
   * each: an upstream's event, or one raised on an `EventBus` the core is attached to.
   */
  deliverEvent(event: BuiltEvent): void {
    for (const client of this.clients.values()) {
      if (client.phase !== "command") continue;
      if (client.port.sendText) client.port.sendText(event.text(false));
      else client.port.send(event.message);
    }
  }

  /**
   * The upstream connection ended (`reason` says how). Answers the commands sent (their
   * outcome is unknown) and every queued one (not sent), then disconnects every client.
   */
  upstreamLost(reason: string): void {
    const was = this.greeting !== undefined;
    this.greeting = undefined;
    if (was) this.lostAt = this.now();
    this.inBand.length = 0;
    const oobFlights = [...this.oobInFlight.values()];
    this.oobInFlight.clear();
    const name = this.options.upstreamName;
    const unanswered = (entry: ForwardEntry) =>
      `qmpkit proxy: lost the connection to ${name} (${reason}) before '${entry.name}' was answered; it may or may not have run`;
    for (const client of [...this.clients.values()]) {
      // A client not yet greeted keeps waiting for the next upstream, its input untouched.
      if (client.phase === "closed" || client.phase === "waiting") continue;
      // Out-of-band requests went upstream ahead of anything queued: their answers come first.
      for (const { entry } of oobFlights.filter((f) => f.client === client)) {
        client.port.send(errorReply(entry.id, entry.hasId, "GenericError", unanswered(entry)));
      }
      for (const entry of client.queue) {
        if (entry.kind === "reply") {
          this.write(client, entry.message);
          continue;
        }
        const desc =
          entry.upstreamId !== undefined
            ? unanswered(entry)
            : `qmpkit proxy: lost the connection to ${name} (${reason}); '${entry.name}' was not sent`;
        client.port.send(errorReply(entry.id, entry.hasId, "GenericError", desc));
      }
      client.queue.length = 0;
      client.phase = "closed";
      this.clients.delete(client.port);
      client.port.close();
    }
    if (was) this.log(`upstream ${name} lost: ${reason}`);
  }

  /** Disconnects every client (the proxy is shutting down). */
  closeAll(): void {
    for (const client of [...this.clients.values()]) {
      client.phase = "closed";
      this.clients.delete(client.port);
      client.port.close();
    }
  }
}
