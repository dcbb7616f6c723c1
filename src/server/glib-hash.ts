/**
 * Which unexpected argument QEMU names when there are several.
 *
 * QEMU's input visitor (`qapi/qobject-input-visitor.c`) copies the keys of each object it visits
 * into a GLib `GHashTable` (in QDict iteration order), removes each key as the schema visits that
 * member, and at the end reports the *first key left in the hash table's own iteration order*:
 * `Parameter 'b' is unexpected`. That order is GLib's open-addressing layout, so this module
 * replays GLib's `GHashTable` (`glib/ghash.c`, 2.60 and later: `g_str_hash`, index
 * `hash * 11 % prime`, quadratic probing, tombstones, resizing on insert and remove, in-place
 * rehash) far enough to know the slot order.
 *
 * Checked against QEMU 7.2.22 (Debian 12's GLib 2.74) on 160 random argument sets of 2–26 keys,
 * with and without visited members removed: all agree.
 *
 * Pure: no `node:*` imports.
 *
 * @module
 */

/** `prime_mod` of ghash.c, indexed by shift. */
const primeMod = [
  1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
  262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689,
  268435399, 536870909, 1073741789, 2147483647,
];
const MIN_SHIFT = 3;
const UNUSED = 0;
const TOMBSTONE = 1;

const encoder = new TextEncoder();

/** GLib's `g_str_hash`: djb2 over the bytes taken as *signed* chars. */
export function gStrHash(key: string): number {
  let h = 5381;
  for (const byte of encoder.encode(key)) {
    h = (Math.imul(h, 33) + (byte > 127 ? byte - 256 : byte)) >>> 0;
  }
  return h;
}

/** A string-keyed GLib hash set, reduced to what decides iteration order. */
class GHashTableModel {
  private size = 0;
  private mod = 0;
  private mask = 0;
  private hashes: number[] = [];
  private keys: Array<string | undefined> = [];
  private nnodes = 0;
  private noccupied = 0;

  constructor() {
    this.setShift(MIN_SHIFT);
    this.hashes = new Array<number>(this.size).fill(UNUSED);
    this.keys = new Array<string | undefined>(this.size).fill(undefined);
  }

  private setShift(shift: number): void {
    this.size = 1 << shift;
    this.mod = primeMod[shift]!;
    this.mask = this.size - 1;
  }

  private toIndex(hash: number): number {
    // (hash * 11) % mod in guint arithmetic.
    return (Math.imul(hash, 11) >>> 0) % this.mod;
  }

  private lookup(key: string): { index: number; hash: number; found: boolean } {
    let hash = gStrHash(key);
    if (hash < 2) hash = 2; // HASH_IS_REAL
    let index = this.toIndex(hash);
    let step = 0;
    let tombstone = -1;
    while (this.hashes[index] !== UNUSED) {
      if (this.hashes[index] === hash && this.keys[index] === key)
        return { index, hash, found: true };
      if (this.hashes[index] === TOMBSTONE && tombstone < 0) tombstone = index;
      step++;
      index = (index + step) & this.mask;
    }
    return { index: tombstone >= 0 ? tombstone : index, hash, found: false };
  }

  insert(key: string): void {
    const { index, hash, found } = this.lookup(key);
    if (found) return;
    const old = this.hashes[index];
    this.hashes[index] = hash;
    this.keys[index] = key;
    this.nnodes++;
    if (old === UNUSED) {
      this.noccupied++;
      this.maybeResize();
    }
  }

  remove(key: string): void {
    const { index, found } = this.lookup(key);
    if (!found) return;
    this.hashes[index] = TOMBSTONE;
    this.keys[index] = undefined;
    this.nnodes--;
    this.maybeResize();
  }

  private maybeResize(): void {
    const n = this.noccupied;
    if (
      (this.size > this.nnodes * 4 && this.size > 1 << MIN_SHIFT) ||
      this.size <= n + Math.floor(n / 16)
    ) {
      this.resize();
    }
  }

  /** `g_hash_table_resize` with `resize_map`'s in-place rehash (eviction chains). */
  private resize(): void {
    const oldSize = this.size;
    let wanted = Math.trunc(this.nnodes * 1.333);
    let shift = 0;
    for (; wanted; shift++) wanted >>= 1;
    this.setShift(Math.max(shift, MIN_SHIFT));
    for (let i = oldSize; i < this.size; i++) {
      this.hashes[i] = UNUSED;
      this.keys[i] = undefined;
    }
    const relocated = new Array<boolean>(Math.max(this.size, oldSize)).fill(false);
    for (let i = 0; i < oldSize; i++) {
      let hash = this.hashes[i]!;
      if (hash < 2) {
        this.hashes[i] = UNUSED;
        continue;
      }
      if (relocated[i]) continue;
      this.hashes[i] = UNUSED;
      let key = this.keys[i];
      this.keys[i] = undefined;
      for (;;) {
        let j = this.toIndex(hash);
        let step = 0;
        while (relocated[j]) {
          step++;
          j = (j + step) & this.mask;
        }
        relocated[j] = true;
        const replacedHash = this.hashes[j]!;
        const replacedKey = this.keys[j];
        this.hashes[j] = hash;
        this.keys[j] = key;
        if (replacedHash < 2) break;
        hash = replacedHash;
        key = replacedKey;
      }
    }
    this.hashes.length = this.size;
    this.keys.length = this.size;
    this.noccupied = this.nnodes;
  }

  /** The keys in `g_hash_table_iter_next`'s order (slot order). */
  keysInOrder(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.size; i++) if (this.hashes[i]! >= 2) out.push(this.keys[i]!);
    return out;
  }

  /** The first key `g_hash_table_iter_next` returns. */
  first(): string | undefined {
    for (let i = 0; i < this.size; i++) if (this.hashes[i]! >= 2) return this.keys[i];
    return undefined;
  }
}

/**
 * The key QEMU's `qobject_input_check_struct` names: the object's keys inserted into a GLib hash
 * table in QDict iteration order (`qdictOrder`), the members the schema visited removed in
 * visiting order, then the first key left.
 */
export function firstUnvisitedKey(
  qdictOrder: readonly string[],
  visited: readonly string[],
): string | undefined {
  const table = new GHashTableModel();
  for (const key of qdictOrder) table.insert(key);
  for (const key of visited) table.remove(key);
  return table.first();
}

/**
 * The order in which `g_hash_table_iter_next` returns string keys inserted in `inserted` order
 * (and then `removed`). QOM keeps an object's properties, hence its children, in such a table:
 * `qom-list` and `query-chardev` list them from it (reversed, as they prepend to their lists).
 */
export function gHashTableOrder(
  inserted: readonly string[],
  removed: readonly string[] = [],
): string[] {
  const table = new GHashTableModel();
  for (const key of inserted) table.insert(key);
  for (const key of removed) table.remove(key);
  return table.keysInOrder();
}
