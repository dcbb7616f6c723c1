/**
 * Event-ingest benchmark (issue 2 §6): bytes as QEMU prints them (`writeQemuJson` + `\r\n`) to
 * typed event objects handed to a consumer, against the floor of `split("\n")` + `JSON.parse` on
 * the same bytes, measured side by side in one run. Goal: at least 0.8× the floor's events/s.
 *
 * Two settings, rounds alternating so that machine noise hits both sides alike; the ratio is the
 * median of the per-round ratios (each wire run against the floor run next to it):
 *
 * - **socket**: a unix-socket peer writes the whole event stream; the wire side reads it through
 *   `Connection` (qmpkit's client dialect: `JsonStreamDecoder`, reader loop, `onItem`) and the
 *   consumer turns each message into a typed event; the floor reads the same socket with
 *   `setEncoding("utf8")`, splits on `\n` and `JSON.parse`s each line.
 * - **decoder**: the same bytes in the same 64 KiB chunks, no socket: `JsonStreamDecoder.push`
 *   plus the typed-event mapping, against decode + split + `JSON.parse` with carry-over of the
 *   partial last line.
 * - **client** (for information): the whole public path, `QmpClient.on("*")` (run-state tracking
 *   and validation off, history on) after a real greeting and negotiation, timed from the first
 *   event byte written, against the socket floor of the same round.
 *
 * The event mix is what a busy VM sends (`busyVmEvents` in `bench/support/events.ts`).
 *
 * Run: `npx tsx bench/ingest.ts [events] [rounds]`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { pathToFileURL } from "node:url";
import { isJsonObject, type JsonObject, type JsonValue } from "../src/base/json.js";
import { QmpClient } from "../src/client/index.js";
import { Connection, JsonStreamDecoder, type JsonStreamItem } from "../src/wire/index.js";
import { busyVmEvents, median } from "./support/events.js";

/** A typed event as a consumer receives it. */
interface TypedEvent {
  readonly name: string;
  readonly data: JsonObject | undefined;
  readonly seconds: number;
  readonly microseconds: number;
}

/** What one benchmark run measured: median events per second, and the ratio wire / floor. */
export interface IngestResult {
  readonly events: number;
  readonly bytes: number;
  readonly rounds: number;
  readonly socketFloor: number;
  readonly socketWire: number;
  /** Median over rounds of (wire events/s ÷ floor events/s) measured back to back. */
  readonly socketRatio: number;
  readonly decoderFloor: number;
  readonly decoderWire: number;
  readonly decoderRatio: number;
  /** QmpClient.on("*") over a socket, and its ratio to the socket floor of the same round. */
  readonly client: number;
  readonly clientRatio: number;
}

/** The consumer's side: a parsed message to a typed event (what a client's event path does). */
function toEvent(value: JsonValue): TypedEvent | undefined {
  if (!isJsonObject(value)) return undefined;
  const name = value.event;
  const timestamp = value.timestamp;
  if (typeof name !== "string" || !isJsonObject(timestamp)) return undefined;
  const data = value.data;
  return {
    name,
    data: isJsonObject(data) ? data : undefined,
    seconds: Number(timestamp.seconds),
    microseconds: Number(timestamp.microseconds),
  };
}

/** A unix-socket server in a fresh temporary directory; `close` also removes the directory. */
interface UnixServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Listens on `<fresh dir>/<name>`, handing each connection to `onSocket`. */
async function serveUnix(name: string, onSocket: (socket: Socket) => void): Promise<UnixServer> {
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-ingest-"));
  const path = join(dir, name);
  const server = createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    close: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        }),
      ),
  };
}

/** Serves `payload` to every connection on a fresh unix socket. */
function payloadServer(payload: Buffer): Promise<UnixServer> {
  return serveUnix("events.sock", (socket) => socket.end(payload));
}

function openSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Floor over a socket: utf8 text, split on "\n", JSON.parse each line. Returns events/s. */
async function socketFloor(path: string, expected: number): Promise<number> {
  const socket = await openSocket(path);
  const start = performance.now();
  let count = 0;
  let rest = "";
  socket.setEncoding("utf8");
  socket.on("data", (text: string) => {
    const lines = (rest + text).split("\n");
    rest = lines.pop()!;
    for (const line of lines) {
      if (line.length > 1 && JSON.parse(line) !== undefined) count++;
    }
  });
  await new Promise((resolve) => socket.on("close", resolve));
  const seconds = (performance.now() - start) / 1000;
  if (count !== expected) throw new Error(`floor saw ${count} events, expected ${expected}`);
  return count / seconds;
}

/** qmpkit over a socket: Connection (client dialect) → typed events. Returns events/s. */
async function socketWire(path: string, expected: number): Promise<number> {
  const socket = await openSocket(path);
  const start = performance.now();
  let count = 0;
  const connection = new Connection(socket, {
    dialect: "client",
    writer: "compact",
    onItem: (item: JsonStreamItem) => {
      if (item.kind === "value" && toEvent(item.value) !== undefined) count++;
    },
  });
  const cause = await connection.closed;
  const seconds = (performance.now() - start) / 1000;
  if (cause !== undefined) throw cause;
  if (count !== expected) throw new Error(`wire saw ${count} events, expected ${expected}`);
  return count / seconds;
}

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';

/**
 * A QMP peer: greets, answers `qmp_capabilities`, then answers the next command (`query-status`,
 * sent once the consumer is listening) and sends the events right after.
 */
function qmpPeer(payload: Buffer): Promise<UnixServer> {
  return serveUnix("qmp.sock", (socket) => {
    socket.write(GREETING);
    let text = "";
    let answered = 0;
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
        const request = JSON.parse(text.slice(0, nl)) as JsonObject;
        text = text.slice(nl + 1);
        const id = `, "id": ${JSON.stringify(request.id)}`;
        if (answered++ === 0) {
          socket.write(`{"return": {}${id}}\r\n`);
          continue;
        }
        socket.write(
          `{"return": {"status": "running", "singlestep": false, "running": true}${id}}\r\n`,
        );
        payloadStartedAt = performance.now();
        socket.end(payload);
      }
    });
  });
}
/** When `qmpPeer` last began writing the events (one client at a time, so one value). */
let payloadStartedAt = 0;

/** QmpClient over a socket: events to a `client.on("*")` consumer. Returns events/s. */
async function clientIngest(path: string, expected: number): Promise<number> {
  let count = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const client = await QmpClient.connect(`unix:${path}`, { trackRunState: false, validate: false });
  client.on("*", (event) => {
    if (typeof event.event === "string" && ++count === expected) done();
  });
  await client.execute("query-status");
  await all;
  const end = performance.now();
  await client.close();
  return count / ((end - payloadStartedAt) / 1000);
}

function chunksOf(payload: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < payload.length; at += size) chunks.push(payload.subarray(at, at + size));
  return chunks;
}

function decoderFloor(chunks: Buffer[], expected: number): number {
  const start = performance.now();
  // StringDecoder, as setEncoding("utf8") uses: the fastest correct way to decode a stream
  // (a non-fatal TextDecoder is several times slower and would flatter the ratio).
  const utf8 = new StringDecoder("utf8");
  let count = 0;
  let rest = "";
  for (const chunk of chunks) {
    const lines = (rest + utf8.write(chunk)).split("\n");
    rest = lines.pop()!;
    for (const line of lines) if (line.length > 1 && JSON.parse(line) !== undefined) count++;
  }
  const seconds = (performance.now() - start) / 1000;
  if (count !== expected) throw new Error(`floor saw ${count} events, expected ${expected}`);
  return count / seconds;
}

function decoderWire(chunks: Buffer[], expected: number): number {
  const start = performance.now();
  const decoder = new JsonStreamDecoder({ dialect: "client" });
  let count = 0;
  for (const chunk of chunks) {
    for (const item of decoder.push(chunk)) {
      if (item.kind === "value" && toEvent(item.value) !== undefined) count++;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  if (count !== expected) throw new Error(`wire saw ${count} events, expected ${expected}`);
  return count / seconds;
}

/** Runs the benchmark: `events` per round, `rounds` alternating rounds per setting. */
export async function ingestBench(events = 200_000, rounds = 7): Promise<IngestResult> {
  const payload = busyVmEvents(events);
  const chunks = chunksOf(payload, 64 * 1024);
  const server = await payloadServer(payload);
  const peer = await qmpPeer(payload);
  const results = {
    sf: [] as number[],
    sw: [] as number[],
    df: [] as number[],
    dw: [] as number[],
    c: [] as number[],
  };
  try {
    // One warm-up round of each, not counted.
    await socketFloor(server.path, events);
    await socketWire(server.path, events);
    decoderFloor(chunks, events);
    decoderWire(chunks, events);
    await clientIngest(peer.path, events);
    // Every round measures each side once; odd rounds run each group in reverse order, so that
    // no side always goes first.
    const socketGroup: Array<[number[], () => Promise<number>]> = [
      [results.sf, () => socketFloor(server.path, events)],
      [results.sw, () => socketWire(server.path, events)],
      [results.c, () => clientIngest(peer.path, events)],
    ];
    const decoderGroup: Array<[number[], () => number]> = [
      [results.df, () => decoderFloor(chunks, events)],
      [results.dw, () => decoderWire(chunks, events)],
    ];
    for (let r = 0; r < rounds; r++) {
      const inOrder = <T>(group: T[]): T[] => (r % 2 === 0 ? group : [...group].reverse());
      for (const [into, measure] of inOrder(socketGroup)) into.push(await measure());
      for (const [into, measure] of inOrder(decoderGroup)) into.push(measure());
    }
  } finally {
    await server.close();
    await peer.close();
  }
  return {
    events,
    bytes: payload.length,
    rounds,
    socketFloor: median(results.sf),
    socketWire: median(results.sw),
    socketRatio: median(results.sw.map((w, i) => w / results.sf[i]!)),
    decoderFloor: median(results.df),
    decoderWire: median(results.dw),
    decoderRatio: median(results.dw.map((w, i) => w / results.df[i]!)),
    client: median(results.c),
    clientRatio: median(results.c.map((c, i) => c / results.sf[i]!)),
  };
}

/** The report lines, ratios first. */
export function formatIngest(r: IngestResult): string {
  const rate = (n: number) => `${Math.round(n).toLocaleString("en")} events/s`;
  return [
    `ingest: ${r.events.toLocaleString("en")} QEMU events (${(r.bytes / 1024 / 1024).toFixed(1)} MiB), medians of ${r.rounds} rounds (ratio: median of the per-round ratios)`,
    `  socket  (unix socket → Connection → typed events): ratio ${r.socketRatio.toFixed(2)}x floor  [wire ${rate(r.socketWire)}, floor ${rate(r.socketFloor)}]`,
    `  decoder (64 KiB chunks → JsonStreamDecoder → typed events): ratio ${r.decoderRatio.toFixed(2)}x floor  [wire ${rate(r.decoderWire)}, floor ${rate(r.decoderFloor)}]`,
    `  client  (unix socket → QmpClient.on("*"), for information): ratio ${r.clientRatio.toFixed(2)}x the socket floor  [${rate(r.client)}]`,
    '  goal: ratio >= 0.80 (floor = split("\\n") + JSON.parse on the same bytes)',
  ].join("\n");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const events = Number(process.argv[2] ?? 200_000);
  const rounds = Number(process.argv[3] ?? 7);
  console.log(formatIngest(await ingestBench(events, rounds)));
}
