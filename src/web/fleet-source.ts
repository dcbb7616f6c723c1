/**
 * The fleet as a dashboard source: every host's VMs from the NATS JetStream stream the agents
 * publish to (`QMP`, subjects `qmp.HOST.VM.event.NAME|state|watch`, CloudEvents envelopes:
 * docs/fleet.md), written into the dashboard's journal under their hosts, so that the page,
 * its timelines and /metrics show them as they show local VMs.
 *
 * - An ordered consumer reads the stream from the message after the last one journalled: the
 *   stream sequence is a journal mark committed with the rows (`Journal.mark`), so a dashboard
 *   restarted on the same journal goes on where it stopped, with nothing twice and nothing
 *   missed (while the stream keeps the messages). A new journal starts at the stream's start.
 * - The journal should be opened with `restartGaps: false`: a resumed stream misses nothing.
 * - A message that is not an envelope is skipped and said (`onWarning`).
 * - Actions: the agents own the VMs' monitors and run commands on request; until the fleet's
 *   command path is part of this build, actions on fleet VMs are refused with that reason.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  DEFAULT_STREAM,
  DEFAULT_SUBJECT_PREFIX,
  decodeEnvelope,
  describeNatsError,
  type FleetConnectOptions,
  connectNats,
  parseSubject,
  serversText,
} from "../fleet/index.js";
import type { Journal, JournalVm } from "../journal/index.js";
import { ActionError, type VmActions, type VmSource } from "./source.js";

/** Options of {@link FleetSource}. */
export interface FleetSourceOptions {
  readonly nats: FleetConnectOptions;
  /** The dashboard's journal (a writer). */
  readonly journal: Journal;
  /** Default `QMP`. */
  readonly stream?: string | undefined;
  /** Default `qmp`. */
  readonly subjectPrefix?: string | undefined;
  /** Lines for people (connected, skipped messages, lost connection). */
  readonly onWarning?: ((line: string) => void) | undefined;
}

/** Actions on fleet VMs: refused, with the reason, until the fleet's command path is here. */
const fleetActions: VmActions = {
  execute: async (vm, action) => {
    throw new ActionError(
      `${action} on ${vm.host}/${vm.name} refused: actions on fleet VMs go through their agent, which this dashboard cannot ask yet`,
      403,
    );
  },
};

/** Reads the fleet's stream into the journal. */
export class FleetSource implements VmSource {
  readonly description: string;
  readonly actions: VmActions = fleetActions;
  readonly #options: FleetSourceOptions;
  readonly #vms = new Map<string, JournalVm>();
  /** Messages journalled since start. */
  received = 0;

  constructor(options: FleetSourceOptions) {
    this.#options = options;
    this.description = `${serversText(options.nats.servers)} stream ${options.stream ?? DEFAULT_STREAM}`;
  }

  /** The journal mark holding the last stream sequence journalled. */
  get markKey(): string {
    return `fleet:${this.#options.stream ?? DEFAULT_STREAM}:sequence`;
  }

  #vm(host: string, name: string): JournalVm {
    const key = `${host}/${name}`;
    let vm = this.#vms.get(key);
    if (vm === undefined) {
      vm = this.#options.journal.vm({ host, name, address: key });
      this.#vms.set(key, vm);
    }
    return vm;
  }

  async run(signal: AbortSignal): Promise<number> {
    const { journal, onWarning } = this.#options;
    const stream = this.#options.stream ?? DEFAULT_STREAM;
    let nc: NatsConnection;
    try {
      nc = await connectNats({ name: "qmpkit dashboard", ...this.#options.nats });
    } catch (error) {
      onWarning?.((error as Error).message);
      return 1;
    }
    const stop = () => void nc.close().catch(() => {});
    signal.addEventListener("abort", stop, { once: true });
    try {
      const { jetstream } = await import("@nats-io/jetstream");
      const after = Number(journal.markOf(this.markKey) ?? "0");
      // The whole stream, unfiltered: nats-server 2.9 (Debian 12's) takes no `filter_subjects`,
      // and the stream holds only the fleet's subjects; anything else is skipped below.
      const consumer = await jetstream(nc).consumers.get(
        stream,
        (after > 0
          ? { deliver_policy: "by_start_sequence", opt_start_seq: after + 1 }
          : {}) as Parameters<ReturnType<typeof jetstream>["consumers"]["get"]>[1],
      );
      onWarning?.(
        `reading the stream ${stream} from ${after > 0 ? `sequence ${after + 1}` : "its start"}`,
      );
      const messages = await consumer.consume();
      signal.addEventListener("abort", () => void messages.close(), { once: true });
      for await (const m of messages) {
        let message: ReturnType<typeof decodeEnvelope>;
        try {
          const prefix = this.#options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
          if (parseSubject(m.subject, prefix) === undefined) throw new Error("not a fleet subject");
          message = decodeEnvelope(m.string());
        } catch (error) {
          onWarning?.(
            `skipped stream message ${m.seq} (${m.subject}): ${(error as Error).message}`,
          );
          journal.mark(this.markKey, String(m.seq));
          continue;
        }
        const vm = this.#vm(message.host, message.vm);
        if (message.kind === "event") journal.event(vm, message.event);
        else if (message.kind === "state") journal.state(vm, message.change);
        else journal.notice(vm, message.notice, message.timeMs);
        journal.mark(this.markKey, String(m.seq));
        this.received++;
      }
      return 0;
    } catch (error) {
      if (signal.aborted) return 0;
      onWarning?.(`reading the stream ${stream}: ${describeNatsError(error)}`);
      return 1;
    } finally {
      signal.removeEventListener("abort", stop);
      journal.flush();
      await nc.close().catch(() => {});
    }
  }
}
