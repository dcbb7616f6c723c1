/**
 * The dashboard's HTTP side (Hono): the page, a JSON API over the journal, one server-sent-event
 * stream for every VM, actions, and `/metrics`.
 *
 * | route | what |
 * |---|---|
 * | `GET /`, `/assets/app.js`, `/assets/app.css` | the page (`page/`, see `assets.ts`) |
 * | `GET /api/vms` | `{host, lastId, readOnly, actions, vms}`: the VM table as of `lastId` |
 * | `GET /api/vms/:host/:name` | one VM's row and run-state intervals |
 * | `GET /api/entries?vm&only&except&where&kinds&upTo&beforeId&limit` | journal entries, newest first, with `events`' filters |
 * | `GET /api/timeline?sinceMs&upTo&vm` | run-state intervals per VM (lane `HOST/NAME`) |
 * | `GET /api/stream?after=N` | SSE: `entries` messages (a JSON array of entries), `id` = the journal sequence number of the last; a reconnecting page sends `Last-Event-ID` and gets what followed, from the journal |
 * | `POST /api/vms/:host/:name/actions/:action` | stop, cont, system_reset, system_powerdown, quit |
 * | `GET /metrics` | Prometheus text |
 *
 * Security (docs/dashboard.md):
 * - `allowedHosts`: requests whose `Host` is not one of the dashboard's own names are refused,
 *   so that a web page cannot reach a loopback dashboard by rebinding its DNS name.
 * - `token`: every request carries it (`Authorization: Bearer T`, or the `qmpkit_dashboard`
 *   cookie, HttpOnly and SameSite=Strict, that `GET /?token=T` sets before redirecting to `/`).
 * - A POST must carry `X-Qmpkit-Request: action` (a custom header: a cross-site page cannot send
 *   it without a CORS preflight, which is never granted), and its `Origin` and `Sec-Fetch-Site`,
 *   when the browser sends them, must be this origin's.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { Context, Next } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { streamSSE } from "hono/streaming";
import { EventFilterError } from "../client/index.js";
import {
  type JournalEntry,
  type RunStateInterval,
  TimelineBuilder,
  timelineInput,
} from "../journal/index.js";
import type { PageAssets } from "./assets.js";
import { createEntryFilter, globRegExp } from "./entry-filter.js";
import type { LiveFeed } from "./live-feed.js";
import { metricsRoute, type QmpkitMetrics } from "./metrics.js";
import { ActionError, isVmAction, VM_ACTIONS, type VmActions } from "./source.js";
import { vmKey } from "./vm-table.js";

/** Options of {@link createDashboardApp}. */
export interface DashboardAppOptions {
  readonly feed: LiveFeed;
  readonly assets: PageAssets;
  readonly metrics?: QmpkitMetrics | undefined;
  /** How actions reach VMs (none: refused). */
  readonly actions?: VmActions | undefined;
  /** Refuse every action (`--read-only`). */
  readonly readOnly?: boolean | undefined;
  /** The token every request must carry (none: no token asked, for loopback only). */
  readonly token?: string | undefined;
  /** `Host` header values accepted, lower case (default: any); read on each request. */
  readonly allowedHosts?: ReadonlySet<string> | undefined;
  /** A comment line on idle streams this often (ms). Default 15 000. */
  readonly heartbeatMs?: number | undefined;
  /** A stream whose client lags this many batches behind is ended (it resumes from the journal). Default 10 000. */
  readonly maxQueuedBatches?: number | undefined;
}

/** The cookie that carries the token for the page's own requests. */
export const TOKEN_COOKIE = "qmpkit_dashboard";
/** The header every state-changing request carries. */
export const REQUEST_HEADER = "x-qmpkit-request";

function sameSecret(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}

function intParam(c: Context, name: string): number | undefined {
  const text = c.req.query(name);
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new BadRequest(`invalid ${name} '${text}': expected a whole number`);
  return n;
}

class BadRequest extends Error {}

function listParam(c: Context, name: string): string[] | undefined {
  const values = (c.req.queries(name) ?? []).flatMap((v) => v.split(",")).filter((v) => v !== "");
  return values.length === 0 ? undefined : values;
}

/** The Hono app of the dashboard. */
export function createDashboardApp(options: DashboardAppOptions): Hono {
  const { feed, assets } = options;
  const journal = feed.journal;
  const app = new Hono();

  app.onError((error, c) => {
    if (error instanceof BadRequest || error instanceof EventFilterError)
      return c.json({ error: error.message }, 400);
    return c.json({ error: `internal error: ${error.message}` }, 500);
  });

  // DNS rebinding: only the dashboard's own names.
  const allowed = options.allowedHosts;
  if (allowed !== undefined) {
    app.use("*", async (c, next) => {
      const host = (c.req.header("host") ?? "").toLowerCase();
      if (!allowed.has(host)) return c.json({ error: `refused: unexpected Host '${host}'` }, 403);
      return next();
    });
  }

  if (options.token !== undefined) {
    const token = options.token;
    app.use("*", async (c: Context, next: Next) => {
      const query = c.req.query("token");
      if (c.req.method === "GET" && c.req.path === "/" && query !== undefined) {
        if (!sameSecret(query, token)) return c.text("qmpkit dashboard: wrong token\n", 401);
        setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: "Strict", path: "/" });
        // The token leaves the address bar (and the history) at once.
        return c.redirect("/", 303);
      }
      const bearer = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "")?.[1];
      if (sameSecret(bearer, token) || sameSecret(getCookie(c, TOKEN_COOKIE), token)) return next();
      return c.text(
        "qmpkit dashboard: a token is needed: open /?token=TOKEN, or send Authorization: Bearer TOKEN\n",
        401,
      );
    });
  }

  // Cross-site requests: a POST needs the custom header and a same-origin browser context.
  app.use("*", async (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    if (c.req.method !== "POST") return c.json({ error: `${c.req.method} is not allowed` }, 405);
    const site = c.req.header("sec-fetch-site");
    const origin = c.req.header("origin");
    const host = c.req.header("host");
    if (c.req.header(REQUEST_HEADER) !== "action")
      return c.json({ error: `refused: a POST needs the header X-Qmpkit-Request: action` }, 403);
    if (site !== undefined && site !== "same-origin" && site !== "none")
      return c.json({ error: `refused: cross-site request (Sec-Fetch-Site: ${site})` }, 403);
    if (origin !== undefined && origin !== `http://${host}` && origin !== `https://${host}`)
      return c.json({ error: `refused: cross-origin request from ${origin}` }, 403);
    return next();
  });

  const asset = (name: string) => (c: Context) => {
    const a = assets.get(name);
    if (a === undefined) return c.notFound();
    return c.body(a.body as Uint8Array<ArrayBuffer>, 200, {
      "content-type": a.type,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
      ...(name === "index.html"
        ? {
            "content-security-policy":
              "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
          }
        : {}),
    });
  };
  app.get("/", asset("index.html"));
  app.get("/assets/app.js", asset("app.js"));
  app.get("/assets/app.css", asset("app.css"));

  const allowedActions = options.readOnly || options.actions === undefined ? [] : [...VM_ACTIONS];

  app.get("/api/vms", (c) =>
    c.json({
      lastId: feed.lastId,
      readOnly: options.readOnly === true,
      actions: allowedActions,
      vms: feed.table.list(),
    }),
  );

  app.get("/api/vms/:host/:name", async (c) => {
    const key = vmKey(c.req.param("host"), c.req.param("name"));
    const row = feed.table.rows.get(key);
    if (row === undefined) return c.json({ error: `no VM ${key}` }, 404);
    const intervals = await timeline({ upTo: feed.lastId, vm: key });
    return c.json({ lastId: feed.lastId, vm: row, intervals });
  });

  /** Run-state intervals per lane `HOST/NAME` from the journal's history up to `upTo`. */
  const timeline = async (q: {
    upTo: number;
    sinceMs?: number | undefined;
    vm?: string | undefined;
  }) => {
    const builder = new TimelineBuilder();
    const vm = q.vm === undefined ? undefined : globRegExp(q.vm);
    for await (const e of journal.entries({ kinds: ["state", "watch"], beforeId: q.upTo + 1 })) {
      const lane = vmKey(e.host, e.vm);
      if (vm !== undefined && !vm.test(lane)) continue;
      const input = timelineInput(e, lane);
      if (input !== undefined) builder.add(input);
    }
    const out: RunStateInterval[] = [];
    for (const intervals of builder.result().values())
      for (const i of intervals)
        if (q.sinceMs === undefined || i.untilMs === undefined || i.untilMs >= q.sinceMs)
          out.push(i);
    return out;
  };

  app.get("/api/timeline", async (c) => {
    const upTo = Math.min(intParam(c, "upTo") ?? feed.lastId, feed.lastId);
    return c.json({
      upTo,
      intervals: await timeline({ upTo, sinceMs: intParam(c, "sinceMs"), vm: c.req.query("vm") }),
    });
  });

  app.get("/api/entries", async (c) => {
    const limit = Math.min(intParam(c, "limit") ?? 200, 5000);
    const upTo = intParam(c, "upTo") ?? feed.lastId;
    const beforeId = Math.min(intParam(c, "beforeId") ?? upTo + 1, upTo + 1);
    const kinds = listParam(c, "kinds") as ("event" | "state" | "watch")[] | undefined;
    for (const k of kinds ?? [])
      if (k !== "event" && k !== "state" && k !== "watch")
        throw new BadRequest(`invalid kinds '${k}': expected event, state or watch`);
    const filter = createEntryFilter({
      vm: c.req.query("vm"),
      only: listParam(c, "only"),
      except: listParam(c, "except"),
      where: c.req.queries("where"),
      kinds,
    });
    const entries: JournalEntry[] = [];
    for await (const e of journal.entries({ order: "desc", beforeId, kinds })) {
      if (!filter(e)) continue;
      entries.push(e);
      if (entries.length >= limit) break;
    }
    return c.json({ upTo, entries });
  });

  app.get("/api/stream", (c) => {
    const header = c.req.header("last-event-id");
    const resumed = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
    const after = resumed ?? intParam(c, "after") ?? feed.lastId;
    return streamSSE(c, async (stream) => {
      let sent = after;
      const queue: (readonly JournalEntry[])[] = [];
      let wake: (() => void) | undefined;
      let overflow = false;
      const limit = options.maxQueuedBatches ?? 10_000;
      // Listen first, then read the journal: what commits meanwhile is queued, and dropped
      // below if the journal read already had it.
      const stop = feed.subscribe((entries) => {
        if (queue.length >= limit) overflow = true;
        else queue.push(entries);
        wake?.();
      });
      stream.onAbort(() => {
        stop();
        wake?.();
      });
      const send = async (batch: readonly JournalEntry[]) => {
        const fresh = batch.filter((e) => e.id > sent);
        if (fresh.length === 0) return;
        sent = fresh[fresh.length - 1]!.id;
        await stream.writeSSE({ event: "entries", id: String(sent), data: JSON.stringify(fresh) });
      };
      try {
        await stream.writeSSE({
          event: "hello",
          data: JSON.stringify({ after, lastId: feed.lastId }),
          retry: 1000,
        });
        let backlog: JournalEntry[] = [];
        for await (const e of journal.entries({ afterId: after, beforeId: feed.lastId + 1 })) {
          backlog.push(e);
          if (backlog.length >= 1000) {
            await send(backlog);
            backlog = [];
          }
        }
        await send(backlog);
        const heartbeat = options.heartbeatMs ?? 15_000;
        while (!stream.aborted) {
          const batch = queue.shift();
          if (batch !== undefined) {
            await send(batch);
            continue;
          }
          // A client too slow to keep up is let go: it comes back with Last-Event-ID and
          // catches up from the journal.
          if (overflow) break;
          const idle = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(true), heartbeat);
            wake = () => {
              clearTimeout(timer);
              resolve(false);
            };
          });
          wake = undefined;
          if (idle && !stream.aborted) await stream.write(": idle\n\n");
        }
      } finally {
        stop();
      }
    });
  });

  app.post("/api/vms/:host/:name/actions/:action", async (c) => {
    const vm = { host: c.req.param("host"), name: c.req.param("name") };
    const action = c.req.param("action");
    if (!isVmAction(action))
      return c.json(
        { error: `unknown action '${action}': expected one of ${VM_ACTIONS.join(", ")}` },
        404,
      );
    if (options.readOnly)
      return c.json(
        {
          error: `${action} on ${vm.host}/${vm.name} refused: the dashboard is read-only (--read-only)`,
        },
        403,
      );
    if (options.actions === undefined)
      return c.json(
        {
          error: `${action} on ${vm.host}/${vm.name} refused: this dashboard has no way to act on VMs`,
        },
        403,
      );
    try {
      const result = await options.actions.execute(vm, action);
      return c.json({ ok: true, action, vm: vmKey(vm.host, vm.name), result: result ?? {} });
    } catch (error) {
      if (error instanceof ActionError) return c.json({ error: error.message }, error.status);
      throw error;
    }
  });

  if (options.metrics !== undefined) app.route("/", metricsRoute(options.metrics));
  return app;
}
