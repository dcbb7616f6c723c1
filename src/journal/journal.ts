/**
 * `Journal`: an embedded SQLite database (better-sqlite3) of what VMs said and what happened to
 * the watch on them, and of recorded sessions. See `schema.ts` for the tables.
 *
 * - WAL mode: one writer (the `Journal` opened for writing, which batches every row through its
 *   one connection) and any number of readers (`Journal.open(path, { readonly: true })`, also
 *   in other processes) that never block it.
 * - Batched commits: rows wait in memory until `flushMs` (50 ms) has passed or `batchRows`
 *   (1 000) are waiting, then go in one transaction. Whatever was committed survives the
 *   process being killed (`kill -9`): the WAL is in the operating system's hands once the
 *   transaction commits. What is lost is at most the rows not yet committed: those received in
 *   the last `flushMs`, and never more than `batchRows`. (`synchronous=NORMAL`: a power loss may
 *   also lose the last transactions; the database stays consistent.)
 * - Bounded: `maxAgeMs` and `maxSizeBytes` are enforced while running (at most every second,
 *   after a commit): rows older than the age go, then the oldest eighth of what remains until
 *   the pages in use fit the size. Freed pages are handed back to the file system
 *   (`auto_vacuum=INCREMENTAL`).
 * - Secrets are redacted before they are written (`redact.ts`).
 *
 * @module
 */
import { hostname } from "node:os";
import Database from "better-sqlite3";
import { QmpError } from "../base/errors.js";
import type { JsonObject, JsonValue } from "../base/json.js";
import { writeCompactJson } from "../wire/index.js";
import { redactJsonText } from "./redact.js";
import { Outbox, type OutboxOptions } from "./outbox.js";
import { MIGRATIONS, SCHEMA_VERSION } from "./schema.js";
import { type RunStateInterval, TimelineBuilder, timelineInput } from "./timeline.js";

/** A journal that cannot be opened, is from a newer qmpkit, or is not a journal. */
export class JournalError extends QmpError {
  override name = "JournalError";
  constructor(
    message: string,
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Options of {@link Journal.open}. */
export interface JournalOptions {
  /** Open for reading only (the file must exist). Default false: the writer. */
  readonly readonly?: boolean | undefined;
  /** Commit pending rows after this long (ms). Default 50. */
  readonly flushMs?: number | undefined;
  /** Commit as soon as this many rows are pending. Default 1 000. */
  readonly batchRows?: number | undefined;
  /** Delete rows older than this (ms), while running. Default: keep. */
  readonly maxAgeMs?: number | undefined;
  /** Keep the database pages in use under this many bytes, deleting the oldest rows. Default: no bound. */
  readonly maxSizeBytes?: number | undefined;
  /** The host name recorded for VMs (default: this machine's). */
  readonly host?: string | undefined;
  /** A commit that failed (disk full, …): its rows are dropped and counted in `dropped`. */
  readonly onError?: ((error: Error) => void) | undefined;
  /**
   * Note a restart gap before a VM's first `connected` of this run when it has older rows (the
   * recorder was not running). Default true; false for a journal fed from a stream that resumes
   * where it left off (the dashboard's fleet source), where nothing was missed.
   */
  readonly restartGaps?: boolean | undefined;
  /** The wall clock (ms since the epoch); tests pass their own. Default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** A VM as the journal knows it. */
export interface JournalVm {
  readonly id: number;
  readonly host: string;
  readonly name: string;
  readonly address: string;
}

/** A QMP event as it arrived (`data` absent for events without arguments). */
export interface JournalEvent {
  readonly event: string;
  readonly data?: JsonObject | undefined;
  readonly timestamp: { readonly seconds: number; readonly microseconds: number };
}

/** A run-state change and its cause (an event's name, or `query-status`). */
export interface JournalStateChange {
  readonly from: string;
  readonly to: string;
  readonly cause: string;
  /** The causing event's timestamp, or the local time of the `query-status` answer (ms). */
  readonly atMs: number;
}

/**
 * A notice about the watch: `{kind: "connected", address, qemu, state?}`, `{kind:
 * "disconnected", reason?, reconnecting}`, `{kind: "reconnected", qemu, sinceMs, untilMs}` (QEMU's
 * events in between are lost), `{kind: "waiting", …}`, `{kind: "overflow", dropped}`.
 */
export interface JournalNotice {
  readonly kind: string;
  readonly [member: string]: unknown;
}

interface EntryBase {
  readonly id: number;
  readonly vm: string;
  readonly host: string;
  readonly address: string;
  /** The connection (boot/connection id) it came on; undefined before the first connect. */
  readonly connection: number | undefined;
  /** When it was received and written (ms since the epoch, local clock). */
  readonly receivedMs: number;
}

/** One row of the journal. */
export type JournalEntry =
  | (EntryBase & { readonly kind: "event"; readonly event: JournalEvent })
  | (EntryBase & { readonly kind: "state"; readonly change: JournalStateChange })
  | (EntryBase & { readonly kind: "watch"; readonly notice: JournalNotice; readonly atMs: number });

/** A recorded frame. */
export interface JournalFrame {
  readonly id: number;
  readonly session: number;
  readonly peer: string;
  readonly vm: string;
  readonly direction: "in" | "out";
  /** `process.hrtime` of the recorder, ns: only differences within a session mean anything. */
  readonly monoNs: bigint;
  readonly atMs: number;
  /** The frame's JSON text (secrets redacted). */
  readonly text: string;
}

/** Which rows a query returns; every condition must hold. */
export interface JournalQuery {
  /** VM names (globs: `*`, `?`, `[…]`). */
  readonly vm?: string | readonly string[] | undefined;
  /** Rows at or after this time (ms): QEMU's timestamp for events, else local time. */
  readonly sinceMs?: number | undefined;
  /** Rows before this time (ms). */
  readonly untilMs?: number | undefined;
  /** Kinds of rows (default all). */
  readonly kinds?: readonly JournalEntry["kind"][] | undefined;
  /** Rows read per transaction (default 1 000): a slow consumer never holds a read open long. */
  readonly pageSize?: number | undefined;
  /** Rows after this sequence number (`JournalEntry.id`): where a live reader left off. */
  readonly afterId?: number | undefined;
  /** Rows before this sequence number. */
  readonly beforeId?: number | undefined;
  /** `desc`: the newest first (a page of recent rows). Default `asc`, the order received. */
  readonly order?: "asc" | "desc" | undefined;
}

/**
 * Called after each commit of the writer with the entry rows it wrote, in sequence order (their
 * `id`s are consecutive). Runs inside `flush()`: it must not throw, and should be quick.
 */
export type CommitListener = (entries: readonly JournalEntry[]) => void;

type EntryRow = [
  vm: number,
  conn: number | null,
  kind: string,
  name: string,
  data: string | null,
  tsUs: number,
  receivedUs: number,
];
type FrameRow = [session: number, direction: string, monoNs: bigint, atUs: number, text: string];

const MS = 1000;
const ENTRY_COLUMNS = 7;
const ROWS_PER_INSERT = 50;

function jsonText(value: JsonValue): string {
  return writeCompactJson(value);
}

/** An SQLite journal of VM events, run states, watch notices and recorded sessions. */
export class Journal {
  readonly path: string;
  readonly readonly: boolean;
  /** Rows dropped because their commit failed (see `onError`). */
  dropped = 0;
  readonly #db: Database.Database;
  readonly #options: JournalOptions;
  readonly #now: () => number;
  readonly #host: string;
  /** Pending entry rows, their columns one after another (`ENTRY_COLUMNS` per row). */
  #entries: EntryRow[number][] = [];
  #frames: FrameRow[] = [];
  #timer: NodeJS.Timeout | undefined;
  #lastRetention = 0;
  #closed = false;
  #outbox: Outbox | undefined;
  readonly #connection = new Map<number, number>();
  readonly #seen = new Set<number>();
  /** Every VM handed out by `vm()`, by row id: the names committed rows are given to listeners. */
  readonly #vms = new Map<number, JournalVm>();
  readonly #listeners = new Set<CommitListener>();
  /** Marks waiting for the next commit (see `mark`). */
  readonly #marks = new Map<string, string>();
  readonly #insertEntry: Database.Statement | undefined;
  readonly #insertFrame: Database.Statement | undefined;
  readonly #commit: (() => void) | undefined;

  private constructor(path: string, db: Database.Database, options: JournalOptions) {
    this.path = path;
    this.readonly = options.readonly === true;
    this.#db = db;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#host = options.host ?? hostname();
    if (this.readonly) return;
    const insert = "INSERT INTO entries (vm, conn, kind, name, data, ts_us, received_us) VALUES ";
    const values = "(?, ?, ?, ?, ?, ?, ?)";
    this.#insertEntry = db.prepare(insert + values);
    // Rows go in ROWS_PER_INSERT at a time: one statement run per row costs more than SQLite's
    // own work per row (bench/journal.ts measures it against one row per run).
    const insertMany = db.prepare(insert + Array(ROWS_PER_INSERT).fill(values).join(", "));
    this.#insertFrame = db.prepare(
      "INSERT INTO frames (session, direction, mono_ns, at_us, text) VALUES (?, ?, ?, ?, ?)",
    );
    const setMark = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    const lastCommit = db.prepare(
      "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_commit_us', ?)",
    );
    const insertEntry = this.#insertEntry;
    const insertFrame = this.#insertFrame;
    this.#commit = db.transaction(() => {
      const pending = this.#entries;
      const many = ROWS_PER_INSERT * ENTRY_COLUMNS;
      let i = 0;
      for (; i + many <= pending.length; i += many) insertMany.run(pending.slice(i, i + many));
      for (; i < pending.length; i += ENTRY_COLUMNS)
        insertEntry.run(pending.slice(i, i + ENTRY_COLUMNS));
      for (const row of this.#frames) insertFrame.run(row);
      lastCommit.run(Math.round(this.#now() * MS));
      for (const [key, value] of this.#marks) setMark.run(key, value);
      this.#marks.clear();
    });
  }

  /**
   * Opens (and for the writer, creates and migrates) the journal at `path`.
   *
   * @throws JournalError when the file cannot be opened, is not a journal, or is from a newer qmpkit.
   */
  static open(path: string, options: JournalOptions = {}): Journal {
    let db: Database.Database;
    try {
      db = new Database(path, {
        readonly: options.readonly === true,
        fileMustExist: options.readonly === true,
      });
    } catch (error) {
      throw new JournalError(`cannot open the journal ${path}: ${(error as Error).message}`, path, {
        cause: error,
      });
    }
    try {
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new JournalError(
          `cannot open the journal ${path}: its schema version ${version} is newer than this qmpkit's (${SCHEMA_VERSION})`,
          path,
        );
      }
      if (options.readonly === true) {
        if (version === 0) throw new JournalError(`${path} is not a qmpkit journal (empty)`, path);
      } else {
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = NORMAL");
        if (version === 0) db.pragma("auto_vacuum = INCREMENTAL");
        for (let v = version; v < SCHEMA_VERSION; v++) {
          db.transaction(() => {
            db.exec(MIGRATIONS[v]!);
            db.pragma(`user_version = ${v + 1}`);
          })();
        }
      }
    } catch (error) {
      db.close();
      if (error instanceof JournalError) throw error;
      throw new JournalError(`cannot open the journal ${path}: ${(error as Error).message}`, path, {
        cause: error,
      });
    }
    return new Journal(path, db, options);
  }

  /** The schema version of the open database. */
  get schemaVersion(): number {
    return this.#db.pragma("user_version", { simple: true }) as number;
  }

  /** The journal mode SQLite reports (`wal`). */
  get journalMode(): string {
    return this.#db.pragma("journal_mode", { simple: true }) as string;
  }

  // ---------------------------------------------------------------- writing

  /**
   * The journal's outbox (`outbox.ts`): messages for a bus, kept until it acknowledged them. One
   * per journal: a second call returns the same outbox (its options from the first call).
   */
  outbox(options: OutboxOptions = {}): Outbox {
    this.#writer();
    this.#outbox ??= new Outbox(this.#db, options);
    return this.#outbox;
  }

  #writer(): void {
    if (this.readonly)
      throw new JournalError(`the journal ${this.path} is open read-only`, this.path);
    if (this.#closed) throw new JournalError(`the journal ${this.path} is closed`, this.path);
  }

  /** The VM with this name and address on this host (created on first use). */
  vm(info: {
    readonly name: string;
    readonly address: string;
    readonly host?: string | undefined;
  }): JournalVm {
    this.#writer();
    const host = info.host ?? this.#host;
    this.#db
      .prepare("INSERT OR IGNORE INTO vms (host, name, address) VALUES (?, ?, ?)")
      .run(host, info.name, info.address);
    const row = this.#db
      .prepare("SELECT id FROM vms WHERE host = ? AND name = ? AND address = ?")
      .get(host, info.name, info.address) as { id: number };
    const vm = { id: row.id, host, name: info.name, address: info.address };
    this.#vms.set(vm.id, vm);
    return vm;
  }

  /** Journals an event `vm` sent (its data redacted), received at `receivedMs` (default now). */
  event(vm: JournalVm, event: JournalEvent, receivedMs: number = this.#now()): void {
    this.#writer();
    const ts = event.timestamp;
    this.#push([
      vm.id,
      this.#connection.get(vm.id) ?? null,
      "event",
      event.event,
      event.data === undefined ? null : redactJsonText(jsonText(event.data)),
      ts.seconds * 1_000_000 + ts.microseconds,
      Math.round(receivedMs * MS),
    ]);
  }

  /** Journals a run-state change and its cause. */
  state(vm: JournalVm, change: JournalStateChange, receivedMs: number = this.#now()): void {
    this.#writer();
    this.#push([
      vm.id,
      this.#connection.get(vm.id) ?? null,
      "state",
      change.to,
      JSON.stringify({ from: change.from, cause: change.cause }),
      Math.round(change.atMs * MS),
      Math.round(receivedMs * MS),
    ]);
  }

  /**
   * Journals a notice about the watch. `connected` and `reconnected` open a new connection (the
   * boot/connection id of the rows that follow), `disconnected` closes it. The first `connected`
   * of a VM that already has rows (a recorder restarted on the same journal) is preceded by a
   * `reconnected` notice whose gap spans the time nothing was recorded: from the VM's last row
   * to now.
   */
  notice(vm: JournalVm, notice: JournalNotice, atMs: number = this.#now()): void {
    this.#writer();
    const atUs = Math.round(atMs * MS);
    if (
      notice.kind === "connected" &&
      !this.#seen.has(vm.id) &&
      this.#options.restartGaps !== false
    )
      this.#restartGap(vm, notice, atMs);
    this.#seen.add(vm.id);
    if (notice.kind === "connected" || notice.kind === "reconnected") {
      this.#closeConnection(vm, atUs);
      const qemu = typeof notice.qemu === "string" ? notice.qemu : null;
      const id = this.#db
        .prepare("INSERT INTO connections (vm, qemu, opened_us) VALUES (?, ?, ?)")
        .run(vm.id, qemu, atUs).lastInsertRowid;
      this.#connection.set(vm.id, Number(id));
    }
    const { kind, ...members } = notice;
    this.#push([
      vm.id,
      this.#connection.get(vm.id) ?? null,
      "watch",
      kind,
      redactJsonText(JSON.stringify(members)),
      atUs,
      atUs,
    ]);
    if (notice.kind === "disconnected") this.#closeConnection(vm, atUs);
  }

  #closeConnection(vm: JournalVm, atUs: number): void {
    const open = this.#connection.get(vm.id);
    if (open === undefined) return;
    this.#connection.delete(vm.id);
    this.#db.prepare("UPDATE connections SET closed_us = ? WHERE id = ?").run(atUs, open);
  }

  #restartGap(vm: JournalVm, notice: JournalNotice, atMs: number): void {
    const last = this.#db
      .prepare("SELECT received_us AS at FROM entries WHERE vm = ? ORDER BY id DESC LIMIT 1")
      .get(vm.id) as { at: number } | undefined;
    if (last === undefined) return;
    // Connections a killed recorder left open end with its last row.
    this.#db
      .prepare("UPDATE connections SET closed_us = ? WHERE vm = ? AND closed_us IS NULL")
      .run(last.at, vm.id);
    this.#push([
      vm.id,
      null,
      "watch",
      "reconnected",
      JSON.stringify({
        qemu: notice.qemu,
        sinceMs: last.at / MS,
        untilMs: atMs,
        recorder: "restarted",
      }),
      Math.round(atMs * MS),
      Math.round(atMs * MS),
    ]);
  }

  /** Opens a recorded session with `peer` (`qemu`, `client#1`, …) of `vm`; returns its id. */
  openSession(vm: JournalVm, peer: string, atMs: number = this.#now()): number {
    this.#writer();
    return Number(
      this.#db
        .prepare("INSERT INTO sessions (vm, peer, opened_us) VALUES (?, ?, ?)")
        .run(vm.id, peer, Math.round(atMs * MS)).lastInsertRowid,
    );
  }

  /** Journals a frame of a session (its JSON text; secrets redacted). */
  frame(session: number, direction: "in" | "out", text: string, atMs: number = this.#now()): void {
    this.#writer();
    this.#frames.push([
      session,
      direction,
      process.hrtime.bigint(),
      Math.round(atMs * MS),
      redactJsonText(text.trim()),
    ]);
    this.#scheduled();
  }

  /** Marks a session closed (after committing its frames). */
  closeSession(session: number, atMs: number = this.#now()): void {
    this.#writer();
    this.flush();
    this.#db
      .prepare("UPDATE sessions SET closed_us = ? WHERE id = ?")
      .run(Math.round(atMs * MS), session);
  }

  #push(row: EntryRow): void {
    this.#entries.push(row[0], row[1], row[2], row[3], row[4], row[5], row[6]);
    this.#scheduled();
  }

  #scheduled(): void {
    const pending = this.#entries.length / ENTRY_COLUMNS + this.#frames.length;
    if (pending >= (this.#options.batchRows ?? 1000)) {
      this.flush();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, this.#options.flushMs ?? 50);
      // Pending rows are committed by close(); the timer alone keeps no process alive.
      this.#timer.unref();
    }
  }

  /** Commits the pending rows now (one transaction), then enforces retention when due. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (
      this.readonly ||
      (this.#entries.length === 0 && this.#frames.length === 0 && this.#marks.size === 0)
    )
      return;
    let committed: EntryRow[number][] | undefined;
    try {
      this.#commit!();
      committed = this.#entries;
    } catch (error) {
      this.dropped += this.#entries.length / ENTRY_COLUMNS + this.#frames.length;
      this.#options.onError?.(error as Error);
    } finally {
      this.#entries = [];
      this.#frames = [];
    }
    if (committed !== undefined && committed.length > 0 && this.#listeners.size > 0)
      this.#announce(committed);
    const now = this.#now();
    if (now - this.#lastRetention >= 1000) {
      this.#lastRetention = now;
      this.enforceRetention();
    }
  }

  /**
   * Calls `listener` after every commit with the entry rows committed (see {@link
   * CommitListener}); returns the function that stops it. The rows' `id`s are the journal's
   * sequence numbers: a reader that saw up to `id` N finds what followed with `entries({afterId:
   * N})`.
   */
  onCommit(listener: CommitListener): () => void {
    this.#writer();
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The committed rows as entries. One writer, one transaction: SQLite gives the rows of an
   * INTEGER PRIMARY KEY table the ids after the largest one in order (sqlite.org/autoinc.html),
   * so the last `n` ids are theirs.
   */
  #announce(rows: EntryRow[number][]): void {
    const count = rows.length / ENTRY_COLUMNS;
    const last = this.lastId();
    const entries: JournalEntry[] = [];
    for (let i = 0; i < count; i++) {
      const at = i * ENTRY_COLUMNS;
      const vm = this.#vms.get(rows[at] as number);
      entries.push(
        toEntry({
          id: last - count + 1 + i,
          vm: vm?.name ?? "",
          host: vm?.host ?? "",
          address: vm?.address ?? "",
          conn: rows[at + 1] as number | null,
          kind: rows[at + 2] as string,
          name: rows[at + 3] as string,
          data: rows[at + 4] as string | null,
          ts_us: rows[at + 5] as number,
          received_us: rows[at + 6] as number,
        }),
      );
    }
    for (const listener of this.#listeners) {
      try {
        listener(entries);
      } catch (error) {
        this.#options.onError?.(error as Error);
      }
    }
  }

  /**
   * Sets a mark (a key and a text) that is committed with the rows written before it, in the
   * same transaction: a consumer of a stream marks the position of what it wrote, and finds it
   * again after a crash exactly as far as the rows go.
   */
  mark(key: string, value: string): void {
    this.#writer();
    this.#marks.set(`mark:${key}`, value);
    this.#scheduled();
  }

  /** A committed mark (see `mark`), or undefined. */
  markOf(key: string): string | undefined {
    const row = this.#db.prepare("SELECT value FROM meta WHERE key = ?").get(`mark:${key}`) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  /** The sequence number of the last committed entry row (0 when there is none). */
  lastId(): number {
    const row = this.#db.prepare("SELECT max(id) AS id FROM entries").get() as {
      id: number | null;
    };
    return row.id ?? 0;
  }

  /**
   * Deletes what `maxAgeMs` and `maxSizeBytes` do not keep (also done after commits, at most
   * every second). Returns the number of rows deleted.
   */
  enforceRetention(): number {
    this.#writer();
    const { maxAgeMs, maxSizeBytes } = this.#options;
    let deleted = 0;
    if (maxAgeMs !== undefined) {
      const cutoff = Math.round((this.#now() - maxAgeMs) * MS);
      // Rows are in the order received: everything before the first row young enough goes
      // (found walking from the oldest, so the cost is that of what is deleted). The newest
      // entry row always stays: SQLite numbers the rows of an empty table from 1 again, and the
      // entries' ids are sequence numbers live readers resume from (`afterId`).
      for (const [table, column, keep] of [
        ["entries", "received_us", ""],
        ["frames", "at_us", " + 1"],
      ]) {
        deleted += this.#db
          .prepare(
            `DELETE FROM ${table} WHERE id < coalesce((SELECT id FROM ${table} WHERE ${column} >= @cutoff ORDER BY id LIMIT 1), (SELECT max(id)${keep} FROM ${table}))`,
          )
          .run({ cutoff }).changes;
      }
    }
    if (maxSizeBytes !== undefined) {
      for (let round = 0; round < 32 && this.usedBytes() > maxSizeBytes; round++) {
        // The oldest eighth of each table (at least one row), until the pages in use fit.
        let changes = 0;
        for (const table of ["entries", "frames"]) {
          changes += this.#db
            .prepare(
              `DELETE FROM ${table} WHERE id <= (SELECT min(id) + (max(id) - min(id)) / 8 FROM ${table})${table === "entries" ? " AND id < (SELECT max(id) FROM entries)" : ""}`,
            )
            .run().changes;
        }
        deleted += changes;
        if (changes === 0) break;
      }
    }
    if (deleted > 0) this.#db.pragma("incremental_vacuum");
    return deleted;
  }

  /** Bytes of the database pages in use (the file less its free pages; the WAL not counted). */
  usedBytes(): number {
    const pages = this.#db.pragma("page_count", { simple: true }) as number;
    const free = this.#db.pragma("freelist_count", { simple: true }) as number;
    const size = this.#db.pragma("page_size", { simple: true }) as number;
    return (pages - free) * size;
  }

  /**
   * Commits what is pending and closes the file; for the writer, first notes a `disconnected`
   * notice (`the recorder stopped`) for every VM still connected.
   */
  close(): void {
    if (this.#closed) return;
    if (!this.readonly) {
      this.#outbox?.close();
      // What was watched is not any more: said so, so that intervals and sessions end here.
      for (const [vm] of this.#connection) {
        this.notice(
          { id: vm, host: "", name: "", address: "" },
          { kind: "disconnected", reason: "the recorder stopped", reconnecting: false },
        );
      }
      this.flush();
      this.#db.pragma("wal_checkpoint(PASSIVE)");
    }
    this.#closed = true;
    this.#db.close();
  }

  // ---------------------------------------------------------------- reading

  /** The VMs in the journal. */
  vms(): JournalVm[] {
    return this.#db
      .prepare("SELECT id, host, name, address FROM vms ORDER BY id")
      .all() as JournalVm[];
  }

  /** The rows matching `query`, in the order received, read a page at a time. */
  async *entries(query: JournalQuery = {}): AsyncGenerator<JournalEntry> {
    const desc = query.order === "desc";
    const where: string[] = [desc ? "e.id < @cursor" : "e.id > @cursor"];
    const params: Record<string, unknown> = {};
    for (const [name, value] of [
      ["afterId", query.afterId],
      ["beforeId", query.beforeId],
    ] as const) {
      if (value !== undefined && !Number.isSafeInteger(value))
        throw new JournalError(`invalid ${name} ${value}: expected an integer`, this.path);
    }
    if (desc && query.afterId !== undefined) {
      where.push("e.id > @after");
      params.after = query.afterId;
    }
    if (!desc && query.beforeId !== undefined) {
      where.push("e.id < @before");
      params.before = query.beforeId;
    }
    const vms = query.vm === undefined ? [] : typeof query.vm === "string" ? [query.vm] : query.vm;
    if (vms.length > 0) {
      where.push(`(${vms.map((_, i) => `v.name GLOB @vm${i}`).join(" OR ")})`);
      for (const [i, v] of vms.entries()) params[`vm${i}`] = v;
    }
    if (query.sinceMs !== undefined) {
      where.push("e.ts_us >= @since");
      params.since = Math.round(query.sinceMs * MS);
    }
    if (query.untilMs !== undefined) {
      where.push("e.ts_us < @until");
      params.until = Math.round(query.untilMs * MS);
    }
    if (query.kinds !== undefined) {
      where.push(`e.kind IN (${query.kinds.map((k) => `'${k.replace(/'/g, "")}'`).join(", ")})`);
    }
    const page = query.pageSize ?? 1000;
    const statement = this.#db.prepare(
      `SELECT e.id, e.kind, e.name, e.data, e.ts_us, e.received_us, e.conn, v.name AS vm, v.host, v.address
         FROM entries e JOIN vms v ON v.id = e.vm
        WHERE ${where.join(" AND ")} ORDER BY e.id ${desc ? "DESC" : ""} LIMIT ${page}`,
    );
    let cursor = desc ? (query.beforeId ?? Number.MAX_SAFE_INTEGER) : (query.afterId ?? 0);
    for (;;) {
      const rows = statement.all({ ...params, cursor }) as RawEntry[];
      for (const row of rows) yield toEntry(row);
      if (rows.length < page) return;
      cursor = rows[rows.length - 1]!.id;
    }
  }

  /** Per VM, the run-state intervals (see `timeline.ts`) of the rows matching `query`. */
  async *timeline(query: JournalQuery = {}): AsyncGenerator<RunStateInterval[]> {
    const builder = new TimelineBuilder();
    for await (const e of this.entries({ ...query, kinds: ["state", "watch"] })) {
      const input = timelineInput(e);
      if (input !== undefined) builder.add(input);
    }
    for (const intervals of builder.result().values()) yield intervals;
  }

  /** The recorded frames, in the order recorded (optionally of one session). */
  async *frames(
    query: { readonly session?: number | undefined; readonly pageSize?: number | undefined } = {},
  ): AsyncGenerator<JournalFrame> {
    const page = query.pageSize ?? 1000;
    const statement = this.#db.prepare(
      `SELECT f.id, f.session, s.peer, v.name AS vm, f.direction, f.mono_ns, f.at_us, f.text
         FROM frames f JOIN sessions s ON s.id = f.session JOIN vms v ON v.id = s.vm
        WHERE f.id > @after ${query.session === undefined ? "" : "AND f.session = @session"}
        ORDER BY f.id LIMIT ${page}`,
    );
    statement.safeIntegers(true);
    let after = 0n;
    for (;;) {
      const rows = statement.all({
        after,
        ...(query.session === undefined ? {} : { session: query.session }),
      }) as RawFrame[];
      for (const r of rows) {
        yield {
          id: Number(r.id),
          session: Number(r.session),
          peer: r.peer,
          vm: r.vm,
          direction: r.direction as "in" | "out",
          monoNs: r.mono_ns,
          atMs: Number(r.at_us) / MS,
          text: r.text,
        };
      }
      if (rows.length < page) return;
      after = rows[rows.length - 1]!.id;
    }
  }
}

interface RawEntry {
  id: number;
  kind: string;
  name: string;
  data: string | null;
  ts_us: number;
  received_us: number;
  conn: number | null;
  vm: string;
  host: string;
  address: string;
}

interface RawFrame {
  id: bigint;
  session: bigint;
  peer: string;
  vm: string;
  direction: string;
  mono_ns: bigint;
  at_us: bigint;
  text: string;
}

function toEntry(row: RawEntry): JournalEntry {
  const base: EntryBase = {
    id: row.id,
    vm: row.vm,
    host: row.host,
    address: row.address,
    connection: row.conn ?? undefined,
    receivedMs: row.received_us / MS,
  };
  const data = row.data === null ? undefined : (JSON.parse(row.data) as JsonObject);
  if (row.kind === "event") {
    const seconds = Math.floor(row.ts_us / 1_000_000);
    const event: JournalEvent = {
      event: row.name,
      ...(data === undefined ? {} : { data }),
      timestamp: { seconds, microseconds: row.ts_us - seconds * 1_000_000 },
    };
    return { ...base, kind: "event", event };
  }
  if (row.kind === "state") {
    return {
      ...base,
      kind: "state",
      change: {
        from: String(data?.from),
        to: row.name,
        cause: String(data?.cause),
        atMs: row.ts_us / MS,
      },
    };
  }
  return { ...base, kind: "watch", notice: { ...data, kind: row.name }, atMs: row.ts_us / MS };
}
