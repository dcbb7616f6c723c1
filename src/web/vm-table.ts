/**
 * The dashboard's table of VMs, kept from journal entries: for each VM (by host and name) its
 * address, QEMU version, run state with since-when and cause, connection state, last event.
 * The server keeps one (its `/api/vms` answer) and the page keeps its own from the same entries
 * (the live stream), so both apply this one module. Pure: it runs in the browser too.
 *
 * @module
 */

/** The connection of the watch to a VM. */
export type ConnectionState =
  | "connected"
  | "reconnecting"
  | "disconnected"
  | "waiting"
  /** Known from the journal's history only: nobody watches it now. */
  | "not watched";

/** One VM of the table. */
export interface VmRow {
  /** `HOST/NAME`. */
  readonly key: string;
  readonly host: string;
  readonly name: string;
  address: string;
  qemu: string | undefined;
  state: string | undefined;
  /** Since when the VM is in `state` (ms since the epoch). */
  stateSinceMs: number | undefined;
  /** What put it there: an event's name, `query-status`, `connected`. */
  cause: string | undefined;
  connection: ConnectionState;
  connectionSinceMs: number | undefined;
  lastEvent: string | undefined;
  lastEventMs: number | undefined;
  /** Events seen (since the table was made). */
  events: number;
  /** Gaps in the watch (reconnections, restarts of the watcher). */
  gaps: number;
  /** The sequence number of the last entry applied. */
  lastId: number;
}

/** The shape of a journal entry the table needs (a `JournalEntry`, or one sent as JSON). */
export type TableEntry = {
  readonly id: number;
  readonly vm: string;
  readonly host: string;
  readonly address: string;
  readonly receivedMs: number;
} & (
  | {
      readonly kind: "event";
      readonly event: {
        readonly event: string;
        readonly timestamp: { readonly seconds: number; readonly microseconds: number };
      };
    }
  | {
      readonly kind: "state";
      readonly change: { readonly to: string; readonly cause: string; readonly atMs: number };
    }
  | {
      readonly kind: "watch";
      readonly notice: { readonly kind: string; readonly [member: string]: unknown };
      readonly atMs: number;
    }
);

/** The table's key of a VM. */
export function vmKey(host: string, name: string): string {
  return `${host}/${name}`;
}

/** Milliseconds since the epoch of a QMP timestamp. */
export function eventTimeMs(ts: {
  readonly seconds: number;
  readonly microseconds: number;
}): number {
  return ts.seconds * 1000 + ts.microseconds / 1000;
}

/** The VMs, updated entry by entry. */
export class VmTable {
  readonly rows = new Map<string, VmRow>();

  /** Applies one entry (entries older than one already applied to the VM are ignored); returns the VM's row. */
  apply(entry: TableEntry): VmRow {
    const key = vmKey(entry.host, entry.vm);
    let row = this.rows.get(key);
    if (row === undefined) {
      row = {
        key,
        host: entry.host,
        name: entry.vm,
        address: entry.address,
        qemu: undefined,
        state: undefined,
        stateSinceMs: undefined,
        cause: undefined,
        connection: "waiting",
        connectionSinceMs: undefined,
        lastEvent: undefined,
        lastEventMs: undefined,
        events: 0,
        gaps: 0,
        lastId: 0,
      };
      this.rows.set(key, row);
    }
    if (entry.id <= row.lastId) return row;
    row.lastId = entry.id;
    if (entry.kind === "event") {
      row.lastEvent = entry.event.event;
      row.lastEventMs = eventTimeMs(entry.event.timestamp);
      row.events++;
    } else if (entry.kind === "state") {
      this.#state(row, entry.change.to, entry.change.atMs, entry.change.cause);
    } else {
      const n = entry.notice;
      const at = entry.atMs;
      if (typeof n.address === "string") row.address = n.address;
      if (typeof n.qemu === "string") row.qemu = n.qemu;
      if (n.kind === "connected") {
        this.#connection(row, "connected", at);
        if (typeof n.state === "string" && n.state !== row.state)
          this.#state(row, n.state, at, "connected");
      } else if (n.kind === "reconnected") {
        this.#connection(row, "connected", at);
        row.gaps++;
      } else if (n.kind === "disconnected") {
        this.#connection(row, n.reconnecting === true ? "reconnecting" : "disconnected", at);
      } else if (n.kind === "waiting") {
        this.#connection(row, "waiting", at);
      }
    }
    return row;
  }

  #state(row: VmRow, state: string, atMs: number, cause: string): void {
    if (row.state === state) return;
    row.state = state;
    row.stateSinceMs = atMs;
    row.cause = cause;
  }

  #connection(row: VmRow, connection: ConnectionState, atMs: number): void {
    if (row.connection === connection) return;
    row.connection = connection;
    row.connectionSinceMs = atMs;
  }

  /** Marks every VM as known from history only (at start, before anyone watches). */
  unwatchAll(): void {
    for (const row of this.rows.values()) row.connection = "not watched";
  }

  /** The rows, by key. */
  list(): VmRow[] {
    return [...this.rows.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
