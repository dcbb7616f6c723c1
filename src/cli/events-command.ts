/**
 * `qmpkit events [TARGET...]`: watch the events of one or many VMs.
 *
 * Each target is watched by its own `QmpClient` (the client's run-state tracker supplies the
 * state-change lines). Without `--follow` a watch ends when its VM goes away, and the command
 * when every watch has ended; with `--follow` the client reconnects (saying so, and that events
 * in between are lost, §1.3), a VM that is not there yet is waited for, and globs are rescanned
 * for new sockets every second. With no target at all, an embedded simulated VM runs a demo
 * guest script (`demo.ts`) and is watched until it powers off.
 *
 * @module
 */
import { setMaxListeners } from "node:events";
import { statSync } from "node:fs";
import type { Command } from "commander";
import { QmpClient } from "../client/index.js";
import { qmpEventNames } from "../generated/index.js";
import { startDemo } from "./demo.js";
import {
  createEventFilter,
  formatEventJson,
  formatStateJson,
  formatWatchJson,
  HumanEventFormatter,
  type QmpEventMessage,
  type RunStateLine,
  timestampMs,
  unknownEventNames,
  type WatchNotice,
  watchNoticeText,
} from "./event-format.js";
import { sleep, wantColor } from "./io.js";
import type { CommandContext } from "./context.js";
import { describeError } from "./report.js";
import {
  type Endpoint,
  endpointAddress,
  labelEndpoints,
  parseTargetArg,
  resolveTargets,
  type TargetSpec,
} from "./targets.js";
import { positiveInteger, UsageError } from "./usage-error.js";

const examples = `
A QEMU -qmp socket serves one client at a time: while another tool (libvirt, a shell) is
connected, this one waits for its greeting. Give QEMU a second monitor
(-qmp unix:/run/vm1-tools.qmp,server=on,wait=off), or share one with
\`qmpkit proxy vm1.qmp --listen unix:/run/vm1-shared.qmp\`.

Examples:
  $ qmpkit events                                   a demo VM, no QEMU needed
  $ qmpkit events unix:/run/vm1.qmp
  $ qmpkit events '/run/vms/*.qmp' --follow         every VM, across restarts and new VMs
  $ qmpkit events vm1.qmp --only STOP,RESUME
  $ qmpkit events vm1.qmp --except 'RTC_*' --where guest=true
  $ qmpkit events vm1.qmp --json | jq -r 'select(.event) | .event'
  $ qmpkit events vm1.qmp --json | jq -c 'select(."run-state") | ."run-state"'

Filters: --only/--except take names, comma-separated, with * and ? wildcards;
--where KEY=VALUE (or KEY!=VALUE) matches event data by dotted path, e.g. action=pause.
A run-state change is shown with the event that caused it, so only when that event passes
the filters; one found by query-status (after a connect or reconnect) is always shown;
--no-state hides them all. Notices about the watch itself are never filtered.

Human output: local time, VM, time since that VM's previous event, event, data; run-state
changes and notices (connected, lost, reconnected) on lines of their own.

--json: one object per line, each with "vm" and "timestamp" ({"seconds","microseconds"}):
  {"vm","event","data"?,"timestamp"}                     a QMP event, as QEMU sent it
  {"vm","run-state":{"from","to","cause"},"timestamp"}   cause: the event's name or
                                                          "query-status"; timestamp: the event's
  {"vm","watch":KIND,...,"timestamp"}                    the watch itself (local time):
    "connected"    "address", "qemu" (version), "state" (run state, when known)
    "disconnected" "reconnecting" (true with --follow), "reason"?
    "reconnected"  "qemu", "gap": {"since","until"}: QEMU's events in between are lost
    "waiting"      "address", "error" (--follow, VM not there yet)
    "overflow"     "dropped": events dropped because the output did not keep up
    "started"      "address", "qemu" (the demo's simulated VM)
Only QMP events have an "event" member. Errors go to stderr.`;

/** Options of `events`, as commander hands them over. */
export interface EventsOptions {
  readonly only?: string[] | undefined;
  readonly except?: string[] | undefined;
  readonly where?: string[] | undefined;
  readonly json?: boolean | undefined;
  readonly follow?: boolean | undefined;
  readonly count?: number | undefined;
  readonly timeout?: number | undefined;
  readonly state?: boolean | undefined;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--only`, `--except`, `--where`: the event filters of `events` (and `history`). */
export function addFilterOptions(command: Command): Command {
  return command
    .option("--only <names>", "only these events (comma-separated, wildcards); repeatable", collect)
    .option(
      "--except <names>",
      "not these events (comma-separated, wildcards); repeatable",
      collect,
    )
    .option(
      "--where <key=value>",
      "only events whose data matches (key!=value negates); repeatable",
      collect,
    );
}

export function registerEventsCommand(program: Command, ctx: CommandContext): void {
  addFilterOptions(
    program
      .command("events")
      .description("watch QMP events from one or many VMs (no target: a demo VM)")
      .argument("[targets...]", "unix:PATH, tcp:HOST:PORT, socket paths or globs of them"),
  )
    .option("--json", "one JSON object per line: events, run-state changes, watch notices")
    .option("-f, --follow", "reconnect when a VM goes away, wait for VMs, rescan globs")
    .option("-n, --count <n>", "exit after printing this many events", positiveInteger("--count"))
    .option("--timeout <ms>", "time to connect to each VM (ms)", positiveInteger("--timeout"), 5000)
    .option("--no-state", "do not print run-state changes (nor their JSON objects)")
    .addHelpText("after", examples)
    .action(async (targets: string[], opts: EventsOptions) => {
      ctx.exitCode = await runEvents(ctx, targets, opts);
    });
}

/** A one-shot stop signal shared by every watch. */
class Stopper {
  private readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  constructor() {
    // Every watch (a thousand VMs, say) listens on it: that is no leak.
    setMaxListeners(0, this.signal);
  }
  stop(): void {
    this.controller.abort();
  }
}

/**
 * Where a watch's items go: by default lines on stdout (`events`); `record` journals them. Each
 * call is made in order: an event, then the run-state changes it caused.
 */
export interface WatchSink {
  event(vm: string, event: QmpEventMessage, receivedMs: number): void;
  state(vm: string, change: RunStateLine): void;
  notice(vm: string, notice: WatchNotice, atMs: number): void;
  /**
   * The watch's client of `vm` is connected (before its `connected` notice): the one monitor
   * connection, which the fleet agent also uses for commands and `query-status` reconciles.
   */
  attach?(vm: string, client: QmpClient): void;
  /** That client is closing (after the watch's last item). */
  detach?(vm: string, client: QmpClient): void;
}

/** A watch's one stream of a VM: its events, the client's notices (gaps, drops), run states. */
function watchStream(client: QmpClient, signal: AbortSignal, runState: boolean) {
  return client.events({ signal, notices: true, runState, maxQueue: 10_000 });
}
type WatchStream = ReturnType<typeof watchStream>;

/** Runs `events` (or, with a `sink`, the same watch feeding it); resolves with the exit status. */
export async function runEvents(
  ctx: CommandContext,
  targets: readonly string[],
  opts: EventsOptions,
  sink?: WatchSink | undefined,
): Promise<number> {
  const io = ctx.io;
  const filter = createEventFilter({ only: opts.only, except: opts.except, where: opts.where });
  for (const name of unknownEventNames(opts, qmpEventNames)) {
    // A warning, not an error: a real QEMU may send events the catalogue does not describe.
    io.stderr.write(`qmpkit events: warning: '${name}' is not an event qmpkit knows (a typo?)\n`);
  }
  const specs: TargetSpec[] = targets.map(parseTargetArg);
  const human = opts.json
    ? undefined
    : new HumanEventFormatter({ color: wantColor(io.stdout, io.env, ctx.color()) });
  const stopper = new Stopper();
  const onAbort = () => stopper.stop();
  io.signal.addEventListener("abort", onAbort, { once: true });
  let printed = 0;
  let failures = 0;

  const out = (line: string) => io.stdout.write(`${line}\n`);
  /** Notices about the watch: a dimmed line for people, a `"watch"` object in a JSON stream. */
  const notice = (vm: string, n: WatchNotice) => {
    if (stopper.signal.aborted) return;
    const now = Date.now();
    if (sink) sink.notice(vm, n, now);
    else out(human ? human.notice(vm, watchNoticeText(n), now) : formatWatchJson(vm, n, now));
  };
  const printState = (vm: string, change: RunStateLine) => {
    if (stopper.signal.aborted) return;
    if (sink) sink.state(vm, change);
    else
      out(
        human
          ? human.stateChange(vm, change.from, change.to, change.atMs)
          : formatStateJson(vm, change),
      );
  };

  const watch = async (endpoint: Endpoint, label: string, follow: boolean): Promise<void> => {
    const address = endpointAddress(endpoint);
    let announcedWait = false;
    for (let delay = 100; !stopper.signal.aborted; delay = Math.min(delay * 2, 2000)) {
      let client: QmpClient;
      let stream: WatchStream | undefined;
      try {
        client = await QmpClient.connect(
          address,
          {
            timeoutMs: opts.timeout ?? 5000,
            signal: stopper.signal,
            reconnect: follow ? { initialDelayMs: 100, maxDelayMs: 2000 } : false,
            onNotice: (n) => {
              // Reconnections and drops reach the stream in position (gap and overflow notices).
              if (n.kind === "disconnected" && follow)
                notice(label, { kind: "disconnected", reconnecting: true, reason: why(n.reason) });
            },
          },
          // Subscribed before the handshake: QEMU may send events between the negotiation and
          // the answer to the client's first query-status, and none may be missed.
          (c) => {
            stream = watchStream(c, stopper.signal, opts.state !== false);
          },
        );
      } catch (error) {
        if (stopper.signal.aborted) return;
        if (!follow) {
          failures++;
          io.stderr.write(`qmpkit: ${describeError(error)}\n`);
          return;
        }
        if (!announcedWait)
          notice(label, { kind: "waiting", address, error: describeError(error) });
        announcedWait = true;
        await sleep(delay, stopper.signal);
        continue;
      }
      announcedWait = false;
      sink?.attach?.(label, client);
      try {
        await follow1(client, stream!, label, address, follow);
      } finally {
        sink?.detach?.(label, client);
        await client.close();
      }
      return;
    }
  };

  /**
   * Prints one client's events until it closes for good or the watch stops. The client's stream
   * yields each run-state change right after the event that caused it: it is printed only if
   * that event passed the filters (it belongs to it); one found by `query-status` (after a
   * reconnect, or correcting a guess) is always printed. `--count` counts events only, and the
   * last one's state changes are still printed.
   */
  const follow1 = async (
    client: QmpClient,
    stream: WatchStream,
    label: string,
    address: string,
    follow: boolean,
  ): Promise<void> => {
    notice(label, {
      kind: "connected",
      address,
      qemu: versionText(client.greeting.version),
      state: client.runState,
    });
    // Which QEMU process answers: a restarted QEMU binds its socket anew (another file), or
    // greets with another version. Unknown over TCP with the same version.
    let peer = processMark(address, client.greeting.version);
    let lastEvent: string | undefined;
    /** Whether the last event was printed: the run-state changes it caused follow it. */
    let shown = false;
    /** `--count` was reached: only the last event's run-state changes are still printed. */
    let counted = false;
    try {
      for await (const item of stream) {
        if ("kind" in item) {
          if (item.from !== undefined && (item.cause === "query-status" ? !counted : shown)) {
            printState(label, {
              from: item.from,
              to: item.to,
              cause: item.cause,
              atMs: timestampMs(item.timestamp),
            });
          }
        } else if ("notice" in item) {
          if (counted) {
            stopper.stop();
            break;
          }
          if (item.notice === "gap") {
            const now = processMark(address, item.greeting.version);
            notice(label, {
              kind: "reconnected",
              qemu: versionText(item.greeting.version),
              sinceMs: item.since.getTime(),
              untilMs: item.until.getTime(),
              restarted: sameProcess(peer, now),
            });
            peer = now;
          } else {
            notice(label, { kind: "overflow", dropped: item.dropped });
          }
        } else {
          if (counted) {
            stopper.stop();
            break;
          }
          const event = item as QmpEventMessage;
          lastEvent = event.event;
          shown = !stopper.signal.aborted && filter(event);
          if (shown) {
            if (sink) sink.event(label, event, Date.now());
            else out(human ? human.event(label, event) : formatEventJson(label, event));
            printed++;
            counted = opts.count !== undefined && printed >= opts.count;
          }
        }
        if (counted && stream.backlog === 0) stopper.stop();
        if (stopper.signal.aborted) break;
      }
      if (!stopper.signal.aborted) {
        const reason = await client.closed;
        const text =
          lastEvent === "SHUTDOWN"
            ? "QEMU exited after SHUTDOWN"
            : reason && !follow
              ? describeError(reason)
              : undefined;
        notice(label, { kind: "disconnected", reason: text, reconnecting: false });
      }
    } catch (error) {
      if (!stopper.signal.aborted) throw error;
    }
  };

  const watches: Promise<void>[] = [];
  const watching = new Set<string>();
  const startWatches = (endpoints: Endpoint[], labels: Map<Endpoint, string>) => {
    human?.reserveLabels(labels.values());
    for (const e of endpoints) {
      if (watching.has(e.spec)) continue;
      watching.add(e.spec);
      watches.push(
        watch(e, labels.get(e) ?? e.spec, opts.follow === true).catch((error: unknown) => {
          failures++;
          io.stderr.write(`qmpkit: ${describeError(error)}\n`);
        }),
      );
    }
  };

  let demo: Awaited<ReturnType<typeof startDemo>> | undefined;
  let rescan: NodeJS.Timeout | undefined;
  try {
    if (specs.length === 0) {
      demo = await startDemo({ signal: stopper.signal });
      notice("demo", { kind: "started", address: demo.address, qemu: demo.version });
      const endpoint: Endpoint = { kind: "unix", path: demo.path, spec: demo.address };
      startWatches([endpoint], new Map([[endpoint, "demo"]]));
      // The demo drives its VM through a script; it starts once the watcher is connected.
      demo.run();
    } else {
      const endpoints = resolveTargets(specs, {
        allowEmptyGlobs: opts.follow === true,
        cwd: io.cwd,
      });
      if (endpoints.length === 0 && !opts.follow) throw new UsageError("no target to watch");
      // A glob that matches nothing yet is said, not silently waited on.
      for (const spec of specs) {
        if (
          spec.kind === "glob" &&
          resolveTargets([spec], { allowEmptyGlobs: true, cwd: io.cwd }).length === 0
        )
          notice(spec.pattern, {
            kind: "waiting",
            address: spec.pattern,
            error: "no socket matches it yet; new ones are picked up as they appear",
          });
      }
      startWatches(endpoints, labelEndpoints(endpoints));
      if (opts.follow && specs.some((s) => s.kind === "glob")) {
        rescan = setInterval(() => {
          const now = resolveTargets(specs, { allowEmptyGlobs: true, cwd: io.cwd });
          const fresh = now.filter((e) => !watching.has(e.spec));
          if (fresh.length > 0) startWatches(fresh, labelEndpoints(now));
        }, 1000);
      }
    }
    // Wait for every watch, including ones a rescan adds while we wait.
    for (let done = 0; done < watches.length || (rescan && !stopper.signal.aborted); ) {
      if (done < watches.length) {
        await watches[done];
        done++;
      } else {
        await sleep(200, stopper.signal);
      }
    }
  } finally {
    if (rescan) clearInterval(rescan);
    stopper.stop();
    io.signal.removeEventListener("abort", onAbort);
    await Promise.allSettled(watches);
    if (demo) await demo.close();
  }
  if (demo?.error) throw demo.error;
  return failures > 0 ? 1 : 0;
}

function why(reason: Error | undefined): string | undefined {
  return reason ? describeError(reason) : undefined;
}

function versionText(version: { qemu: { major: number; minor: number; micro: number } }): string {
  const { major, minor, micro } = version.qemu;
  return `${major}.${minor}.${micro}`;
}

/** What tells one QEMU process from the next behind an address (see `sameProcess`). */
interface ProcessMark {
  readonly version: string;
  /**
   * The unix socket file's identity, when the address is one: its inode and the time it was
   * made (a file system may give a new file the inode of a deleted one).
   */
  readonly socket?: string | undefined;
}

function processMark(
  address: string,
  version: { qemu: { major: number; minor: number; micro: number } },
): ProcessMark {
  let socket: string | undefined;
  if (address.startsWith("unix:")) {
    try {
      const st = statSync(address.slice(5), { bigint: true });
      socket = `${st.ino}@${st.ctimeNs}`;
    } catch {
      socket = undefined;
    }
  }
  return { version: versionText(version), socket };
}

/**
 * Whether a reconnection reached a new QEMU process: `true` when the version or the socket file
 * changed (QEMU creates its socket at start), `false` when the same socket answers again,
 * undefined when it cannot be told (TCP).
 */
function sameProcess(before: ProcessMark, after: ProcessMark): boolean | undefined {
  if (before.version !== after.version) return true;
  if (before.socket === undefined || after.socket === undefined) return undefined;
  return before.socket !== after.socket;
}
