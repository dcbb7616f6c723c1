/**
 * The fleet layer (`qmpkit/fleet`): every host's VM events on NATS JetStream, with nothing lost
 * (docs/fleet.md). `FleetAgent` publishes one host's VMs from an outbox in its journal; the
 * subject scheme, the CloudEvents envelope and the NATS connection options are shared with the
 * fleet tools (`qmpkit fleet events|status|exec`). Kept out of the root `qmpkit` import: it loads
 * the NATS client and the journal's native SQLite.
 *
 * @example
 * import { Journal } from "qmpkit/journal";
 * import { FleetAgent } from "qmpkit/fleet";
 * const journal = Journal.open("agent.db");
 * const agent = new FleetAgent({ host: "web1", nats: { servers: "nats://127.0.0.1:4222" }, journal });
 * agent.start();
 * agent.notice("vm1", { kind: "connected", address: "unix:/run/vm1.qmp", qemu: "7.2.22" });
 *
 * @module
 */
export {
  DEFAULT_BUCKET,
  DEFAULT_STREAM,
  type FleetVmEntry,
  FleetAgent,
  type FleetAgentObserver,
  type FleetAgentOptions,
  type FleetAgentStats,
  type FleetVmStats,
} from "./agent.js";
export {
  connectNats,
  describeNatsError,
  type FleetConnectOptions,
  FleetError,
  natsConnectionOptions,
  parseServers,
  redactUrl,
  serversText,
} from "./connection.js";
export {
  decodeEnvelope,
  EnvelopeError,
  type EnvelopeInput,
  encodeEnvelope,
  FLEET_TYPES,
  type FleetMessage,
  type FleetNotice,
  type FleetQmpEvent,
  type FleetStateChange,
  parseRfc3339,
  rfc3339,
  rfc3339Ms,
} from "./envelope.js";
export {
  type CommandPolicy,
  commandPolicy,
  DEFAULT_ALLOW,
  type ExecContext,
  type ExecReply,
  execReply,
} from "./exec.js";
export { OutboxPublisher, type OutboxPublisherOptions } from "./publisher.js";
export {
  DEFAULT_SUBJECT_PREFIX,
  decodeToken,
  encodeToken,
  execSubjects,
  type FleetMessageKind,
  fleetFilterSubject,
  parseSubject,
  streamSubjects,
  type VmSubjects,
  vmSubjects,
} from "./subjects.js";
