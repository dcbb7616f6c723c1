/**
 * `qmpkit proxy TARGET --listen ADDR...`: share one QMP monitor among many clients (see
 * `proxy-core.ts` for the rules). Runs until interrupted; logs what happens on stderr.
 *
 * @module
 */
import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { QmpProxy } from "./proxy.js";
import { endpointAddress, labelEndpoints, parseTargetArg } from "./targets.js";
import { positiveInteger, UsageError } from "./usage-error.js";

const examples = `
Each client gets its own greeting and negotiation; commands reach QEMU round-robin across
clients, with their ids mapped (up to --max-in-flight sent ahead: QEMU runs them in order);
events go to every client. When QEMU offers OOB, so does the proxy: a client that enables it
may send exec-oob, which goes to QEMU at once, ahead of queued in-band commands. If QEMU goes
away, pending commands fail with a clear error, clients are disconnected, and the proxy
reconnects to QEMU when it is back.

Examples:
  $ qmpkit proxy unix:/run/vm1.qmp --listen unix:/run/vm1-shared.qmp
  $ qmpkit proxy tcp:127.0.0.1:4444 --listen tcp:127.0.0.1:5555 --listen unix:/tmp/vm.qmp
  $ qmpkit events /run/vm1-shared.qmp &    # several watchers and tools at once
  $ qmpkit exec /run/vm1-shared.qmp query-status
  $ qmpkit proxy vm1.qmp --listen unix:/run/vm1-shared.qmp --record vm1.db   # every frame

--record FILE journals every frame, both directions, with QEMU and with each client (one
session per connection, a monotonic time per frame), secrets redacted, in the SQLite journal
'qmpkit record' and 'qmpkit history' use.`;

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Resolves a single-endpoint target argument (no globs: a proxy has one upstream). */
export function singleTarget(text: string): string {
  const spec = parseTargetArg(text);
  if (spec.kind === "glob") throw new UsageError(`'${text}' is a pattern: give one socket`);
  return endpointAddress(spec.endpoint);
}

export function registerProxyCommand(program: Command, ctx: CommandContext): void {
  program
    .command("proxy")
    .description("share one QMP monitor among many clients")
    .argument("<target>", "the QMP server to share (unix:PATH, tcp:HOST:PORT or a socket path)")
    .requiredOption(
      "-l, --listen <address>",
      "where clients connect (unix:PATH or tcp:HOST:PORT); repeatable",
      collect,
    )
    .option("-q, --quiet", "do not log connections on stderr")
    .option(
      "--max-in-flight <n>",
      "commands sent to QEMU before their replies come back (1: one at a time)",
      positiveInteger("--max-in-flight"),
      8,
    )
    .option("--record <file>", "journal every frame, both directions (SQLite)")
    .addHelpText("after", examples)
    .action(
      async (
        target: string,
        opts: { listen: string[]; quiet?: boolean; maxInFlight: number; record?: string },
      ) => {
        const upstream = singleTarget(target);
        const listenOn = opts.listen.map(singleTarget);
        const io = ctx.io;
        const log = opts.quiet
          ? undefined
          : (line: string) => io.stderr.write(`qmpkit proxy: ${line}\n`);
        const recording =
          opts.record === undefined
            ? undefined
            : await openRecording(opts.record, target, upstream);
        const proxy = await QmpProxy.start({
          upstream,
          listen: listenOn,
          log,
          signal: io.signal,
          maxInFlight: opts.maxInFlight,
          tap: recording?.recorder,
        }).catch((error: unknown) => {
          recording?.close();
          throw error;
        });
        log?.(`sharing ${upstream} on ${proxy.addresses.join(", ")}`);
        try {
          await new Promise<void>((resolve) => {
            if (io.signal.aborted) resolve();
            io.signal.addEventListener("abort", () => resolve(), { once: true });
          });
        } finally {
          await proxy.close();
          recording?.close();
        }
      },
    );
}

/** The journal of `--record` and its session recorder (the journal layer loads only then). */
async function openRecording(file: string, target: string, upstream: string) {
  const { Journal, SessionRecorder } = await import("../journal/index.js");
  const spec = parseTargetArg(target);
  const name =
    spec.kind === "glob" ? target : (labelEndpoints([spec.endpoint]).get(spec.endpoint) ?? target);
  const journal = Journal.open(file);
  const recorder = new SessionRecorder(journal, { name, address: upstream });
  return {
    recorder,
    close() {
      recorder.closeAll();
      journal.close();
    },
  };
}
