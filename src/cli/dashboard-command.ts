/**
 * `qmpkit dashboard [TARGET…]`: a live web page of VMs, their run-state timelines and events,
 * and Prometheus metrics (`src/web`). The VMs are watched as `events --follow` watches them
 * (`runEvents` with a sink, as `record` does): every event, run-state change and watch notice
 * goes into the journal first, and the page reads the journal, live and history alike.
 *
 * The web layer (Hono, prom-client) and the journal (SQLite) load only when the command runs.
 *
 * @module
 */
import { hostname } from "node:os";
import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { runEvents, type WatchSink } from "./events-command.js";
import { durationOption, sizeOption } from "./journal-options.js";
import { journalSink } from "./record-command.js";
import { positiveInteger, UsageError } from "./usage-error.js";

const examples = `
The page (http://127.0.0.1:8470/ by default) shows every VM (host, name, QEMU version, run
state with since-when and cause, connection), a run-state timeline per VM, the event log with
the filters of 'events', and a page per VM with its recent events and actions (stop, cont,
system_reset, system_powerdown, quit; each asks for confirmation; --read-only refuses them).
Everything is journalled first (--journal FILE; in memory without it): a page that loses its
connection resumes from the journal and misses nothing. /metrics serves Prometheus metrics.

Listening on anything but loopback needs a token (--token, or QMPKIT_DASHBOARD_TOKEN); open
the page once as http://HOST:PORT/?token=TOKEN (a cookie keeps it), or send
"Authorization: Bearer TOKEN". The token is never printed nor journalled.

With --journal and no target, the page shows that journal and follows what another process
records into it (qmpkit record, the fleet agent).

Examples:
  $ qmpkit dashboard '/run/vms/*.qmp' --journal vms.db
  $ qmpkit dashboard vm1.qmp vm2.qmp --read-only
  $ QMPKIT_DASHBOARD_TOKEN=$(openssl rand -hex 16) qmpkit dashboard '/run/vms/*.qmp' --listen 0.0.0.0:8470
  $ qmpkit dashboard --journal vms.db                  # what 'qmpkit record' writes, live
  $ curl -s http://127.0.0.1:8470/metrics | grep qmpkit_vm_run_state`;

/** Options of `dashboard`, as commander hands them over. */
export interface DashboardCommandOptions {
  readonly journal?: string | undefined;
  readonly nats?: string | undefined;
  readonly listen: string;
  readonly readOnly?: boolean | undefined;
  readonly token?: string | undefined;
  readonly maxAge?: number | undefined;
  readonly maxSize?: number | undefined;
  readonly timeout?: number | undefined;
}

export function registerDashboardCommand(program: Command, ctx: CommandContext): void {
  program
    .command("dashboard")
    .description("a live web page of VMs, run-state timelines and events; Prometheus /metrics")
    .argument("[targets...]", "unix:PATH, tcp:HOST:PORT, socket paths or globs of them")
    .option("-j, --journal <file>", "the SQLite journal (default: in memory)")
    .option("--nats <url>", "the fleet's NATS server (the stream QMP)")
    .option("--listen <addr>", "HOST:PORT to serve the page on", "127.0.0.1:8470")
    .option("--read-only", "refuse every action on VMs")
    .option("--token <token>", "the token the page's requests carry (or QMPKIT_DASHBOARD_TOKEN)")
    .option(
      "--max-age <duration>",
      "delete journal rows older than this",
      durationOption("--max-age"),
    )
    .option("--max-size <size>", "keep the journal under this size", sizeOption("--max-size"))
    .option("--timeout <ms>", "time to connect to each VM (ms)", positiveInteger("--timeout"), 5000)
    .addHelpText("after", examples)
    .action(async (targets: string[], opts: DashboardCommandOptions) => {
      ctx.exitCode = await runDashboard(ctx, targets, opts);
    });
}

/** Runs `dashboard` until interrupted; resolves with the exit status. */
export async function runDashboard(
  ctx: CommandContext,
  targets: readonly string[],
  opts: DashboardCommandOptions,
): Promise<number> {
  const io = ctx.io;
  if (opts.nats !== undefined && targets.length > 0)
    throw new UsageError(
      "--nats shows the fleet's VMs: run a fleet agent for local VMs, or a second dashboard for TARGET…",
    );
  if (targets.length === 0 && opts.journal === undefined && opts.nats === undefined)
    throw new UsageError(
      "nothing to show: give TARGET… to watch, --nats URL for the fleet, or --journal FILE to follow",
    );
  const token = opts.token ?? (io.env.QMPKIT_DASHBOARD_TOKEN || undefined);
  const [{ Journal }, web] = await Promise.all([
    import("../journal/index.js"),
    import("../web/index.js"),
  ]);
  let listen: ReturnType<typeof web.parseListenAddress>;
  try {
    listen = web.parseListenAddress(opts.listen);
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  if (!web.isLoopback(listen.host) && token === undefined)
    throw new UsageError(
      `--listen ${opts.listen}: not loopback, so a token is needed (--token T or QMPKIT_DASHBOARD_TOKEN)`,
    );
  const fleet = opts.nats !== undefined;
  const follow = targets.length === 0 && !fleet;
  const host = hostname();
  const journal = Journal.open(opts.journal ?? ":memory:", {
    readonly: follow,
    host,
    // The fleet's stream resumes where the journal stopped: no gap to note.
    restartGaps: !fleet,
    maxAgeMs: opts.maxAge,
    maxSizeBytes: opts.maxSize,
    onError: (error) =>
      io.stderr.write(`qmpkit dashboard: writing the journal: ${error.message}\n`),
  });
  const actions = new web.LocalActions(host);
  const sink: WatchSink = {
    ...journalSink(journal),
    attach: (vm, client) => actions.attach(vm, client),
    detach: (vm, client) => actions.detach(vm, client),
  };
  const source = fleet
    ? new web.FleetSource({
        nats: { servers: opts.nats! },
        journal,
        onWarning: (line) => io.stderr.write(`qmpkit dashboard: ${line}\n`),
      })
    : follow
      ? undefined
      : {
          description: `${targets.length} target${targets.length === 1 ? "" : "s"}`,
          actions,
          run: (signal: AbortSignal) =>
            runEvents(
              { ...ctx, io: { ...io, signal: AbortSignal.any([io.signal, signal]) } },
              targets,
              { follow: true, timeout: opts.timeout },
              sink,
            ),
        };
  let dashboard: Awaited<ReturnType<typeof web.startDashboard>> | undefined;
  try {
    dashboard = await web.startDashboard({
      journal,
      source,
      listen: web.formatListenAddress(listen),
      token,
      readOnly: opts.readOnly,
    });
    io.stderr.write(
      `qmpkit dashboard: ${dashboard.url}/ (${source ? `watching ${source.description}` : "following the journal"}${opts.journal ? `, journal ${opts.journal}` : ", journal in memory"}${opts.readOnly ? ", read-only" : ""})\n`,
    );
    if (token !== undefined)
      io.stderr.write(
        "qmpkit dashboard: open it once with ?token=<the token> (a cookie keeps it)\n",
      );
    const stopped = new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve();
      io.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await Promise.race([stopped, dashboard.done]);
    return 0;
  } catch (error) {
    if (error instanceof web.DashboardError) throw new UsageError(error.message, { cause: error });
    throw error;
  } finally {
    await dashboard?.close();
    journal.close();
  }
}
