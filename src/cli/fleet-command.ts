/**
 * `qmpkit fleet events|status|exec`: the whole fleet through NATS (docs/fleet.md).
 *
 * - `events [HOST/VM...]`: the stream's messages in the formats of `qmpkit events` (labels
 *   `HOST/VM`), new ones by default, or from `--since`; with `--no-follow` it ends when it has
 *   caught up. An ordered consumer: nothing is left on the server when it ends.
 * - `status [HOST/VM...]`: the KV bucket's table of VMs (run state, since, QEMU, connection, last
 *   event); `--json` prints the entries.
 * - `exec HOST/VM COMMAND [key=value...]`: a command through the VM's agent (request/reply on
 *   `qmp.HOST.VM.exec`), printed as `qmpkit exec` prints it.
 *
 * The fleet layer (the NATS client) loads only when a command runs.
 *
 * @module
 */
import type { Command } from "commander";
import { isJsonObject, type JsonObject } from "../base/json.js";
import { wildcardRegExp } from "../base/wildcard.js";
import { qmpEventNames } from "../generated/index.js";
import type { CommandContext } from "./context.js";
import {
  createEventFilter,
  formatEventJson,
  formatStateJson,
  formatWatchJson,
  HumanEventFormatter,
  localTime,
  unknownEventNames,
  type WatchNotice,
  watchNoticeText,
} from "./event-format.js";
import { addFilterOptions } from "./events-command.js";
import { wantColor } from "./io.js";
import { timeOption } from "./journal-options.js";
import { stringifyJson } from "./json-text.js";
import { parseKeyValues } from "./key-value.js";
import {
  addNatsOptions,
  type NatsCliOptions,
  natsConnectOptions,
  natsHelp,
} from "./nats-options.js";
import { positiveInteger, UsageError } from "./usage-error.js";

/** Options of `fleet events`. */
export interface FleetEventsOptions extends NatsCliOptions {
  readonly only?: string[] | undefined;
  readonly except?: string[] | undefined;
  readonly where?: string[] | undefined;
  readonly json?: boolean | undefined;
  readonly since?: number | undefined;
  readonly follow?: boolean | undefined;
  readonly count?: number | undefined;
  readonly state?: boolean | undefined;
  readonly stream?: string | undefined;
}

/** Options of `fleet status`. */
export interface FleetStatusOptions extends NatsCliOptions {
  readonly json?: boolean | undefined;
  readonly bucket?: string | undefined;
}

/** Options of `fleet exec`. */
export interface FleetExecOptions extends NatsCliOptions {
  readonly timeout?: number | undefined;
  readonly pretty?: boolean | undefined;
  readonly compact?: boolean | undefined;
}

const eventsExamples = `
Examples:
  $ qmpkit fleet events --nats nats://bus:4222                 every VM of every host, from now
  $ qmpkit fleet events 'web1/*' --since 1h --no-follow        one host's last hour, then exit
  $ qmpkit fleet events '*/db?' --only STOP,RESUME --json
VM patterns are HOST/VM with * and ? wildcards (a bare HOST means all its VMs). The formats
are those of 'qmpkit events' (see qmpkit events --help), the labels HOST/VM.
${natsHelp}`;

const statusExamples = `
Examples:
  $ qmpkit fleet status --nats nats://bus:4222
  $ qmpkit fleet status 'web1/*' --json | jq -r '.[] | select(.state != "running") | .vm'
Each entry (key HOST.VM in the KV bucket): host, vm, address, qemu, state (the run state),
since (when it began), connection (connected, disconnected, waiting), lastEvent {event,
time}, updated (when the agent wrote it).`;

const execExamples = `
Examples:
  $ qmpkit fleet exec web1/vm1 query-status
  $ qmpkit fleet exec web1/vm1 query-block --compact
  $ qmpkit fleet exec web1/vm1 stop              refused unless the agent runs with --allow stop
The agent runs the command on the VM's monitor connection, if its --allow permits it (default:
query-* only); a refusal or a QEMU error is printed as CLASS: desc with exit status 1.`;

export function registerFleetCommand(program: Command, ctx: CommandContext): void {
  const fleet = program
    .command("fleet")
    .description("the fleet on NATS: every host's VM events, current states, commands");
  addNatsOptions(
    addFilterOptions(
      fleet
        .command("events")
        .description("watch the events of the whole fleet (the JetStream stream)")
        .argument("[vms...]", "HOST/VM patterns (wildcards); default every VM"),
    ),
  )
    .option("--json", "one JSON object per line, as 'qmpkit events --json'")
    .option("--since <time>", "from this time (10m, 2h, or a date and time)", timeOption("--since"))
    .option("--no-follow", "end once caught up with the stream")
    .option("-n, --count <n>", "exit after printing this many events", positiveInteger("--count"))
    .option("--no-state", "do not print run-state changes")
    .option("--stream <name>", "the JetStream stream", "QMP")
    .addHelpText("after", eventsExamples)
    .action(async (vms: string[], opts: FleetEventsOptions) => {
      ctx.exitCode = await runFleetEvents(ctx, vms, opts);
    });
  addNatsOptions(
    fleet
      .command("status")
      .description("the current state of every VM of the fleet (the KV bucket)")
      .argument("[vms...]", "HOST/VM patterns (wildcards); default every VM"),
  )
    .option("--json", "the entries as a JSON array")
    .option("--bucket <name>", "the KV bucket", "qmp-vms")
    .addHelpText("after", statusExamples)
    .action(async (vms: string[], opts: FleetStatusOptions) => {
      ctx.exitCode = await runFleetStatus(ctx, vms, opts);
    });
  addNatsOptions(
    fleet
      .command("exec")
      .description("run a QMP command on a VM through its agent")
      .argument("<vm>", "HOST/VM")
      .argument("<command>", "the QMP command")
      .argument("[arguments...]", "key=value arguments (dotted keys, key:=JSON)"),
  )
    .option(
      "--timeout <ms>",
      "time to wait for the answer (ms)",
      positiveInteger("--timeout"),
      10_000,
    )
    .option("--pretty", "indent the result (default on a terminal)")
    .option("--compact", "print the result on one line (default when piped)")
    .addHelpText("after", execExamples)
    .action(async (vm: string, command: string, items: string[], opts: FleetExecOptions) => {
      ctx.exitCode = await runFleetExec(ctx, vm, command, items, opts);
    });
}

/** A `HOST/VM` pattern as a test on names (`*`, `?`; a bare HOST: all its VMs). */
function vmMatcher(patterns: readonly string[]): (host: string, vm: string) => boolean {
  if (patterns.length === 0) return () => true;
  const glob = (p: string) => wildcardRegExp(p);
  const tests = patterns.map((p) => {
    const slash = p.indexOf("/");
    const host = glob(slash < 0 ? p : p.slice(0, slash));
    const vm = glob(slash < 0 ? "*" : p.slice(slash + 1));
    return (h: string, v: string) => host.test(h) && vm.test(v);
  });
  return (h, v) => tests.some((t) => t(h, v));
}

/** `HOST/VM` split; `UsageError` when either part is missing. */
export function parseFleetVm(text: string): { host: string; vm: string } {
  const slash = text.indexOf("/");
  if (slash <= 0 || slash === text.length - 1)
    throw new UsageError(`invalid VM '${text}': expected HOST/VM`);
  return { host: text.slice(0, slash), vm: text.slice(slash + 1) };
}

async function loadFleet(ctx: CommandContext, opts: NatsCliOptions) {
  const nats = natsConnectOptions(ctx.io, opts);
  const fleet = await import("../fleet/index.js");
  try {
    fleet.parseServers(nats.servers);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return { fleet, nats };
}

/** Runs `fleet events`; resolves with the exit status. */
export async function runFleetEvents(
  ctx: CommandContext,
  patterns: readonly string[],
  opts: FleetEventsOptions,
): Promise<number> {
  const io = ctx.io;
  const filter = createEventFilter({ only: opts.only, except: opts.except, where: opts.where });
  for (const name of unknownEventNames(opts, qmpEventNames))
    io.stderr.write(
      `qmpkit fleet events: warning: '${name}' is not an event qmpkit knows (a typo?)\n`,
    );
  const wanted = vmMatcher(patterns);
  const { fleet, nats } = await loadFleet(ctx, opts);
  const { DeliverPolicy, jetstream } = await import("@nats-io/jetstream");
  const nc = await fleet.connectNats({ ...nats, name: "qmpkit fleet events" });
  const stream = opts.stream ?? "QMP";
  const human = opts.json
    ? undefined
    : new HumanEventFormatter({ color: wantColor(io.stdout, io.env, ctx.color()) });
  const out = (line: string) => io.stdout.write(`${line}\n`);
  let printed = 0;
  const onAbort = () => void nc.close().catch(() => {});
  io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const subject =
      patterns.length === 1
        ? fleet.fleetFilterSubject(patterns[0])
        : `${fleet.DEFAULT_SUBJECT_PREFIX}.>`;
    let consumer: Awaited<ReturnType<ReturnType<typeof jetstream>["consumers"]["get"]>>;
    try {
      consumer = await jetstream(nc).consumers.get(stream, {
        // One subject as a string: nats-server 2.9 knows `filter_subject` only.
        filter_subjects: subject,
        ...(opts.since === undefined
          ? { deliver_policy: DeliverPolicy.New }
          : {
              deliver_policy: DeliverPolicy.StartTime,
              opt_start_time: new Date(opts.since).toISOString(),
            }),
      });
    } catch (error) {
      throw new fleet.FleetError(
        `cannot read the stream ${stream} at ${fleet.serversText(nats.servers)}: ${fleet.describeNatsError(error)}`,
        { cause: error },
      );
    }
    if (opts.follow === false && (await consumer.info()).num_pending === 0) return 0;
    const messages = await consumer.consume();
    io.signal.addEventListener("abort", () => void messages.close(), { once: true });
    for await (const m of messages) {
      let message: ReturnType<typeof fleet.decodeEnvelope> | undefined;
      try {
        message = fleet.decodeEnvelope(m.string());
      } catch (error) {
        io.stderr.write(
          `qmpkit fleet events: skipped message ${m.seq} on ${m.subject}: ${(error as Error).message}\n`,
        );
      }
      if (message !== undefined && wanted(message.host, message.vm)) {
        const label = `${message.host}/${message.vm}`;
        if (message.kind === "event") {
          if (filter(message.event)) {
            out(human ? human.event(label, message.event) : formatEventJson(label, message.event));
            printed++;
          }
        } else if (message.kind === "state") {
          if (opts.state !== false)
            out(
              human
                ? human.stateChange(
                    label,
                    message.change.from,
                    message.change.to,
                    message.change.atMs,
                  )
                : formatStateJson(label, message.change),
            );
        } else {
          const notice = message.notice as unknown as WatchNotice;
          out(
            human
              ? human.notice(label, watchNoticeText(notice), message.timeMs)
              : formatWatchJson(label, notice, message.timeMs),
          );
        }
      }
      if (opts.count !== undefined && printed >= opts.count) break;
      if (opts.follow === false && m.info.pending === 0) break;
    }
    return 0;
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    if (!nc.isClosed()) await nc.close().catch(() => {});
  }
}

/** Runs `fleet status`; resolves with the exit status. */
export async function runFleetStatus(
  ctx: CommandContext,
  patterns: readonly string[],
  opts: FleetStatusOptions,
): Promise<number> {
  const io = ctx.io;
  const wanted = vmMatcher(patterns);
  const { fleet, nats } = await loadFleet(ctx, opts);
  const { Kvm } = await import("@nats-io/kv");
  const nc = await fleet.connectNats({ ...nats, name: "qmpkit fleet status", reconnect: false });
  const bucket = opts.bucket ?? "qmp-vms";
  try {
    let kv: Awaited<ReturnType<InstanceType<typeof Kvm>["open"]>>;
    try {
      kv = await new Kvm(nc).open(bucket);
      await kv.status();
    } catch (error) {
      throw new fleet.FleetError(
        `cannot open the KV bucket ${bucket} at ${fleet.serversText(nats.servers)}: ${fleet.describeNatsError(error)} (has an agent run yet?)`,
        { cause: error },
      );
    }
    const entries: JsonObject[] = [];
    for await (const key of await kv.keys()) {
      const e = await kv.get(key);
      if (e === null || e.operation !== "PUT") continue;
      let entry: unknown;
      try {
        entry = e.json();
      } catch {
        continue;
      }
      if (!isJsonObject(entry)) continue;
      if (!wanted(String(entry.host), String(entry.vm))) continue;
      entries.push(entry);
    }
    entries.sort((a, b) =>
      `${a.host}/${a.vm}` < `${b.host}/${b.vm}`
        ? -1
        : `${a.host}/${a.vm}` > `${b.host}/${b.vm}`
          ? 1
          : 0,
    );
    if (opts.json) {
      io.stdout.write(`${stringifyJson(entries, 2)}\n`);
      return 0;
    }
    const rows = entries.map((e) => {
      const last = isJsonObject(e.lastEvent) ? e.lastEvent : undefined;
      return [
        `${e.host}/${e.vm}`,
        String(e.state ?? "?"),
        typeof e.since === "string" ? sinceText(e.since) : "",
        String(e.qemu ?? ""),
        String(e.connection ?? ""),
        last
          ? `${last.event} ${typeof last.time === "string" ? localTime(Date.parse(last.time)) : ""}`
          : "",
      ];
    });
    const header = ["VM", "STATE", "SINCE", "QEMU", "MONITOR", "LAST EVENT"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [header, ...rows])
      io.stdout.write(
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join("  ")
          .trimEnd()}\n`,
      );
    return 0;
  } finally {
    await nc.close().catch(() => {});
  }
}

function sinceText(iso: string): string {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? iso : `${new Date(at).toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** Runs `fleet exec`; resolves with the exit status. */
export async function runFleetExec(
  ctx: CommandContext,
  target: string,
  command: string,
  items: readonly string[],
  opts: FleetExecOptions,
): Promise<number> {
  const io = ctx.io;
  const { host, vm } = parseFleetVm(target);
  const args = items.length > 0 ? parseKeyValues(items) : undefined;
  const { fleet, nats } = await loadFleet(ctx, opts);
  const nc = await fleet.connectNats({ ...nats, name: "qmpkit fleet exec", reconnect: false });
  const subject = fleet.vmSubjects(host, vm).exec;
  try {
    let reply: unknown;
    try {
      const msg = await nc.request(
        subject,
        JSON.stringify({ execute: command, ...(args === undefined ? {} : { arguments: args }) }),
        { timeout: opts.timeout ?? 10_000 },
      );
      reply = msg.json();
    } catch (error) {
      const why = fleet.describeNatsError(error);
      throw new fleet.FleetError(
        /no responders/i.test(why)
          ? `no agent answers for ${host}/${vm} (${subject}): is 'qmpkit agent --host ${host}' running?`
          : `${command} on ${host}/${vm}: ${why}`,
      );
    }
    if (isJsonObject(reply) && isJsonObject(reply.error)) {
      io.stderr.write(`qmpkit: ${command}: ${reply.error.class}: ${reply.error.desc}\n`);
      return 1;
    }
    if (!isJsonObject(reply) || !("return" in reply))
      throw new fleet.FleetError(
        `${command} on ${host}/${vm}: the agent's answer is not a QMP reply`,
      );
    const pretty = opts.compact ? false : (opts.pretty ?? io.stdout.isTTY === true);
    io.stdout.write(`${stringifyJson(reply.return ?? {}, pretty ? 2 : undefined)}\n`);
    return 0;
  } finally {
    await nc.close().catch(() => {});
  }
}
