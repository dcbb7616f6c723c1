/**
 * qmpkit: the QEMU Machine Protocol for TypeScript.
 * @module
 */
export * from "./base/index.js";
export { QmpClient } from "./client/index.js";
export {
  type CommandContext,
  type CommandHandler,
  type CommandOptions,
  isQmpReplyError,
  ManualClock,
  QmpReplyError,
  QmpServer,
  type QmpServerOptions,
  type ServerClock,
  type SessionInfo,
} from "./server/index.js";
export { SimulatedMachine, type SimulatedMachineOptions } from "./sim/index.js";
