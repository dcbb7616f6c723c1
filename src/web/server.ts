/**
 * `startDashboard`: the dashboard's server on an address, over a journal, fed by a source.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";
import type { Journal } from "../journal/index.js";
import { createDashboardApp } from "./app.js";
import { loadPageAssets } from "./assets.js";
import { formatListenAddress, isLoopback, parseListenAddress } from "./listen.js";
import { LiveFeed } from "./live-feed.js";
import { createMetrics, listenHttp, type QmpkitMetrics } from "./metrics.js";
import type { VmSource } from "./source.js";

/** The default address: loopback only. */
export const DEFAULT_LISTEN = "127.0.0.1:8470";

/** A dashboard that cannot start as asked (the reason is in the message). */
export class DashboardError extends QmpError {
  override name = "DashboardError";
}

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** The journal everything is read from (and, for a writer, what the source feeds). */
  readonly journal: Journal;
  /** What feeds the journal (none: the journal's own history and whatever another process commits). */
  readonly source?: VmSource | undefined;
  /** `HOST:PORT` (default `127.0.0.1:8470`); anything but loopback needs `token`. */
  readonly listen?: string | undefined;
  readonly token?: string | undefined;
  readonly readOnly?: boolean | undefined;
  /** Default: new collectors, with the process's own metrics. */
  readonly metrics?: QmpkitMetrics | undefined;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://HOST:PORT` (without the token). */
  readonly url: string;
  readonly feed: LiveFeed;
  readonly metrics: QmpkitMetrics;
  /** The source's run: resolves with its exit status when it ends (after `close`). */
  readonly done: Promise<number>;
  /** Stops the source and the server (the journal stays open: its owner closes it). */
  close(): Promise<void>;
}

/**
 * Starts the dashboard: reads the journal's history, starts the source, listens.
 *
 * @throws DashboardError for an address that is not loopback without a token, or a token that
 *   is too short; an `Error` naming the address when it cannot listen.
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const listen = parseListenAddress(options.listen ?? DEFAULT_LISTEN);
  const token = options.token;
  if (token !== undefined && token.length < 8)
    throw new DashboardError("the dashboard's token is too short: use at least 8 characters");
  if (!isLoopback(listen.host) && token === undefined)
    throw new DashboardError(
      `listening on ${formatListenAddress(listen)} (not loopback) needs a token: --token T or QMPKIT_DASHBOARD_TOKEN`,
    );
  const metrics = options.metrics ?? createMetrics({ processMetrics: true });
  const feed = await LiveFeed.open(options.journal, { metrics });
  const assets = await loadPageAssets();
  // On loopback, only the names of this machine reach it (no DNS rebinding); elsewhere the
  // token does the work.
  const allowedHosts = isLoopback(listen.host) ? new Set<string>() : undefined;
  const app = createDashboardApp({
    feed,
    assets,
    metrics,
    actions: options.source?.actions,
    readOnly: options.readOnly,
    token,
    allowedHosts,
  });
  let server: Awaited<ReturnType<typeof listenHttp>>;
  try {
    server = await listenHttp(app.fetch, listen);
  } catch (error) {
    feed.close();
    throw error;
  }
  for (const name of [
    "127.0.0.1",
    "localhost",
    "[::1]",
    listen.host.includes(":") ? `[${listen.host}]` : listen.host,
  ])
    allowedHosts?.add(`${name}:${server.port}`.toLowerCase());
  const controller = new AbortController();
  const done = options.source ? options.source.run(controller.signal) : Promise.resolve(0);
  return {
    url: server.url,
    feed,
    metrics,
    done,
    close: async () => {
      controller.abort();
      await done.catch(() => undefined);
      feed.close();
      await server.close();
    },
  };
}
