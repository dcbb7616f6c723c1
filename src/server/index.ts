/**
 * The server layer: {@link QmpServer}, a QMP server that answers as QEMU does, byte for byte,
 * with the pieces it is built from (request checking, QEMU's argument error texts, the event bus
 * that builds, stamps and throttles an event once for every monitor, an injectable clock).
 *
 * @module
 */
export {
  checkCapabilitiesArguments,
  checkCapabilitiesOffered,
  QMP_CAPABILITY_VALUES,
} from "./capabilities.js";
export type { QmpCapability } from "./capabilities.js";
export {
  type ClockTimer,
  ManualClock,
  type ManualClockOptions,
  type ServerClock,
  systemClock,
} from "./clock.js";
export {
  BuiltEvent,
  EventBus,
  type EventBusOptions,
  type EventSink,
  monitorText,
} from "./event-bus.js";
export { isQmpReplyError, QmpReplyError } from "./reply-error.js";
export {
  type CheckedRequest,
  checkRequest,
  describeArgumentIssue,
  isOobRequest,
  type KeyOrder,
  requestId,
  selectArgumentIssue,
} from "./request.js";
export { firstUnvisitedKey, gHashTableOrder, gStrHash } from "./glib-hash.js";
export {
  type CommandContext,
  type CommandHandler,
  type CommandOptions,
  DEFAULT_VERSION,
  type ListenOptions,
  type MonitorOptions,
  noArguments,
  type QmpGreetingOptions,
  type QmpMonitor,
  QmpServer,
  type QmpServerOptions,
  type QmpVersionInfo,
} from "./server.js";
export { QMP_REQUEST_QUEUE_MAX, type SessionInfo, type SessionState } from "./session.js";
export {
  EventThrottle,
  type EventThrottleOptions,
  type QemuVersionTriple,
  THROTTLE_PERIOD_MS,
  THROTTLE_TABLE_7_2,
  THROTTLE_TABLE_10_2,
  type ThrottleRule,
  type ThrottleTable,
  throttleTableFor,
} from "./throttle.js";
