/**
 * The commands of one connection that wait for their reply, kept in the order they were sent.
 *
 * A command's number (`seq`) grows with every command, so the table is a sorted run of slots:
 * adding appends, and a reply finds its command at the head when replies come in order (every
 * in-band reply does, §1.7), else by a binary search. A removed command leaves an empty slot
 * that the head skips; the slots are reused once the table is empty and compacted when a long
 * run of them has built up, so that a steady stream of commands allocates nothing here. This
 * replaces a `Map` keyed by number, whose entries churn (one set and one delete per command)
 * and whose backing store V8 rebuilds every few commands (issue 2 §6).
 *
 * @module
 */

/** Slots before the head are given back once at least this many (and half the run) are empty. */
const COMPACT_AFTER = 1024;

/** What the table holds: anything with a `seq`, strictly greater than the previous one added. */
export interface Sequenced {
  readonly seq: number;
}

export class PendingTable<T extends Sequenced> {
  /** Slots `[head, tail)` hold the entries in `seq` order; a removed entry leaves `undefined`. */
  readonly #items: Array<T | undefined> = [];
  /** The `seq` of every slot, kept after removal so that the run stays searchable. */
  readonly #seqs: number[] = [];
  #head = 0;
  #tail = 0;
  #size = 0;

  /** How many entries wait. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds an entry after all the others.
   * @throws RangeError when its `seq` is not greater than every `seq` added before.
   */
  add(item: T): void {
    if (this.#size === 0) {
      this.#head = 0;
      this.#tail = 0;
    } else if (item.seq <= this.#seqs[this.#tail - 1]!) {
      throw new RangeError(
        `pending command ${item.seq} added after ${this.#seqs[this.#tail - 1]}: numbers must grow`,
      );
    }
    this.#items[this.#tail] = item;
    this.#seqs[this.#tail] = item.seq;
    this.#tail++;
    this.#size++;
  }

  /** The entry numbered `seq`, if it waits. */
  get(seq: number): T | undefined {
    if (this.#size === 0) return undefined;
    if (this.#seqs[this.#head] === seq) return this.#items[this.#head];
    const at = this.#find(seq);
    return at < 0 ? undefined : this.#items[at];
  }

  /** Removes `item`; false when it was not waiting. */
  delete(item: T): boolean {
    if (this.#size === 0) return false;
    const at = this.#items[this.#head] === item ? this.#head : this.#find(item.seq);
    if (at < 0 || this.#items[at] !== item) return false;
    this.#items[at] = undefined;
    this.#size--;
    if (this.#size === 0) {
      this.#head = 0;
      this.#tail = 0;
      // Give back the slots of a large burst; a short run keeps them for the next commands.
      if (this.#items.length > COMPACT_AFTER) {
        this.#items.length = 0;
        this.#seqs.length = 0;
      }
      return true;
    }
    if (at === this.#head) {
      while (this.#items[this.#head] === undefined) this.#head++;
      if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#tail) this.#compact();
    }
    return true;
  }

  /** The waiting entries, in the order added (a copy: the table may change meanwhile). */
  values(): T[] {
    const out: T[] = [];
    for (let i = this.#head; i < this.#tail; i++) {
      const item = this.#items[i];
      if (item !== undefined) out.push(item);
    }
    return out;
  }

  /** Empties the table; returns what it held, in the order added. */
  clear(): T[] {
    const out = this.values();
    this.#items.length = 0;
    this.#seqs.length = 0;
    this.#head = 0;
    this.#tail = 0;
    this.#size = 0;
    return out;
  }

  /** The slot of `seq` in `[head, tail)` (binary search: the seqs ascend), or -1. */
  #find(seq: number): number {
    let lo = this.#head;
    let hi = this.#tail - 1;
    const seqs = this.#seqs;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = seqs[mid]!;
      if (at === seq) return mid;
      if (at < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Moves the run `[head, tail)` to the front, dropping the empty slots before it. */
  #compact(): void {
    const n = this.#tail - this.#head;
    this.#items.copyWithin(0, this.#head, this.#tail);
    this.#seqs.copyWithin(0, this.#head, this.#tail);
    this.#items.length = n;
    this.#seqs.length = n;
    this.#head = 0;
    this.#tail = n;
  }
}
