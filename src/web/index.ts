/**
 * The web layer (`qmpkit/web`): the live dashboard (`qmpkit dashboard`) and Prometheus metrics.
 * Everything the page shows comes from the journal: the VM table, the run-state timelines and
 * the event log from its history, the live stream from its commits (SSE ids are its sequence
 * numbers). What feeds the journal is a {@link VmSource}: the local watch (the CLI's), or the
 * fleet. Hono, prom-client and (at build time) esbuild stay in this layer.
 *
 * @example
 * import { Journal } from "qmpkit/journal";
 * import { startDashboard } from "qmpkit/web";
 * const journal = Journal.open("vms.db");
 * const dashboard = await startDashboard({ journal, listen: "127.0.0.1:8470" });
 * console.log(dashboard.url);
 *
 * @module
 */
export {
  createDashboardApp,
  type DashboardAppOptions,
  REQUEST_HEADER,
  TOKEN_COOKIE,
} from "./app.js";
export { bundlePage, loadPageAssets, PAGE_DIR, type PageAsset, type PageAssets } from "./assets.js";
export { FleetSource, type FleetSourceOptions } from "./fleet-source.js";
export { createEntryFilter, type EntryFilterOptions, globRegExp } from "./entry-filter.js";
export {
  formatListenAddress,
  isLoopback,
  type ListenAddress,
  ListenAddressError,
  parseListenAddress,
} from "./listen.js";
export { type FeedListener, LiveFeed, type LiveFeedOptions } from "./live-feed.js";
export {
  createMetrics,
  type HttpServerHandle,
  listenHttp,
  type MetricsOptions,
  metricsRoute,
  QmpkitMetrics,
  type ServeMetricsOptions,
  serveMetrics,
} from "./metrics.js";
export {
  type Dashboard,
  DashboardError,
  type DashboardOptions,
  DEFAULT_LISTEN,
  startDashboard,
} from "./server.js";
export {
  ActionError,
  isVmAction,
  LocalActions,
  VM_ACTIONS,
  type VmAction,
  type VmActions,
  type VmRef,
  type VmSource,
} from "./source.js";
export {
  type ConnectionState,
  eventTimeMs,
  type TableEntry,
  VmTable,
  type VmRow,
  vmKey,
} from "./vm-table.js";
