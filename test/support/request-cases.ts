/**
 * Test support: one request case sent byte for byte to a QMP server (real QEMU, QmpServer or the
 * simulator) on a fresh connection, and the lines it answers. The conformance tests run each
 * case against real QEMU and against qmpkit and compare the lines.
 *
 * A case ends with a sentinel request whose reply (`"id": "__end"`) marks the end of its output,
 * so no case waits on a quiet period.
 */
import assert from "node:assert/strict";
import { RawQmp } from "./real-qemu.js";

/** The state the case starts in: before negotiation, negotiated, or negotiated with `oob`. */
export type RequestCaseMode = "negotiating" | "command" | "oob";

export interface RequestCase {
  readonly name: string;
  readonly mode: RequestCaseMode;
  /** Each element is one write. */
  readonly send: ReadonlyArray<string | Uint8Array>;
  /** exec-oob replies (ids starting `oob-`) may come anywhere: compare them as a set. */
  readonly oobMayOvertake?: boolean;
}

const SENTINEL = '{"execute":"query-name","id":"__end"}';

/**
 * Runs `c` against the server at `path`: the lines received, the sentinel's reply included.
 * Event timestamps differ from run to run (§1.6), so they read `<ts>`; nothing else is changed.
 */
export async function runRequestCase(path: string, c: RequestCase): Promise<string[]> {
  const qmp = await RawQmp.connect(path);
  try {
    const greeting = await qmp.nextLine();
    assert.ok(greeting?.startsWith('{"QMP"'), `no greeting for ${c.name}: ${greeting}`);
    if (c.mode !== "negotiating") {
      qmp.send(
        c.mode === "oob"
          ? '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}'
          : '{"execute":"qmp_capabilities"}',
      );
      assert.equal(await qmp.nextLine(), '{"return": {}}\r\n');
    }
    for (const chunk of c.send) qmp.send(chunk);
    qmp.send(SENTINEL);
    const lines: string[] = [];
    for (;;) {
      const line = await qmp.nextLine(5_000);
      if (line === undefined) {
        lines.push("<no sentinel reply: stream ended or timed out>");
        return lines;
      }
      lines.push(
        line.replace(
          /^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}/,
          '{"timestamp": <ts>',
        ),
      );
      if (line.includes('"id": "__end"')) return lines;
    }
  } finally {
    qmp.close();
  }
}
