/**
 * `qmpkit exec TARGET COMMAND [key=value ...]`: run one command, print its result as JSON on
 * stdout; a QMP error goes to stderr as one line, with exit status 1.
 *
 * `key=value` arguments are typed by the peer's own schema (`query-qmp-schema`), so `id=42` stays
 * a string where the command wants a string and `level=42` becomes a number where it wants an
 * integer (see `key-value.ts`); `--json '{...}'` gives the arguments whole.
 *
 * @module
 */
import type { Command } from "commander";
import { isCommandError } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { QmpClient } from "../client/index.js";
import { PeerSchema } from "./introspection.js";
import { stringifyJson } from "./json-text.js";
import { parseJsonText, parseKeyValues } from "./key-value.js";
import type { CommandContext } from "./context.js";
import { singleTarget } from "./proxy-command.js";
import { didYouMean } from "./suggest.js";
import { positiveInteger, UsageError } from "./usage-error.js";

const examples = `
Arguments: key=value (typed by the VM's own schema: numbers, booleans, enums, strings),
a.b=value for nested members, key:=JSON for a JSON value, or --json '{...}' for all of them.

Examples:
  $ qmpkit exec unix:/run/vm1.qmp query-status
  $ qmpkit exec /run/vm1.qmp set-action panic=pause watchdog=none
  $ qmpkit exec /run/vm1.qmp human-monitor-command command-line='info registers'
  $ qmpkit exec /run/vm1.qmp blockdev-add --json '{"driver":"null-co","node-name":"n0"}'
  $ qmpkit exec tcp:127.0.0.1:4444 query-version --compact | jq .qemu`;

/** Options of `exec`. */
export interface ExecOptions {
  readonly json?: string | undefined;
  readonly timeout?: number | undefined;
  readonly pretty?: boolean | undefined;
  readonly compact?: boolean | undefined;
}

/** Sets every member of `from` into `into`, recursing into objects present in both. */
export function mergeArguments(into: JsonObject, from: JsonObject): JsonObject {
  for (const [k, v] of Object.entries(from)) {
    const existing = into[k];
    if (isJsonObject(existing) && isJsonObject(v)) mergeArguments(existing, v);
    else into[k] = v;
  }
  return into;
}

export function registerExecCommand(program: Command, ctx: CommandContext): void {
  program
    .command("exec")
    .description("run one QMP command and print its result as JSON")
    .argument("<target>", "unix:PATH, tcp:HOST:PORT or a socket path")
    .argument("<command>", "the QMP command, e.g. query-status")
    .argument("[arguments...]", "key=value, a.b=value or key:=JSON")
    .option("--json <object>", "the arguments as one JSON object")
    .option(
      "--timeout <ms>",
      "time to connect and to wait for the answer (ms)",
      positiveInteger("--timeout"),
      10_000,
    )
    .option("--pretty", "indent the result (default on a terminal)")
    .option("--compact", "print the result on one line (default when piped)")
    .addHelpText("after", examples)
    .action(async (target: string, command: string, items: string[], opts: ExecOptions) => {
      ctx.exitCode = await runExec(ctx, target, command, items, opts);
    });
}

/** Runs `exec`; resolves with the exit status. */
export async function runExec(
  ctx: CommandContext,
  target: string,
  command: string,
  items: readonly string[],
  opts: ExecOptions,
): Promise<number> {
  const io = ctx.io;
  const address = singleTarget(target);
  let base: JsonObject = {};
  if (opts.json !== undefined) {
    let parsed: JsonValue;
    try {
      parsed = parseJsonText(opts.json);
    } catch (error) {
      throw new UsageError(`invalid --json '${opts.json}': ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!isJsonObject(parsed))
      throw new UsageError(`invalid --json '${opts.json}': the arguments must be a JSON object`);
    base = parsed;
  }
  // Malformed key=value is a usage error before anything connects.
  if (items.length > 0) parseKeyValues(items);
  const timeoutMs = opts.timeout ?? 10_000;
  const client = await QmpClient.connect(address, {
    timeoutMs,
    signal: io.signal,
    trackRunState: false,
  });
  try {
    let args = base;
    let schema: PeerSchema | undefined;
    const loadSchema = async () => {
      try {
        return new PeerSchema(await client.execute("query-qmp-schema", undefined, { timeoutMs }));
      } catch (error) {
        // A QEMU without introspection (before 2.5): values are typed by their look alone.
        if (!isCommandError(error)) throw error;
        return undefined;
      }
    };
    if (items.length > 0) {
      schema = await loadSchema();
      args = mergeArguments(base, parseKeyValues(items, schema ? { schema, command } : undefined));
    }
    const hasArgs = Object.keys(args).length > 0 || opts.json !== undefined;
    let result: unknown;
    try {
      result = await client.execute(command, hasArgs ? args : undefined, {
        timeoutMs,
        signal: io.signal,
      });
    } catch (error) {
      if (!isCommandError(error)) throw error;
      // An unknown command gets the names of the VM's that are close to it.
      let hint = "";
      if (error.errorClass === "CommandNotFound") {
        schema ??= await loadSchema().catch(() => undefined);
        hint = schema ? didYouMean(command, schema.commands.keys()) : "";
      }
      io.stderr.write(`qmpkit: ${command}: ${error.errorClass}: ${error.desc}${hint}\n`);
      return 1;
    }
    const pretty = opts.compact ? false : (opts.pretty ?? io.stdout.isTTY === true);
    io.stdout.write(`${stringifyJson(result, pretty ? 2 : undefined)}\n`);
    return 0;
  } finally {
    await client.close();
  }
}
