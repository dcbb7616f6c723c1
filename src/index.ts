/**
 * qmpkit: the QEMU Machine Protocol for TypeScript.
 * @module
 */
export * from "./base/index.js";
export { QmpClient } from "./client/index.js";
export {
  commandValidators,
  eventValidators,
  qemuSchema,
  type QmpCommandMap,
  type QmpEvent,
  type QmpEventMap,
  type QmpEventMessage,
  type QmpTimestamp,
} from "./generated/index.js";
export {
  type CommandContext,
  type CommandHandler,
  type CommandOptions,
  EventBus,
  type EventBusOptions,
  isQmpReplyError,
  ManualClock,
  QmpReplyError,
  QmpServer,
  type QmpServerOptions,
  type ServerClock,
  type SessionInfo,
  throttleTableFor,
} from "./server/index.js";
export { SimulatedMachine, type SimulatedMachineOptions } from "./sim/index.js";
