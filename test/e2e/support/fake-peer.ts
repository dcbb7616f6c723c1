/**
 * A scripted QMP peer for client tests: it sits on the other end of any Duplex (an in-memory pair
 * or an accepted socket), decodes what the client sends with the wire layer's QEMU-dialect
 * decoder, and writes whatever bytes the test tells it to. Nothing in it answers by itself, so a
 * test states every byte of the conversation.
 */
import type { Duplex } from "node:stream";
import type { JsonObject } from "../../../src/base/json.js";
import { JsonStreamDecoder, writeQemuJson } from "../../../src/wire/index.js";

/** QEMU 7.2.22's greeting as Debian ships it (§1.2, observed). */
export const GREETING_7_2 = {
  QMP: {
    version: {
      qemu: { micro: 22, minor: 2, major: 7 },
      package: "Debian 1:7.2+dfsg-7+deb12u18+b3",
    },
    capabilities: ["oob"],
  },
};

export class FakePeer {
  readonly received: JsonObject[] = [];
  private readonly decoder = new JsonStreamDecoder({ dialect: "qemu" });
  private waiters: Array<() => void> = [];
  private ended = false;

  constructor(readonly stream: Duplex) {
    stream.on("data", (chunk: Buffer) => {
      for (const item of this.decoder.push(chunk)) {
        if (item.kind === "value") this.received.push(item.value as JsonObject);
      }
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    stream.on("end", end);
    stream.on("close", end);
    stream.on("error", end);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private cursor = 0;

  /** The next message the client sent (waits up to `timeoutMs`). */
  async next(timeoutMs = 2_000): Promise<JsonObject> {
    const deadline = Date.now() + timeoutMs;
    while (this.cursor >= this.received.length) {
      if (this.ended) throw new Error("fake peer: the client hung up");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("fake peer: no message from the client in time");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received[this.cursor++]!;
  }

  /** Resolves once the client's side of the stream has ended. */
  async hungUp(timeoutMs = 2_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.ended;
  }

  /** Writes raw text. */
  write(text: string | Uint8Array): void {
    this.stream.write(text);
  }

  /** Writes one message in QEMU's exact form, with `\r\n`. */
  send(message: unknown): void {
    this.stream.write(`${writeQemuJson(message as JsonObject)}\r\n`);
  }

  /** Sends an event with a timestamp. */
  event(name: string, data?: unknown): void {
    const message: Record<string, unknown> = {
      timestamp: { seconds: 1_700_000_000, microseconds: 1 },
      event: name,
    };
    if (data !== undefined) message.data = data;
    this.send(message);
  }

  /** Sends `{"return": value, "id": id}`. */
  reply(request: JsonObject, value: unknown = {}): void {
    this.send({ return: value, id: request.id });
  }

  /** Sends an error reply for `request`. */
  fail(request: JsonObject, errorClass: string, desc: string): void {
    this.send({ id: request.id, error: { class: errorClass, desc } });
  }

  /** Greets, answers `qmp_capabilities`, and (by default) the first `query-status`. */
  async handshake(options: { status?: string | false; greeting?: unknown } = {}): Promise<void> {
    this.send(options.greeting ?? GREETING_7_2);
    const caps = await this.next();
    if (caps.execute !== "qmp_capabilities") {
      throw new Error(`fake peer: expected qmp_capabilities, got ${JSON.stringify(caps)}`);
    }
    this.reply(caps);
    if (options.status !== false) {
      const query = await this.next();
      if (query.execute !== "query-status") {
        throw new Error(`fake peer: expected query-status, got ${JSON.stringify(query)}`);
      }
      const status = options.status ?? "prelaunch";
      this.reply(query, { status, singlestep: false, running: status === "running" });
    }
  }

  /** Ends the stream from this side (orderly). */
  end(): void {
    this.stream.end();
  }

  /** Kills the stream abruptly. */
  destroy(): void {
    this.stream.destroy();
  }
}
