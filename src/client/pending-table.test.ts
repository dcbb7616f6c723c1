import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { PendingTable } from "./pending-table.js";

interface Entry {
  readonly seq: number;
}

const entry = (seq: number): Entry => ({ seq });

suite("PendingTable", () => {
  test("should find entries by seq and forget them once deleted", () => {
    const table = new PendingTable<Entry>();
    const [a, b, c] = [entry(1), entry(2), entry(5)];
    table.add(a);
    table.add(b);
    table.add(c);
    assert.equal(table.size, 3);
    assert.equal(table.get(1), a);
    assert.equal(table.get(5), c);
    assert.equal(table.get(3), undefined);
    assert.equal(table.get(6), undefined);
    assert.equal(table.delete(b), true);
    assert.equal(table.delete(b), false);
    assert.equal(table.get(2), undefined);
    assert.equal(table.size, 2);
    assert.deepEqual(table.values(), [a, c]);
  });

  test("should not delete a different entry that has the same seq", () => {
    const table = new PendingTable<Entry>();
    const a = entry(1);
    table.add(a);
    assert.equal(table.delete(entry(1)), false);
    assert.equal(table.get(1), a);
  });

  test("should keep the send order across removals from the head, the middle and the tail", () => {
    const table = new PendingTable<Entry>();
    const all = Array.from({ length: 10 }, (_, i) => entry(i + 1));
    for (const e of all) table.add(e);
    table.delete(all[0]!);
    table.delete(all[4]!);
    table.delete(all[9]!);
    table.delete(all[1]!);
    assert.deepEqual(
      table.values().map((e) => e.seq),
      [3, 4, 6, 7, 8, 9],
    );
    for (const e of all) {
      assert.equal(table.get(e.seq), [1, 2, 5, 10].includes(e.seq) ? undefined : e);
    }
    table.add(entry(11));
    assert.equal(table.get(11)?.seq, 11);
    assert.equal(table.size, 7);
  });

  test("should refuse a seq that does not grow", () => {
    const table = new PendingTable<Entry>();
    table.add(entry(4));
    assert.throws(() => table.add(entry(4)), RangeError);
    assert.throws(() => table.add(entry(3)), RangeError);
  });

  test("should start afresh once empty, with any larger seq", () => {
    const table = new PendingTable<Entry>();
    const a = entry(1);
    table.add(a);
    table.delete(a);
    assert.equal(table.size, 0);
    assert.equal(table.get(1), undefined);
    const b = entry(2);
    table.add(b);
    assert.equal(table.get(2), b);
    assert.deepEqual(table.values(), [b]);
  });

  test("should stay correct through compaction under a steady pipeline", () => {
    const table = new PendingTable<Entry>();
    const live: Entry[] = [];
    let seq = 0;
    // Always 3 in flight, answered in order, with an occasional out-of-order answer: the
    // table never empties, so only compaction bounds it.
    for (let i = 0; i < 3; i++) {
      const e = entry(++seq);
      table.add(e);
      live.push(e);
    }
    for (let round = 0; round < 5000; round++) {
      const victim = round % 7 === 0 ? live.splice(live.length - 1, 1)[0]! : live.shift()!;
      assert.equal(table.delete(victim), true);
      while (live.length < 3) {
        const e = entry(++seq);
        table.add(e);
        live.push(e);
      }
      if (round % 499 === 0) {
        assert.deepEqual(table.values(), live);
        for (const e of live) assert.equal(table.get(e.seq), e);
      }
    }
    assert.equal(table.size, 3);
    assert.deepEqual(table.values(), live);
  });

  test("should return everything in order when cleared, and be empty after", () => {
    const table = new PendingTable<Entry>();
    const all = [entry(3), entry(8), entry(9)];
    for (const e of all) table.add(e);
    table.delete(all[1]!);
    assert.deepEqual(table.clear(), [all[0], all[2]]);
    assert.equal(table.size, 0);
    assert.deepEqual(table.values(), []);
    assert.equal(table.get(3), undefined);
  });
});
