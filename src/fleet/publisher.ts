/**
 * Publishes the outbox to JetStream: each message with its stable id as `Nats-Msg-Id`, the
 * messages of one VM strictly one after another (the next only once the stream acknowledged the
 * one before), many VMs at once; each acknowledgement marked in the outbox.
 *
 * Why one at a time per VM: over one connection a publish lost when the broker dies (written
 * to the socket, never read) can be followed by a later one the client buffered while
 * reconnecting and sent after it; resending the lost one would then store it after its
 * successor. With one message in flight per VM that cannot happen, and a resend of a message
 * the stream did store (its acknowledgement lost) is dropped by the stream's de-duplication.
 *
 * After a failure (timeout, no stream, lost connection) publishing pauses and resumes from the
 * first unacknowledged message of each VM, after a backoff (200 ms doubling to 5 s) or at once
 * when the connection comes back (`resume()`).
 *
 * @module
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Outbox, OutboxMessage } from "../journal/index.js";
import { describeNatsError } from "./connection.js";

/** Options of {@link OutboxPublisher}. */
export interface OutboxPublisherOptions {
  /** Time for the stream to acknowledge one message (ms). Default 5 000. */
  readonly ackTimeoutMs?: number | undefined;
  /** Most messages in flight at once (over all VMs). Default 1 024. */
  readonly maxInFlight?: number | undefined;
  /** Each acknowledgement (`duplicate`: the stream had it already). */
  readonly onAck?: ((message: OutboxMessage, duplicate: boolean) => void) | undefined;
  /** Publishing paused (`error` given) or resumed (`error` undefined) . */
  readonly onPause?: ((error: string | undefined) => void) | undefined;
}

/** A FIFO of one key's messages (an array with a moving head: shift() is O(n)). */
class Queue {
  items: OutboxMessage[] = [];
  head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  first(): OutboxMessage | undefined {
    return this.items[this.head];
  }
  shift(): void {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/** Publishes an outbox's messages to JetStream (see the module comment). */
export class OutboxPublisher {
  readonly #outbox: Outbox;
  readonly #options: OutboxPublisherOptions;
  readonly #queues = new Map<string, Queue>();
  /** Keys with a message to send and none in flight, in the order they became ready. */
  readonly #ready = new Set<string>();
  readonly #inFlight = new Set<string>();
  /** Keys whose head failed: sent again when publishing resumes. */
  readonly #retry = new Set<string>();
  #js: JetStreamClient | undefined;
  #paused = false;
  #pauseError: string | undefined;
  #backoffMs = 200;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Acknowledged by the stream (duplicates included). */
  acknowledged = 0;
  /** Acknowledged as duplicates (already in the stream). */
  duplicates = 0;

  constructor(outbox: Outbox, options: OutboxPublisherOptions = {}) {
    this.#outbox = outbox;
    this.#options = options;
  }

  /** Messages not yet acknowledged that this publisher holds. */
  get queued(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.size;
    return n;
  }

  /** Puts `message` in place of the queued message with its `seq` (unless in flight). */
  replace(message: OutboxMessage): boolean {
    const q = this.#queues.get(message.key);
    if (q === undefined) return false;
    const i = q.items.findIndex((m, index) => index >= q.head && m.seq === message.seq);
    if (i < 0 || (i === q.head && this.#inFlight.has(message.key))) return false;
    q.items[i] = message;
    return true;
  }

  /** Whether the message `seq` is being published (sent, its acknowledgement awaited). */
  isInFlight(seq: number): boolean {
    for (const key of this.#inFlight) if (this.#queues.get(key)?.first()?.seq === seq) return true;
    return false;
  }

  /** Messages of `key` not yet acknowledged that this publisher holds. */
  queuedFor(key: string): number {
    return this.#queues.get(key)?.size ?? 0;
  }

  /** Why publishing is paused, or undefined while it runs. */
  get pauseError(): string | undefined {
    return this.#pauseError;
  }

  /** Adds committed messages (in `seq` order) to their keys' queues. */
  enqueue(messages: readonly OutboxMessage[]): void {
    for (const m of messages) {
      let q = this.#queues.get(m.key);
      if (q === undefined) {
        q = new Queue();
        this.#queues.set(m.key, q);
      }
      q.items.push(m);
      if (!this.#inFlight.has(m.key) && !this.#retry.has(m.key)) this.#ready.add(m.key);
    }
    this.#pump();
  }

  /** Forgets messages the outbox dropped (a message in flight is let finish). */
  forget(seqs: readonly number[]): void {
    const gone = new Set(seqs);
    for (const [key, q] of this.#queues) {
      const inFlight = this.#inFlight.has(key) ? q.first() : undefined;
      const kept = q.items.slice(q.head).filter((m) => m === inFlight || !gone.has(m.seq));
      q.items = kept;
      q.head = 0;
      if (kept.length === 0) {
        this.#queues.delete(key);
        this.#ready.delete(key);
        this.#retry.delete(key);
      }
    }
  }

  /** The JetStream client to publish with (undefined while there is no connection). */
  setClient(js: JetStreamClient | undefined): void {
    this.#js = js;
    if (js !== undefined) this.resume();
  }

  /** Resumes at once (the connection came back). */
  resume(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#paused = false;
    for (const key of this.#retry) this.#ready.add(key);
    this.#retry.clear();
    this.#pump();
  }

  #pump(): void {
    if (this.#closed || this.#paused || this.#js === undefined) return;
    const max = this.#options.maxInFlight ?? 1024;
    for (const key of this.#ready) {
      if (this.#inFlight.size >= max) return;
      this.#ready.delete(key);
      const q = this.#queues.get(key);
      const m = q?.first();
      if (m === undefined) continue;
      this.#send(this.#js, key, m);
    }
  }

  #send(js: JetStreamClient, key: string, m: OutboxMessage): void {
    this.#inFlight.add(key);
    let sent: Promise<{ seq: number; duplicate: boolean }>;
    try {
      sent = js.publish(m.subject, m.payload, {
        msgID: m.msgId,
        timeout: this.#options.ackTimeoutMs ?? 5000,
      });
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      (ack) => {
        this.#inFlight.delete(key);
        const q = this.#queues.get(key);
        if (q?.first() === m) q.shift();
        this.acknowledged++;
        if (ack.duplicate) this.duplicates++;
        this.#outbox.ack(m, ack.seq);
        this.#options.onAck?.(m, ack.duplicate);
        this.#backoffMs = 200;
        if (this.#pauseError !== undefined) {
          this.#pauseError = undefined;
          this.#options.onPause?.(undefined);
        }
        if (q !== undefined && q.size > 0) {
          if (this.#paused) this.#retry.add(key);
          else this.#ready.add(key);
        } else if (q !== undefined) this.#queues.delete(key);
        this.#pump();
      },
      (error: unknown) => {
        this.#inFlight.delete(key);
        this.#retry.add(key);
        this.#pause(describeNatsError(error));
      },
    );
  }

  #pause(why: string): void {
    if (this.#closed) return;
    if (this.#pauseError === undefined) this.#options.onPause?.(why);
    this.#pauseError = why;
    if (this.#paused) return;
    this.#paused = true;
    // Whatever was ready waits too: the broker is in trouble.
    for (const key of this.#ready) this.#retry.add(key);
    this.#ready.clear();
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, 5000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.resume();
    }, delay);
  }

  /** Stops publishing (what is in flight may still be acknowledged and marked). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
