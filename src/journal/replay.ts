/**
 * Replay: a recorded session served as a fake QEMU.
 *
 * A {@link ReplayScript} is what a QEMU said in one recorded session, cut into exchanges: each
 * command the client sent, QEMU's reply to it, and the events QEMU sent after it (until the
 * next command), each with its delay after the command. {@link replaySession} listens and, for
 * every client that connects, plays the script:
 *
 * - the greeting as recorded (its text);
 * - each command answered with the recorded reply, only the `id` swapped for the live one (a
 *   recorded reply's other bytes are sent as QEMU printed them);
 * - the events recorded after a command sent the same time after the live command (scaled by
 *   `speed`; 0 sends them at once) with their **recorded** timestamps, unchanged, as QEMU
 *   printed them. Everything goes out in the recorded order: a reply recorded after an event
 *   waits for that event;
 * - `strict` mode: commands must come in the recorded order with equal arguments (JSON values
 *   compared, not text); a different command gets a GenericError saying what was expected and
 *   what was received, and a report (a diff) goes to `report` (default stderr); the recording's
 *   position stays, so the right command can still follow;
 * - `keyed` mode: a command is matched by name, arguments and occurrence (the second
 *   `query-status` gets the second recorded answer), in any order. A command repeated more often
 *   than recorded gets its last recorded reply again, without events. A name never recorded
 *   gets QEMU's CommandNotFound; a recorded name with other arguments a GenericError;
 * - `qmp_capabilities` is matched by its name alone (with or without `enable`, whatever the
 *   recording client did, e.g. a proxy that enabled OOB);
 * - before the recorded `qmp_capabilities` is matched, a command recorded after it gets QEMU's
 *   negotiation error (`monitor/qmp.c`) in keyed mode, as QEMU would answer (strict: a mismatch);
 * - malformed input (bad JSON, no `execute`, …) gets QEMU's own error texts (the server
 *   layer's request check), never a hang.
 *
 * Each client gets the whole recording from its start; clients are served independently.
 *
 * Sources: a journal's recorded session ({@link scriptFromJournal}: a proxy's upstream session
 * `qemu`, or any session whose frames include a greeting), or libvirt's capability recordings
 * (`tests/qemucapabilitiesdata/caps_*.replies`: commands and replies separated by blank lines;
 * {@link scriptFromReplies}); {@link loadReplayScript} tells them apart by their first bytes.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import { QmpError } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { checkRequest, DEFAULT_VERSION } from "../server/index.js";
import {
  Connection,
  JsonStreamDecoder,
  type JsonStreamItem,
  type Listener,
  listen,
  qdictKeyOrder,
  restoreQdictOrder,
  writeQemuJson,
} from "../wire/index.js";
import { Journal, type JournalFrame } from "./journal.js";

/** A recording that cannot be replayed (no greeting, unknown session, unreadable file). */
export class ReplayError extends QmpError {
  override name = "ReplayError";
}

/** A message QEMU sent after a command: its reply or an event. */
export interface ReplayOutput {
  /** The text as QEMU printed it (no line end). */
  readonly text: string;
  readonly value: JsonObject;
  /** Whether it is the command's reply (`return` or `error`), else an event. */
  readonly reply: boolean;
  /** How long after the command it was recorded (ns). */
  readonly delayNs: bigint;
}

/** One recorded command and what QEMU sent after it. */
export interface ReplayExchange {
  /** Position among the recorded commands (0-based). */
  readonly index: number;
  /** The command as the client sent it. */
  readonly text: string;
  readonly name: string;
  readonly args: JsonObject;
  /** Whether it was sent after `qmp_capabilities` succeeded. */
  readonly negotiated: boolean;
  /** The reply and the events, in the order recorded. */
  readonly output: readonly ReplayOutput[];
}

/** A recorded session, ready to be played. */
export interface ReplayScript {
  /** Where it came from (for messages). */
  readonly source: string;
  /** The greeting as QEMU printed it. */
  readonly greeting: string;
  readonly exchanges: readonly ReplayExchange[];
}

/** One frame of a recording, as {@link buildReplayScript} needs it. */
export interface RecordedFrame {
  /** `server`: QEMU wrote it; `client`: the client did. */
  readonly from: "server" | "client";
  readonly text: string;
  /** A monotonic time (ns); only differences matter. */
  readonly monoNs: bigint;
}

// ----------------------------------------------------------------------------- building scripts

function parseMessages(text: string): JsonValue[] {
  const decoder = new JsonStreamDecoder({ dialect: "client" });
  const out: JsonValue[] = [];
  for (const item of decoder.push(Buffer.from(`${text}\n`))) {
    if (item.kind === "value") out.push(item.value);
  }
  return out;
}

function parseOne(text: string): JsonValue | undefined {
  const values = parseMessages(text);
  return values.length === 1 ? values[0] : undefined;
}

const isReply = (v: JsonObject) => Object.hasOwn(v, "return") || Object.hasOwn(v, "error");

/**
 * Cuts a recording into exchanges. A reply belongs to the pending command with its `id` (else to
 * the oldest pending one, as QEMU answers in order); an event to the last command sent before it.
 *
 * @throws ReplayError when the server never greeted.
 */
export function buildReplayScript(frames: Iterable<RecordedFrame>, source: string): ReplayScript {
  let greeting: string | undefined;
  const exchanges: {
    index: number;
    text: string;
    name: string;
    args: JsonObject;
    id: JsonValue | undefined;
    negotiated: boolean;
    atNs: bigint;
    output: ReplayOutput[];
  }[] = [];
  // Client frames waiting for their reply; malformed ones (undefined) still take one.
  const pending: ((typeof exchanges)[number] | undefined)[] = [];
  let negotiated = false;
  for (const frame of frames) {
    const value = parseOne(frame.text);
    if (frame.from === "client") {
      if (!isJsonObject(value) || typeof (value.execute ?? value["exec-oob"]) !== "string") {
        pending.push(undefined);
        continue;
      }
      const exchange = {
        index: exchanges.length,
        text: frame.text,
        name: (value.execute ?? value["exec-oob"]) as string,
        args: isJsonObject(value.arguments) ? value.arguments : {},
        id: value.id,
        negotiated,
        atNs: frame.monoNs,
        output: [],
      };
      exchanges.push(exchange);
      pending.push(exchange);
      continue;
    }
    if (!isJsonObject(value)) continue;
    if (greeting === undefined) {
      if (Object.hasOwn(value, "QMP")) greeting = frame.text;
      continue;
    }
    if (isReply(value)) {
      let at = pending.findIndex((e) => e !== undefined && sameJson(e.id, value.id));
      if (at < 0) at = 0;
      const [owner] = pending.splice(at, 1);
      if (owner === undefined) continue;
      owner.output.push({
        text: frame.text,
        value,
        reply: true,
        delayNs: frame.monoNs - owner.atNs,
      });
      if (owner.name === "qmp_capabilities" && Object.hasOwn(value, "return")) negotiated = true;
    } else if (Object.hasOwn(value, "event")) {
      const owner = exchanges.at(-1);
      if (owner === undefined) continue;
      owner.output.push({
        text: frame.text,
        value,
        reply: false,
        delayNs: frame.monoNs - owner.atNs,
      });
    }
  }
  if (greeting === undefined) throw new ReplayError(`${source}: the recording has no QMP greeting`);
  return {
    source,
    greeting,
    exchanges: exchanges.map(({ index, text, name, args, negotiated, output }) => ({
      index,
      text,
      name,
      args,
      negotiated,
      output,
    })),
  };
}

/**
 * The script of a session recorded in a journal: `session` by id, or by default the last
 * session with QEMU (peer `qemu`, what `proxy --record` writes for its upstream), else the last
 * session. The side that sent the greeting is QEMU's.
 *
 * @throws ReplayError when the journal has no such session, or it has no greeting.
 */
export async function scriptFromJournal(
  journal: Journal,
  session?: number | undefined,
): Promise<ReplayScript> {
  const bySession = new Map<number, JournalFrame[]>();
  for await (const frame of journal.frames(session === undefined ? {} : { session })) {
    let list = bySession.get(frame.session);
    if (list === undefined) bySession.set(frame.session, (list = []));
    list.push(frame);
  }
  if (bySession.size === 0) {
    throw new ReplayError(
      session === undefined
        ? `${journal.path}: the journal has no recorded session`
        : `${journal.path}: no recorded session ${session}`,
    );
  }
  const ids = [...bySession.keys()];
  const chosen =
    session ?? ids.filter((id) => bySession.get(id)![0]!.peer === "qemu").at(-1) ?? ids.at(-1)!;
  const frames = bySession.get(chosen)!;
  const greeting = frames.find((f) => /^\{\s*"QMP"/.test(f.text));
  if (greeting === undefined) {
    throw new ReplayError(`${journal.path}: session ${chosen} has no QMP greeting`);
  }
  const serverSide = greeting.direction;
  return buildReplayScript(
    frames.map((f) => ({
      from: f.direction === serverSide ? "server" : "client",
      text: f.text,
      monoNs: f.monoNs,
    })),
    `${journal.path} session ${chosen}`,
  );
}

/**
 * The script of a libvirt capability recording (`caps_*.replies`): JSON objects separated by
 * blank lines, each command followed by its reply (libvirt ids `libvirt-N`). The replies are
 * printed again as QEMU prints them (libvirt stores them indented, members in QEMU's order). Without a greeting in the
 * file, one is made from the recorded `query-version` answer (capabilities `["oob"]`). No
 * times are recorded: everything is answered at once.
 *
 * @throws ReplayError when the text holds no command.
 */
export function scriptFromReplies(text: string, source = "replies"): ReplayScript {
  const values = parseMessages(text);
  const frames: RecordedFrame[] = [];
  let version: JsonValue | undefined;
  let last: string | undefined;
  for (const parsed of values) {
    if (!isJsonObject(parsed)) continue;
    // libvirt keeps the members in the order QEMU printed them: restored, they print the same.
    const value = restoreQdictOrder(parsed) as JsonObject;
    const printed = writeQemuJson(value);
    const from = typeof value.execute === "string" ? "client" : "server";
    if (from === "client") last = value.execute as string;
    if (from === "server" && last === "query-version" && isJsonObject(value.return)) {
      version ??= value.return;
    }
    frames.push({ from, text: printed, monoNs: 0n });
  }
  if (!frames.some((f) => f.from === "client")) {
    throw new ReplayError(`${source}: no recorded command found`);
  }
  if (!frames.some((f) => f.from === "server" && /^\{"QMP"/.test(f.text))) {
    const greeting = {
      QMP: { version: (version ?? DEFAULT_VERSION) as JsonObject, capabilities: ["oob"] },
    };
    frames.unshift({ from: "server", text: writeQemuJson(greeting), monoNs: 0n });
  }
  return buildReplayScript(frames, source);
}

const SQLITE_MAGIC = "SQLite format 3\0";

/**
 * Reads a recording from a file: a journal (SQLite; `session` picks one) or a libvirt
 * `.replies` file.
 *
 * @throws ReplayError when the file cannot be read or holds nothing to replay.
 */
export async function loadReplayScript(
  path: string,
  options: { readonly session?: number | undefined } = {},
): Promise<ReplayScript> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ReplayError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (bytes.subarray(0, 16).toString("latin1") === SQLITE_MAGIC) {
    const journal = Journal.open(path, { readonly: true });
    try {
      return await scriptFromJournal(journal, options.session);
    } finally {
      journal.close();
    }
  }
  if (options.session !== undefined) {
    throw new ReplayError(`${path} is not a journal: --session applies to journals only`);
  }
  return scriptFromReplies(bytes.toString("utf8"), path);
}

// ----------------------------------------------------------------------------- JSON helpers

/** Equal JSON values (object members in any order; an integer and its bigint are equal). */
export function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== "object" || typeof b !== "object") {
    const numeric = (x: unknown) => typeof x === "number" || typeof x === "bigint";
    // biome-ignore lint/suspicious/noDoubleEquals: 1 == 1n on purpose (bigint for large integers)
    return numeric(a) && numeric(b) && a == b;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => sameJson(x, b[i]));
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
}

/** A text equal for equal JSON values: sorted members, two-space indentation. */
export function canonicalJson(value: JsonValue, indent = 0): string {
  const sort = (v: JsonValue): unknown => {
    if (typeof v === "bigint") return Number(v);
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map(sort);
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sort(v[k]!)]),
    );
  };
  return JSON.stringify(sort(value), null, indent);
}

/** The span of a top-level member's value in a JSON object's text, or undefined. */
function memberValueSpan(text: string, key: string): [number, number] | undefined {
  let depth = 0;
  let expectKey = false;
  const skipString = (i: number): number => {
    let j = i + 1;
    while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
    return j + 1;
  };
  const skipSpace = (i: number): number => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    return i;
  };
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === '"') {
      const end = skipString(i);
      if (depth === 1 && expectKey) {
        expectKey = false;
        const name = JSON.parse(text.slice(i, end)) as string;
        const start = skipSpace(skipSpace(end) + 1); // past the colon
        if (name !== key) {
          i = start;
          continue;
        }
        let j = start;
        let inner = 0;
        while (j < text.length) {
          const d = text[j]!;
          if (d === '"') {
            j = skipString(j);
            continue;
          }
          if (d === "{" || d === "[") inner++;
          else if (d === "}" || d === "]") {
            if (inner === 0) break;
            inner--;
          } else if (d === "," && inner === 0) break;
          j++;
        }
        while (j > start && /\s/.test(text[j - 1]!)) j--;
        return [start, j];
      }
      i = end;
      continue;
    }
    if (c === "{" || c === "[") {
      depth++;
      expectKey = depth === 1 && c === "{";
    } else if (c === "}" || c === "]") depth--;
    else if (c === "," && depth === 1) expectKey = true;
    i++;
  }
  return undefined;
}

/**
 * A recorded reply with the live request's `id`: the recorded text with only the id's value
 * replaced; printed again as QEMU would when one of the two has no id.
 */
export function replyWithId(text: string, value: JsonObject, id: JsonValue | undefined): string {
  const span = Object.hasOwn(value, "id") ? memberValueSpan(text, "id") : undefined;
  if (span !== undefined && id !== undefined) {
    return text.slice(0, span[0]) + writeQemuJson(id) + text.slice(span[1]);
  }
  const { id: _recorded, ...rest } = restoreQdictOrder(value) as JsonObject;
  return writeQemuJson(id === undefined ? rest : { ...rest, id });
}

/** A line diff of two texts (`-` expected, `+` received, ` ` both), by longest common subsequence. */
export function lineDiff(expected: string, received: string): string {
  const a = expected.split("\n");
  const b = received.split("\n");
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () =>
    new Array(b.length + 1).fill(0),
  );
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] =
        a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(`  ${a[i++]}`);
      j++;
    } else if (j < b.length && (i === a.length || lcs[i]![j + 1]! > lcs[i + 1]![j]!)) {
      out.push(`+ ${b[j++]}`);
    } else {
      out.push(`- ${a[i++]}`);
    }
  }
  return out.join("\n");
}

// ----------------------------------------------------------------------------- the server

/** How commands are matched with the recording. */
export type ReplayMode = "strict" | "keyed";

/** A command the recording did not expect. */
export interface ReplayMismatch {
  readonly mode: ReplayMode;
  /** The recorded command expected next (`strict`), if any. */
  readonly expected: { readonly name: string; readonly args: JsonObject } | undefined;
  readonly received: { readonly name: string; readonly args: JsonObject };
  /** The error sent back (its `desc`). */
  readonly desc: string;
  /** The report: what was expected and received, as a diff. */
  readonly report: string;
}

/** Options of {@link replaySession}. */
export interface ReplayOptions {
  /** Where to listen: `unix:PATH`, `tcp:HOST:PORT` (port 0 picks one). */
  readonly listen: string;
  /** Default `strict`. */
  readonly mode?: ReplayMode | undefined;
  /** Divides the recorded delays (2 = twice as fast); 0 sends everything at once. Default 1. */
  readonly speed?: number | undefined;
  /** Where mismatch reports go. Default: this process's stderr. */
  readonly report?: ((text: string) => void) | undefined;
}

/** A listening replay. */
export interface ReplayServer {
  /** Where it listens (`unix:…`, `tcp:HOST:PORT` with the port chosen). */
  readonly address: string;
  /** Every mismatch so far, all clients. */
  readonly mismatches: readonly ReplayMismatch[];
  /** Stops listening and drops the clients. */
  close(): Promise<void>;
}

const orderKeys = (keys: readonly string[]) => qdictKeyOrder(keys);

function errorText(errorClass: string, desc: string, id: JsonValue | undefined): string {
  const response: JsonObject = { error: { class: errorClass, desc } };
  if (id !== undefined) response.id = id;
  return writeQemuJson(response);
}

function commandText(name: string, args: JsonObject): string {
  return canonicalJson(
    Object.keys(args).length === 0 ? { execute: name } : { execute: name, arguments: args },
    2,
  );
}

function brief(name: string, args: JsonObject): string {
  return Object.keys(args).length === 0 ? name : `${name} ${canonicalJson(args)}`;
}

/**
 * The key a command is matched by: its name and arguments. `qmp_capabilities` by its name only:
 * negotiation is the protocol's, not the session's (a proxy that recorded may have enabled OOB,
 * the client replaying may not).
 */
function commandKey(name: string, args: JsonObject): string {
  return name === "qmp_capabilities" ? name : `${name}\0${canonicalJson(args)}`;
}

/** The matching rules of one client's replay. */
class Matcher {
  #next = 0;
  readonly #used = new Map<string, number>();
  readonly #byKey = new Map<string, ReplayExchange[]>();
  readonly #names = new Set<string>();

  constructor(
    private readonly script: ReplayScript,
    private readonly mode: ReplayMode,
  ) {
    for (const e of script.exchanges) {
      const key = commandKey(e.name, e.args);
      this.#byKey.set(key, [...(this.#byKey.get(key) ?? []), e]);
      this.#names.add(e.name);
    }
  }

  /** The exchange for a live command, whether it repeats one already served, or the error. */
  match(
    name: string,
    args: JsonObject,
  ):
    | { exchange: ReplayExchange; repeat: boolean }
    | { errorClass: string; desc: string; expected?: ReplayExchange } {
    if (this.mode === "strict") {
      const expected = this.script.exchanges[this.#next];
      if (expected === undefined) {
        return {
          errorClass: "GenericError",
          desc: `replay: the recording has no more commands (received ${brief(name, args)})`,
        };
      }
      if (commandKey(expected.name, expected.args) !== commandKey(name, args)) {
        return {
          errorClass: "GenericError",
          desc: `replay: expected ${brief(expected.name, expected.args)} (recorded command ${expected.index + 1}), received ${brief(name, args)}`,
          expected,
        };
      }
      this.#next++;
      return { exchange: expected, repeat: false };
    }
    const key = commandKey(name, args);
    const recorded = this.#byKey.get(key);
    if (recorded === undefined) {
      return this.#names.has(name)
        ? {
            errorClass: "GenericError",
            desc: `replay: ${name} was not recorded with these arguments (${canonicalJson(args)})`,
          }
        : { errorClass: "CommandNotFound", desc: `The command ${name} has not been found` };
    }
    const used = this.#used.get(key) ?? 0;
    this.#used.set(key, used + 1);
    return used < recorded.length
      ? { exchange: recorded[used]!, repeat: false }
      : { exchange: recorded.at(-1)!, repeat: true };
  }
}

/** One client's replay: its connection, its matcher and its output queue. */
class ReplayClient {
  readonly #connection: Connection;
  readonly #matcher: Matcher;
  readonly #queue: { text: string; at: number; resumes: boolean }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #pumping = false;
  #negotiated = false;
  #oob = false;

  constructor(
    stream: Duplex,
    script: ReplayScript,
    private readonly options: ReplayOptions,
    private readonly onMismatch: (m: ReplayMismatch) => void,
  ) {
    this.#matcher = new Matcher(script, options.mode ?? "strict");
    this.#connection = new Connection(stream, {
      dialect: "qemu",
      writer: "qemu",
      onItem: (item) => this.#onItem(item),
    });
    void this.#connection.closed.then(() => clearTimeout(this.#timer));
    this.#send(script.greeting, 0n, false);
  }

  #onItem(item: JsonStreamItem): void {
    if (item.kind === "error") {
      this.#send(errorText("GenericError", item.error.desc, undefined), 0n, false);
      return;
    }
    const checked = checkRequest(item.value, { oobEnabled: this.#oob, orderKeys });
    if (checked.kind === "error") {
      this.#send(errorText("GenericError", checked.desc, checked.id), 0n, false);
      return;
    }
    const { name, args, id } = checked;
    const found = this.#matcher.match(name, args);
    if (!("exchange" in found)) {
      this.#mismatch(name, args, found.errorClass, found.desc, found.expected);
      this.#send(errorText(found.errorClass, found.desc, id), 0n, false);
      return;
    }
    const { exchange, repeat } = found;
    if (!this.#negotiated && exchange.negotiated) {
      // monitor/qmp.c: before negotiation, only qmp_capabilities is available.
      this.#send(
        errorText(
          "CommandNotFound",
          "Expecting capabilities negotiation with 'qmp_capabilities'",
          id,
        ),
        0n,
        false,
      );
      return;
    }
    const reply = exchange.output.find((o) => o.reply);
    if (reply === undefined) {
      this.#send(
        errorText("GenericError", `replay: no reply to ${name} was recorded`, id),
        0n,
        false,
      );
      return;
    }
    if (name === "qmp_capabilities" && Object.hasOwn(reply.value, "return")) {
      this.#negotiated = true;
      const enable = args.enable;
      this.#oob = Array.isArray(enable) && enable.includes("oob");
    }
    // One in-band command at a time, as QEMU's monitor: read on once its reply is out.
    if (!checked.oob) this.#connection.pause();
    for (const out of exchange.output) {
      if (repeat && !out.reply) continue;
      const text = out.reply ? replyWithId(out.text, out.value, id) : out.text;
      this.#send(text, out.delayNs, out.reply && !checked.oob);
    }
  }

  #mismatch(
    name: string,
    args: JsonObject,
    errorClass: string,
    desc: string,
    expected: ReplayExchange | undefined,
  ): void {
    const mode = this.options.mode ?? "strict";
    const head = `qmpkit replay: ${errorClass}: ${desc}`;
    const body =
      expected === undefined
        ? `received:\n${commandText(name, args)}`
        : `--- expected (recorded command ${expected.index + 1})\n+++ received\n${lineDiff(
            commandText(expected.name, expected.args),
            commandText(name, args),
          )}`;
    this.onMismatch({
      mode,
      expected: expected && { name: expected.name, args: expected.args },
      received: { name, args },
      desc,
      report: `${head}\n${body}\n`,
    });
  }

  #send(text: string, delayNs: bigint, resumes: boolean): void {
    const speed = this.options.speed ?? 1;
    const wait = speed === 0 ? 0 : Number(delayNs) / 1e6 / speed;
    this.#queue.push({ text, at: performance.now() + Math.max(0, wait), resumes });
    this.#pump();
  }

  /** Writes what is due, in order; the first message not yet due holds back those after it. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#queue.length > 0 && !this.#connection.isClosed) {
        const head = this.#queue[0]!;
        const wait = head.at - performance.now();
        if (wait > 0) {
          clearTimeout(this.#timer);
          this.#timer = setTimeout(() => this.#pump(), Math.ceil(wait));
          return;
        }
        this.#queue.shift();
        this.#connection.sendRaw(`${head.text}\r\n`);
        if (head.resumes) this.#connection.resume();
      }
    } finally {
      this.#pumping = false;
    }
  }
}

/**
 * Serves `script` on `options.listen` as the recorded QEMU did (see the module comment).
 *
 * @example
 * const script = await loadReplayScript("vm1.db");
 * const replay = await replaySession(script, { listen: "unix:/tmp/vm1.qmp", mode: "keyed" });
 * // … point a client at unix:/tmp/vm1.qmp
 * await replay.close();
 */
export async function replaySession(
  script: ReplayScript,
  options: ReplayOptions,
): Promise<ReplayServer> {
  const speed = options.speed ?? 1;
  if (!(speed >= 0) || !Number.isFinite(speed)) {
    throw new ReplayError(`speed must be a finite number >= 0, not ${speed}`);
  }
  const mismatches: ReplayMismatch[] = [];
  const report = options.report ?? ((text: string) => process.stderr.write(text));
  const onMismatch = (m: ReplayMismatch) => {
    mismatches.push(m);
    report(m.report);
  };
  const listener: Listener = await listen(options.listen, (stream) => {
    new ReplayClient(stream, script, options, onMismatch);
  });
  return {
    address: listener.address,
    mismatches,
    close: () => listener.close(),
  };
}
