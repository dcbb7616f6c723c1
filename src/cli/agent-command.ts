/**
 * `qmpkit agent --nats URL --host NAME --journal FILE TARGET...`: one host's VMs on NATS
 * JetStream (docs/fleet.md). The watch is `events --follow`'s (`runEvents` with the agent as
 * its sink: reconnects, waits for VMs, rescans globs, gap notices); the fleet layer's
 * `FleetAgent` writes every item to the outbox in the journal first and publishes from it.
 *
 * With `--metrics ADDR` it serves Prometheus `/metrics` from the web layer's collectors
 * (`src/web/metrics.ts`), fed by the agent's observer (events, gaps) and, at each scrape, by its
 * own numbers (`stats()`: run states, connections, the outbox depth). The fleet layer does not
 * know the web layer; this command joins them.
 *
 * The fleet layer (the NATS client) and the journal (native SQLite) load only when it runs; the
 * web layer (prom-client, Hono) only with `--metrics`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Command } from "commander";
import type { FleetAgent, FleetAgentObserver } from "../fleet/index.js";
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

--metrics ADDR serves Prometheus metrics at http://ADDR/metrics (off by default; a bare PORT
is loopback): qmpkit_vm_run_state{host,vm,state}, qmpkit_events_total{host,vm,event},
qmpkit_vm_connected{host,vm}, qmpkit_watch_gaps_total{host,vm}, qmpkit_outbox_depth{host}
(messages written but not yet acknowledged by the stream), and the process's own
(docs/dashboard.md, "The agent's metrics").
Off loopback it needs a token that scrapers send as "Authorization: Bearer TOKEN":
--metrics-token-file FILE or $QMPKIT_METRICS_TOKEN (never on the command line, never printed).

Examples:
  $ qmpkit agent --nats nats://bus:4222 --host web1 --journal /var/lib/qmpkit/agent.db '/run/vms/*.qmp'
  $ qmpkit agent --host web1 --journal agent.db --metrics 9470 '/run/vms/*.qmp'
  $ curl -s http://127.0.0.1:9470/metrics | grep qmpkit_outbox_depth
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
  readonly metricsTokenFile?: string | undefined;
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
    .option("--metrics <addr>", "serve Prometheus /metrics on HOST:PORT or PORT (default: off)")
    .option(
      "--metrics-token-file <file>",
      "file holding the token /metrics asks for (or $QMPKIT_METRICS_TOKEN); needed off loopback",
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
  const metrics = await agentMetrics(io, host, opts);
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
    observer: metrics?.observer,
    onWarning: say,
  });
  let server: Awaited<ReturnType<NonNullable<typeof metrics>["serve"]>> | undefined;
  try {
    if (metrics !== undefined) {
      server = await metrics.serve(agent);
      if (!opts.quiet) say(`metrics on ${server.url}/metrics`);
    }
  } catch (error) {
    journal.close();
    throw new UsageError(`--metrics ${opts.metrics}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
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
    await server?.close();
    await agent.close();
    journal.close();
  }
}

/**
 * The agent's metrics when `--metrics` is given: checked up front (a malformed address, or one
 * off loopback without a token, is a usage error before anything runs), the collectors, the
 * observer that counts events and gaps, and `serve` that copies the agent's numbers at each
 * scrape and listens.
 */
async function agentMetrics(io: CommandContext["io"], host: string, opts: AgentOptions) {
  if (opts.metrics === undefined) {
    if (opts.metricsTokenFile !== undefined)
      throw new UsageError("--metrics-token-file needs --metrics ADDR");
    return undefined;
  }
  const web = await import("../web/index.js");
  let listen: ReturnType<typeof web.parseListenAddress>;
  try {
    listen = web.parseListenAddress(opts.metrics);
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  let token = io.env.QMPKIT_METRICS_TOKEN || undefined;
  if (opts.metricsTokenFile !== undefined) {
    try {
      token = readFileSync(opts.metricsTokenFile, "utf8").trim();
    } catch (error) {
      throw new UsageError(
        `cannot read --metrics-token-file ${opts.metricsTokenFile}: ${(error as Error).message}`,
      );
    }
  }
  if (!web.isLoopback(listen.host) && token === undefined)
    throw new UsageError(
      `--metrics ${opts.metrics}: not loopback, so a token is needed (--metrics-token-file FILE or $QMPKIT_METRICS_TOKEN)`,
    );
  const metrics = web.createMetrics({ processMetrics: true });
  const observer: FleetAgentObserver = {
    event: (vm, name) => metrics.event(host, vm, name),
    gap: (vm) => metrics.gap(host, vm),
  };
  return {
    observer,
    serve(agent: FleetAgent) {
      // Run states and connections as the agent knows them (query-status corrections
      // included), and its outbox, read when Prometheus asks.
      metrics.onScrape(() => {
        const stats = agent.stats();
        metrics.outboxDepth(host, stats.outboxDepth);
        for (const [vm, s] of stats.vms) {
          metrics.connected(host, vm, s.connected);
          if (s.runState !== undefined) metrics.runState(host, vm, s.runState);
        }
      });
      return web.serveMetrics(metrics, { listen: web.formatListenAddress(listen), token });
    },
  };
}
