/**
 * Introspection, both ways (QEMU's `scripts/qapi/introspect.py` and `qapi/introspect.json`,
 * restated).
 *
 * - {@link introspect}: model → the `SchemaInfo` list `query-qmp-schema` returns. As QEMU's
 *   non-debug builds do, every non-builtin type name is replaced by a number in order of first
 *   use; the sized integer types all appear as `int`; arrays are named `[ELEMENT]`; only types
 *   reachable from commands and events are listed; commands and events come first, in schema
 *   order, then the types in the order they were first used; union branches the schema leaves
 *   out appear with the empty object type.
 * - {@link modelFromIntrospection}: a live peer's `SchemaInfo` list → a model, so a client can
 *   validate against the exact QEMU it talks to, or generate types for it.
 * - {@link compareSchemaInfo}: structural comparison of two `SchemaInfo` lists (numbered names
 *   resolved): member names, optionality, types, enum values, branches.
 *
 * @module
 */
import type { JsonValue } from "../base/json.js";
import {
  type Branch,
  type BuiltinDef,
  builtinJsonTypes,
  type Definition,
  emptyObjectName,
  evaluateIf,
  type Feature,
  type IfCond,
  type Member,
  qtypeValues,
  SchemaIndex,
  type SchemaModel,
  type TypeRef,
} from "./model.js";
import type { SourceInfo } from "./source.js";
import { parseQemuVersion, versionAtLeast } from "./qemu-version.js";

/** One entry of `query-qmp-schema` (`SchemaInfo` in QEMU's `qapi/introspect.json`). */
export type SchemaInfo =
  | SchemaInfoBuiltin
  | SchemaInfoEnum
  | SchemaInfoArray
  | SchemaInfoObject
  | SchemaInfoAlternate
  | SchemaInfoCommand
  | SchemaInfoEvent;

interface SchemaInfoBase {
  name: string;
  features?: string[];
}
export interface SchemaInfoBuiltin extends SchemaInfoBase {
  "meta-type": "builtin";
  "json-type": BuiltinDef["jsonType"];
}
export interface SchemaInfoEnum extends SchemaInfoBase {
  "meta-type": "enum";
  /** Since QEMU 6.2, with per-value features. */
  members?: { name: string; features?: string[] }[];
  values: string[];
}
export interface SchemaInfoArray extends SchemaInfoBase {
  "meta-type": "array";
  "element-type": string;
}
export interface SchemaInfoObjectMember {
  name: string;
  type: string;
  /** Present (always `null`) when the member is optional. */
  default?: null;
  features?: string[];
}
export interface SchemaInfoObject extends SchemaInfoBase {
  "meta-type": "object";
  members: SchemaInfoObjectMember[];
  tag?: string;
  variants?: { case: string; type: string }[];
}
export interface SchemaInfoAlternate extends SchemaInfoBase {
  "meta-type": "alternate";
  members: { type: string }[];
}
export interface SchemaInfoCommand extends SchemaInfoBase {
  "meta-type": "command";
  "arg-type": string;
  "ret-type": string;
  "allow-oob"?: boolean;
}
export interface SchemaInfoEvent extends SchemaInfoBase {
  "meta-type": "event";
  "arg-type": string;
}

/** Options of {@link introspect}. */
export interface IntrospectOptions {
  /**
   * The QEMU release to imitate (affects the form only: enum `members` exist from 6.2).
   * Filter the model with `filterModel` first to drop what the release lacks.
   * Default: the newest form.
   */
  readonly version?: string | undefined;
  /** Keep type names instead of numbering them (QEMU's `--unmask-non-abi-names`). Default false. */
  readonly unmask?: boolean | undefined;
  /**
   * Which config symbols (`if` conditions) the imitated build has; default: all. QEMU numbers
   * the types at build time for the whole schema and compiles false conditions out, so the
   * numbers stay those of the full schema while the entries behind false conditions go.
   */
  readonly defined?: ((symbol: string) => boolean) | undefined;
}

/** The model as `query-qmp-schema` returns it. */
export function introspect(model: SchemaModel, options: IntrospectOptions = {}): SchemaInfo[] {
  const index = new SchemaIndex(model);
  const enumMembers =
    options.version === undefined || versionAtLeast(parseQemuVersion(options.version), 6, 2);
  const defined = options.defined;
  const on = (cond: IfCond | undefined) => defined === undefined || evaluateIf(cond, defined);
  const numbers = new Map<string, string>();
  const nameOf = (name: string): string => {
    if (options.unmask) return name;
    let n = numbers.get(name);
    if (n === undefined) {
      n = String(numbers.size);
      numbers.set(name, n);
    }
    return n;
  };
  // The work queue of used types (introspect.py `_used_types`).
  const used: TypeRef[] = [];
  const usedKeys = new Set<string>();
  const useType = (ref: TypeRef): string => {
    let r = ref;
    const t = index.get(r.name);
    // Every integer type appears as `int`.
    if (t?.kind === "builtin" && t.jsonType === "int") r = { name: "int", array: r.array };
    const key = r.array ? `[${r.name}]` : r.name;
    if (!usedKeys.has(key)) {
      usedKeys.add(key);
      used.push(r);
    }
    if (r.array) return `[${useType({ name: r.name, array: false })}]`;
    if (index.get(r.name)?.kind === "builtin") return r.name;
    return nameOf(r.name);
  };
  const features = (fs: readonly Feature[]) => {
    const names = fs.filter((f) => on(f.ifcond)).map((f) => f.name);
    return names.length > 0 ? { features: names } : {};
  };
  // Every list below computes the type names first (numbering the whole schema, as QEMU does
  // at build time) and then drops what the build's conditions compile out.
  const kept = <T, R>(
    xs: readonly T[],
    cond: (x: T) => IfCond | undefined,
    make: (x: T) => R,
  ): R[] =>
    xs
      .map((x) => ({ keep: on(cond(x)), value: make(x) }))
      .filter((x) => x.keep)
      .map((x) => x.value);
  const out: SchemaInfo[] = [];
  const empty: TypeRef = { name: emptyObjectName, array: false };
  // schema.py visits module by module (modules in the order they were first included), and
  // within a module in definition order; a stable sort by module gives the same sequence.
  const moduleOf = new Map((model.files ?? []).map((f, k) => [f, k]));
  const entities = model.definitions
    .map((d, k) => ({ d, k, m: moduleOf.get(d.info.file) ?? -1 }))
    .filter((x) => x.d.kind === "command" || x.d.kind === "event")
    .sort((x, y) => x.m - y.m || x.k - y.k)
    .map((x) => x.d);
  for (const d of entities) {
    let info: SchemaInfo | undefined;
    if (d.kind === "command") {
      const argType = useType(d.args !== undefined ? { name: d.args, array: false } : empty);
      const retType = useType(d.returns ?? empty);
      info = {
        name: d.name,
        "meta-type": "command",
        "arg-type": argType,
        "ret-type": retType,
        ...(d.allowOob ? { "allow-oob": true } : {}),
        ...features(d.features),
      };
    } else if (d.kind === "event") {
      const argType = useType(d.data !== undefined ? { name: d.data, array: false } : empty);
      info = { name: d.name, "meta-type": "event", "arg-type": argType, ...features(d.features) };
    }
    if (info && on(d.ifcond)) out.push(info);
  }
  for (let i = 0; i < used.length; i++) {
    const ref = used[i]!;
    const t = index.type(ref.name);
    // An array type has its element type's condition (schema.py `QAPISchemaArrayType.ifcond`).
    const keep = on(t.ifcond);
    let info: SchemaInfo;
    if (ref.array) {
      const element = useType({ name: ref.name, array: false });
      info = { name: `[${element}]`, "meta-type": "array", "element-type": element };
    } else {
      switch (t.kind) {
        case "builtin":
          info = { name: t.name, "meta-type": "builtin", "json-type": t.jsonType };
          break;
        case "enum": {
          const values = t.values.filter((v) => on(v.ifcond));
          info = {
            name: nameOf(t.name),
            "meta-type": "enum",
            ...(enumMembers
              ? { members: values.map((v) => ({ name: v.name, ...features(v.features) })) }
              : {}),
            values: values.map((v) => v.name),
            ...features(t.features),
          };
          break;
        }
        case "struct":
        case "union": {
          const members = kept(
            index.objectMembers(t.name),
            (m) => m.ifcond,
            (m): SchemaInfoObjectMember => ({
              name: m.name,
              type: useType(m.type),
              ...(m.optional ? { default: null } : {}),
              ...features(m.features),
            }),
          );
          const object: SchemaInfoObject = { name: nameOf(t.name), "meta-type": "object", members };
          if (t.kind === "union") {
            object.tag = t.discriminator;
            object.variants = kept(
              unionVariants(index, t.name),
              (b) => b.ifcond,
              (b) => ({ case: b.name, type: useType(b.type) }),
            );
          }
          info = { ...object, ...features(t.features) };
          break;
        }
        case "alternate":
          info = {
            name: nameOf(t.name),
            "meta-type": "alternate",
            members: kept(
              t.branches,
              (b) => b.ifcond,
              (b) => ({ type: useType(b.type) }),
            ),
            ...features(t.features),
          };
          break;
      }
    }
    if (keep) out.push(info);
  }
  return out.map(sortKeys);
}

/** QEMU's generated table lists each object's keys sorted (introspect.py `_tree_to_qlit`). */
function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, sortKeys(v)]),
  ) as T;
}

/** A union's branches as QEMU lists them: the written ones, then the tag values left out (empty). */
export function unionVariants(index: SchemaIndex, union: string): Branch[] {
  const u = index.type(union);
  if (u.kind !== "union") return [];
  const tag = index.objectMembers(u.base).find((m) => m.name === u.discriminator);
  const tagType = tag ? index.get(tag.type.name) : undefined;
  const written = new Set(u.branches.map((b) => b.name));
  // Each added branch keeps its enum value's condition (schema.py `QAPISchemaVariants.check`).
  const missing: Branch[] =
    tagType?.kind === "enum"
      ? tagType.values
          .filter((v) => !written.has(v.name))
          .map((v) => ({
            name: v.name,
            type: { name: emptyObjectName, array: false },
            ...(v.ifcond !== undefined ? { ifcond: v.ifcond } : {}),
          }))
      : [];
  return [...u.branches, ...missing];
}

// ---- SchemaInfo → model ------------------------------------------------------------------------

const introspectionInfo: SourceInfo = {
  file: "<introspection>",
  line: 0,
  column: 0,
  includedFrom: [],
};

function isSchemaInfo(v: unknown): v is SchemaInfo {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as { name?: unknown }).name === "string" &&
    typeof (v as Record<string, unknown>)["meta-type"] === "string"
  );
}

/**
 * Names for the masked (numbered) types of a `query-qmp-schema` answer, from the first place each
 * is used, walking the commands and events in order: a command's arguments and reply
 * (`BlockdevAddArguments`, `QueryBlockResult`, also the element of a reply list), an event's
 * data (`ShutdownEventData`); below those, the owner's name and the member's
 * (`BlockdevAddArgumentsDriver`), the union branch's (`BlockdevAddArgumentsRaw`) or the
 * alternate branch's kind (`…Object`, `…Enum`). A name already taken gets a number.
 * Names already in `names`, and names the peer did not mask, are kept.
 */
function nameFromPlace(
  infos: readonly SchemaInfo[],
  byName: ReadonlyMap<string, SchemaInfo>,
  names: Map<string, string>,
): void {
  const pascal = (s: string) =>
    s
      .split(/[^A-Za-z0-9]+/)
      .filter((p) => p !== "")
      .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
      .join("");
  const taken = new Set([...names.values(), ...byName.keys()]);
  const queue: string[] = [];
  /** Gives `n` (or the element of `[n]`) the name `wanted` unless it has one. */
  const give = (n: string, wanted: string) => {
    const element = /^\[(.*)\]$/.exec(n)?.[1] ?? n;
    if (!/^\d+$/.test(element)) return;
    if (!names.has(element)) {
      let name = wanted;
      for (let i = 2; taken.has(name); i++) name = `${wanted}${i}`;
      taken.add(name);
      names.set(element, name);
    }
    queue.push(element);
  };
  for (const i of infos) {
    if (i["meta-type"] === "command") {
      give(i["arg-type"], `${pascal(i.name)}Arguments`);
      give(i["ret-type"], `${pascal(i.name)}Result`);
    } else if (i["meta-type"] === "event") {
      give(i["arg-type"], `${pascal(i.name)}EventData`);
    }
  }
  const seen = new Set<string>();
  while (queue.length > 0) {
    const n = queue.shift()!;
    if (seen.has(n)) continue;
    seen.add(n);
    const t = byName.get(n);
    const own = names.get(n) ?? n;
    // q_obj_NAME-arg reads as NAME-arg: its children are named from the readable form.
    const owner = pascal(own.replace(/^q_obj_/, ""));
    if (t?.["meta-type"] === "object") {
      for (const m of t.members) give(m.type, `${owner}${pascal(m.name)}`);
      for (const v of t.variants ?? []) give(v.type, `${owner}${pascal(v.case)}`);
    } else if (t?.["meta-type"] === "alternate") {
      for (const m of t.members) {
        const kind = byName.get(/^\[(.*)\]$/.exec(m.type)?.[1] ?? m.type)?.["meta-type"] ?? "type";
        give(m.type, `${owner}${pascal(kind)}`);
      }
    } else if (t?.["meta-type"] === "array") {
      give(t["element-type"], `${owner}Element`);
    }
  }
}

/**
 * A live peer's `query-qmp-schema` reply → a model. The arguments of a command or the data of
 * an event, when no other definition uses that type, become implicit `q_obj_NAME-arg` types as
 * in a schema file; other masked (numbered) type names are named from their place
 * ({@link nameFromPlace}).
 * @throws TypeError when the reply is not a `SchemaInfo` list or refers to unknown names.
 */
export function modelFromIntrospection(reply: JsonValue | readonly SchemaInfo[]): SchemaModel {
  if (!Array.isArray(reply) || !reply.every(isSchemaInfo)) {
    throw new TypeError(
      "query-qmp-schema reply is invalid: expected an array of SchemaInfo objects",
    );
  }
  const infos = reply as unknown as readonly SchemaInfo[];
  const byName = new Map<string, SchemaInfo>();
  for (const i of infos) byName.set(i.name, i);
  // How often each type is referenced, to decide which argument types are private to one owner.
  const refs = new Map<string, number>();
  const countRef = (n: string) => refs.set(n, (refs.get(n) ?? 0) + 1);
  for (const i of infos) {
    switch (i["meta-type"]) {
      case "command":
        countRef(i["arg-type"]);
        countRef(i["ret-type"]);
        break;
      case "event":
        countRef(i["arg-type"]);
        break;
      case "object":
        for (const m of i.members) countRef(m.type);
        for (const v of i.variants ?? []) countRef(v.type);
        break;
      case "alternate":
        for (const m of i.members) countRef(m.type);
        break;
      case "array":
        countRef(i["element-type"]);
        break;
      default:
        break;
    }
  }
  const names = new Map<string, string>();
  for (const i of infos) {
    if (i["meta-type"] === "command" || i["meta-type"] === "event") {
      const arg = i["arg-type"];
      const t = byName.get(arg);
      // Only a masked (numbered) name is replaced: a name the peer gave is kept.
      if (
        /^\d+$/.test(arg) &&
        t?.["meta-type"] === "object" &&
        !t.tag &&
        t.members.length > 0 &&
        refs.get(arg) === 1 &&
        !names.has(arg)
      ) {
        names.set(arg, `q_obj_${i.name}-arg`);
      }
    }
    // A reply type only one command uses is named after it (`QueryStatusResult` in TypeScript).
    if (i["meta-type"] === "command") {
      const ret = i["ret-type"];
      const t = byName.get(ret);
      if (
        /^\d+$/.test(ret) &&
        t?.["meta-type"] === "object" &&
        t.members.length > 0 &&
        refs.get(ret) === 1 &&
        !names.has(ret)
      ) {
        names.set(ret, `q_obj_${i.name}-ret`);
      }
    }
  }
  const isEmptyObject = (n: string) => {
    const t = byName.get(n);
    return t?.["meta-type"] === "object" && t.members.length === 0 && !t.tag;
  };
  nameFromPlace(infos, byName, names);
  const typeName = (n: string): string => {
    const t = byName.get(n);
    if (t === undefined)
      throw new TypeError(`query-qmp-schema reply is invalid: unknown type '${n}'`);
    if (t["meta-type"] === "builtin") return builtinName(t);
    if (isEmptyObject(n)) return emptyObjectName;
    return names.get(n) ?? n;
  };
  const ref = (n: string): TypeRef => {
    const t = byName.get(n);
    if (t?.["meta-type"] === "array") return { name: typeName(t["element-type"]), array: true };
    return { name: typeName(n), array: false };
  };
  const feats = (fs: string[] | undefined): Feature[] => (fs ?? []).map((name) => ({ name }));
  const defs: Definition[] = [];
  const info = introspectionInfo;
  for (const [name, jsonType] of Object.entries(builtinJsonTypes)) {
    defs.push({ kind: "builtin", name, info, features: [], jsonType });
  }
  defs.push({
    kind: "struct",
    name: emptyObjectName,
    info,
    features: [],
    members: [],
    implicit: true,
  });
  const seenTypes = new Set<string>();
  let hasQType = false;
  for (const i of infos) {
    switch (i["meta-type"]) {
      case "builtin":
      case "array":
        break;
      case "command":
        defs.push({
          kind: "command",
          name: i.name,
          info,
          features: feats(i.features),
          ...(isEmptyObject(i["arg-type"]) ? {} : { args: typeName(i["arg-type"]) }),
          ...(isEmptyObject(i["ret-type"]) ? {} : { returns: ref(i["ret-type"]) }),
          boxed: false,
          gen: true,
          successResponse: true,
          allowOob: i["allow-oob"] === true,
          allowPreconfig: false,
          coroutine: false,
        });
        break;
      case "event":
        defs.push({
          kind: "event",
          name: i.name,
          info,
          features: feats(i.features),
          ...(isEmptyObject(i["arg-type"]) ? {} : { data: typeName(i["arg-type"]) }),
          boxed: false,
        });
        break;
      case "enum": {
        const name = typeName(i.name);
        if (seenTypes.has(name)) break;
        seenTypes.add(name);
        if (name === "QType") hasQType = true;
        const memberFeatures = new Map((i.members ?? []).map((m) => [m.name, feats(m.features)]));
        defs.push({
          kind: "enum",
          name,
          info,
          features: feats(i.features),
          values: i.values.map((v) => ({ name: v, features: memberFeatures.get(v) ?? [] })),
        });
        break;
      }
      case "object": {
        const name = typeName(i.name);
        if (name === emptyObjectName || seenTypes.has(name)) break;
        seenTypes.add(name);
        const members: Member[] = i.members.map((m) => ({
          name: m.name,
          optional: "default" in m,
          type: ref(m.type),
          features: feats(m.features),
        }));
        const implicit = names.has(i.name) ? { implicit: true } : {};
        if (i.tag !== undefined) {
          const base = `q_obj_${name}-base`;
          defs.push({ kind: "struct", name: base, info, features: [], members, implicit: true });
          defs.push({
            kind: "union",
            name,
            info,
            features: feats(i.features),
            base,
            discriminator: i.tag,
            branches: (i.variants ?? [])
              .filter((v) => !isEmptyObject(v.type))
              .map((v) => ({ name: v.case, type: { name: typeName(v.type), array: false } })),
            simple: false,
          });
        } else {
          defs.push({
            kind: "struct",
            name,
            info,
            features: feats(i.features),
            members,
            ...implicit,
          });
        }
        break;
      }
      case "alternate": {
        const name = typeName(i.name);
        if (seenTypes.has(name)) break;
        seenTypes.add(name);
        defs.push({
          kind: "alternate",
          name,
          info,
          features: feats(i.features),
          branches: i.members.map((m, k) => ({ name: `b${k}`, type: ref(m.type) })),
        });
        break;
      }
    }
  }
  if (!hasQType) {
    defs.splice(Object.keys(builtinJsonTypes).length, 0, {
      kind: "enum",
      name: "QType",
      info,
      features: [],
      values: qtypeValues.map((name) => ({ name, features: [] })),
    });
  }
  return { definitions: defs };
}

function builtinName(t: SchemaInfoBuiltin): string {
  switch (t["json-type"]) {
    case "string":
      return "str";
    case "int":
      return "int";
    case "number":
      return "number";
    case "boolean":
      return "bool";
    case "null":
      return "null";
    case "value":
      return "any";
  }
}

// ---- structural comparison -----------------------------------------------------------------------

/** One structural difference: where (e.g. `SHUTDOWN.data.reason`) and what. */
export interface SchemaDifference {
  readonly path: string;
  readonly message: string;
}

/** Options of {@link compareSchemaInfo}. */
export interface CompareOptions {
  /** Compare only these commands and events (default: every one both sides define). */
  readonly names?: readonly string[] | undefined;
  /** Compare feature lists too. Default false. */
  readonly features?: boolean | undefined;
  /** Compare the order of enum values too. Default false. */
  readonly enumOrder?: boolean | undefined;
}

/** The result of {@link compareSchemaInfo}. */
export interface SchemaComparison {
  /** Commands and events both define, compared. */
  readonly compared: readonly string[];
  /** Commands and events only the first list has. */
  readonly onlyInFirst: readonly string[];
  /** Commands and events only the second list has. */
  readonly onlyInSecond: readonly string[];
  readonly differences: readonly SchemaDifference[];
}

/**
 * Compare two `query-qmp-schema` answers structurally: for every command and event both have,
 * the argument (and reply) types after resolving the numbered names: member names, optionality
 * and types, enum values, union tags and branches, alternate branches, array elements.
 */
export function compareSchemaInfo(
  first: readonly SchemaInfo[],
  second: readonly SchemaInfo[],
  options: CompareOptions = {},
): SchemaComparison {
  const a = new Map(first.map((i) => [i.name, i]));
  const b = new Map(second.map((i) => [i.name, i]));
  const isEntity = (i: SchemaInfo) => i["meta-type"] === "command" || i["meta-type"] === "event";
  const namesA = first.filter(isEntity).map((i) => i.name);
  const namesB = new Set(second.filter(isEntity).map((i) => i.name));
  const wanted = options.names ? new Set(options.names) : undefined;
  const compared: string[] = [];
  const onlyInFirst: string[] = [];
  const onlyInSecond: string[] = [];
  for (const n of namesA) {
    if (wanted && !wanted.has(n)) continue;
    if (namesB.has(n)) compared.push(n);
    else onlyInFirst.push(n);
  }
  const setA = new Set(namesA);
  for (const n of namesB) if (!setA.has(n) && (!wanted || wanted.has(n))) onlyInSecond.push(n);
  const diffs: SchemaDifference[] = [];
  const done = new Set<string>();
  const diff = (path: string, message: string) => diffs.push({ path, message });
  const feat = (path: string, x: SchemaInfo | SchemaInfoObjectMember | undefined, y: typeof x) => {
    if (!options.features) return;
    const fx = (x?.features ?? []).join(",");
    const fy = (y?.features ?? []).join(",");
    if (fx !== fy) diff(path, `features differ: [${fx}] vs [${fy}]`);
  };
  const cmpType = (path: string, ta: string, tb: string): void => {
    const key = `${ta}\u0000${tb}`;
    if (done.has(key)) return;
    done.add(key);
    const x = a.get(ta);
    const y = b.get(tb);
    if (!x || !y) {
      diff(path, `type '${!x ? ta : tb}' is not defined in the ${!x ? "first" : "second"} list`);
      return;
    }
    if (x["meta-type"] !== y["meta-type"]) {
      diff(path, `${x["meta-type"]} vs ${y["meta-type"]}`);
      return;
    }
    feat(path, x, y);
    switch (x["meta-type"]) {
      case "builtin":
        if (x["json-type"] !== (y as SchemaInfoBuiltin)["json-type"]) {
          diff(path, `builtin ${x["json-type"]} vs ${(y as SchemaInfoBuiltin)["json-type"]}`);
        }
        return;
      case "array":
        cmpType(`${path}[]`, x["element-type"], (y as SchemaInfoArray)["element-type"]);
        return;
      case "enum": {
        const vy = (y as SchemaInfoEnum).values;
        const missing = vy.filter((v) => !x.values.includes(v));
        const extra = x.values.filter((v) => !vy.includes(v));
        if (missing.length > 0)
          diff(
            path,
            `enum lacks value(s) ${missing.map((v) => `'${v}'`).join(", ")} of the second list`,
          );
        if (extra.length > 0)
          diff(
            path,
            `enum has value(s) ${extra.map((v) => `'${v}'`).join(", ")} the second list lacks`,
          );
        if (
          options.enumOrder &&
          missing.length === 0 &&
          extra.length === 0 &&
          x.values.join() !== vy.join()
        ) {
          diff(path, `enum value order differs: ${x.values.join(", ")} vs ${vy.join(", ")}`);
        }
        return;
      }
      case "alternate": {
        const my = (y as SchemaInfoAlternate).members;
        if (x.members.length !== my.length)
          diff(path, `alternate has ${x.members.length} vs ${my.length} branches`);
        x.members.forEach((m, k) => {
          const o = my[k];
          if (o) cmpType(`${path}|${k}`, m.type, o.type);
        });
        return;
      }
      case "object": {
        const oy = y as SchemaInfoObject;
        const my = new Map(oy.members.map((m) => [m.name, m]));
        for (const m of x.members) {
          const o = my.get(m.name);
          const mp = `${path}.${m.name}`;
          if (!o) {
            diff(mp, "member missing in the second list");
            continue;
          }
          if ("default" in m !== "default" in o) {
            diff(
              mp,
              `${"default" in m ? "optional" : "mandatory"} vs ${"default" in o ? "optional" : "mandatory"}`,
            );
          }
          feat(mp, m, o);
          cmpType(mp, m.type, o.type);
        }
        const mx = new Set(x.members.map((m) => m.name));
        for (const m of oy.members)
          if (!mx.has(m.name)) diff(`${path}.${m.name}`, "member missing in the first list");
        if (x.tag !== oy.tag)
          diff(path, `union tag '${x.tag ?? "(none)"}' vs '${oy.tag ?? "(none)"}'`);
        const vy = new Map((oy.variants ?? []).map((v) => [v.case, v]));
        for (const v of x.variants ?? []) {
          const o = vy.get(v.case);
          if (!o) diff(`${path}{${v.case}}`, "branch missing in the second list");
          else cmpType(`${path}{${v.case}}`, v.type, o.type);
        }
        const vx = new Set((x.variants ?? []).map((v) => v.case));
        for (const v of oy.variants ?? [])
          if (!vx.has(v.case)) diff(`${path}{${v.case}}`, "branch missing in the first list");
        return;
      }
      default:
        return;
    }
  };
  for (const n of compared) {
    const x = a.get(n)!;
    const y = b.get(n)!;
    if (x["meta-type"] !== y["meta-type"]) {
      diff(n, `${x["meta-type"]} vs ${y["meta-type"]}`);
      continue;
    }
    feat(n, x, y);
    if (x["meta-type"] === "command") {
      const cy = y as SchemaInfoCommand;
      cmpType(`${n}.arguments`, x["arg-type"], cy["arg-type"]);
      cmpType(`${n}.return`, x["ret-type"], cy["ret-type"]);
      if ((x["allow-oob"] ?? false) !== (cy["allow-oob"] ?? false)) diff(n, "allow-oob differs");
    } else if (x["meta-type"] === "event") {
      cmpType(`${n}.data`, x["arg-type"], (y as SchemaInfoEvent)["arg-type"]);
    }
  }
  return { compared, onlyInFirst, onlyInSecond, differences: diffs };
}

/** A readable structural rendering of a `SchemaInfo` type (numbered names resolved), for messages. */
export function describeSchemaType(infos: readonly SchemaInfo[], name: string, depth = 2): string {
  const map = new Map(infos.map((i) => [i.name, i]));
  const show = (n: string, d: number): string => {
    const t = map.get(n);
    if (!t) return `?${n}`;
    switch (t["meta-type"]) {
      case "builtin":
        return t.name;
      case "array":
        return `${show(t["element-type"], d)}[]`;
      case "enum":
        return t.values.map((v) => JSON.stringify(v)).join("|");
      case "alternate":
        return t.members.map((m) => show(m.type, d)).join(" or ");
      case "object":
        if (d <= 0) return "{…}";
        return `{ ${t.members.map((m) => `${m.name}${"default" in m ? "?" : ""}: ${show(m.type, d - 1)}`).join("; ")}${t.tag ? ` | variants on ${t.tag}` : ""} }`;
      default:
        return t.name;
    }
  };
  return show(name, depth);
}
