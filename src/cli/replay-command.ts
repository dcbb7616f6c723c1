/**
 * `qmpkit replay FILE --listen ADDR`: a recorded session served as a fake QEMU (the journal
 * layer's `replaySession`, loaded on use). FILE is a journal (`qmpkit proxy --record`) or a
 * libvirt capability recording (`caps_*.replies`), told apart by its first bytes. Runs until
 * interrupted; mismatches are reported on stderr as they happen.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { singleTarget } from "./proxy-command.js";
import { positiveInteger, UsageError } from "./usage-error.js";

const examples = `
Greets as the recorded QEMU did and answers each command with the recorded reply (the bytes
QEMU printed, only the id replaced by the client's). The events recorded after a command are
sent the same time after it (--speed 2: twice as fast; 0: at once), in the recorded order,
with their recorded timestamps. Every client gets the whole recording from its start.

--mode strict (default): commands must come in the recorded order with equal arguments; any
other command gets a GenericError saying what was expected, and a diff on stderr.
--mode keyed: commands are matched by name, arguments and occurrence, in any order; a name
never recorded gets CommandNotFound, other arguments a GenericError.

FILE: a journal (the last session with QEMU, or --session ID), or a libvirt capability
recording (tests/qemucapabilitiesdata/caps_*.replies; its greeting is made from the recorded
query-version answer).

Examples:
  $ qmpkit proxy unix:/run/vm1.qmp --listen unix:/tmp/shared.qmp --record vm1.db
  $ qmpkit replay vm1.db --listen unix:/tmp/fake-vm1.qmp
  $ qmpkit replay vm1.db --listen tcp:127.0.0.1:4444 --mode keyed --speed 0
  $ qmpkit replay caps_8.2.0_x86_64.replies --listen unix:/tmp/caps.qmp --mode keyed`;

/** A commander option parser for a finite number >= 0. */
function speedOption(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`invalid --speed '${value}': expected a number >= 0`);
  }
  return n;
}

function modeOption(value: string): "strict" | "keyed" {
  if (value !== "strict" && value !== "keyed") {
    throw new UsageError(`invalid --mode '${value}': expected strict or keyed`);
  }
  return value;
}

export function registerReplayCommand(program: Command, ctx: CommandContext): void {
  program
    .command("replay")
    .description("serve a recorded session as a fake QEMU")
    .argument("<file>", "a journal, or a libvirt .replies file")
    .requiredOption("-l, --listen <address>", "where clients connect (unix:PATH or tcp:HOST:PORT)")
    .option("--session <id>", "the journal's session to replay", positiveInteger("--session"))
    .option("--mode <mode>", "strict or keyed", modeOption, "strict")
    .option("--speed <n>", "divide the recorded delays by this (0: no waits)", speedOption, 1)
    .option("-q, --quiet", "do not log on stderr (mismatch reports are still written)")
    .addHelpText("after", examples)
    .action(
      async (
        file: string,
        opts: {
          listen: string;
          session?: number;
          mode: "strict" | "keyed";
          speed: number;
          quiet?: boolean;
        },
      ) => {
        const io = ctx.io;
        const listenOn = singleTarget(opts.listen);
        const { loadReplayScript, replaySession } = await import("../journal/replay.js");
        const path = isAbsolute(file) ? file : join(io.cwd, file);
        const script = await loadReplayScript(path, { session: opts.session });
        const replay = await replaySession(script, {
          listen: listenOn,
          mode: opts.mode,
          speed: opts.speed,
          report: (text) => io.stderr.write(text),
        });
        if (!opts.quiet) {
          io.stderr.write(
            `qmpkit replay: ${script.source} (${script.exchanges.length} commands, ${opts.mode}) on ${replay.address}\n`,
          );
        }
        try {
          await new Promise<void>((resolve) => {
            if (io.signal.aborted) resolve();
            io.signal.addEventListener("abort", () => resolve(), { once: true });
          });
        } finally {
          await replay.close();
        }
      },
    );
}
