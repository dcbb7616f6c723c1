/**
 * The semantic model of a QAPI schema: a discriminated union on `kind` (QEMU's
 * `scripts/qapi/schema.py` entities, restated), plus version knowledge from the doc comments.
 *
 * Built by `buildModel` (check.ts) from parsed expressions, or by `modelFromIntrospection`
 * (introspect.ts) from a live peer's `query-qmp-schema`. It is plain data (JSON-serialisable),
 * so generated code can embed it for runtime version queries.
 *
 * @module
 */
import type { SourceInfo } from "./source.js";

/** A condition (`if`): a config symbol, or `all`/`any`/`not` of conditions. */
export type IfCond =
  | string
  | { readonly all: readonly IfCond[] }
  | { readonly any: readonly IfCond[] }
  | { readonly not: IfCond };

/** A feature (`features: [...]`); `deprecated` and `unstable` are special to QEMU. */
export interface Feature {
  readonly name: string;
  readonly ifcond?: IfCond | undefined;
}

/** A reference to a type: a name, or an array of a named type (`['T']`). */
export interface TypeRef {
  readonly name: string;
  readonly array: boolean;
}

/** Version knowledge and documentation shared by definitions and members. */
export interface Versioned {
  /** `Since: X.Y` / `(since X.Y)`: the first QEMU release that has it. */
  readonly since?: string | undefined;
  /** `Removed: X.Y` / `(removed in X.Y)`: the first QEMU release that no longer has it. */
  readonly removed?: string | undefined;
  /** Documentation text (member description or definition body). */
  readonly doc?: string | undefined;
}

/** A member of an object type (struct, union base, command arguments, event data). */
export interface Member extends Versioned {
  readonly name: string;
  /** Whether the member may be left out (`*name`), in the newest release that has it. */
  readonly optional: boolean;
  /**
   * `(optional since X.Y)`: the member is optional from X.Y and was mandatory before (QEMU's
   * `migrate` made `uri` optional when `channels` arrived). Only on optional members.
   */
  readonly optionalSince?: string | undefined;
  readonly type: TypeRef;
  readonly ifcond?: IfCond | undefined;
  readonly features: readonly Feature[];
}

/** A value of an enum. */
export interface EnumValue extends Versioned {
  readonly name: string;
  readonly ifcond?: IfCond | undefined;
  readonly features: readonly Feature[];
}

/** A union branch or alternate branch. */
export interface Branch extends Versioned {
  readonly name: string;
  readonly type: TypeRef;
  readonly ifcond?: IfCond | undefined;
}

/** What every definition carries. */
export interface DefinitionBase extends Versioned {
  readonly name: string;
  readonly info: SourceInfo;
  readonly ifcond?: IfCond | undefined;
  readonly features: readonly Feature[];
  /** Other tagged doc sections (`Returns`, `Errors`, `Note`, `Example`, …) as written. */
  readonly sections?: readonly { readonly tag: string; readonly text: string }[] | undefined;
  /** Whether the compiler made this type up (command arguments, union bases, simple-union kinds). */
  readonly implicit?: boolean | undefined;
  /**
   * `Shape-of: NAME`: this type is another shape of type NAME. In every release it is present in
   * (its Since/Removed, which no other shape of NAME shares) it stands in NAME's place: the
   * release's model calls it NAME, so references to NAME reach it. Nothing refers to it by its
   * own name. How QEMU's `BlockJobInfo` of before 8.2 (a struct) is kept beside the union it
   * became.
   */
  readonly shapeOf?: string | undefined;
}

export interface EnumDef extends DefinitionBase {
  readonly kind: "enum";
  readonly values: readonly EnumValue[];
  readonly prefix?: string | undefined;
}

/** A struct, or an implicit object type. `members` are its own, without the base's. */
export interface StructDef extends DefinitionBase {
  readonly kind: "struct";
  readonly base?: string | undefined;
  readonly members: readonly Member[];
}

/**
 * A union: `base` (a struct name, possibly implicit) holds the common members, including the
 * discriminator `tag`; each branch names an object type whose members are added for that tag
 * value. A simple (legacy) union has an implicit base `{ type: XKind }` and wrapper branches.
 */
export interface UnionDef extends DefinitionBase {
  readonly kind: "union";
  readonly base: string;
  readonly discriminator: string;
  readonly branches: readonly Branch[];
  readonly simple: boolean;
}

export interface AlternateDef extends DefinitionBase {
  readonly kind: "alternate";
  readonly branches: readonly Branch[];
}

export interface CommandDef extends DefinitionBase {
  readonly kind: "command";
  /** The argument type (an object type name, often implicit `q_obj_NAME-arg`), or none. */
  readonly args?: string | undefined;
  readonly boxed: boolean;
  readonly returns?: TypeRef | undefined;
  readonly gen: boolean;
  readonly successResponse: boolean;
  readonly allowOob: boolean;
  readonly allowPreconfig: boolean;
  readonly coroutine: boolean;
}

export interface EventDef extends DefinitionBase {
  readonly kind: "event";
  readonly data?: string | undefined;
  readonly boxed: boolean;
}

/** A built-in type (`str`, `int`, …, `any`). */
export interface BuiltinDef extends DefinitionBase {
  readonly kind: "builtin";
  /** The JSON type in introspection: `string`, `int`, `number`, `boolean`, `null`, `value`. */
  readonly jsonType: "string" | "int" | "number" | "boolean" | "null" | "value";
}

export type Definition =
  | EnumDef
  | StructDef
  | UnionDef
  | AlternateDef
  | CommandDef
  | EventDef
  | BuiltinDef;
export type TypeDef = EnumDef | StructDef | UnionDef | AlternateDef | BuiltinDef;

/** A checked schema: every definition by name, in definition order (builtins first). */
export interface SchemaModel {
  readonly definitions: readonly Definition[];
  /**
   * The schema's files in the order QEMU makes them modules (the main file, then each file when
   * it is first included). Introspection visits commands and events module by module.
   */
  readonly files?: readonly string[] | undefined;
}

/** Built-in type names and their introspection JSON types (schema.py `_def_predefineds`). */
export const builtinJsonTypes: Readonly<Record<string, BuiltinDef["jsonType"]>> = {
  str: "string",
  number: "number",
  int: "int",
  int8: "int",
  int16: "int",
  int32: "int",
  int64: "int",
  uint8: "int",
  uint16: "int",
  uint32: "int",
  uint64: "int",
  size: "int",
  bool: "boolean",
  null: "null",
  any: "value",
};

/** The values of the built-in enum `QType`. */
export const qtypeValues = ["none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool"] as const;

/** Integer ranges of the sized built-ins, and QEMU's name for them in range errors. */
export const integerRanges: Readonly<Record<string, { min: bigint; max: bigint; cName: string }>> =
  {
    int8: { min: -(2n ** 7n), max: 2n ** 7n - 1n, cName: "int8_t" },
    int16: { min: -(2n ** 15n), max: 2n ** 15n - 1n, cName: "int16_t" },
    int32: { min: -(2n ** 31n), max: 2n ** 31n - 1n, cName: "int32_t" },
    uint8: { min: 0n, max: 2n ** 8n - 1n, cName: "uint8_t" },
    uint16: { min: 0n, max: 2n ** 16n - 1n, cName: "uint16_t" },
    uint32: { min: 0n, max: 2n ** 32n - 1n, cName: "uint32_t" },
  };

/** The empty object type every argument-less command and data-less event uses. */
export const emptyObjectName = "q_empty";

/**
 * The JSON category of a value, as QEMU's QType tells them apart (`qnum` covers integers and
 * floats): what picks an alternate's branch. `qtypeOf` (runtime.ts) gives a value's category.
 */
export type JsonCategory = "string" | "number" | "boolean" | "null" | "object" | "array";

const everyCategory: readonly JsonCategory[] = [
  "string",
  "number",
  "boolean",
  "null",
  "object",
  "array",
];

/**
 * The JSON categories a value of type `t` (a list of `t` when `array`) can have: the branch
 * slots it takes in an alternate (schema.py `QAPISchemaAlternateType.check`, and the
 * `switch (qobject_type(obj))` of the visitor QEMU generates for an alternate). An alternate
 * takes none: QEMU forbids an alternate as an alternate's branch.
 */
export function jsonCategories(t: Definition, array: boolean): readonly JsonCategory[] {
  if (array) return ["array"];
  switch (t.kind) {
    case "builtin":
      switch (t.jsonType) {
        case "int":
          return ["number"];
        case "value":
          return everyCategory;
        default:
          return [t.jsonType];
      }
    case "enum":
      return ["string"];
    case "struct":
    case "union":
      return ["object"];
    default:
      return [];
  }
}

/** Whether condition `cond` holds when `defined(symbol)` says which config symbols are set. */
export function evaluateIf(
  cond: IfCond | undefined,
  defined: (symbol: string) => boolean,
): boolean {
  if (cond === undefined) return true;
  if (typeof cond === "string") return defined(cond);
  if ("all" in cond) return cond.all.every((c) => evaluateIf(c, defined));
  if ("any" in cond) return cond.any.some((c) => evaluateIf(c, defined));
  return !evaluateIf(cond.not, defined);
}

/** Look definitions up by name. */
export class SchemaIndex {
  private readonly byName = new Map<string, Definition>();
  constructor(readonly model: SchemaModel) {
    for (const d of model.definitions) this.byName.set(d.name, d);
  }
  get(name: string): Definition | undefined {
    return this.byName.get(name);
  }
  /** The type named `name`; throws when it is not a type (the model was checked). */
  type(name: string): TypeDef {
    const d = this.byName.get(name);
    if (d === undefined || d.kind === "command" || d.kind === "event") {
      throw new Error(`internal: '${name}' is not a type in the model`);
    }
    return d;
  }
  /** All members of an object type in QEMU's order: base members first, then its own. */
  objectMembers(name: string): Member[] {
    const d = this.type(name);
    if (d.kind === "struct") return [...(d.base ? this.objectMembers(d.base) : []), ...d.members];
    if (d.kind === "union") return this.objectMembers(d.base);
    return [];
  }
  /** Whether `name` is an object type (struct or union). */
  isObject(name: string): boolean {
    const d = this.byName.get(name);
    return d?.kind === "struct" || d?.kind === "union";
  }
}
