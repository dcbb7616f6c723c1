/**
 * Ctrl-R, reverse incremental history search, for a node:readline interface (which has none).
 *
 * As in bash and `qmp-shell`: Ctrl-R opens `(reverse-i-search)'': ` and each typed character
 * narrows to the newest history line containing the query; Ctrl-R again steps to older matches;
 * Enter runs the match; Ctrl-G or Esc gives the original line back; any other key (an arrow,
 * Ctrl-A, Ctrl-E, …) keeps the match on the line for editing and then does what it does.
 *
 * node:readline passes every key of a terminal through the interface's `_ttyWrite(s, key)`
 * (Node 20 reaches it from its internal symbol through a getter that returns `_ttyWrite`), so
 * wrapping that one method is the seam; `line`, `history`, `setPrompt`, `prompt(true)` and
 * `write` are public.
 *
 * @module
 */
import type { Interface } from "node:readline";

interface Key {
  readonly name?: string | undefined;
  readonly ctrl?: boolean | undefined;
  readonly meta?: boolean | undefined;
  readonly sequence?: string | undefined;
}

type TtyWrite = (s: string | undefined, key: Key | undefined) => void;

/** The index of the newest history entry at or after `from` containing `query`, or -1. */
export function findInHistory(history: readonly string[], query: string, from: number): number {
  for (let i = Math.max(0, from); i < history.length; i++) {
    if (history[i]!.includes(query)) return i;
  }
  return -1;
}

/**
 * Adds Ctrl-R to `rl` (a terminal interface). `prompt()` gives the normal prompt, read again
 * when the search ends since it shows the run state.
 */
export function installReverseSearch(rl: Interface, prompt: () => string): void {
  const withTty = rl as unknown as { _ttyWrite: TtyWrite; history: string[] };
  const original = withTty._ttyWrite.bind(rl);
  let search: { query: string; index: number; saved: string; failed: boolean } | undefined;

  /** Replaces the whole line being edited (through readline's own keys, so its state stays right). */
  const setLine = (text: string) => {
    original(undefined, { ctrl: true, name: "e" });
    original(undefined, { ctrl: true, name: "u" });
    if (text !== "") original(text, { sequence: text });
  };
  const render = () => {
    if (!search) return;
    const match = search.index >= 0 ? (withTty.history[search.index] ?? "") : "";
    rl.setPrompt(`(${search.failed ? "failed " : ""}reverse-i-search)'${search.query}': `);
    setLine(match);
    rl.prompt(true);
  };
  const finish = (line: string) => {
    search = undefined;
    rl.setPrompt(prompt());
    setLine(line);
    rl.prompt(true);
  };
  const find = (from: number) => {
    if (!search) return;
    const found = findInHistory(withTty.history, search.query, from);
    search.failed = found < 0;
    if (found >= 0) search.index = found;
    render();
  };

  withTty._ttyWrite = (s, key) => {
    if (!search) {
      if (key?.ctrl && key.name === "r") {
        search = { query: "", index: -1, saved: rl.line, failed: false };
        render();
        return;
      }
      original(s, key);
      return;
    }
    const match = search.index >= 0 ? (withTty.history[search.index] ?? "") : search.saved;
    if (key?.ctrl && key.name === "r") return find(search.index + 1);
    if ((key?.ctrl && key.name === "g") || key?.name === "escape") return finish(search.saved);
    if (key?.name === "backspace") {
      search.query = search.query.slice(0, -1);
      return find(0);
    }
    const printable = s !== undefined && s.length === 1 && !key?.ctrl && !key?.meta && s >= " ";
    if (printable && key?.name !== "return" && key?.name !== "enter") {
      search.query += s;
      return find(Math.max(0, search.index));
    }
    // Any other key ends the search with the match on the line, then does its own work.
    finish(match);
    original(s, key);
  };
}
