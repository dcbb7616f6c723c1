import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { findInHistory } from "../../src/cli/reverse-search.js";
import { closestNames, didYouMean, editDistance } from "../../src/cli/suggest.js";

const commands = ["query-status", "query-name", "query-migrate", "system_reset", "stop", "cont"];

suite("did you mean", () => {
  test("should offer the closest names of the VM's commands", () => {
    assert.deepEqual(closestNames("query-stauts", commands), ["query-status"]);
    assert.deepEqual(closestNames("system-reset", commands), ["system_reset"]);
    assert.equal(didYouMean("qeury-name", commands), " (did you mean query-name?)");
    assert.equal(didYouMean("stp", commands), " (did you mean stop?)");
    assert.equal(didYouMean("blockdev-add", commands), "");
    assert.equal(editDistance("a_b", "a-b"), 0);
  });
});

suite("reverse history search", () => {
  test("should find the newest entry containing the query, from a position on", () => {
    const history = ["set-action panic=bogus", "query-name", "set-action panic=pause"];
    assert.equal(findInHistory(history, "panic", 0), 0);
    assert.equal(findInHistory(history, "panic", 1), 2);
    assert.equal(findInHistory(history, "panic", 3), -1);
    assert.equal(findInHistory(history, "", 0), 0);
  });
});
