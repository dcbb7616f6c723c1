/**
 * Malformed-input benchmark: how fast the server answers a stream of bytes QEMU's lexer rejects
 * one by one (control characters: one `JSON parse error, invalid character` reply each, as QEMU
 * sends), against the same number of well-formed requests it refuses after parsing
 * (`[]`: `QMP input must be a JSON object`), over the same unix socket, measured side by side.
 * The replies are about the same size, so the ratio shows what a parse error costs beyond a
 * refusal.
 *
 * Three settings, rounds alternating (odd rounds in reverse) so that machine noise hits both
 * sides alike; ratios are medians of per-round ratios:
 *
 * - **server**: `QmpServer` over a unix socket, a negotiated client writing the whole input at
 *   once and counting reply lines; replies/s for control bytes and for `[]` requests.
 * - **decoder**: `JsonStreamDecoder.push` alone on the same bytes (server dialect), items/s.
 *
 * Run: `npx tsx bench/malformed.ts [count] [rounds]`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { QmpServer } from "../src/server/index.js";
import { JsonStreamDecoder } from "../src/wire/index.js";
import { median } from "./support/events.js";

/** What one run measured. */
export interface MalformedResult {
  readonly count: number;
  readonly rounds: number;
  /** Replies per second to control bytes, and to refused `[]` requests, over the socket. */
  readonly serverMalformed: number;
  readonly serverRefused: number;
  readonly serverRatio: number;
  /** Decoder items per second for the same inputs. */
  readonly decoderMalformed: number;
  readonly decoderRefused: number;
  readonly decoderRatio: number;
}

function openSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Negotiates, writes `input`, and resolves with replies/s once `expected` replies arrived. */
async function serve(path: string, input: Buffer, expected: number, desc: string): Promise<number> {
  const socket = await openSocket(path);
  try {
    let text = "";
    let lines = 0;
    let start = 0;
    let negotiated = false;
    const done = new Promise<number>((resolve, reject) => {
      socket.on("error", reject);
      socket.on("close", () => reject(new Error(`closed after ${lines} replies`)));
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => {
        text += chunk;
        for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 1);
          if (line.startsWith('{"QMP"')) {
            socket.write('{"execute":"qmp_capabilities"}');
            continue;
          }
          if (!negotiated) {
            negotiated = true;
            start = performance.now();
            socket.write(input);
            continue;
          }
          if (lines === 0 && !line.includes(desc)) {
            reject(new Error(`unexpected reply: ${line}`));
            return;
          }
          if (++lines === expected) resolve(expected / ((performance.now() - start) / 1000));
        }
      });
    });
    return await done;
  } finally {
    socket.destroy();
  }
}

function decode(input: Buffer, expected: number): number {
  const decoder = new JsonStreamDecoder({ dialect: "qemu" });
  const start = performance.now();
  const items = decoder.push(input).length + decoder.end().length;
  const seconds = (performance.now() - start) / 1000;
  if (items !== expected) throw new Error(`decoder gave ${items} items, expected ${expected}`);
  return items / seconds;
}

/** Runs the benchmark: `count` replies per side and round. */
export async function malformedBench(count = 100_000, rounds = 5): Promise<MalformedResult> {
  const malformed = Buffer.alloc(count, 0x01);
  const refused = Buffer.from("[]".repeat(count), "latin1");
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-malformed-"));
  const server = new QmpServer();
  const path = join(dir, "qmp.sock");
  await server.listen(`unix:${path}`);
  const r = { sm: [] as number[], sr: [] as number[], dm: [] as number[], dr: [] as number[] };
  try {
    for (let round = 0; round < rounds; round++) {
      const sides = [
        async () => r.sm.push(await serve(path, malformed, count, "JSON parse error")),
        async () => r.sr.push(await serve(path, refused, count, "must be a JSON object")),
        async () => r.dm.push(decode(malformed, count)),
        async () => r.dr.push(decode(refused, count)),
      ];
      if (round % 2 === 1) sides.reverse();
      for (const side of sides) await side();
    }
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    count,
    rounds,
    serverMalformed: median(r.sm),
    serverRefused: median(r.sr),
    serverRatio: median(r.sm.map((m, i) => m / r.sr[i]!)),
    decoderMalformed: median(r.dm),
    decoderRefused: median(r.dr),
    decoderRatio: median(r.dm.map((m, i) => m / r.dr[i]!)),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const count = Number(process.argv[2] ?? 100_000);
  const rounds = Number(process.argv[3] ?? 5);
  const res = await malformedBench(count, rounds);
  const k = (n: number) => `${(n / 1000).toFixed(1)}k/s`;
  console.log(
    `malformed input: ${res.count} control bytes vs ${res.count} '[]' requests, ${res.rounds} rounds`,
  );
  console.log(
    `  server:  parse errors ${k(res.serverMalformed)}, refusals ${k(res.serverRefused)}, ratio ${res.serverRatio.toFixed(2)}`,
  );
  console.log(
    `  decoder: parse errors ${k(res.decoderMalformed)}, values ${k(res.decoderRefused)}, ratio ${res.decoderRatio.toFixed(2)}`,
  );
  console.log(
    `  1 MiB of control bytes at this rate: ${((1024 * 1024) / res.serverMalformed).toFixed(1)} s`,
  );
}
