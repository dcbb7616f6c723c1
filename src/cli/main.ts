/**
 * `qmpkit`: the command line. Parses argv with commander and hands each command to its module:
 *
 * | command | module |
 * |---|---|
 * | `events [TARGET...]` | `events-command.ts` (no target: the embedded demo VM, `demo.ts`) |
 * | `exec TARGET COMMAND [key=value...]` | `exec-command.ts` |
 * | `shell TARGET` | `shell-command.ts` |
 * | `proxy TARGET --listen ADDR` | `proxy-command.ts` |
 * | `record TARGET... --journal FILE` | `record-command.ts` (the journal layer loads on use) |
 * | `history --journal FILE` | `history-command.ts` |
 * | `replay FILE --listen ADDR` | `replay-command.ts` (the journal layer loads on use) |
 * | `agent TARGET... --nats URL --journal FILE` | `agent-command.ts` (the fleet layer loads on use) |
 * | `dashboard [TARGET...]` | `dashboard-command.ts` (the web layer loads on use) |
 * | `fleet events\|status\|exec` | `fleet-command.ts` (the fleet layer loads on use) |
 * | `sim [QEMU options]` | `sim-command.ts` (QEMU's own option syntax, parsed there) |
 * | `schema ...` | `schema-command.ts` |
 * | `completion bash\|zsh` | `completion-command.ts` |
 *
 * `main(argv)` never exits the process and never throws: it returns the exit status, having
 * written any failure as one line on stderr (`report.ts`). Run directly (`npx tsx
 * src/cli/main.ts`) it sets `process.exitCode`.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { registerAgentCommand } from "./agent-command.js";
import { registerCompletionCommand } from "./completion-command.js";
import type { CommandContext } from "./context.js";
import { registerDashboardCommand } from "./dashboard-command.js";
import { registerEventsCommand } from "./events-command.js";
import { registerExecCommand } from "./exec-command.js";
import { registerFleetCommand } from "./fleet-command.js";
import { registerHistoryCommand } from "./history-command.js";
import { type CliIo, isEntryPoint, processIo } from "./io.js";
import { registerProxyCommand } from "./proxy-command.js";
import { runSimDropIn } from "./qemu-main.js";
import { registerRecordCommand } from "./record-command.js";
import { registerReplayCommand } from "./replay-command.js";
import { EXIT_USAGE, reportError } from "./report.js";
import { registerSchemaCommands } from "./schema-command.js";
import { registerShellCommand } from "./shell-command.js";

const version = "0.1.0";

const overview = `
Examples:
  $ qmpkit events                          watch a demo VM (no QEMU needed)
  $ qmpkit events /run/vms/*.qmp --follow  watch every VM, across restarts
  $ qmpkit exec unix:/run/vm1.qmp query-status
  $ qmpkit shell unix:/run/vm1.qmp         interactive, with completion
  $ qmpkit proxy unix:/run/vm1.qmp --listen unix:/run/vm1-shared.qmp
  $ qmpkit record /run/vms/*.qmp --journal vms.db   journal events and run states
  $ qmpkit history --journal vms.db --vm vm1 --since 1h
  $ qmpkit replay vm1.db --listen unix:/tmp/fake.qmp   a recorded session as a fake QEMU
  $ qmpkit dashboard '/run/vms/*.qmp' --journal vms.db  a live web page and /metrics
  $ qmpkit agent --nats nats://bus:4222 --journal agent.db '/run/vms/*.qmp'   the fleet
  $ qmpkit fleet status --nats nats://bus:4222
  $ qmpkit sim -qmp unix:/tmp/vm.qmp,server=on,wait=off -S

Targets: unix:PATH, tcp:HOST:PORT, a socket path, or a glob of socket paths.
Exit status: 0 success, 1 failure (unreachable target, QMP error), 2 bad usage.
Set QMPKIT_DEBUG=1 to see stack traces.`;

/** Builds the program for one run. */
export function createProgram(ctx: CommandContext): Command {
  const program = new Command("qmpkit")
    .description(
      "The QEMU Machine Protocol from the command line: watch events, run commands, share a monitor, simulate QEMU.",
    )
    .version(version, "-V, --version")
    .option("--color", "colour the output (default: when writing to a terminal)")
    .option("--no-color", "never colour the output")
    .showSuggestionAfterError(true)
    .addHelpText("after", overview)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      // Commander's own usage errors ("error: unknown command 'x'") as our one line.
      outputError: (s, write) => write(`qmpkit: ${s.replace(/^error: /, "").trimEnd()}\n`),
    });
  const colorFlag = () => program.opts<{ color?: boolean }>().color;
  const context: CommandContext = Object.assign(ctx, { color: colorFlag });

  registerEventsCommand(program, context);
  registerExecCommand(program, context);
  registerShellCommand(program, context);
  registerProxyCommand(program, context);
  registerRecordCommand(program, context);
  registerHistoryCommand(program, context);
  registerReplayCommand(program, context);
  registerAgentCommand(program, context);
  registerDashboardCommand(program, context);
  registerFleetCommand(program, context);
  // Listed for --help; `main` hands `sim` its raw arguments before commander sees them.
  program
    .command("sim")
    .description("run a simulated QEMU, with QEMU's own options (qmpkit sim --help)")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument("[options...]");
  const schema = registerSchemaCommands(program);
  const schemaExamples: Record<string, string> = {
    "": "qmpkit schema check schema/qapi/qapi-schema.json\n  $ qmpkit schema introspect --qemu-version 7.2 --unmask",
    check: "qmpkit schema check ~/src/qemu/qapi/qapi-schema.json --strict",
    introspect:
      "qmpkit schema introspect --qemu-version 7.2.22 > qmp-schema.json\n  $ qmpkit exec /run/vm1.qmp query-qmp-schema > live.json   # compare with a real QEMU",
    gen: "qmpkit schema gen --qapi-dir ~/src/qemu --out src/qmp\n  $ qmpkit exec /run/vm1.qmp query-qmp-schema > live.json && qmpkit schema gen --from-introspection live.json",
  };
  for (const cmd of [schema, ...schema.commands]) {
    const text = schemaExamples[cmd === schema ? "" : cmd.name()];
    if (text) cmd.addHelpText("after", `\nExamples:\n  $ ${text}`);
  }
  // Last: its scripts are made from every command registered above.
  registerCompletionCommand(program, context);
  return program;
}

/**
 * Runs the CLI with `argv` (the arguments after the program name) and returns the exit status.
 * `io` defaults to this process's streams; tests and embedders pass their own.
 */
export async function main(argv: readonly string[], io?: CliIo | undefined): Promise<number> {
  const owned = io ? undefined : processIo();
  const cliIo = io ?? owned!.io;
  try {
    // `sim` speaks QEMU's single-dash options (`-qmp`, `-S`), which commander cannot parse.
    if (argv[0] === "sim") return await runSimDropIn(argv.slice(1), cliIo);
    const ctx: CommandContext = { io: cliIo, exitCode: 0, color: () => undefined };
    const program = createProgram(ctx);
    await program.parseAsync([...argv], { from: "user" });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end with exitCode 0; usage errors were already printed.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    return reportError(cliIo, error);
  } finally {
    owned?.dispose();
  }
}

if (isEntryPoint(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
