/**
 * `qmpkit record TARGET... --journal FILE`: watch VMs as `events --follow` does (the same watch,
 * `runEvents` with a sink) and write everything into an SQLite journal instead of stdout: each
 * event as QEMU sent it with the time received, run-state changes with their cause, watch
 * notices (connected, lost, reconnected with the gap). Runs until interrupted.
 *
 * The journal layer (and its native SQLite binding) is loaded only when the command runs.
 *
 * @module
 */
import type { Command } from "commander";
import type { Journal, JournalVm } from "../journal/index.js";
import type { CommandContext } from "./context.js";
import { runEvents, type WatchSink } from "./events-command.js";
import type { WatchNotice } from "./event-format.js";
import { durationOption, sizeOption } from "./journal-options.js";
import { positiveInteger } from "./usage-error.js";

const examples = `
Records until interrupted (Ctrl-C, SIGTERM), following VMs as 'events --follow' does:
reconnects, waits for VMs, rescans globs for new ones. Rows are committed every 50 ms (or
every 1000 rows): if the recorder is killed, what it received in the last 50 ms is lost,
the rest is in the journal. Started again on the same journal, it goes on, and notes the gap
(a "reconnected" notice spanning the time nothing was recorded).

Secrets are redacted before they are written (passwords of set_password and
change-vnc-password, secret objects' data, *-secret members, passwords in HMP lines).

Examples:
  $ qmpkit record '/run/vms/*.qmp' --journal vms.db
  $ qmpkit record vm1.qmp --journal vm1.db --max-age 7d --max-size 500M
  $ qmpkit history --journal vms.db --vm vm1 --since 1h
  $ qmpkit proxy vm1.qmp --listen unix:/run/vm1-shared.qmp --record vm1.db   # every frame`;

/** Options of `record`, as commander hands them over. */
export interface RecordOptions {
  readonly journal: string;
  readonly maxAge?: number | undefined;
  readonly maxSize?: number | undefined;
  readonly timeout?: number | undefined;
  readonly quiet?: boolean | undefined;
}

export function registerRecordCommand(program: Command, ctx: CommandContext): void {
  program
    .command("record")
    .description("journal the events and run states of one or many VMs (SQLite)")
    .argument("<targets...>", "unix:PATH, tcp:HOST:PORT, socket paths or globs of them")
    .requiredOption("-j, --journal <file>", "the SQLite journal (created if missing)")
    .option(
      "--max-age <duration>",
      "delete rows older than this (30m, 12h, 7d)",
      durationOption("--max-age"),
    )
    .option(
      "--max-size <size>",
      "keep the journal under this size (500M, 2G)",
      sizeOption("--max-size"),
    )
    .option("--timeout <ms>", "time to connect to each VM (ms)", positiveInteger("--timeout"), 5000)
    .option("-q, --quiet", "do not say what is recorded on stderr")
    .addHelpText("after", examples)
    .action(async (targets: string[], opts: RecordOptions) => {
      ctx.exitCode = await runRecord(ctx, targets, opts);
    });
}

/**
 * The sink that journals a watch (`record`, `dashboard`): each VM label becomes a journal VM
 * (named by its label, with the address of its first notice that has one). `onNotice` hears each
 * notice after it is journalled.
 */
export function journalSink(
  journal: Journal,
  onNotice?: (label: string, notice: WatchNotice) => void,
): WatchSink {
  const vms = new Map<string, JournalVm>();
  const vmOf = (label: string, address?: unknown): JournalVm => {
    let vm = vms.get(label);
    if (vm === undefined) {
      vm = journal.vm({ name: label, address: typeof address === "string" ? address : label });
      vms.set(label, vm);
    }
    return vm;
  };
  return {
    event: (label, event, receivedMs) => journal.event(vmOf(label), event, receivedMs),
    state: (label, change) => journal.state(vmOf(label), change),
    notice: (label, notice, atMs) => {
      const address = "address" in notice ? notice.address : undefined;
      journal.notice(vmOf(label, address), notice, atMs);
      onNotice?.(label, notice);
    },
  };
}

/** Runs `record`; resolves with the exit status once interrupted (or every watch has ended). */
export async function runRecord(
  ctx: CommandContext,
  targets: readonly string[],
  opts: RecordOptions,
): Promise<number> {
  const { Journal } = await import("../journal/index.js");
  const io = ctx.io;
  const journal = Journal.open(opts.journal, {
    maxAgeMs: opts.maxAge,
    maxSizeBytes: opts.maxSize,
    onError: (error) =>
      io.stderr.write(`qmpkit record: writing ${opts.journal}: ${error.message}\n`),
  });
  const sink = journalSink(journal, (label, notice) => {
    if (!opts.quiet && notice.kind === "connected")
      io.stderr.write(`qmpkit record: recording ${label} (${notice.address}) to ${opts.journal}\n`);
  });
  try {
    return await runEvents(ctx, targets, { follow: true, timeout: opts.timeout }, sink);
  } finally {
    journal.close();
  }
}
