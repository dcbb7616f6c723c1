/**
 * The live side of the dashboard: what the journal commits, handed to the VM table, the metrics
 * and every listener (the server-sent-event streams), with the journal's sequence numbers.
 *
 * - A writer journal (the dashboard watches VMs, or a fleet source feeds it) announces each
 *   commit (`Journal.onCommit`): nothing reaches a page before it is in the journal, so a page
 *   that resumes from the journal after a sequence number misses nothing.
 * - A read-only journal (another process records: `qmpkit record`, an agent) is followed by
 *   polling its new rows (`entries({afterId})`) every `pollMs`.
 *
 * @module
 */
import type { Journal, JournalEntry } from "../journal/index.js";
import type { QmpkitMetrics } from "./metrics.js";
import { VmTable } from "./vm-table.js";

/** Options of {@link LiveFeed.open}. */
export interface LiveFeedOptions {
  /** Fed every entry, history's run states and connections included. */
  readonly metrics?: QmpkitMetrics | undefined;
  /** A read-only journal's polling period (ms). Default 200. */
  readonly pollMs?: number | undefined;
}

/** Hears each committed batch of entries, in sequence order. */
export type FeedListener = (entries: readonly JournalEntry[]) => void;

/** The VM table and the live entries of one journal. */
export class LiveFeed {
  readonly journal: Journal;
  readonly table = new VmTable();
  readonly #metrics: QmpkitMetrics | undefined;
  readonly #listeners = new Set<FeedListener>();
  #lastId = 0;
  #stop: (() => void) | undefined;

  private constructor(journal: Journal, options: LiveFeedOptions) {
    this.journal = journal;
    this.#metrics = options.metrics;
  }

  /**
   * Reads the journal's history of run states and connections into the table (for a writer,
   * every VM then "not watched" until a watch says otherwise), then follows the journal.
   */
  static async open(journal: Journal, options: LiveFeedOptions = {}): Promise<LiveFeed> {
    const feed = new LiveFeed(journal, options);
    const start = journal.lastId();
    if (!journal.readonly) feed.#stop = journal.onCommit((entries) => feed.#dispatch(entries));
    for await (const e of journal.entries({ kinds: ["state", "watch"], beforeId: start + 1 })) {
      feed.table.apply(e);
      feed.#metrics?.observe(e);
    }
    feed.table.unwatchAll();
    for (const row of feed.table.rows.values())
      options.metrics?.connected(row.host, row.name, false);
    feed.#lastId = Math.max(feed.#lastId, start);
    if (journal.readonly) {
      let busy = false;
      const timer = setInterval(async () => {
        if (busy) return;
        busy = true;
        try {
          const batch: JournalEntry[] = [];
          for await (const e of journal.entries({ afterId: feed.#lastId })) batch.push(e);
          if (batch.length > 0) feed.#dispatch(batch);
        } finally {
          busy = false;
        }
      }, options.pollMs ?? 200);
      timer.unref();
      feed.#stop = () => clearInterval(timer);
    }
    return feed;
  }

  /** The sequence number of the last entry handed out (the table reflects it). */
  get lastId(): number {
    return this.#lastId;
  }

  #dispatch(entries: readonly JournalEntry[]): void {
    const fresh = entries.filter((e) => e.id > this.#lastId);
    if (fresh.length === 0) return;
    for (const e of fresh) {
      this.table.apply(e);
      this.#metrics?.observe(e);
    }
    this.#lastId = fresh[fresh.length - 1]!.id;
    for (const listener of this.#listeners) listener(fresh);
  }

  /** Calls `listener` with every batch from now on; returns the function that stops it. */
  subscribe(listener: FeedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops following the journal (the journal stays open). */
  close(): void {
    this.#stop?.();
    this.#stop = undefined;
    this.#listeners.clear();
  }
}
