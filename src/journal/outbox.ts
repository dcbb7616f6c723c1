/**
 * The outbox: messages for a message bus (the fleet agent's JetStream stream), written to the
 * journal's SQLite file before they are published and marked once the bus acknowledged them, so
 * that neither an outage of the bus nor the agent being killed loses one (tables in
 * `schema.ts`, version 2; the design in docs/fleet.md "Outbox").
 *
 * - Each message gets a number `seq` (never reused in this file) and an id `OUTBOXID-SEQ`, with
 *   `OUTBOXID` random, made once per file: the id stays the same on every resend, and a new
 *   file (a journal deleted and made again) cannot give an old id to a new message.
 * - Messages are committed in batches (every turn of the event loop, or 1 000 rows) and handed
 *   to `onCommit` only then: nothing is published that a `kill -9` could take back.
 * - Acknowledgements are batched likewise; the most recent `keepAcked` acknowledged rows are kept
 *   (for inspection), older ones deleted.
 * - Bounded: when the waiting messages exceed `maxMessages`, `maxBytes` (payload bytes) or
 *   `maxAgeMs`, the oldest waiting ones are deleted, down to 90 % of the bound, and `onDrop`
 *   says which (per key: how many, which per-key numbers, from when to when). Dropping is loud by
 *   design: the caller publishes a notice and writes to stderr.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import type Database from "better-sqlite3";

/** Options of {@link Outbox} (`Journal.outbox()`). */
export interface OutboxOptions {
  /** Most waiting (unacknowledged) messages kept. Default 1 000 000. */
  readonly maxMessages?: number | undefined;
  /** Most payload bytes of waiting messages kept. Default 1 GiB. */
  readonly maxBytes?: number | undefined;
  /** Waiting messages older than this are dropped (ms). Default 7 days. */
  readonly maxAgeMs?: number | undefined;
  /** Acknowledged rows kept, the most recent. Default 10 000. */
  readonly keepAcked?: number | undefined;
  /** Commit as soon as this many rows are pending. Default 1 000. */
  readonly batchRows?: number | undefined;
  /** Messages just committed, in `seq` order: now they may be published. */
  readonly onCommit?: ((messages: readonly OutboxMessage[]) => void) | undefined;
  /** Waiting messages deleted to keep the bounds. */
  readonly onDrop?: ((drops: readonly OutboxDrop[]) => void) | undefined;
  /**
   * Messages that must not be dropped now (one being published: it may reach the bus whatever
   * the outbox does). Default none.
   */
  readonly inFlight?: ((seq: number) => boolean) | undefined;
  /** A commit that failed (disk full, …): its messages are lost, and counted in `lost`. */
  readonly onError?: ((error: Error) => void) | undefined;
  /** The wall clock (ms); tests pass their own. */
  readonly now?: (() => number) | undefined;
}

/** One message of the outbox. */
export interface OutboxMessage {
  /** Its number in the outbox (publishing order within a key). */
  readonly seq: number;
  /** What orders it: messages of one key are published one after another, in `seq` order. */
  readonly key: string;
  /** Its number among the key's messages, from 1. */
  readonly keySeq: number;
  readonly subject: string;
  readonly payload: string;
  /** The stable message id (`OUTBOXID-SEQ`), the same on every resend. */
  readonly msgId: string;
  readonly createdMs: number;
}

/** Waiting messages of one key deleted to keep the outbox's bounds. */
export interface OutboxDrop {
  readonly key: string;
  /** The `seq` of each message dropped. */
  readonly seqs: readonly number[];
  /** Their numbers among the key's messages, in order. */
  readonly keySeqs: readonly number[];
  readonly count: number;
  /** Their numbers among the key's messages (first and last). */
  readonly firstKeySeq: number;
  readonly lastKeySeq: number;
  /** When the first and last of them were written (ms). */
  readonly sinceMs: number;
  readonly untilMs: number;
  /** Which bound: `messages`, `bytes` or `age`. */
  readonly reason: "messages" | "bytes" | "age";
}

/** What the outbox knows of a key from earlier runs. */
export interface OutboxKeyInfo {
  readonly lastKeySeq: number;
  /** When its last message was written (ms). */
  readonly lastMs: number;
}

const MS = 1000;
type Row = [seq: number, key: string, keySeq: number, subject: string, payload: string, us: number];

/** The outbox of a journal (see the module comment). Made by `Journal.outbox()`. */
export class Outbox {
  /** The random id of this outbox (part of every message id). */
  readonly id: string;
  /** Messages lost because their commit failed. */
  lost = 0;
  /** Messages dropped to keep the bounds, in all. */
  dropped = 0;
  readonly #db: Database.Database;
  readonly #options: OutboxOptions;
  readonly #now: () => number;
  #nextSeq: number;
  readonly #keys = new Map<string, OutboxKeyInfo>();
  #rows: Row[] = [];
  #acks: Array<[seq: number, streamSeq: number | null, us: number]> = [];
  #scheduled: NodeJS.Immediate | undefined;
  #waiting: number;
  #waitingBytes: number;
  #lastPrune = 0;
  /** Messages never dropped (the notices saying what was dropped). */
  readonly #pinned = new Set<number>();
  #closed = false;
  readonly #commit: () => void;

  /** @internal Use `Journal.outbox()`. */
  constructor(db: Database.Database, options: OutboxOptions = {}) {
    this.#db = db;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const meta = db.prepare("SELECT value FROM meta WHERE key = 'outbox_id'").get() as
      | { value: string }
      | undefined;
    this.id = meta?.value ?? randomBytes(6).toString("hex");
    if (meta === undefined)
      db.prepare("INSERT INTO meta (key, value) VALUES ('outbox_id', ?)").run(this.id);
    const last = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as
      | { seq: number }
      | undefined;
    this.#nextSeq = (last?.seq ?? 0) + 1;
    for (const row of db
      .prepare("SELECT key, last_vm_seq, last_us FROM outbox_keys")
      .all() as Array<{ key: string; last_vm_seq: number; last_us: number }>) {
      this.#keys.set(row.key, { lastKeySeq: row.last_vm_seq, lastMs: row.last_us / MS });
    }
    const counts = db
      .prepare(
        "SELECT count(*) AS n, coalesce(sum(length(CAST(payload AS BLOB))), 0) AS bytes FROM outbox WHERE acked_us IS NULL",
      )
      .get() as { n: number; bytes: number };
    this.#waiting = counts.n;
    this.#waitingBytes = counts.bytes;
    const insert = db.prepare(
      "INSERT INTO outbox (seq, key, vm_seq, subject, payload, created_us) VALUES (?, ?, ?, ?, ?, ?)",
    );
    const upsertKey = db.prepare(
      "INSERT INTO outbox_keys (key, last_vm_seq, last_us) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET last_vm_seq = excluded.last_vm_seq, last_us = excluded.last_us",
    );
    const ack = db.prepare(
      "UPDATE outbox SET acked_us = ?, stream_seq = ? WHERE seq = ? AND acked_us IS NULL",
    );
    this.#commit = db.transaction(() => {
      const touched = new Map<string, Row>();
      for (const row of this.#rows) {
        insert.run(row);
        touched.set(row[1], row);
      }
      for (const [key, row] of touched) upsertKey.run(key, row[2], row[5]);
      for (const [seq, streamSeq, us] of this.#acks) ack.run(us, streamSeq, seq);
    });
  }

  /** Messages waiting for an acknowledgement (committed or not). */
  get waiting(): number {
    return this.#waiting;
  }

  /** Payload bytes of the waiting messages. */
  get waitingBytes(): number {
    return this.#waitingBytes;
  }

  /** What earlier runs left of `key` (undefined for a key never seen). */
  keyInfo(key: string): OutboxKeyInfo | undefined {
    return this.#keys.get(key);
  }

  /** The committed messages not yet acknowledged, in `seq` order (for a start). */
  waitingMessages(): OutboxMessage[] {
    const rows = this.#db
      .prepare(
        "SELECT seq, key, vm_seq, subject, payload, created_us FROM outbox WHERE acked_us IS NULL ORDER BY seq",
      )
      .raw()
      .all() as Row[];
    return rows.map((r) => this.#message(r));
  }

  #message(row: Row): OutboxMessage {
    return {
      seq: row[0],
      key: row[1],
      keySeq: row[2],
      subject: row[3],
      payload: row[4],
      msgId: `${this.id}-${row[0]}`,
      createdMs: row[5] / MS,
    };
  }

  /**
   * Adds a message for `key` to be published on `subject`; `payload` makes its text from its id
   * and per-key number. Committed within this turn of the event loop; `onCommit` hands it on.
   */
  add(
    key: string,
    subject: string,
    payload: (ids: { readonly msgId: string; readonly keySeq: number }) => string,
    options: { readonly pinned?: boolean | undefined } = {},
  ): OutboxMessage {
    if (this.#closed) throw new Error("the outbox is closed");
    const seq = this.#nextSeq++;
    const keySeq = (this.#keys.get(key)?.lastKeySeq ?? 0) + 1;
    const nowMs = this.#now();
    this.#keys.set(key, { lastKeySeq: keySeq, lastMs: nowMs });
    const text = payload({ msgId: `${this.id}-${seq}`, keySeq });
    const row: Row = [seq, key, keySeq, subject, text, Math.round(nowMs * MS)];
    if (options.pinned === true) this.#pinned.add(seq);
    this.#rows.push(row);
    this.#waiting++;
    this.#waitingBytes += Buffer.byteLength(text);
    if (this.#rows.length >= (this.#options.batchRows ?? 1000)) this.flush();
    else this.#schedule();
    return this.#message(row);
  }

  /**
   * Gives a waiting message new text (same id and numbers), for a notice that grows while it
   * waits. Returns the message as it is now, or undefined when it is no longer waiting.
   */
  replace(message: OutboxMessage, payload: string): OutboxMessage | undefined {
    if (this.#closed) return undefined;
    const pending = this.#rows.find((r) => r[0] === message.seq);
    if (pending !== undefined) pending[4] = payload;
    else if (
      this.#db
        .prepare("UPDATE outbox SET payload = ? WHERE seq = ? AND acked_us IS NULL")
        .run(payload, message.seq).changes === 0
    )
      return undefined;
    this.#waitingBytes += Buffer.byteLength(payload) - Buffer.byteLength(message.payload);
    return { ...message, payload };
  }

  /** Marks a message acknowledged by the bus (`streamSeq`: its number there, when known). */
  ack(message: OutboxMessage, streamSeq?: number | undefined): void {
    if (this.#closed) return;
    this.#pinned.delete(message.seq);
    this.#acks.push([message.seq, streamSeq ?? null, Math.round(this.#now() * MS)]);
    this.#waiting--;
    this.#waitingBytes -= Buffer.byteLength(message.payload);
    this.#schedule();
  }

  #schedule(): void {
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = undefined;
      this.flush();
    });
  }

  /** Commits what is pending now, hands new messages to `onCommit`, and keeps the bounds. */
  flush(): void {
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
    if (this.#closed || (this.#rows.length === 0 && this.#acks.length === 0)) return;
    const rows = this.#rows;
    try {
      this.#commit();
    } catch (error) {
      this.lost += rows.length;
      this.#waiting -= rows.length;
      for (const r of rows) this.#waitingBytes -= Buffer.byteLength(r[4]);
      this.#options.onError?.(error as Error);
      return;
    } finally {
      this.#rows = [];
      this.#acks = [];
    }
    if (rows.length > 0) this.#options.onCommit?.(rows.map((r) => this.#message(r)));
    this.#keepBounds();
  }

  #keepBounds(): void {
    const now = this.#now();
    const maxMessages = this.#options.maxMessages ?? 1_000_000;
    const maxBytes = this.#options.maxBytes ?? 1024 ** 3;
    const overCount = this.#waiting > maxMessages;
    const overBytes = this.#waitingBytes > maxBytes;
    if (overCount || overBytes) {
      this.#dropOldest(
        overCount ? "messages" : "bytes",
        overCount ? this.#waiting - Math.floor(maxMessages * 0.9) : 0,
        overBytes ? this.#waitingBytes - Math.floor(maxBytes * 0.9) : 0,
      );
    }
    if (now - this.#lastPrune < 1000) return;
    this.#lastPrune = now;
    const maxAgeMs = this.#options.maxAgeMs ?? 7 * 24 * 3600_000;
    const old = this.#db
      .prepare("SELECT count(*) AS n FROM outbox WHERE acked_us IS NULL AND created_us < ?")
      .get(Math.round((now - maxAgeMs) * MS)) as { n: number };
    if (old.n > 0) this.#dropOldest("age", old.n, 0);
    this.#db
      .prepare(
        "DELETE FROM outbox WHERE acked_us IS NOT NULL AND seq < (SELECT seq FROM outbox WHERE acked_us IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET ?)",
      )
      .run(this.#options.keepAcked ?? 10_000);
  }

  /** Deletes the oldest waiting messages: at least `count` of them and `bytes` of payload. */
  #dropOldest(reason: OutboxDrop["reason"], count: number, bytes: number): void {
    const rows = this.#db
      .prepare(
        "SELECT seq, key, vm_seq, length(CAST(payload AS BLOB)) AS size, created_us FROM outbox WHERE acked_us IS NULL ORDER BY seq",
      )
      .raw()
      .iterate() as IterableIterator<[number, string, number, number, number]>;
    const chosen: Array<[number, string, number, number, number]> = [];
    let n = 0;
    let size = 0;
    const inFlight = this.#options.inFlight;
    for (const row of rows) {
      if (n >= count && size >= bytes) break;
      if (inFlight?.(row[0]) || this.#pinned.has(row[0])) continue;
      chosen.push(row);
      n++;
      size += row[3];
    }
    if (chosen.length === 0) return;
    const remove = this.#db.prepare("DELETE FROM outbox WHERE seq = ?");
    this.#db.transaction(() => {
      for (const row of chosen) remove.run(row[0]);
    })();
    this.#waiting -= n;
    this.#waitingBytes -= size;
    this.dropped += n;
    const byKey = new Map<string, Array<[number, string, number, number, number]>>();
    for (const row of chosen) {
      const list = byKey.get(row[1]) ?? [];
      list.push(row);
      byKey.set(row[1], list);
    }
    const drops: OutboxDrop[] = [...byKey].map(([key, list]) => ({
      key,
      seqs: list.map((r) => r[0]),
      keySeqs: list.map((r) => r[2]),
      count: list.length,
      firstKeySeq: list[0]![2],
      lastKeySeq: list[list.length - 1]![2],
      sinceMs: list[0]![4] / MS,
      untilMs: list[list.length - 1]![4] / MS,
      reason,
    }));
    this.#options.onDrop?.(drops);
  }

  /** Commits what is pending; later calls of `add` fail, of `ack` are ignored. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }
}
