/**
 * Version knowledge: which definitions, members, enum values and branches a QEMU release has.
 *
 * The schema says when things appeared (`Since: X.Y` on a definition, `(since X.Y)` in a member
 * description, QEMU's own convention) and, by qmpkit's convention, when QEMU took them away
 * (`Removed: X.Y`, `(removed in X.Y)`). Something is present in release V when
 * `since <= V < removed`; without `Since` it is taken to have always been there.
 *
 * Two more marks (qmpkit's too) record changes of shape: a member described `(optional since
 * X.Y)` is mandatory in releases before X.Y; a definition with `Shape-of: NAME` is, in the
 * releases it is present in, what NAME is there (the release's model renames it NAME, so every
 * reference to NAME reaches it), while NAME itself is dated from its own shape's first release.
 *
 * @module
 */
import { introspect, type SchemaInfo } from "./introspect.js";
import {
  type Definition,
  evaluateIf,
  type IfCond,
  type Member,
  SchemaIndex,
  type SchemaModel,
  type UnionDef,
  type Versioned,
} from "./model.js";
import {
  compareQemuVersions,
  formatQemuVersion,
  parseQemuVersion,
  type QemuVersion,
} from "./qemu-version.js";

export {
  compareQemuVersions,
  formatQemuVersion,
  parseQemuVersion,
  type QemuVersion,
  versionAtLeast,
} from "./qemu-version.js";

/** Whether `item` exists in release `version` (its `since`/`removed` marks). */
export function presentIn(item: Versioned, version: QemuVersion): boolean {
  if (item.since !== undefined && compareQemuVersions(parseQemuVersion(item.since), version) > 0)
    return false;
  if (
    item.removed !== undefined &&
    compareQemuVersions(parseQemuVersion(item.removed), version) <= 0
  )
    return false;
  return true;
}

/**
 * The model as release `version` has it: definitions, members, enum values, union and
 * alternate branches outside the release are dropped.
 */
export function filterModel(model: SchemaModel, version: string | QemuVersion): SchemaModel {
  const v = typeof version === "string" ? parseQemuVersion(version) : version;
  const keep = <T extends Versioned>(xs: readonly T[]) => xs.filter((x) => presentIn(x, v));
  // A member that became optional later is mandatory before (`(optional since X.Y)`).
  const optionality = (m: Member): Member =>
    m.optionalSince !== undefined && compareQemuVersions(parseQemuVersion(m.optionalSince), v) > 0
      ? { ...m, optional: false }
      : m;
  const definitions: Definition[] = [];
  for (const present of model.definitions) {
    if (!presentIn(present, v)) continue;
    // The shape of NAME that this release has takes NAME's place (the checker made sure that
    // NAME itself and its other shapes are absent here).
    const d: Definition =
      present.shapeOf === undefined
        ? present
        : { ...present, name: present.shapeOf, shapeOf: undefined };
    switch (d.kind) {
      case "enum":
        definitions.push({ ...d, values: keep(d.values) });
        break;
      case "struct":
        definitions.push({ ...d, members: keep(d.members).map(optionality) });
        break;
      case "union":
      case "alternate":
        definitions.push({ ...d, branches: keep(d.branches) });
        break;
      default:
        definitions.push(d);
    }
  }
  // A member or branch whose type the release lacks goes too (the schema may mark only the
  // type), and so does a union branch whose tag value the release lacks.
  const names = new Set(definitions.map((d) => d.name));
  const typed = <T extends { type: { name: string } }>(xs: readonly T[]) =>
    xs.filter((x) => names.has(x.type.name));
  const structs = definitions.map((d) =>
    d.kind === "struct" ? { ...d, members: typed(d.members) } : d,
  );
  const index = new SchemaIndex({ definitions: structs });
  const tagValues = (u: UnionDef): Set<string> | undefined => {
    if (!names.has(u.base)) return undefined;
    const tag = index.objectMembers(u.base).find((m) => m.name === u.discriminator);
    const e = tag ? index.get(tag.type.name) : undefined;
    return e?.kind === "enum" ? new Set(e.values.map((v) => v.name)) : undefined;
  };
  return {
    files: model.files,
    definitions: structs.map((d) => {
      switch (d.kind) {
        case "union": {
          const values = tagValues(d);
          return { ...d, branches: typed(d.branches).filter((b) => values?.has(b.name) ?? true) };
        }
        case "alternate":
          return { ...d, branches: typed(d.branches) };
        default:
          return d;
      }
    }),
  };
}

/**
 * The model as a build with the given configuration has it: definitions, members, enum values,
 * branches and features whose `if` condition is false are dropped (QEMU compiles them out).
 */
export function filterModelByConfig(
  model: SchemaModel,
  defined: (symbol: string) => boolean,
): SchemaModel {
  const on = <T extends { ifcond?: IfCond | undefined }>(xs: readonly T[]) =>
    xs.filter((x) => evaluateIf(x.ifcond, defined));
  const kept = model.definitions.filter((d) => evaluateIf(d.ifcond, defined));
  const names = new Set(kept.map((d) => d.name));
  const typed = <T extends { type: { name: string } }>(xs: readonly T[]) =>
    xs.filter((x) => names.has(x.type.name));
  const definitions: Definition[] = kept.map((d) => {
    const features = on(d.features);
    switch (d.kind) {
      case "enum":
        return {
          ...d,
          features,
          values: on(d.values).map((v) => ({ ...v, features: on(v.features) })),
        };
      case "struct":
        return {
          ...d,
          features,
          members: typed(on(d.members)).map((m) => ({ ...m, features: on(m.features) })),
        };
      case "union":
      case "alternate":
        return { ...d, features, branches: typed(on(d.branches)) };
      default:
        return { ...d, features };
    }
  });
  return { definitions, files: model.files };
}

/** Answers about one schema model, for any release. */
export interface VersionQueries {
  /** The model behind the answers. */
  readonly model: SchemaModel;
  /** Whether release `version` has the event. */
  hasEvent(name: string, version: string): boolean;
  /** Whether release `version` has the command. */
  hasCommand(name: string, version: string): boolean;
  /**
   * Whether release `version` has member `member` of a type, of an event's data or of a
   * command's arguments (`hasMember("SHUTDOWN", "reason", "3.1")` is false).
   */
  hasMember(owner: string, member: string, version: string): boolean;
  /** The events of release `version`, in schema order. */
  events(version: string): string[];
  /** The commands of release `version`, in schema order. */
  commands(version: string): string[];
  /** The members of an object type / event data / command arguments in release `version`. */
  members(owner: string, version: string): Member[];
  /** The model filtered to release `version`. */
  modelFor(version: string): SchemaModel;
  /**
   * The `query-qmp-schema` answer of release `version` (introspect.py's form). `defined` says
   * which `if` symbols the imitated build has (default: all, e.g. `CONFIG_SPICE`).
   */
  introspect(
    version: string,
    options?: { readonly defined?: ((symbol: string) => boolean) | undefined },
  ): SchemaInfo[];
}

/** Bind the version queries to a model (the generated `qemuSchema` is one). */
export function createVersionQueries(model: SchemaModel): VersionQueries {
  const cache = new Map<string, SchemaModel>();
  const introspected = new Map<string, SchemaInfo[]>();
  const modelFor = (version: string): SchemaModel => {
    const v = parseQemuVersion(version);
    const key = formatQemuVersion(v);
    let m = cache.get(key);
    if (m === undefined) {
      m = filterModel(model, v);
      cache.set(key, m);
    }
    return m;
  };
  const find = (name: string, version: string) =>
    modelFor(version).definitions.find((d) => d.name === name);
  const members = (owner: string, version: string): Member[] => {
    const m = modelFor(version);
    const d = m.definitions.find((x) => x.name === owner);
    if (d === undefined) return [];
    const index = new SchemaIndex(m);
    const typeName =
      d.kind === "event"
        ? d.data
        : d.kind === "command"
          ? d.args
          : d.kind === "struct" || d.kind === "union"
            ? d.name
            : undefined;
    if (typeName === undefined || index.get(typeName) === undefined) return [];
    return index.objectMembers(typeName);
  };
  return {
    model,
    hasEvent: (name, version) => find(name, version)?.kind === "event",
    hasCommand: (name, version) => find(name, version)?.kind === "command",
    hasMember: (owner, member, version) => members(owner, version).some((m) => m.name === member),
    events: (version) =>
      modelFor(version)
        .definitions.filter((d) => d.kind === "event")
        .map((d) => d.name),
    commands: (version) =>
      modelFor(version)
        .definitions.filter((d) => d.kind === "command")
        .map((d) => d.name),
    members,
    modelFor,
    introspect: (version, options) => {
      if (options?.defined !== undefined) {
        return introspect(modelFor(version), { version, defined: options.defined });
      }
      // Computed once per release; each caller gets its own copy to change as it likes.
      const key = formatQemuVersion(parseQemuVersion(version));
      let infos = introspected.get(key);
      if (infos === undefined) {
        infos = introspect(modelFor(version), { version });
        introspected.set(key, infos);
      }
      return structuredClone(infos);
    },
  };
}
