/**
 * Test support for the fleet: the stream's messages read back in stream order, decoded; a sim
 * VM flooding numbered events; polling with a deadline.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { decodeEnvelope, type FleetMessage } from "../../src/fleet/index.js";
import type { SimulatedMachine } from "../../src/sim/index.js";
import { spawnCli } from "../cli/support.js";

/** A private directory for one test file, removed by `dispose()`. */
export function tempRoot(name: string): { dir(): string; dispose(): void } {
  const root = mkdtempSync(join(tmpdir(), `qmpkit-${name}-`));
  let n = 0;
  return {
    dir() {
      const d = join(root, `t${++n}`);
      mkdirSync(join(d, "vms"), { recursive: true });
      return d;
    },
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Resolves once `check` holds (polled), or rejects after `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A stored message: its stream sequence, subject, and the decoded envelope. */
export interface StoredMessage {
  readonly streamSeq: number;
  readonly subject: string;
  readonly msgId: string | undefined;
  readonly message: FleetMessage;
}

/** The number of messages in `stream` (0 when it does not exist yet). */
export async function streamCount(url: string, stream = "QMP"): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(stream)).state.messages;
  } catch {
    return 0;
  } finally {
    await nc.close();
  }
}

/** Every message of `stream`, in stream order (`auth`: a user and password, when needed). */
export async function readStream(
  url: string,
  stream = "QMP",
  auth: { user?: string; pass?: string } = {},
): Promise<StoredMessage[]> {
  const nc = await connect({ servers: url, ...auth });
  try {
    const jsm = await jetstreamManager(nc);
    const total = (await jsm.streams.info(stream)).state.messages;
    const out: StoredMessage[] = [];
    if (total === 0) return out;
    const consumer = await jetstream(nc).consumers.get(stream, {
      deliver_policy: DeliverPolicy.All,
    });
    void AckPolicy;
    while (out.length < total) {
      const batch = await consumer.fetch({
        max_messages: Math.min(1000, total - out.length),
        expires: 5000,
      });
      for await (const m of batch) {
        out.push({
          streamSeq: m.seq,
          subject: m.subject,
          msgId: m.headers?.get("Nats-Msg-Id"),
          message: decodeEnvelope(m.string()),
        });
        if (out.length >= total) break;
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** Injects numbered DEVICE_TRAY_MOVED events (`id` n0, n1, …) until stopped. */
export function flood(
  vm: SimulatedMachine,
  perTick = 20,
): { stop(): Promise<number>; readonly count: number } {
  let seq = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      for (let i = 0; i < perTick; i++)
        vm.hostSide.inject("DEVICE_TRAY_MOVED", {
          device: "",
          id: `n${seq++}`,
          "tray-open": seq % 2 === 0,
        });
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return seq;
    },
    get count() {
      return seq;
    },
  };
}

/** The `id`s (n0, n1, …) of the tray events among `messages`, in order. */
export function trayIds(messages: readonly StoredMessage[], vm?: string): string[] {
  return messages
    .filter((m) => m.message.kind === "event" && (vm === undefined || m.message.vm === vm))
    .map((m) => (m.message.kind === "event" ? String(m.message.event.data?.id) : ""));
}

/** An agent process whose stderr is kept whole (`log()`), to wait on and to check after. */
export interface Agent {
  readonly child: ChildProcess;
  log(): string;
  waitFor(...texts: string[]): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `qmpkit agent --nats URL --host HOST --journal DIR/agent.db 'DIR/vms/*.qmp' EXTRA...`.
 */
export function startAgent(
  url: string,
  dir: string,
  host = "h1",
  extra: readonly string[] = [],
): Agent {
  return agentOf(spawnAgent(url, dir, host, extra));
}

/** An agent process's stderr kept whole, a wait on what it says, and a stop by signal. */
export function agentOf(child: ChildProcess): Agent {
  let text = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    text += s;
  });
  child.stdout!.resume();
  child.stdin?.end();
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (status, signal) => resolve({ status, signal })),
  );
  return {
    child,
    log: () => text,
    waitFor: (...texts) =>
      until(`the agent to say ${texts.join(" and ")}`, () => {
        if (child.exitCode !== null) throw new Error(`the agent exited: ${text}`);
        return texts.every((t) => text.includes(t));
      }),
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function spawnAgent(
  url: string,
  dir: string,
  host: string,
  extra: readonly string[],
): ChildProcess {
  return spawnCli([
    "agent",
    "--nats",
    url,
    "--host",
    host,
    "--journal",
    join(dir, "agent.db"),
    join(dir, "vms", "*.qmp"),
    ...extra,
  ]);
}
