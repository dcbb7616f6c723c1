/**
 * Round-trip benchmark (issue 2 §6): `query-status` from QmpClient to QmpServer over a unix
 * socket, against a raw socket ping-pong of the same bytes over a unix socket, measured side by
 * side in one run. Goal: the QMP round trip costs at most 1.5× the raw one.
 *
 * Both sides of both runs live in this process, so each round trip pays for both ends: the raw
 * run writes a fixed request and answers it with the fixed reply QEMU would print (no parsing at
 * all: the floor), the QMP run goes through the whole stack (client id routing, JSON framing,
 * the server's request checks, dispatcher, QEMU-order writer). Two more configurations split
 * the cost: QmpClient against a raw peer that echoes the id into a fixed reply (the client's
 * share) and a raw client against QmpServer (the server's share). A fifth, for information, is
 * the least any JSON protocol costs here: a client and a server that only `JSON.stringify` and
 * `JSON.parse` (no framing rules, checks, QEMU output form or command routing): the "JSON floor".
 * Rounds alternate between all five (in reverse order on odd rounds) so that machine noise hits
 * them alike; ratios are taken from the medians.
 *
 * Each round also records the process's CPU time (user + system, `process.cpuUsage`): both ends
 * live in this one process and a ping-pong never overlaps them, so on a quiet machine CPU time
 * and wall time per round trip are the same, but when other processes compete for the cores, the
 * wall time also counts the waits for a core, which come and go from round to round, while the
 * CPU time does not. The goal is stated on wall time; the CPU ratio beside it is the steadier
 * figure to compare two builds with on a busy machine.
 *
 * Run: `npx tsx bench/roundtrip.ts [round-trips-per-round] [rounds] [--dist[=DIR]]` (default
 * 1000 × 21: shorter rounds, more of them, so that a burst of load elsewhere spoils few rounds
 * and the medians hold; 7 rounds of 2000 swung by ±0.1 on a busy machine); with
 * `--dist` the library is loaded from a compiled build (`npm run build` first) instead of `src/`.
 *
 * Under tsx, esbuild's `keepNames` wraps every named function created at run time in a
 * `__name()` call (an `Object.defineProperty`), so code that makes named closures per request
 * pays for it there and not in a build: the hot paths make none, and both give the same figures
 * within noise. On a busy machine the absolute times swing widely; the ratios, measured in
 * alternating rounds, less so (±0.05 from run to run on a shared 2-core machine).
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type * as ClientModule from "../src/client/index.js";
import type * as ServerModule from "../src/server/index.js";

/**
 * Where QmpClient and QmpServer come from: the TypeScript sources (as run under tsx), or with
 * `--dist[=DIR]` a compiled build (`npm run build` makes `dist/`; any `tsc` output of `src/`
 * with the same layout will do), which shows what the library costs once built.
 */
async function loadLibrary(dist: string | undefined) {
  const base =
    dist === undefined ? new URL("../src/", import.meta.url) : pathToFileURL(`${resolve(dist)}/`);
  const client = (await import(new URL("client/index.js", base).href)) as typeof ClientModule;
  const server = (await import(new URL("server/index.js", base).href)) as typeof ServerModule;
  return { QmpClient: client.QmpClient, QmpServer: server.QmpServer };
}

/** What one benchmark run measured (median microseconds per round trip). */
export interface RoundTripResult {
  /** Raw client ↔ raw peer: fixed bytes both ways, no parsing at all (the floor). */
  readonly rawMicros: number;
  /** QmpClient ↔ QmpServer, `query-status`: the figure the goal is about. */
  readonly qmpMicros: number;
  /** `qmpMicros / rawMicros` (goal ≤ 1.5). */
  readonly ratio: number;
  /** Median CPU time (user + system) per round trip of the raw floor and of QmpClient → QmpServer. */
  readonly rawCpuMicros: number;
  readonly qmpCpuMicros: number;
  /** `qmpCpuMicros / rawCpuMicros`: the same comparison in CPU time, steadier on a busy machine. */
  readonly cpuRatio: number;
  /** QmpClient ↔ a raw peer that only echoes the id into a fixed reply: the client's share. */
  readonly clientMicros: number;
  /** A raw client ↔ QmpServer: the server's share. */
  readonly serverMicros: number;
  /** A client and a server that only `JSON.stringify`/`JSON.parse` (for information). */
  readonly jsonMicros: number;
  /** Round trips per round, and measured rounds per configuration. */
  readonly perRound: number;
  readonly rounds: number;
}

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';
const STATUS_REPLY_HEAD =
  '{"return": {"status": "running", "singlestep": false, "running": true}, "id": ';

/**
 * A raw unix-socket peer. `echoId: false` answers every request line with one fixed reply (the
 * floor); `echoId: true` greets, and answers each line with the same reply carrying the line's
 * `id` (found by a regular expression, no JSON parsing), so that a QmpClient can talk to it.
 */
async function rawPeer(path: string, echoId: boolean): Promise<Server> {
  const fixed = `${STATUS_REPLY_HEAD}"__qmpkit#1"}\r\n`;
  const server = createServer((socket) => {
    if (echoId) socket.write(GREETING);
    socket.on("data", (chunk: Buffer) => {
      if (!echoId) {
        for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1))
          socket.write(fixed);
        return;
      }
      for (const m of chunk.toString("latin1").matchAll(/"id":("[^"]*")/g)) {
        socket.write(`${STATUS_REPLY_HEAD}${m[1]}}\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

/**
 * The JSON floor's server: parses each request line with `JSON.parse` and answers with
 * `JSON.stringify` of the reply (compact, not QEMU's form), after a greeting.
 */
async function jsonPeer(path: string): Promise<Server> {
  const server = createServer((socket) => {
    socket.write(GREETING);
    let tail = "";
    socket.on("data", (chunk: Buffer) => {
      const lines = (tail + chunk.toString()).split("\n");
      tail = lines.pop()!;
      for (const line of lines) {
        const request = JSON.parse(line) as { execute: string; id: unknown };
        const value =
          request.execute === "query-status"
            ? { status: "running", singlestep: false, running: true }
            : {};
        socket.write(`${JSON.stringify({ return: value, id: request.id })}\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

/** The JSON floor's client: ids in a Map, one promise per command, `JSON.parse` per reply. */
async function jsonClient(path: string) {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once("error", reject);
  });
  const pending = new Map<string, (value: unknown) => void>();
  let greeted!: () => void;
  const greeting = new Promise<void>((resolve) => (greeted = resolve));
  let tail = "";
  socket.on("data", (chunk: Buffer) => {
    const lines = (tail + chunk.toString()).split("\n");
    tail = lines.pop()!;
    for (const line of lines) {
      const message = JSON.parse(line) as { QMP?: unknown; return?: unknown; id?: string };
      if (message.QMP !== undefined) greeted();
      else {
        const resolve = pending.get(message.id!);
        pending.delete(message.id!);
        resolve?.(message.return);
      }
    }
  });
  await greeting;
  let next = 0;
  const execute = (name: string) =>
    new Promise<unknown>((resolve) => {
      const id = `__qmpkit#${++next}`;
      pending.set(id, resolve);
      socket.write(`${JSON.stringify({ execute: name, id })}\n`);
    });
  await execute("qmp_capabilities");
  return { roundTrip: () => execute("query-status"), close: () => socket.destroy() };
}

/** A raw client: writes one request line and waits for one reply line, no parsing. */
async function rawClient(path: string, greeted: boolean) {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once("error", reject);
  });
  let lines = 0;
  let wake: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) lines++;
    wake?.();
  });
  const until = async (n: number) => {
    while (lines < n) await new Promise<void>((resolve) => (wake = resolve));
  };
  if (greeted) {
    await until(1);
    socket.write('{"execute":"qmp_capabilities","id":"__qmpkit#0"}\n');
    await until(2);
  }
  return {
    roundTrip: async () => {
      const target = lines + 1;
      socket.write('{"execute":"query-status","id":"__qmpkit#1"}\n');
      await until(target);
    },
    close: () => socket.destroy(),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs the five configurations in alternating rounds (after one warm-up round each) and returns
 * their medians.
 */
export async function roundTripBench(
  perRound = 1_000,
  rounds = 21,
  dist?: string | undefined,
): Promise<RoundTripResult> {
  const { QmpClient, QmpServer } = await loadLibrary(dist);
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-bench-"));
  const servers: Server[] = [];
  const qmpServers: ServerModule.QmpServer[] = [];
  const clients: ClientModule.QmpClient[] = [];
  const raws: Array<{ close(): void }> = [];
  try {
    const startQmpServer = async (name: string) => {
      const server = new QmpServer();
      server.command("query-status", () => ({
        status: "running" as const,
        singlestep: false,
        running: true,
      }));
      await server.listen(`unix:${join(dir, name)}`);
      qmpServers.push(server);
      return `unix:${join(dir, name)}`;
    };
    const connectClient = async (target: string) => {
      const client = await QmpClient.connect(target, { trackRunState: false });
      clients.push(client);
      return () => client.execute("query-status");
    };
    const connectRaw = async (path: string, greeted: boolean) => {
      const raw = await rawClient(path, greeted);
      raws.push(raw);
      return raw.roundTrip;
    };
    servers.push(await rawPeer(join(dir, "floor.sock"), false));
    servers.push(await rawPeer(join(dir, "echo.sock"), true));
    servers.push(await jsonPeer(join(dir, "json.sock")));
    const json = await jsonClient(join(dir, "json.sock"));
    raws.push(json);
    const configs = {
      raw: await connectRaw(join(dir, "floor.sock"), false),
      qmp: await connectClient(await startQmpServer("qmp.sock")),
      client: await connectClient(`unix:${join(dir, "echo.sock")}`),
      server: await connectRaw((await startQmpServer("server.sock")).slice("unix:".length), true),
      json: json.roundTrip,
    };
    const times: Record<keyof typeof configs, number[]> = {
      raw: [],
      qmp: [],
      client: [],
      server: [],
      json: [],
    };
    const cpu: Record<keyof typeof configs, number[]> = {
      raw: [],
      qmp: [],
      client: [],
      server: [],
      json: [],
    };
    const entries = Object.entries(configs) as Array<
      [keyof typeof configs, () => Promise<unknown>]
    >;
    for (let round = 0; round <= rounds; round++) {
      for (const [name, roundTrip] of round % 2 === 0 ? entries : [...entries].reverse()) {
        const start = process.hrtime.bigint();
        const cpuStart = process.cpuUsage();
        for (let i = 0; i < perRound; i++) await roundTrip();
        const used = process.cpuUsage(cpuStart);
        const micros = Number(process.hrtime.bigint() - start) / 1_000 / perRound;
        if (round > 0) {
          // round 0 warms up
          times[name].push(micros);
          cpu[name].push((used.user + used.system) / perRound);
        }
      }
    }
    const rawMicros = median(times.raw);
    const qmpMicros = median(times.qmp);
    const rawCpuMicros = median(cpu.raw);
    const qmpCpuMicros = median(cpu.qmp);
    return {
      rawMicros,
      qmpMicros,
      ratio: qmpMicros / rawMicros,
      rawCpuMicros,
      qmpCpuMicros,
      cpuRatio: qmpCpuMicros / rawCpuMicros,
      clientMicros: median(times.client),
      serverMicros: median(times.server),
      jsonMicros: median(times.json),
      perRound,
      rounds,
    };
  } finally {
    for (const client of clients) await client.close();
    for (const raw of raws) raw.close();
    for (const server of qmpServers) await server.close();
    for (const server of servers)
      await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Prints one result in the bench suite's style. */
export function formatRoundTrip(result: RoundTripResult): string {
  const line = (label: string, us: number) =>
    `  ${label.padEnd(40)} ${us.toFixed(1).padStart(8)} µs/round trip  ${Math.round(1e6 / us)
      .toString()
      .padStart(7)} /s`;
  return [
    `round trip: query-status over a unix socket (${result.rounds} rounds × ${result.perRound}, medians)`,
    line("raw socket ping-pong (floor)", result.rawMicros),
    line("QmpClient → QmpServer", result.qmpMicros),
    line("  client share: QmpClient → raw peer", result.clientMicros),
    line("  server share: raw client → QmpServer", result.serverMicros),
    `${line("JSON floor: JSON.stringify/parse pair", result.jsonMicros)}  (${(result.jsonMicros / result.rawMicros).toFixed(2)}×, for information)`,
    `  ratio ${result.ratio.toFixed(2)}× the raw round trip (goal ≤ 1.50×) ${result.ratio <= 1.5 ? "MET" : "NOT MET"}`,
    `  in CPU time: ${result.qmpCpuMicros.toFixed(1)} against ${result.rawCpuMicros.toFixed(1)} µs per round trip, ${result.cpuRatio.toFixed(2)}× (steadier than wall time when the machine is busy)`,
  ].join("\n");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const distArg = args.find((a) => a === "--dist" || a.startsWith("--dist="));
  const dist = distArg === undefined ? undefined : distArg.slice("--dist=".length) || "dist";
  const [perRound = 1_000, rounds = 21] = args.filter((a) => !a.startsWith("--")).map(Number);
  console.log(`library: ${dist === undefined ? "src/ (TypeScript)" : `${dist} (compiled)`}`);
  console.log(formatRoundTrip(await roundTripBench(perRound, rounds, dist)));
}
