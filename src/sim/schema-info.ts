/**
 * What the simulator takes from the generated schema layer: argument validators, event data
 * validators, and per-version facts (which commands and events a release has, its
 * `query-qmp-schema` answer).
 *
 * Read through optional lookups, so the simulator keeps working for names the catalogue does
 * not describe (real QEMUs have commands the project does not model).
 *
 * @module
 */
import * as generated from "../generated/index.js";
import type { JsonValue } from "../base/json.js";
import { introspect } from "../schema/introspect.js";
import type { Definition, SchemaModel } from "../schema/model.js";
import type { Validator } from "../schema/validator.js";
import { filterModel } from "../schema/version.js";
import { simDefinitions } from "./sim-schema.js";

interface VersionFacts {
  members(owner: string, version: string): Array<{ name: string }>;
  hasEvent(name: string, version: string): boolean;
  hasCommand(name: string, version: string): boolean;
  hasMember(owner: string, member: string, version: string): boolean;
  events(version: string): string[];
  commands(version: string): string[];
  introspect(version: string): unknown[];
}

interface GeneratedShape {
  readonly schemaModel?: SchemaModel;
  readonly commandValidators?: Readonly<Record<string, { readonly args: Validator<unknown> }>>;
  readonly eventValidators?: Readonly<Record<string, Validator<unknown>>>;
  readonly qemuSchema?: VersionFacts;
}

const g = generated as unknown as GeneratedShape;

/** The argument validator of a command, when the catalogue has it. */
export function commandArgsValidator(name: string): Validator<unknown> | undefined {
  const entry = g.commandValidators?.[name];
  return entry?.args;
}

/** The data validator of an event, when the catalogue has it. */
export function eventDataValidator(name: string): Validator<unknown> | undefined {
  return g.eventValidators?.[name];
}

/** Whether the catalogue knows the command at all (any version). */
export function catalogueHasCommand(name: string): boolean {
  return g.commandValidators !== undefined && Object.hasOwn(g.commandValidators, name);
}

/**
 * Whether release `version` has the command. Unknown to the catalogue → true (we cannot say no).
 */
export function versionHasCommand(name: string, version: string): boolean {
  if (g.qemuSchema === undefined || !catalogueHasCommand(name)) return true;
  return g.qemuSchema.hasCommand(name, version);
}

/** Whether release `version` has the event; unknown to the catalogue → false. */
export function versionHasEvent(name: string, version: string): boolean {
  if (g.qemuSchema === undefined) return true;
  return g.qemuSchema.hasEvent(name, version);
}

/** Whether release `version` has a member of an event, a type or a command's arguments. */
export function versionHasMember(
  owner: string,
  member: string,
  version: string,
): boolean | undefined {
  if (g.qemuSchema === undefined) return undefined;
  return g.qemuSchema.hasMember(owner, member, version);
}

/** Whether the catalogue can answer `query-qmp-schema`. */
export function hasIntrospection(): boolean {
  return g.qemuSchema !== undefined;
}

let registrationRanks: ReadonlyMap<string, number> | undefined;

/**
 * Where each catalogue command stands in the order QEMU's generated `qmp_init_marshal` would
 * register it: module by module (a module is a schema file, in the order it was first
 * included), and within a module in definition order (scripts/qapi/schema.py visits so,
 * scripts/qapi/commands.py registers in visit order). The generated model carries the file
 * list; a file missing from it ranks by its first definition.
 */
export function commandRegistrationRanks(): ReadonlyMap<string, number> {
  if (registrationRanks !== undefined) return registrationRanks;
  const definitions = g.schemaModel?.definitions ?? [];
  const moduleOf = new Map<string, number>((g.schemaModel?.files ?? []).map((f, k) => [f, k]));
  for (const d of definitions) {
    if (!moduleOf.has(d.info.file)) moduleOf.set(d.info.file, moduleOf.size);
  }
  const ordered = definitions
    .map((d, k) => ({ d, k, m: moduleOf.get(d.info.file) ?? 0 }))
    .filter((x) => x.d.kind === "command")
    .sort((x, y) => x.m - y.m || x.k - y.k);
  const ranks = new Map(ordered.map((x, rank) => [x.d.name, rank]));
  registrationRanks = ranks;
  return ranks;
}

const introspectionCache = new Map<string, JsonValue>();

/**
 * The `query-qmp-schema` answer of `version` (computed once per version and shared by every
 * machine), or undefined without a catalogue.
 */
export function introspection(version: string): JsonValue | undefined {
  if (g.qemuSchema === undefined) return undefined;
  let answer = introspectionCache.get(version);
  if (answer === undefined) {
    answer = g.qemuSchema.introspect(version) as JsonValue;
    introspectionCache.set(version, answer);
  }
  return answer;
}

/**
 * `data` with its members in the schema's order for `owner` (an event, a type or a command's
 * arguments) in `version`. QEMU's generated code inserts members in that order, which decides
 * how keys sharing a QDict hash bucket print (§1.1); unknown members keep their place at the end.
 */
export function inSchemaOrder<T extends Record<string, unknown>>(
  owner: string,
  data: T,
  version: string,
): T {
  const members = g.qemuSchema?.members(owner, version);
  if (members === undefined || members.length === 0) return data;
  const out: Record<string, unknown> = {};
  for (const m of members) if (Object.hasOwn(data, m.name)) out[m.name] = data[m.name];
  for (const [k, v] of Object.entries(data)) if (!Object.hasOwn(out, k)) out[k] = v;
  return out as T;
}

const withSimCache = new Map<string, JsonValue>();

/**
 * The `query-qmp-schema` answer of `version` with the simulator's own `x-sim-*` commands
 * ({@link simDefinitions}) after the catalogue's entities, or undefined without a catalogue.
 * Types are numbered over the whole answer, as QEMU numbers them at build time, so the numbers
 * differ from the `strict` answer's; clients must not rely on them (QEMU's own rule).
 */
export function introspectionWithSimCommands(version: string): JsonValue | undefined {
  const model = g.schemaModel;
  if (model === undefined) return undefined;
  let answer = withSimCache.get(version);
  if (answer === undefined) {
    const released = filterModel(model, version);
    const known = new Set(released.definitions.map((d) => d.name));
    const extra: Definition[] = simDefinitions().filter((d) => !known.has(d.name));
    answer = introspect(
      { definitions: [...released.definitions, ...extra], files: released.files },
      { version },
    ) as unknown as JsonValue;
    withSimCache.set(version, answer);
  }
  return answer;
}
