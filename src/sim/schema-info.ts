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
import { compileValidators, type SchemaValidators } from "../schema/dynamic.js";
import { introspect } from "../schema/introspect.js";
import { type Definition, evaluateIf, type SchemaModel } from "../schema/model.js";
import type { Validator } from "../schema/validator.js";
import {
  compareQemuVersions,
  filterModel,
  filterModelByConfig,
  parseQemuVersion,
  presentIn,
  type QemuVersion,
} from "../schema/version.js";
import { simDefinitions } from "./sim-schema.js";

interface VersionFacts {
  members(owner: string, version: string): Array<{ name: string }>;
  hasEvent(name: string, version: string): boolean;
  hasCommand(name: string, version: string): boolean;
  hasMember(owner: string, member: string, version: string): boolean;
  events(version: string): string[];
  commands(version: string): string[];
  introspect(version: string): unknown[];
  modelFor?(version: string): SchemaModel;
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

/**
 * The argument validator of a command as release `version` has it. The generated validator
 * accepts what some release accepts (the catalogue's members and values of every release):
 * usually the same as `version`'s, and then it is the one used. When a member, enum value or
 * branch the arguments can reach is absent from `version` (block-stream's
 * `backing-mask-protocol` before 9.0, MigrationCapability's `switchover-ack` before 8.1), the
 * release's own validator is compiled from its filtered model: the same runtime checks, so the
 * same issues, which the server words as QEMU does ("Parameter 'x' is unexpected").
 */
export function commandArgsValidatorFor(
  name: string,
  version: string,
  config?: ReadonlySet<string> | undefined,
): Validator<unknown> | undefined {
  // Every machine asks for each of its commands when it builds its table: answered once per
  // release, build and command (the walk below scans the whole model).
  const key = `${buildKey(version, config)}\n${name}`;
  if (argsValidatorFor.has(key)) return argsValidatorFor.get(key);
  const found = findArgsValidator(name, version, config);
  argsValidatorFor.set(key, found);
  return found;
}

/** {@link commandArgsValidatorFor}'s answers, by release, build and command. */
const argsValidatorFor = new Map<string, Validator<unknown> | undefined>();

function findArgsValidator(
  name: string,
  version: string,
  config: ReadonlySet<string> | undefined,
): Validator<unknown> | undefined {
  const generatedValidator = commandArgsValidator(name);
  const model = g.schemaModel;
  if (generatedValidator === undefined || model === undefined) return generatedValidator;
  const command = model.definitions.find((d) => d.name === name);
  if (command?.kind !== "command" || command.args === undefined) return generatedValidator;
  if (reachesAbsent(model, command.args, parseQemuVersion(version), config)) {
    const key = buildKey(version, config);
    let compiled = releaseValidators.get(key);
    if (compiled === undefined) {
      compiled = compileValidators(releaseModel(model, version, config));
      releaseValidators.set(key, compiled);
    }
    return compiled.commandArgs(name) ?? generatedValidator;
  }
  return generatedValidator;
}

/** Validators compiled from a release's model, by version and build (see {@link commandArgsValidatorFor}). */
const releaseValidators = new Map<string, SchemaValidators>();

/** A cache key for a release and a build (`undefined`: every symbol on). */
function buildKey(version: string, config: ReadonlySet<string> | undefined): string {
  return config === undefined ? version : `${version} ${[...config].sort().join(",")}`;
}

/** The model of release `version` as a build with `config`'s symbols on has it. */
function releaseModel(
  model: SchemaModel,
  version: string,
  config: ReadonlySet<string> | undefined,
): SchemaModel {
  const released = filterModel(model, version);
  return config === undefined ? released : filterModelByConfig(released, (s) => config.has(s));
}

/**
 * Whether type `root` reaches, in `version` and the build with `config`'s symbols, something
 * that the generated validators (which accept what any release and any build accepts) treat
 * otherwise: a definition, member, value or branch absent from the release or compiled out of
 * the build, or a member that was still mandatory (`(optional since X.Y)`).
 */
function reachesAbsent(
  model: SchemaModel,
  root: string,
  version: QemuVersion,
  config?: ReadonlySet<string> | undefined,
): boolean {
  const built = (x: { readonly ifcond?: Definition["ifcond"] }) =>
    config === undefined || evaluateIf(x.ifcond, (s) => config.has(s));
  const byName = new Map(model.definitions.map((d) => [d.name, d]));
  const seen = new Set<string>();
  const pending = [root];
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (seen.has(name)) continue;
    seen.add(name);
    const d = byName.get(name);
    if (d === undefined) continue;
    if (!presentIn(d, version) || !built(d)) return true;
    const parts =
      d.kind === "struct"
        ? d.members
        : d.kind === "enum"
          ? d.values
          : d.kind === "union" || d.kind === "alternate"
            ? d.branches
            : [];
    if (parts.some((x) => !presentIn(x, version) || !built(x))) return true;
    if (d.kind === "struct") {
      const mandatory = (m: { readonly optionalSince?: string | undefined }) =>
        m.optionalSince !== undefined &&
        compareQemuVersions(parseQemuVersion(m.optionalSince), version) > 0;
      if (d.members.some(mandatory)) return true;
      if (d.base !== undefined) pending.push(d.base);
      for (const m of d.members) pending.push(m.type.name);
    } else if (d.kind === "union" || d.kind === "alternate") {
      if (d.kind === "union") pending.push(d.base);
      for (const b of d.branches) pending.push(b.type.name);
    }
  }
  return false;
}

/** The data validator of an event, when the catalogue has it. */
export function eventDataValidator(name: string): Validator<unknown> | undefined {
  return g.eventValidators?.[name];
}

/** The catalogue's `allow-oob` commands, collected on first use. */
let oobCommands: ReadonlySet<string> | undefined;

/**
 * Whether the catalogue marks the command `allow-oob` (it may then be sent with `exec-oob` and
 * runs at once, ahead of queued in-band commands, §1.7). False for commands it does not know.
 */
export function commandAllowsOob(name: string): boolean {
  oobCommands ??= new Set(
    g.schemaModel?.definitions.flatMap((d) => (d.kind === "command" && d.allowOob ? [d.name] : [])),
  );
  return oobCommands.has(name);
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

/**
 * The values of enum `name` in release `version`, in schema order (QEMU's numbering), or
 * undefined when the catalogue does not describe the enum.
 */
export function enumValuesIn(name: string, version: string): string[] | undefined {
  const model = g.qemuSchema?.modelFor?.(version);
  const d = model?.definitions.find((x) => x.name === name);
  return d?.kind === "enum" ? d.values.map((v) => v.name) : undefined;
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
 * The `query-qmp-schema` answer of `version` for the build with `config`'s `if` symbols on
 * (default: every symbol), computed once per release and build and shared by every machine;
 * undefined without a catalogue.
 */
export function introspection(
  version: string,
  config?: ReadonlySet<string> | undefined,
): JsonValue | undefined {
  const model = g.schemaModel;
  if (model === undefined || g.qemuSchema === undefined) return undefined;
  const key = buildKey(version, config);
  let answer = introspectionCache.get(key);
  if (answer === undefined) {
    answer = introspect(filterModel(model, version), {
      version,
      ...(config === undefined ? {} : { defined: (s: string) => config.has(s) }),
    }) as unknown as JsonValue;
    introspectionCache.set(key, answer);
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
export function introspectionWithSimCommands(
  version: string,
  config?: ReadonlySet<string> | undefined,
): JsonValue | undefined {
  const model = g.schemaModel;
  if (model === undefined) return undefined;
  const key = buildKey(version, config);
  let answer = withSimCache.get(key);
  if (answer === undefined) {
    const released = filterModel(model, version);
    const known = new Set(released.definitions.map((d) => d.name));
    const extra: Definition[] = simDefinitions().filter((d) => !known.has(d.name));
    answer = introspect(
      { definitions: [...released.definitions, ...extra], files: released.files },
      { version, ...(config === undefined ? {} : { defined: (s: string) => config.has(s) }) },
    ) as unknown as JsonValue;
    withSimCache.set(key, answer);
  }
  return answer;
}
