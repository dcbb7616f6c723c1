/**
 * Scale benchmark: N simulated machines in one process, each listening on its own unix socket.
 *
 * For each N (default 1,000 and 10,000) it reports
 * - memory per machine: the growth of V8 heap + external memory, and of RSS, after a full GC,
 *   divided by N (goal: at most 100 KB per machine);
 * - `query-status` throughput across the machines: C negotiated clients spread over the
 *   machines, each sending one request at a time (QMP answers in order), for a few seconds;
 * and, in the same run, the resident memory of one real `qemu-system-x86_64 -machine none -S`
 * for comparison.
 *
 * File descriptors: every machine holds a listening socket, and every client connection costs two
 * descriptors (both ends live in this process). The benchmark raises nothing itself: it reads the
 * limit (`ulimit -n`, 20,000 on the reference machine) and caps the clients so that
 * N + 2·C stays below it; raise `ulimit -n` in the shell to connect to every machine at N = 10,000.
 *
 * Run: `npx tsx bench/scale.ts [N…]`, e.g. `npx tsx bench/scale.ts 1000 10000`.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { SimulatedMachine } from "../src/sim/index.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function settle(): void {
  for (let i = 0; i < 4; i++) gc();
}

function memory(): { heap: number; rss: number } {
  settle();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external + m.arrayBuffers, rss: m.rss };
}

function fdLimit(): number {
  const out = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).stdout.trim();
  const n = Number(out);
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

/** A bare QMP client: one request at a time, counting replies. */
class Driver {
  private buffer = "";
  replies = 0;
  private running = false;
  private constructor(private readonly socket: Socket) {}

  static async open(path: string): Promise<Driver> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    socket.setEncoding("latin1");
    const d = new Driver(socket);
    const lines = d.lines();
    await lines.next(); // greeting
    socket.write('{"execute":"qmp_capabilities"}');
    await lines.next();
    socket.removeAllListeners("data");
    return d;
  }

  private async *lines(): AsyncGenerator<string> {
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    this.socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl = this.buffer.indexOf("\n");
      while (nl >= 0) {
        queue.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
        nl = this.buffer.indexOf("\n");
      }
      wake?.();
    });
    for (;;) {
      while (queue.length > 0) yield queue.shift() as string;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  }

  /** Sends query-status again on every reply until stopped. */
  start(): void {
    this.running = true;
    this.socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl = this.buffer.indexOf("\n");
      while (nl >= 0) {
        this.buffer = this.buffer.slice(nl + 1);
        this.replies++;
        if (this.running) this.socket.write('{"execute":"query-status"}');
        nl = this.buffer.indexOf("\n");
      }
    });
    this.socket.write('{"execute":"query-status"}');
  }

  stop(): void {
    this.running = false;
  }

  close(): void {
    this.socket.destroy();
  }
}

async function realQemuRss(dir: string): Promise<number | undefined> {
  const sock = join(dir, "real.sock");
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(
      "qemu-system-x86_64",
      [
        "-machine",
        "none",
        "-display",
        "none",
        "-nodefaults",
        "-S",
        "-qmp",
        `unix:${sock},server=on,wait=off`,
      ],
      { stdio: "ignore" },
    );
  } catch {
    return undefined;
  }
  const failed = new Promise<undefined>((resolve) => child.once("error", () => resolve(undefined)));
  try {
    const ready = (async () => {
      for (let i = 0; i < 500 && !existsSync(sock); i++)
        await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 300)); // let it settle after start-up
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) * 1024 : undefined;
    })();
    return await Promise.race([ready, failed]);
  } catch {
    return undefined;
  } finally {
    child.kill("SIGKILL");
  }
}

async function run(n: number, dir: string, limit: number): Promise<void> {
  const before = memory();
  const machines: SimulatedMachine[] = [];
  const paths: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const vm = new SimulatedMachine({ startPaused: true, name: `vm${i}` });
    const path = join(dir, `n${n}-${i}.sock`);
    await vm.listen(`unix:${path}`);
    machines.push(vm);
    paths.push(path);
  }
  const startMs = performance.now() - t0;
  const idle = memory();

  const clients = Math.max(1, Math.min(n, Math.floor((limit - n - 200) / 2)));
  const drivers: Driver[] = [];
  for (let i = 0; i < clients; i++) {
    drivers.push(await Driver.open(paths[Math.floor((i * n) / clients)] as string));
  }
  const connected = memory();

  const seconds = 3;
  for (const d of drivers) d.start();
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  for (const d of drivers) d.stop();
  const elapsed = (performance.now() - t1) / 1000;
  const replies = drivers.reduce((sum, d) => sum + d.replies, 0);

  for (const d of drivers) d.close();
  await Promise.all(machines.map((m) => m.close()));

  console.log(`N = ${n.toLocaleString("en")}`);
  console.log(
    `  start-up: ${startMs.toFixed(0)} ms (${((startMs * 1000) / n).toFixed(0)} µs per machine)`,
  );
  console.log(
    `  memory per machine, listening, no client: heap+external ${kb((idle.heap - before.heap) / n)}, RSS ${kb((idle.rss - before.rss) / n)}`,
  );
  console.log(
    `  memory per connected client session: heap+external ${kb((connected.heap - idle.heap) / clients)}, RSS ${kb((connected.rss - idle.rss) / clients)}`,
  );
  console.log(
    `  query-status: ${Math.round(replies / elapsed).toLocaleString("en")} replies/s over ${clients.toLocaleString("en")} clients on ${clients === n ? "every machine" : `${clients.toLocaleString("en")} of the machines (fd limit ${limit})`}`,
  );
}

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((x) => x > 0);
  const ns = sizes.length > 0 ? sizes : [1_000, 10_000];
  const limit = fdLimit();
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-scale-"));
  try {
    const rss = await realQemuRss(dir);
    console.log(
      rss === undefined
        ? "real qemu-system-x86_64 -machine none -S: not available"
        : `real qemu-system-x86_64 -machine none -S: RSS ${kb(rss)} (one process)`,
    );
    for (const n of ns) {
      if (n + 200 > limit) {
        console.log(`N = ${n}: skipped, needs more than ulimit -n = ${limit} descriptors`);
        continue;
      }
      await run(n, dir, limit);
    }
    if (rss !== undefined) {
      console.log(
        `ratio: one real QEMU's RSS holds about ${Math.round(rss / (100 * 1024))} machines at 100 KB`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
