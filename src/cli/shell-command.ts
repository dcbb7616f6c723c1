/**
 * `qmpkit shell TARGET`: an interactive QMP shell, in the spirit of QEMU's `qmp-shell`.
 *
 * - Commands as `name key=value ...` (typed by the peer's schema) or raw JSON;
 * - Tab completion of commands, argument names and enum values from the peer's own
 *   `query-qmp-schema` (`shell-line.ts`);
 * - history kept across runs in `$XDG_STATE_HOME/qmpkit/shell_history` (default
 *   `~/.local/state/qmpkit/shell_history`);
 * - results pretty-printed (coloured on a terminal), errors in one line;
 * - events printed as they arrive, above the prompt, and the line being typed redrawn intact
 *   (node:readline's `prompt(true)` redraws the prompt and the pending input);
 * - `help COMMAND`: the signature from the peer, the description from qmpkit's catalogue.
 *
 * Without a terminal (a pipe, a script) it reads lines, prints results and exits at the end of
 * input, so `printf 'query-status\n' | qmpkit shell vm.qmp` works.
 *
 * @module
 */
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import type { Command } from "commander";
import pc from "picocolors";
import { isCommandError } from "../base/errors.js";
import { isJsonObject, type JsonValue } from "../base/json.js";
import { QmpClient } from "../client/index.js";
import { HumanEventFormatter, type QmpEventMessage } from "./event-format.js";
import { PeerSchema } from "./introspection.js";
import { wantColor } from "./io.js";
import { stringifyJson } from "./json-text.js";
import type { CommandContext } from "./context.js";
import { singleTarget } from "./proxy-command.js";
import { describeError } from "./report.js";
import { catalogueDocs, formatDoc } from "./schema-docs.js";
import {
  completeLine,
  describeCommand,
  describeEvent,
  parseShellLine,
  shellWords,
} from "./shell-line.js";
import { positiveInteger } from "./usage-error.js";

const examples = `
In the shell:
  query-status                       run a command
  set-action panic=pause             key=value arguments, typed by the VM's schema
  blockdev-add driver=null-co node-name=n0 cache.direct=on
  {"execute": "query-name"}          raw JSON
  help set-action | help SHUTDOWN    signature and documentation of a command or event
  commands [PREFIX]                  list the VM's commands
  events off | events on             hide or show events as they arrive
  quit                               (or Ctrl-D)
Tab completes command names, argument names and enum values from the VM's own schema.
History is kept in $XDG_STATE_HOME/qmpkit/shell_history (default ~/.local/state/qmpkit).

Examples:
  $ qmpkit shell unix:/run/vm1.qmp
  $ printf 'stop\\nquery-status\\n' | qmpkit shell /run/vm1.qmp`;

/** The history file: `$XDG_STATE_HOME/qmpkit/shell_history`, else under `~/.local/state`. */
export function historyFile(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(base, "qmpkit", "shell_history");
}

const HISTORY_SIZE = 1000;

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

export function registerShellCommand(program: Command, ctx: CommandContext): void {
  program
    .command("shell")
    .description("an interactive QMP shell with completion from the VM's own schema")
    .argument("<target>", "unix:PATH, tcp:HOST:PORT or a socket path")
    .option("--timeout <ms>", "time to connect (ms)", positiveInteger("--timeout"), 5000)
    .option("--no-events", "do not print events as they arrive")
    .option("--no-history", "do not read or write the history file")
    .addHelpText("after", examples)
    .action(
      async (target: string, opts: { timeout: number; events: boolean; history: boolean }) => {
        ctx.exitCode = await runShell(ctx, target, opts);
      },
    );
}

/** Runs the shell; resolves with the exit status (1 when the connection was lost). */
export async function runShell(
  ctx: CommandContext,
  target: string,
  opts: { timeout: number; events: boolean; history: boolean },
): Promise<number> {
  const io = ctx.io;
  const address = singleTarget(target);
  const client = await QmpClient.connect(address, { timeoutMs: opts.timeout, signal: io.signal });
  const terminal = io.stdin.isTTY === true && io.stdout.isTTY === true;
  const color = wantColor(io.stdout, io.env, ctx.color());
  const c = pc.createColors(color);
  let schema: PeerSchema | undefined;
  try {
    schema = new PeerSchema(
      await client.execute("query-qmp-schema", undefined, { timeoutMs: 10_000 }),
    );
  } catch (error) {
    if (!isCommandError(error)) throw error;
  }
  const histFile = historyFile(io.env);
  const rl: Interface = createInterface({
    input: io.stdin,
    output: io.stdout,
    terminal,
    completer: (line: string) => completeLine(line, schema),
    history: opts.history && terminal ? loadHistory(histFile) : [],
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    tabSize: 4,
  });
  const v = client.greeting.version.qemu;
  const promptText = () => `${c.bold("qmp")}${c.dim(`[${client.runState ?? "?"}]`)}> `;
  let busy = false;
  let showEvents = opts.events;
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

  const removeEvents = client.on("*", (event) => {
    if (showEvents) printAbove(formatter.event("", event as QmpEventMessage));
  });
  if (terminal) {
    say(
      c.dim(
        `Connected to QEMU ${v.major}.${v.minor}.${v.micro}${client.greeting.version.package ? ` (${client.greeting.version.package})` : ""}; ` +
          `${schema ? `${schema.commands.size} commands` : "no schema"}. Tab completes; 'help' for help; Ctrl-D quits.`,
      ),
    );
  }

  let lost: Error | undefined;
  let lostNow = false;
  void client.closed.then((reason) => {
    if (lostNow) return;
    lost = reason ?? new Error("the connection closed");
    printAbove(c.red(`connection lost: ${describeError(lost)}`));
    rl.close();
  });

  const run = async (line: string): Promise<boolean> => {
    let parsed: ReturnType<typeof parseShellLine>;
    try {
      parsed = parseShellLine(line, schema);
    } catch (error) {
      say(c.red(describeError(error)));
      return true;
    }
    switch (parsed.kind) {
      case "empty":
        return true;
      case "quit":
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
      case "help": {
        if (parsed.command === undefined) {
          say(examples.trim().split("\n\nExamples:")[0]!);
          say(`Shell words: ${shellWords.join(", ")}`);
          return true;
        }
        const signature = schema
          ? (describeCommand(schema, parsed.command) ?? describeEvent(schema, parsed.command))
          : undefined;
        const doc = catalogueDocs().get(parsed.command);
        if (!signature && !doc) {
          say(c.red(`'${parsed.command}' is neither a command nor an event of this VM`));
          return true;
        }
        if (signature) say(c.bold(signature));
        if (doc) say(`\n${formatDoc(doc)}`);
        return true;
      }
      case "raw": {
        const value = parsed.value;
        if (
          !isJsonObject(value) ||
          typeof value.execute !== "string" ||
          (value.arguments !== undefined && !isJsonObject(value.arguments))
        ) {
          say(c.red(`raw input must be {"execute": NAME, "arguments": {...}}`));
          return true;
        }
        return execute(value.execute, isJsonObject(value.arguments) ? value.arguments : undefined);
      }
      case "execute":
        return execute(
          parsed.command,
          Object.keys(parsed.args).length > 0 ? parsed.args : undefined,
        );
    }
  };

  const execute = async (
    name: string,
    args: Record<string, JsonValue> | undefined,
  ): Promise<boolean> => {
    try {
      const result = await client.execute(name, args, { signal: io.signal });
      say(colorJson(stringifyJson(result, 2), color));
    } catch (error) {
      if (isCommandError(error)) say(c.red(`${error.errorClass}: ${error.desc}`));
      else if (!lost) say(c.red(describeError(error)));
    }
    return true;
  };

  // Ctrl-C in a terminal reaches readline, not the process: like a shell, it drops the line
  // being typed and gives a fresh prompt (Ctrl-D or `quit` leave).
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
      if (opts.history && terminal && line.trim() !== "") saveHistoryLine(histFile, line);
      busy = true;
      const goOn = await run(line);
      busy = false;
      if (!goOn || lost) break;
      rl.setPrompt(promptText());
      if (terminal) rl.prompt();
    }
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    removeEvents();
    rl.close();
    lostNow = !lost;
    await client.close();
  }
  if (terminal && !lost) say("");
  return lost ? 1 : 0;
}
