/**
 * A peer's own schema, as it answers `query-qmp-schema`: the list of `SchemaInfo` entries of
 * `qapi/introspect.json` (`meta-type` command, event, object, enum, array, alternate, builtin).
 * Real QEMU masks the names of non-command types as numbers ("0", "1", …); nothing here depends
 * on type names, only on the graph.
 *
 * The CLI uses it to type `key=value` arguments (`exec`, `shell`), to complete command and
 * argument names, and to print a command's signature (`help COMMAND`).
 *
 * @module
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";

/** The JSON type a value of a schema type has on the wire (introspection's `json-type`). */
export type JsonType =
  | "string"
  | "int"
  | "number"
  | "boolean"
  | "null"
  | "object"
  | "array"
  | "value";

/** One member of an object type. */
export interface MemberInfo {
  readonly name: string;
  readonly type: string;
  readonly optional: boolean;
}

/** A resolved view of one schema type. */
export type TypeInfo =
  | { readonly meta: "builtin"; readonly name: string; readonly jsonType: JsonType }
  | { readonly meta: "enum"; readonly name: string; readonly values: readonly string[] }
  | { readonly meta: "array"; readonly name: string; readonly elementType: string }
  | {
      readonly meta: "object";
      readonly name: string;
      readonly members: readonly MemberInfo[];
      /** Union branches: the tag member, and members added per tag value. */
      readonly tag?: string | undefined;
      readonly variants?:
        | ReadonlyArray<{ readonly case: string; readonly type: string }>
        | undefined;
    }
  | { readonly meta: "alternate"; readonly name: string; readonly types: readonly string[] };

/** A command as the peer describes it. */
export interface CommandInfo {
  readonly name: string;
  readonly argType: string;
  readonly retType: string;
  readonly allowOob: boolean;
  readonly features: readonly string[];
}

/** An event as the peer describes it. */
export interface EventInfo {
  readonly name: string;
  readonly argType: string;
}

function str(o: JsonObject, key: string): string | undefined {
  const v = o[key];
  return typeof v === "string" ? v : undefined;
}

function strings(v: JsonValue | undefined): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** An index over one `query-qmp-schema` answer. */
export class PeerSchema {
  readonly commands = new Map<string, CommandInfo>();
  readonly events = new Map<string, EventInfo>();
  private readonly types = new Map<string, TypeInfo>();

  /** Builds the index; entries that are not objects with a `meta-type` are skipped. */
  constructor(introspection: unknown) {
    if (!Array.isArray(introspection)) return;
    for (const entry of introspection) {
      if (!isJsonObject(entry)) continue;
      const name = str(entry, "name");
      const meta = str(entry, "meta-type");
      if (name === undefined || meta === undefined) continue;
      switch (meta) {
        case "command":
          this.commands.set(name, {
            name,
            argType: str(entry, "arg-type") ?? "",
            retType: str(entry, "ret-type") ?? "",
            allowOob: entry["allow-oob"] === true,
            features: strings(entry.features),
          });
          break;
        case "event":
          this.events.set(name, { name, argType: str(entry, "arg-type") ?? "" });
          break;
        case "builtin":
          this.types.set(name, {
            meta: "builtin",
            name,
            jsonType: (str(entry, "json-type") ?? "value") as JsonType,
          });
          break;
        case "enum": {
          // `values` in every version; `members` (with features) since 6.0.
          const values = strings(entry.values);
          const members = Array.isArray(entry.members)
            ? entry.members.flatMap((m) =>
                isJsonObject(m) && typeof m.name === "string" ? [m.name] : [],
              )
            : [];
          this.types.set(name, {
            meta: "enum",
            name,
            values: values.length > 0 ? values : members,
          });
          break;
        }
        case "array":
          this.types.set(name, {
            meta: "array",
            name,
            elementType: str(entry, "element-type") ?? "",
          });
          break;
        case "object": {
          const members: MemberInfo[] = [];
          if (Array.isArray(entry.members)) {
            for (const m of entry.members) {
              if (!isJsonObject(m) || typeof m.name !== "string" || typeof m.type !== "string")
                continue;
              // Introspection marks an optional member by the presence of `default` (always null).
              members.push({ name: m.name, type: m.type, optional: "default" in m });
            }
          }
          const variants = Array.isArray(entry.variants)
            ? entry.variants.flatMap((v) =>
                isJsonObject(v) && typeof v.case === "string" && typeof v.type === "string"
                  ? [{ case: v.case, type: v.type }]
                  : [],
              )
            : undefined;
          this.types.set(name, { meta: "object", name, members, tag: str(entry, "tag"), variants });
          break;
        }
        case "alternate": {
          const types = Array.isArray(entry.members)
            ? entry.members.flatMap((m) =>
                isJsonObject(m) && typeof m.type === "string" ? [m.type] : [],
              )
            : [];
          this.types.set(name, { meta: "alternate", name, types });
          break;
        }
        default:
          break;
      }
    }
  }

  /** A type by (possibly masked) name, or undefined when the peer did not describe it. */
  type(name: string): TypeInfo | undefined {
    return this.types.get(name);
  }

  /** Command names, sorted. */
  commandNames(): string[] {
    return [...this.commands.keys()].sort();
  }

  /** Event names, sorted. */
  eventNames(): string[] {
    return [...this.events.keys()].sort();
  }

  /**
   * The members an object type has, including those of the union branch chosen by `tagValue`
   * when given (or of every branch when not, for completion). An alternate with an object
   * branch (`BlockdevRef`: options or a node name) has the members of that branch.
   */
  membersOf(typeName: string, tagValue?: string | undefined): MemberInfo[] {
    const t = this.types.get(this.objectBranchOf(typeName) ?? typeName);
    if (t?.meta !== "object") return [];
    const out = [...t.members];
    for (const v of t.variants ?? []) {
      if (tagValue !== undefined && v.case !== tagValue) continue;
      for (const m of this.membersOf(v.type)) if (!out.some((o) => o.name === m.name)) out.push(m);
    }
    return out;
  }

  /**
   * The object type a value of this type can be: the type itself when it is an object, the
   * object branch of an alternate; undefined otherwise.
   */
  objectBranchOf(typeName: string): string | undefined {
    const t = this.types.get(typeName);
    if (t?.meta === "object") return typeName;
    if (t?.meta === "alternate") return t.types.find((x) => this.types.get(x)?.meta === "object");
    return undefined;
  }

  /** The union branches of an object type: its tag member and each tag value's own members. */
  branchesOf(
    typeName: string,
  ):
    | { readonly tag: string; readonly branches: ReadonlyArray<readonly [string, MemberInfo[]]> }
    | undefined {
    const t = this.types.get(this.objectBranchOf(typeName) ?? typeName);
    if (t?.meta !== "object" || t.tag === undefined || !t.variants?.length) return undefined;
    const variants = new Map(t.variants.map((v) => [v.case, v.type]));
    const tagType = this.types.get(t.members.find((m) => m.name === t.tag)?.type ?? "");
    // Every tag value has a branch, empty where the union names no type for it.
    const cases = tagType?.meta === "enum" ? tagType.values : [...variants.keys()];
    return {
      tag: t.tag,
      branches: cases.map((c) => {
        const type = variants.get(c);
        return [c, type === undefined ? [] : this.membersOf(type)] as const;
      }),
    };
  }

  /** The argument members of a command (empty when it takes none or is unknown). */
  argumentsOf(command: string): MemberInfo[] {
    const c = this.commands.get(command);
    return c ? this.membersOf(c.argType) : [];
  }

  /**
   * The type at a dotted member path below a type (`a.b` in the arguments of a command), or
   * undefined when some step is not an object member. `given` holds the values already given,
   * by dotted key, so that a union's tag member selects its branch.
   */
  typeAtPath(
    typeName: string,
    path: readonly string[],
    given: ReadonlyMap<string, JsonValue> = new Map(),
  ): string | undefined {
    let current = typeName;
    for (let i = 0; i < path.length; i++) {
      const t = this.types.get(this.objectBranchOf(current) ?? current);
      let tagValue: string | undefined;
      if (t?.meta === "object" && t.tag !== undefined) {
        const v = given.get([...path.slice(0, i), t.tag].join("."));
        if (typeof v === "string") tagValue = v;
      }
      const member = this.membersOf(current, tagValue).find((m) => m.name === path[i]);
      if (!member) return undefined;
      current = member.type;
    }
    return current;
  }

  /** A short human rendering of a type: `int`, `'a'|'b'`, `[str]`, `{...}`. */
  describeType(typeName: string, depth = 0): string {
    const t = this.types.get(typeName);
    if (!t) return typeName;
    switch (t.meta) {
      case "builtin":
        return t.name;
      case "enum":
        return t.values.length <= 16
          ? t.values.map((v) => `'${v}'`).join("|")
          : `enum (${t.values.length} values)`;
      case "array":
        return `[${this.describeType(t.elementType, depth)}]`;
      case "alternate":
        return t.types.map((x) => this.describeType(x, depth)).join(" or ");
      case "object": {
        if (depth >= 2) return "{…}";
        // A union shows its common members only: the branches of one are described on their
        // own (`help COMMAND BRANCH`); flattened, blockdev-add's would be hundreds of KB.
        const union = this.branchesOf(typeName);
        const members = union ? t.members : this.membersOf(typeName);
        if (members.length === 0) return "{}";
        const more = union ? `, … per ${union.tag}` : "";
        return `{ ${members.map((m) => `${m.name}${m.optional ? "?" : ""}: ${this.describeType(m.type, depth + 1)}`).join(", ")}${more} }`;
      }
    }
  }

  /** The JSON types a value of this schema type may have (several for an alternate). */
  jsonTypesOf(typeName: string): JsonType[] {
    const t = this.types.get(typeName);
    if (!t) return ["value"];
    switch (t.meta) {
      case "builtin":
        return [t.jsonType];
      case "enum":
        return ["string"];
      case "array":
        return ["array"];
      case "object":
        return ["object"];
      case "alternate":
        return [...new Set(t.types.flatMap((x) => this.jsonTypesOf(x)))];
    }
  }
}
