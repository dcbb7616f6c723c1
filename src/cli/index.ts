/**
 * The command line (`qmpkit/cli`): `main(argv)` runs `qmpkit` in process, and the pieces it is
 * made of are usable on their own — the multiplexing proxy, the drop-in QEMU entry point, the
 * demo machine, target and `key=value` parsing, event filters and formatting.
 *
 * @module
 */
export type { CommandContext } from "./context.js";
export { DEMO_SCRIPT, type Demo, type DemoStep, startDemo } from "./demo.js";
export {
  createEventFilter,
  type EventFilterOptions,
  flattenData,
  formatEventJson,
  formatStateJson,
  formatWatchJson,
  HumanEventFormatter,
  type HumanFormatOptions,
  type QmpEventMessage,
  type RunStateLine,
  type WatchNotice,
  watchNoticeText,
} from "./event-format.js";
export { PeerSchema } from "./introspection.js";
export { type CliIo, type CliOutput, processIo, wantColor } from "./io.js";
export { type ArgumentTyping, parseKeyValues } from "./key-value.js";
export { createProgram, main } from "./main.js";
export { QmpProxy, type QmpProxyOptions } from "./proxy.js";
export {
  DEFAULT_MAX_IN_FLIGHT,
  PROXY_ID_PREFIX,
  type ProxyClientPort,
  ProxyCore,
  type ProxyCoreOptions,
  type UpstreamSession,
} from "./proxy-core.js";
export { DROP_IN_OPTIONS, IGNORED_OPTIONS, resolveDropIn } from "./qemu-dropin.js";
export { qemuMain, runSimDropIn } from "./qemu-main.js";
export {
  type Endpoint,
  labelEndpoints,
  parseTargetArg,
  resolveTargets,
  type TargetSpec,
} from "./targets.js";
export { isUsageError, UsageError } from "./usage-error.js";
