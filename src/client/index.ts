/**
 * The client layer: `QmpClient` and what it hands out (event streams, run-state tracking, typed
 * greeting, events and commands).
 *
 * @module
 */
export {
  type ExecuteAndWaitOptions,
  type ExecuteAndWaitResult,
  QmpClient,
  type QmpTarget,
} from "./client.js";
export {
  AbortError,
  EventOverflowError,
  type ExecuteAndWaitDetails,
  isAbortError,
  isEventOverflowError,
  WaitClosedError,
} from "./errors.js";
export {
  DEFAULT_MAX_QUEUE,
  DEFAULT_OVERFLOW,
  EventStream,
  type EventStreamNotice,
  type EventStreamOptions,
  type GapNotice,
  type OverflowNotice,
  type OverflowPolicy,
  type RunStateItem,
} from "./event-stream.js";
export {
  createEventFilter,
  EventFilterError,
  type EventFilterOptions,
  type FilterableEvent,
  scalarText,
} from "./event-filter.js";
export { DEFAULT_HISTORY_SIZE } from "./event-hub.js";
export { parseGreeting } from "./greeting.js";
export {
  type ClientNotice,
  type ClientState,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_RECONNECT,
  DEFAULT_STATUS_QUERY_TIMEOUT_MS,
  type ExecuteOptions,
  ID_PREFIX,
  type QmpClientOptions,
  type QmpValidators,
  type ReconnectOptions,
  type ReconnectPolicy,
  type TrafficDirection,
  type ValidationOptions,
} from "./options.js";
export {
  isRunState,
  RUN_STATES,
  type RunState,
  type RunStateChange,
  stepRunState,
  type TrackerState,
  type TrackerStep,
  type WaitOptions,
} from "./run-state-tracker.js";
export { bundledValidators, validatorsFromIntrospection } from "./validators.js";
export type {
  CommandArgs,
  CommandName,
  CommandParams,
  CommandReturn,
  EventData,
  EventName,
  KnownCommandName,
  KnownEventName,
  QemuVersionTriple,
  QmpEvent,
  QmpEventOf,
  QmpGreeting,
  QmpTimestamp,
} from "./types.js";
