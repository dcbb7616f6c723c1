/**
 * `qmpkit shell TARGET`: an interactive QMP shell, in the spirit of QEMU's `qmp-shell`.
 *
 * - Commands as `name key=value ...` (typed by the peer's schema) or raw JSON;
 * - Tab completion of commands, argument names and enum values from the peer's own
 *   `query-qmp-schema` (`shell-line.ts`), "did you mean" for an unknown command;
 * - Ctrl-R searches the history (`reverse-search.ts`);
 * - `-v` shows the JSON sent and received, `--log FILE` keeps it in a file, `-H` sends each line
 *   as a human monitor (HMP) command, `-N` talks to QEMU's guest agent (no greeting, no
 *   negotiation), as QEMU's `qmp-shell` does;
 * - `quit` is QMP's quit (it stops QEMU; asked first in a terminal); `exit` and Ctrl-D leave the
 *   shell and QEMU running;
 * - history kept across runs in `$XDG_STATE_HOME/qmpkit/shell_history` (default
 *   `~/.local/state/qmpkit/shell_history`);
 * - results pretty-printed (coloured on a terminal), errors in one line;
 * - events printed as they arrive, above the prompt, and the line being typed redrawn intact
 *   (node:readline's `prompt(true)` redraws the prompt and the pending input);
 * - `help COMMAND`: the signature from the peer, the description from qmpkit's catalogue.
 *
 * Without a terminal (a pipe, a script) it reads lines, prints results and exits at the end of
 * input, so `printf 'query-status\n' | qmpkit shell vm.qmp` works: results alone on stdout
 * (events go to stderr when stdout is not a terminal), and exit status 1 when any command failed.
 *
 * @module
 */
import { appendFileSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import type { Command } from "commander";
import pc from "picocolors";
import { isCommandError } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { QmpClient } from "../client/index.js";
import { HumanEventFormatter, type QmpEventMessage } from "./event-format.js";
import { PeerSchema } from "./introspection.js";
import { wantColor } from "./io.js";
import { stringifyJson } from "./json-text.js";
import type { CommandContext } from "./context.js";
import { singleTarget } from "./proxy-command.js";
import { GuestAgentPeer } from "./guest-agent.js";
import { describeError } from "./report.js";
import { installReverseSearch } from "./reverse-search.js";
import { catalogueDocs, formatDoc } from "./schema-docs.js";
import {
  completeLine,
  describeCommand,
  describeEvent,
  parseShellLine,
  shellWords,
} from "./shell-line.js";
import { didYouMean } from "./suggest.js";
import { positiveInteger } from "./usage-error.js";

const examples = `
In the shell:
  query-status                       run a command
  set-action panic=pause             key=value arguments, typed by the VM's schema
  blockdev-add driver=null-co node-name=n0 cache.direct=on
  {"execute": "query-name"}          raw JSON
  help set-action | help SHUTDOWN    signature and documentation of a command or event
  help blockdev-add raw              one branch of a union (here driver=raw)
  commands [PREFIX]                  list the VM's commands
  events off | events on             hide or show events as they arrive
  exit                               leave the shell, QEMU keeps running (or Ctrl-D)
  quit                               QMP's quit: stops QEMU (asks first in a terminal)
Tab completes command names, argument names and enum values from the VM's own schema;
Ctrl-R searches the history, kept in $XDG_STATE_HOME/qmpkit/shell_history
(default ~/.local/state/qmpkit).

Examples:
  $ qmpkit shell unix:/run/vm1.qmp
  $ printf 'stop\\nquery-status\\n' | qmpkit shell /run/vm1.qmp    (exit 1 if one fails)
  $ qmpkit shell -H /run/vm1.qmp                  HMP: info status, info block, …
  $ qmpkit shell -v --log session.log /run/vm1.qmp
  $ qmpkit shell -N /run/vm1-ga.sock              QEMU's guest agent: guest-ping, guest-info, …`;

/** The history file: `$XDG_STATE_HOME/qmpkit/shell_history`, else under `~/.local/state`. */
export function historyFile(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(base, "qmpkit", "shell_history");
}

const HISTORY_SIZE = 1000;

/** How long the shell waits for QEMU to close the connection after answering `quit` (ms). */
const QUIT_CLOSE_WAIT_MS = 5_000;

function loadHistory(file: string): string[] {
  try {
    const lines = readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "");
    return lines.slice(-HISTORY_SIZE).reverse();
  } catch {
    return [];
  }
}

function saveHistoryLine(file: string, line: string): void {
  try {
    // Private, as a shell's history is: QMP lines can carry secrets (`object-add … data=`).
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    appendFileSync(file, `${line.replace(/\n/g, " ")}\n`, { mode: 0o600 });
  } catch {
    // History is a convenience: a read-only home must not break the shell.
  }
}

/** JSON with colours for people: keys, strings, numbers and literals told apart. */
export function colorJson(text: string, enabled: boolean): string {
  if (!enabled) return text;
  return text.replace(
    /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/g,
    (
      m,
      str: string | undefined,
      colon: string | undefined,
      lit: string | undefined,
      num: string | undefined,
    ) => {
      if (str !== undefined) return colon ? `${pc.cyan(str)}${colon}` : pc.green(str);
      if (lit !== undefined) return pc.magenta(lit);
      if (num !== undefined) return pc.yellow(num);
      return m;
    },
  );
}

/** Options of `shell`. */
export interface ShellOptions {
  readonly timeout: number;
  readonly events: boolean;
  readonly history: boolean;
  /** Print the JSON sent (`>>`) and received (`<<`). */
  readonly verbose?: boolean | undefined;
  /** Append every message, both ways, to this file (created 0600). */
  readonly log?: string | undefined;
  /** Send lines as human monitor (HMP) commands through `human-monitor-command`. */
  readonly hmp?: boolean | undefined;
  /** `false` (`-N`): no greeting or negotiation, for QEMU's guest agent (`qemu-ga`). */
  readonly negotiation?: boolean | undefined;
}

/** What the shell needs of the peer: a QMP monitor, or a guest agent (`-N`). */
interface ShellPeer {
  /** `QEMU 7.2.22 (Debian …)`, `a guest agent (qemu-ga 7.2.22)`. */
  readonly banner: string;
  readonly prompt: string;
  readonly closed: Promise<Error | undefined>;
  ended(): boolean;
  runState(): string | undefined;
  schema(): Promise<PeerSchema | undefined>;
  execute(
    name: string,
    args?: JsonObject | undefined,
    options?: { readonly signal?: AbortSignal | undefined },
  ): Promise<unknown>;
  onEvent(callback: (event: QmpEventMessage) => void): () => void;
  close(): Promise<void>;
}

type PeerOptions = {
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  readonly onTraffic: (direction: "in" | "out", text: string) => void;
};

/** A QMP monitor: greeting, negotiation, events, the schema from `query-qmp-schema`. */
async function qmpPeer(address: string, options: PeerOptions): Promise<ShellPeer> {
  const client = await QmpClient.connect(address, options);
  const v = client.greeting.version;
  return {
    banner: `QEMU ${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}${v.package ? ` (${v.package})` : ""}`,
    prompt: "qmp",
    closed: client.closed,
    ended: () => client.state === "closed",
    runState: () => client.runState,
    schema: async () => {
      try {
        return new PeerSchema(
          await client.execute("query-qmp-schema", undefined, { timeoutMs: 10_000 }),
        );
      } catch (error) {
        if (!isCommandError(error)) throw error;
        return undefined;
      }
    },
    execute: (name, args, opts) => client.executeUnchecked(name, args, opts),
    onEvent: (callback) => client.on("*", (event) => callback(event as QmpEventMessage)),
    close: () => client.close(),
  };
}

/**
 * QEMU's guest agent: no greeting, no negotiation, no events; its commands (for completion)
 * from `guest-info`, as names without argument types.
 */
async function guestAgentPeer(address: string, options: PeerOptions): Promise<ShellPeer> {
  const agent = await GuestAgentPeer.connect(address, options);
  let version = "";
  return {
    get banner() {
      return `a guest agent${version ? ` (qemu-ga ${version})` : ""} without negotiation`;
    },
    prompt: "qga",
    closed: agent.closed,
    ended: () => agent.isClosed,
    runState: () => undefined,
    schema: async () => {
      try {
        const info = await agent.execute("guest-info", undefined, { timeoutMs: 10_000 });
        if (!isJsonObject(info) || !Array.isArray(info.supported_commands)) return undefined;
        version = typeof info.version === "string" ? info.version : "";
        const names = info.supported_commands.flatMap((c) =>
          isJsonObject(c) && typeof c.name === "string" && c.enabled !== false ? [c.name] : [],
        );
        return new PeerSchema([
          { name: "0", "meta-type": "object", members: [] },
          ...names.map((name) => ({
            name,
            "meta-type": "command",
            "arg-type": "0",
            "ret-type": "0",
          })),
        ]);
      } catch (error) {
        if (!isCommandError(error)) throw error;
        return undefined;
      }
    },
    execute: (name, args, opts) => agent.execute(name, args, opts),
    onEvent: () => () => {},
    close: () => agent.close(),
  };
}

export function registerShellCommand(program: Command, ctx: CommandContext): void {
  program
    .command("shell")
    .description("an interactive QMP shell with completion from the VM's own schema")
    .argument("<target>", "unix:PATH, tcp:HOST:PORT or a socket path")
    .option("--timeout <ms>", "time to connect (ms)", positiveInteger("--timeout"), 5000)
    .option("--no-events", "do not print events as they arrive")
    .option("--no-history", "do not read or write the history file")
    .option("-v, --verbose", "show the JSON sent (>>) and received (<<)")
    .option("-l, --log <file>", "append every message, both ways, to FILE (created 0600)")
    .option("-H, --hmp", "human monitor mode: each line is an HMP command (info status, …)")
    .option(
      "-N, --no-negotiation",
      "no greeting or qmp_capabilities: for QEMU's guest agent (qemu-ga)",
    )
    .addHelpText("after", examples)
    .action(async (target: string, opts: ShellOptions) => {
      ctx.exitCode = await runShell(ctx, target, opts);
    });
}

/** Opens the session log: private, as QMP lines can carry secrets. */
function openLog(file: string): (direction: "in" | "out", line: string) => void {
  const fd = openSync(file, "a", 0o600);
  return (direction, line) => {
    try {
      writeSync(fd, `${direction === "out" ? ">>" : "<<"} ${line}\n`);
    } catch {
      // A full disk must not break the shell; the log is a record, not the session.
    }
  };
}

/**
 * Cuts the traffic into messages, one a line: what arrives comes in chunks (a reply and the
 * event before it in one read, a large reply over several), what is sent one message a write.
 */
function trafficLines(
  each: (direction: "in" | "out", line: string) => void,
): (direction: "in" | "out", text: string) => void {
  const pending = { in: "", out: "" };
  return (direction, text) => {
    const lines = (pending[direction] + text).split("\n");
    pending[direction] = lines.pop() ?? "";
    for (const line of lines) {
      const message = line.replace(/\r$/, "");
      if (message !== "") each(direction, message);
    }
  };
}

/**
 * Runs the shell; resolves with the exit status: 1 when the connection was lost, or (without a
 * terminal) when any command failed; else 0.
 */
export async function runShell(
  ctx: CommandContext,
  target: string,
  opts: ShellOptions,
): Promise<number> {
  const io = ctx.io;
  const address = singleTarget(target);
  const log = opts.log !== undefined ? openLog(opts.log) : undefined;
  // -v shows the traffic once the shell is up (not the greeting or the schema it loads).
  let showTraffic = false;
  let printTraffic: (direction: "in" | "out", text: string) => void = () => {};
  const onTraffic = trafficLines((direction, line) => {
    log?.(direction, line);
    if (showTraffic) printTraffic(direction, line);
  });
  const client =
    opts.negotiation === false
      ? await guestAgentPeer(address, { timeoutMs: opts.timeout, signal: io.signal, onTraffic })
      : await qmpPeer(address, { timeoutMs: opts.timeout, signal: io.signal, onTraffic });
  const terminal = io.stdin.isTTY === true && io.stdout.isTTY === true;
  const color = wantColor(io.stdout, io.env, ctx.color());
  const c = pc.createColors(color);
  const schema = await client.schema();
  const hmp = opts.hmp === true;
  const histFile = historyFile(io.env);
  const rl: Interface = createInterface({
    input: io.stdin,
    output: io.stdout,
    terminal,
    completer: (line: string) =>
      hmp ? [[...shellWords].filter((w) => w.startsWith(line)), line] : completeLine(line, schema),
    history: opts.history && terminal ? loadHistory(histFile) : [],
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    tabSize: 4,
  });
  const promptText = () =>
    `${c.bold(hmp ? "hmp" : client.prompt)}${c.dim(`[${client.runState() ?? "?"}]`)}> `;
  if (terminal) installReverseSearch(rl, promptText);
  let busy = false;
  let showEvents = opts.events;
  let failures = 0;
  const formatter = new HumanEventFormatter({ color, showLabel: false });

  /** Prints a block of text above the line being typed, then redraws the prompt and the line. */
  const printAbove = (text: string) => {
    if (terminal && !busy) {
      io.stdout.write("\r\x1b[2K");
      io.stdout.write(`${text}\n`);
      rl.setPrompt(promptText());
      rl.prompt(true);
    } else {
      io.stdout.write(`${text}\n`);
    }
  };
  const say = (text: string) => io.stdout.write(`${text}\n`);
  // Without a terminal stdout carries results alone, so that a script can parse them.
  const notice = terminal ? printAbove : (text: string) => io.stderr.write(`${text}\n`);
  const fail = (text: string) => {
    failures++;
    say(c.red(text));
  };
  printTraffic = (direction, line) => notice(c.dim(`${direction === "out" ? ">>" : "<<"} ${line}`));

  const removeEvents = client.onEvent((event) => {
    if (showEvents) notice(formatter.event("", event));
  });
  if (terminal) {
    say(
      c.dim(
        `Connected to ${client.banner}; ` +
          `${schema ? `${schema.commands.size} commands` : "no schema"}${hmp ? "; HMP mode" : ""}. ` +
          "Tab completes; Ctrl-R searches; 'help' for help; 'exit' or Ctrl-D leaves.",
      ),
    );
  }

  let lost: Error | undefined;
  let closing = false;
  let quitSent = false;
  void client.closed.then((reason) => {
    if (closing) return;
    if (quitSent) {
      // The peer went away because it was told to quit: the expected end, not a loss.
      notice(c.dim("QEMU quit; the connection is closed"));
      rl.close();
      return;
    }
    lost = reason ?? new Error("the connection closed");
    notice(c.red(`connection lost: ${describeError(lost)}`));
    rl.close();
  });

  /** `quit` stops QEMU: in a terminal the shell asks first and says how to leave instead. */
  const confirmQuit = async (): Promise<boolean> => {
    if (!terminal) return true;
    const answer = await new Promise<string>((resolve) =>
      rl.question(
        "'quit' stops QEMU (QMP quit); 'exit' or Ctrl-D leaves the shell and keeps it running. Stop QEMU? [y/N] ",
        resolve,
      ),
    );
    return /^y(es)?$/i.test(answer.trim());
  };

  /** After `quit` is answered QEMU closes the connection: the lines after it are not sent. */
  const quitDone = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, QUIT_CLOSE_WAIT_MS);
      void client.closed.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });

  const execute = async (
    name: string,
    args: Record<string, JsonValue> | undefined,
  ): Promise<void> => {
    if (name === "quit" && !(await confirmQuit())) return;
    if (name === "quit") quitSent = true;
    showTraffic = opts.verbose === true;
    try {
      const result = await client.execute(name, args, { signal: io.signal });
      say(colorJson(stringifyJson(result, 2), color));
      if (quitSent) await quitDone();
    } catch (error) {
      if (isCommandError(error)) {
        const hint =
          error.errorClass === "CommandNotFound" && schema
            ? didYouMean(name, schema.commands.keys())
            : "";
        fail(`${error.errorClass}: ${error.desc}${hint}`);
      } else if (quitSent && name === "quit") {
        // QEMU may close before its reply to quit arrives (qmp-spec: quit).
      } else if (!lost) fail(describeError(error));
    } finally {
      showTraffic = false;
    }
  };

  /** HMP mode: the line as `human-monitor-command`, its output printed as QEMU wrote it. */
  const executeHmp = async (line: string): Promise<void> => {
    if (/^quit\b|^q$/.test(line.trim()) && !(await confirmQuit())) return;
    if (/^quit\b|^q$/.test(line.trim())) quitSent = true;
    showTraffic = opts.verbose === true;
    try {
      const output = await client.execute(
        "human-monitor-command",
        { "command-line": line },
        { signal: io.signal },
      );
      if (typeof output === "string" && output !== "")
        io.stdout.write(output.replace(/\r\n/g, "\n"));
    } catch (error) {
      if (isCommandError(error)) fail(`${error.errorClass}: ${error.desc}`);
      else if (!quitSent && !lost) fail(describeError(error));
    } finally {
      showTraffic = false;
    }
  };

  /** Runs one line; false when the shell should end. */
  const run = async (line: string): Promise<boolean> => {
    let parsed: ReturnType<typeof parseShellLine>;
    try {
      parsed = parseShellLine(line, schema);
    } catch (error) {
      if (!hmp) {
        fail(describeError(error));
        return true;
      }
      parsed = { kind: "empty" };
    }
    if (hmp && (parsed.kind === "execute" || parsed.kind === "raw")) {
      await executeHmp(line.trim());
      return true;
    }
    switch (parsed.kind) {
      case "empty":
        if (hmp && line.trim() !== "" && !line.trim().startsWith("#"))
          await executeHmp(line.trim());
        return true;
      case "exit":
        return false;
      case "events":
        if (parsed.show !== undefined) showEvents = parsed.show;
        say(`events are ${showEvents ? "shown" : "hidden"}`);
        return true;
      case "commands": {
        const names = (schema?.commandNames() ?? []).filter((n) =>
          n.startsWith(parsed.filter ?? ""),
        );
        say(names.join("\n"));
        return true;
      }
      case "help":
        help(parsed.command, parsed.branch);
        return true;
      case "raw": {
        const value = parsed.value;
        if (
          !isJsonObject(value) ||
          typeof value.execute !== "string" ||
          (value.arguments !== undefined && !isJsonObject(value.arguments))
        ) {
          fail(`raw input must be {"execute": NAME, "arguments": {...}}`);
          return true;
        }
        await execute(value.execute, isJsonObject(value.arguments) ? value.arguments : undefined);
        return true;
      }
      case "execute":
        await execute(
          parsed.command,
          Object.keys(parsed.args).length > 0 ? parsed.args : undefined,
        );
        return true;
    }
  };

  const help = (command: string | undefined, branch: string | undefined) => {
    if (command === undefined) {
      say(examples.trim().split("\n\nExamples:")[0]!);
      say(`Shell words: ${shellWords.join(", ")}`);
      return;
    }
    const signature = schema
      ? (describeCommand(schema, command, branch) ??
        (branch === undefined ? describeEvent(schema, command) : undefined))
      : undefined;
    const doc = catalogueDocs().get(command);
    if (!signature && branch !== undefined && schema?.commands.has(command)) {
      fail(`'${branch}' is not a branch of ${command}'s arguments`);
      return;
    }
    if (!signature && !doc) {
      const names = schema ? [...schema.commands.keys(), ...schema.events.keys()] : [];
      fail(
        `'${command}' is neither a command nor an event of this VM${didYouMean(command, names)}`,
      );
      return;
    }
    if (signature) say(c.bold(signature));
    if (doc) say(`\n${formatDoc(doc)}`);
  };

  // Ctrl-C in a terminal reaches readline, not the process: like a shell, it drops the line
  // being typed and gives a fresh prompt (Ctrl-D or `exit` leave).
  rl.on("SIGINT", () => {
    io.stdout.write("^C\n");
    rl.write(null, { ctrl: true, name: "u" });
    rl.setPrompt(promptText());
    if (!busy) rl.prompt();
  });
  const onAbort = () => rl.close();
  io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    rl.setPrompt(promptText());
    if (terminal) rl.prompt();
    for await (const line of rl) {
      if (opts.history && terminal && line.trim() !== "") saveHistoryLine(histFile, line.trimEnd());
      busy = true;
      const goOn = await run(line);
      busy = false;
      if (!goOn || lost || client.ended()) break;
      rl.setPrompt(promptText());
      if (terminal) rl.prompt();
    }
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    removeEvents();
    rl.close();
    closing = lost === undefined;
    await client.close();
  }
  if (terminal && !lost) say("");
  if (lost) return 1;
  return !terminal && failures > 0 ? 1 : 0;
}
