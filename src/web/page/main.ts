/**
 * The dashboard's page: the VM table (sortable, filterable), a run-state timeline per VM (uPlot,
 * lanes over time, zoom by dragging), the event log with `events`' filters, and a page per VM
 * with its recent events and its actions. Everything comes from the server's journal: a
 * snapshot as of a sequence number, then one server-sent-event stream from that number on (a
 * reconnecting stream sends `Last-Event-ID`; the server sends what followed, from the journal).
 *
 * The table, the timelines and the log's filter are the modules the server uses
 * (`../vm-table.ts`, `journal/timeline.ts`, `../entry-filter.ts`), bundled by esbuild.
 *
 * @module
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { type RunStateInterval, TimelineBuilder, timelineInput } from "../../journal/timeline.js";
import { createEntryFilter, type EntryFilterOptions } from "../entry-filter.js";
import { eventTimeMs, type TableEntry, VmTable, type VmRow, vmKey } from "../vm-table.js";

/** A journal entry as the server sends it (`JournalEntry` as JSON). */
type Entry = TableEntry & {
  readonly connection?: number;
  readonly event?: {
    readonly event: string;
    readonly data?: Record<string, unknown>;
    readonly timestamp: { readonly seconds: number; readonly microseconds: number };
  };
  readonly change?: {
    readonly from: string;
    readonly to: string;
    readonly cause: string;
    readonly atMs: number;
  };
  readonly notice?: { readonly kind: string; readonly [member: string]: unknown };
  readonly atMs?: number;
};

/** Colours of run states (QEMU's RunState; anything else grey). */
const STATE_COLORS: Record<string, string> = {
  running: "#16a34a",
  paused: "#d97706",
  prelaunch: "#60a5fa",
  "guest-panicked": "#dc2626",
  shutdown: "#4b5563",
  suspended: "#7c3aed",
  "io-error": "#ea580c",
  "internal-error": "#9f1239",
  watchdog: "#be123c",
  inmigrate: "#0891b2",
  postmigrate: "#0e7490",
  "finish-migrate": "#155e75",
  debug: "#a16207",
  "save-vm": "#64748b",
  "restore-vm": "#64748b",
  colo: "#0f766e",
};
const colorOf = (state: string) => STATE_COLORS[state] ?? "#9ca3af";

const $ = <T extends Element = HTMLElement>(selector: string): T => {
  const found = document.querySelector<T>(selector);
  if (found === null) throw new Error(`the page has no ${selector}`);
  return found;
};

const params = new URLSearchParams(location.search);
/** `?bench`: the page keeps each event's latency (its QEMU timestamp to its row on screen). */
const bench = params.has("bench");
const latencies: number[] = [];
/** Of each, the part until the server received the event (the rest is the server and the page). */
const toServer: number[] = [];
(window as unknown as { qmpkitBench: unknown }).qmpkitBench = bench
  ? { take: () => ({ total: latencies.splice(0), toServer: toServer.splice(0) }) }
  : undefined;

const LOG_ROWS = 1000;
const TIMELINE_LANES = 40;

// ------------------------------------------------------------------------------ state

const table = new VmTable();
let timeline = new TimelineBuilder();
let lastId = 0;
let actions: string[] = [];
let readOnly = false;
let windowMs = 3_600_000;
/** A zoomed range of the timeline (seconds), or undefined to follow now. */
let zoom: { min: number; max: number } | undefined;
let sortKey: keyof VmRow = "key";
let sortDir = 1;
let vmFilter = "";
let logFilter: (e: Entry) => boolean = () => true;
const logEntries: Entry[] = [];
const pendingLog: Entry[] = [];
const dirtyRows = new Set<string>();
let tableStale = true;
/** The "since" and "last event" cells want a new text (the clock moved). */
let agesDue = false;
/** Rows of the VM table on screen (the rest behind "show more"): the page stays light with thousands of VMs. */
let pageRows = 100;
let timelineStale = true;
let frame = 0;
/** QEMU timestamps and receipt times (ms) of events not yet on screen (`?bench`). */
const unseen: [number, number][] = [];

// ------------------------------------------------------------------------------ helpers

function fetchJson<T>(url: string, init?: RequestInit): Promise<T> {
  return fetch(url, { credentials: "same-origin", ...init }).then(async (r) => {
    const body = (await r.json()) as T & { error?: string };
    if (!r.ok) throw new Error(body.error ?? `${r.status} ${r.statusText}`);
    return body;
  });
}

function clock(ms: number | undefined): string {
  if (ms === undefined) return "";
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function ago(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return "";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

function el(tag: string, text?: string, className?: string): HTMLElement {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className !== undefined) e.className = className;
  return e;
}

function stateBadge(state: string | undefined): HTMLElement {
  const badge = el("span", state ?? "?", "state");
  badge.style.background = colorOf(state ?? "");
  return badge;
}

function vmLink(host: string, name: string): HTMLAnchorElement {
  const a = el("a", name) as HTMLAnchorElement;
  a.href = `#/vm/${encodeURIComponent(host)}/${encodeURIComponent(name)}`;
  return a;
}

function details(e: Entry): { what: string; detail: string } {
  if (e.kind === "event" && e.event)
    return {
      what: e.event.event,
      detail: e.event.data === undefined ? "" : JSON.stringify(e.event.data),
    };
  if (e.kind === "state" && e.change)
    return { what: `${e.change.from} → ${e.change.to}`, detail: `cause ${e.change.cause}` };
  const { kind, ...rest } = e.notice ?? { kind: "?" };
  return { what: kind, detail: Object.keys(rest).length === 0 ? "" : JSON.stringify(rest) };
}

function entryTimeMs(e: Entry): number {
  if (e.kind === "event" && e.event) return eventTimeMs(e.event.timestamp);
  if (e.kind === "state" && e.change) return e.change.atMs;
  return e.atMs ?? e.receivedMs;
}

// ------------------------------------------------------------------------------ VM table

const vmBody = $<HTMLTableSectionElement>("#vms tbody");
const rowElements = new Map<string, HTMLTableRowElement>();

function visibleRows(): VmRow[] {
  const needle = vmFilter.trim().toLowerCase();
  const rows = table.list().filter((r) => {
    if (needle === "") return true;
    const text = `${r.host}/${r.name} ${r.state ?? ""} ${r.connection} ${r.qemu ?? ""} ${r.cause ?? ""}`;
    return needle.split(/\s+/).every((word) => text.toLowerCase().includes(word));
  });
  const key = sortKey;
  rows.sort((a, b) => {
    const x = a[key] ?? "";
    const y = b[key] ?? "";
    return (x < y ? -1 : x > y ? 1 : a.key < b.key ? -1 : 1) * sortDir;
  });
  return rows;
}

function fillRow(tr: HTMLTableRowElement, r: VmRow, now: number): void {
  tr.dataset.key = r.key;
  tr.dataset.state = r.state ?? "";
  tr.dataset.connection = r.connection;
  const cells = [
    el("td", r.host),
    el("td"),
    el("td", r.qemu ?? ""),
    el("td"),
    el("td", ago(r.stateSinceMs, now), "since"),
    el("td", r.cause ?? ""),
    el("td", r.connection, `conn-${r.connection.replace(" ", "-")}`),
    el("td", lastEventText(r, now), "last"),
  ];
  cells[1]!.append(vmLink(r.host, r.name));
  cells[3]!.append(stateBadge(r.state));
  cells[3]!.className = "run-state";
  cells[4]!.title = clock(r.stateSinceMs);
  tr.replaceChildren(...cells);
}

function lastEventText(r: VmRow, now: number): string {
  return r.lastEvent === undefined ? "" : `${r.lastEvent} ${ago(r.lastEventMs, now)}`;
}

function renderTable(now: number): void {
  const rows = visibleRows();
  const fragment = document.createDocumentFragment();
  rowElements.clear();
  for (const r of rows.slice(0, pageRows)) {
    const tr = document.createElement("tr");
    fillRow(tr, r, now);
    rowElements.set(r.key, tr);
    fragment.append(tr);
  }
  vmBody.replaceChildren(fragment);
  const shown = Math.min(rows.length, pageRows);
  $("#vm-count").textContent =
    (rows.length === table.rows.size
      ? `${rows.length} VMs`
      : `${rows.length} of ${table.rows.size} VMs`) +
    (shown < rows.length ? `, the first ${shown} shown` : "");
  $("#more").hidden = shown >= rows.length;
  const hosts = new Set(table.list().map((r) => r.host));
  $("#summary").textContent =
    `${table.rows.size} VMs on ${hosts.size} host${hosts.size === 1 ? "" : "s"}`;
}

function patchRows(now: number): void {
  for (const key of dirtyRows) {
    const tr = rowElements.get(key);
    const row = table.rows.get(key);
    // A row not on screen waits for the next full render.
    if (tr !== undefined && row !== undefined) fillRow(tr, row, now);
  }
  dirtyRows.clear();
  if (!agesDue) return;
  agesDue = false;
  for (const [key, tr] of rowElements) {
    const row = table.rows.get(key);
    if (row === undefined) continue;
    tr.querySelector(".since")!.textContent = ago(row.stateSinceMs, now);
    tr.querySelector(".last")!.textContent = lastEventText(row, now);
  }
}

$("#more").addEventListener("click", () => {
  pageRows += 100;
  tableStale = true;
  schedule();
});

for (const th of document.querySelectorAll<HTMLElement>("#vms th[data-sort]")) {
  th.addEventListener("click", () => {
    const key = th.dataset.sort as keyof VmRow;
    sortDir = sortKey === key ? -sortDir : 1;
    sortKey = key;
    for (const other of document.querySelectorAll("#vms th"))
      other.classList.remove("sorted-asc", "sorted-desc");
    th.classList.add(sortDir === 1 ? "sorted-asc" : "sorted-desc");
    tableStale = timelineStale = true;
    schedule();
  });
}
$<HTMLInputElement>("#vm-filter").addEventListener("input", (e) => {
  vmFilter = (e.target as HTMLInputElement).value;
  tableStale = timelineStale = true;
  schedule();
});

// ------------------------------------------------------------------------------ timelines

/** A lane chart: one row per VM, coloured intervals, the x axis in time (uPlot). */
class LaneChart {
  readonly plot: uPlot;
  lanes: string[] = [];
  following = true;

  constructor(
    readonly container: HTMLElement,
    readonly onZoom: (range: { min: number; max: number } | undefined) => void,
  ) {
    const now = Date.now() / 1000;
    this.plot = new uPlot(
      {
        width: Math.max(300, container.clientWidth - 2),
        height: 80,
        legend: { show: false },
        // A drag selects a range; the page zooms to it (setSelect below), so that only a
        // person's drag zooms, never the chart's own scale updates.
        cursor: { drag: { x: true, y: false, setScale: false }, y: false, points: { show: false } },
        scales: { x: { time: true }, y: { range: () => [0, Math.max(1, this.lanes.length)] } },
        axes: [
          { stroke: "#6b7280", grid: { stroke: "#eef0f3" } },
          {
            stroke: "#374151",
            size: 160,
            gap: 6,
            grid: { show: false },
            ticks: { show: false },
            splits: () => this.lanes.map((_, i) => this.lanes.length - i - 0.5),
            values: (_u, splits) =>
              splits.map((s) => this.lanes[this.lanes.length - 1 - Math.floor(s)] ?? ""),
          },
        ],
        series: [{}, { show: false }],
        hooks: {
          draw: [(u) => this.#draw(u)],
          setSelect: [
            (u) => {
              const { left, width } = u.select;
              if (width < 2) return;
              const min = u.posToVal(left, "x");
              const max = u.posToVal(left + width, "x");
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              this.following = false;
              onZoom({ min, max });
            },
          ],
        },
      },
      [
        [now - 3600, now],
        [null, null],
      ],
      container,
    );
    container.addEventListener("dblclick", () => onZoom(undefined));
  }

  /** Redraws `lanes` over `range` (seconds). */
  update(lanes: string[], range: { min: number; max: number }): void {
    const height = 40 + Math.max(1, lanes.length) * 20;
    const width = Math.max(300, this.container.clientWidth - 2);
    const resized = lanes.length !== this.lanes.length || width !== this.plot.width;
    this.lanes = lanes;
    if (resized) this.plot.setSize({ width, height });
    this.plot.setData(
      [
        [range.min, range.max],
        [null, null],
      ],
      false,
    );
    this.plot.setScale("x", range);
  }

  #draw(u: uPlot): void {
    const ctx = u.ctx;
    const n = this.lanes.length;
    const { left, top, width, height } = u.bbox;
    const now = Date.now();
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const [i, lane] of this.lanes.entries()) {
      const y0 = u.valToPos(n - i, "y", true);
      const y1 = u.valToPos(n - i - 1, "y", true);
      const pad = Math.min(3, (y1 - y0) * 0.15);
      for (const interval of timeline.intervalsOf(lane)) {
        const x0 = u.valToPos(interval.fromMs / 1000, "x", true);
        const x1 = u.valToPos((interval.untilMs ?? now) / 1000, "x", true);
        if (x1 < left || x0 > left + width) continue;
        ctx.fillStyle = colorOf(interval.state);
        ctx.fillRect(x0, y0 + pad, Math.max(1, x1 - x0), y1 - y0 - 2 * pad);
      }
    }
    ctx.restore();
  }
}

const overviewChart = new LaneChart($("#timeline"), setZoom);
let vmChart: LaneChart | undefined;

function setZoom(range: { min: number; max: number } | undefined): void {
  zoom = range;
  $("#follow").hidden = range === undefined;
  timelineStale = true;
  schedule();
}

/**
 * The range shown: the zoomed one, else the window up to now, narrowed to where `lanes` have
 * history (a short history fills the chart rather than a sliver of it).
 */
function timeRange(lanes: readonly string[]): { min: number; max: number } {
  if (zoom) return zoom;
  const now = Date.now();
  let earliest = now;
  for (const lane of lanes)
    earliest = Math.min(earliest, timeline.intervalsOf(lane)[0]?.fromMs ?? now);
  const span = Math.max(10_000, now - earliest);
  const min = Math.max(now - windowMs, now - span * 1.05);
  return { min: min / 1000, max: now / 1000 };
}

function renderTimelines(): void {
  const rows = visibleRows();
  const lanes = rows.slice(0, TIMELINE_LANES).map((r) => r.key);
  overviewChart.update(lanes, timeRange(lanes));
  $("#timeline-note").textContent =
    rows.length > TIMELINE_LANES
      ? `the first ${TIMELINE_LANES} of ${rows.length} VMs in the table's order: filter or sort the table to choose`
      : "";
  if (vmChart && currentVm) vmChart.update([currentVm], timeRange([currentVm]));
}

for (const b of document.querySelectorAll<HTMLButtonElement>("#window-buttons [data-window]")) {
  b.addEventListener("click", () => {
    windowMs = Number(b.dataset.window);
    setZoom(undefined);
  });
}
$("#follow").addEventListener("click", () => setZoom(undefined));
$("#legend").append(
  ...Object.keys(STATE_COLORS).map((s) => {
    const span = el("span", s);
    span.style.setProperty("--c", colorOf(s));
    return span;
  }),
);

// ------------------------------------------------------------------------------ event log

const logBody = $<HTMLTableSectionElement>("#log tbody");
const filters = $<HTMLFormElement>("#log-filters");

function logRow(e: Entry): HTMLTableRowElement {
  const tr = document.createElement("tr");
  tr.dataset.id = String(e.id);
  tr.dataset.kind = e.kind;
  const { what, detail } = details(e);
  const vm = el("td");
  vm.append(vmLink(e.host, e.vm));
  tr.append(
    el("td", String(e.id)),
    el("td", clock(entryTimeMs(e))),
    vm,
    el("td", e.kind),
    el("td", what),
    el("td", detail),
  );
  return tr;
}

function filterOptions(): EntryFilterOptions {
  const data = new FormData(filters);
  const text = (name: string) => String(data.get(name) ?? "").trim();
  const list = (name: string) => (text(name) === "" ? undefined : [text(name)]);
  return {
    vm: text("vm") === "" ? undefined : text("vm"),
    only: list("only"),
    except: list("except"),
    where: text("where") === "" ? undefined : text("where").split(/\s+/),
    kinds: data.getAll("kind").map(String) as ("event" | "state" | "watch")[],
  };
}

async function reloadLog(): Promise<void> {
  const options = filterOptions();
  const error = $("#log-error");
  try {
    logFilter = createEntryFilter(options) as (e: Entry) => boolean;
    error.textContent = "";
  } catch (e) {
    error.textContent = (e as Error).message;
    return;
  }
  const q = new URLSearchParams({ upTo: String(lastId), limit: String(LOG_ROWS) });
  if (options.vm) q.set("vm", options.vm);
  for (const o of options.only ?? []) q.append("only", o);
  for (const o of options.except ?? []) q.append("except", o);
  for (const w of options.where ?? []) q.append("where", w);
  q.set("kinds", (options.kinds ?? []).join(",") || "none");
  if ((options.kinds ?? []).length === 0) {
    logEntries.length = 0;
    logBody.replaceChildren();
    return;
  }
  const upTo = lastId;
  const answer = await fetchJson<{ entries: Entry[] }>(`/api/entries?${q}`);
  // Live entries that came meanwhile (after upTo) stay on top.
  const newer = logEntries.filter((e) => e.id > upTo);
  logEntries.splice(0, logEntries.length, ...newer, ...answer.entries);
  logBody.replaceChildren(...logEntries.map(logRow));
}

filters.addEventListener("input", () => void reloadLog());
filters.addEventListener("submit", (e) => e.preventDefault());

function flushLog(): void {
  if (pendingLog.length === 0) return;
  const rows = pendingLog.splice(0).reverse();
  logEntries.unshift(...rows);
  logBody.prepend(...rows.map(logRow));
  const extra = logEntries.length - LOG_ROWS;
  if (extra > 0) {
    logEntries.splice(LOG_ROWS);
    for (let i = 0; i < extra; i++) logBody.lastElementChild?.remove();
  }
}

// ------------------------------------------------------------------------------ one VM

let currentVm: string | undefined;
const vmEvents: Entry[] = [];

async function showVm(host: string, name: string): Promise<void> {
  const key = vmKey(host, name);
  currentVm = key;
  $("#vm-title").textContent = key;
  $("#action-result").textContent = "";
  const answer = await fetchJson<{ entries: Entry[] }>(
    `/api/entries?${new URLSearchParams({ vm: key, upTo: String(lastId), limit: "200" })}`,
  );
  if (currentVm !== key) return;
  vmEvents.splice(0, vmEvents.length, ...answer.entries);
  vmChart ??= new LaneChart($("#vm-timeline"), setZoom);
  renderVm();
  timelineStale = true;
  schedule();
}

function renderVm(): void {
  if (currentVm === undefined) return;
  const row = table.rows.get(currentVm);
  const info = $("#vm-info");
  const now = Date.now();
  const items: [string, string | HTMLElement][] = row
    ? [
        ["host", row.host],
        ["address", row.address],
        ["QEMU", row.qemu ?? "?"],
        ["run state", stateBadge(row.state)],
        [
          "since",
          `${clock(row.stateSinceMs)} (${ago(row.stateSinceMs, now)}), cause ${row.cause ?? "?"}`,
        ],
        ["connection", `${row.connection} since ${clock(row.connectionSinceMs)}`],
        ["gaps in the watch", String(row.gaps)],
      ]
    : [["", "not in the table"]];
  info.replaceChildren(
    ...items.flatMap(([k, v]) => {
      const dd = el("dd");
      dd.append(v);
      dd.dataset.field = k;
      return [el("dt", k), dd];
    }),
  );
  const intervals: RunStateInterval[] = timeline.intervalsOf(currentVm).slice(-50).reverse();
  $("#vm-intervals tbody").replaceChildren(
    ...intervals.map((i) => {
      const tr = document.createElement("tr");
      tr.dataset.state = i.state;
      const state = el("td");
      state.append(stateBadge(i.state));
      tr.append(
        state,
        el("td", clock(i.fromMs)),
        el("td", i.untilMs === undefined ? "now" : clock(i.untilMs)),
        el("td", duration((i.untilMs ?? now) - i.fromMs)),
        el("td", i.cause),
      );
      return tr;
    }),
  );
  $("#vm-events tbody").replaceChildren(
    ...vmEvents.slice(0, 200).map((e) => {
      const tr = document.createElement("tr");
      tr.dataset.id = String(e.id);
      const { what, detail } = details(e);
      const data = el("td");
      const pre = el(
        "pre",
        e.kind === "event" && e.event?.data !== undefined
          ? JSON.stringify(e.event.data, null, 2)
          : detail,
      );
      data.append(pre);
      tr.append(
        el("td", String(e.id)),
        el("td", clock(entryTimeMs(e))),
        el("td", e.kind === "event" ? what : `${e.kind}: ${what}`),
        data,
      );
      return tr;
    }),
  );
}

const dialog = $<HTMLDialogElement>("#confirm");
for (const b of document.querySelectorAll<HTMLButtonElement>("#actions [data-action]")) {
  b.addEventListener("click", () => {
    const action = b.dataset.action!;
    const vm = currentVm;
    if (vm === undefined) return;
    $("#confirm-text").textContent = `Send ${action} to ${vm}?`;
    $("#confirm-ok").textContent = action;
    dialog.returnValue = "";
    dialog.onclose = () => {
      if (dialog.returnValue === "ok") void act(vm, action);
    };
    dialog.showModal();
  });
}

async function act(key: string, action: string): Promise<void> {
  const [host, name] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
  const out = $("#action-result");
  out.className = "";
  out.textContent = `${action}…`;
  try {
    await fetchJson(
      `/api/vms/${encodeURIComponent(host)}/${encodeURIComponent(name)}/actions/${encodeURIComponent(action)}`,
      { method: "POST", headers: { "X-Qmpkit-Request": "action" } },
    );
    out.className = "ok";
    out.textContent = `${action}: done`;
  } catch (error) {
    out.className = "refused";
    out.textContent = (error as Error).message;
  }
}

// ------------------------------------------------------------------------------ routing

function route(): void {
  const hash = location.hash.replace(/^#/, "") || "/";
  const vm = /^\/vm\/([^/]+)\/(.+)$/.exec(hash);
  $("#overview").hidden = !(hash === "/");
  $("#events").hidden = hash !== "/events";
  $("#vm").hidden = vm === null;
  $("#nav-vms").classList.toggle("current", hash === "/");
  $("#nav-events").classList.toggle("current", hash === "/events");
  if (vm) void showVm(decodeURIComponent(vm[1]!), decodeURIComponent(vm[2]!));
  else currentVm = undefined;
  if (hash === "/events") void reloadLog();
  tableStale = timelineStale = true;
  schedule();
}
window.addEventListener("hashchange", route);

// ------------------------------------------------------------------------------ live

function apply(batch: readonly Entry[]): void {
  for (const e of batch) {
    if (e.id <= lastId) continue;
    lastId = e.id;
    const known = table.rows.size;
    const row = table.apply(e);
    if (table.rows.size !== known) tableStale = true;
    dirtyRows.add(row.key);
    const input = timelineInput(e as Parameters<typeof timelineInput>[0], row.key);
    if (input !== undefined) {
      timeline.add(input);
      timelineStale = true;
    }
    if (logFilter(e)) pendingLog.push(e);
    if (row.key === currentVm) vmEvents.unshift(e);
    if (bench && e.kind === "event" && e.event)
      unseen.push([eventTimeMs(e.event.timestamp), e.receivedMs]);
  }
  schedule();
}

function schedule(): void {
  if (frame === 0) frame = requestAnimationFrame(render);
}

let lastTimeline = 0;
let timelineTimer = false;
function render(): void {
  frame = 0;
  const now = Date.now();
  document.body.dataset.lastId = String(lastId);
  if (!$("#overview").hidden) {
    if (tableStale) renderTable(now);
    else patchRows(now);
    tableStale = false;
  }
  dirtyRows.clear();
  if (!$("#events").hidden) flushLog();
  else pendingLog.length = 0;
  if (currentVm !== undefined) renderVm();
  // The charts redraw at most 4 times a second: a lane moves a pixel in seconds.
  if (timelineStale && now - lastTimeline > 250) {
    renderTimelines();
    timelineStale = false;
    lastTimeline = now;
  } else if (timelineStale && !timelineTimer) {
    timelineTimer = true;
    setTimeout(() => {
      timelineTimer = false;
      schedule();
    }, 260);
  }
  if (bench && unseen.length > 0) {
    const shown = performance.timeOrigin + performance.now();
    for (const [t, received] of unseen.splice(0)) {
      latencies.push(shown - t);
      toServer.push(received - t);
    }
  }
}

// The "since" columns and a following timeline move on with the clock.
setInterval(() => {
  // Sorted or filtered by something that changes, the table is laid out again; else only the
  // ages move.
  if (vmFilter.trim() !== "" || !["key", "host", "name"].includes(sortKey)) tableStale = true;
  else agesDue = true;
  timelineStale = true;
  schedule();
}, 1000);

let source: EventSource | undefined;
function connect(): void {
  source?.close();
  const live = $("#live");
  source = new EventSource(`/api/stream?after=${lastId}`);
  source.addEventListener("entries", (m) =>
    apply(JSON.parse((m as MessageEvent<string>).data) as Entry[]),
  );
  source.addEventListener("open", () => {
    live.textContent = "live";
    live.className = "live on";
  });
  source.addEventListener("error", () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
    // A refused connection (the server answered with an error) is not retried by the browser.
    if (source?.readyState === EventSource.CLOSED) setTimeout(connect, 1000);
  });
}

async function start(): Promise<void> {
  const snapshot = await fetchJson<{
    lastId: number;
    readOnly: boolean;
    actions: string[];
    vms: VmRow[];
  }>("/api/vms");
  lastId = snapshot.lastId;
  readOnly = snapshot.readOnly;
  actions = snapshot.actions;
  for (const row of snapshot.vms) table.rows.set(row.key, row);
  $("#mode").textContent = readOnly ? "read-only" : actions.length === 0 ? "no actions" : "";
  const history = await fetchJson<{ intervals: RunStateInterval[] }>(
    `/api/timeline?upTo=${lastId}&sinceMs=${Date.now() - 86_400_000}`,
  );
  timeline = new TimelineBuilder();
  timeline.seed(history.intervals);
  document.body.dataset.lastId = String(lastId);
  connect();
  route();
}

void start();
