/**
 * The journal's SQLite schema, versioned by `PRAGMA user_version`: migration N brings a
 * database at version N-1 to version N, in one transaction. A database from a newer qmpkit
 * (a version above the last migration) is refused rather than misread.
 *
 * Tables:
 * - `vms`: one row per VM (host, name, socket address);
 * - `connections`: one row per connection to a VM (the QEMU version it greeted with, when it
 *   opened and closed): the boot/connection id every row of the VM carries;
 * - `entries`: what the VM said and what happened to the watch, in the order received (`id`):
 *   `kind` `event` (`name`, `data` as QEMU sent them, `ts_us` QEMU's own timestamp),
 *   `state` (a run-state change: `name` the new state, `data` `{from, cause}`, `ts_us` the
 *   causing event's timestamp), `watch` (a notice: connected, disconnected, reconnected with
 *   the gap, …; `name` the kind, `data` its members, `ts_us` local time). `received_us` is the
 *   local time it was received (written);
 * - `sessions` and `frames`: recorded sessions (a proxy's clients and its upstream), every frame
 *   in both directions with a monotonic time (`mono_ns`, from `process.hrtime`) and the wall clock;
 * - `meta`: key/value (the last commit's time; the outbox's id).
 * - `outbox` (version 2): the fleet agent's messages waiting for the stream (`outbox.ts`): each
 *   row one message, `seq` its number (AUTOINCREMENT: never reused, even once every row is
 *   deleted, since its number is part of the message id the stream de-duplicates by), `key` the
 *   VM it belongs to (messages of one key are published in `seq` order), `vm_seq` its number among
 *   the VM's messages, `subject` and `payload` what is published; `acked_us` and `stream_seq` set
 *   when the stream acknowledged it (NULL while waiting);
 * - `outbox_keys` (version 2): per VM key, the last `vm_seq` given and when (an agent started
 *   again on the same file goes on counting, and knows since when it did not watch).
 *
 * Indexes are few on purpose, since each costs every insert: rows are found by `id` (the order
 * received, which is also the order in time: retention and time ranges walk it), and by VM.
 *
 * @module
 */

/** Each migration, index 0 bringing version 0 (an empty file) to 1. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE vms (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    UNIQUE (host, name, address)
  );
  CREATE TABLE connections (
    id INTEGER PRIMARY KEY,
    vm INTEGER NOT NULL REFERENCES vms(id),
    qemu TEXT,
    opened_us INTEGER NOT NULL,
    closed_us INTEGER
  );
  CREATE INDEX connections_vm ON connections (vm, id);
  CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    vm INTEGER NOT NULL,
    conn INTEGER,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'state', 'watch')),
    name TEXT NOT NULL,
    data TEXT,
    ts_us INTEGER NOT NULL,
    received_us INTEGER NOT NULL
  );
  CREATE INDEX entries_vm ON entries (vm, id);
  CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    vm INTEGER NOT NULL REFERENCES vms(id),
    peer TEXT NOT NULL,
    opened_us INTEGER NOT NULL,
    closed_us INTEGER
  );
  CREATE TABLE frames (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    mono_ns INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    text TEXT NOT NULL
  );
  CREATE INDEX frames_session ON frames (session, id);
  CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
  `,
  `
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    vm_seq INTEGER NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    acked_us INTEGER,
    stream_seq INTEGER
  );
  CREATE INDEX outbox_waiting ON outbox (seq) WHERE acked_us IS NULL;
  CREATE TABLE outbox_keys (
    key TEXT PRIMARY KEY,
    last_vm_seq INTEGER NOT NULL,
    last_us INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
];

/** The schema version this qmpkit writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
