/**
 * Event selection by name and data, shared by everything that shows events: `qmpkit events`
 * and `history` (`--only`, `--except`, `--where`) and the dashboard's event log (its page runs
 * this module in the browser, so it imports nothing from Node).
 *
 * - `only` / `except`: event names, comma-separated, `*` and `?` wildcards, case-insensitive;
 * - `where`: `key=value` on the event's data by dotted path (`info.type=hyper-v`), `key!=value`
 *   negates; every condition must hold.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { wildcardRegExp } from "../base/wildcard.js";
import { writeCompactJson } from "../wire/json-writer.js";

/** Event selection: names to keep or drop, and conditions on the data. */
export interface EventFilterOptions {
  readonly only?: readonly string[] | undefined;
  readonly except?: readonly string[] | undefined;
  readonly where?: readonly string[] | undefined;
}

/** What a filter looks at: an event's name and data. */
export interface FilterableEvent {
  readonly event: string;
  readonly data?: JsonObject | undefined;
}

/** A malformed `where` condition (the text is in the message). */
export class EventFilterError extends QmpError {
  override name = "EventFilterError";
}

type Condition = {
  readonly path: string[];
  readonly value: string;
  readonly negate: boolean;
};

function namePatterns(items: readonly string[] | undefined): RegExp[] | undefined {
  if (!items || items.length === 0) return undefined;
  return items
    .flatMap((item) => item.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => wildcardRegExp(s, "i"));
}

/** Renders a data value the way `where` compares it: strings bare, the rest as JSON. */
export function scalarText(value: JsonValue): string {
  if (typeof value === "string") return value;
  return writeCompactJson(value);
}

/**
 * Compiles the filter options.
 *
 * @throws EventFilterError for a malformed `where` condition.
 */
export function createEventFilter(
  options: EventFilterOptions,
): (event: FilterableEvent) => boolean {
  const only = namePatterns(options.only);
  const except = namePatterns(options.except);
  const conditions: Condition[] = (options.where ?? []).map((text) => {
    const m = /^([^=!]+)(!?)=(.*)$/s.exec(text);
    if (!m)
      throw new EventFilterError(`invalid --where '${text}': expected key=value or key!=value`);
    const path = m[1]!.split(".");
    if (path.some((p) => p.trim() === ""))
      throw new EventFilterError(`invalid --where '${text}': '${m[1]}' is not a member path`);
    return { path, value: m[3]!, negate: m[2] === "!" };
  });
  return (event) => {
    if (only && !only.some((re) => re.test(event.event))) return false;
    if (except?.some((re) => re.test(event.event))) return false;
    for (const c of conditions) {
      let v: JsonValue | undefined = event.data;
      for (const step of c.path) v = isJsonObject(v) ? v[step] : undefined;
      const matches = v !== undefined && scalarText(v) === c.value;
      if (matches === c.negate) return false;
    }
    return true;
  };
}
