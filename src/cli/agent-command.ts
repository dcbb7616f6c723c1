/**
 * `qmpkit agent --nats URL --host NAME --journal FILE TARGET...`: one host's VMs on NATS
 * JetStream (docs/fleet.md). The watch is `events --follow`'s (`runEvents` with the agent as
 * its sink: reconnects, waits for VMs, rescans globs, gap notices); the fleet layer's
 * `FleetAgent` writes every item to the outbox in the journal first and publishes from it.
 *
 * The fleet layer (the NATS client) and the journal (native SQLite) load only when it runs.
 *
 * @module
 */
import { hostname } from "node:os";
import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { runEvents } from "./events-command.js";
import { durationOption, sizeOption } from "./journal-options.js";
import {
  addNatsOptions,
  type NatsCliOptions,
  natsConnectOptions,
  natsHelp,
} from "./nats-options.js";
import { positiveInteger, UsageError } from "./usage-error.js";

const examples = `
Runs until interrupted (Ctrl-C, SIGTERM), watching its VMs as 'events --follow' does, and
publishes to the JetStream stream (created if missing, when the user may):
  qmp.HOST.VM.event.NAME   each QMP event          (CloudEvents JSON, docs/fleet.md)
  qmp.HOST.VM.state        each run-state change
  qmp.HOST.VM.watch        notices: connected, lost, reconnected with the gap, dropped
and keeps each VM's current state in the KV bucket (key HOST.VM), asking query-status every
--reconcile and after each reconnection, and publishing a correction when the stream missed a
change. It answers 'qmpkit fleet exec' on qmp.HOST.VM.exec with the VM's own monitor
connection, for the commands --allow names (default: the read-only query-*); others get a
QMP-style error.
Every message is written to the outbox in --journal first and published from it, one VM's
messages in order, each with a stable Nats-Msg-Id; after a broker outage or a kill the agent
goes on from the first message the stream did not acknowledge (a resend within the stream's
duplicate window, 2 min by default, is dropped by the stream). A bounded outbox drops its
oldest messages loudly (stderr, and a "dropped" notice naming them).
${natsHelp}

Examples:
  $ qmpkit agent --nats nats://bus:4222 --host web1 --journal /var/lib/qmpkit/agent.db '/run/vms/*.qmp'
  $ qmpkit fleet events --nats nats://bus:4222            every host's VMs
  $ qmpkit fleet status --nats nats://bus:4222`;

/** Options of `agent`, as commander hands them over. */
export interface AgentOptions extends NatsCliOptions {
  readonly host?: string | undefined;
  readonly journal: string;
  readonly stream?: string | undefined;
  readonly bucket?: string | undefined;
  readonly reconcile?: number | undefined;
  readonly allow?: string[] | undefined;
  readonly outboxMax?: number | undefined;
  readonly outboxMaxSize?: number | undefined;
  readonly outboxMaxAge?: number | undefined;
  readonly timeout?: number | undefined;
  readonly quiet?: boolean | undefined;
  readonly metrics?: string | undefined;
}

export function registerAgentCommand(program: Command, ctx: CommandContext): void {
  addNatsOptions(
    program
      .command("agent")
      .description("publish one host's VM events and run states to NATS JetStream (the fleet)")
      .argument("<targets...>", "unix:PATH, tcp:HOST:PORT, socket paths or globs of them")
      .option("--host <name>", "this host's name in the fleet (default: the machine's)")
      .requiredOption("-j, --journal <file>", "the SQLite journal holding the outbox"),
  )
    .option("--stream <name>", "the JetStream stream", "QMP")
    .option("--bucket <name>", "the KV bucket of the VMs' current state", "qmp-vms")
    .option(
      "--reconcile <duration>",
      "ask each VM query-status this often (default 30s), and after each reconnection",
      durationOption("--reconcile"),
    )
    .option(
      "--allow <commands>",
      "commands 'fleet exec' may run (comma-separated, wildcards; default query-*); repeatable",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option("--outbox-max <n>", "most unpublished messages kept", positiveInteger("--outbox-max"))
    .option(
      "--outbox-max-size <size>",
      "most unpublished bytes kept (64M, 1G)",
      sizeOption("--outbox-max-size"),
    )
    .option(
      "--outbox-max-age <duration>",
      "drop unpublished messages older than this (12h, 7d)",
      durationOption("--outbox-max-age"),
    )
    .option("--timeout <ms>", "time to connect to each VM (ms)", positiveInteger("--timeout"), 5000)
    .option(
      "--metrics <addr>",
      "serve Prometheus metrics on HOST:PORT (GET /metrics; loopback unless said otherwise)",
    )
    .option("-q, --quiet", "say only what goes wrong on stderr")
    .addHelpText("after", examples)
    .action(async (targets: string[], opts: AgentOptions) => {
      ctx.exitCode = await runAgent(ctx, targets, opts);
    });
}

/** Runs `agent`; resolves with the exit status once interrupted. */
export async function runAgent(
  ctx: CommandContext,
  targets: readonly string[],
  opts: AgentOptions,
): Promise<number> {
  const io = ctx.io;
  const host = opts.host ?? hostname();
  if (host.trim() === "") throw new UsageError("invalid --host '': a host needs a name");
  const nats = natsConnectOptions(io, opts);
  const [{ Journal }, { FleetAgent, parseServers, FleetError }] = await Promise.all([
    import("../journal/index.js"),
    import("../fleet/index.js"),
  ]);
  try {
    parseServers(nats.servers);
  } catch (error) {
    if (error instanceof FleetError) throw new UsageError((error as Error).message);
    throw error;
  }
  const say = (line: string) => io.stderr.write(`qmpkit agent: ${line}\n`);
  // Prometheus metrics (the web layer's collectors), fed by the agent's observer.
  const web = opts.metrics === undefined ? undefined : await import("../web/index.js");
  const metrics = web?.createMetrics();
  const journal = Journal.open(opts.journal);
  const agent = new FleetAgent({
    host,
    nats,
    journal,
    stream: opts.stream,
    bucket: opts.bucket,
    reconcileMs: opts.reconcile,
    allow: opts.allow,
    outbox: {
      maxMessages: opts.outboxMax,
      maxBytes: opts.outboxMaxSize,
      maxAgeMs: opts.outboxMaxAge,
    },
    onWarning: say,
    observer: metrics && {
      event: (vm, name) => metrics.event(host, vm, name),
      gap: (vm) => metrics.gap(host, vm),
      runState: (vm, state) => metrics.runState(host, vm, state),
      vmConnection: (vm, connected) => metrics.connected(host, vm, connected),
    },
  });
  let served: Awaited<ReturnType<NonNullable<typeof web>["serveMetrics"]>> | undefined;
  let depth: NodeJS.Timeout | undefined;
  try {
    if (web && metrics) {
      try {
        served = await web.serveMetrics(metrics, { listen: opts.metrics });
      } catch (error) {
        throw new UsageError(`--metrics: ${(error as Error).message}`);
      }
      say(`metrics on ${served.url}/metrics`);
      depth = setInterval(() => metrics.outboxDepth(host, agent.stats().outboxDepth), 1000);
      depth.unref();
      metrics.outboxDepth(host, agent.stats().outboxDepth);
    }
    agent.start();
    return await runEvents(
      ctx,
      targets,
      { follow: true, timeout: opts.timeout },
      {
        event: (label, event) => agent.event(label, event),
        state: (label, change) => agent.state(label, change),
        attach: (label, client) => agent.attach(label, client),
        detach: (label, client) => agent.detach(label, client),
        notice: (label, notice, atMs) => {
          agent.notice(label, notice, atMs);
          if (!opts.quiet && notice.kind === "connected")
            say(`watching ${host}/${label} (${notice.address})`);
        },
      },
    );
  } finally {
    if (depth !== undefined) clearInterval(depth);
    await served?.close();
    await agent.close();
    journal.close();
  }
}
