/**
 * Which journal entries the event log shows: the VM (a glob on `HOST/NAME` or on the name), the
 * kinds of entries, and the filters of `qmpkit events` for events (`only`, `except`, `where`,
 * `client/event-filter.ts`). Watch notices are never filtered by event name, as in `events`.
 * The server filters its history pages with it and the page its live entries. Pure.
 *
 * @module
 */
import { createEventFilter, type EventFilterOptions } from "../client/event-filter.js";
import type { TableEntry } from "./vm-table.js";

/** The event log's filters. */
export interface EntryFilterOptions extends EventFilterOptions {
  /** A glob (`*`, `?`) on `HOST/NAME` or on the VM's name. */
  readonly vm?: string | undefined;
  /** Kinds of entries shown (default all). */
  readonly kinds?: readonly ("event" | "state" | "watch")[] | undefined;
}

/** A glob on names (`*`, `?`; everything else literal) as an anchored regular expression. */
export function globRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

/**
 * Compiles the filters.
 *
 * @throws EventFilterError for a malformed `where`.
 */
export function createEntryFilter(
  options: EntryFilterOptions,
): (entry: TableEntry & { readonly event?: unknown }) => boolean {
  const events = createEventFilter(options);
  const vm = options.vm === undefined || options.vm === "" ? undefined : globRegExp(options.vm);
  const kinds = options.kinds === undefined ? undefined : new Set<string>(options.kinds);
  return (entry) => {
    if (kinds !== undefined && !kinds.has(entry.kind)) return false;
    if (vm !== undefined && !vm.test(`${entry.host}/${entry.vm}`) && !vm.test(entry.vm))
      return false;
    if (entry.kind === "event") return events(entry.event as Parameters<typeof events>[0]);
    return true;
  };
}
