/**
 * The journal layer (`qmpkit/journal`): an embedded SQLite database (better-sqlite3) of VM events,
 * run-state changes, watch notices and recorded sessions; recorders that feed it from a
 * `QmpClient` or a proxy; queries as async iterators. Kept out of the root `qmpkit` import so
 * that the client stays free of native dependencies.
 *
 * @example
 * import { Journal } from "qmpkit/journal";
 * const journal = Journal.open("vms.db", { readonly: true });
 * for await (const e of journal.entries({ vm: "vm1", kinds: ["event"] })) console.log(e);
 *
 * @module
 */
export {
  type CommitListener,
  Journal,
  type JournalEntry,
  JournalError,
  type JournalEvent,
  type JournalFrame,
  type JournalNotice,
  type JournalOptions,
  type JournalQuery,
  type JournalStateChange,
  type JournalVm,
} from "./journal.js";
export {
  type ClientRecording,
  type FrameTap,
  type RecordClientOptions,
  recordClient,
  SessionRecorder,
  type SessionRecorderOptions,
} from "./recorder.js";
export {
  Outbox,
  type OutboxDrop,
  type OutboxKeyInfo,
  type OutboxMessage,
  type OutboxOptions,
} from "./outbox.js";
export { REDACTED, redactHmpLine, redactJson, redactJsonText } from "./redact.js";
export { MIGRATIONS, SCHEMA_VERSION } from "./schema.js";
export {
  type RunStateInterval,
  TimelineBuilder,
  type TimelineInput,
  timelineInput,
} from "./timeline.js";
export {
  buildReplayScript,
  canonicalJson,
  lineDiff,
  loadReplayScript,
  type RecordedFrame,
  ReplayError,
  type ReplayExchange,
  type ReplayMismatch,
  type ReplayMode,
  type ReplayOptions,
  type ReplayOutput,
  type ReplayScript,
  type ReplayServer,
  replaySession,
  replyWithId,
  sameJson,
  scriptFromJournal,
  scriptFromReplies,
} from "./replay.js";
