/**
 * Test support for the fleet: the stream's messages read back in stream order, decoded; a sim
 * VM flooding numbered events; polling with a deadline.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { decodeEnvelope, type FleetMessage } from "../../src/fleet/index.js";
import type { SimulatedMachine } from "../../src/sim/index.js";

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

/** Every message of `stream`, in stream order. */
export async function readStream(url: string, stream = "QMP"): Promise<StoredMessage[]> {
  const nc = await connect({ servers: url });
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
