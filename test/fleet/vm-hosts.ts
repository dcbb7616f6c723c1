/**
 * The parent's side of `vm-host.ts` (a child process hosting simulated VMs and their ground
 * truth), and of the agents as `qmpkit agent` processes, for the chaos test and the fleet
 * benchmarks.
 *
 * @module
 */
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import {
  DEFAULT_BUCKET,
  decodeEnvelope,
  type FleetMessage,
  type FleetVmEntry,
} from "../../src/fleet/index.js";
import { spawnCli } from "../cli/support.js";
import { type Agent, agentOf } from "./support.js";
import type { TruthRecord, VmHostReply, VmHostRequest, VmStatus } from "./vm-host.js";

const script = fileURLToPath(new URL("./vm-host.ts", import.meta.url));

/** A process hosting simulated VMs (see `vm-host.ts`). */
export interface VmHost {
  readonly dir: string;
  readonly pid: number | undefined;
  ask(request: VmHostRequest): Promise<Record<string, VmStatus> | undefined>;
  status(): Promise<Record<string, VmStatus>>;
  /** The ground truth of VM `name`, as its file has it. */
  truth(name: string): TruthRecord[];
  /** Closes the VMs and waits for the process to end (SIGKILL after 20 s). */
  close(): Promise<void>;
}

/** Starts a VM host with `vms` listening on `DIR/NAME.qmp`. */
export async function startVmHost(dir: string, vms: readonly string[]): Promise<VmHost> {
  const child: ChildProcess = fork(script, [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let next = 1;
  const waiting = new Map<number, (reply: VmHostReply) => void>();
  child.on("message", (reply: VmHostReply) => {
    waiting.get(reply.id)?.(reply);
    waiting.delete(reply.id);
  });
  child.once("exit", (code, signal) => {
    for (const resolve of waiting.values())
      resolve({ id: 0, ok: false, error: `the VM host exited (${code ?? signal})` });
    waiting.clear();
  });
  const ask = (request: VmHostRequest) =>
    new Promise<Record<string, VmStatus> | undefined>((resolve, reject) => {
      const id = next++;
      waiting.set(id, (reply) =>
        reply.ok ? resolve(reply.status) : reject(new Error(reply.error)),
      );
      child.send({ id, request });
    });
  const host: VmHost = {
    dir,
    get pid() {
      return child.pid;
    },
    ask,
    status: async () => (await ask({ op: "status" }))!,
    truth(name) {
      return readFileSync(join(dir, `${name}.truth.jsonl`), "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as TruthRecord);
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        await ask({ op: "close" }).catch(() => {});
        const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  try {
    await ask({ op: "start", dir, vms });
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return host;
}

/** A `qmpkit agent` process, its stderr kept whole (`stop`: `kill -9` or another signal). */
export type AgentProcess = Agent;

/** Starts `qmpkit agent --nats URL --host HOST --journal DIR/agent.db 'DIR/vms/*.qmp'`. */
export function startAgentProcess(
  url: string,
  host: string,
  journal: string,
  glob: string,
  extra: readonly string[] = [],
): AgentProcess {
  const child = spawnCli([
    "agent",
    "--nats",
    url,
    "--host",
    host,
    "--journal",
    journal,
    "--quiet",
    ...extra,
    glob,
  ]);
  return agentOf(child);
}

/** A long-lived connection for looking at the stream while a test runs. */
export class StreamWatcher {
  readonly #nc: NatsConnection;
  private constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  static async open(url: string): Promise<StreamWatcher> {
    // Retries for ever (the broker is killed on purpose); each question has its own deadline.
    const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    return new StreamWatcher(nc);
  }

  /** Messages per subject under `filter` (e.g. `qmp.h1.>`); empty when there is no stream. */
  async subjectCounts(filter: string, stream = "QMP"): Promise<Map<string, number>> {
    try {
      const jsm = await jetstreamManager(this.#nc, { timeout: 5000 });
      const info = await jsm.streams.info(stream, { subjects_filter: filter });
      return new Map(Object.entries(info.state.subjects ?? {}));
    } catch {
      return new Map();
    }
  }

  /** The last message stored on `subject`, decoded (undefined when none or unreachable). */
  async last(subject: string, stream = "QMP"): Promise<FleetMessage | undefined> {
    try {
      const jsm = await jetstreamManager(this.#nc, { timeout: 5000 });
      const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
      return m === null ? undefined : decodeEnvelope(m.string());
    } catch {
      return undefined;
    }
  }

  /** Every entry of the fleet's KV bucket (`HOST.VM` → its JSON), empty when unreachable. */
  async kvEntries(bucket = DEFAULT_BUCKET): Promise<Map<string, FleetVmEntry>> {
    const out = new Map<string, FleetVmEntry>();
    try {
      const kv = await new Kvm(this.#nc).open(bucket);
      for await (const key of await kv.keys()) {
        const e = await kv.get(key);
        if (e !== null && e.length > 0) out.set(key, e.json<FleetVmEntry>());
      }
    } catch {
      // Not there yet, or the broker is down: the caller polls again.
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#nc.close();
  }
}

/**
 * Resolves once `check` holds for every VM of every host in `hosts` (polled), or rejects after
 * `timeoutMs` (generous: a busy 2-core machine).
 */
export async function untilEveryVm(
  what: string,
  hosts: ReadonlyMap<string, VmHost>,
  check: (host: string, vm: string, status: VmStatus) => boolean,
  timeoutMs = 90_000,
): Promise<void> {
  const start = Date.now();
  for (;;) {
    let all = true;
    for (const [h, host] of hosts) {
      const status = await host.status();
      if (!Object.entries(status).every(([vm, s]) => check(h, vm, s))) all = false;
      if (!all) break;
    }
    if (all) return;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
