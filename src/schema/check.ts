/**
 * The checker: parsed expressions to a checked {@link SchemaModel} (QEMU's `scripts/qapi/expr.py`
 * structural checks and `schema.py` semantic checks, restated).
 *
 * Every problem is a `SchemaError` at the definition's `file:line:col` whose message names the
 * definition and says exactly what is wrong, e.g.
 * `qapi/run-state.json:12:1: struct 'StatusInfo': member 'status' uses unknown type 'RunStat'`.
 *
 * Naming and documentation rules changed over QEMU's history, and the checker follows the age
 * of the schema it reads, so that any QEMU tree from 2.x to 10.x checks:
 *
 * - the naming rules of QEMU 6.0+ (lowercase members with `-`, CamelCase types, ALL_CAPS events,
 *   reserved `q_`/`has_`/`u`, no inline `returns`, no list-form `if`) apply unless the schema
 *   predates the `*-name-exceptions` pragmas;
 * - member documentation, and QEMU 10's newer rules (`Returns` only on commands that return,
 *   no conditional arguments without `boxed`, `=` headings first), apply to schemas with the
 *   `documentation-exceptions` pragma (QEMU 9.0+) or when `memberDocs: "require"` asks.
 *
 * Tested against QEMU's own `tests/qapi-schema` cases of 7.2 and 10.0 (`qemu-tree.test.ts`).
 *
 * @module
 */
import type { DocBlock } from "./doc.js";
import {
  docRemoved,
  docShapeOf,
  docSince,
  textOptionalSince,
  textRemoved,
  textSince,
} from "./doc.js";
import {
  type AlternateDef,
  type Branch,
  type BuiltinDef,
  builtinJsonTypes,
  type CommandDef,
  type Definition,
  type EnumValue,
  type EventDef,
  emptyObjectName,
  type Feature,
  type IfCond,
  type Member,
  type SchemaModel,
  type StructDef,
  jsonCategories,
  qtypeValues,
  type TypeRef,
  type UnionDef,
} from "./model.js";
import type { ParsedExpr, ParsedSchema, QapiObject, QapiValue } from "./parser.js";
import { compareQemuVersions, parseQemuVersion, versionAtLeast } from "./qemu-version.js";
import { type SourceInfo, schemaError } from "./source.js";

/** Options for {@link buildModel}. */
export interface CheckOptions {
  /**
   * `strict`: QEMU's current naming rules (lowercase members with `-`, CamelCase types,
   * ALL_CAPS events). `legacy`: only the basic name syntax (QEMU before 6.0).
   * Default `auto`: legacy when the schema uses the old pragma names.
   */
  readonly naming?: "auto" | "strict" | "legacy" | undefined;
  /**
   * `require`: with `doc-required`, every member, value and branch must be documented, and
   * QEMU 10's newer rules apply (see the module doc). Default `auto`: so when the schema uses
   * the `documentation-exceptions` pragma (QEMU 9.0+). `ignore`: neither.
   */
  readonly memberDocs?: "auto" | "require" | "ignore" | undefined;
  /**
   * The QEMU release whose schema this is, when it is QEMU's own (`qemu-tree.test.ts` passes the
   * tree's `VERSION`). It picks the rule for indented continuation lines in doc comments, which
   * QEMU changed in 10.0. Default: today's rule.
   */
  readonly qemuVersion?: string | undefined;
}

const metaKeys = ["enum", "struct", "union", "alternate", "command", "event"] as const;
type Meta = (typeof metaKeys)[number];

const allowedKeys: Record<Meta, readonly string[]> = {
  enum: ["enum", "data", "prefix", "if", "features"],
  struct: ["struct", "data", "base", "if", "features"],
  union: ["union", "base", "discriminator", "data", "if", "features"],
  alternate: ["alternate", "data", "if", "features"],
  command: [
    "command",
    "data",
    "returns",
    "boxed",
    "if",
    "features",
    "gen",
    "success-response",
    "allow-oob",
    "allow-preconfig",
    "coroutine",
  ],
  event: ["event", "data", "boxed", "if", "features"],
};

/** expr.py `valid_name`: an optional `__vendor_` prefix, an optional `x-`, then a letter first. */
const validName = /^(__[a-zA-Z0-9.-]+_)?(x-)?([a-zA-Z][a-zA-Z0-9_-]*)$/;

/** Check parsed expressions and build the model. @throws SchemaError on the first problem. */
export function buildModel(parsed: ParsedSchema, options: CheckOptions = {}): SchemaModel {
  return new Checker(parsed, options).run();
}

/** What every `defineXxx` of the checker gets: one expression, its name and common fields. */
interface DefineContext {
  readonly expr: QapiObject;
  /** `struct 'Name'`: how error messages name the definition. */
  readonly what: string;
  readonly name: string;
  /** The fields every definition has: name, info, features, `if`, version marks, docs. */
  readonly common: Omit<StructDef, "kind" | "members" | "base">;
  readonly info: SourceInfo;
  readonly doc: DocBlock | undefined;
}

class Checker {
  private readonly defs: Definition[] = [];
  private readonly byName = new Map<string, Definition>();
  private readonly strictNames: boolean;
  private readonly requireMemberDocs: boolean;
  /** Which rule continuation lines of doc comments follow (none before QEMU 5.2). */
  private readonly indentRule: "legacy" | "modern" | undefined;
  /** QEMU 9.0+ rules (trees with `documentation-exceptions`, or strict documentation). */
  private readonly modernRules: boolean;

  constructor(
    private readonly parsed: ParsedSchema,
    options: CheckOptions,
  ) {
    const legacy = sawLegacyPragmas(parsed);
    this.strictNames =
      options.naming === "strict" || ((options.naming ?? "auto") === "auto" && !legacy);
    const docs = options.memberDocs ?? "auto";
    // A tree's VERSION may carry a suffix (`9.2.50`, `10.0.0-rc1`): its release is X.Y.
    const release = /^(\d+)\.(\d+)/.exec(options.qemuVersion ?? "");
    const version = release
      ? { major: Number(release[1]), minor: Number(release[2]), micro: 0 }
      : undefined;
    this.indentRule = !this.strictNames
      ? undefined
      : version === undefined || versionAtLeast(version, 10, 0)
        ? "modern"
        : versionAtLeast(version, 5, 2)
          ? "legacy"
          : undefined;
    this.modernRules =
      docs === "require" || (docs === "auto" && parsed.pragmas.sawDocumentationExceptions);
    this.requireMemberDocs =
      parsed.pragmas.docRequired &&
      (docs === "require" || (docs === "auto" && parsed.pragmas.sawDocumentationExceptions));
  }

  run(): SchemaModel {
    this.predefine();
    const featureNames = new Set(["deprecated", "unstable"]);
    for (const e of this.parsed.exprs) {
      this.define(e);
      // QEMU 10 keeps schema features in a 64-bit mask: the two special ones and 62 others.
      for (const f of [...featureNamesOf(e.expr.features), ...innerFeatures(e.expr)])
        featureNames.add(f);
      if (featureNames.size > 64)
        throw schemaError("Maximum of 64 schema features is permitted", e.info);
      this.checkModernRules(e);
    }
    for (const d of this.defs) this.checkSemantics(d);
    this.checkHistory();
    if (this.modernRules) {
      for (const doc of this.parsed.freeDocs) {
        if (doc.lateHeadingLine !== undefined) {
          throw schemaError("'=' heading must come first in a comment block", {
            ...doc.info,
            line: doc.lateHeadingLine,
            column: 1,
          });
        }
      }
    }
    return { definitions: this.defs, files: this.parsed.files };
  }

  /** Rules QEMU added in 9.x/10.x, checked for schemas that follow today's rules. */
  private checkModernRules(e: ParsedExpr): void {
    if (!this.modernRules) return;
    const { expr, info, doc } = e;
    const meta = "command" in expr ? "command" : "event" in expr ? "event" : undefined;
    if (meta === undefined) return;
    const what = `${meta} '${String(expr[meta])}'`;
    if (
      meta === "command" &&
      expr.returns === undefined &&
      doc?.sections.some((x) => x.tag === "Returns")
    ) {
      throw schemaError(`${what}: 'Returns' section, but command doesn't return anything`, info);
    }
    // Implicit argument types cannot be conditional member by member in the generated C.
    if (isObject(expr.data) && expr.boxed !== true) {
      for (const v of Object.values(expr.data)) {
        if (isObject(v) && v.if !== undefined) {
          throw schemaError(
            meta === "command"
              ? `${what}: conditional command arguments require 'boxed': true`
              : `${what}: event's 'data' members may have 'if' conditions only with 'boxed': true`,
            info,
          );
        }
      }
    }
  }

  private add(def: Definition, info: SourceInfo): void {
    const prior = this.byName.get(def.name);
    if (prior) {
      const where =
        prior.info.file === "<builtin>"
          ? "a built-in type"
          : `${prior.info.file}:${prior.info.line}`;
      throw schemaError(`${describe(def)} is already defined (${where})`, info);
    }
    this.byName.set(def.name, def);
    this.defs.push(def);
  }

  private predefine(): void {
    const info: SourceInfo = { file: "<builtin>", line: 0, column: 0, includedFrom: [] };
    for (const [name, jsonType] of Object.entries(builtinJsonTypes)) {
      const def: BuiltinDef = { kind: "builtin", name, info, features: [], jsonType };
      this.add(def, info);
    }
    this.add(
      {
        kind: "enum",
        name: "QType",
        info,
        features: [],
        prefix: "QTYPE",
        values: qtypeValues.map((name) => ({ name, features: [] })),
      },
      info,
    );
    this.add(
      { kind: "struct", name: emptyObjectName, info, features: [], members: [], implicit: true },
      info,
    );
  }

  // ---- structural checks (expr.py) -------------------------------------------------------

  private define(e: ParsedExpr): void {
    const { expr, info, doc } = e;
    const { meta, name } = definitionKeyword(expr, info);
    const what = `${meta} '${name}'`;
    checkKeys(expr, meta, what, info);
    this.checkDefinitionName(meta, name, info);
    this.checkDoc(what, name, doc, info);
    checkFlags(expr, what, info);
    if (doc?.sections.some((x) => x.tag === "Returns") && meta !== "command") {
      throw schemaError(`${what}: 'Returns:' is only valid for commands`, info);
    }
    const ifcond = parseIf(expr.if, what, info, this.strictNames);
    const features = parseFeatures(expr.features, what, info, this.strictNames);
    checkFeatureDocs(expr, features, what, doc, info);
    // schema.py: the special features mean something for commands, events and members only.
    const special = features.find((f) => f.name === "deprecated" || f.name === "unstable");
    if (special && meta !== "command" && meta !== "event") {
      throw schemaError(`${what}: feature '${special.name}' is not supported for types`, info);
    }
    const common = {
      name,
      info,
      features,
      ...(ifcond !== undefined ? { ifcond } : {}),
      ...versionOf(doc),
    };
    this.definers[meta]({ expr, what, name, common, info, doc });
  }

  /** The structural check and model building of each definition keyword. */
  private readonly definers: Record<Meta, (c: DefineContext) => void> = {
    enum: (c) => this.defineEnum(c),
    struct: (c) => this.defineStruct(c),
    union: (c) => this.defineUnion(c),
    alternate: (c) => this.defineAlternate(c),
    command: (c) => this.defineCommand(c),
    event: (c) => this.defineEvent(c),
  };

  /** expr.py `check_enum`: the values, their names, documentation and features. */
  private defineEnum(c: DefineContext): void {
    const { expr, what, name, common, info, doc } = c;
    const data = expr.data;
    if (!Array.isArray(data)) throw schemaError(`${what}: 'data' must be an array of names`, info);
    const prefix = expr.prefix;
    if (prefix !== undefined && typeof prefix !== "string") {
      throw schemaError(`${what}: 'prefix' must be a string`, info);
    }
    const values: EnumValue[] = data.map((v) => {
      const m = normalizeNamed(v, `${what} value`, info, ["name", "if", "features"]);
      this.checkMemberName(m.name, `value '${m.name}' of ${what}`, name, info, true);
      return withDocs(
        {
          name: m.name,
          features: parseFeatures(m.features, what, info, this.strictNames),
          ...ifOf(m.if, what, info, this.strictNames),
        },
        memberDoc(doc, m.name),
      );
    });
    dupCheck(
      values.map((v) => v.name),
      (n) => `${what} has duplicate value '${n}'`,
      info,
    );
    clashCheckNames(
      values.map((v) => v.name),
      "value",
      what,
      info,
    );
    this.docMembers(
      what,
      name,
      doc,
      values.map((v) => v.name),
      info,
    );
    this.add(
      { kind: "enum", ...common, values, ...(prefix !== undefined ? { prefix } : {}) },
      info,
    );
  }

  /** expr.py `check_struct`: the base and the members. */
  private defineStruct(c: DefineContext): void {
    const { expr, what, name, common, info, doc } = c;
    const base = expr.base;
    if (base !== undefined && typeof base !== "string") {
      throw schemaError(`${what}: 'base' must be a type name`, info);
    }
    const members = this.members(expr.data, what, name, info, doc);
    this.docMembers(
      what,
      name,
      doc,
      members.map((m) => m.name),
      info,
    );
    this.add({ kind: "struct", ...common, members, ...(base !== undefined ? { base } : {}) }, info);
  }

  /** expr.py `check_alternate`: at least one branch, each a named type. */
  private defineAlternate(c: DefineContext): void {
    const { expr, what, name, common, info, doc } = c;
    const data = expr.data;
    if (!isObject(data) || Object.keys(data).length === 0) {
      throw schemaError(`${what}: 'data' must be an object with at least one branch`, info);
    }
    const branches: Branch[] = Object.entries(data).map(([b, v]) => {
      this.checkMemberName(b, `branch '${b}' of ${what}`, name, info, false);
      const t = normalizeTyped(v, `branch '${b}' of ${what}`, info, ["type", "if"]);
      return withDocs(
        { name: b, type: t.type, ...ifOf(t.if, what, info, this.strictNames) },
        memberDoc(doc, b),
      );
    });
    clashCheckNames(
      branches.map((b) => b.name),
      "branch",
      what,
      info,
    );
    this.docMembers(
      what,
      name,
      doc,
      branches.map((b) => b.name),
      info,
    );
    this.add({ kind: "alternate", ...common, branches }, info);
  }

  /** expr.py `check_command`: arguments, reply and the command's flags. */
  private defineCommand(c: DefineContext): void {
    const { expr, what, name, common, info, doc } = c;
    const boxed = boolKey(expr, "boxed", what, info, false);
    const args = this.argsType(expr.data, what, name, info, doc, boxed, expr.if);
    let returns: TypeRef | undefined;
    if (expr.returns !== undefined) {
      if (isObject(expr.returns)) {
        // Very old schemas spelled an anonymous return object inline.
        if (this.strictNames) throw schemaError(`${what}: 'returns' should be a type name`, info);
        const members = this.members(expr.returns, what, name, info, undefined);
        const retName = `q_obj_${name}-ret`;
        this.add(
          {
            kind: "struct",
            name: retName,
            info,
            features: [],
            members,
            implicit: true,
            ...ifOf(expr.if, what, info, this.strictNames),
          },
          info,
        );
        returns = { name: retName, array: false };
      } else returns = typeRef(expr.returns, `'returns' of ${what}`, info);
    }
    this.add(
      {
        kind: "command",
        ...common,
        ...(args !== undefined ? { args } : {}),
        boxed,
        ...(returns !== undefined ? { returns } : {}),
        gen: boolKey(expr, "gen", what, info, true),
        successResponse: boolKey(expr, "success-response", what, info, true),
        allowOob: boolKey(expr, "allow-oob", what, info, false),
        allowPreconfig: boolKey(expr, "allow-preconfig", what, info, false),
        coroutine: boolKey(expr, "coroutine", what, info, false),
      },
      info,
    );
  }

  /** expr.py `check_event`: the data and `boxed`. */
  private defineEvent(c: DefineContext): void {
    const { expr, what, name, common, info, doc } = c;
    const boxed = boolKey(expr, "boxed", what, info, false);
    const data = this.argsType(expr.data, what, name, info, doc, boxed, expr.if);
    this.add({ kind: "event", ...common, ...(data !== undefined ? { data } : {}), boxed }, info);
  }

  /** expr.py `check_union`: a flat union (base and discriminator) or a legacy simple one. */
  private defineUnion(c: DefineContext): void {
    const { expr, what, info } = c;
    const data = expr.data;
    if (!isObject(data)) throw schemaError(`${what}: 'data' must be an object of branches`, info);
    if (expr.discriminator === undefined) this.defineSimpleUnion(c, data);
    else this.defineFlatUnion(c, data);
  }

  /**
   * A simple (legacy) union: an implicit enum NAMEKind, tag member `type`, and each branch
   * wrapped in an implicit object `{ data: T }` (schema.py `_make_simple_variant`).
   */
  private defineSimpleUnion(c: DefineContext, data: QapiObject): void {
    const { expr, what, name, common, info, doc } = c;
    if (expr.base !== undefined)
      throw schemaError(`${what}: 'base' requires 'discriminator'`, info);
    const kindName = `${name}Kind`;
    const branches: Branch[] = [];
    const values: EnumValue[] = [];
    for (const [b, v] of Object.entries(data)) {
      this.checkMemberName(b, `branch '${b}' of ${what}`, name, info, false);
      const t = normalizeTyped(v, `branch '${b}' of ${what}`, info, ["type", "if"]);
      const ifc = ifOf(t.if, what, info, this.strictNames);
      values.push({ name: b, features: [], ...ifc });
      const wrapper = `q_obj_${t.type.array ? `${t.type.name}List` : t.type.name}-wrapper`;
      if (!this.byName.has(wrapper)) {
        this.add(
          {
            kind: "struct",
            name: wrapper,
            info,
            features: [],
            members: [{ name: "data", optional: false, type: t.type, features: [] }],
            implicit: true,
          },
          info,
        );
      }
      branches.push(
        withDocs({ name: b, type: { name: wrapper, array: false }, ...ifc }, memberDoc(doc, b)),
      );
    }
    this.add({ kind: "enum", name: kindName, info, features: [], values, implicit: true }, info);
    const baseName = `q_obj_${name}-base`;
    this.add(
      {
        kind: "struct",
        name: baseName,
        info,
        features: [],
        members: [
          { name: "type", optional: false, type: { name: kindName, array: false }, features: [] },
        ],
        implicit: true,
      },
      info,
    );
    // Old schemas document the implicit tag member `type` too.
    this.docMembers(what, name, doc, Object.keys(data), info, ["type"]);
    this.add(
      { kind: "union", ...common, base: baseName, discriminator: "type", branches, simple: true },
      info,
    );
  }

  /** A flat union: a base (a struct, or inline members) whose enum member picks the branch. */
  private defineFlatUnion(c: DefineContext, data: QapiObject): void {
    const { expr, what, name, common, info, doc } = c;
    const discriminator = expr.discriminator;
    if (typeof discriminator !== "string")
      throw schemaError(`${what}: 'discriminator' must be a string`, info);
    let base: string;
    const docNames: string[] = [];
    if (isObject(expr.base)) {
      const members = this.members(expr.base, what, name, info, doc);
      base = `q_obj_${name}-base`;
      // An implicit type has its definition's condition (schema.py `_make_implicit_object_type`).
      this.add(
        {
          kind: "struct",
          name: base,
          info,
          features: [],
          members,
          implicit: true,
          ...ifOf(expr.if, what, info, this.strictNames),
        },
        info,
      );
      docNames.push(...members.map((m) => m.name));
    } else if (typeof expr.base === "string") base = expr.base;
    else
      throw schemaError(
        `${what}: 'base' is required (a struct name or an inline object of members)`,
        info,
      );
    const branches: Branch[] = Object.entries(data).map(([b, v]) => {
      const t = normalizeTyped(v, `branch '${b}' of ${what}`, info, ["type", "if"]);
      if (t.type.array) throw schemaError(`${what}: branch '${b}' cannot be an array`, info);
      return withDocs(
        { name: b, type: t.type, ...ifOf(t.if, what, info, this.strictNames) },
        memberDoc(doc, b),
      );
    });
    this.docMembers(what, name, doc, docNames, info, Object.keys(data));
    this.add({ kind: "union", ...common, base, discriminator, branches, simple: false }, info);
  }

  /** Command arguments / event data: none, a type name, or inline members (an implicit type). */
  private argsType(
    data: QapiValue | undefined,
    what: string,
    name: string,
    info: SourceInfo,
    doc: DocBlock | undefined,
    boxed: boolean,
    ifcond: QapiValue | undefined,
  ): string | undefined {
    if (data === undefined) {
      if (boxed) throw schemaError(`${what}: 'boxed': true requires 'data'`, info);
      this.docMembers(what, name, doc, [], info);
      return undefined;
    }
    if (typeof data === "string") {
      this.docMembers(what, name, doc, [], info, undefined, true);
      return data;
    }
    if (boxed) throw schemaError(`${what}: 'boxed': true requires 'data' to be a type name`, info);
    const members = this.members(data, what, name, info, doc);
    this.docMembers(
      what,
      name,
      doc,
      members.map((m) => m.name),
      info,
    );
    const argName = `q_obj_${name}-arg`;
    this.add(
      {
        kind: "struct",
        name: argName,
        info,
        features: [],
        members,
        implicit: true,
        ...ifOf(ifcond, what, info, this.strictNames),
      },
      info,
    );
    return argName;
  }

  private members(
    data: QapiValue | undefined,
    what: string,
    owner: string,
    info: SourceInfo,
    doc: DocBlock | undefined,
  ): Member[] {
    if (data === undefined) return [];
    if (!isObject(data)) throw schemaError(`${what}: 'data' must be an object of members`, info);
    const out: Member[] = [];
    for (const [key, v] of Object.entries(data)) {
      const optional = key.startsWith("*");
      const name = optional ? key.slice(1) : key;
      this.checkMemberName(name, `member '${name}' of ${what}`, owner, info, false);
      const t = normalizeTyped(v, `member '${name}' of ${what}`, info, ["type", "if", "features"]);
      const m: Member = withDocs(
        {
          name,
          optional,
          type: t.type,
          features: parseFeatures(t.features, what, info, this.strictNames),
          ...ifOf(t.if, what, info, this.strictNames),
        },
        doc?.members.find((x) => x.name === name)?.text,
      );
      out.push(m);
    }
    dupCheck(
      out.map((m) => cName(m.name)),
      (n) => `${what} has two members named '${n}'`,
      info,
    );
    return out;
  }

  private checkDefinitionName(meta: Meta, name: string, info: SourceInfo): void {
    const what = `${meta} '${name}'`;
    if (!validName.test(name)) throw schemaError(`${what}: '${name}' is not a valid name`, info);
    if (name.startsWith("q_") || name.startsWith("q-"))
      throw schemaError(`${what}: names starting with 'q_' are reserved`, info);
    // `FooList` is the name QEMU gives the array type of `Foo` (schema.py `_make_array_type`).
    if (meta !== "event" && meta !== "command" && name.endsWith("List")) {
      throw schemaError(`${what}: type names must not end in 'List'`, info);
    }
    if (!this.strictNames) return;
    const bare = name.replace(/^__[a-zA-Z0-9.-]+_/, "").replace(/^x-/i, "");
    if (meta === "event") {
      if (/[a-z-]/.test(bare))
        throw schemaError(`${what}: event names must be ALL_CAPS with '_'`, info);
    } else if (meta === "command") {
      const exempt = this.parsed.pragmas.commandNameExceptions.has(name);
      if (!exempt && /[A-Z_]/.test(bare)) {
        throw schemaError(
          `${what}: command names must be lowercase with '-' (or listed in pragma 'command-name-exceptions')`,
          info,
        );
      }
    } else if (!/^[A-Z]/.test(bare) || bare.includes("_")) {
      throw schemaError(`${what}: type names must be CamelCase`, info);
    }
  }

  private checkMemberName(
    name: string,
    what: string,
    owner: string,
    info: SourceInfo,
    isEnumValue: boolean,
  ): void {
    const valid = isEnumValue
      ? /^(__[a-zA-Z0-9.-]+_)?(x-)?([a-zA-Z0-9][a-zA-Z0-9_.-]*)$/
      : validName;
    if (!valid.test(name)) throw schemaError(`${what}: '${name}' is not a valid name`, info);
    // expr.py reserves these for object members only (they would clash in the generated C).
    if (
      !isEnumValue &&
      (cName(name).startsWith("q_") || name === "u" || cName(name).startsWith("has_"))
    ) {
      if (!this.strictNames) return;
      throw schemaError(`${what}: '${name}' is a reserved name`, info);
    }
    if (!this.strictNames || this.parsed.pragmas.memberNameExceptions.has(owner)) return;
    if (/[A-Z]/.test(name))
      throw schemaError(
        `${what}: names must be lowercase (or the type listed in pragma 'member-name-exceptions')`,
        info,
      );
    if (name.includes("_") && !/^__/.test(name)) {
      throw schemaError(
        `${what}: names must use '-', not '_' (or the type listed in pragma 'member-name-exceptions')`,
        info,
      );
    }
  }

  private checkDoc(what: string, name: string, doc: DocBlock | undefined, info: SourceInfo): void {
    // Continuation lines of member descriptions: QEMU 5.2-9.x and QEMU 10 differ.
    const bad = doc?.deindent?.find((d) => d.rule === this.indentRule);
    if (doc !== undefined && bad !== undefined) {
      throw schemaError(`unexpected de-indent (expected at least ${bad.expected} spaces)`, {
        ...doc.info,
        line: bad.line,
        column: 1,
      });
    }
    if (doc === undefined) {
      if (this.parsed.pragmas.docRequired)
        throw schemaError(`${what}: documentation comment required ('doc-required' pragma)`, info);
      return;
    }
    if (doc.symbol !== name) {
      throw schemaError(`${what} follows documentation for '${doc.symbol ?? ""}'`, info);
    }
  }

  /** Documented names must exist; with member docs required, every name must be documented. */
  private docMembers(
    what: string,
    name: string,
    doc: DocBlock | undefined,
    names: readonly string[],
    info: SourceInfo,
    extra: readonly string[] = [],
    skipUndocumented = false,
  ): void {
    if (doc === undefined) return;
    const known = new Set([...names, ...extra]);
    for (const item of doc.members) {
      if (!known.has(item.name)) {
        throw schemaError(`${what}: documented member '${item.name}' does not exist`, {
          ...doc.info,
          line: item.line,
          column: 1,
        });
      }
    }
    if (
      !this.requireMemberDocs ||
      skipUndocumented ||
      this.parsed.pragmas.documentationExceptions.has(name)
    )
      return;
    for (const n of names) {
      if (!doc.members.some((x) => x.name === n))
        throw schemaError(`${what}: member '${n}' lacks documentation`, info);
    }
  }

  // ---- semantic checks (schema.py) -------------------------------------------------------

  private lookupType(ref: TypeRef, what: string, info: SourceInfo): Definition {
    const d = this.byName.get(ref.name);
    if (d === undefined) throw schemaError(`${what} uses unknown type '${ref.name}'`, info);
    if (d.kind === "command" || d.kind === "event") {
      throw schemaError(`${what} uses '${ref.name}', which is a ${d.kind}, not a type`, info);
    }
    return d;
  }

  /** qmpkit's history marks beyond Since/Removed (doc.ts). */
  private checkHistory(): void {
    this.checkOptionalSince();
    this.checkShapes();
  }

  /** `(optional since X.Y)` only on optional members. */
  private checkOptionalSince(): void {
    for (const d of this.defs) {
      if (d.kind !== "struct") continue;
      for (const m of d.members) {
        if (m.optionalSince !== undefined && !m.optional) {
          throw schemaError(
            `${describe(d)}: member '${m.name}' says '(optional since ${m.optionalSince})' but is not optional (write '*${m.name}')`,
            d.info,
          );
        }
      }
    }
  }

  /**
   * `Shape-of: NAME` only between types, NAME not itself a shape, never referred to by its own
   * name, and no two shapes of NAME (NAME included) present in the same release.
   */
  private checkShapes(): void {
    const shapes = this.defs.filter((d) => d.shapeOf !== undefined);
    if (shapes.length === 0) return;
    const isType = (d: Definition) =>
      d.kind === "struct" || d.kind === "union" || d.kind === "alternate" || d.kind === "enum";
    const referenced = new Set<string>();
    const ref = (name: string | undefined) => {
      if (name !== undefined) referenced.add(name);
    };
    for (const d of this.defs) {
      switch (d.kind) {
        case "struct":
          ref(d.base);
          for (const m of d.members) ref(m.type.name);
          break;
        case "union":
          ref(d.base);
          for (const b of d.branches) ref(b.type.name);
          break;
        case "alternate":
          for (const b of d.branches) ref(b.type.name);
          break;
        case "command":
          ref(d.args);
          ref(d.returns?.name);
          break;
        case "event":
          ref(d.data);
          break;
      }
    }
    for (const d of shapes) {
      const what = describe(d);
      const target = this.byName.get(d.shapeOf!);
      if (target === undefined)
        throw schemaError(`${what}: 'Shape-of' names unknown definition '${d.shapeOf}'`, d.info);
      if (!isType(d) || !isType(target))
        throw schemaError(
          `${what}: 'Shape-of' relates types only, not ${describe(target)}`,
          d.info,
        );
      if (target.shapeOf !== undefined)
        throw schemaError(`${what}: 'Shape-of' names ${describe(target)}, itself a shape`, d.info);
      if (referenced.has(d.name))
        throw schemaError(
          `${what}: a shape is not referred to by its own name: refer to '${target.name}'`,
          d.info,
        );
      // The releases of each shape of the target, the target included, must not meet.
      for (const other of [target, ...shapes.filter((s) => s.shapeOf === target.name)]) {
        if (other === d || !rangesMeet(d, other)) continue;
        throw schemaError(
          `${what}: present in the same releases as ${describe(other)}, and both are '${target.name}' there (give them Since/Removed that do not overlap)`,
          d.info,
        );
      }
    }
  }

  /** The checks that need every definition (schema.py `check()`), one per kind. */
  private checkSemantics(d: Definition): void {
    const what = describe(d);
    const info = d.info;
    switch (d.kind) {
      case "builtin":
      case "enum":
        return;
      case "struct":
        this.checkStruct(d, what, info);
        break;
      case "union":
        this.checkUnion(d, what, info);
        break;
      case "alternate":
        this.checkAlternate(d, what, info);
        break;
      case "command":
        this.checkCommand(d, what, info);
        break;
      case "event":
        this.checkEvent(d, what, info);
        break;
    }
  }

  /** schema.py `QAPISchemaObjectType.check`: member types exist, the base is a struct without a loop, no member names clash. */
  private checkStruct(d: StructDef, what: string, info: SourceInfo): void {
    for (const m of d.members) this.lookupType(m.type, `${what}: member '${m.name}'`, info);
    if (d.base !== undefined) {
      const b = this.lookupType({ name: d.base, array: false }, `${what}: 'base'`, info);
      if (b.kind !== "struct")
        throw schemaError(`${what}: 'base' requires a struct type, not ${describe(b)}`, info);
      this.checkNoBaseLoop(d.name, info);
    }
    this.clashCheck(this.allMembers(d.name, info), what, info);
  }

  /** schema.py `QAPISchemaVariants.check`: the base, the discriminator (a mandatory, unconditional enum member of it) and the branches, whose members must not clash with the base's. */
  private checkUnion(d: UnionDef, what: string, info: SourceInfo): void {
    const b = this.lookupType({ name: d.base, array: false }, `${what}: 'base'`, info);
    if (b.kind !== "struct")
      throw schemaError(`${what}: 'base' requires a struct type, not ${describe(b)}`, info);
    const baseMembers = this.allMembers(d.base, info);
    const tag = baseMembers.find((m) => m.name === d.discriminator);
    const baseWhat = b.implicit ? "the base" : `base '${d.base}'`;
    if (tag === undefined) {
      throw schemaError(
        `${what}: discriminator '${d.discriminator}' is not a member of ${baseWhat}`,
        info,
      );
    }
    if (tag.optional)
      throw schemaError(
        `${what}: discriminator member '${d.discriminator}' of ${baseWhat} must not be optional`,
        info,
      );
    if (tag.ifcond !== undefined) {
      throw schemaError(
        `${what}: discriminator member '${d.discriminator}' of ${baseWhat} must not be conditional`,
        info,
      );
    }
    const tagType = this.lookupType(tag.type, `${what}: discriminator`, info);
    if (tagType.kind !== "enum" || tag.type.array) {
      throw schemaError(
        `${what}: discriminator member '${d.discriminator}' of ${baseWhat} must be of enum type, not '${tag.type.name}'`,
        info,
      );
    }
    const values = new Set(tagType.values.map((v) => v.name));
    // Tag values without a branch get the empty type, so only an empty enum leaves none.
    if (values.size === 0 && d.branches.length === 0)
      throw schemaError(`${what}: union has no branches`, info);
    for (const br of d.branches) {
      if (!values.has(br.name))
        throw schemaError(
          `${what}: branch '${br.name}' is not a value of enum '${tagType.name}'`,
          info,
        );
      const t = this.lookupType(br.type, `${what}: branch '${br.name}'`, info);
      if (!d.simple && t.kind !== "struct" && t.kind !== "union") {
        throw schemaError(
          `${what}: branch '${br.name}' requires an object type, not ${describe(t)}`,
          info,
        );
      }
      // A branch that is itself a union adds its own branches' members too (QEMU 10).
      for (const set of this.variantMemberSets(br.type.name, info)) {
        this.clashCheck([...baseMembers, ...set], `${what} branch '${br.name}'`, info);
      }
    }
  }

  /** schema.py `QAPISchemaAlternateType.check`: the branches must be told apart by their JSON type. */
  private checkAlternate(d: AlternateDef, what: string, info: SourceInfo): void {
    // schema.py `QAPISchemaAlternateType.check`: branches must differ in JSON type, and
    // since the command line passes everything as strings, a string branch also takes the
    // places of numbers and booleans unless it is an enum whose values cannot look like one.
    const seen = new Map<string, string>();
    for (const br of d.branches) {
      const t = this.lookupType(br.type, `${what}: branch '${br.name}'`, info);
      if (t.kind === "alternate" && !br.type.array) {
        throw schemaError(
          `${what}: branch '${br.name}' cannot use alternate type '${t.name}'`,
          info,
        );
      }
      const conflicting = new Set<string>(jsonCategories(t, br.type.array));
      if (!br.type.array && t.kind === "enum") {
        for (const v of t.values) {
          if (v.name === "on" || v.name === "off") conflicting.add("boolean");
          if (/^[-+0-9.]/.test(v.name)) conflicting.add("number");
        }
      } else if (!br.type.array && t.kind === "builtin" && t.jsonType === "string") {
        conflicting.add("number");
        conflicting.add("boolean");
      }
      for (const cat of conflicting) {
        const prior = seen.get(cat);
        if (prior !== undefined) {
          throw schemaError(
            `${what}: branch '${br.name}' can't be distinguished from '${prior}'`,
            info,
          );
        }
      }
      for (const cat of conflicting) seen.set(cat, br.name);
    }
  }

  /** schema.py `QAPISchemaCommand.check`: the arguments and the reply type. */
  private checkCommand(d: CommandDef, what: string, info: SourceInfo): void {
    if (d.args !== undefined) {
      const a = this.lookupType({ name: d.args, array: false }, `${what}: 'data'`, info);
      const ok = a.kind === "struct" || (d.boxed && (a.kind === "union" || a.kind === "alternate"));
      // QEMU 10: the arguments of a non-boxed command cannot be conditional one by one.
      if (
        this.modernRules &&
        a.kind === "struct" &&
        !d.boxed &&
        !a.implicit &&
        this.allMembers(a.name, info).some((m) => m.ifcond !== undefined)
      ) {
        throw schemaError(`${what}: conditional command arguments require 'boxed': true`, info);
      }
      if (!ok)
        throw schemaError(
          `${what}: 'data' requires a struct type${d.boxed ? " (or union with 'boxed')" : ""}, not ${describe(a)}`,
          info,
        );
    }
    if (d.returns !== undefined) {
      const r = this.lookupType(d.returns, `${what}: 'returns'`, info);
      const objectish = r.kind === "struct" || r.kind === "union";
      if (!objectish && !this.parsed.pragmas.commandReturnsExceptions.has(d.name)) {
        throw schemaError(
          `${what}: 'returns' must be an object type or an array of one, not '${d.returns.array ? `[${r.name}]` : r.name}' (or list the command in pragma 'command-returns-exceptions')`,
          info,
        );
      }
    }
  }

  /** schema.py `QAPISchemaEvent.check`: the data type. */
  private checkEvent(d: EventDef, what: string, info: SourceInfo): void {
    if (d.data !== undefined) {
      const a = this.lookupType({ name: d.data, array: false }, `${what}: 'data'`, info);
      const ok = a.kind === "struct" || (d.boxed && a.kind === "union");
      if (!ok)
        throw schemaError(
          `${what}: 'data' requires a struct type${d.boxed ? " or union" : ""}, not ${describe(a)}`,
          info,
        );
    }
  }

  private checkNoBaseLoop(name: string, info: SourceInfo): void {
    const seen = new Set<string>();
    let cur: string | undefined = name;
    while (cur !== undefined) {
      if (seen.has(cur))
        throw schemaError(`struct '${name}': 'base' chain loops through '${cur}'`, info);
      seen.add(cur);
      const d = this.byName.get(cur);
      cur = d?.kind === "struct" ? d.base : undefined;
    }
  }

  private allMembers(name: string, info: SourceInfo, depth = 0): (Member & { owner: string })[] {
    if (depth > 64) throw schemaError(`type '${name}': base chain too deep`, info);
    const d = this.byName.get(name);
    if (d?.kind === "struct") {
      return [
        ...(d.base !== undefined ? this.allMembers(d.base, info, depth + 1) : []),
        ...d.members.map((m) => ({ ...m, owner: d.name })),
      ];
    }
    if (d?.kind === "union") return this.allMembers(d.base, info, depth + 1);
    return [];
  }

  /** Every member set a value of an object type can have: one per path through nested unions. */
  private variantMemberSets(
    name: string,
    info: SourceInfo,
    depth = 0,
  ): (Member & { owner: string })[][] {
    const base = this.allMembers(name, info);
    const d = this.byName.get(name);
    if (d?.kind !== "union" || depth > 16) return [base];
    const sets: (Member & { owner: string })[][] = [];
    for (const br of d.branches) {
      for (const set of this.variantMemberSets(br.type.name, info, depth + 1))
        sets.push([...base, ...set]);
    }
    return sets.length > 0 ? sets : [base];
  }

  private clashCheck(
    members: readonly (Member & { owner: string })[],
    what: string,
    info: SourceInfo,
  ): void {
    const seen = new Map<string, Member & { owner: string }>();
    for (const m of members) {
      const key = cName(m.name);
      const prior = seen.get(key);
      if (prior) {
        throw schemaError(
          `${what}: member '${m.name}' (of ${ownerName(m.owner)}) collides with member '${prior.name}' (of ${ownerName(prior.owner)})`,
          info,
        );
      }
      seen.set(key, m);
    }
  }
}

/** The documentation text of member (value, branch) `member` in a definition's doc comment. */
function memberDoc(doc: DocBlock | undefined, member: string): string | undefined {
  return doc?.members.find((x) => x.name === member)?.text;
}

/** expr.py `check_exprs`: exactly one definition keyword, naming the definition with a string. */
function definitionKeyword(expr: QapiObject, info: SourceInfo): { meta: Meta; name: string } {
  const metas = metaKeys.filter((k) => k in expr);
  if (metas.length !== 1) {
    throw schemaError(
      metas.length === 0
        ? `expression is missing a definition keyword: expected one of ${metaKeys.map((k) => `'${k}'`).join(", ")}, found keys ${Object.keys(
            expr,
          )
            .map((k) => `'${k}'`)
            .join(", ")}`
        : `expression has more than one definition keyword: ${metas.map((k) => `'${k}'`).join(", ")}`,
      info,
    );
  }
  const meta = metas[0]!;
  const name = expr[meta];
  if (typeof name !== "string") throw schemaError(`'${meta}' requires a string name`, info);
  return { meta, name };
}

/** expr.py `check_keys`: only the keys the definition keyword allows. */
function checkKeys(expr: QapiObject, meta: Meta, what: string, info: SourceInfo): void {
  for (const key of Object.keys(expr)) {
    if (!allowedKeys[meta].includes(key)) {
      throw schemaError(
        `${what} has unknown key '${key}' (valid keys: ${allowedKeys[meta].map((k) => `'${k}'`).join(", ")})`,
        info,
      );
    }
  }
}

/**
 * parser.py `QAPIDoc.check`: the Features section documents exactly the features of the
 * definition and of its members (and values).
 */
function checkFeatureDocs(
  expr: QapiObject,
  features: readonly Feature[],
  what: string,
  doc: DocBlock | undefined,
  info: SourceInfo,
): void {
  if (doc === undefined) return;
  const all = new Set([...features.map((f) => f.name), ...innerFeatures(expr)]);
  for (const f of doc.features) {
    if (!all.has(f.name)) {
      throw schemaError(`${what}: documented feature '${f.name}' does not exist`, info);
    }
  }
  for (const f of all) {
    if (!doc.features.some((x) => x.name === f)) {
      throw schemaError(`${what}: feature '${f}' lacks documentation`, info);
    }
  }
}

function sawLegacyPragmas(parsed: ParsedSchema): boolean {
  // QEMU renamed its naming pragmas in 6.0 when it tightened the naming rules; a tree without
  // the new names predates the rules (or is not QEMU's), so only the basic syntax is checked.
  return !parsed.pragmas.sawModernNamePragmas;
}

function ownerName(owner: string): string {
  const m = /^q_obj_(.*)-(arg|base|wrapper)$/.exec(owner);
  if (m)
    return m[2] === "arg"
      ? `the arguments of '${m[1]}'`
      : m[2] === "base"
        ? `the base of '${m[1]}'`
        : `'${owner}'`;
  return `'${owner}'`;
}

/** A definition as messages name it: `struct 'Foo'`. */
export function describe(d: Definition): string {
  if (d.implicit) return `implicit type '${d.name}'`;
  return d.kind === "builtin" ? `built-in type '${d.name}'` : `${d.kind} '${d.name}'`;
}

/** QEMU's `c_name`: the C identifier a name maps to (`-` and `.` become `_`). */
export function cName(name: string): string {
  return name.replace(/[-.]/g, "_");
}

function isObject(v: QapiValue | undefined): v is QapiObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** expr.py `check_flags`: flags that exist only to change a default, so only one value makes sense. */
function checkFlags(expr: QapiObject, what: string, info: SourceInfo): void {
  for (const key of ["gen", "success-response"]) {
    if (key in expr && expr[key] !== false)
      throw schemaError(`${what}: flag '${key}' may only use false value`, info);
  }
  for (const key of ["boxed", "allow-oob", "allow-preconfig", "coroutine"]) {
    if (key in expr && expr[key] !== true)
      throw schemaError(`${what}: flag '${key}' may only use true value`, info);
  }
  if ("allow-oob" in expr && "coroutine" in expr) {
    throw schemaError(`${what}: flags 'allow-oob' and 'coroutine' are incompatible`, info);
  }
}

function boolKey(
  expr: QapiObject,
  key: string,
  what: string,
  info: SourceInfo,
  dflt: boolean,
): boolean {
  const v = expr[key];
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") throw schemaError(`${what}: '${key}' must be true or false`, info);
  return v;
}

function typeRef(v: QapiValue | undefined, what: string, info: SourceInfo): TypeRef {
  if (typeof v === "string") return { name: v, array: false };
  if (Array.isArray(v)) {
    if (v.length !== 1 || typeof v[0] !== "string") {
      throw schemaError(
        `${what}: an array type must be written ['TYPE'] with exactly one type name`,
        info,
      );
    }
    return { name: v[0], array: true };
  }
  throw schemaError(`${what} should be a type name`, info);
}

function normalizeTyped(
  v: QapiValue,
  what: string,
  info: SourceInfo,
  keys: readonly string[],
): { type: TypeRef; if?: QapiValue | undefined; features?: QapiValue | undefined } {
  if (isObject(v)) {
    for (const k of Object.keys(v)) {
      if (!keys.includes(k)) throw schemaError(`${what} has unknown key '${k}'`, info);
    }
    if (!("type" in v)) throw schemaError(`${what} misses key 'type'`, info);
    return { type: typeRef(v.type, what, info), if: v.if, features: v.features };
  }
  return { type: typeRef(v, what, info) };
}

function normalizeNamed(
  v: QapiValue,
  what: string,
  info: SourceInfo,
  keys: readonly string[],
): { name: string; if?: QapiValue | undefined; features?: QapiValue | undefined } {
  if (typeof v === "string") return { name: v };
  if (isObject(v)) {
    for (const k of Object.keys(v)) {
      if (!keys.includes(k)) throw schemaError(`${what} has unknown key '${k}'`, info);
    }
    if (typeof v.name !== "string") throw schemaError(`${what} misses key 'name' (a string)`, info);
    return { name: v.name, if: v.if, features: v.features };
  }
  throw schemaError(`${what} must be a string or an object with 'name'`, info);
}

/** expr.py `check_if`: a string, or `{all: [...]}`, `{any: [...]}`, `{not: cond}`; old QEMU: a list (all). */
function parseIf(
  v: QapiValue | undefined,
  what: string,
  info: SourceInfo,
  strict = true,
): IfCond | undefined {
  if (v === undefined) return undefined;
  const bad = (why: string): never => {
    throw schemaError(`${what}: 'if' condition ${why}`, info);
  };
  const one = (c: QapiValue): IfCond => {
    if (typeof c === "string") {
      if (c.trim() === "") bad("must not be empty");
      return c;
    }
    if (Array.isArray(c)) {
      // A list meant "all of" until QEMU 6.0 introduced the operators.
      if (strict) bad("must be a string or an object");
      if (c.length === 0) bad("'[]' must not be empty");
      return { all: c.map(one) };
    }
    if (isObject(c)) {
      const keys = Object.keys(c);
      if (keys.length !== 1)
        bad(`must have exactly one of 'all', 'any', 'not', found ${keys.length}`);
      const k = keys[0]!;
      const val = c[k]!;
      if (k === "not") return { not: one(val) };
      if (k === "all" || k === "any") {
        if (!Array.isArray(val) || val.length === 0) bad(`'${k}' requires a non-empty array`);
        const list = (val as QapiValue[]).map(one);
        return k === "all" ? { all: list } : { any: list };
      }
      bad(`has unknown operator '${k}'`);
    }
    return bad("must be a string or an object");
  };
  return one(v);
}

function ifOf(
  v: QapiValue | undefined,
  what: string,
  info: SourceInfo,
  strict = true,
): { ifcond?: IfCond } {
  const c = parseIf(v, what, info, strict);
  return c === undefined ? {} : { ifcond: c };
}

function parseFeatures(
  v: QapiValue | undefined,
  what: string,
  info: SourceInfo,
  strict: boolean,
): Feature[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw schemaError(`${what}: 'features' must be an array`, info);
  const out = v.map((f) => {
    const n = normalizeNamed(f, `${what}: feature`, info, ["name", "if"]);
    if (!validName.test(n.name))
      throw schemaError(`${what}: feature '${n.name}' is not a valid name`, info);
    if (strict && /[A-Z_]/.test(n.name))
      throw schemaError(`${what}: feature '${n.name}' must be lowercase with '-'`, info);
    return { name: n.name, ...ifOf(n.if, what, info, strict) };
  });
  dupCheck(
    out.map((f) => f.name),
    (n) => `${what} has duplicate feature '${n}'`,
    info,
  );
  return out;
}

/** The names in a `features` list. */
function featureNamesOf(v: QapiValue | undefined): string[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((f) =>
    typeof f === "string" ? [f] : isObject(f) && typeof f.name === "string" ? [f.name] : [],
  );
}

/** Feature names used by the members, values or inline base members of a definition. */
function innerFeatures(expr: QapiObject): string[] {
  const out: string[] = [];
  const fromList = (v: QapiValue | undefined) => {
    if (!Array.isArray(v)) return;
    for (const f of v) {
      if (typeof f === "string") out.push(f);
      else if (isObject(f) && typeof f.name === "string") out.push(f.name);
    }
  };
  const fromMembers = (v: QapiValue | undefined) => {
    if (Array.isArray(v)) {
      for (const x of v) if (isObject(x)) fromList(x.features);
    } else if (isObject(v)) {
      for (const x of Object.values(v)) if (isObject(x)) fromList(x.features);
    }
  };
  fromMembers(expr.data);
  fromMembers(expr.base);
  return out;
}

/** Names that map to the same C name clash (`one-two` and `one_two`). */
function clashCheckNames(
  names: readonly string[],
  noun: string,
  what: string,
  info: SourceInfo,
): void {
  const seen = new Map<string, string>();
  for (const n of names) {
    const prior = seen.get(cName(n));
    if (prior !== undefined && prior !== n) {
      throw schemaError(`${what}: ${noun} '${n}' collides with ${noun} '${prior}'`, info);
    }
    seen.set(cName(n), n);
  }
}

function dupCheck(
  names: readonly string[],
  message: (n: string) => string,
  info: SourceInfo,
): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw schemaError(message(n), info);
    seen.add(n);
  }
}

/** Whether two definitions' Since/Removed ranges share a release. */
function rangesMeet(a: Definition, b: Definition): boolean {
  const from = (d: Definition) => parseQemuVersion(d.since ?? "0.0");
  // They meet when the later of the two first releases comes before both removals.
  const [later] = [from(a), from(b)].sort((x, y) => compareQemuVersions(y, x));
  const before = (d: Definition) =>
    d.removed === undefined || compareQemuVersions(later!, parseQemuVersion(d.removed)) < 0;
  return before(a) && before(b);
}

function versionOf(doc: DocBlock | undefined): {
  since?: string;
  removed?: string;
  shapeOf?: string;
  doc?: string;
  sections?: { tag: string; text: string }[];
} {
  if (doc === undefined) return {};
  const since = docSince(doc);
  const removed = docRemoved(doc);
  const shapeOf = docShapeOf(doc);
  const sections = doc.sections.filter(
    (s) => s.tag !== "Since" && s.tag !== "Removed" && s.tag !== "Shape-of",
  );
  return {
    ...(since !== undefined ? { since } : {}),
    ...(removed !== undefined ? { removed } : {}),
    ...(shapeOf !== undefined ? { shapeOf } : {}),
    ...(doc.body !== "" ? { doc: doc.body } : {}),
    ...(sections.length > 0 ? { sections } : {}),
  };
}

function withDocs<T extends object>(
  base: T,
  text: string | undefined,
): T & { since?: string; removed?: string; optionalSince?: string; doc?: string } {
  if (text === undefined) return base;
  const since = textSince(text);
  const removed = textRemoved(text);
  // Only members can change optionality; elsewhere the words are plain text.
  const optionalSince = "optional" in base ? textOptionalSince(text) : undefined;
  return {
    ...base,
    ...(text !== "" ? { doc: text } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(removed !== undefined ? { removed } : {}),
    ...(optionalSince !== undefined ? { optionalSince } : {}),
  };
}
